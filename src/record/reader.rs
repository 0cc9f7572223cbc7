//! Reads a recording: an index of its frames at open, then snapshots rebuilt
//! on demand from the nearest key frame.

use super::netns::NamespaceTail;
use super::wire::{self, Delta, Full, Session, WireProcess, WireSocket};
use super::{HEADER_LEN, Kind, MAGIC, MAX_BLOCK, RecordError, from_ms};
use crate::model::{ConnKey, Namespaces, Snapshot, SystemContext};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
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

/// Bytes between two whole blocks that are not a block: damage, skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Where the damaged bytes start.
    pub offset: u64,
    pub bytes: u64,
    /// The damaged block's header said it began a session, and a key frame
    /// follows: the frames after it are not read until the next session, as
    /// their times count from the lost session's start.
    pub session_lost: bool,
}

/// The blocks of a file, and what lies between and after them.
pub(super) struct Scan {
    blocks: Vec<Block>,
    pub(super) damage: Vec<Damage>,
    /// Where the last whole block ends.
    pub(super) good_end: u64,
    /// The bytes after the last whole block, if any: a torn tail when they
    /// are the start of a block that a crash cut short.
    pub(super) tail: Option<Tail>,
    pub(super) file_len: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tail {
    pub offset: u64,
    /// The start of one block, cut short: what a recorder killed mid-write
    /// leaves. Otherwise the tail is damage.
    pub torn: bool,
}

/// What stands at one offset.
enum At {
    Block(Block),
    /// Not a whole block; `torn` when it is the start of one that the file
    /// ends inside.
    Bad {
        torn: bool,
        kind: Option<Kind>,
        at_ms: i64,
    },
}

/// Reads the file once, checking every block. After a damaged block it looks
/// for the next whole one (a header whose length fits and whose checksum
/// holds), so damage costs the frames inside it, not all that follow.
pub(super) fn scan(file: &File, name: &str) -> Result<Scan, RecordError> {
    let read_err = |source| RecordError::Read {
        path: name.to_string(),
        source,
    };
    let file_len = file.metadata().map_err(read_err)?.len();
    let mut magic = [0u8; 16];
    let got = read_full_at(file, &mut magic, 0).map_err(read_err)?;
    if got < MAGIC.len() {
        // Cut while the magic was being written, or not ours at all.
        return Err(if magic[..got] == MAGIC[..got] {
            RecordError::Empty {
                path: name.to_string(),
            }
        } else {
            RecordError::NotARecording {
                path: name.to_string(),
            }
        });
    }
    if magic[..15] != MAGIC[..15] {
        return Err(RecordError::NotARecording {
            path: name.to_string(),
        });
    }
    if magic[15] != MAGIC[15] {
        return Err(RecordError::Version {
            path: name.to_string(),
            version: magic[15],
        });
    }
    let mut blocks: Vec<Block> = Vec::new();
    let mut damage = Vec::new();
    let mut offset = MAGIC.len() as u64;
    let mut tail = None;
    let mut buf = vec![0u8; 64 << 10];
    // Bytes that looking for the next block may checksum in all: a crafted
    // file of headers that each claim the rest of it would otherwise cost
    // time quadratic in its size.
    let mut resync_budget = file_len.saturating_mul(4).saturating_add(64 << 20);
    while offset < file_len {
        let (torn, kind, at_ms) =
            match block_at(file, offset, file_len, &mut buf).map_err(read_err)? {
                At::Block(b) => {
                    offset = b.offset + b.len as u64;
                    blocks.push(b);
                    continue;
                }
                At::Bad { torn, kind, at_ms } => (torn, kind, at_ms),
            };
        match next_block(file, offset + 1, file_len, &mut buf, &mut resync_budget)
            .map_err(read_err)?
        {
            Some(next) => {
                // A run starts with a session and then a key frame: a lost
                // block that says it is a session, before a key frame, most
                // likely was one (a kind byte flipped to 0 before a delta
                // was not).
                let next_is_key = matches!(
                    block_at(file, next, file_len, &mut buf).map_err(read_err)?,
                    At::Block(Block {
                        kind: Kind::Key,
                        ..
                    })
                );
                damage.push(Damage {
                    offset,
                    bytes: next - offset,
                    session_lost: kind == Some(Kind::Session) && next_is_key,
                });
                offset = next;
            }
            None => {
                tail = Some(Tail {
                    offset,
                    torn: torn && plausible_time(at_ms, blocks.last(), kind),
                });
                break;
            }
        }
    }
    let good_end = tail.map_or(file_len, |t| t.offset);
    Ok(Scan {
        blocks,
        damage,
        good_end,
        tail,
        file_len,
    })
}

impl Scan {
    pub(super) fn blocks_len(&self) -> usize {
        self.blocks.len()
    }
}

/// A torn block's time is near the last whole block's (or, first in the
/// file, a session's time after 2000): so that a file that merely starts
/// with the magic is not taken for a recording cut short.
fn plausible_time(at_ms: i64, last: Option<&Block>, kind: Option<Kind>) -> bool {
    const DAY: i64 = 86_400_000;
    let now = super::to_ms(std::time::SystemTime::now());
    match last {
        Some(b) => (b.at_ms - DAY..=now.max(b.at_ms) + DAY).contains(&at_ms),
        None => kind == Some(Kind::Session) && (946_684_800_000..=now + DAY).contains(&at_ms),
    }
}

fn block_at(file: &File, offset: u64, file_len: u64, buf: &mut [u8]) -> std::io::Result<At> {
    let mut h = [0u8; HEADER_LEN];
    let got = read_full_at(file, &mut h, offset)?;
    if got < HEADER_LEN {
        return Ok(At::Bad {
            torn: true,
            kind: None,
            at_ms: 0,
        });
    }
    Ok(match parse_header(&h) {
        Some((len, kind, at_ms, crc)) => {
            let end = offset + (HEADER_LEN as u64) + len as u64;
            if end > file_len {
                At::Bad {
                    torn: true,
                    kind: Some(kind),
                    at_ms,
                }
            } else if crc_at(file, offset + HEADER_LEN as u64, len, buf, h[4], at_ms)? == crc {
                At::Block(Block {
                    offset: offset + HEADER_LEN as u64,
                    len,
                    kind,
                    at_ms,
                })
            } else {
                At::Bad {
                    torn: false,
                    kind: Some(kind),
                    at_ms,
                }
            }
        }
        None => At::Bad {
            torn: false,
            kind: None,
            at_ms: 0,
        },
    })
}

/// Length, kind, time and checksum, if the kind is one we know and the
/// length is not absurd.
fn parse_header(h: &[u8]) -> Option<(u32, Kind, i64, u32)> {
    let len = u32::from_le_bytes(h[0..4].try_into().ok()?);
    let kind = Kind::from_byte(h[4])?;
    let at_ms = i64::from_le_bytes(h[5..13].try_into().ok()?);
    let crc = u32::from_le_bytes(h[13..17].try_into().ok()?);
    (len <= MAX_BLOCK).then_some((len, kind, at_ms, crc))
}

/// The checksum of a block, read in pieces: nothing the size of the declared
/// length is allocated.
fn crc_at(
    file: &File,
    offset: u64,
    len: u32,
    buf: &mut [u8],
    kind: u8,
    at_ms: i64,
) -> std::io::Result<u32> {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&at_ms.to_le_bytes());
    let mut done = 0u64;
    while done < len as u64 {
        let want = ((len as u64 - done) as usize).min(buf.len());
        let got = read_full_at(file, &mut buf[..want], offset + done)?;
        if got < want {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        h.update(&buf[..want]);
        done += want as u64;
    }
    Ok(h.finalize())
}

/// The offset of the first whole block at or after `from`, looked for a
/// window at a time.
fn next_block(
    file: &File,
    from: u64,
    file_len: u64,
    buf: &mut [u8],
    budget: &mut u64,
) -> std::io::Result<Option<u64>> {
    let mut window = vec![0u8; 1 << 20];
    let mut base = from;
    while base + HEADER_LEN as u64 <= file_len {
        let got = read_full_at(file, &mut window, base)?;
        if got < HEADER_LEN {
            break;
        }
        for i in 0..=got - HEADER_LEN {
            let Some((len, _, _, _)) = parse_header(&window[i..i + HEADER_LEN]) else {
                continue;
            };
            let at = base + i as u64;
            if at + HEADER_LEN as u64 + len as u64 > file_len {
                continue;
            }
            if *budget < len as u64 {
                // Given up: the rest of the file counts as damage.
                return Ok(None);
            }
            *budget -= len as u64;
            if let At::Block(_) = block_at(file, at, file_len, buf)? {
                return Ok(Some(at));
            }
        }
        base += (got - HEADER_LEN + 1) as u64;
    }
    Ok(None)
}

/// Reads at `offset` until `buf` is full or the file ends; returns how much was read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
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
    file: File,
    blocks: Vec<Block>,
    frames: Vec<FrameRef>,
    /// Each session's description and its epoch (ms).
    sessions: Vec<(Session, i64)>,
    /// Bytes after the last whole block, left unread: a torn tail, or
    /// damage at the end.
    pub ignored_bytes: u64,
    /// Whether those bytes are a torn tail (the recorder was cut off).
    pub tail_torn: bool,
    /// Damaged bytes between whole blocks, skipped.
    pub damage: Vec<Damage>,
    /// Whole frames left out because what they build on was lost to damage
    /// (deltas until the next key frame, frames until the next session).
    pub frames_skipped: usize,
}

