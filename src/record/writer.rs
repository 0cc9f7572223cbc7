//! Appends snapshots to a recording: a key frame now and then, deltas between.

use super::wire::{self, Delta, Full, Session, WireKey, WireProcess, WireSocket};
use super::{Kind, MAGIC, RecordError, encode_header, to_ms};
use crate::model::{ConnKey, Namespaces, Snapshot};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

/// A key frame is written at least this often, so that seeking never has to
/// apply more than this many deltas.
const MAX_DELTAS: u32 = 600;
/// zstd levels: deltas are written every second and must be cheap; key
/// frames are rare and large, and worth more effort.
const DELTA_LEVEL: i32 = 3;
const KEY_LEVEL: i32 = 9;

/// What one [`Recorder::write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameWritten {
    pub key: bool,
    /// Bytes appended, header included.
    pub bytes: u64,
    /// Sockets written whole (all of them in a key frame).
    pub sockets: usize,
    /// Sockets in the snapshot.
    pub total: usize,
    /// Sockets that appeared, changed or went since the previous frame.
    pub changed: usize,
}

type Fast = foldhash::fast::RandomState;

/// Writes one recording run to a file.
pub struct Recorder {
    path: String,
    file: std::fs::File,
    epoch_ms: i64,
    /// What a reader has after the last frame: the base of the next delta.
    /// Each socket as stored, and the generation (frame) that last saw it.
    sockets: HashMap<ConnKey, (WireSocket, u64), Fast>,
    generation: u64,
    processes: HashMap<u32, WireProcess>,
    users: HashMap<u32, String>,
    counters: BTreeMap<String, u64>,
    sockstat: BTreeMap<String, u64>,
    sysctls: BTreeMap<String, String>,
    /// The namespace table as the reader has it.
    namespaces: Namespaces,
    need_key: bool,
    deltas_since_key: u32,
    delta_bytes_since_key: u64,
    last_key_bytes: u64,
    /// Bytes in the file, including earlier runs.
    pub bytes: u64,
    pub frames: u64,
    /// Damaged bytes the file already held, kept as they were (this run
    /// goes after them; readers skip them).
    pub kept_damage: u64,
}

/// Facts about the run stored in its session block.
pub struct SessionInfo {
    pub host: String,
    pub kernel: String,
    pub filter: String,
    pub interval: std::time::Duration,
}

impl Recorder {
    /// Starts a run in `path`: a new file, or an existing recording continued
    /// after its last whole block (a torn tail from a crash is cut off).
    /// Anything else already at `path` is refused, never overwritten.
    pub fn create(path: &Path, info: SessionInfo) -> Result<Recorder, RecordError> {
        let name = path.display().to_string();
        let open_err = |source| RecordError::Open {
            path: name.clone(),
            source,
        };
        let write_err = |source| RecordError::Write {
            path: name.clone(),
            source,
        };
        let super::file::Opened { file, created } = super::file::open_to_record(path)?;
        let (keep, kept_damage) = if created {
            (0, 0)
        } else {
            existing_length(&file, &name)?
        };
        // Only a torn tail is cut, through the descriptor that was checked.
        if file.metadata().map_err(open_err)?.len() != keep {
            file.set_len(keep).map_err(write_err)?;
        }
        let mut file = file;
        let mut bytes = keep;
        if keep == 0 {
            file.write_all(MAGIC).map_err(write_err)?;
            bytes = MAGIC.len() as u64;
        }
        let now = to_ms(std::time::SystemTime::now());
        let mut rec = Recorder {
            path: name,
            file,
            epoch_ms: now,
            sockets: HashMap::default(),
            generation: 0,
            processes: HashMap::new(),
            users: HashMap::new(),
            counters: BTreeMap::new(),
            sockstat: BTreeMap::new(),
            sysctls: BTreeMap::new(),
            namespaces: Namespaces::default(),
            need_key: true,
            deltas_since_key: 0,
            delta_bytes_since_key: 0,
            last_key_bytes: 0,
            bytes,
            frames: 0,
            kept_damage,
        };
        let session = Session {
            sockscope_version: env!("CARGO_PKG_VERSION").to_string(),
            host: info.host,
            kernel: info.kernel,
            filter: info.filter,
            interval_ms: info.interval.as_millis() as u64,
        };
        let payload = encode(&session, 3)?;
        rec.append(Kind::Session, now, &payload)?;
        Ok(rec)
    }

