//! Container identity from recorded `/proc/PID/cgroup` texts of each
//! runtime's layouts (cgroup v1, v2 and hybrid), and from metadata files laid
//! out in a temporary directory as the runtimes lay them.

use super::*;
use std::fs;

const ID: &str = "3f1c9a0b7e2d4c6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f";
const ID2: &str = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";
const POD_UID: &str = "8d1e4b2c-6a7f-4e3d-9c1b-2a5f8e7d6c4b";
const POD_UID_SYSTEMD: &str = "8d1e4b2c_6a7f_4e3d_9c1b_2a5f8e7d6c4b";

/// A cgroup v1 text with every controller on `path`, as a process of a
/// cgroupfs-driver container shows it.
fn v1(path: &str) -> String {
    [
        "12:pids",
        "11:hugetlb",
        "10:net_cls,net_prio",
        "9:perf_event",
        "8:cpuset",
        "7:devices",
        "6:freezer",
        "5:memory",
        "4:blkio",
        "3:cpu,cpuacct",
        "2:rdma:/",
        "1:name=systemd",
    ]
    .iter()
    .map(|c| {
        if c.ends_with(":/") {
            format!("{c}\n")
        } else {
            format!("{c}:{path}\n")
        }
    })
    .collect()
}

/// The one line of a cgroup v2 text.
fn v2(path: &str) -> String {
    format!("0::{path}\n")
}

/// systemd's hybrid layout: v1 controllers and `name=systemd` on `path`,
/// and the unified line too.
fn hybrid(path: &str) -> String {
    format!("{}{}", v1(path), v2(path))
}

fn parsed(text: &str) -> (Runtime, String, Option<String>) {
    let m = parse_cgroup(text).unwrap_or_else(|| panic!("no container in {text:?}"));
    (m.runtime, m.id, m.pod_uid)
}

fn container(runtime: Runtime, id: &str) -> (Runtime, String, Option<String>) {
    (runtime, id.to_string(), None)
}

fn in_pod(runtime: Runtime, id: &str) -> (Runtime, String, Option<String>) {
    (runtime, id.to_string(), Some(POD_UID.to_string()))
}

#[test]
fn runtime_names_are_the_projects_own_spellings() {
    let names: Vec<&str> = [
        Runtime::Docker,
        Runtime::Containerd,
        Runtime::Crio,
        Runtime::Podman,
        Runtime::Nspawn,
        Runtime::Lxc,
    ]
    .into_iter()
    .map(Runtime::name)
    .collect();
    assert_eq!(
        names,
        [
            "docker",
            "containerd",
            "cri-o",
            "podman",
            "systemd-nspawn",
            "lxc"
        ]
    );
    assert_eq!(serde_json::to_string(&Runtime::Crio).unwrap(), "\"crio\"");
}

#[test]
fn docker_is_recognised_with_either_cgroup_driver_on_v1_v2_and_hybrid() {
    let cgroupfs = format!("/docker/{ID}");
    let systemd = format!("/system.slice/docker-{ID}.scope");
    for text in [v1(&cgroupfs), v2(&cgroupfs), hybrid(&cgroupfs)] {
        assert_eq!(parsed(&text), container(Runtime::Docker, ID), "{text}");
    }
    for text in [v1(&systemd), v2(&systemd), hybrid(&systemd)] {
        assert_eq!(parsed(&text), container(Runtime::Docker, ID), "{text}");
    }
}

#[test]
fn kubernetes_containerd_pods_are_recognised_in_every_qos_class_and_driver() {
    for path in [
        format!("/kubepods/burstable/pod{POD_UID}/{ID}"),
        format!("/kubepods/besteffort/pod{POD_UID}/{ID}"),
        // Guaranteed pods sit directly under kubepods.
        format!("/kubepods/pod{POD_UID}/{ID}"),
        format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"
        ),
        format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"
        ),
        format!("/kubepods.slice/kubepods-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"),
    ] {
        for text in [v1(&path), v2(&path), hybrid(&path)] {
            assert_eq!(parsed(&text), in_pod(Runtime::Containerd, ID), "{text}");
        }
    }
}

