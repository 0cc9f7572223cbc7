//! What sockscope remembers between samples: per-state counts over time,
//! per-process totals for trend columns, and since when each connection has
//! been in its current state.

use super::counters::CounterHistory;
use super::group::{self, StateCounts};
use super::snapshot::Snapshot;
use super::socket::{ConnKey, TcpState};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the history knows of a connection's time in its state
/// ([`History::seen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// [`History::first_seen`].
    pub first: (SystemTime, bool),
    /// [`History::is_new`].
    pub is_new: bool,
}

/// One sample of the machine-wide state counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The wall clock of the sample, for display.
    pub at: SystemTime,
    /// Its steady clock ([`Snapshot::monotonic`]): what every age, rate and
    /// growth figure is measured on.
    pub mono: Duration,
    pub counts: StateCounts,
}

/// How much history is kept: ten minutes at the shortest interval (0.5 s),
/// more at longer ones, in a few tens of KiB.
pub const MAX_SAMPLES: usize = 1200;
/// Samples kept per process for its trend column and growth figure: at
/// `record`'s shortest intervals (200 ms) still 30 s, twice [`GROWTH_WINDOW`].
pub const TREND_SAMPLES: usize = 150;

type IdMap<V> = HashMap<ConnId, V, foldhash::fast::RandomState>;
type SinceMap = IdMap<Since>;
type TrafficMap = IdMap<Traffic>;
type ConnRates = IdMap<VecDeque<Rate>>;

/// A connection in the per-connection maps: two independently seeded
/// 64-bit hashes of its [`ConnKey`]. 16 bytes instead of the key's 88: at
/// 130k connections the maps take a quarter of the memory, and a lookup
/// compares two words instead of two socket addresses, which made the
/// lookups the history's largest cost. Two connections share an id with a
/// chance of about n²/2¹²⁹ (the seeds are random per run, so no one can
/// aim at a collision); it would swap two ages, nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnId(u64, u64);

/// The two seeded hashers of [`ConnId`]s, shared by a history's clones.
#[derive(Debug, Clone, Default)]
struct Ids {
    a: foldhash::quality::RandomState,
    b: foldhash::quality::RandomState,
}

impl Ids {
    fn of(&self, key: &ConnKey) -> ConnId {
        use std::hash::BuildHasher;
        let hash = |state: &foldhash::quality::RandomState| {
            let mut h = state.build_hasher();
            feed(&mut h, key);
            std::hash::Hasher::finish(&h)
        };
        ConnId(hash(&self.a), hash(&self.b))
    }
}

/// Every field of `key` into `h`, as integers (hashing `SocketAddr`s through
/// their `Hash` impls cost more than the lookups).
fn feed(h: &mut impl std::hash::Hasher, key: &ConnKey) {
    h.write_u64(key.netns);
    h.write_u64(key.inode);
    h.write_u8(key.proto as u8);
    for addr in [key.local, key.remote] {
        match addr {
            std::net::SocketAddr::V4(a) => {
                h.write_u8(4);
                h.write_u32(a.ip().to_bits());
                h.write_u16(a.port());
            }
            std::net::SocketAddr::V6(a) => {
                h.write_u8(6);
                h.write_u128(a.ip().to_bits());
                h.write_u16(a.port());
                h.write_u32(a.flowinfo());
                h.write_u32(a.scope_id());
            }
        }
    }
}

/// The sockets a trouble-state refresh does not cover: they keep what the
/// last full dump said of them.
fn stable(s: &crate::model::Socket) -> bool {
    s.proto == crate::model::Proto::Udp || s.state == TcpState::Established
}

#[derive(Debug, Clone, Copy)]
struct Since {
    state: TcpState,
    /// Steady clock of the sample that first showed it in `state`.
    first: Duration,
    /// When the transitions saw it enter `state` (exact, unlike `first`,
    /// the sample that first showed it in `state`).
    entered: Option<Duration>,
}

/// The entries the newest record made, by the position of their socket in
/// its sample's table. The findings that follow ask for the same sockets
/// (every CLOSE_WAIT and FIN_WAIT2): by position, a lookup hashes nothing
/// and reads the entries in order, instead of a random read into the maps
/// for each (at 130k sockets those reads missed the caches the dump had
/// just filled, and were a tenth of a trouble refresh's user time).
#[derive(Debug, Default)]
struct Latest {
    /// The sample's clock and its table (address and length): a socket of
    /// another table is looked up in the maps.
    mono: Duration,
    table: usize,
    len: usize,
    /// Position → 1 + its index in `entries`; 0 (or past the end) for a
    /// socket not recorded by position (one a trouble refresh kept from the
    /// full dump, whose entry is in the maps).
    slots: Vec<u32>,
    entries: Vec<(Mark, Since)>,
}

/// Enough of a socket to tell that an entry by position is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    inode: u64,
    ports: u32,
    state: TcpState,
}

