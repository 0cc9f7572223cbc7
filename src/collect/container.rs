//! Names what runs in a network namespace from what the machine's own files
//! say, without asking a container daemon (a socket call per namespace would
//! be slow, needs the daemon's permissions, and hangs when the daemon does).
//!
//! It reads, for one process:
//! - `/proc/PID/cgroup`: the cgroup path names the runtime and the container
//!   id (docker, containerd and CRI-O under kubepods, podman, systemd-nspawn,
//!   LXC), and the Kubernetes pod uid;
//! - the runtimes' state files under [`Roots::root`]: docker's
//!   `config.v2.json`, containerd's and CRI-O's OCI bundle `config.json`
//!   (their annotations name the container and its pod), podman's
//!   `containers.json`, and the kubelet's `/var/log/pods/NS_POD_UID/`
//!   directories;
//! - `/proc/PID/root/etc/hostname`, the container's hostname.
//!
//! Every file may have been planted or filled by someone else, so reads are
//! bounded in size, never follow a symlink in the last component (nor out of
//! the container's root for the hostname), never block on a FIFO, and a file
//! that is unreadable or malformed just leaves its fields None. Strings are
//! kept as written (the UI sanitises them) but capped in length.

use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Longest string kept from any file: a DNS name's limit, far beyond any
/// real container, pod or host name.
pub const MAX_NAME: usize = 253;
/// Most bytes read from one metadata file.
const MAX_FILE: u64 = 1 << 20;
/// podman's `containers.json` lists every container of the host.
const MAX_CONTAINERS_JSON: u64 = 4 << 20;
/// Most bytes read of a hostname file (only its first line counts).
const MAX_HOSTNAME_FILE: u64 = 4096;
/// Most entries looked at in `/var/log/pods` and in one pod's directory.
const MAX_DIR_ENTRIES: usize = 20_000;

/// Which container runtime (or manager) a cgroup path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Docker,
    Containerd,
    Crio,
    Podman,
    Nspawn,
    Lxc,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Crio => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Nspawn => "systemd-nspawn",
            Runtime::Lxc => "lxc",
        }
    }
}

/// What the cgroup path alone says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMatch {
    pub runtime: Runtime,
    /// Full container id (64 hex for docker/containerd/cri-o/podman), or the
    /// machine / container name for nspawn and LXC.
    pub id: String,
    /// Kubernetes pod uid when the path is under kubepods (with `_` turned
    /// back into `-` for the systemd-driver form).
    pub pod_uid: Option<String>,
}

/// Parses the text of /proc/PID/cgroup (cgroup v1 lines
/// `N:controllers:/path`, the v2 line `0::/path`, hybrid mixes); picks the
/// most specific container path of any line: the most deeply nested
/// container, then one with a pod, then the deepest.
pub fn parse_cgroup(text: &str) -> Option<CgroupMatch> {
    let mut best: Option<(CgroupMatch, (usize, bool, usize))> = None;
    for line in text.lines() {
        // The path itself may hold ':'.
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(_), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Some(found) = parse_path(path) else {
            continue;
        };
        let rank = (found.nesting, found.m.pod_uid.is_some(), found.depth);
        if best.as_ref().is_none_or(|(_, r)| rank > *r) {
            best = Some((found.m, rank));
        }
    }
    best.map(|(m, _)| m)
}

/// The innermost container of one cgroup path.
struct PathMatch {
    m: CgroupMatch,
    /// How many containers the path passes through (1 unless nested).
    nesting: usize,
    /// Index of the container's component.
    depth: usize,
}

fn parse_path(path: &str) -> Option<PathMatch> {
    // A removed cgroup (a zombie's) is shown with this suffix.
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    // `..` appears when the process is outside the reader's cgroup namespace.
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .collect();
    let mut found: Option<PathMatch> = None;
    let mut nesting = 0;
    let mut kube = false;
    let mut pod: Option<String> = None;
    let mut i = 0;
    while i < parts.len() {
        let part = parts[i];
        let parent = i.checked_sub(1).map(|j| parts[j]);
        let next = parts.get(i + 1).copied();
        if part.starts_with("kubepods") || part.starts_with("kubelet-kubepods") {
            kube = true;
        }
        if kube && let Some(uid) = pod_uid(part) {
            pod = Some(uid);
        }
        let step = match component(part, parent, next, kube) {
            Component::Container(runtime, id) => {
                nesting += 1;
                found = Some(PathMatch {
                    m: CgroupMatch {
                        runtime,
                        id,
                        pod_uid: if kube { pod.take() } else { None },
                    },
                    nesting,
                    depth: i,
                });
                // A container nested in this one starts its own context.
                kube = false;
                pod = None;
                1
            }
            Component::ContainerWithName(runtime, id) => {
                nesting += 1;
                found = Some(PathMatch {
                    m: CgroupMatch {
                        runtime,
                        id,
                        pod_uid: None,
                    },
                    nesting,
                    depth: i,
                });
                kube = false;
                pod = None;
                2
            }
            Component::SkipNext => 2,
            Component::Other => 1,
        };
        i += step;
    }
    found
}

