//! Network namespaces in a recording: which namespace each socket and
//! process of a frame is in, and the table of namespaces, in a tail after
//! the frame's transitions (see the format in `record/mod.rs`).
//!
//! The frame's own bytes stay as they were before namespaces, so a reader
//! from before them still reads every frame (all of it in the host's
//! namespace) and ignores the tail. A frame with nothing outside the host's
//! namespace has no tail: a recording of the host alone is byte for byte
//! what it was.

use super::wire::{Delta, Full, WireProcess, WireSocket};
use super::writer::changed;
use crate::model::{HOST_NETNS, NamespaceInfo, Namespaces, SystemContext};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one frame says about namespaces.
///
/// Namespaces of a list go as runs of (how many in a row, namespace inode)
/// over the list in its order, and as nothing when the whole list is in the
/// host's namespace: the lists are sorted by [`crate::model::ConnKey`],
/// whose order puts one namespace's sockets together, so a key frame of a
/// hundred thousand sockets in twenty containers takes some forty runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NamespaceTail {
    /// Over the frame's sockets: a key frame's `sockets`, a delta's `upserted`.
    pub sockets: Vec<(u32, u64)>,
    /// Over a delta's `removed`.
    pub removed: Vec<(u32, u64)>,
    /// Over the frame's `processes`.
    pub processes: Vec<(u32, u64)>,
    /// Namespaces that appeared or changed since the previous frame; every
    /// one in a key frame.
    pub namespaces: Vec<WireNamespace>,
    /// Namespaces gone since the previous frame (deltas only).
    pub namespaces_gone: Vec<u64>,
    /// [`Namespaces::unreadable`] and [`Namespaces::unknown_processes`],
    /// when they changed (in a key frame, when either is not 0).
    pub unread: Option<(u32, u32)>,
}

/// What changed in one namespace. What is not said stayed as it was.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WireNamespace {
    pub inode: u64,
    /// What it is; always there for a namespace new to the reader.
    pub about: Option<About>,
    /// What is in it; changes more often than what it is, so apart.
    pub counts: Option<Counts>,
    /// The namespace's counters, sockstat and sysctls start over from these
    /// (one went away); otherwise they are changes, as for the host's.
    pub system_whole: bool,
    pub counters: Vec<(String, u64)>,
    pub sockstat: Vec<(String, u64)>,
    pub sysctls: Vec<(String, String)>,
}

/// The fields of [`NamespaceInfo`] that name it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct About {
    pub name: String,
    pub runtime: Option<String>,
    pub container_id: Option<String>,
    pub container: Option<String>,
    pub pod: Option<String>,
    pub hostname: Option<String>,
    pub mount: Option<String>,
    pub error: Option<String>,
    pub source: Option<String>,
}

/// The fields of [`NamespaceInfo`] that count what is in it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub pids: Vec<u32>,
    pub processes: u64,
    pub sockets: u64,
}

/// The tail of a key frame, or None when everything is the host's.
pub fn key_tail(
    sockets: &[&WireSocket],
    processes: &[WireProcess],
    namespaces: &Namespaces,
) -> Option<NamespaceTail> {
    let unread = (
        namespaces.unreadable as u32,
        namespaces.unknown_processes as u32,
    );
    let (list, _) = table_changes(&BTreeMap::new(), &namespaces.list);
    let tail = NamespaceTail {
        sockets: runs(sockets.iter().map(|w| w.key.netns)),
        removed: Vec::new(),
        processes: runs(processes.iter().map(|p| p.netns)),
        namespaces: list,
        namespaces_gone: Vec::new(),
        unread: (unread != (0, 0)).then_some(unread),
    };
    (tail != NamespaceTail::default()).then_some(tail)
}

/// The tail of a delta from `old` (what the reader has) to `new`, or None
/// when it would say nothing.
pub fn delta_tail(delta: &Delta, old: &Namespaces, new: &Namespaces) -> Option<NamespaceTail> {
    let (namespaces, namespaces_gone) = if Arc::ptr_eq(&old.list, &new.list) {
        (Vec::new(), Vec::new())
    } else {
        table_changes(&old.list, &new.list)
    };
    let unread = (new.unreadable as u32, new.unknown_processes as u32);
    let was = (old.unreadable as u32, old.unknown_processes as u32);
    let tail = NamespaceTail {
        sockets: runs(delta.upserted.iter().map(|w| w.key.netns)),
        removed: runs(delta.removed.iter().map(|k| k.netns)),
        processes: runs(delta.processes.iter().map(|p| p.netns)),
        namespaces,
        namespaces_gone,
        unread: (unread != was).then_some(unread),
    };
    (tail != NamespaceTail::default()).then_some(tail)
}

/// Runs of one namespace over a list; empty when all of it is the host's.
fn runs(netns: impl Iterator<Item = u64>) -> Vec<(u32, u64)> {
    let mut out: Vec<(u32, u64)> = Vec::new();
    let mut foreign = false;
    for ns in netns {
        foreign |= ns != HOST_NETNS;
        match out.last_mut() {
            Some((n, last)) if *last == ns && *n < u32::MAX => *n += 1,
            _ => out.push((1, ns)),
        }
    }
    if foreign { out } else { Vec::new() }
}

