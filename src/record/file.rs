//! Opening a recording's path once, as root, in a directory other users may
//! write to: every later check, read and truncation goes through the one
//! descriptor, so a path swapped for a symlink or a FIFO between two steps
//! cannot redirect them.

use super::RecordError;
use rustix::fs::{FileType, FlockOperation, Mode, OFlags};
use std::fs::File;
use std::path::Path;

/// Opens a recording to read. Symlinks are followed (reading harms nothing),
/// but the open does not wait on a FIFO, and anything but a regular file is
/// refused at once.
pub(super) fn open_to_read(path: &Path) -> Result<File, RecordError> {
    let name = path.display().to_string();
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RecordError::Open {
        path: name.clone(),
        source: e.into(),
    })?;
    let file = File::from(fd);
    regular_only(&file, &name)?;
    blocking(&file, &name)?;
    Ok(file)
}

/// A recording opened to write, with the exclusive lock held for as long as
/// the `File` lives.
pub(super) struct Opened {
    pub file: File,
    /// False when the file was there already.
    pub created: bool,
}

/// Opens `path` to append a run: an existing regular file (never through a
/// symlink), or a new one made with `O_EXCL`. Takes an exclusive `flock` so a
/// second recorder on the same file is refused instead of interleaving.
pub(super) fn open_to_record(path: &Path) -> Result<Opened, RecordError> {
    let name = path.display().to_string();
    let open_err = |e: rustix::io::Errno| RecordError::Open {
        path: name.clone(),
        source: if e == rustix::io::Errno::LOOP {
            std::io::Error::other("it is a symbolic link, which a recording never follows")
        } else {
            e.into()
        },
    };
    let flags = OFlags::RDWR | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    // The path can appear or vanish between the two opens; each retry
    // starts over, and neither open follows a symlink.
    let mut attempt = 0;
    let (fd, created) = loop {
        attempt += 1;
        match rustix::fs::open(path, flags | OFlags::NONBLOCK, Mode::empty()) {
            Ok(fd) => break (fd, false),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(open_err(e)),
        }
        match rustix::fs::open(
            path,
            flags | OFlags::CREATE | OFlags::EXCL,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(fd) => break (fd, true),
            Err(rustix::io::Errno::EXIST) if attempt < 5 => {}
            Err(e) => return Err(open_err(e)),
        }
    };
    let file = File::from(fd);
    regular_only(&file, &name)?;
    let st = rustix::fs::fstat(&file).map_err(|e| RecordError::Open {
        path: name.clone(),
        source: e.into(),
    })?;
    if st.st_nlink > 1 {
        // Another name for the same file, perhaps one its owner did not mean
        // us to write.
        return Err(RecordError::Open {
            path: name,
            source: std::io::Error::other(format!(
                "it has {} hard links; a recording must have one",
                st.st_nlink
            )),
        });
    }
    blocking(&file, &name)?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Err(RecordError::Locked { path: name }),
        Err(e) => {
            return Err(RecordError::Open {
                path: name,
                source: e.into(),
            });
        }
    }
    Ok(Opened { file, created })
}

fn regular_only(file: &File, name: &str) -> Result<(), RecordError> {
    let st = rustix::fs::fstat(file).map_err(|e| RecordError::Open {
        path: name.to_string(),
        source: e.into(),
    })?;
    let what = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => return Ok(()),
        FileType::Fifo => "a FIFO",
        FileType::Directory => "a directory",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        _ => "not a regular file",
    };
    Err(RecordError::NotAFile {
        path: name.to_string(),
        what,
    })
}

/// Clears `O_NONBLOCK`, which only kept the open from waiting.
fn blocking(file: &File, name: &str) -> Result<(), RecordError> {
    let flags = rustix::fs::fcntl_getfl(file)
        .and_then(|f| rustix::fs::fcntl_setfl(file, f - OFlags::NONBLOCK));
    flags.map_err(|e| RecordError::Open {
        path: name.to_string(),
        source: e.into(),
    })
}