enum Component {
    /// This component is a container.
    Container(Runtime, String),
    /// This component and the next (the name) are a container (`/lxc/NAME`).
    ContainerWithName(Runtime, String),
    /// This component and the next are not a container (`/lxc.monitor/NAME`).
    SkipNext,
    Other,
}

fn component(part: &str, parent: Option<&str>, next: Option<&str>, kube: bool) -> Component {
    let scoped = |prefix: &str| -> Option<String> {
        let rest = part.strip_prefix(prefix)?;
        let id = rest.strip_suffix(".scope").unwrap_or(rest);
        is_container_id(id).then(|| id.to_string())
    };
    if let Some(id) = part
        .strip_prefix("docker-")
        .and_then(|r| r.strip_suffix(".scope"))
        .filter(|id| is_container_id(id))
    {
        return Component::Container(Runtime::Docker, id.to_string());
    }
    // `crio-conmon-ID` and `libpod-conmon-ID` are the monitors, outside the
    // container: they fail the id check.
    for (prefix, runtime) in [
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::Crio),
        ("libpod-", Runtime::Podman),
    ] {
        if let Some(id) = scoped(prefix) {
            return Component::Container(runtime, id);
        }
    }
    if is_container_id(part) {
        // cgroupfs drivers: `/docker/ID`, `/kubepods/.../podUID/ID` (containerd,
        // or dockershim: `identify` tells them apart by docker's metadata).
        if parent == Some("docker") {
            return Component::Container(Runtime::Docker, part.to_string());
        }
        if kube {
            return Component::Container(Runtime::Containerd, part.to_string());
        }
        return Component::Other;
    }
    // systemd-nspawn: `machine-NAME.scope` (a machine registered by
    // nspawn), or `systemd-nspawn@NAME.service` (`--keep-unit`); nspawn
    // itself runs in the `supervisor` subgroup next to `payload`.
    let machine = part
        .strip_prefix("machine-")
        .and_then(|r| r.strip_suffix(".scope"))
        .or_else(|| {
            part.strip_prefix("systemd-nspawn@")
                .and_then(|r| r.strip_suffix(".service"))
        });
    if let Some(escaped) = machine {
        if next == Some("supervisor") || escaped.is_empty() {
            return Component::Other;
        }
        let name = systemd_unescape(escaped);
        // libvirt registers its VMs (qemu-N-NAME, whose processes run on the
        // host) and its LXC domains (lxc-PID-NAME) as machines too.
        if name.starts_with("qemu-") {
            return Component::Other;
        }
        if let Some(rest) = name.strip_prefix("lxc-")
            && let Some((pid, lxc)) = rest.split_once('-')
            && !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !lxc.is_empty()
        {
            return Component::Container(Runtime::Lxc, cap(lxc));
        }
        return Component::Container(Runtime::Nspawn, cap(&name));
    }
    // LXC: `/lxc/NAME` (before 3.1), `/lxc.payload/NAME` (3.x),
    // `/lxc.payload.NAME` (4.0 on); `lxc.monitor` holds the monitor process.
    match part {
        "lxc" | "lxc.payload" => {
            return match next {
                Some(name) => Component::ContainerWithName(Runtime::Lxc, cap(name)),
                None => Component::Other,
            };
        }
        "lxc.monitor" => return Component::SkipNext,
        _ => {}
    }
    if let Some(name) = part.strip_prefix("lxc.payload.")
        && !name.is_empty()
    {
        return Component::Container(Runtime::Lxc, cap(name));
    }
    Component::Other
}

/// The pod uid of a kubepods component: `pod<uid>` (cgroupfs driver) or
/// `kubepods-<qos>-pod<uid_with_underscores>.slice` (systemd driver).
fn pod_uid(part: &str) -> Option<String> {
    let uid = if let Some(slice) = part.strip_suffix(".slice") {
        let at = slice.rfind("-pod")?;
        slice[at + 4..].replace('_', "-")
    } else {
        part.strip_prefix("pod")?.to_string()
    };
    let valid = !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    valid.then_some(uid)
}

