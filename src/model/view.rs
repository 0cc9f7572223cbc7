//! The main table as data: rows for each grouping, their columns, sorting and
//! cell text. Flat rows are indices into the snapshot, formatted only when
//! drawn, so 100k connections cost a sort, not 100k formatted rows.

use super::group::{self, NetnsGroup, PortGroup, ProcessGroup, RemoteGroup, StateCounts};
use super::history::History;
use super::holders;
use super::snapshot::Snapshot;
use super::socket::{ConnKey, Proto, Socket, TcpState, format_addr};
use crate::sanitize::clean;
use std::collections::HashMap;
use std::net::IpAddr;

pub use super::format::{compact_number, format_age, format_bytes_rate, sparkline_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grouping {
    Process,
    Port,
    Remote,
    Flat,
    /// By network namespace (container, pod): in the cycle only where
    /// another namespace has sockets.
    Netns,
}

impl Grouping {
    pub const ALL: [Grouping; 5] = [
        Grouping::Process,
        Grouping::Port,
        Grouping::Remote,
        Grouping::Flat,
        Grouping::Netns,
    ];

    /// The next grouping of the cycle; `by namespace` comes after the
    /// connections only when `namespaces` (other namespaces have sockets).
    pub fn next(self, namespaces: bool) -> Grouping {
        match self {
            Grouping::Process => Grouping::Port,
            Grouping::Port => Grouping::Remote,
            Grouping::Remote => Grouping::Flat,
            Grouping::Flat if namespaces => Grouping::Netns,
            Grouping::Flat | Grouping::Netns => Grouping::Process,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Grouping::Process => "by process",
            Grouping::Port => "by local port",
            Grouping::Remote => "by remote host",
            Grouping::Flat => "connections",
            Grouping::Netns => "by namespace",
        }
    }
}

/// What a row stands for; the selection is kept by this, not by index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowKey {
    Process(Option<u32>),
    Port(Proto, u16),
    Remote(IpAddr),
    Conn(ConnKey),
    Netns(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub title: &'static str,
    pub width: u16,
    pub numeric: bool,
    /// Lower is kept longer when the terminal is narrow; 0 is always shown.
    pub priority: u8,
    /// Shown only when some row has something in it (sharing, closed
    /// descriptors): most machines have none, and the room is worth more.
    pub optional: bool,
}

const fn col(title: &'static str, width: u16, numeric: bool, priority: u8) -> Column {
    Column {
        title,
        width,
        numeric,
        priority,
        optional: false,
    }
}

const fn optional(title: &'static str, width: u16, numeric: bool, priority: u8) -> Column {
    Column {
        optional: true,
        ..col(title, width, numeric, priority)
    }
}

/// Whether any of `rows` has something in optional column `col`.
pub fn column_used(rows: &[Row], col: usize, ctx: &ViewCtx) -> bool {
    let snap = ctx.snap;
    // NETNS: only where another namespace has sockets at all.
    let netns_col = matches!(
        (rows.first(), col),
        (Some(Row::Process(_)), PROCESS_NETNS) | (Some(Row::Conn(_)), FLAT_NETNS)
    );
    if netns_col && snap.namespaces.is_empty() {
        return false;
    }
    rows.iter().any(|r| match r {
        Row::Process(g) => match col {
            13 => g.shared > 0,
            14 => closed_sockets(snap, g.pid).is_some(),
            PROCESS_NETNS => process_netns(snap, g.pid) != crate::model::HOST_NETNS,
            _ => true,
        },
        Row::Conn(i) if col == FLAT_NETNS => snap.sockets[*i].netns != crate::model::HOST_NETNS,
        _ => true,
    })
}

/// The NETNS column of the process view and of the connections view.
const PROCESS_NETNS: usize = 15;
const FLAT_NETNS: usize = 9;

fn process_netns(snap: &Snapshot, pid: Option<u32>) -> u64 {
    pid.and_then(|p| snap.process(p))
        .map_or(crate::model::HOST_NETNS, |p| p.netns)
}

/// What runs in a namespace, for the by-namespace view: the container
/// and the pod, or the runtime and short id; empty when nothing is known.
fn netns_who(snap: &Snapshot, netns: u64) -> String {
    let Some(ns) = snap.namespaces.get(netns) else {
        return String::new();
    };
    let id = || {
        ns.container_id
            .as_deref()
            .map(|id| id.chars().take(12).collect::<String>())
    };
    match (&ns.container, &ns.pod, &ns.runtime) {
        (Some(c), Some(p), _) => format!("{c} ({p})"),
        (Some(c), None, _) => c.clone(),
        (None, Some(p), _) => p.clone(),
        (None, None, Some(r)) => format!("{r} {}", id().unwrap_or_default()),
        (None, None, None) => String::new(),
    }
}

/// A NETNS cell: empty for the host's namespace, else its name.
fn netns_cell(snap: &Snapshot, netns: u64) -> String {
    if netns == crate::model::HOST_NETNS {
        String::new()
    } else {
        clean(snap.namespaces.name(netns)).into_owned()
    }
}

/// The per-state columns shared by the group views.
const STATE_COLUMNS: [TcpState; 5] = [
    TcpState::Established,
    TcpState::CloseWait,
    TcpState::FinWait2,
    TcpState::TimeWait,
    TcpState::Listen,
];

const PROCESS_COLUMNS: &[Column] = &[
    col("PID", 7, true, 0),
    col("PROCESS", 15, false, 0),
    col("USER", 8, false, 4),
    col("TOTAL", 6, true, 0),
    col("ESTAB", 6, true, 1),
    col("CLOSE_WAIT", 10, true, 0),
    col("FIN_WAIT2", 9, true, 2),
    col("TIME_WAIT", 9, true, 2),
    col("LISTEN", 6, true, 3),
    col("OTHER", 5, true, 5),
    col("IN/s", 6, true, 3),
    col("OUT/s", 6, true, 3),
    // A sparkline and the change it shows as a number: `▂▅█ +14/1m`.
    col("TREND", 14, true, 3),
    optional("SHARED", 11, false, 1),
    optional("CLOSED", 6, true, 1),
    // The container or namespace, where any process is outside the host's:
    // at 80 columns it stays and TIME_WAIT goes.
    optional("NETNS", 14, false, 1),
];

const PORT_COLUMNS: &[Column] = &[
    col("PROTO", 5, false, 1),
    col("PORT", 5, true, 0),
    col("PROCESS", 15, false, 0),
    col("TOTAL", 6, true, 0),
    col("ESTAB", 6, true, 1),
    col("CLOSE_WAIT", 10, true, 0),
    col("FIN_WAIT2", 9, true, 2),
    col("TIME_WAIT", 9, true, 2),
    col("LISTEN", 6, true, 3),
    col("OTHER", 5, true, 5),
];

const REMOTE_COLUMNS: &[Column] = &[
    col("REMOTE HOST", 24, false, 0),
    col("TOTAL", 6, true, 0),
    col("ESTAB", 6, true, 1),
    col("CLOSE_WAIT", 10, true, 0),
    col("FIN_WAIT2", 9, true, 2),
    col("TIME_WAIT", 9, true, 2),
    col("OTHER", 5, true, 5),
    col("LOCAL PORTS", 16, false, 3),
];

const FLAT_COLUMNS: &[Column] = &[
    col("STATE", 11, false, 0),
    col("PROTO", 5, false, 4),
    col("LOCAL", 21, false, 0),
    // Queues are the evidence of a stuck reader or a full accept queue: at
    // 80 columns they stay and the remote end goes.
    col("REMOTE", 21, false, 2),
    col("RECV-Q", 6, true, 1),
    col("SEND-Q", 6, true, 1),
    col("PID", 7, true, 0),
    col("PROCESS", 15, false, 0),
    col("AGE", 6, true, 3),
    optional("NETNS", 14, false, 2),
];

const NETNS_COLUMNS: &[Column] = &[
    col("NETNS", 20, false, 0),
    col("CONTAINER / POD", 24, false, 3),
    col("PROCS", 5, true, 2),
    col("TOTAL", 6, true, 0),
    col("ESTAB", 6, true, 1),
    col("CLOSE_WAIT", 10, true, 0),
    col("FIN_WAIT2", 9, true, 2),
    col("TIME_WAIT", 9, true, 2),
    col("LISTEN", 6, true, 3),
    col("OTHER", 5, true, 5),
];

pub fn columns(g: Grouping) -> &'static [Column] {
    match g {
        Grouping::Process => PROCESS_COLUMNS,
        Grouping::Port => PORT_COLUMNS,
        Grouping::Remote => REMOTE_COLUMNS,
        Grouping::Flat => FLAT_COLUMNS,
        Grouping::Netns => NETNS_COLUMNS,
    }
}