#[test]
fn kubernetes_cri_o_pods_are_recognised_and_conmon_is_not_the_container() {
    for path in [
        format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/crio-{ID}.scope"
        ),
        // crun's own subgroup inside the scope.
        format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/crio-{ID}.scope/container"
        ),
        format!("/kubepods/besteffort/pod{POD_UID}/crio-{ID}"),
    ] {
        for text in [v1(&path), v2(&path), hybrid(&path)] {
            assert_eq!(parsed(&text), in_pod(Runtime::Crio, ID), "{text}");
        }
    }
    for conmon in [
        format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/crio-conmon-{ID}.scope"
        ),
        format!("/system.slice/crio-conmon-{ID}.scope"),
        format!("/kubepods/besteffort/pod{POD_UID}/crio-conmon-{ID}"),
    ] {
        assert_eq!(parse_cgroup(&hybrid(&conmon)), None, "{conmon}");
    }
}

#[test]
fn static_pod_uids_without_dashes_are_kept() {
    let uid = "0f8a7d6c5b4e3f2a1b0c9d8e7f6a5b4c";
    let path = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{ID}.scope"
    );
    assert_eq!(
        parsed(&v2(&path)),
        (Runtime::Containerd, ID.into(), Some(uid.into()))
    );
}

#[test]
fn a_bare_id_outside_kubepods_and_docker_is_not_taken_for_a_container() {
    assert_eq!(parse_cgroup(&v2(&format!("/system.slice/{ID}"))), None);
    assert_eq!(parse_cgroup(&v2(&format!("/pod{POD_UID}/{ID}"))), None);
    // Not 64 lowercase hex.
    assert_eq!(parse_cgroup(&v2(&format!("/docker/{}", &ID[..63]))), None);
    assert_eq!(
        parse_cgroup(&v2(&format!("/docker/{}", ID.to_uppercase()))),
        None
    );
}

#[test]
fn podman_rootful_rootless_and_pods_are_recognised_and_conmon_is_not() {
    for path in [
        format!("/machine.slice/libpod-{ID}.scope"),
        format!("/machine.slice/libpod-{ID}.scope/container"),
        format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
        format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
        ),
        format!("/machine.slice/machine-libpod_pod_{ID2}.slice/libpod-{ID}.scope"),
        format!("/libpod_parent/libpod-{ID}"),
    ] {
        for text in [v2(&path), hybrid(&path)] {
            assert_eq!(parsed(&text), container(Runtime::Podman, ID), "{text}");
        }
    }
    assert_eq!(
        parse_cgroup(&v2(&format!("/machine.slice/libpod-conmon-{ID}.scope"))),
        None
    );
    // Rootless podman on a v1 host: only name=systemd and the unified line
    // know the user's cgroups.
    let rootless = format!(
        "5:memory:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope\n0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope\n"
    );
    assert_eq!(parsed(&rootless), container(Runtime::Podman, ID));
}

#[test]
fn nspawn_machines_are_named_after_their_unescaped_scope() {
    for path in [
        "/machine.slice/machine-web\\x2dfront.scope",
        "/machine.slice/machine-web\\x2dfront.scope/payload",
        "/machine.slice/machine-web\\x2dfront.scope/payload/system.slice/nginx.service",
        "/machine.slice/systemd-nspawn@web\\x2dfront.service/payload",
    ] {
        for text in [v1(path), v2(path), hybrid(path)] {
            assert_eq!(
                parsed(&text),
                container(Runtime::Nspawn, "web-front"),
                "{text}"
            );
        }
    }
}

#[test]
fn the_nspawn_supervisor_and_libvirt_vms_are_not_containers() {
    assert_eq!(
        parse_cgroup(&v2("/machine.slice/machine-web\\x2dfront.scope/supervisor")),
        None
    );
    assert_eq!(
        parse_cgroup(&v2(
            "/machine.slice/machine-qemu\\x2d1\\x2dubuntu.scope/libvirt/emulator"
        )),
        None
    );
    assert_eq!(
        parsed(&v2("/machine.slice/machine-lxc\\x2d4242\\x2dbox.scope")),
        container(Runtime::Lxc, "box")
    );
}

#[test]
fn lxc_is_recognised_in_each_generations_layout_and_its_monitor_is_not() {
    for path in [
        "/lxc/build01",
        "/lxc/build01/ns",
        "/lxc.payload/build01",
        "/lxc.payload.build01",
        "/lxc.payload.build01/init.scope",
        "/lxc.payload.build01/system.slice/sshd.service",
    ] {
        for text in [v1(path), v2(path), hybrid(path)] {
            assert_eq!(parsed(&text), container(Runtime::Lxc, "build01"), "{text}");
        }
    }
    for monitor in ["/lxc.monitor.build01", "/lxc.monitor/build01"] {
        assert_eq!(parse_cgroup(&hybrid(monitor)), None, "{monitor}");
    }
    // The host's own services are not containers.
    assert_eq!(parse_cgroup(&hybrid("/system.slice/lxc.service")), None);
    assert_eq!(parse_cgroup(&hybrid("/system.slice/lxcfs.service")), None);
}