/// A full container id: 64 lowercase hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Undoes systemd's unit-name escaping of a machine name (`\x2d` is `-`).
fn systemd_unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'x')
            && let Some(hex) = s.get(i + 2..i + 4)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// At most [`MAX_NAME`] bytes of `s`, cut at a character boundary.
fn cap(s: &str) -> String {
    if s.len() <= MAX_NAME {
        return s.to_string();
    }
    let mut end = MAX_NAME;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A kept string: capped, and None when empty.
fn kept(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(cap)
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// What runs in a network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Identity {
    pub runtime: Option<Runtime>,
    pub container_id: Option<String>,
    /// The container's name from the runtime's metadata (docker `Name`
    /// without the leading `/`, the kubelet container name, podman's name,
    /// the nspawn machine name, the LXC name).
    pub container: Option<String>,
    pub pod: Option<Pod>,
    /// The container's hostname (its /etc/hostname through /proc/PID/root),
    /// when read.
    pub hostname: Option<String>,
}

impl Identity {
    /// The name to show, or None when nothing is known: the container's
    /// name; else the pod's `namespace/name`; else `runtime:<first 12 chars
    /// of id>`; else the hostname.
    pub fn label(&self) -> Option<String> {
        if let Some(container) = &self.container {
            return Some(container.clone());
        }
        if let Some(pod) = &self.pod {
            return Some(format!("{}/{}", pod.namespace, pod.name));
        }
        if let (Some(runtime), Some(id)) = (self.runtime, &self.container_id) {
            let short: String = id.chars().take(12).collect();
            return Some(format!("{}:{short}", runtime.name()));
        }
        self.hostname.clone()
    }
}

/// Where the runtimes keep their files: `/` on a real machine, a temp dir
/// in tests.
#[derive(Debug, Clone)]
pub struct Roots {
    pub root: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            root: PathBuf::from("/"),
        }
    }
}

impl Roots {
    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }
}

/// What one runtime's metadata says about a container.
#[derive(Debug, Default)]
struct Metadata {
    container: Option<String>,
    pod_namespace: Option<String>,
    pod_name: Option<String>,
    pod_uid: Option<String>,
    hostname: Option<String>,
    /// The metadata says this is the pod's sandbox (pause) container, which
    /// has no name of its own.
    sandbox: bool,
}

/// Identifies the container of a process: parse its cgroup text, then look
/// up names in the runtimes' metadata under `roots`, then its hostname
/// (`hostname` given by the caller, already read from
/// /proc/PID/root/etc/hostname or None). Never fails: unreadable or
/// malformed files just leave fields None. Metadata reads are bounded in
/// size.
pub fn identify(cgroup_text: &str, hostname: Option<&str>, roots: &Roots) -> Identity {
    let mut identity = Identity {
        hostname: hostname.and_then(first_line),
        ..Identity::default()
    };
    let Some(m) = parse_cgroup(cgroup_text) else {
        return identity;
    };
    identity.runtime = Some(m.runtime);
    let meta = match m.runtime {
        // Their cgroup path is their name.
        Runtime::Nspawn | Runtime::Lxc => {
            identity.container = Some(cap(&m.id));
            return identity;
        }
        Runtime::Docker => docker(roots, &m.id),
        Runtime::Containerd => match docker(roots, &m.id) {
            // dockershim: a bare id under kubepods that docker knows.
            Some(meta) => {
                identity.runtime = Some(Runtime::Docker);
                Some(meta)
            }
            None => containerd(roots, &m.id),
        },
        Runtime::Crio => crio(roots, &m.id),
        Runtime::Podman => podman(roots, &m.id),
    };
    identity.container_id = Some(m.id.clone());
    let mut meta = meta.unwrap_or_default();
    let pod_uid = m.pod_uid.or(meta.pod_uid.take());
    let unnamed = meta.container.is_none() && !meta.sandbox;
    if let Some(uid) = &pod_uid
        && (meta.pod_name.is_none() || meta.pod_namespace.is_none() || unnamed)
        && let Some(pod) = kubelet_pod(roots, uid)
    {
        meta.pod_namespace = meta.pod_namespace.or(Some(pod.namespace));
        meta.pod_name = meta.pod_name.or(Some(pod.name));
        if unnamed {
            meta.container = pod.only_container;
        }
    }
    identity.container = meta.container;
    if let (Some(namespace), Some(name)) = (meta.pod_namespace, meta.pod_name) {
        identity.pod = Some(Pod {
            namespace,
            name,
            uid: pod_uid.unwrap_or_default(),
        });
    }
    if identity.hostname.is_none() {
        identity.hostname = meta.hostname;
    }
    identity
}