impl Mark {
    fn of(s: &crate::model::Socket) -> Mark {
        Mark {
            inode: s.inode,
            ports: u32::from(s.local.port()) << 16 | u32::from(s.remote.port()),
            state: s.state,
        }
    }
}

impl Latest {
    /// The entry recorded for `s`, when `s` is in the recorded table.
    fn get(
        &self,
        sockets: &[crate::model::Socket],
        mono: Duration,
        s: &crate::model::Socket,
    ) -> Option<&Since> {
        if mono != self.mono || sockets.len() != self.len || sockets.as_ptr() as usize != self.table
        {
            return None;
        }
        let i = position(sockets, s)?;
        let slot = *self.slots.get(i)?;
        let (mark, since) = self.entries.get((slot as usize).checked_sub(1)?)?;
        (*mark == Mark::of(s)).then_some(since)
    }
}

/// Where `s` is in `sockets`, when it is one of them (by address: no
/// comparison of contents).
fn position(sockets: &[crate::model::Socket], s: &crate::model::Socket) -> Option<usize> {
    let size = std::mem::size_of::<crate::model::Socket>();
    let offset =
        (s as *const crate::model::Socket as usize).checked_sub(sockets.as_ptr() as usize)?;
    let i = offset / size;
    (offset % size == 0 && sockets.get(i).is_some_and(|at| std::ptr::eq(at, s))).then_some(i)
}

/// What `tcp_info` said of a connection at the last sample that had it: a
/// map of its own, empty when the dumps leave `tcp_info` out (large tables).
#[derive(Debug, Clone, Copy)]
struct Traffic {
    /// (bytes received, bytes acked).
    bytes: (u64, u64),
    /// Throughput between the last two samples.
    rate: Rate,
}

/// Bytes per second in (received) and out (sent and acknowledged), from the
/// `tcp_info` byte counters of two samples: no packet capture needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub in_bps: u64,
    pub out_bps: u64,
}

impl Rate {
    pub fn total(&self) -> u64 {
        self.in_bps + self.out_bps
    }

    fn add(&mut self, other: Rate) {
        self.in_bps += other.in_bps;
        self.out_bps += other.out_bps;
    }
}

/// The shortest stretch of samples a growth figure is fitted over.
pub const GROWTH_WINDOW: Duration = Duration::from_secs(15);
/// The fewest samples a growth figure is fitted through.
pub const GROWTH_SAMPLES: usize = 5;

/// A least-squares growth figure: the slope, its uncertainty, and what it
/// was fitted over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Change per minute (the slope of the fitted line).
    pub per_min: f64,
    /// About two standard errors of `per_min`: the slope is within
    /// `per_min ± margin_per_min` at roughly 95%.
    pub margin_per_min: f64,
    /// Time between the oldest and newest sample fitted.
    pub window: Duration,
    pub samples: usize,
}

impl Growth {
    /// `points`: (age before the newest sample, value), newest first.
    fn fit(points: &[(Duration, f64)], window: Duration) -> Growth {
        let n = points.len() as f64;
        // x in seconds, increasing with time.
        let xs: Vec<f64> = points
            .iter()
            .map(|(age, _)| window.as_secs_f64() - age.as_secs_f64())
            .collect();
        let mean_x = xs.iter().sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = xs.iter().map(|x| (x - mean_x).powi(2)).sum();
        let sxy: f64 = xs
            .iter()
            .zip(points)
            .map(|(x, (_, y))| (x - mean_x) * (y - mean_y))
            .sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let residuals: f64 = xs
            .iter()
            .zip(points)
            .map(|(x, (_, y))| (y - (mean_y + slope * (x - mean_x))).powi(2))
            .sum();
        let se = if sxx > 0.0 && n > 2.0 {
            (residuals / (n - 2.0) / sxx).sqrt()
        } else {
            0.0
        };
        Growth {
            per_min: slope * 60.0,
            margin_per_min: 2.0 * se * 60.0,
            window,
            samples: points.len(),
        }
    }

    /// Growing beyond doubt: the slope is positive past its margin and adds
    /// up to at least one socket over the window.
    pub fn growing(&self) -> bool {
        let over_window = self.per_min / 60.0 * self.window.as_secs_f64();
        self.per_min > self.margin_per_min && over_window >= 1.0
    }

    /// `growing by 15/min (±3, over 15s)`, `shrinking by ...`, or `not
    /// growing (over 15s)`: the figure with its uncertainty and window.
    pub fn describe(&self) -> String {
        let over = super::format::format_age(self.window);
        if self.growing() {
            format!(
                "growing by {:.0}/min (±{:.0}, over {over})",
                self.per_min, self.margin_per_min
            )
        } else if self.shrinking() {
            format!(
                "shrinking by {:.0}/min (±{:.0}, over {over})",
                -self.per_min, self.margin_per_min
            )
        } else {
            format!("not growing (over {over})")
        }
    }

    /// Shrinking beyond doubt (the mirror of [`Growth::growing`]).
    pub fn shrinking(&self) -> bool {
        let over_window = -self.per_min / 60.0 * self.window.as_secs_f64();
        -self.per_min > self.margin_per_min && over_window >= 1.0
    }
}