#[test]
fn the_innermost_of_nested_containers_wins() {
    let dind = format!("/docker/{ID2}/docker/{ID}");
    assert_eq!(parsed(&v1(&dind)), container(Runtime::Docker, ID));
    // kind: the node is a docker container, the pod runs inside it.
    let kind = format!("/docker/{ID2}/kubelet/kubepods/burstable/pod{POD_UID}/{ID}");
    assert_eq!(parsed(&v1(&kind)), in_pod(Runtime::Containerd, ID));
    // A pod uid outside the inner container's kubepods does not leak into it.
    let lxc = format!("/lxc.payload.host1/system.slice/docker-{ID}.scope");
    assert_eq!(parsed(&v2(&lxc)), container(Runtime::Docker, ID));
    // One line that sees the nesting beats another that does not.
    let mixed = format!("4:memory:/docker/{ID2}\n0::/docker/{ID2}/docker/{ID}\n");
    assert_eq!(parsed(&mixed), container(Runtime::Docker, ID));
}

#[test]
fn paths_from_another_cgroup_namespace_and_removed_cgroups_still_parse() {
    assert_eq!(
        parsed(&v2(&format!("/../../system.slice/docker-{ID}.scope"))),
        container(Runtime::Docker, ID)
    );
    assert_eq!(
        parsed(&v2(&format!("/system.slice/docker-{ID}.scope (deleted)"))),
        container(Runtime::Docker, ID)
    );
}

#[test]
fn host_processes_and_garbage_are_not_containers() {
    for text in [
        "",
        "0::/\n",
        &hybrid("/user.slice/user-1000.slice/session-2.scope"),
        &hybrid("/system.slice/docker.service"),
        &hybrid("/system.slice/containerd.service"),
        &hybrid("/kubepods.slice/kubepods-burstable.slice"),
        "garbage without colons",
        "::::::\n\n\n",
        "0::/docker-\n",
        "0::/machine-.scope\n",
        "0::/lxc\n",
        "0::/kubepods/pod/\n",
    ] {
        assert_eq!(parse_cgroup(text), None, "{text:?}");
    }
}

#[test]
fn a_path_holding_colons_is_read_whole() {
    // The path field is everything after the second colon.
    assert_eq!(
        parsed(&format!("0::/odd:dir/docker/{ID}\n")),
        container(Runtime::Docker, ID)
    );
}

// ---- metadata, laid out as the runtimes lay it ----

fn roots() -> (tempfile::TempDir, Roots) {
    let dir = tempfile::tempdir().unwrap();
    let roots = Roots {
        root: dir.path().to_path_buf(),
    };
    (dir, roots)
}

fn write(roots: &Roots, relative: &str, contents: impl AsRef<[u8]>) {
    let path = roots.root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// docker's `config.v2.json`, trimmed to a few of its real fields.
fn docker_config(id: &str, name: &str, hostname: &str, labels: serde_json::Value) -> String {
    serde_json::json!({
        "StreamConfig": {},
        "State": {"Running": true, "Paused": false, "Pid": 4711, "ExitCode": 0},
        "ID": id,
        "Created": "2024-05-01T10:00:00.000000000Z",
        "Path": "nginx",
        "Args": ["-g", "daemon off;"],
        "Config": {
            "Hostname": hostname,
            "Domainname": "",
            "User": "",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Image": "nginx:1.25",
            "Labels": labels,
        },
        "Image": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "NetworkSettings": {"Bridge": "", "SandboxID": ID2},
        "LogPath": format!("/var/lib/docker/containers/{id}/{id}-json.log"),
        "Name": name,
        "Driver": "overlay2",
        "OS": "linux",
        "RestartCount": 0,
    })
    .to_string()
}

fn docker_path(id: &str) -> String {
    format!("var/lib/docker/containers/{id}/config.v2.json")
}

/// An OCI runtime spec with these annotations, as containerd and CRI-O
/// write a bundle's `config.json`.
fn oci_config(hostname: &str, annotations: serde_json::Value) -> String {
    serde_json::json!({
        "ociVersion": "1.1.0",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["/pause"], "cwd": "/"},
        "root": {"path": "rootfs", "readonly": true},
        "hostname": hostname,
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "annotations": annotations,
        "linux": {"namespaces": [{"type": "network", "path": "/var/run/netns/cni-1234"}]},
    })
    .to_string()
}