    /// Appends the snapshot as a key frame or as a delta against the last one.
    pub fn write(&mut self, snap: &Snapshot) -> Result<FrameWritten, RecordError> {
        let at = to_ms(snap.taken_at);
        let now = at - self.epoch_ms;
        // The reader's copy is updated in place; what this frame did not
        // touch is gone.
        self.generation += 1;
        let generation = self.generation;
        let mut upserted = Vec::new();
        for s in &snap.sockets {
            let w = wire::to_wire(s, now);
            match self.sockets.entry(s.key()) {
                Entry::Occupied(mut e) => {
                    let (old, seen) = e.get_mut();
                    *seen = generation;
                    // Only the clock moved: keep what the reader already has.
                    // Anything else: the socket goes out whole, times exact.
                    if !wire::only_times_moved(&w, old) {
                        upserted.push(w.clone());
                        *old = w;
                    }
                }
                Entry::Vacant(e) => {
                    upserted.push(w.clone());
                    e.insert((w, generation));
                }
            }
        }
        let mut removed: Vec<WireKey> = Vec::new();
        self.sockets.retain(|k, (_, seen)| {
            let keep = *seen == generation;
            if !keep {
                removed.push(WireKey::from(*k));
            }
            keep
        });
        let removed_count = removed.len();
        let processes: HashMap<u32, WireProcess> = snap
            .processes
            .iter()
            .map(|(&pid, p)| (pid, WireProcess::from(p)))
            .collect();
        let changed_sockets = upserted.len() + removed_count;
        let key = self.need_key
            || self.deltas_since_key >= MAX_DELTAS
            || self.delta_bytes_since_key >= self.last_key_bytes;
        let (kind, payload, sockets) = if key {
            let mut sockets: Vec<&WireSocket> = self.sockets.values().map(|(w, _)| w).collect();
            // Neighbours in the table share addresses: sorted, they compress better.
            sockets.sort_unstable_by_key(|w| ConnKey::from(w.key));
            let mut procs: Vec<WireProcess> = processes.values().cloned().collect();
            procs.sort_unstable_by_key(|p| p.pid);
            let n = sockets.len();
            let full = Full {
                source: wire::source_code(snap.source),
                attribution: (&snap.attribution).into(),
                sockets,
                processes: procs,
                users: sorted(snap.users.iter().map(|(&k, v)| (k, v.clone()))),
                counters: pairs(&snap.system.counters),
                sockstat: pairs(&snap.system.sockstat),
                sysctls: pairs(&snap.system.sysctls),
            };
            let tail = super::netns::key_tail(&full.sockets, &full.processes, &snap.namespaces);
            (
                Kind::Key,
                encode_with(&full, snap.transitions.as_deref(), tail.as_ref(), KEY_LEVEL)?,
                n,
            )
        } else {
            upserted.sort_unstable_by_key(|w| ConnKey::from(w.key));
            removed.sort_unstable_by_key(|&k| ConnKey::from(k));
            let mut procs: Vec<WireProcess> = processes
                .values()
                .filter(|p| self.processes.get(&p.pid) != Some(p))
                .cloned()
                .collect();
            procs.sort_unstable_by_key(|p| p.pid);
            let mut gone: Vec<u32> = self
                .processes
                .keys()
                .filter(|pid| !processes.contains_key(pid))
                .copied()
                .collect();
            gone.sort_unstable();
            let n = upserted.len();
            let delta = Delta {
                source: wire::source_code(snap.source),
                attribution: (&snap.attribution).into(),
                upserted,
                removed,
                processes: procs,
                processes_removed: gone,
                users: sorted(
                    snap.users
                        .iter()
                        .filter(|(k, v)| self.users.get(k) != Some(v))
                        .map(|(&k, v)| (k, v.clone())),
                ),
                counters: changed(&self.counters, &snap.system.counters),
                sockstat: changed(&self.sockstat, &snap.system.sockstat),
                sysctls: changed(&self.sysctls, &snap.system.sysctls),
            };
            let tail = super::netns::delta_tail(&delta, &self.namespaces, &snap.namespaces);
            (
                Kind::Delta,
                encode_with(
                    &delta,
                    snap.transitions.as_deref(),
                    tail.as_ref(),
                    DELTA_LEVEL,
                )?,
                n,
            )
        };
        let written = self.append(kind, at, &payload)?;
        if key {
            self.need_key = false;
            self.deltas_since_key = 0;
            self.delta_bytes_since_key = 0;
            self.last_key_bytes = written;
        } else {
            self.deltas_since_key += 1;
            self.delta_bytes_since_key += written;
        }
        self.processes = processes;
        self.users
            .extend(snap.users.iter().map(|(&k, v)| (k, v.clone())));
        self.counters.clone_from(&snap.system.counters);
        self.sockstat.clone_from(&snap.system.sockstat);
        self.sysctls.clone_from(&snap.system.sysctls);
        // Shares the sample's table: the next frame compares by pointer first.
        self.namespaces = snap.namespaces.clone();
        self.frames += 1;
        Ok(FrameWritten {
            key,
            bytes: written,
            sockets,
            total: snap.sockets.len(),
            changed: changed_sockets,
        })
    }