/// The column a view is sorted by when first shown, and its direction.
pub fn default_sort(g: Grouping) -> (usize, bool) {
    match g {
        Grouping::Process => (3, true), // TOTAL, most first
        Grouping::Port => (3, true),
        Grouping::Remote => (1, true),
        Grouping::Flat => (0, false), // STATE: trouble first
        Grouping::Netns => (3, true),
    }
}

/// One row of the table. Groups are boxed: a connections view has a row
/// per socket, 16 bytes each rather than the largest group's 96 (12 MiB
/// less for each copy of a 130k-row view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Process(Box<ProcessGroup>),
    Port(Box<PortGroup>),
    Remote(Box<RemoteGroup>),
    /// Index into the snapshot's sockets.
    Conn(usize),
    Netns(Box<NetnsGroup>),
}

const _: () = assert!(
    std::mem::size_of::<Row>() <= 16,
    "a row of a connections view"
);

/// Everything a cell may need besides the row.
pub struct ViewCtx<'a> {
    pub snap: &'a Snapshot,
    pub history: &'a History,
    /// The steady clock ([`Snapshot::monotonic`]) ages are measured to.
    pub now: std::time::Duration,
    /// Reverse-DNS names, when the user turned them on.
    pub names: Option<&'a HashMap<IpAddr, String>>,
    /// Pids the filter asks for: among a socket's holders these are shown
    /// (inside a process's drill-down, that process).
    pub prefer: Vec<u32>,
}