fn containerd_path(id: &str) -> String {
    format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json")
}

/// The kubelet's log directory of a pod, with one directory (and log file)
/// per container.
fn kubelet_pod_dir(roots: &Roots, namespace: &str, pod: &str, uid: &str, containers: &[&str]) {
    for c in containers {
        write(
            roots,
            &format!("var/log/pods/{namespace}_{pod}_{uid}/{c}/0.log"),
            "2024-05-01T10:00:00Z stdout F started\n",
        );
    }
}

fn pod(namespace: &str, name: &str) -> Option<Pod> {
    Some(Pod {
        namespace: namespace.into(),
        name: name.into(),
        uid: POD_UID.into(),
    })
}

#[test]
fn a_docker_container_is_named_from_config_v2_json() {
    let (_dir, roots) = roots();
    write(
        &roots,
        &docker_path(ID),
        docker_config(ID, "/web", "3f1c9a0b7e2d", serde_json::json!({})),
    );
    let got = identify(
        &hybrid(&format!("/system.slice/docker-{ID}.scope")),
        Some("3f1c9a0b7e2d\n"),
        &roots,
    );
    assert_eq!(
        got,
        Identity {
            runtime: Some(Runtime::Docker),
            container_id: Some(ID.into()),
            container: Some("web".into()),
            pod: None,
            hostname: Some("3f1c9a0b7e2d".into()),
        }
    );
    assert_eq!(got.label().as_deref(), Some("web"));
}

#[test]
fn dockers_configured_hostname_stands_in_when_the_file_was_not_read() {
    let (_dir, roots) = roots();
    write(
        &roots,
        &docker_path(ID),
        docker_config(ID, "/web", "web.internal", serde_json::json!(null)),
    );
    let got = identify(&v1(&format!("/docker/{ID}")), None, &roots);
    assert_eq!(got.hostname.as_deref(), Some("web.internal"));
    assert_eq!(got.container.as_deref(), Some("web"));
}

#[test]
fn a_docker_container_without_metadata_is_labelled_by_its_short_id() {
    let (_dir, roots) = roots();
    let got = identify(&v2(&format!("/docker/{ID}")), None, &roots);
    assert_eq!(got.runtime, Some(Runtime::Docker));
    assert_eq!(got.container_id.as_deref(), Some(ID));
    assert_eq!(got.container, None);
    assert_eq!(got.label().as_deref(), Some("docker:3f1c9a0b7e2d"));
}

#[test]
fn a_containerd_pod_container_is_named_from_its_task_bundle() {
    let (_dir, roots) = roots();
    write(
        &roots,
        &containerd_path(ID),
        oci_config(
            "web-7d9f8c6b5-x2k4q",
            serde_json::json!({
                "io.kubernetes.cri.container-name": "nginx",
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.25",
                "io.kubernetes.cri.sandbox-id": ID2,
                "io.kubernetes.cri.sandbox-name": "web-7d9f8c6b5-x2k4q",
                "io.kubernetes.cri.sandbox-namespace": "shop",
                "io.kubernetes.cri.sandbox-uid": POD_UID,
            }),
        ),
    );
    // Two containers: the kubelet's directories alone cannot tell which.
    kubelet_pod_dir(
        &roots,
        "shop",
        "web-7d9f8c6b5-x2k4q",
        POD_UID,
        &["nginx", "log-shipper"],
    );
    let path = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"
    );
    let got = identify(&v2(&path), None, &roots);
    assert_eq!(
        got,
        Identity {
            runtime: Some(Runtime::Containerd),
            container_id: Some(ID.into()),
            container: Some("nginx".into()),
            pod: pod("shop", "web-7d9f8c6b5-x2k4q"),
            hostname: Some("web-7d9f8c6b5-x2k4q".into()),
        }
    );
    assert_eq!(got.label().as_deref(), Some("nginx"));
}

