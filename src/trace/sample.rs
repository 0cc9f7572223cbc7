//! What the engine publishes of the transitions with each sample: the
//! window since the previous sample, the last minute's, the last
//! transitions for the transitions view, per-window points for sparklines,
//! and the exact state entries that make ages exact.

use super::{Feed, Status, Transition, Window};
use crate::model::{Proto, Snapshot, TcpState};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How much the "last minute" window covers.
pub const MINUTE: Duration = Duration::from_secs(60);
/// Sparkline points kept (one per sample).
pub const POINTS: usize = 120;

/// Totals of one window, for sparklines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    pub span: Duration,
    pub opened: u64,
    pub closed: u64,
    pub resets_sent: u64,
    pub resets_received: u64,
}

/// Exact state entries by (local, remote): when a connection entered the
/// state it is in, as the transitions saw it.
pub type Exact =
    HashMap<(SocketAddr, SocketAddr), (TcpState, Duration), foldhash::fast::RandomState>;

/// The transitions part of one analysed sample.
#[derive(Debug, Clone)]
pub struct TraceSample {
    pub status: Status,
    /// Since the previous sample.
    pub window: Window,
    /// Over the last minute (the windows it holds).
    pub minute: Window,
    /// The last transitions, oldest first (at most `tracker::RECENT`).
    pub recent: Arc<VecDeque<Transition>>,
    /// One point per sample, oldest first.
    pub points: Arc<VecDeque<Point>>,
    /// Per service port: opened per window, oldest first, for sparklines.
    pub port_points: Arc<HashMap<super::PortKey, VecDeque<u64>>>,
    pub exact: Arc<Exact>,
    /// Records the kernel dropped since the start.
    pub lost: u64,
    /// Connections followed now.
    pub live: usize,
    /// CPU the feed thread used so far.
    pub cpu: Duration,
}

impl TraceSample {
    /// A recorded window (a replay): its counts, without the list of
    /// transitions, which recordings do not keep.
    pub fn recorded(w: &Window) -> TraceSample {
        TraceSample {
            status: Status::On,
            window: w.clone(),
            minute: w.clone(),
            lost: w.dropped,
            ..TraceSample::off("")
        }
    }

    /// A sample without transitions, saying why.
    pub fn off(why: &str) -> TraceSample {
        TraceSample {
            status: Status::Off(why.to_string()),
            window: Window::default(),
            minute: Window::default(),
            recent: Arc::default(),
            points: Arc::default(),
            port_points: Arc::default(),
            exact: Arc::default(),
            lost: 0,
            live: 0,
            cpu: Duration::ZERO,
        }
    }
}

/// The engine's side of the feed.
#[derive(Debug)]
pub struct Transitions {
    feed: Result<Feed, String>,
    recent: Arc<VecDeque<Transition>>,
    points: Arc<VecDeque<Point>>,
    port_points: Arc<HashMap<super::PortKey, VecDeque<u64>>>,
    windows: VecDeque<Window>,
}

impl Transitions {
    /// Starts the feed (or remembers why it cannot run).
    pub fn start() -> Transitions {
        Transitions::with(Feed::start())
    }

    pub fn with(feed: Result<Feed, String>) -> Transitions {
        Transitions {
            feed,
            recent: Arc::default(),
            points: Arc::default(),
            port_points: Arc::default(),
            windows: VecDeque::new(),
        }
    }

    /// Why transitions are not followed, when they are not.
    pub fn unavailable(&self) -> Option<&str> {
        self.feed.as_ref().err().map(String::as_str)
    }

    /// The transitions since the last call, given the sample just taken
    /// (its listeners' holders attribute accepted connections; a full one
    /// also lets the tracker forget connections whose close it missed).
    pub fn sample(&mut self, snap: &Snapshot, full: bool) -> Arc<TraceSample> {
        let feed = match &self.feed {
            Ok(f) => f,
            Err(why) => return Arc::new(TraceSample::off(why)),
        };
        feed.set_listeners(snap.holders().listening().collect());
        if full {
            // foldhash, sized at once: 130k entries at a large full dump.
            let mut present = std::collections::HashSet::with_capacity_and_hasher(
                snap.sockets.len(),
                foldhash::fast::RandomState::default(),
            );
            present.extend(
                snap.sockets
                    .iter()
                    .filter(|s| s.proto == Proto::Tcp)
                    .map(|s| (s.local, s.remote)),
            );
            feed.prune(|l, r| present.contains(&(*l, *r)));
        }
        let taken = feed.take();
        let w = taken.window;
        let recent = Arc::make_mut(&mut self.recent);
        for t in taken.recent {
            if recent.len() == super::tracker::RECENT {
                recent.pop_front();
            }
            recent.push_back(t);
        }
        let points = Arc::make_mut(&mut self.points);
        if points.len() == POINTS {
            points.pop_front();
        }
        points.push_back(Point {
            span: w.span(),
            opened: w.total.opened,
            closed: w.total.closed,
            resets_sent: w.total.resets_sent,
            resets_received: w.total.resets_received,
        });
        let pp = Arc::make_mut(&mut self.port_points);
        let depth = points.len();
        for (k, series) in pp.iter_mut() {
            series.push_back(w.by_port.get(k).map_or(0, |s| s.opened));
            while series.len() > depth {
                series.pop_front();
            }
        }
        for (k, s) in &w.by_port {
            if s.opened > 0 && !pp.contains_key(k) {
                let mut series: VecDeque<u64> = std::iter::repeat_n(0, depth - 1).collect();
                series.push_back(s.opened);
                pp.insert(*k, series);
            }
        }
        pp.retain(|_, s| s.iter().any(|&n| n > 0));
        self.windows.push_back(w.clone());
        while self
            .windows
            .front()
            .is_some_and(|f| w.to.saturating_sub(f.from) > MINUTE)
            && self.windows.len() > 1
        {
            self.windows.pop_front();
        }
        let mut minute = Window::default();
        for x in &self.windows {
            minute.add(x);
        }
        Arc::new(TraceSample {
            status: Status::On,
            window: w,
            minute,
            recent: Arc::clone(&self.recent),
            points: Arc::clone(&self.points),
            port_points: Arc::clone(&self.port_points),
            exact: Arc::new(taken.seen),
            lost: feed.lost(),
            live: taken.live,
            cpu: feed.cpu(),
        })
    }
}
