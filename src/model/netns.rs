//! Network namespaces as a sample knows them: what runs in each, how many
//! sockets it has, its own counters and sysctls.

use super::snapshot::SystemContext;
use super::socket::HOST_NETNS;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One network namespace other than sockscope's own.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NamespaceInfo {
    /// The namespace's inode (`ip netns identify`, `lsns -t net`).
    pub inode: u64,
    /// What to call it: the container's name, the pod, the `/run/netns`
    /// name, the short container id, or `netns:INODE`. Foreign text:
    /// sanitise before display.
    pub name: String,
    /// The container runtime whose cgroup its processes are in.
    pub runtime: Option<String>,
    pub container_id: Option<String>,
    /// The container's name from the runtime's metadata.
    pub container: Option<String>,
    /// The Kubernetes pod, `namespace/name`.
    pub pod: Option<String>,
    pub hostname: Option<String>,
    /// Where it is bind-mounted (`/run/netns/NAME`), when it is.
    pub mount: Option<String>,
    /// Processes in it (at most [`NamespaceInfo::PIDS_KEPT`], lowest first).
    pub pids: Vec<u32>,
    /// How many processes are in it.
    pub processes: usize,
    /// How many sockets of the sample are in it.
    pub sockets: usize,
    /// Why its table could not be read, when it could not.
    pub error: Option<String>,
    /// How its table was read: `netlink` or `proc`.
    pub source: Option<String>,
    /// Its own counters, sockstat and sysctls (each namespace has its own).
    /// Shared with the samples before it while they stand still.
    pub system: Arc<SystemContext>,
}

impl NamespaceInfo {
    pub const PIDS_KEPT: usize = 16;
}

/// The other namespaces of a sample, by inode. Shared between samples
/// that reuse them (a trouble refresh merged into a full one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Namespaces {
    pub list: Arc<BTreeMap<u64, NamespaceInfo>>,
    /// Namespaces seen but not read (no privilege, gone during the scan).
    pub unreadable: usize,
    /// Processes whose namespace could not be told (not root).
    pub unknown_processes: usize,
}

impl Namespaces {
    /// The name shown for a namespace: `host` for sockscope's own.
    pub fn name(&self, netns: u64) -> &str {
        if netns == HOST_NETNS {
            return "host";
        }
        self.list.get(&netns).map_or("?", |n| n.name.as_str())
    }

    pub fn get(&self, netns: u64) -> Option<&NamespaceInfo> {
        self.list.get(&netns)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A namespace by what a user may type: its name, its inode, the
    /// container's name or id (a prefix of 4+ characters), the pod's name
    /// or `namespace/name`, or `host`. Any case.
    pub fn lookup(&self, what: &str) -> Vec<u64> {
        let w = what.to_ascii_lowercase();
        if w == "host" {
            return vec![HOST_NETNS];
        }
        self.list
            .values()
            .filter(|n| n.matches(&w))
            .map(|n| n.inode)
            .collect()
    }

    /// The note for namespaces that could not be read, or None.
    pub fn note(&self) -> Option<String> {
        let errors: Vec<&NamespaceInfo> =
            self.list.values().filter(|n| n.error.is_some()).collect();
        let n = errors.len() + self.unreadable;
        let mut parts = Vec::new();
        if n > 0 {
            let why = errors
                .first()
                .and_then(|e| e.error.clone())
                .unwrap_or_else(|| {
                    "entering a network namespace needs CAP_SYS_ADMIN: run as root".into()
                });
            parts.push(format!(
                "{n} network namespace{} could not be read ({why}): {} sockets are not shown",
                if n == 1 { "" } else { "s" },
                if n == 1 { "its" } else { "their" }
            ));
        }
        // Processes whose namespace could not be told are the ones whose
        // fd tables could not be read either: the attribution note says so.
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

impl NamespaceInfo {
    /// One line for people: `web (container web, pod shop/web-1, docker
    /// 1a2b3c4d5e6f, netns 4026532345)`. Foreign text: sanitise it.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.container
            && *c != self.name
        {
            parts.push(format!("container {c}"));
        }
        if let Some(p) = &self.pod
            && *p != self.name
        {
            parts.push(format!("pod {p}"));
        }
        if let (Some(r), Some(id)) = (&self.runtime, &self.container_id) {
            parts.push(format!("{r} {}", id.chars().take(12).collect::<String>()));
        }
        if let Some(m) = &self.mount {
            parts.push(m.clone());
        }
        parts.push(format!("netns {}", self.inode));
        format!("{} ({})", self.name, parts.join(", "))
    }

    /// Whether `w` (lower case) names this namespace.
    pub fn matches(&self, w: &str) -> bool {
        let eq = |s: &Option<String>| s.as_deref().is_some_and(|s| s.to_ascii_lowercase() == w);
        self.name.to_ascii_lowercase() == w
            || self.inode.to_string() == w
            || eq(&self.container)
            || eq(&self.pod)
            || eq(&self.hostname)
            || self
                .pod
                .as_deref()
                .and_then(|p| p.split_once('/'))
                .is_some_and(|(_, name)| name.to_ascii_lowercase() == w)
            || self
                .mount
                .as_deref()
                .and_then(|m| m.rsplit('/').next())
                .is_some_and(|m| m.to_ascii_lowercase() == w)
            || (w.len() >= 4
                && self
                    .container_id
                    .as_deref()
                    .is_some_and(|id| id.to_ascii_lowercase().starts_with(w)))
    }
}