#[test]
fn a_pods_sandbox_is_labelled_by_the_pod() {
    let (_dir, roots) = roots();
    write(
        &roots,
        &containerd_path(ID2),
        oci_config(
            "web-0",
            serde_json::json!({
                "io.kubernetes.cri.container-type": "sandbox",
                "io.kubernetes.cri.sandbox-id": ID2,
                "io.kubernetes.cri.sandbox-log-directory": format!("/var/log/pods/shop_web-0_{POD_UID}"),
                "io.kubernetes.cri.sandbox-name": "web-0",
                "io.kubernetes.cri.sandbox-namespace": "shop",
                "io.kubernetes.cri.sandbox-uid": POD_UID,
            }),
        ),
    );
    kubelet_pod_dir(&roots, "shop", "web-0", POD_UID, &["nginx"]);
    let got = identify(
        &v1(&format!("/kubepods/besteffort/pod{POD_UID}/{ID2}")),
        None,
        &roots,
    );
    assert_eq!(got.runtime, Some(Runtime::Containerd));
    assert_eq!(got.container, None, "the pause container has no name");
    assert_eq!(got.pod, pod("shop", "web-0"));
    assert_eq!(got.label().as_deref(), Some("shop/web-0"));
}

#[test]
fn the_kubelets_log_directories_name_the_pod_when_no_runtime_file_does() {
    let (_dir, roots) = roots();
    kubelet_pod_dir(
        &roots,
        "kube-system",
        "coredns-5d78c9869d-8kx2p",
        POD_UID,
        &["coredns"],
    );
    // Another pod's directory and some junk next to it.
    kubelet_pod_dir(
        &roots,
        "default",
        "other",
        "11111111-2222-3333-4444-555555555555",
        &["app"],
    );
    write(&roots, "var/log/pods/not_a_pod_dir_at_all", "");
    let path = format!("/kubepods/burstable/pod{POD_UID}/{ID}");
    let got = identify(&hybrid(&path), None, &roots);
    assert_eq!(got.runtime, Some(Runtime::Containerd));
    assert_eq!(got.pod, pod("kube-system", "coredns-5d78c9869d-8kx2p"));
    assert_eq!(
        got.container.as_deref(),
        Some("coredns"),
        "the pod's only container"
    );

    // With an init container too, which one this is stays unknown.
    kubelet_pod_dir(
        &roots,
        "kube-system",
        "coredns-5d78c9869d-8kx2p",
        POD_UID,
        &["init-config"],
    );
    let got = identify(&hybrid(&path), None, &roots);
    assert_eq!(got.container, None);
    assert_eq!(
        got.label().as_deref(),
        Some("kube-system/coredns-5d78c9869d-8kx2p")
    );
}

#[test]
fn a_bare_id_under_kubepods_that_docker_knows_is_dockershims() {
    let (_dir, roots) = roots();
    let labels = serde_json::json!({
        "io.kubernetes.container.name": "api",
        "io.kubernetes.docker.type": "container",
        "io.kubernetes.pod.name": "api-6b7c",
        "io.kubernetes.pod.namespace": "prod",
        "io.kubernetes.pod.uid": POD_UID,
    });
    write(
        &roots,
        &docker_path(ID),
        docker_config(
            ID,
            &format!("/k8s_api_api-6b7c_prod_{POD_UID}_0"),
            "api-6b7c",
            labels,
        ),
    );
    let got = identify(
        &v1(&format!("/kubepods/burstable/pod{POD_UID}/{ID}")),
        None,
        &roots,
    );
    assert_eq!(got.runtime, Some(Runtime::Docker));
    assert_eq!(got.container.as_deref(), Some("api"));
    assert_eq!(got.pod, pod("prod", "api-6b7c"));

    // Its sandbox is the pod's, with no container name.
    let sandbox = serde_json::json!({
        "io.kubernetes.container.name": "POD",
        "io.kubernetes.docker.type": "podsandbox",
        "io.kubernetes.pod.name": "api-6b7c",
        "io.kubernetes.pod.namespace": "prod",
        "io.kubernetes.pod.uid": POD_UID,
    });
    write(
        &roots,
        &docker_path(ID2),
        docker_config(
            ID2,
            &format!("/k8s_POD_api-6b7c_prod_{POD_UID}_0"),
            "api-6b7c",
            sandbox,
        ),
    );
    let got = identify(
        &v1(&format!("/kubepods/burstable/pod{POD_UID}/{ID2}")),
        None,
        &roots,
    );
    assert_eq!(got.container, None);
    assert_eq!(got.label().as_deref(), Some("prod/api-6b7c"));
}