/// Reads /proc/PID/cgroup and /proc/PID/root/etc/hostname for a live pid
/// and calls [`identify`]. None-filled Identity when the files cannot be
/// read.
pub fn identify_pid(pid: u32, roots: &Roots) -> Identity {
    let Some(cgroup) = read_bounded(Path::new(&format!("/proc/{pid}/cgroup")), MAX_FILE) else {
        return Identity::default();
    };
    let hostname = read_hostname(pid);
    identify(
        &String::from_utf8_lossy(&cgroup),
        hostname.as_deref(),
        roots,
    )
}

/// The first line of a hostname file, trimmed and capped; None when empty.
fn first_line(text: &str) -> Option<String> {
    kept(Some(text.lines().next().unwrap_or("").trim()))
}

/// The container's `/etc/hostname`, resolved inside its root: neither `etc`
/// nor `hostname` may be a symlink (an absolute one would be resolved
/// against our root, the host's, and show one of its files instead).
fn read_hostname(pid: u32) -> Option<String> {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    let root = openat(
        CWD,
        format!("/proc/{pid}/root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    hostname_in(&root)
}

/// `etc/hostname` under the directory `root`, following no symlink.
fn hostname_in(root: &std::os::fd::OwnedFd) -> Option<String> {
    use rustix::fs::{Mode, OFlags, openat};
    let etc = openat(
        root,
        "etc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let fd = openat(
        &etc,
        "hostname",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let file = std::fs::File::from(fd);
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    file.take(MAX_HOSTNAME_FILE).read_to_end(&mut buf).ok()?;
    first_line(&String::from_utf8_lossy(&buf))
}

/// A regular file's bytes, or None when it is missing, not a regular file
/// (a FIFO would block), a symlink, or longer than `limit`.
fn read_bounded(path: &Path, limit: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    read_limited(file, limit)
}

/// All of `reader` if it holds at most `limit` bytes; reads at most one
/// byte more to find out.
fn read_limited(reader: impl Read, limit: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(limit + 1).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 <= limit).then_some(buf)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, limit: u64) -> Option<T> {
    serde_json::from_slice(&read_bounded(path, limit)?).ok()
}

/// The fields of docker's `config.v2.json` used here.
#[derive(Deserialize)]
struct DockerConfig {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Config")]
    config: Option<DockerInnerConfig>,
}

#[derive(Deserialize)]
struct DockerInnerConfig {
    #[serde(rename = "Hostname")]
    hostname: Option<String>,
    #[serde(rename = "Labels")]
    labels: Option<HashMap<String, String>>,
}

/// `/var/lib/docker/containers/ID/config.v2.json`: the `Name` (`/web`), or,
/// for a container the kubelet made through dockershim, the Kubernetes
/// labels (its `Name` is `k8s_CONTAINER_POD_NS_UID_N`).
fn docker(roots: &Roots, id: &str) -> Option<Metadata> {
    let path = roots.path(&format!("var/lib/docker/containers/{id}/config.v2.json"));
    let config: DockerConfig = read_json(&path, MAX_FILE)?;
    let inner = config.config;
    let labels = inner
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let label = |key: &str| kept(labels.get(key).map(String::as_str));
    let sandbox = labels.get("io.kubernetes.docker.type").map(String::as_str) == Some("podsandbox");
    let container = match label("io.kubernetes.container.name") {
        Some(_) if sandbox => None,
        Some(name) => Some(name),
        None => kept(
            config
                .name
                .as_deref()
                .map(|n| n.strip_prefix('/').unwrap_or(n)),
        ),
    };
    Some(Metadata {
        container,
        pod_namespace: label("io.kubernetes.pod.namespace"),
        pod_name: label("io.kubernetes.pod.name"),
        pod_uid: label("io.kubernetes.pod.uid"),
        hostname: kept(inner.and_then(|c| c.hostname).as_deref()),
        sandbox,
    })
}

/// The fields of an OCI runtime spec (a bundle's `config.json`) used here.
#[derive(Deserialize)]
struct OciSpec {
    hostname: Option<String>,
    annotations: Option<HashMap<String, String>>,
}

fn oci_spec(roots: &Roots, candidates: &[String]) -> Option<OciSpec> {
    candidates
        .iter()
        .find_map(|relative| read_json(&roots.path(relative), MAX_FILE))
}

/// containerd's CRI plugin: the bundle of the task in the `k8s.io`
/// namespace, whose annotations name the container and its sandbox (pod).
fn containerd(roots: &Roots, id: &str) -> Option<Metadata> {
    let spec = oci_spec(
        roots,
        &[format!(
            "run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json"
        )],
    )?;
    let notes = spec.annotations.unwrap_or_default();
    let note = |key: &str| kept(notes.get(key).map(String::as_str));
    let sandbox = notes
        .get("io.kubernetes.cri.container-type")
        .map(String::as_str)
        == Some("sandbox");
    Some(Metadata {
        container: if sandbox {
            None
        } else {
            note("io.kubernetes.cri.container-name")
        },
        pod_namespace: note("io.kubernetes.cri.sandbox-namespace"),
        pod_name: note("io.kubernetes.cri.sandbox-name"),
        pod_uid: note("io.kubernetes.cri.sandbox-uid"),
        hostname: kept(spec.hostname.as_deref()),
        sandbox,
    })
}

/// The two copies of a containers/storage container's OCI spec (CRI-O
/// writes both; podman the persistent one).
fn storage_specs(id: &str) -> [String; 2] {
    [
        format!("run/containers/storage/overlay-containers/{id}/userdata/config.json"),
        format!("var/lib/containers/storage/overlay-containers/{id}/userdata/config.json"),
    ]
}

/// CRI-O: the annotations of the container's OCI spec.
fn crio(roots: &Roots, id: &str) -> Option<Metadata> {
    let spec = oci_spec(roots, &storage_specs(id))?;
    let notes = spec.annotations.unwrap_or_default();
    let note = |key: &str| kept(notes.get(key).map(String::as_str));
    let sandbox = notes
        .get("io.kubernetes.cri-o.ContainerType")
        .map(String::as_str)
        == Some("sandbox");
    // The sandbox (infra) container is called "POD".
    let container = note("io.kubernetes.container.name").filter(|n| !sandbox && n != "POD");
    Some(Metadata {
        container,
        pod_namespace: note("io.kubernetes.pod.namespace"),
        pod_name: note("io.kubernetes.pod.name"),
        pod_uid: note("io.kubernetes.pod.uid"),
        hostname: kept(spec.hostname.as_deref()),
        sandbox,
    })
}

/// One entry of containers/storage's `containers.json`.
#[derive(Deserialize)]
struct StorageContainer {
    id: String,
    #[serde(default)]
    names: Vec<String>,
}

/// Rootful podman: the first name in containers/storage's list of
/// containers, and the hostname in the container's OCI spec.
fn podman(roots: &Roots, id: &str) -> Option<Metadata> {
    let list: Option<Vec<StorageContainer>> = read_json(
        &roots.path("var/lib/containers/storage/overlay-containers/containers.json"),
        MAX_CONTAINERS_JSON,
    );
    let container = list
        .and_then(|list| list.into_iter().find(|c| c.id == id))
        .and_then(|c| kept(c.names.first().map(String::as_str)));
    let hostname = oci_spec(roots, &storage_specs(id)).and_then(|s| kept(s.hostname.as_deref()));
    (container.is_some() || hostname.is_some()).then_some(Metadata {
        container,
        hostname,
        ..Metadata::default()
    })
}

/// What the kubelet's log directory of a pod says.
#[derive(Debug, PartialEq, Eq)]
struct KubeletPod {
    namespace: String,
    name: String,
    /// The container's name when the pod has only one (init containers
    /// have their own directories too).
    only_container: Option<String>,
}

/// `/var/log/pods/NAMESPACE_NAME_UID/CONTAINER/`: namespaces and pod names
/// cannot hold `_`, so the directory name splits cleanly.
fn kubelet_pod(roots: &Roots, uid: &str) -> Option<KubeletPod> {
    let pods = roots.path("var/log/pods");
    let dir = std::fs::read_dir(&pods)
        .ok()?
        .take(MAX_DIR_ENTRIES)
        .filter_map(Result::ok)
        .find_map(|entry| {
            let file_name = entry.file_name();
            let name = file_name.to_str()?;
            let mut fields = name.split('_');
            let (Some(namespace), Some(pod), Some(pod_uid), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return None;
            };
            (pod_uid == uid && !namespace.is_empty() && !pod.is_empty())
                .then(|| (entry.path(), cap(namespace), cap(pod)))
        });
    let (path, namespace, name) = dir?;
    let mut containers = std::fs::read_dir(&path)
        .ok()?
        .take(MAX_DIR_ENTRIES)
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(cap));
    let only_container = match (containers.next(), containers.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    };
    Some(KubeletPod {
        namespace,
        name,
        only_container,
    })
}

#[cfg(test)]
#[path = "container_tests.rs"]
mod tests;