    /// One block in one `write`: a crash leaves it whole or torn, never interleaved.
    pub(super) fn append(
        &mut self,
        kind: Kind,
        at_ms: i64,
        payload: &[u8],
    ) -> Result<u64, RecordError> {
        let mut block = Vec::with_capacity(super::HEADER_LEN + payload.len());
        block.extend_from_slice(&encode_header(kind, at_ms, payload));
        block.extend_from_slice(payload);
        self.file
            .write_all(&block)
            .map_err(|source| RecordError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.bytes += block.len() as u64;
        Ok(block.len() as u64)
    }
}

/// Where a new run starts in an existing recording: its end, or where its
/// torn tail starts (that tail is cut); 0 for an empty file or one cut inside
/// the magic (it is started over). Damage is never cut: a new run goes after
/// it, and readers skip it.
fn existing_length(file: &std::fs::File, name: &str) -> Result<(u64, u64), RecordError> {
    let len = file
        .metadata()
        .map_err(|source| RecordError::Open {
            path: name.to_string(),
            source,
        })?
        .len();
    match super::reader::scan(file, name) {
        Ok(scan) => {
            let middle: u64 = scan.damage.iter().map(|d| d.bytes).sum();
            match scan.tail {
                Some(t) if t.torn => Ok((t.offset, middle)),
                // Damage at the end, and no whole block before it: not a
                // recording we know how to continue.
                Some(_) if scan.blocks_len() == 0 => Err(RecordError::NoBlocks {
                    path: name.to_string(),
                }),
                Some(t) => Ok((len, middle + (len - t.offset))),
                None => Ok((len, middle)),
            }
        }
        Err(RecordError::Empty { .. }) if len < MAGIC.len() as u64 => Ok((0, 0)),
        Err(e) => Err(e),
    }
}

fn encode<T: serde::Serialize>(value: &T, level: i32) -> Result<Vec<u8>, RecordError> {
    encode_with(value, None, None, level)
}

/// A frame with its tails in one block: the transitions of its interval,
/// then its namespaces. Each tail is left out when it and the ones after it
/// are absent; the transitions' place is kept (`None`) when namespaces
/// follow, as the readers before namespaces read that place and ignore
/// what comes after it.
pub(super) fn encode_with<T: serde::Serialize>(
    value: &T,
    transitions: Option<&crate::trace::Window>,
    namespaces: Option<&super::netns::NamespaceTail>,
    level: i32,
) -> Result<Vec<u8>, RecordError> {
    let err = |e: postcard::Error| RecordError::Encode(e.to_string());
    let mut raw = postcard::to_stdvec(value).map_err(err)?;
    if transitions.is_some() || namespaces.is_some() {
        let w = transitions.map(|w| w.trimmed(RECORDED_DURATIONS));
        raw.extend_from_slice(&postcard::to_stdvec(&w).map_err(err)?);
    }
    if let Some(t) = namespaces {
        raw.extend_from_slice(&postcard::to_stdvec(t).map_err(err)?);
    }
    zstd::bulk::compress(&raw, level).map_err(|e| RecordError::Encode(e.to_string()))
}

/// Durations kept per group and kind in a recorded window (evenly chosen):
/// enough for a replay's percentiles, not a copy of every connection.
pub const RECORDED_DURATIONS: usize = 256;

fn pairs<V: Clone>(map: &BTreeMap<String, V>) -> Vec<(String, V)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The entries of `new` that `old` does not have as they are.
pub(super) fn changed<V: Clone + PartialEq>(
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
) -> Vec<(String, V)> {
    new.iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn sorted<V>(it: impl Iterator<Item = (u32, V)>) -> Vec<(u32, V)> {
    let mut v: Vec<(u32, V)> = it.collect();
    v.sort_unstable_by_key(|(k, _)| *k);
    v
}
