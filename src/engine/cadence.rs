//! How often to sample: the user's interval, stretched so that sampling
//! costs at most [`MAX_SHARE`] of one core; and, on large tables, the
//! trouble states every interval with the full dump less often.
//!
//! Costs are CPU time of the whole process between two samples (collection
//! on several threads, digestion, and the UI drawing what came), read from
//! `CLOCK_PROCESS_CPUTIME_ID`, which cannot fail.

use super::source::Refresh;
use std::time::{Duration, Instant};

/// The share of one core sampling may use, as a divisor. Every cost charged
/// is the whole process's CPU time (drawing and key presses included), so
/// this is what the process uses on a steady load, give or take what the
/// smoothing has not caught up with yet. Measured on the 130k benchmark
/// load: at 11 (9.09%), 8.8-8.9% over one and over ten minutes, and up to
/// 9.27% over two minutes beside a second monitor (each making the
/// other's reads cost more as the minutes went); at 10.5 (9.52%), 9.09%
/// alone but 9.94-10.02% beside a second monitor. 10.75 (9.30%) keeps that
/// case under the 10% target and still gives the trouble states'
/// refreshes 2% more CPU than 11: their interval is what the age of the
/// trouble states on screen is made of.
pub const MAX_SHARE: f64 = 10.75;

/// Above this many sockets the trouble states are refreshed on their own
/// (when the source can): below it, a full dump every interval is cheap.
pub const SPLIT_ABOVE: usize = 20_000;

/// The most of the budget trouble-state refreshes may take when split.
/// They take less when the full dumps need more to run every
/// [`MAX_FULL_INTERVAL`] (at 130k sockets a full dump with its owner scan
/// costs as much as six or seven trouble refreshes: about 11% of the
/// budget once a minute), and never less than [`MIN_TROUBLE_SHARE`].
pub const TROUBLE_SHARE: f64 = 0.92;

/// The least of the budget trouble-state refreshes keep, however costly
/// the full dumps. A full dump that needs more than the rest to run once
/// every [`MAX_FULL_INTERVAL`] still runs that often: the budget is not
/// held then (6 s of CPU per full dump, say), the trouble states' age is.
pub const MIN_TROUBLE_SHARE: f64 = 0.5;

/// The longest a full dump may wait when the trouble states take the budget.
pub const MAX_FULL_INTERVAL: Duration = Duration::from_secs(60);

/// Trouble-refresh costs are smoothed over several samples: one slow
/// sample (a page-cache miss, a busy neighbour) does not stretch the next
/// interval by much. The interval is what the age of the trouble states on
/// screen is made of; at 0.3, one refresh that cost a third more stretched
/// it by a tenth. The first samples are averaged instead (see [`Smoothed`]).
const SMOOTHING: f64 = 0.15;

/// Full-dump costs, one sample a minute on a split table, follow a lasting
/// rise faster: the trouble refreshes take all the budget the full dumps
/// leave, so a full dump's cost underestimated is budget overrun.
const SMOOTHING_FULL: f64 = 0.3;

#[derive(Debug, Clone)]
pub struct Cadence {
    base: Duration,
    interval: Duration,
    full_interval: Duration,
    split: bool,
    last_full: Option<Instant>,
    cost_full: Smoothed,
    cost_trouble: Smoothed,
    meter: CpuMeter,
}

/// A cost smoothed exponentially, after a plain mean of the first samples:
/// the first refreshes after launch cost more than the next ones (the first
/// table drawn, caches cold), and an exponential average started on them
/// would take tens of refreshes to forget them. The mean weighs the n-th
/// sample 1/n until that is less than the smoothing factor, so the
/// interval the user sees settles within the first few seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Smoothed {
    cost: Duration,
    samples: u32,
}

impl Smoothed {
    fn add(&mut self, cost: Duration, smoothing: f64) {
        self.samples = self.samples.saturating_add(1);
        let weight = (1.0 / f64::from(self.samples)).max(smoothing);
        self.cost = self.cost.mul_f64(1.0 - weight) + cost.mul_f64(weight);
    }
}

impl Cadence {
    pub fn new(base: Duration) -> Cadence {
        Cadence {
            base,
            interval: base,
            full_interval: base,
            split: false,
            last_full: None,
            cost_full: Smoothed::default(),
            cost_trouble: Smoothed::default(),
            meter: CpuMeter::new(),
        }
    }