impl Recording {
    pub fn open(path: &Path) -> Result<Recording, RecordError> {
        let name = path.display().to_string();
        let file = super::file::open_to_read(path)?;
        let scan = scan(&file, &name)?;
        let mut rec = Recording {
            path: name.clone(),
            file,
            blocks: Vec::with_capacity(scan.blocks.len()),
            frames: Vec::new(),
            sessions: Vec::new(),
            ignored_bytes: scan.file_len - scan.good_end,
            tail_torn: scan.tail.is_some_and(|t| t.torn),
            damage: scan.damage.clone(),
            frames_skipped: 0,
        };
        let mut key = None;
        let mut need_session = false;
        let mut damage = scan.damage.iter().peekable();
        for b in scan.blocks {
            // Damage before this block: what follows cannot build on what
            // came before it.
            while let Some(d) = damage.next_if(|d| d.offset < b.offset) {
                key = None;
                need_session |= d.session_lost;
            }
            let i = rec.blocks.len();
            rec.blocks.push(b);
            match b.kind {
                Kind::Session => {
                    let session: Session = match rec.decode(i, rec.frames.len()) {
                        Ok(s) => s,
                        Err(RecordError::Damaged { .. }) => {
                            // A checksum that holds over bytes that do not
                            // decode: as good as lost.
                            key = None;
                            need_session = true;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    rec.sessions.push((session, b.at_ms));
                    // A delta never reaches across sessions.
                    key = None;
                    need_session = false;
                    continue;
                }
                Kind::Key if !rec.sessions.is_empty() && !need_session => {
                    key = Some(rec.frames.len())
                }
                Kind::Delta if key.is_some() => {}
                _ => {
                    rec.frames_skipped += 1;
                    continue;
                }
            }
            rec.frames.push(FrameRef {
                block: i,
                key: key.expect("set above"),
                session: rec.sessions.len() - 1,
            });
        }
        if rec.frames.is_empty() {
            return Err(if rec.damage.is_empty() && rec.frames_skipped == 0 {
                RecordError::Empty { path: name }
            } else {
                RecordError::Damaged {
                    path: name,
                    frame: 0,
                    why: format!("no usable frame is left; {}", rec.damage_summary()),
                }
            });
        }
        Ok(rec)
    }

    /// What was left out of the file, one line each, for stderr or a
    /// status line; empty for a whole file.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.damage.is_empty() || self.frames_skipped > 0 {
            notes.push(format!("{}: {}", self.path, self.damage_summary()));
        }
        if self.ignored_bytes > 0 {
            let at = self.file_len() - self.ignored_bytes;
            notes.push(if self.tail_torn {
                format!(
                    "ignored {} bytes of a torn tail at the end of {} (a frame cut short, as by a crash)",
                    self.ignored_bytes, self.path
                )
            } else {
                format!(
                    "{}: the last {} bytes, from offset {at}, are damaged (not a frame); ignored",
                    self.path, self.ignored_bytes
                )
            });
        }
        notes
    }