#[test]
fn a_cri_o_container_is_named_from_its_spec_in_the_run_or_the_storage_dir() {
    let annotations = |name: &str, kind: &str| {
        serde_json::json!({
            "io.kubernetes.container.name": name,
            "io.kubernetes.cri-o.ContainerType": kind,
            "io.kubernetes.cri-o.Name": format!("k8s_{name}_db-0_data_{POD_UID}_0"),
            "io.kubernetes.pod.name": "db-0",
            "io.kubernetes.pod.namespace": "data",
            "io.kubernetes.pod.uid": POD_UID,
        })
    };
    let path = |id: &str| {
        format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/crio-{id}.scope"
        )
    };
    for dir in ["run", "var/lib"] {
        let (_dir, roots) = roots();
        write(
            &roots,
            &format!("{dir}/containers/storage/overlay-containers/{ID}/userdata/config.json"),
            oci_config("db-0", annotations("postgres", "container")),
        );
        let got = identify(&hybrid(&path(ID)), None, &roots);
        assert_eq!(
            got,
            Identity {
                runtime: Some(Runtime::Crio),
                container_id: Some(ID.into()),
                container: Some("postgres".into()),
                pod: pod("data", "db-0"),
                hostname: Some("db-0".into()),
            },
            "spec under {dir}"
        );
    }
    let (_dir, roots) = roots();
    write(
        &roots,
        &format!("run/containers/storage/overlay-containers/{ID2}/userdata/config.json"),
        oci_config("db-0", annotations("POD", "sandbox")),
    );
    kubelet_pod_dir(&roots, "data", "db-0", POD_UID, &["postgres"]);
    let got = identify(&v2(&path(ID2)), None, &roots);
    assert_eq!(got.container, None, "the infra container is not named POD");
    assert_eq!(got.label().as_deref(), Some("data/db-0"));
}

#[test]
fn a_podman_container_is_named_from_containers_json() {
    let (_dir, roots) = roots();
    let list = serde_json::json!([
        {
            "id": ID2,
            "names": ["a3c1f0e2d4b6-infra"],
            "image": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "layer": "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
            "metadata": "{\"image-name\":\"localhost/podman-pause:4.9\",\"name\":\"a3c1f0e2d4b6-infra\"}",
            "created": "2024-05-01T10:00:00.000000000Z"
        },
        {
            "id": ID,
            "names": ["cache"],
            "image": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "layer": "0011223344556677889900112233445566778899001122334455667788990011",
            "metadata": "{\"image-name\":\"docker.io/library/redis:7\",\"name\":\"cache\"}",
            "created": "2024-05-01T10:00:01.000000000Z"
        }
    ]);
    write(
        &roots,
        "var/lib/containers/storage/overlay-containers/containers.json",
        list.to_string(),
    );
    write(
        &roots,
        &format!("var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        oci_config(
            "3f1c9a0b7e2d",
            serde_json::json!({"io.container.manager": "libpod"}),
        ),
    );
    let got = identify(
        &v2(&format!("/machine.slice/libpod-{ID}.scope/container")),
        None,
        &roots,
    );
    assert_eq!(
        got,
        Identity {
            runtime: Some(Runtime::Podman),
            container_id: Some(ID.into()),
            container: Some("cache".into()),
            pod: None,
            hostname: Some("3f1c9a0b7e2d".into()),
        }
    );
    // A container missing from the list keeps its id.
    let other = "ab".repeat(32);
    let got = identify(
        &v2(&format!("/machine.slice/libpod-{other}.scope")),
        None,
        &roots,
    );
    assert_eq!(got.container, None);
    assert_eq!(got.label().as_deref(), Some("podman:abababababab"));
}

#[test]
fn nspawn_and_lxc_names_need_no_metadata() {
    let (_dir, roots) = roots();
    let got = identify(
        &v2("/machine.slice/machine-build\\x2dbox.scope/payload"),
        Some("buildbox"),
        &roots,
    );
    assert_eq!(
        got,
        Identity {
            runtime: Some(Runtime::Nspawn),
            container_id: None,
            container: Some("build-box".into()),
            pod: None,
            hostname: Some("buildbox".into()),
        }
    );
    let got = identify(&v2("/lxc.payload.ci-runner"), None, &roots);
    assert_eq!(got.label().as_deref(), Some("ci-runner"));
    assert_eq!(got.runtime, Some(Runtime::Lxc));
}

#[test]
fn outside_any_container_only_the_hostname_is_left() {
    let (_dir, roots) = roots();
    let got = identify(
        &hybrid("/user.slice/user-1000.slice/session-2.scope"),
        Some("box\n"),
        &roots,
    );
    assert_eq!(
        got,
        Identity {
            hostname: Some("box".into()),
            ..Identity::default()
        }
    );
    assert_eq!(got.label().as_deref(), Some("box"));
    assert_eq!(identify("0::/\n", None, &roots).label(), None);
    assert_eq!(identify("0::/\n", Some("  \n"), &roots).hostname, None);
}