/// Namespaces new or changed in `new`, and those gone from it.
fn table_changes(
    old: &BTreeMap<u64, NamespaceInfo>,
    new: &BTreeMap<u64, NamespaceInfo>,
) -> (Vec<WireNamespace>, Vec<u64>) {
    let changes = new
        .values()
        .filter_map(|n| change(old.get(&n.inode), n))
        .collect();
    let gone = old
        .keys()
        .filter(|inode| !new.contains_key(inode))
        .copied()
        .collect();
    (changes, gone)
}

/// What a reader that has `old` needs to have `new`; None when nothing.
fn change(old: Option<&NamespaceInfo>, new: &NamespaceInfo) -> Option<WireNamespace> {
    // Destructured so that a new field cannot be forgotten here.
    let NamespaceInfo {
        inode,
        name,
        runtime,
        container_id,
        container,
        pod,
        hostname,
        mount,
        pids,
        processes,
        sockets,
        error,
        source,
        system,
    } = new;
    let about_same = old.is_some_and(|o| {
        o.name == *name
            && o.runtime == *runtime
            && o.container_id == *container_id
            && o.container == *container
            && o.pod == *pod
            && o.hostname == *hostname
            && o.mount == *mount
            && o.error == *error
            && o.source == *source
    });
    let counts_same =
        old.is_some_and(|o| o.pids == *pids && o.processes == *processes && o.sockets == *sockets);
    let empty = SystemContext::default();
    let mut base = old.map_or(&empty, |o| &o.system);
    // Keys never go in the host's context within a run; here one may (a
    // table that could not be read): then the whole context goes again.
    let system_whole = !keeps_keys(&base.counters, &system.counters)
        || !keeps_keys(&base.sockstat, &system.sockstat)
        || !keeps_keys(&base.sysctls, &system.sysctls);
    if system_whole {
        base = &empty;
    }
    let w = WireNamespace {
        inode: *inode,
        about: (!about_same).then(|| About {
            name: name.clone(),
            runtime: runtime.clone(),
            container_id: container_id.clone(),
            container: container.clone(),
            pod: pod.clone(),
            hostname: hostname.clone(),
            mount: mount.clone(),
            error: error.clone(),
            source: source.clone(),
        }),
        counts: (!counts_same).then(|| Counts {
            pids: pids.clone(),
            processes: *processes as u64,
            sockets: *sockets as u64,
        }),
        system_whole,
        counters: changed(&base.counters, &system.counters),
        sockstat: changed(&base.sockstat, &system.sockstat),
        sysctls: changed(&base.sysctls, &system.sysctls),
    };
    let nothing = w.about.is_none()
        && w.counts.is_none()
        && !w.system_whole
        && w.counters.is_empty()
        && w.sockstat.is_empty()
        && w.sysctls.is_empty();
    (!nothing).then_some(w)
}

/// Whether every key of `old` is still in `new`.
fn keeps_keys<V>(old: &BTreeMap<String, V>, new: &BTreeMap<String, V>) -> bool {
    old.len() <= new.len() && old.keys().all(|k| new.contains_key(k))
}

impl NamespaceTail {
    /// Puts each socket and process of a key frame in its namespace.
    pub fn place_full(&self, full: &mut Full) -> Result<(), String> {
        place(&self.sockets, &mut full.sockets, "sockets", |w, ns| {
            w.key.netns = ns
        })?;
        place(
            &self.processes,
            &mut full.processes,
            "processes",
            |p, ns| p.netns = ns,
        )
    }

    /// Puts each socket, removed key and process of a delta in its namespace.
    pub fn place_delta(&self, delta: &mut Delta) -> Result<(), String> {
        place(&self.sockets, &mut delta.upserted, "sockets", |w, ns| {
            w.key.netns = ns
        })?;
        place(
            &self.removed,
            &mut delta.removed,
            "removed sockets",
            |k, ns| k.netns = ns,
        )?;
        place(
            &self.processes,
            &mut delta.processes,
            "processes",
            |p, ns| p.netns = ns,
        )
    }

    /// Brings `namespaces` up to this frame: after the previous frame's for
    /// a delta, after an empty table for a key frame.
    pub fn apply(self, namespaces: &mut Namespaces) {
        if let Some((unreadable, unknown)) = self.unread {
            namespaces.unreadable = unreadable as usize;
            namespaces.unknown_processes = unknown as usize;
        }
        if self.namespaces.is_empty() && self.namespaces_gone.is_empty() {
            return;
        }
        // Copied only when a snapshot already handed out shares it.
        let list = Arc::make_mut(&mut namespaces.list);
        for inode in self.namespaces_gone {
            list.remove(&inode);
        }
        for w in self.namespaces {
            let n = list.entry(w.inode).or_insert_with(|| NamespaceInfo {
                inode: w.inode,
                ..Default::default()
            });
            if let Some(a) = w.about {
                n.name = a.name;
                n.runtime = a.runtime;
                n.container_id = a.container_id;
                n.container = a.container;
                n.pod = a.pod;
                n.hostname = a.hostname;
                n.mount = a.mount;
                n.error = a.error;
                n.source = a.source;
            }
            if let Some(c) = w.counts {
                n.pids = c.pids;
                n.processes = c.processes as usize;
                n.sockets = c.sockets as usize;
            }
            let system = std::sync::Arc::make_mut(&mut n.system);
            if w.system_whole {
                *system = SystemContext::default();
            }
            system.counters.extend(w.counters);
            system.sockstat.extend(w.sockstat);
            system.sysctls.extend(w.sysctls);
        }
    }
}