impl ViewCtx<'_> {
    /// The pid to show for a socket's holders, and how many others hold it.
    pub fn shown_holder(&self, s: &Socket) -> Option<(u32, usize)> {
        // Called for every row when a 100k-row view sorts: no allocation.
        let owners = holders::effective(self.snap, s);
        let first = owners.first()?.pid;
        let others = holders::pids(owners).count() - 1;
        let pid = holders::pids(owners)
            .find(|p| self.prefer.contains(p))
            .unwrap_or(first);
        Some((pid, others))
    }
}

impl Row {
    pub fn key(&self, snap: &Snapshot) -> RowKey {
        match self {
            Row::Process(g) => RowKey::Process(g.pid),
            Row::Port(g) => RowKey::Port(g.proto, g.port),
            Row::Remote(g) => RowKey::Remote(g.host),
            Row::Conn(i) => RowKey::Conn(snap.sockets[*i].key()),
            Row::Netns(g) => RowKey::Netns(g.netns),
        }
    }

    pub fn socket<'a>(&self, snap: &'a Snapshot) -> Option<&'a Socket> {
        match self {
            Row::Conn(i) => snap.sockets.get(*i),
            _ => None,
        }
    }

    /// States that need attention in this row (drawn highlighted).
    pub fn trouble(&self, snap: &Snapshot) -> bool {
        let counts = match self {
            Row::Process(g) => &g.counts,
            Row::Port(g) => &g.counts,
            Row::Remote(g) => &g.counts,
            Row::Netns(g) => &g.counts,
            Row::Conn(i) => return snap.sockets[*i].state.is_trouble(),
        };
        counts.get(TcpState::CloseWait) > 0 || counts.get(TcpState::SynRecv) > 0
    }
}