    /// The user's interval changed (`+`/`-`).
    pub fn set_base(&mut self, base: Duration) {
        self.base = base;
        self.replan();
    }

    pub fn base(&self) -> Duration {
        self.base
    }

    /// Time between two samples now.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Time between two full dumps (the interval, unless split).
    pub fn full_interval(&self) -> Duration {
        self.full_interval
    }

    /// True when the trouble states are refreshed on their own.
    pub fn split(&self) -> bool {
        self.split
    }

    /// Which sample is due now.
    pub fn due(&self) -> Refresh {
        self.due_at(Instant::now())
    }

    /// Which sample is due at `now`: a full one once the full interval has
    /// passed since the last (within half an interval: the next tick would
    /// be late), else the trouble states.
    pub fn due_at(&self, now: Instant) -> Refresh {
        match self.last_full {
            Some(t)
                if self.split
                    && now.saturating_duration_since(t) + self.interval / 2
                        < self.full_interval =>
            {
                Refresh::Trouble
            }
            _ => Refresh::Full,
        }
    }

    /// A sample failed: the next one is a full one, costs as they were.
    pub fn failed(&mut self) {
        self.last_full = None;
    }

    /// A sample of `sockets` was taken. The CPU the process used since the
    /// previous sample is charged to this one.
    /// The budget is CPU time, not wall time: on a busy machine a sample
    /// takes longer without costing more.
    pub fn sampled(&mut self, refresh: Refresh, sockets: usize) {
        let cpu = self.meter.take();
        self.charge(refresh, sockets, cpu, Instant::now());
    }

    /// [`Cadence::sampled`] with the cost and the time given (tests).
    pub fn charge(&mut self, refresh: Refresh, sockets: usize, cost: Duration, now: Instant) {
        let (slot, smoothing) = match refresh {
            Refresh::Full => {
                self.last_full = Some(now);
                self.split = sockets > SPLIT_ABOVE;
                (&mut self.cost_full, SMOOTHING_FULL)
            }
            Refresh::Trouble => (&mut self.cost_trouble, SMOOTHING),
        };
        slot.add(cost, smoothing);
        self.replan();
    }

    fn replan(&mut self) {
        let share = 1.0 / MAX_SHARE;
        let full = self.cost_full.cost;
        if !self.split {
            self.interval = self.base.max(full.mul_f64(MAX_SHARE));
            self.full_interval = self.interval;
            return;
        }
        // Fresh trouble states are what an incident needs: their refreshes
        // may take most of the budget, all but what the full dumps need to
        // run once every MAX_FULL_INTERVAL; the full dumps take what is left.
        let trouble = self.cost_trouble.cost;
        let full_needs = full.as_secs_f64() / MAX_FULL_INTERVAL.as_secs_f64();
        let trouble_share = (share * TROUBLE_SHARE)
            .min(share - full_needs)
            .max(share * MIN_TROUBLE_SHARE);
        self.interval = self.base.max(Duration::from_secs_f64(
            trouble.as_secs_f64() / trouble_share,
        ));
        let left = share - trouble.as_secs_f64() / self.interval.as_secs_f64();
        let floor = share - trouble_share;
        let full_every = Duration::from_secs_f64(full.as_secs_f64() / left.max(floor));
        self.full_interval = full_every.max(self.interval).min(MAX_FULL_INTERVAL);
    }
}

/// CPU time used between two readings, bounded by what the machine's cores
/// could have used in the wall time between them.
#[derive(Debug, Clone)]
pub(super) struct CpuMeter {
    cpu: Duration,
    wall: Instant,
    cores: u32,
}

impl CpuMeter {
    pub(super) fn new() -> CpuMeter {
        CpuMeter {
            cpu: crate::collect::clock::process_cpu(),
            wall: Instant::now(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        }
    }

    /// A meter whose last reading was `cpu` (a reading that failed, say).
    #[cfg(test)]
    pub(super) fn from(cpu: Duration) -> CpuMeter {
        CpuMeter {
            cpu,
            ..CpuMeter::new()
        }
    }

    pub(super) fn take(&mut self) -> Duration {
        let cpu = crate::collect::clock::process_cpu();
        let wall = Instant::now();
        let used = cpu.saturating_sub(self.cpu);
        let bound = wall.duration_since(self.wall) * self.cores;
        self.cpu = cpu;
        self.wall = wall;
        used.min(bound)
    }
}