/// Sets the namespace of each item from runs over the list; no runs: all
/// are the host's, as decoded.
fn place<T>(
    runs: &[(u32, u64)],
    items: &mut [T],
    what: &str,
    set: impl Fn(&mut T, u64),
) -> Result<(), String> {
    if runs.is_empty() {
        return Ok(());
    }
    let total: u64 = runs.iter().map(|&(n, _)| n as u64).sum();
    if total != items.len() as u64 {
        return Err(format!(
            "its namespaces cover {total} {what} of {}",
            items.len()
        ));
    }
    let mut it = items.iter_mut();
    for &(n, ns) in runs {
        for item in it.by_ref().take(n as usize) {
            set(item, ns);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_empty_for_the_host_alone_and_cover_a_mixed_list() {
        assert!(runs([0, 0, 0].into_iter()).is_empty());
        assert!(runs(std::iter::empty()).is_empty());
        assert_eq!(
            runs([0, 7, 7, 0, 9].into_iter()),
            vec![(1, 0), (2, 7), (1, 0), (1, 9)]
        );
        let mut items = [0u64; 5];
        place(
            &[(1, 0), (2, 7), (1, 0), (1, 9)],
            &mut items,
            "x",
            |i, ns| *i = ns,
        )
        .unwrap();
        assert_eq!(items, [0, 7, 7, 0, 9]);
        assert!(place(&[(4, 7)], &mut items, "x", |i, ns| *i = ns).is_err());
        assert!(place(&[(9, 7)], &mut items, "x", |i, ns| *i = ns).is_err());
    }

    fn ns(inode: u64, name: &str, sockets: usize) -> NamespaceInfo {
        let mut n = NamespaceInfo {
            inode,
            name: name.into(),
            runtime: Some("docker".into()),
            container_id: Some(format!("{inode:064x}")),
            container: Some(name.into()),
            sockets,
            pids: vec![4000 + inode as u32],
            processes: 1,
            source: Some("netlink".into()),
            ..Default::default()
        };
        let system = std::sync::Arc::make_mut(&mut n.system);
        system
            .sysctls
            .insert("net.ipv4.tcp_fin_timeout".into(), "60".into());
        system.counters.insert("Tcp.InSegs".into(), inode * 10);
        n
    }

    fn table(list: impl IntoIterator<Item = NamespaceInfo>) -> Namespaces {
        Namespaces {
            list: Arc::new(list.into_iter().map(|n| (n.inode, n)).collect()),
            unreadable: 0,
            unknown_processes: 0,
        }
    }

    /// The reader's table after applying `tail` to `before`.
    fn applied(before: &Namespaces, tail: Option<NamespaceTail>) -> Namespaces {
        let mut now = before.clone();
        if let Some(t) = tail {
            t.apply(&mut now);
        }
        now
    }

    #[test]
    fn table_changes_carry_a_reader_from_one_table_to_the_next() {
        let first = table([ns(5, "web", 3), ns(6, "db", 2)]);
        let key = key_tail(&[], &[], &first).expect("a table to write");
        assert_eq!(applied(&Namespaces::default(), Some(key)), first);

        // Nothing changed: no tail.
        let same = table([ns(5, "web", 3), ns(6, "db", 2)]);
        assert_eq!(delta_tail(&Delta::default(), &first, &same), None);

        // web gains a socket, db goes, cache comes, web's sysctl changes,
        // and one namespace could not be read.
        let mut web = ns(5, "web", 4);
        std::sync::Arc::make_mut(&mut web.system)
            .sysctls
            .insert("net.ipv4.tcp_fin_timeout".into(), "30".into());
        let mut next = table([web, ns(8, "cache", 1)]);
        next.unreadable = 1;
        let tail = delta_tail(&Delta::default(), &first, &next).expect("changes");
        assert_eq!(tail.namespaces_gone, vec![6]);
        let web_change = &tail.namespaces[0];
        assert_eq!(web_change.about, None, "web is still web");
        assert_eq!(web_change.counters, Vec::new(), "its counter stood still");
        assert_eq!(
            web_change.sysctls,
            vec![("net.ipv4.tcp_fin_timeout".into(), "30".into())]
        );
        assert_eq!(applied(&first, Some(tail)), next);

        // A context that lost its keys (its table could not be read) starts over.
        let mut unread = ns(5, "web", 0);
        unread.system = Default::default();
        unread.error = Some("gone".into());
        let last = table([unread]);
        let tail = delta_tail(&Delta::default(), &next, &last).expect("changes");
        assert!(tail.namespaces[0].system_whole);
        assert_eq!(applied(&next, Some(tail)), last);
    }
}