    fn damage_summary(&self) -> String {
        let mut parts: Vec<String> = self
            .damage
            .iter()
            .take(5)
            .map(|d| format!("{} damaged bytes at offset {}", d.bytes, d.offset))
            .collect();
        if self.damage.len() > 5 {
            parts.push(format!("{} more damaged places", self.damage.len() - 5));
        }
        let mut text = if parts.is_empty() {
            String::new()
        } else {
            format!("skipped {}", parts.join(", "))
        };
        if self.frames_skipped > 0 {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(&format!(
                "left out {} frames that depend on what was lost (read on from the next key frame)",
                self.frames_skipped
            ));
        }
        text
    }

    fn damaged(&self, frame: usize, why: String) -> RecordError {
        RecordError::Damaged {
            path: self.path.clone(),
            frame,
            why,
        }
    }

    fn file_len(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
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
        self.decode_framed(block, frame).map(|f| f.value)
    }

    /// A frame and the tails recorded after it in the same block: its
    /// transitions, then its namespaces. Each is absent in recordings made
    /// without it or before it existed; bytes after the tails this reader
    /// knows are a later version's, and ignored (as readers before
    /// namespaces ignore theirs).
    fn decode_framed<T: serde::de::DeserializeOwned>(
        &self,
        block: usize,
        frame: usize,
    ) -> Result<Framed<T>, RecordError> {
        let b = self.blocks[block];
        let damaged = |why: String| RecordError::Damaged {
            path: self.path.clone(),
            frame,
            why,
        };
        let mut compressed = Vec::new();
        compressed
            .try_reserve_exact(b.len as usize)
            .map_err(|_| damaged(format!("cannot allocate {} bytes to read it", b.len)))?;
        compressed.resize(b.len as usize, 0);
        let got = read_full_at(&self.file, &mut compressed, b.offset).map_err(|source| {
            RecordError::Read {
                path: self.path.clone(),
                source,
            }
        })?;
        if got < compressed.len() {
            return Err(damaged(
                "the file is shorter than when it was opened".into(),
            ));
        }
        let raw =
            decompress(&compressed).map_err(|e| damaged(format!("at offset {}: {e}", b.offset)))?;
        let (value, rest) = postcard::take_from_bytes(&raw).map_err(|e| damaged(e.to_string()))?;
        let (transitions, rest) = if rest.is_empty() {
            (None, rest)
        } else {
            postcard::take_from_bytes::<Option<crate::trace::Window>>(rest)
                .map_err(|e| damaged(format!("its transitions: {e}")))?
        };
        let namespaces = if rest.is_empty() {
            None
        } else {
            let (tail, _later) = postcard::take_from_bytes::<NamespaceTail>(rest)
                .map_err(|e| damaged(format!("its namespaces: {e}")))?;
            Some(tail)
        };
        Ok(Framed {
            value,
            transitions: transitions.map(std::sync::Arc::new),
            namespaces,
        })
    }