#[test]
fn label_prefers_the_container_then_the_pod_then_the_short_id_then_the_hostname() {
    let mut id = Identity {
        runtime: Some(Runtime::Crio),
        container_id: Some(ID.into()),
        container: Some("app".into()),
        pod: pod("ns", "p"),
        hostname: Some("h".into()),
    };
    assert_eq!(id.label().as_deref(), Some("app"));
    id.container = None;
    assert_eq!(id.label().as_deref(), Some("ns/p"));
    id.pod = None;
    assert_eq!(id.label().as_deref(), Some("cri-o:3f1c9a0b7e2d"));
    id.container_id = None;
    assert_eq!(id.label().as_deref(), Some("h"));
    id.hostname = None;
    assert_eq!(id.label(), None);
}

// ---- hostile files ----

#[test]
fn a_name_with_escape_sequences_is_kept_verbatim_but_capped() {
    let (_dir, roots) = roots();
    let hostile = format!("/\u{1b}]0;owned\u{7}\u{1b}[31m{}", "é".repeat(400));
    write(
        &roots,
        &docker_path(ID),
        docker_config(ID, &hostile, "h", serde_json::json!({})),
    );
    let got = identify(&v2(&format!("/docker/{ID}")), None, &roots);
    let name = got.container.expect("a name");
    assert!(name.len() <= MAX_NAME, "{} bytes", name.len());
    let escapes = "\u{1b}]0;owned\u{7}\u{1b}[31m";
    assert!(name.starts_with(escapes), "{name:?}");
    // Cut on a character boundary: the escapes, then whole 2-byte é's.
    let e_bytes = (MAX_NAME - escapes.len()) / 2 * 2;
    assert_eq!(name.len(), escapes.len() + e_bytes);
    assert!(name[escapes.len()..].chars().all(|c| c == 'é'));
}

#[test]
fn a_long_hostname_and_machine_name_are_capped() {
    let (_dir, roots) = roots();
    let long = "x".repeat(5000);
    let got = identify(
        &v2(&format!("/machine.slice/machine-{long}.scope")),
        Some(&long),
        &roots,
    );
    assert_eq!(got.container.map(|c| c.len()), Some(MAX_NAME));
    assert_eq!(got.hostname.map(|h| h.len()), Some(MAX_NAME));
}

#[test]
fn reading_stops_one_byte_past_the_limit() {
    // An endless reader: reading it whole would never return.
    assert_eq!(read_limited(std::io::repeat(b'x'), 1024), None);
    assert_eq!(
        read_limited(&b"12345"[..], 5).as_deref(),
        Some(&b"12345"[..])
    );
    assert_eq!(read_limited(&b"123456"[..], 5), None);
}