/// One process's sockets in one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessSample {
    pub total: u32,
    pub close_wait: u32,
    /// Throughput of its connections; None without `tcp_info`.
    pub rate: Option<Rate>,
}

/// One service's (see [`crate::model::holders::Service`]) trouble in one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceSample {
    pub close_wait: u32,
    /// Descriptors of TCP sockets that are in no socket table any more.
    pub closed_sockets: u32,
}

#[derive(Debug, Clone, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    /// pid → its socket counts per sample, newest last; aligned with the
    /// newest entries of `samples`.
    process_totals: foldhash::HashMap<Option<u32>, VecDeque<ProcessSample>>,
    /// Service id (its lowest pid; None: no holder) → its trouble per sample,
    /// newest last. A socket shared by a service's processes counts once.
    service_totals: foldhash::HashMap<Option<u32>, VecDeque<ServiceSample>>,
    /// Kernel counters over time, for rates.
    pub counters: CounterHistory,
    /// Throughput per sample of the connections that carried any, for the
    /// detail pane's sparkline; dropped when the connection goes.
    /// Shared with the analyses that still show an older sample, so that a
    /// new sample never copies it: each record builds the next map.
    conn_rates: Arc<ConnRates>,
    /// The byte counters and throughput of the connections with `tcp_info`.
    traffic: Arc<TrafficMap>,
    /// How connections are named in these maps.
    ids: Ids,
    /// connection → (state, first seen in that state): the connections in
    /// states a trouble-state refresh covers (every TCP state but
    /// ESTABLISHED)...
    /// foldhash: these maps are rebuilt for every socket at every refresh.
    since: Arc<SinceMap>,
    /// ...and the rest (ESTABLISHED, UDP), rebuilt from full dumps only: a
    /// trouble-state refresh leaves them as the last full dump saw them.
    since_stable: Arc<SinceMap>,
    /// When the first sample was taken (steady clock): anything seen then
    /// may be older.
    started: Option<Duration>,
    /// State entries the transitions saw, for the next record: they make
    /// the ages of those connections exact.
    exact: Arc<crate::trace::sample::Exact>,
    /// The newest record's entries by position ([`History::seen_in`]).
    latest: Arc<Latest>,
}

impl History {
    /// The exact state entries the next record uses (from the transitions
    /// of the same sample).
    pub fn set_exact(&mut self, exact: Arc<crate::trace::sample::Exact>) {
        self.exact = exact;
    }

    /// Records a snapshot. Cost is linear in its sockets.
    pub fn record(&mut self, snap: &Snapshot) {
        self.record_sample(snap, false);
    }

    /// Records a sample whose ESTABLISHED connections and UDP sockets are
    /// the last full dump's (a trouble-state refresh merged into it): their
    /// ages and rates stay as that dump left them, and only the rest is
    /// looked at, so this costs what the fresh part holds.
    pub fn record_partial(&mut self, snap: &Snapshot) {
        self.record_sample(snap, true);
    }

