//! Recordings: snapshots over time in one append-only file, read back for
//! `replay` and for `snapshot --from` / `diagnose --from`.
//!
//! ```text
//! file   = MAGIC block*
//! MAGIC  = "sockscope-rec" 0x00 0x00 0x01            (16 bytes, last = version)
//! block  = len:u32le kind:u8 at_ms:i64le crc32:u32le payload[len]
//!          crc32 covers kind, at_ms and payload
//! kind   = 0 session (host, kernel, filter; starts each recording run)
//!          1 key frame (every socket, process, counter)
//!          2 delta (sockets that appeared, changed or went; changed counters)
//! payload = zstd(frame [transitions [namespaces]])
//! frame  = postcard(wire::Session | wire::Full | wire::Delta)
//! transitions = postcard(Option<trace::Window>)  the interval's transitions
//! namespaces  = postcard(netns::NamespaceTail)   each socket's and process's
//!          network namespace, and changes to the table of namespaces
//! ```
//!
//! The version stays 1: what came later goes in a tail after the frame, and
//! every reader ignores the bytes after the last tail it knows. A tail is
//! left out when it and those after it would say nothing (`transitions` is
//! then written as `None` when `namespaces` follows), so a recording of the
//! host alone without transitions is what the first readers read. A
//! recording from before a tail reads as if it were empty: before
//! namespaces, everything is in the host's namespace. A reader from before
//! namespaces reads a newer recording's frames with every socket and
//! process in the host's namespace; two sockets that differ only in their
//! namespace are one to it, which in practice only happens to sockets
//! without an inode (TIME_WAIT, SYN_RECV, orphans): inodes are unique
//! across namespaces.
//!
//! Each block goes out in one `write` on an `O_APPEND` file, so a recorder
//! killed at any moment leaves whole blocks and at most one torn one at the
//! end. A block that fails its checksum is damage: readers report its offset
//! and look for the next whole block (a header whose length fits and whose
//! checksum holds), reading on from the next key frame. The recorder cuts
//! off only a torn tail (the start of one block, the file ending inside it)
//! before it appends a new session; damage anywhere is kept as it is.
//!
//! The recorder opens its path once (`O_NOFOLLOW`, `O_EXCL` when creating),
//! checks that descriptor (a regular file with one link), holds an exclusive
//! `flock` on it while it records, and reads, truncates and writes only
//! through it.

mod at;
mod file;
mod netns;
mod reader;
mod wire;
mod writer;

pub use at::{format_span, parse_at, parse_at_between, parse_duration};
pub use reader::{Cursor, Damage, Recording};
pub use writer::{FrameWritten, Recorder, SessionInfo};

use std::time::{Duration, SystemTime};

const MAGIC: &[u8; 16] = b"sockscope-rec\x00\x00\x01";
const HEADER_LEN: usize = 4 + 1 + 8 + 4;
/// Larger blocks are taken for garbage: a key frame of a million sockets
/// compresses to far less.
const MAX_BLOCK: u32 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Session = 0,
    Key = 1,
    Delta = 2,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Session),
            1 => Some(Kind::Key),
            2 => Some(Kind::Delta),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a sockscope recording; not touching it")]
    NotARecording { path: String },
    #[error("{path} was written by a newer sockscope (format version {version})")]
    Version { path: String, version: u8 },
    #[error("{path} holds no complete frame (empty, or cut before the first one was written)")]
    Empty { path: String },
    #[error("{path}: frame {frame} is damaged ({why})")]
    Damaged {
        path: String,
        frame: usize,
        why: String,
    },
    #[error(
        "{path} is {what}, not a regular file; a recording is only read from or written to a regular file"
    )]
    NotAFile { path: String, what: &'static str },
    #[error(
        "{path} is being recorded into by another sockscope (it holds the file's lock); stop that one or record into another file"
    )]
    Locked { path: String },
    #[error(
        "{path} begins like a sockscope recording but holds no whole frame and no frame cut short; not touching it"
    )]
    NoBlocks { path: String },
    #[error("cannot encode a frame: {0}")]
    Encode(String),
}

fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

fn from_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

fn checksum(kind: u8, at_ms: i64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&at_ms.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn encode_header(kind: Kind, at_ms: i64, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4] = kind as u8;
    h[5..13].copy_from_slice(&at_ms.to_le_bytes());
    h[13..17].copy_from_slice(&checksum(kind as u8, at_ms, payload).to_le_bytes());
    h
}

#[cfg(test)]
mod tests;
