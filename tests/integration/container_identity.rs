//! Container identity of live processes moved into real cgroups named as
//! docker (cgroupfs driver), the kubelet with containerd (systemd driver)
//! and systemd-nspawn name theirs, with the runtimes' metadata laid out in a
//! temporary root: what `identify_pid` reads is what the kernel says.

use crate::common;
use sockscope::collect::container::{Identity, Pod, Roots, Runtime, identify_pid};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TEST: &str = "real_cgroups_name_docker_kubernetes_and_nspawn_containers";

/// A `sleep` child moved into a cgroup made for it. On drop (a failed
/// assertion too) the child is killed and reaped, then the directories this
/// made are removed, deepest first.
struct Placed {
    child: Child,
    dirs: Vec<PathBuf>,
}

impl Placed {
    /// Makes `hierarchy/relative` and moves a new `sleep` into it; Err says
    /// why not.
    fn new(hierarchy: &Path, relative: &str) -> Result<Placed, String> {
        let child = common::spawn_locked(
            Command::new("sleep")
                .arg("60")
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        );
        let mut placed = Placed {
            child,
            dirs: Vec::new(),
        };
        let mut dir = hierarchy.to_path_buf();
        for part in relative.split('/') {
            dir.push(part);
            match std::fs::create_dir(&dir) {
                Ok(()) => placed.dirs.push(dir.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        }
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, placed.child.id().to_string())
            .map_err(|e| format!("cannot write {}: {e}", procs.display()))?;
        Ok(placed)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Placed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for dir in self.dirs.iter().rev() {
            // The cgroup empties as the killed child finishes exiting.
            for _ in 0..200 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn is_v2(dir: &Path) -> bool {
    dir.join("cgroup.controllers").is_file()
}

/// A cgroup v1 hierarchy (the `pids` controller's) where there is one, else
/// the v2 hierarchy: docker's cgroupfs-driver layout exists on both.
fn v1_or_v2() -> Option<PathBuf> {
    let pids = Path::new("/sys/fs/cgroup/pids");
    if pids.join("cgroup.procs").is_file() && !is_v2(pids) {
        return Some(pids.into());
    }
    let all = Path::new("/sys/fs/cgroup");
    is_v2(all).then(|| all.into())
}

/// The v2 hierarchy: `unified` on a hybrid machine, the whole tree on a v2
/// one; else systemd's named v1 hierarchy.
fn v2_or_systemd() -> Option<PathBuf> {
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|d| is_v2(d))
        .or_else(|| {
            Some(Path::new("/sys/fs/cgroup/systemd")).filter(|d| d.join("cgroup.procs").is_file())
        })
        .map(Path::to_path_buf)
}

fn write(root: &Path, relative: &str, contents: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// What `identify_pid` should find as the hostname of a process sharing
/// our root: the first line of our /etc/hostname when it is a plain file,
/// else the metadata's.
fn expected_hostname(from_metadata: &str) -> String {
    std::fs::symlink_metadata("/etc/hostname")
        .ok()
        .filter(|m| m.is_file())
        .and_then(|_| std::fs::read_to_string("/etc/hostname").ok())
        .and_then(|t| Some(t.lines().next()?.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| from_metadata.to_string())
}

/// Places a child in `relative` under `hierarchy`, or says why the check
/// was skipped.
fn place(hierarchy: Option<PathBuf>, relative: &str, what: &str) -> Option<Placed> {
    let Some(hierarchy) = hierarchy else {
        common::skipped(
            TEST,
            what,
            "no suitable cgroup hierarchy under /sys/fs/cgroup",
            "mount cgroup v1 or v2 there",
        );
        return None;
    };
    match Placed::new(&hierarchy, relative) {
        Ok(p) => {
            let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", p.pid())).unwrap();
            let leaf = relative.rsplit('/').next().unwrap();
            assert!(
                cgroup.contains(leaf),
                "the child was moved into {relative}: {cgroup}"
            );
            Some(p)
        }
        Err(why) => {
            common::skipped(
                TEST,
                what,
                &why,
                "run as root where the cgroup filesystems are writable",
            );
            None
        }
    }
}

#[test]
fn real_cgroups_name_docker_kubernetes_and_nspawn_containers() {
    if !common::root_or_skip(TEST, "container identity from real cgroups") {
        return;
    }
    let me = std::process::id();
    let tmp = tempfile::tempdir().unwrap();
    let roots = Roots {
        root: tmp.path().to_path_buf(),
    };

    // docker, cgroupfs driver: /docker/ID, named in config.v2.json.
    let docker_id = format!("{me:08x}{}", &"d0c4e1".repeat(10)[..56]);
    let docker_name = format!("web-{me}");
    write(
        tmp.path(),
        &format!("var/lib/docker/containers/{docker_id}/config.v2.json"),
        &serde_json::json!({
            "ID": docker_id,
            "Name": format!("/{docker_name}"),
            "Config": {"Hostname": &docker_id[..12], "Labels": {}},
            "State": {"Running": true},
        })
        .to_string(),
    );
    if let Some(child) = place(
        v1_or_v2(),
        &format!("sockscope-test-{me}-docker/docker/{docker_id}"),
        "a docker container",
    ) {
        let got = identify_pid(child.pid(), &roots);
        assert_eq!(
            got,
            Identity {
                runtime: Some(Runtime::Docker),
                container_id: Some(docker_id.clone()),
                container: Some(docker_name.clone()),
                pod: None,
                hostname: Some(expected_hostname(&docker_id[..12])),
            }
        );
        assert_eq!(got.label(), Some(docker_name));
    }

    // Kubernetes with containerd, systemd driver: named by the task
    // bundle's annotations and the kubelet's log directory.
    let uid = format!("{me:08x}-5c0e-4d1a-9b2f-{me:012x}");
    let k8s_id = format!("{me:08x}{}", &"6b1f2e".repeat(10)[..56]);
    let pod_name = format!("web-{me}");
    write(
        tmp.path(),
        &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{k8s_id}/config.json"),
        &serde_json::json!({
            "ociVersion": "1.1.0",
            "hostname": pod_name,
            "annotations": {
                "io.kubernetes.cri.container-name": "app",
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.sandbox-name": pod_name,
                "io.kubernetes.cri.sandbox-namespace": "shop",
                "io.kubernetes.cri.sandbox-uid": uid,
            },
        })
        .to_string(),
    );
    write(
        tmp.path(),
        &format!("var/log/pods/shop_{pod_name}_{uid}/app/0.log"),
        "",
    );
    let slice_uid = uid.replace('-', "_");
    if let Some(child) = place(
        v2_or_systemd(),
        &format!(
            "sockscope-test-{me}-kube/kubepods.slice/kubepods-burstable.slice/\
             kubepods-burstable-pod{slice_uid}.slice/cri-containerd-{k8s_id}.scope"
        ),
        "a Kubernetes pod's container",
    ) {
        let got = identify_pid(child.pid(), &roots);
        assert_eq!(
            got,
            Identity {
                runtime: Some(Runtime::Containerd),
                container_id: Some(k8s_id.clone()),
                container: Some("app".into()),
                pod: Some(Pod {
                    namespace: "shop".into(),
                    name: pod_name.clone(),
                    uid: uid.clone(),
                }),
                hostname: Some(expected_hostname(&pod_name)),
            }
        );
        assert_eq!(got.label().as_deref(), Some("app"));
    }

    // systemd-nspawn: the machine's escaped name is its cgroup's.
    if let Some(child) = place(
        v2_or_systemd(),
        &format!("sockscope-test-{me}-machine/machine.slice/machine-box\\x2d{me}.scope/payload"),
        "a systemd-nspawn machine",
    ) {
        let got = identify_pid(child.pid(), &roots);
        assert_eq!(got.runtime, Some(Runtime::Nspawn));
        assert_eq!(got.label(), Some(format!("box-{me}")));
    }
}
