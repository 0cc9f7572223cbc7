//! Reads a recording: an index of its frames at open, then snapshots rebuilt
//! on demand from the nearest key frame.

use super::wire::{self, Delta, Full, Session, WireProcess, WireSocket};
use super::{HEADER_LEN, Kind, MAGIC, MAX_BLOCK, RecordError, checksum, from_ms};
use crate::model::{ConnKey, Snapshot, SystemContext};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy)]
struct Block {
    offset: u64,
    len: u32,
    kind: Kind,
    at_ms: i64,
}

/// One snapshot in the recording.
#[derive(Debug, Clone, Copy)]
struct FrameRef {
    block: usize,
    /// The key frame this one is rebuilt from.
    key: usize,
    /// Index into `sessions`.
    session: usize,
}

/// The whole blocks of a file.
pub(super) struct Scan {
    blocks: Vec<Block>,
    /// Where the last whole block ends.
    pub(super) good_end: u64,
    file_len: u64,
}

/// Reads the file once, checking every block; stops at the first short or
/// damaged one.
pub(super) fn scan(path: &Path) -> Result<Scan, RecordError> {
    let name = path.display().to_string();
    let read_err = |source| RecordError::Read {
        path: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| RecordError::Open {
        path: name.clone(),
        source,
    })?;
    let file_len = file.metadata().map_err(read_err)?.len();
    let mut r = std::io::BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 16];
    let got = read_full(&mut r, &mut magic).map_err(read_err)?;
    if got < MAGIC.len() {
        // Cut while the magic was being written, or not ours at all.
        return Err(if magic[..got] == MAGIC[..got] {
            RecordError::Empty { path: name }
        } else {
            RecordError::NotARecording { path: name }
        });
    }
    if magic[..15] != MAGIC[..15] {
        return Err(RecordError::NotARecording { path: name });
    }
    if magic[15] != MAGIC[15] {
        return Err(RecordError::Version {
            path: name,
            version: magic[15],
        });
    }
    let mut blocks = Vec::new();
    let mut offset = MAGIC.len() as u64;
    let mut payload = Vec::new();
    loop {
        let mut h = [0u8; HEADER_LEN];
        if read_full(&mut r, &mut h).map_err(read_err)? < HEADER_LEN {
            break;
        }
        let len = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes"));
        let at_ms = i64::from_le_bytes(h[5..13].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(h[13..17].try_into().expect("4 bytes"));
        let Some(kind) = Kind::from_byte(h[4]) else {
            break;
        };
        if len > MAX_BLOCK {
            break;
        }
        payload.resize(len as usize, 0);
        if read_full(&mut r, &mut payload).map_err(read_err)? < len as usize {
            break;
        }
        if checksum(h[4], at_ms, &payload) != crc {
            break;
        }
        blocks.push(Block {
            offset: offset + HEADER_LEN as u64,
            len,
            kind,
            at_ms,
        });
        offset += (HEADER_LEN + len as usize) as u64;
    }
    Ok(Scan {
        blocks,
        good_end: offset,
        file_len,
    })
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// An open recording.
pub struct Recording {
    path: String,
    file: std::fs::File,
    blocks: Vec<Block>,
    frames: Vec<FrameRef>,
    /// Each session's description and its epoch (ms).
    sessions: Vec<(Session, i64)>,
    /// Bytes after the last whole block: a torn tail, left unread.
    pub ignored_bytes: u64,
}

impl Recording {
    pub fn open(path: &Path) -> Result<Recording, RecordError> {
        let name = path.display().to_string();
        let scan = scan(path)?;
        let file = std::fs::File::open(path).map_err(|source| RecordError::Open {
            path: name.clone(),
            source,
        })?;
        let mut rec = Recording {
            path: name.clone(),
            file,
            blocks: scan.blocks,
            frames: Vec::new(),
            sessions: Vec::new(),
            ignored_bytes: scan.file_len.saturating_sub(scan.good_end),
        };
        let mut key = None;
        for i in 0..rec.blocks.len() {
            let b = rec.blocks[i];
            match b.kind {
                Kind::Session => {
                    let session: Session = rec.decode(i, rec.frames.len())?;
                    rec.sessions.push((session, b.at_ms));
                    // A delta never reaches across sessions.
                    key = None;
                }
                Kind::Key if !rec.sessions.is_empty() => key = Some(rec.frames.len()),
                Kind::Delta if key.is_some() => {}
                _ => {
                    return Err(RecordError::Damaged {
                        path: name,
                        frame: rec.frames.len(),
                        why: "a frame without the key frame or session it depends on".into(),
                    });
                }
            }
            if b.kind != Kind::Session {
                rec.frames.push(FrameRef {
                    block: i,
                    key: key.expect("set above"),
                    session: rec.sessions.len() - 1,
                });
            }
        }
        if rec.frames.is_empty() {
            return Err(RecordError::Empty { path: name });
        }
        Ok(rec)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Number of snapshots.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// When frame `i` was taken.
    pub fn time(&self, i: usize) -> SystemTime {
        from_ms(self.blocks[self.frames[i].block].at_ms)
    }

    pub fn start(&self) -> SystemTime {
        self.time(0)
    }

    pub fn end(&self) -> SystemTime {
        self.time(self.len() - 1)
    }

    /// How long the recording spans, first frame to last.
    pub fn span(&self) -> Duration {
        self.end()
            .duration_since(self.start())
            .unwrap_or(Duration::ZERO)
    }

    /// The session frame `i` belongs to.
    pub fn session(&self, i: usize) -> &Session {
        &self.sessions[self.frames[i].session].0
    }

    /// Which recording run frame `i` belongs to (0 for the first): history
    /// does not carry over from one run to the next.
    pub fn session_index(&self, i: usize) -> usize {
        self.frames[i].session
    }

    /// The last frame taken at or before `t`; the first frame when `t` is earlier.
    pub fn index_at(&self, t: SystemTime) -> usize {
        let ms = super::to_ms(t);
        let after = self
            .frames
            .partition_point(|f| self.blocks[f.block].at_ms <= ms);
        after.saturating_sub(1)
    }

    /// Bytes of whole frames, magic included.
    pub fn bytes(&self) -> u64 {
        self.blocks
            .last()
            .map(|b| b.offset + b.len as u64)
            .unwrap_or(MAGIC.len() as u64)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        block: usize,
        frame: usize,
    ) -> Result<T, RecordError> {
        let b = self.blocks[block];
        let damaged = |why: String| RecordError::Damaged {
            path: self.path.clone(),
            frame,
            why,
        };
        let mut compressed = vec![0u8; b.len as usize];
        // `&File` reads and seeks without `&mut self`; only the cursor position
        // is shared, and every read seeks first.
        let mut f = &self.file;
        f.seek(SeekFrom::Start(b.offset))
            .and_then(|_| f.read_exact(&mut compressed))
            .map_err(|source| RecordError::Read {
                path: self.path.clone(),
                source,
            })?;
        let raw = zstd::stream::decode_all(&compressed[..]).map_err(|e| damaged(e.to_string()))?;
        postcard::from_bytes(&raw).map_err(|e| damaged(e.to_string()))
    }
}

type Fast = foldhash::fast::RandomState;

/// Rebuilds snapshots: the state after some frame, moved forward by deltas or
/// reset to a key frame.
#[derive(Default)]
pub struct Cursor {
    position: Option<usize>,
    sockets: Vec<WireSocket>,
    index: HashMap<ConnKey, usize, Fast>,
    processes: HashMap<u32, WireProcess>,
    users: HashMap<u32, String>,
    system: SystemContext,
    attribution: wire::WireAttribution,
    source: u8,
}

impl Cursor {
    pub fn new() -> Cursor {
        Cursor::default()
    }

    /// The frame the cursor is on.
    pub fn position(&self) -> Option<usize> {
        self.position
    }

    /// The snapshot of frame `i`.
    pub fn seek(&mut self, rec: &Recording, i: usize) -> Result<Snapshot, RecordError> {
        let i = i.min(rec.len() - 1);
        let key = rec.frames[i].key;
        let from = match self.position {
            Some(p) if p <= i && p >= key => p + 1,
            _ => {
                let full: Full = rec.decode(rec.frames[key].block, key)?;
                self.load(full);
                self.position = Some(key);
                key + 1
            }
        };
        for f in from..=i {
            let delta: Delta = rec.decode(rec.frames[f].block, f)?;
            self.apply(delta);
            self.position = Some(f);
        }
        Ok(self.snapshot(rec, i))
    }

    fn load(&mut self, full: Full) {
        self.index = full
            .sockets
            .iter()
            .enumerate()
            .map(|(i, w)| (ConnKey::from(w.key), i))
            .collect();
        self.sockets = full.sockets;
        self.processes = full.processes.into_iter().map(|p| (p.pid, p)).collect();
        self.users = full.users.into_iter().collect();
        self.system = SystemContext {
            counters: full.counters.into_iter().collect(),
            sockstat: full.sockstat.into_iter().collect(),
            sysctls: full.sysctls.into_iter().collect(),
        };
        self.attribution = full.attribution;
        self.source = full.source;
    }

    fn apply(&mut self, d: Delta) {
        for k in d.removed {
            if let Some(i) = self.index.remove(&ConnKey::from(k)) {
                self.sockets.swap_remove(i);
                if let Some(moved) = self.sockets.get(i) {
                    self.index.insert(ConnKey::from(moved.key), i);
                }
            }
        }
        for w in d.upserted {
            let key = ConnKey::from(w.key);
            match self.index.get(&key) {
                Some(&i) => self.sockets[i] = w,
                None => {
                    self.index.insert(key, self.sockets.len());
                    self.sockets.push(w);
                }
            }
        }
        for pid in d.processes_removed {
            self.processes.remove(&pid);
        }
        self.processes
            .extend(d.processes.into_iter().map(|p| (p.pid, p)));
        self.users.extend(d.users);
        merge(&mut self.system.counters, d.counters);
        merge(&mut self.system.sockstat, d.sockstat);
        merge(&mut self.system.sysctls, d.sysctls);
        self.attribution = d.attribution;
        self.source = d.source;
    }

    fn snapshot(&self, rec: &Recording, i: usize) -> Snapshot {
        let at = rec.blocks[rec.frames[i].block].at_ms;
        let epoch = rec.sessions[rec.frames[i].session].1;
        let now = at - epoch;
        Snapshot {
            taken_at: from_ms(at),
            source: wire::source_kind(self.source),
            sockets: self
                .sockets
                .iter()
                .map(|w| wire::from_wire(w, now))
                .collect(),
            processes: self
                .processes
                .values()
                .map(|p| (p.pid, p.clone().into()))
                .collect(),
            users: self.users.clone(),
            attribution: self.attribution.into(),
            system: self.system.clone(),
            derived: Default::default(),
        }
    }
}

fn merge<V>(map: &mut BTreeMap<String, V>, changes: Vec<(String, V)>) {
    map.extend(changes);
}