    fn record_sample(&mut self, snap: &Snapshot, partial: bool) {
        let mono = snap.monotonic;
        self.started.get_or_insert(mono);
        let elapsed = self
            .samples
            .back()
            .and_then(|prev| mono.checked_sub(prev.mono))
            .filter(|d| !d.is_zero());
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            at: snap.taken_at,
            mono,
            counts: group::by_state(&snap.sockets),
        });
        let (process_rates, mut services) = self.record_connections(snap, elapsed, partial);

        let groups = group::by_process(snap, &snap.sockets);
        let mut seen: foldhash::HashSet<Option<u32>> =
            foldhash::HashSet::with_capacity_and_hasher(groups.len(), Default::default());
        let depth = self.samples.len().min(TREND_SAMPLES);
        for g in &groups {
            seen.insert(g.pid);
            let series = self.process_totals.entry(g.pid).or_default();
            let sample = ProcessSample {
                total: g.counts.total(),
                close_wait: g.counts.get(TcpState::CloseWait),
                rate: process_rates.get(&g.pid).copied(),
            };
            push_bounded(series, sample, depth);
        }
        // A process that holds nothing now records a zero, and is forgotten
        // once its whole window is zeros.
        self.process_totals.retain(|pid, series| {
            if !seen.contains(pid) {
                push_bounded(series, ProcessSample::default(), depth);
            }
            series.iter().any(|n| n.total > 0)
        });
        for p in snap.processes.values() {
            if p.closed_sockets > 0
                && let Some(svc) = snap.holders().service_of(p.pid)
            {
                services.entry(Some(svc.id)).or_default().closed_sockets += p.closed_sockets;
            }
        }
        for (id, sample) in &services {
            push_bounded(self.service_totals.entry(*id).or_default(), *sample, depth);
        }
        self.service_totals.retain(|id, series| {
            if !services.contains_key(id) {
                push_bounded(series, ServiceSample::default(), depth);
            }
            series.iter().any(|s| *s != ServiceSample::default())
        });
        // Counter rates are differences over time: the steady clock too.
        self.counters
            .record(SystemTime::UNIX_EPOCH + mono, &snap.system.counters);
    }

    /// Updates each connection's first-seen time and throughput; returns the
    /// throughput per owning process (first owner), for processes whose
    /// connections have `tcp_info`.
    fn record_connections(
        &mut self,
        snap: &Snapshot,
        elapsed: Option<Duration>,
        partial: bool,
    ) -> (
        foldhash::HashMap<Option<u32>, Rate>,
        foldhash::HashMap<Option<u32>, ServiceSample>,
    ) {
        let at = snap.monotonic;
        let mut services: foldhash::HashMap<Option<u32>, ServiceSample> = Default::default();
        let mut per_process: foldhash::HashMap<Option<u32>, Rate> = Default::default();
        let old = Arc::clone(&self.since);
        let old_stable = Arc::clone(&self.since_stable);
        let old_rates = Arc::clone(&self.conn_rates);
        let old_traffic = Arc::clone(&self.traffic);
        let mut since = SinceMap::with_capacity_and_hasher(old.len(), Default::default());
        let mut since_stable = (!partial)
            .then(|| SinceMap::with_capacity_and_hasher(old_stable.len(), Default::default()));
        let mut rates = ConnRates::default();
        let mut traffic = TrafficMap::default();
        // A trouble refresh: the ids of the sockets it looks at (not the kept
        // part) and what the last record said of them, in tight passes
        // first: the lookups do not depend on each other, so their cache
        // misses overlap instead of coming one at a time in the loop below.
        // A full record (once a minute) looks them up as it goes, rather
        // than hold a copy of every entry of 130k sockets meanwhile.
        let lookup = |id: &ConnId| {
            // A connection may have moved between the two maps
            // (ESTABLISHED to CLOSE_WAIT): look in both.
            old.get(id).or_else(|| old_stable.get(id)).copied()
        };
        let looked: Vec<(usize, ConnId)> = if partial {
            snap.sockets
                .iter()
                .enumerate()
                .filter(|(_, s)| !stable(s))
                .map(|(i, s)| (i, self.ids.of(&s.key())))
                .collect()
        } else {
            Vec::new()
        };
        let before: Vec<Option<Since>> = looked.iter().map(|(_, id)| lookup(id)).collect();
        let mut latest = Latest {
            mono: at,
            table: snap.sockets.as_ptr() as usize,
            len: snap.sockets.len(),
            slots: Vec::new(),
            entries: Vec::new(),
        };
        let mut next = looked.iter().zip(before).peekable();
        let mut fresh: Vec<ConnId> = Vec::with_capacity(old.len());
        for (i, s) in snap.sockets.iter().enumerate() {
            if s.state == TcpState::CloseWait && s.proto == crate::model::Proto::Tcp {
                services
                    .entry(super::holders::service_id(snap, s))
                    .or_default()
                    .close_wait += 1;
            }
            let is_stable = stable(s);
            let (id, prev) = if !partial {
                let id = self.ids.of(&s.key());
                (id, lookup(&id))
            } else if let Some(((_, id), prev)) = next.next_if(|((at, _), _)| *at == i) {
                (*id, prev)
            } else {
                // A trouble refresh's kept socket, as the last full dump
                // left it: its rate still counts for its process, its
                // series stays.
                if !old_traffic.is_empty() {
                    let id = self.ids.of(&s.key());
                    if let Some(t) = old_traffic.get(&id) {
                        per_process
                            .entry(s.owners.first().map(|o| o.pid))
                            .or_default()
                            .add(t.rate);
                        traffic.insert(id, *t);
                    }
                    if let Some(series) = old_rates.get(&id) {
                        rates.insert(id, series.clone());
                    }
                }
                continue;
            };
            let mut entry = match prev {
                Some(p) if p.state == s.state => p,
                _ => Since {
                    state: s.state,
                    first: at,
                    entered: None,
                },
            };
            if entry.entered.is_none()
                && let Some(&(state, since)) = self.exact.get(&(s.local, s.remote))
                && state == s.state
            {
                entry.entered = Some(since.min(at));
            }
            if let Some(t) = &s.tcp_info {
                let bytes = (t.bytes_received, t.bytes_acked);
                let rate = match (old_traffic.get(&id), elapsed) {
                    (Some(old), Some(dt)) => {
                        let secs = dt.as_secs_f64();
                        Rate {
                            in_bps: (bytes.0.saturating_sub(old.bytes.0) as f64 / secs) as u64,
                            out_bps: (bytes.1.saturating_sub(old.bytes.1) as f64 / secs) as u64,
                        }
                    }
                    // A first sight counts as idle, so that a process's sum
                    // does not go missing when one connection is new.
                    _ => Rate::default(),
                };
                traffic.insert(id, Traffic { bytes, rate });
                per_process
                    .entry(s.owners.first().map(|o| o.pid))
                    .or_default()
                    .add(rate);
                let before = old_rates.get(&id);
                if rate.total() > 0 || before.is_some() {
                    let mut series = before.cloned().unwrap_or_default();
                    push_bounded(&mut series, rate, TREND_SAMPLES);
                    // Dropped once its whole window is idle.
                    if series.iter().any(|r| r.total() > 0) {
                        rates.insert(id, series);
                    }
                }
            }
            if let (Some(m), true) = (&mut since_stable, is_stable) {
                m.insert(id, entry);
            } else {
                fresh.push(id);
                // By position too, for the findings (the trouble states).
                latest.slots.resize(i, 0);
                latest.entries.push((Mark::of(s), entry));
                latest.slots.push(latest.entries.len() as u32);
            }
        }
        // Into the map in a tight loop of its own, for the same reason as the
        // lookups: each insert is a write to a random place of a map larger
        // than the caches.
        since.extend(
            fresh
                .into_iter()
                .zip(latest.entries.iter().map(|(_, e)| *e)),
        );
        self.since = Arc::new(since);
        if let Some(m) = since_stable {
            self.since_stable = Arc::new(m);
        }
        self.conn_rates = Arc::new(rates);
        self.traffic = Arc::new(traffic);
        self.latest = Arc::new(latest);
        (per_process, services)
    }

    /// What is known of a connection, in whichever map holds it.
    fn since(&self, key: &ConnKey) -> Option<&Since> {
        let id = self.ids.of(key);
        self.since.get(&id).or_else(|| self.since_stable.get(&id))
    }

    pub fn samples(&self) -> &VecDeque<Sample> {
        &self.samples
    }

    /// The count of `state` in each sample, oldest first.
    pub fn state_series(&self, state: TcpState) -> Vec<u64> {
        self.samples
            .iter()
            .map(|s| u64::from(s.counts.get(state)))
            .collect()
    }

    /// Change of `state` since the previous sample.
    pub fn delta(&self, state: TcpState) -> i64 {
        let n = self.samples.len();
        if n < 2 {
            return 0;
        }
        i64::from(self.samples[n - 1].counts.get(state))
            - i64::from(self.samples[n - 2].counts.get(state))
    }

    /// A process's total sockets over the last samples, oldest first.
    pub fn process_trend(&self, pid: Option<u32>) -> Vec<u64> {
        self.process_totals
            .get(&pid)
            .map(|s| s.iter().map(|n| u64::from(n.total)).collect())
            .unwrap_or_default()
    }

    /// A connection's throughput between the last two samples.
    pub fn conn_rate(&self, key: &ConnKey) -> Option<Rate> {
        Some(self.traffic.get(&self.ids.of(key))?.rate)
    }

    /// A connection's throughput over the last samples, oldest first; empty
    /// when it never carried data while watched.
    pub fn conn_rate_series(&self, key: &ConnKey) -> Vec<Rate> {
        self.conn_rates
            .get(&self.ids.of(key))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A process's throughput between the last two samples.
    pub fn process_rate(&self, pid: Option<u32>) -> Option<Rate> {
        self.process_totals.get(&pid)?.back()?.rate
    }

    /// A process's throughput per sample, oldest first (0 where unknown).
    pub fn process_rate_series(&self, pid: Option<u32>) -> Vec<Rate> {
        self.process_totals
            .get(&pid)
            .map(|s| s.iter().map(|p| p.rate.unwrap_or_default()).collect())
            .unwrap_or_default()
    }

    /// How a process's CLOSE_WAIT count changed over the trend window:
    /// (change, time it covers). None before two samples.
    pub fn close_wait_change(&self, pid: Option<u32>) -> Option<(i64, Duration)> {
        let series = self.process_totals.get(&pid)?;
        let n = self.samples.len();
        let k = series.len().min(n);
        if k < 2 {
            return None;
        }
        let first_at = self.samples[n - k].mono;
        let last_at = self.samples[n - 1].mono;
        let change = i64::from(series[series.len() - 1].close_wait)
            - i64::from(series[series.len() - k].close_wait);
        Some((change, last_at.saturating_sub(first_at)))
    }

    /// How fast a process's CLOSE_WAIT count grows: a least-squares line
    /// through its newest samples covering at least [`GROWTH_WINDOW`] and
    /// [`GROWTH_SAMPLES`] samples. None until there are that many (a verdict
    /// from two samples a second apart is noise: one socket is 60/min).
    pub fn close_wait_growth(&self, pid: Option<u32>) -> Option<Growth> {
        self.growth(self.process_totals.get(&pid)?, |p| p.close_wait)
    }

    /// The same for a service (named by its id, its lowest pid; None for the
    /// sockets no process holds): a socket its processes share counts once.
    pub fn service_close_wait_growth(&self, id: Option<u32>) -> Option<Growth> {
        self.growth(self.service_totals.get(&id)?, |s| s.close_wait)
    }

    /// How fast a service's descriptors of closed TCP sockets grow.
    pub fn service_closed_sockets_growth(&self, id: Option<u32>) -> Option<Growth> {
        self.growth(self.service_totals.get(&id)?, |s| s.closed_sockets)
    }

    /// The fit of `value` over `series` (aligned with the newest samples).
    fn growth<T>(&self, series: &VecDeque<T>, value: impl Fn(&T) -> u32) -> Option<Growth> {
        let n = self.samples.len();
        let k = series.len().min(n);
        let last_at = self.samples.get(n.checked_sub(1)?)?.mono;
        // The newest points, back until the window is long enough.
        let mut points = Vec::new();
        for back in 0..k {
            let at = self.samples[n - 1 - back].mono;
            let age = last_at.saturating_sub(at);
            points.push((age, f64::from(value(&series[series.len() - 1 - back]))));
            if age >= GROWTH_WINDOW && points.len() >= GROWTH_SAMPLES {
                break;
            }
        }
        let window = points.last()?.0;
        if window < GROWTH_WINDOW || points.len() < GROWTH_SAMPLES {
            return None;
        }
        Some(Growth::fit(&points, window))
    }

    /// When a connection entered its current state, on the newest sample's
    /// wall clock (its age on the steady clock before the newest sample's
    /// wall time, so a clock step moves it with the clock and never changes
    /// the age), and whether that is only an upper bound (it was already
    /// there at the first sample).
    pub fn first_seen(&self, key: &ConnKey) -> Option<(SystemTime, bool)> {
        self.seen(key).map(|s| s.first)
    }

    /// [`History::first_seen`] and [`History::is_new`] of a connection,
    /// found with one lookup.
    pub fn seen(&self, key: &ConnKey) -> Option<Seen> {
        self.seen_of(self.since(key)?)
    }

    /// [`History::seen`] of a socket of `snap`: by its position when `snap`
    /// is the sample last recorded, else by its key.
    pub fn seen_in(&self, snap: &Snapshot, s: &crate::model::Socket) -> Option<Seen> {
        let e = match self.latest.get(&snap.sockets, snap.monotonic, s) {
            Some(e) => e,
            None => self.since(&s.key())?,
        };
        self.seen_of(e)
    }

    fn seen_of(&self, e: &Since) -> Option<Seen> {
        Some(Seen {
            first: self.first_seen_of(e)?,
            is_new: self.is_new_of(e),
        })
    }

    fn first_seen_of(&self, e: &Since) -> Option<(SystemTime, bool)> {
        let newest = self.samples.back()?;
        let age = newest.mono.saturating_sub(e.entered.unwrap_or(e.first));
        let wall = newest.at.checked_sub(age).unwrap_or(newest.at);
        Some((wall, e.entered.is_none() && Some(e.first) == self.started))
    }

    /// True when a connection reached its current state in the newest sample
    /// (and was not simply there when sockscope started).
    pub fn is_new(&self, key: &ConnKey) -> bool {
        self.since(key).is_some_and(|e| self.is_new_of(e))
    }

    fn is_new_of(&self, e: &Since) -> bool {
        Some(e.first) != self.started && Some(e.first) == self.samples.back().map(|s| s.mono)
    }

    /// How long a connection has been in its current state as of `now` (a
    /// steady clock reading, [`Snapshot::monotonic`]), and whether that is a
    /// lower bound (it was already there at the first sample).
    pub fn age(&self, key: &ConnKey, now: Duration) -> Option<(Duration, bool)> {
        let e = self.since(key)?;
        let at_least = e.entered.is_none() && Some(e.first) == self.started;
        Some((now.saturating_sub(e.entered.unwrap_or(e.first)), at_least))
    }

    /// Time covered by the newest `n` samples (a trend of `n` points).
    pub fn trend_span(&self, n: usize) -> Duration {
        let len = self.samples.len();
        if n < 2 || len < n {
            return Duration::ZERO;
        }
        self.samples[len - 1]
            .mono
            .saturating_sub(self.samples[len - n].mono)
    }

    /// Time covered by the samples.
    pub fn span(&self) -> Duration {
        match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b)) => b.mono.saturating_sub(a.mono),
            _ => Duration::ZERO,
        }
    }
}