#[test]
fn a_metadata_file_over_the_limit_is_not_parsed_even_when_valid() {
    let (_dir, roots) = roots();
    let head = br#"{"Name":"/huge"}"#;
    // Trailing spaces are valid JSON: read whole, either file would parse.
    let padded = |len: usize| {
        let mut json = head.to_vec();
        json.resize(len, b' ');
        json
    };
    let text = v2(&format!("/docker/{ID}"));
    write(&roots, &docker_path(ID), padded(MAX_FILE as usize));
    assert_eq!(
        identify(&text, None, &roots).container.as_deref(),
        Some("huge"),
        "at the limit"
    );
    write(&roots, &docker_path(ID), padded(MAX_FILE as usize + 1));
    let got = identify(&text, None, &roots);
    assert_eq!(got.container, None, "one byte over the limit");
    assert_eq!(got.runtime, Some(Runtime::Docker));

    // A sparse 1 GiB file costs one limit's worth of reading.
    let file = fs::File::create(roots.root.join(docker_path(ID))).unwrap();
    file.set_len(1 << 30).unwrap();
    let start = std::time::Instant::now();
    assert_eq!(identify(&text, None, &roots).container, None);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_fifo_planted_as_metadata_does_not_block() {
    let (_dir, roots) = roots();
    let path = roots.root.join(docker_path(ID));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let got = identify(&v2(&format!("/docker/{ID}")), None, &roots);
    assert_eq!(got.container, None);
}

#[test]
fn a_symlinked_metadata_file_is_not_followed() {
    let (_dir, roots) = roots();
    write(
        &roots,
        "elsewhere.json",
        docker_config(ID, "/via-link", "h", serde_json::json!({})),
    );
    let path = roots.root.join(docker_path(ID));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(roots.root.join("elsewhere.json"), &path).unwrap();
    let got = identify(&v2(&format!("/docker/{ID}")), None, &roots);
    assert_eq!(got.container, None);
}

#[test]
fn invalid_utf8_and_malformed_json_leave_fields_empty() {
    let (_dir, roots) = roots();
    let mut bad = br#"{"Name":"/caf"#.to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(br#""}"#);
    write(&roots, &docker_path(ID), bad);
    write(
        &roots,
        &containerd_path(ID2),
        r#"{"annotations": ["not", "a", "map"]}"#,
    );
    write(
        &roots,
        "var/lib/containers/storage/overlay-containers/containers.json",
        r#"{"id": "not a list"}"#,
    );
    let docker = identify(&v2(&format!("/docker/{ID}")), None, &roots);
    assert_eq!(docker.container, None);
    let containerd = identify(&v1(&format!("/kubepods/pod{POD_UID}/{ID2}")), None, &roots);
    assert_eq!(containerd.container, None);
    assert_eq!(containerd.pod, None);
    let podman = identify(
        &v2(&format!("/machine.slice/libpod-{ID}.scope")),
        None,
        &roots,
    );
    assert_eq!(podman.container, None);

    // A pod directory whose name is not UTF-8 is passed over.
    use std::os::unix::ffi::OsStrExt;
    let odd = std::ffi::OsStr::from_bytes(b"ns_\xffpod_8d1e4b2c-6a7f-4e3d-9c1b-2a5f8e7d6c4b");
    fs::create_dir_all(roots.root.join("var/log/pods").join(odd).join("c")).unwrap();
    let got = identify(&v1(&format!("/kubepods/pod{POD_UID}/{ID2}")), None, &roots);
    assert_eq!(got.pod, None);
}

/// A directory opened as a container's root would be.
fn open_root(dir: &std::path::Path) -> std::os::fd::OwnedFd {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    openat(
        CWD,
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

#[test]
fn the_hostname_is_the_first_line_of_etc_hostname_in_the_containers_root() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("etc")).unwrap();
    fs::write(dir.path().join("etc/hostname"), "web-0\nsecond line\n").unwrap();
    assert_eq!(
        hostname_in(&open_root(dir.path())).as_deref(),
        Some("web-0")
    );
    fs::write(
        dir.path().join("etc/hostname"),
        format!("{}\n", "h".repeat(100_000)),
    )
    .unwrap();
    assert_eq!(
        hostname_in(&open_root(dir.path())).map(|h| h.len()),
        Some(MAX_NAME)
    );
    fs::write(dir.path().join("etc/hostname"), b"caf\xc3\n").unwrap();
    assert_eq!(
        hostname_in(&open_root(dir.path())).as_deref(),
        Some("caf\u{fffd}")
    );
}

#[test]
fn a_symlinked_hostname_or_etc_is_not_followed_out_of_the_container() {
    // An absolute symlink would resolve against our root, the host's, and
    // show one of the host's files as the container's hostname.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("etc/hostname")).unwrap();
    assert_eq!(hostname_in(&open_root(dir.path())), None);

    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("real")).unwrap();
    fs::write(dir.path().join("real/hostname"), "leaked\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("etc")).unwrap();
    assert_eq!(hostname_in(&open_root(dir.path())), None);

    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("etc")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("etc/hostname"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_eq!(
        hostname_in(&open_root(dir.path())),
        None,
        "a FIFO does not block"
    );
}

#[test]
fn paths_in_the_cgroup_text_never_become_file_paths() {
    // Only validated ids are joined to the roots: a pod uid or name with
    // `..` is not a pod uid, and nothing outside the roots is read.
    for text in [
        "0::/kubepods/pod../../etc/abc\n".to_string(),
        "0::/lxc/../../etc\n".to_string(),
        format!("0::/kubepods.slice/kubepods-pod..%2F..slice/cri-containerd-{ID}.scope\n"),
    ] {
        if let Some(m) = parse_cgroup(&text) {
            assert!(
                m.pod_uid.as_deref().is_none_or(|u| !u.contains('.')),
                "{m:?}"
            );
        }
    }
}

#[test]
fn identify_pid_reads_this_process() {
    let (_dir, roots) = roots();
    let got = identify_pid(std::process::id(), &roots);
    let text = fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(got, identify(&text, got.hostname.as_deref(), &roots));
    // A pid that cannot exist.
    assert_eq!(identify_pid(u32::MAX, &roots), Identity::default());
}