/// Rows for `grouping` over the sockets at `indices` of the snapshot.
pub fn build(grouping: Grouping, snap: &Snapshot, indices: &[usize]) -> Vec<Row> {
    let sockets = indices.iter().map(|&i| &snap.sockets[i]);
    match grouping {
        Grouping::Process => group::by_process(snap, sockets)
            .into_iter()
            .map(|g| Row::Process(Box::new(g)))
            .collect(),
        Grouping::Port => group::by_local_port(snap, sockets)
            .into_iter()
            .map(|g| Row::Port(Box::new(g)))
            .collect(),
        Grouping::Remote => group::by_remote_host(sockets)
            .into_iter()
            .map(|g| Row::Remote(Box::new(g)))
            .collect(),
        Grouping::Flat => indices.iter().map(|&i| Row::Conn(i)).collect(),
        Grouping::Netns => group::by_netns(snap, sockets)
            .into_iter()
            .map(|g| Row::Netns(Box::new(g)))
            .collect(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    Num(i64),
    Text(String),
}

/// The first `n` per-state columns of a group row, then OTHER: every socket
/// those columns leave out.
fn state_values(counts: &StateCounts, n: usize) -> Vec<u32> {
    let mut v: Vec<u32> = STATE_COLUMNS[..n].iter().map(|s| counts.get(*s)).collect();
    v.push(counts.total() - v.iter().sum::<u32>());
    v
}

/// Column `col` of [`state_values`], 0 past its end.
fn state_cell(counts: &StateCounts, n: usize, col: usize) -> i64 {
    state_values(counts, n)
        .get(col)
        .map_or(0, |&v| i64::from(v))
}

/// Sorts trouble first in the STATE column: CLOSE_WAIT, SYN_RECV, ... then the rest.
fn state_rank(state: TcpState) -> i64 {
    match state {
        TcpState::CloseWait => 0,
        TcpState::SynRecv => 1,
        TcpState::FinWait2 => 2,
        TcpState::LastAck => 3,
        TcpState::Closing => 4,
        TcpState::FinWait1 => 5,
        TcpState::TimeWait => 6,
        TcpState::SynSent => 7,
        TcpState::Established => 8,
        TcpState::Listen => 9,
        TcpState::Close => 10,
    }
}

fn process_name(snap: &Snapshot, pid: Option<u32>) -> &str {
    pid.and_then(|p| snap.process(p))
        .map(|p| p.name.as_str())
        .unwrap_or("-")
}

/// Descriptors of closed TCP sockets a process holds; None for none.
fn closed_sockets(snap: &Snapshot, pid: Option<u32>) -> Option<u32> {
    pid.and_then(|p| snap.process(p))
        .map(|p| p.closed_sockets)
        .filter(|&n| n > 0)
}

fn port_owners(snap: &Snapshot, pids: &[u32]) -> String {
    match pids {
        [] => "-".to_string(),
        [one] => process_name(snap, Some(*one)).to_string(),
        [first, rest @ ..] => format!("{} +{}", process_name(snap, Some(*first)), rest.len()),
    }
}

/// A connection's PROCESS cell: `oracle`, `oracle +1` when another process
/// holds it too, `queue of oracle` while it waits in oracle's accept queue,
/// or why nothing holds it: `(time-wait)`, `(orphan)`, ...
pub fn holder_text(ctx: &ViewCtx, s: &Socket) -> String {
    let snap = ctx.snap;
    match ctx.shown_holder(s) {
        Some((pid, others)) => {
            let name = clean(process_name(snap, Some(pid))).into_owned();
            if s.owners.is_empty() {
                // Waiting in the accept queue of `name`'s listener.
                format!("queue of {name}")
            } else if others > 0 {
                format!("{name} +{others}")
            } else {
                name
            }
        }
        None => holders::why_none(snap, s)
            .map_or("-", |w| w.label())
            .to_string(),
    }
}

pub fn sort_key(row: &Row, col: usize, ctx: &ViewCtx) -> SortKey {
    use SortKey::*;
    let snap = ctx.snap;
    match row {
        Row::Process(g) => match col {
            0 => Num(g.pid.map_or(-1, i64::from)),
            1 => Text(process_name(snap, g.pid).to_lowercase()),
            2 => Text(
                g.pid
                    .and_then(|p| snap.process(p)?.user.clone())
                    .unwrap_or_default(),
            ),
            3 => Num(i64::from(g.counts.total())),
            4..=9 => Num(state_cell(&g.counts, 5, col - 4)),
            10 | 11 => Num(ctx.history.process_rate(g.pid).map_or(-1, |r| {
                (if col == 10 { r.in_bps } else { r.out_bps }) as i64
            })),
            12 => {
                // TREND: growth over the window.
                let t = ctx.history.process_trend(g.pid);
                Num(match (t.first(), t.last()) {
                    (Some(a), Some(b)) => *b as i64 - *a as i64,
                    _ => 0,
                })
            }
            13 => Num(i64::from(g.shared)),
            14 => Num(closed_sockets(snap, g.pid).map_or(0, i64::from)),
            _ => Text(netns_cell(snap, process_netns(snap, g.pid)).to_lowercase()),
        },
        Row::Port(g) => match col {
            0 => Text(g.proto.name().to_string()),
            1 => Num(i64::from(g.port)),
            2 => Text(port_owners(snap, &g.pids).to_lowercase()),
            3 => Num(i64::from(g.counts.total())),
            _ => Num(state_cell(&g.counts, 5, col - 4)),
        },
        Row::Netns(g) => match col {
            0 => Text(snap.namespaces.name(g.netns).to_lowercase()),
            1 => Text(netns_who(snap, g.netns).to_lowercase()),
            2 => Num(g.pids.len() as i64),
            3 => Num(i64::from(g.counts.total())),
            _ => Num(state_cell(&g.counts, 5, col - 4)),
        },
        Row::Remote(g) => match col {
            0 => Text(g.host.to_string()),
            1 => Num(i64::from(g.counts.total())),
            2..=6 => Num(state_cell(&g.counts, 4, col - 2)),
            _ => Num(g.local_ports.first().map_or(0, |p| i64::from(*p))),
        },
        Row::Conn(i) => {
            let s = &snap.sockets[*i];
            match col {
                0 => Num(state_rank(s.state)),
                1 => Text(s.proto.name().to_string()),
                2 => Num(i64::from(s.local.port())),
                3 => Text(format_addr(&s.remote)),
                4 => Num(i64::from(s.recv_q)),
                5 => Num(i64::from(s.send_q)),
                6 => Num(ctx.shown_holder(s).map_or(-1, |(p, _)| i64::from(p))),
                7 => Text(holder_text(ctx, s).to_lowercase()),
                8 => Num(ctx
                    .history
                    .age(&s.key(), ctx.now)
                    .map_or(0, |(d, _)| d.as_secs() as i64)),
                _ => Text(netns_cell(snap, s.netns).to_lowercase()),
            }
        }
    }
}

/// Stable sort by one column; ties keep a fixed order by pid / port / key so
/// rows do not jump between refreshes.
pub fn sort(rows: &mut [Row], col: usize, descending: bool, ctx: &ViewCtx) {
    if rows.len() > 1 && rows.iter().all(|r| matches!(r, Row::Conn(_))) {
        return sort_conns(rows, col, descending, ctx);
    }
    rows.sort_by_cached_key(|r| (ordered(sort_key(r, col, ctx), descending), tiebreak(r, ctx)));
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Ordered {
    Num(i64),
    Text(String),
    TextDesc(std::cmp::Reverse<String>),
}

fn ordered(key: SortKey, descending: bool) -> Ordered {
    match (key, descending) {
        (SortKey::Num(n), false) => Ordered::Num(n),
        (SortKey::Num(n), true) => Ordered::Num(-n),
        (SortKey::Text(t), false) => Ordered::Text(t),
        (SortKey::Text(t), true) => Ordered::TextDesc(std::cmp::Reverse(t)),
    }
}

/// [`sort`] of connections, the one view of 100k rows: the same order
/// (column, then holder, then connection key), with the key compared as
/// integers ([`conn_order`](super::conn_order)) and the rows' positions
/// breaking what ties remain, as a stable sort would.
fn sort_conns(rows: &mut [Row], col: usize, descending: bool, ctx: &ViewCtx) {
    let mut keys = ConnSort::new(rows, col, descending, ctx);
    let sorted = keys.rest(0);
    rows.clone_from_slice(&sorted);
}

/// A connection row's place: the column's value and the holder shown.
/// The connection key that breaks their ties is worked out only for rows
/// that tie on both, a run at a time ([`ConnSort::sort_first`]); the row's
/// position breaks what remains. 48 bytes a row rather than 192 with the
/// key in each: a 130k-row view sorts in 6 MiB and the keys of its largest
/// run, rather than in 25 MiB.
struct ConnSortKey {
    by: Ordered,
    holder: i64,
    /// The row's position among the rows given.
    pos: u32,
    /// The socket's index in the snapshot.
    sock: u32,
}

/// Connection rows sorted in two steps: the first page, in order, while
/// the rest waits (a 130k-row view shows its first page in a third of the
/// time a whole sort takes), then the rest.
pub struct ConnSort<'a> {
    keys: Vec<ConnSortKey>,
    snap: &'a Snapshot,
}

impl<'a> ConnSort<'a> {
    /// The sort keys of `rows`, connections all.
    pub fn new(rows: &[Row], col: usize, descending: bool, ctx: &ViewCtx<'a>) -> ConnSort<'a> {
        let keys = rows
            .iter()
            .enumerate()
            .filter_map(|(pos, r)| {
                let Row::Conn(i) = r else { return None };
                let s = &ctx.snap.sockets[*i];
                Some(ConnSortKey {
                    by: ordered(sort_key(r, col, ctx), descending),
                    holder: ctx.shown_holder(s).map_or(-1, |(p, _)| i64::from(p)),
                    pos: pos as u32,
                    sock: *i as u32,
                })
            })
            .collect();
        ConnSort {
            keys,
            snap: ctx.snap,
        }
    }

    fn primary(a: &ConnSortKey, b: &ConnSortKey) -> std::cmp::Ordering {
        (&a.by, a.holder).cmp(&(&b.by, b.holder))
    }

    /// Sorts `keys` by column and holder, then each run of rows equal on
    /// both by connection key and position, as far as the first `need`
    /// rows (the rest after them in no order).
    fn sort_first(keys: &mut [ConnSortKey], need: usize, snap: &Snapshot) {
        keys.sort_unstable_by(Self::primary);
        let mut start = 0;
        while start < keys.len().min(need) {
            let end = start
                + keys[start..]
                    .iter()
                    .take_while(|k| Self::primary(k, &keys[start]).is_eq())
                    .count();
            if end - start > 1 {
                Self::sort_run(&mut keys[start..end], need - start, snap);
            }
            start = end;
        }
    }

    /// Orders a run of rows equal on column and holder, as far as its first
    /// `need`: only their positions and sockets differ, so those are
    /// written back in order. The connection keys are worked out for this
    /// run only.
    fn sort_run(run: &mut [ConnSortKey], need: usize, snap: &Snapshot) {
        let mut order: Vec<(super::conn_order::ConnOrd, u32, u32)> = run
            .iter()
            .map(|k| {
                let key = snap.sockets[k.sock as usize].key();
                (super::conn_order::conn_ord(&key), k.pos, k.sock)
            })
            .collect();
        if need < order.len() {
            order.select_nth_unstable(need);
            order[..need].sort_unstable();
        } else {
            order.sort_unstable();
        }
        for (k, (_, pos, sock)) in run.iter_mut().zip(order) {
            k.pos = pos;
            k.sock = sock;
        }
    }

    /// The rows with the first `n` in their final order, the rest after
    /// them in none.
    pub fn head(&mut self, n: usize) -> Vec<Row> {
        let n = n.min(self.keys.len());
        if n == 0 {
            return self.rows();
        }
        let mut end = self.keys.len();
        if n < end {
            // The first n by column and holder; the rows after them that
            // tie with the last of them are brought next to them, so that
            // the connection key decides between those too.
            self.keys.select_nth_unstable_by(n - 1, Self::primary);
            let (head, tail) = self.keys.split_at_mut(n);
            let last = &head[n - 1];
            let mut tied = 0;
            for j in 0..tail.len() {
                if Self::primary(&tail[j], last).is_eq() {
                    tail.swap(j, tied);
                    tied += 1;
                }
            }
            end = n + tied;
        }
        Self::sort_first(&mut self.keys[..end], n, self.snap);
        self.rows()
    }

    /// The rows in order, after [`ConnSort::head`] of `n` (or of 0).
    pub fn rest(&mut self, n: usize) -> Vec<Row> {
        let n = n.min(self.keys.len());
        Self::sort_first(&mut self.keys[n..], usize::MAX, self.snap);
        self.rows()
    }

    fn rows(&self) -> Vec<Row> {
        self.keys
            .iter()
            .map(|k| Row::Conn(k.sock as usize))
            .collect()
    }
}

fn tiebreak(row: &Row, ctx: &ViewCtx) -> (i64, RowKeyOrd) {
    let snap = ctx.snap;
    match row {
        // On a tie, processes come before "(no owner)": the cursor lands on
        // something that k and Enter can act on.
        Row::Process(g) => (g.pid.map_or(i64::MAX, i64::from), RowKeyOrd::None),
        Row::Port(g) => (i64::from(g.port), RowKeyOrd::Proto(g.proto)),
        Row::Remote(g) => (0, RowKeyOrd::Ip(g.host)),
        Row::Netns(g) => (g.netns as i64, RowKeyOrd::None),
        Row::Conn(i) => {
            let s = &snap.sockets[*i];
            (
                ctx.shown_holder(s).map_or(-1, |(p, _)| i64::from(p)),
                RowKeyOrd::Conn(s.key()),
            )
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum RowKeyOrd {
    None,
    Proto(Proto),
    Ip(IpAddr),
    Conn(ConnKey),
}

/// The first row to show so that the cursor is visible; keeps the
/// remembered offset while the cursor stays inside the page.
pub fn visible_offset(offset: usize, cursor: usize, height: usize, len: usize) -> usize {
    let mut off = offset.min(len.saturating_sub(1));
    if cursor < off {
        off = cursor;
    } else if cursor >= off + height {
        off = cursor + 1 - height;
    }
    off
}

fn remote_text(addr: &std::net::SocketAddr, ctx: &ViewCtx) -> String {
    if let Some(name) = ctx.names.and_then(|n| n.get(&addr.ip().to_canonical())) {
        return format!("{}:{}", clean(name), addr.port());
    }
    format_addr(addr)
}

/// A trend's change over the time it covers: `+14/1m`, `-3/20s`, `0/1m`;
/// `-` before two samples.
pub fn change_text(series: &[u64], span: std::time::Duration) -> String {
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        return "-".into();
    };
    if series.len() < 2 || span.is_zero() {
        return "-".into();
    }
    let change = *last as i64 - *first as i64;
    let sign = if change > 0 { "+" } else { "" };
    format!("{sign}{change}/{}", format_age(span))
}

/// The text of every cell of a row, cleaned of control characters.
pub fn cells(row: &Row, ctx: &ViewCtx) -> Vec<String> {
    let snap = ctx.snap;
    let counts_cells =
        |counts: &StateCounts, n: usize| state_values(counts, n).into_iter().map(|v| v.to_string());
    match row {
        Row::Process(g) => {
            let p = g.pid.and_then(|p| snap.process(p));
            let mut v = vec![
                g.pid.map_or("-".into(), |p| p.to_string()),
                match (g.pid, p) {
                    (None, _) => "(no owner)".into(),
                    (_, Some(p)) => clean(&p.name).into_owned(),
                    (_, None) => "?".into(),
                },
                p.and_then(|p| p.user.as_deref())
                    .map_or("-".into(), |u| clean(u).into_owned()),
                g.counts.total().to_string(),
            ];
            v.extend(counts_cells(&g.counts, 5));
            let rate = ctx.history.process_rate(g.pid);
            v.push(rate.map_or("-".into(), |r| format_bytes_rate(r.in_bps)));
            v.push(rate.map_or("-".into(), |r| format_bytes_rate(r.out_bps)));
            let trend = ctx.history.process_trend(g.pid);
            let change = change_text(&trend, ctx.history.trend_span(trend.len()));
            v.push(if trend.len() < 2 {
                sparkline_text(&trend, 14)
            } else {
                let spark = 14usize.saturating_sub(change.chars().count() + 1).max(3);
                format!("{} {change}", sparkline_text(&trend, spark))
            });
            v.push(match g.shared_with {
                Some((other, n)) => format!("{n} w/{other}"),
                None if g.shared > 0 => format!("{}", g.shared),
                None => String::new(),
            });
            v.push(closed_sockets(snap, g.pid).map_or(String::new(), |n| n.to_string()));
            v.push(netns_cell(snap, process_netns(snap, g.pid)));
            v
        }
        Row::Port(g) => {
            let mut v = vec![
                g.proto.name().to_string(),
                g.port.to_string(),
                clean(&port_owners(snap, &g.pids)).into_owned(),
                g.counts.total().to_string(),
            ];
            v.extend(counts_cells(&g.counts, 5));
            v
        }
        Row::Netns(g) => {
            let mut v = vec![
                clean(snap.namespaces.name(g.netns)).into_owned(),
                clean(&netns_who(snap, g.netns)).into_owned(),
                g.pids.len().to_string(),
                g.counts.total().to_string(),
            ];
            v.extend(counts_cells(&g.counts, 5));
            v
        }
        Row::Remote(g) => {
            let host = ctx.names.and_then(|n| n.get(&g.host)).map_or_else(
                || g.host.to_string(),
                |n| format!("{} ({})", clean(n), g.host),
            );
            let mut v = vec![host, g.counts.total().to_string()];
            v.extend(counts_cells(&g.counts, 4));
            let ports: Vec<String> = g.local_ports.iter().take(4).map(u16::to_string).collect();
            let more = g.local_ports.len().saturating_sub(4);
            v.push(if more > 0 {
                format!("{} +{more}", ports.join(","))
            } else {
                ports.join(",")
            });
            v
        }
        Row::Conn(i) => {
            let s = &snap.sockets[*i];
            let shown = ctx.shown_holder(s);
            let age = ctx
                .history
                .age(&s.key(), ctx.now)
                .map_or(String::new(), |(d, lower)| {
                    if lower {
                        format!(">{}", format_age(d))
                    } else {
                        format_age(d)
                    }
                });
            vec![
                s.state.kernel_name().to_string(),
                s.proto.name().to_string(),
                format_addr(&s.local),
                remote_text(&s.remote, ctx),
                s.recv_q.to_string(),
                s.send_q.to_string(),
                shown.map_or("-".into(), |(p, _)| p.to_string()),
                holder_text(ctx, s),
                age,
                netns_cell(snap, s.netns),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;

    fn ctx<'a>(snap: &'a Snapshot, history: &'a History) -> ViewCtx<'a> {
        ViewCtx {
            snap,
            history,
            now: snap.monotonic,
            names: None,
            prefer: Vec::new(),
        }
    }

    fn all(snap: &Snapshot) -> Vec<usize> {
        (0..snap.sockets.len()).collect()
    }

    /// Every connection view order, in one step and in two, against the
    /// cached-key sort every other view uses: the same rows in the same order.
    #[test]
    fn connections_sort_in_one_or_two_steps_as_every_other_view_does() {
        let mut snaps = vec![fixture::small(), fixture::containers(), fixture::forked()];
        let mut churn = fixture::port_churn(300, 5_000);
        churn.sockets.extend(fixture::small().sockets);
        snaps.push(churn);
        for snap in &snaps {
            let mut history = History::default();
            history.record(snap);
            let ctx = ctx(snap, &history);
            let rows = build(Grouping::Flat, snap, &all(snap));
            assert!(rows.len() > 4);
            for col in 0..10 {
                for descending in [false, true] {
                    let mut expected = rows.clone();
                    expected.sort_by_cached_key(|r| {
                        (
                            ordered(sort_key(r, col, &ctx), descending),
                            tiebreak(r, &ctx),
                        )
                    });
                    let mut one = rows.clone();
                    sort(&mut one, col, descending, &ctx);
                    assert_eq!(one, expected, "column {col}, descending {descending}");
                    for head in [0, 1, 3, rows.len(), rows.len() + 5] {
                        let mut steps = ConnSort::new(&rows, col, descending, &ctx);
                        let first = steps.head(head);
                        let n = head.min(rows.len());
                        assert_eq!(first[..n], expected[..n], "head {head}, column {col}");
                        assert_eq!(
                            steps.rest(head),
                            expected,
                            "rest after {head}, column {col}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn process_rows_have_per_state_columns() {
        let snap = fixture::small();
        let h = History::default();
        let rows = build(Grouping::Process, &snap, &all(&snap));
        let c = cells(&rows[0], &ctx(&snap, &h));
        assert_eq!(c[..4], ["1000", "redis-server", "redis", "3"]);
        assert_eq!(c[5], "2", "CLOSE_WAIT column");
        assert_eq!(c.len(), PROCESS_COLUMNS.len());
    }

    #[test]
    fn every_grouping_has_as_many_cells_as_columns() {
        let snap = fixture::small();
        let h = History::default();
        for g in Grouping::ALL {
            for row in build(g, &snap, &all(&snap)) {
                assert_eq!(
                    cells(&row, &ctx(&snap, &h)).len(),
                    columns(g).len(),
                    "{g:?}"
                );
            }
        }
    }

    #[test]
    fn flat_sort_by_state_puts_close_wait_first_and_is_stable() {
        let snap = fixture::small();
        let h = History::default();
        let mut rows = build(Grouping::Flat, &snap, &all(&snap));
        sort(&mut rows, 0, false, &ctx(&snap, &h));
        let states: Vec<TcpState> = rows
            .iter()
            .map(|r| r.socket(&snap).unwrap().state)
            .collect();
        assert_eq!(states[..2], [TcpState::CloseWait, TcpState::CloseWait]);
        let again = {
            let mut r = rows.clone();
            r.reverse();
            sort(&mut r, 0, false, &ctx(&snap, &h));
            r
        };
        assert_eq!(rows, again, "same order whatever the input order");
    }

    #[test]
    fn sorting_by_text_both_ways() {
        let snap = fixture::small();
        let h = History::default();
        let mut rows = build(Grouping::Process, &snap, &all(&snap));
        sort(&mut rows, 1, false, &ctx(&snap, &h));
        let names: Vec<String> = rows
            .iter()
            .map(|r| cells(r, &ctx(&snap, &h))[1].clone())
            .collect();
        assert_eq!(
            names,
            [
                "(no owner)",
                "nginx",
                "python3",
                "redis-server",
                "systemd-resolve"
            ]
        );
        sort(&mut rows, 1, true, &ctx(&snap, &h));
        let names: Vec<String> = rows
            .iter()
            .map(|r| cells(r, &ctx(&snap, &h))[1].clone())
            .collect();
        assert_eq!(names[0], "systemd-resolve");
    }

    #[test]
    fn hostile_names_are_cleaned_in_cells() {
        let mut snap = fixture::small();
        snap.processes.get_mut(&1000).unwrap().name = "\x1b]0;x\x07".into();
        let h = History::default();
        let rows = build(Grouping::Process, &snap, &all(&snap));
        assert_eq!(cells(&rows[0], &ctx(&snap, &h))[1], "?]0;x?");
    }

    #[test]
    fn offset_keeps_the_cursor_on_screen() {
        assert_eq!(visible_offset(0, 5, 10, 100), 0);
        assert_eq!(visible_offset(0, 15, 10, 100), 6);
        assert_eq!(visible_offset(20, 15, 10, 100), 15);
        assert_eq!(visible_offset(50, 0, 10, 3), 0);
    }
}