    /// Each block's kind and decompressed bytes, for tests of the format.
    #[cfg(test)]
    pub(super) fn raw_blocks(&self) -> Vec<(Kind, Vec<u8>)> {
        self.blocks
            .iter()
            .map(|b| {
                let mut compressed = vec![0u8; b.len as usize];
                read_full_at(&self.file, &mut compressed, b.offset).unwrap();
                (b.kind, decompress(&compressed).unwrap())
            })
            .collect()
    }
}

/// One decoded block.
struct Framed<T> {
    value: T,
    transitions: Option<std::sync::Arc<crate::trace::Window>>,
    namespaces: Option<NamespaceTail>,
}

/// zstd may shrink a frame of alike sockets a lot, but not beyond this: a
/// block that claims to grow more is a bomb, not a frame.
const MAX_RATIO: u64 = 1024;
/// Never more than this, whatever the block says.
const MAX_RAW: u64 = 1 << 30;

/// Decompresses one block, bounded by the size the zstd frame declares and by
/// [`MAX_RATIO`] times its compressed size; an allocation that fails is an
/// error, not an abort.
pub(super) fn decompress(compressed: &[u8]) -> Result<Vec<u8>, String> {
    let cap = (compressed.len() as u64)
        .saturating_mul(MAX_RATIO)
        .saturating_add(1 << 16)
        .min(MAX_RAW);
    let declared = zstd::zstd_safe::get_frame_content_size(compressed)
        .map_err(|_| "not a zstd frame".to_string())?;
    let size = match declared {
        Some(n) if n <= cap => n,
        Some(n) => {
            return Err(format!(
                "declares {n} bytes from {} compressed, more than the {cap} allowed",
                compressed.len()
            ));
        }
        None => cap,
    };
    let mut out = Vec::new();
    out.try_reserve_exact(size as usize)
        .map_err(|_| format!("cannot allocate {size} bytes to decompress it"))?;
    let got = zstd::bulk::Decompressor::new()
        .and_then(|mut d| d.decompress_to_buffer(compressed, &mut out))
        .map_err(|e| {
            if declared.is_none() && e.to_string().contains("too small") {
                format!(
                    "expands to more than the {cap} bytes allowed for {} compressed",
                    compressed.len()
                )
            } else {
                e.to_string()
            }
        })?;
    if declared.is_some_and(|n| n != got as u64) {
        return Err(format!(
            "decompressed to {got} bytes, not the {} it declares",
            size
        ));
    }
    Ok(out)
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
    /// The transitions recorded with the frame the cursor is on.
    transitions: Option<std::sync::Arc<crate::trace::Window>>,
    /// The other network namespaces, as of the frame the cursor is on.
    namespaces: Namespaces,
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
                let framed: Framed<Full> = rec.decode_framed(rec.frames[key].block, key)?;
                let mut full = framed.value;
                let tail = framed.namespaces.unwrap_or_default();
                tail.place_full(&mut full)
                    .map_err(|why| rec.damaged(key, why))?;
                // The cursor may hold another run's table: a key frame
                // starts from none.
                self.namespaces = Namespaces::default();
                tail.apply(&mut self.namespaces);
                self.load(full);
                self.transitions = framed.transitions;
                self.position = Some(key);
                key + 1
            }
        };
        for f in from..=i {
            let framed: Framed<Delta> = rec.decode_framed(rec.frames[f].block, f)?;
            let mut delta = framed.value;
            let tail = framed.namespaces.unwrap_or_default();
            tail.place_delta(&mut delta)
                .map_err(|why| rec.damaged(f, why))?;
            tail.apply(&mut self.namespaces);
            self.apply(delta);
            self.transitions = framed.transitions;
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
            // A recording keeps the wall clock only: ages in a replay are
            // measured on it.
            monotonic: std::time::Duration::from_millis(at.max(0) as u64),
            source: wire::source_kind(self.source),
            source_note: None,
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
            transitions: self.transitions.clone(),
            namespaces: self.namespaces.clone(),
            reused_table: None,
        }
    }
}

fn merge<V>(map: &mut BTreeMap<String, V>, changes: Vec<(String, V)>) {
    map.extend(changes);
}
