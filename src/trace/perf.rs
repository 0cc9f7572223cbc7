//! The tracepoints read through `perf_event_open`: per CPU, one ring buffer
//! that every tracepoint of that CPU writes into, holding raw tracepoint
//! records. No BPF program: nothing to compile or verify, and the records
//! are exactly what tracefs describes.

use super::format::{Event, Layouts};
use super::tracefs::Found;
use perf_event::events::Tracepoint;
use perf_event::{Builder, Clock, SampleFlag, Sampler};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// `PERF_RECORD_LOST`: the kernel dropped records because the buffer was full.
const RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`.
const RECORD_SAMPLE: u32 = 9;
/// `PERF_RECORD_LOST_SAMPLES`.
const RECORD_LOST_SAMPLES: u32 = 13;
/// `PERF_EVENT_IOC_SET_OUTPUT` (`_IO('$', 5)`).
const IOC_SET_OUTPUT: libc::c_ulong = 0x2405;

/// Bytes of ring buffer per CPU: at 12,000 transitions a second (about 120
/// bytes each) and a drain every 50 ms, a 512 KiB buffer is 7 times what
/// one drain takes.
pub const RING_BYTES: usize = 512 * 1024;

/// A ring wakes its waiter once this much is in it: a burst of transitions
/// is drained as it comes, not at the next tick, before the ring fills.
pub const WAKE_AT: usize = RING_BYTES / 4;

/// The open rings, one per CPU.
pub struct Rings {
    rings: Vec<Sampler>,
    /// The other tracepoints of each CPU, writing into that CPU's ring.
    _followers: Vec<perf_event::Counter>,
    layouts: Layouts,
    lost: u64,
}

impl std::fmt::Debug for Rings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rings")
            .field("cpus", &self.rings.len())
            .field("lost", &self.lost)
            .finish()
    }
}

/// Which step of opening the rings failed.
fn ctx(step: &'static str) -> impl FnOnce(std::io::Error) -> (&'static str, std::io::Error) {
    move |e| (step, e)
}

pub fn cpus() -> Vec<usize> {
    // Online CPUs: "0-3,6"
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.split('-').map(|n| n.trim().parse::<usize>());
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), Some(Ok(b))) => out.extend(a..=b),
            (Some(Ok(a)), None) => out.push(a),
            _ => {}
        }
    }
    if out.is_empty() {
        out = (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    out
}

fn builder(id: u64, cpu: usize) -> Builder<'static> {
    let mut b = Builder::new(Tracepoint::with_id(id));
    b.any_pid()
        .one_cpu(cpu)
        .include_kernel()
        .sample_period(1)
        .sample(SampleFlag::TID | SampleFlag::TIME | SampleFlag::RAW)
        .clockid(Clock::MONOTONIC)
        .enabled(false);
    // CLOCK_BOOTTIME is refused for tracepoints (not NMI-safe): records are
    // stamped with CLOCK_MONOTONIC and moved onto BOOTTIME when drained.
    b
}

impl Rings {
    /// Opens every found tracepoint on every online CPU.
    pub fn open(found: &[Found]) -> Result<Rings, (&'static str, std::io::Error)> {
        let mut layouts = Layouts::default();
        for f in found {
            layouts.insert(f.index, f.id as u16, f.layout.clone());
        }
        let mut rings = Vec::new();
        let mut followers = Vec::new();
        for cpu in cpus() {
            let mut it = found.iter();
            let Some(first) = it.next() else { break };
            let leader = builder(first.id, cpu)
                .wakeup_watermark(WAKE_AT)
                .build()
                .map_err(ctx("open"))?;
            let mut ring = leader.sampled(RING_BYTES).map_err(ctx("mmap"))?;
            for f in it {
                let mut c = builder(f.id, cpu).build().map_err(ctx("open"))?;
                // SAFETY: both descriptors are open perf events owned by this
                // struct for as long as the ring; SET_OUTPUT only tells the
                // kernel to write `c`'s records into the ring's buffer, and
                // takes no pointer.
                let rc = unsafe {
                    libc::ioctl(
                        c.as_raw_fd(),
                        IOC_SET_OUTPUT as _,
                        ring.as_counter().as_raw_fd(),
                    )
                };
                if rc != 0 {
                    return Err(("redirect", std::io::Error::last_os_error()));
                }
                c.enable().map_err(ctx("enable"))?;
                followers.push(c);
            }
            ring.as_counter_mut().enable().map_err(ctx("enable"))?;
            rings.push(ring);
        }
        Ok(Rings {
            rings,
            _followers: followers,
            layouts,
            lost: 0,
        })
    }

    /// Records the kernel dropped so far because a ring was full.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Waits until a ring holds [`WAKE_AT`] bytes, `wake` can be read, or
    /// `timeout` has passed. When `poll` fails, or a descriptor reports an
    /// error or a hang-up (which it would again at once), it sleeps out the
    /// timeout instead: never a busy loop.
    pub fn wait(&self, wake: std::os::fd::BorrowedFd<'_>, timeout: Duration) {
        use rustix::event::{PollFd, PollFlags, Timespec};
        let mut fds: Vec<PollFd> = self
            .rings
            .iter()
            .map(|r| {
                // SAFETY: the descriptor is the sampler's, which `self.rings`
                // owns and keeps open for as long as `self` is borrowed,
                // which outlives this call's `fds`.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(r.as_raw_fd()) };
                PollFd::from_borrowed_fd(fd, PollFlags::IN)
            })
            .collect();
        fds.push(PollFd::from_borrowed_fd(wake, PollFlags::IN));
        let spec = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let broken = PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL;
        if rustix::event::poll(&mut fds, Some(&spec)).is_err()
            || fds.iter().any(|f| f.revents().intersects(broken))
        {
            std::thread::sleep(timeout);
        }
    }

    /// Takes every record the rings hold, oldest first per CPU.
    pub fn drain(&mut self, mut each: impl FnMut(Event)) {
        let offset =
            crate::collect::clock::boottime().saturating_sub(crate::collect::clock::monotonic());
        for ring in &mut self.rings {
            while let Some(record) = ring.next_record() {
                let ty = record.ty();
                let data = record.to_contiguous();
                match ty {
                    RECORD_SAMPLE => {
                        if let Some(mut e) = sample(&self.layouts, &data) {
                            e.time += offset;
                            each(e);
                        }
                    }
                    RECORD_LOST => {
                        // u64 id, u64 lost
                        if let Some(b) = data.get(8..16) {
                            self.lost += u64::from_ne_bytes(b.try_into().unwrap_or_default());
                        }
                    }
                    RECORD_LOST_SAMPLES => {
                        if let Some(b) = data.get(0..8) {
                            self.lost += u64::from_ne_bytes(b.try_into().unwrap_or_default());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A sample record with `TID | TIME | RAW`: u32 pid, u32 tid, u64 time,
/// u32 size, the raw tracepoint record.
pub fn sample(layouts: &Layouts, data: &[u8]) -> Option<Event> {
    let pid = u32::from_ne_bytes(data.get(0..4)?.try_into().ok()?);
    let time = u64::from_ne_bytes(data.get(8..16)?.try_into().ok()?);
    let size = u32::from_ne_bytes(data.get(16..20)?.try_into().ok()?) as usize;
    let raw = data.get(20..20 + size)?;
    layouts.decode(raw, Duration::from_nanos(time), pid)
}