fn push_bounded<T>(series: &mut VecDeque<T>, value: T, depth: usize) {
    series.push_back(value);
    while series.len() > depth.max(1) {
        series.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;

    fn at(snap: &mut Snapshot, secs: u64) {
        snap.set_taken_at(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }

    #[test]
    fn connection_ids_tell_apart_every_field_and_survive_a_clone() {
        let h = History::default();
        let base = fixture::small().sockets[0].key();
        let v4: std::net::SocketAddr = "10.0.0.1:80".parse().unwrap();
        let mapped: std::net::SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        let variants = [
            ConnKey { netns: 7, ..base },
            ConnKey {
                inode: base.inode + 1,
                ..base
            },
            ConnKey {
                proto: crate::model::Proto::Udp,
                ..base
            },
            ConnKey { local: v4, ..base },
            ConnKey {
                local: mapped,
                ..base
            },
            ConnKey { remote: v4, ..base },
            // Local and remote swapped: the other end of the connection.
            ConnKey {
                local: base.remote,
                remote: base.local,
                ..base
            },
        ];
        let mut ids: Vec<ConnId> = variants.iter().map(|k| h.ids.of(k)).collect();
        ids.push(h.ids.of(&base));
        let distinct: std::collections::HashSet<ConnId> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len(), "{variants:?}");
        assert_eq!(h.clone().ids.of(&base), h.ids.of(&base));
        // Another history draws other seeds: no id is fixed in advance.
        assert_ne!(History::default().ids.of(&base), h.ids.of(&base));
    }

    #[test]
    fn deltas_and_series_follow_the_samples() {
        let mut h = History::default();
        let mut snap = fixture::small();
        at(&mut snap, 100);
        h.record(&snap);
        let extra = snap.sockets[1].clone();
        let mut more = extra.clone();
        more.inode = 999;
        more.remote.set_port(51999);
        snap.sockets.push(more);
        at(&mut snap, 101);
        h.record(&snap);
        assert_eq!(h.delta(TcpState::CloseWait), 1);
        assert_eq!(h.state_series(TcpState::CloseWait), vec![2, 3]);
        assert_eq!(h.process_trend(Some(1000)), vec![3, 4]);
        assert_eq!(h.span(), Duration::from_secs(1));
    }

    /// A history of redis (pid 1000) with `counts[i]` CLOSE_WAIT sockets at
    /// second 100 + i.
    fn close_wait_history(counts: &[u32]) -> History {
        let mut h = History::default();
        for (i, &n) in counts.iter().enumerate() {
            let mut snap = fixture::small();
            snap.sockets.retain(|s| s.state != TcpState::CloseWait);
            let template = fixture::small()
                .sockets
                .into_iter()
                .find(|s| s.state == TcpState::CloseWait)
                .unwrap();
            for j in 0..n {
                let mut s = template.clone();
                s.inode = 10_000 + u64::from(j);
                s.remote.set_port(20_000 + j as u16);
                snap.sockets.push(s);
            }
            at(&mut snap, 100 + i as u64);
            h.record(&snap);
        }
        h
    }

    #[test]
    fn growth_is_a_fit_over_at_least_the_window_and_stops_once_the_count_does() {
        // 15/min: one more socket every 4 s, for 40 s.
        let rising: Vec<u32> = (0..=40).map(|s| 10 + s / 4).collect();
        let short = close_wait_history(&rising[..10]);
        assert_eq!(
            short.close_wait_growth(Some(1000)),
            None,
            "9 s is too short"
        );
        let h = close_wait_history(&rising);
        let g = h.close_wait_growth(Some(1000)).unwrap();
        assert!(g.window >= GROWTH_WINDOW && g.samples >= GROWTH_SAMPLES);
        assert!((12.0..=18.0).contains(&g.per_min), "{g:?}");
        assert!(g.growing(), "{g:?}");
        // Then flat: within one window the figure says so.
        let mut stopped = rising.clone();
        stopped.extend(std::iter::repeat_n(20, 16));
        let g = close_wait_history(&stopped)
            .close_wait_growth(Some(1000))
            .unwrap();
        assert!(!g.growing(), "{g:?}");
        assert_eq!(g.per_min, 0.0);
        // One socket more over the window, in a noisy series: not growth.
        let noisy = [
            10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 11,
        ];
        let g = close_wait_history(&noisy)
            .close_wait_growth(Some(1000))
            .unwrap();
        assert!(!g.growing(), "{g:?}");
    }

    #[test]
    fn a_socket_is_found_by_position_in_the_recorded_table_and_by_key_elsewhere() {
        let mut h = History::default();
        let mut snap = fixture::small();
        at(&mut snap, 100);
        h.record(&snap);
        snap.sockets[1].state = TcpState::LastAck;
        at(&mut snap, 120);
        h.record(&snap);
        let by_key = |h: &History, s: &crate::model::Socket| h.seen(&s.key());
        // The recorded table: by position, as by key, the kept ESTABLISHED
        // and UDP sockets included (they are looked up by key).
        for s in &snap.sockets {
            assert!(by_key(&h, s).is_some(), "{s:?}");
            assert_eq!(h.seen_in(&snap, s), by_key(&h, s), "{s:?}");
        }
        assert!(
            h.latest
                .get(&snap.sockets, snap.monotonic, &snap.sockets[1])
                .is_some()
        );
        let changed = h.seen_in(&snap, &snap.sockets[1]).unwrap();
        assert!(changed.is_new && !changed.first.1, "{changed:?}");
        // A copy of the table (another address) and a socket of no table:
        // by key.
        let copy = snap.clone();
        assert!(
            h.latest
                .get(&copy.sockets, copy.monotonic, &copy.sockets[1])
                .is_none()
        );
        for s in &copy.sockets {
            assert_eq!(h.seen_in(&copy, s), by_key(&h, s), "{s:?}");
        }
        let lone = snap.sockets[2].clone();
        assert_eq!(h.seen_in(&snap, &lone), by_key(&h, &lone));
        // Another connection in the same place of the recorded table is not
        // given the entry of the one that was there.
        snap.sockets[1].inode += 1;
        snap.sockets[1].remote.set_port(40_000);
        assert_eq!(h.seen_in(&snap, &snap.sockets[1]), None);
        // A trouble refresh: the kept part by key, the fresh part by
        // position, alike.
        snap.sockets[1] = copy.sockets[1].clone();
        snap.sockets[2].state = TcpState::LastAck;
        at(&mut snap, 130);
        h.record_partial(&snap);
        for s in &snap.sockets {
            assert_eq!(h.seen_in(&snap, s), by_key(&h, s), "{s:?}");
        }
        assert!(h.seen_in(&snap, &snap.sockets[2]).unwrap().is_new);
    }

    #[test]
    fn age_counts_from_the_state_change_and_marks_lower_bounds() {
        let mut h = History::default();
        let mut snap = fixture::small();
        at(&mut snap, 100);
        h.record(&snap);
        let key = snap.sockets[1].key();
        let now = Duration::from_secs(130);
        assert_eq!(h.age(&key, now), Some((Duration::from_secs(30), true)));
        snap.sockets[1].state = TcpState::LastAck;
        at(&mut snap, 120);
        h.record(&snap);
        assert_eq!(h.age(&key, now), Some((Duration::from_secs(10), false)));
    }

    #[test]
    fn close_wait_growth_and_new_connections_are_tracked_per_process() {
        let mut h = History::default();
        let mut snap = fixture::small();
        at(&mut snap, 100);
        h.record(&snap);
        assert_eq!(h.close_wait_change(Some(1000)), None, "one sample");
        let old_key = snap.sockets[1].key();
        assert!(!h.is_new(&old_key), "present at start: not new");
        let mut more = snap.sockets[1].clone();
        more.inode = 999;
        more.remote.set_port(51999);
        let new_key = more.key();
        snap.sockets.push(more);
        at(&mut snap, 130);
        h.record(&snap);
        assert_eq!(
            h.close_wait_change(Some(1000)),
            Some((1, Duration::from_secs(30)))
        );
        assert!(h.is_new(&new_key));
        assert!(!h.is_new(&old_key));
        assert_eq!(
            h.first_seen(&old_key),
            Some((SystemTime::UNIX_EPOCH + Duration::from_secs(100), true))
        );
    }

    #[test]
    fn throughput_comes_from_tcp_info_byte_counters_between_samples() {
        let mut h = History::default();
        let mut snap = fixture::small();
        let set = |snap: &mut Snapshot, rx: u64, tx: u64| {
            let info = snap.sockets[5].tcp_info.as_mut().expect("tcp_info");
            info.bytes_received = rx;
            info.bytes_acked = tx;
        };
        at(&mut snap, 100);
        set(&mut snap, 1000, 5000);
        h.record(&snap);
        let key = snap.sockets[5].key();
        assert_eq!(
            h.conn_rate(&key),
            Some(Rate::default()),
            "first sight: idle"
        );
        at(&mut snap, 102);
        set(&mut snap, 3000, 45_000);
        h.record(&snap);
        let rate = Rate {
            in_bps: 1000,
            out_bps: 20_000,
        };
        assert_eq!(h.conn_rate(&key), Some(rate));
        assert_eq!(h.process_rate(Some(4242)), Some(rate), "nginx holds it");
        assert_eq!(h.conn_rate_series(&key), vec![rate]);
        assert_eq!(h.process_rate_series(Some(4242)).last(), Some(&rate));
        // No tcp_info (e.g. turned off above 20k sockets): no rate.
        snap.sockets[5].tcp_info = None;
        at(&mut snap, 103);
        h.record(&snap);
        assert_eq!(h.conn_rate(&key), None);
        assert_eq!(h.process_rate(Some(700)), None, "UDP has no tcp_info");
    }

    #[test]
    fn history_is_bounded() {
        let mut h = History::default();
        let mut snap = fixture::small();
        for i in 0..(MAX_SAMPLES as u64 + 50) {
            at(&mut snap, i);
            h.record(&snap);
        }
        assert_eq!(h.samples().len(), MAX_SAMPLES);
        assert_eq!(h.process_trend(Some(1000)).len(), TREND_SAMPLES);
    }

    #[test]
    fn processes_that_hold_nothing_are_forgotten() {
        let mut h = History::default();
        let mut snap = fixture::small();
        h.record(&snap);
        snap.sockets
            .retain(|s| !s.owners.iter().any(|o| o.pid == 5000));
        for _ in 0..TREND_SAMPLES + 1 {
            h.record(&snap);
        }
        assert!(h.process_trend(Some(5000)).is_empty());
    }
}
