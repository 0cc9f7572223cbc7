//! The engine with a scripted source: cadence, per-state refresh, a source
//! that fails and recovers, clock steps. No system access, no sleeping
//! beyond a few milliseconds of the live thread's interval.

use super::cadence::{Cadence, CpuMeter, MAX_FULL_INTERVAL as MAX_FULL, MAX_SHARE, SPLIT_ABOVE};
use super::source::{Refresh, Scripted, SourceError};
use super::*;
use crate::model::fixture::{self, socket};
use crate::model::{Proto, Snapshot, TcpState};
use std::time::{Duration, Instant, SystemTime};

const SEC: Duration = Duration::from_secs(1);

/// `d` lies in `lo..=hi`.
#[track_caller]
fn assert_within(d: Duration, lo: Duration, hi: Duration) {
    assert!(d >= lo && d <= hi, "{d:?} not within {lo:?}..={hi:?}");
}

fn at(snap: &mut Snapshot, wall_s: u64, mono_s: u64) {
    snap.taken_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + wall_s);
    snap.monotonic = Duration::from_secs(1000 + mono_s);
}

/// `n` ESTABLISHED connections on port 7000 plus the small fixture.
fn big(n: usize) -> Snapshot {
    let mut snap = fixture::small();
    for i in 0..n {
        let port = 10_000 + (i % 50_000) as u16;
        let ip = 1 + i / 50_000;
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::Established,
            "127.0.0.1:7000",
            &format!("127.0.1.{ip}:{port}"),
            1_000_000 + i as u64,
            0,
            &[(1000, 100 + i as u32)],
        ));
    }
    snap
}

#[test]
fn a_small_table_is_dumped_whole_every_interval_within_the_cpu_budget() {
    let now = Instant::now();
    let mut c = Cadence::new(SEC);
    c.charge(Refresh::Full, 1000, Duration::from_millis(5), now);
    assert!(!c.split(), "1k sockets: no split");
    assert_eq!(c.interval(), SEC);
    assert_eq!(c.due_at(now + SEC), Refresh::Full);
    // A dump that costs 200 ms of CPU: at most 1/10.75 of a core (once the
    // smoothing has caught up).
    for _ in 0..20 {
        c.charge(Refresh::Full, 1000, Duration::from_millis(200), now);
    }
    let iv = c.interval();
    assert_within(iv, Duration::from_millis(2100), Duration::from_millis(2200));
}

#[test]
fn a_large_table_refreshes_the_trouble_states_every_interval_and_the_rest_less_often() {
    let t0 = Instant::now();
    let mut c = Cadence::new(SEC);
    // 130k sockets: a full dump costs 400 ms of CPU, a trouble refresh 30 ms.
    c.charge(Refresh::Full, 130_000, Duration::from_millis(400), t0);
    assert!(c.split());
    c.charge(Refresh::Trouble, 130_000, Duration::from_millis(30), t0);
    assert_eq!(c.interval(), SEC, "the trouble states every second");
    // 30 ms/s of trouble refreshes leaves 63 ms/s: a full dump every ~6.3 s.
    let full = c.full_interval();
    assert_within(
        full,
        Duration::from_millis(6150),
        Duration::from_millis(6550),
    );
    let per_second = 0.030 / c.interval().as_secs_f64() + 0.400 / c.full_interval().as_secs_f64();
    assert!(per_second <= 1.0 / MAX_SHARE + 1e-9, "{per_second}");
    // The schedule: trouble refreshes until the full interval is up.
    assert_eq!(c.due_at(t0 + SEC), Refresh::Trouble);
    assert_eq!(c.due_at(t0 + 5 * SEC), Refresh::Trouble);
    assert_eq!(c.due_at(t0 + 7 * SEC), Refresh::Full);
}

#[test]
fn trouble_refreshes_that_cost_too_much_stretch_the_interval_not_the_budget() {
    let t0 = Instant::now();
    let mut c = Cadence::new(SEC);
    c.charge(Refresh::Full, 130_000, Duration::from_millis(400), t0);
    c.charge(Refresh::Trouble, 130_000, Duration::from_millis(100), t0);
    // 100 ms a refresh at 92% of 1/10.75 of a core: every 1.17 s.
    let iv = c.interval();
    assert_within(iv, Duration::from_millis(1160), Duration::from_millis(1180));
    let share = 0.1 / c.interval().as_secs_f64() + 0.4 / c.full_interval().as_secs_f64();
    assert!(share <= 1.0 / MAX_SHARE + 1e-9, "{share}");
    assert!(c.full_interval() <= MAX_FULL, "{:?}", c.full_interval());
}

#[test]
fn costly_full_dumps_take_what_they_need_to_run_once_a_minute_from_the_trouble_states() {
    let t0 = Instant::now();
    let mut c = Cadence::new(SEC);
    // A full dump of 900 ms once a minute needs 15 ms/s of the 93.0: the
    // trouble states get the other 78.0, less than their 92%.
    c.charge(Refresh::Full, 130_000, Duration::from_millis(900), t0);
    c.charge(Refresh::Trouble, 130_000, Duration::from_millis(100), t0);
    let iv = c.interval();
    assert_within(iv, Duration::from_millis(1270), Duration::from_millis(1295));
    let full = c.full_interval();
    assert_within(full, Duration::from_millis(59_500), MAX_FULL);
    let share = 0.1 / iv.as_secs_f64() + 0.9 / full.as_secs_f64();
    assert!(share <= 1.0 / MAX_SHARE + 1e-9, "{share}");
    // A full dump that no budget could run once a minute: the trouble
    // states keep half of it, and the full dumps wait the longest they may
    // (the budget is not held: 46.5 + 100 ms/s; see MIN_TROUBLE_SHARE).
    let mut c = Cadence::new(SEC);
    c.charge(Refresh::Full, 130_000, Duration::from_secs(6), t0);
    c.charge(Refresh::Trouble, 130_000, Duration::from_millis(100), t0);
    let iv = c.interval();
    assert_within(iv, Duration::from_millis(2140), Duration::from_millis(2160));
    assert_eq!(c.full_interval(), MAX_FULL);
}

#[test]
fn the_interval_settles_within_a_few_refreshes_of_a_costly_first_one() {
    // The first trouble refresh after launch costs four times the next
    // ones (it pays for the first drawing of the whole table, cold
    // caches). The user launched sockscope mid-incident: within ten
    // refreshes the interval must be close to what the steady cost gives.
    let ms = Duration::from_millis;
    let t0 = Instant::now();
    let mut c = Cadence::new(SEC);
    c.charge(Refresh::Full, 130_000, ms(400), t0);
    c.charge(Refresh::Trouble, 130_000, ms(400), t0);
    // 400 ms a refresh at 92% of 1/10.75 of a core: every 4.67 s.
    assert_within(c.interval(), ms(4660), ms(4690));
    c.charge(Refresh::Trouble, 130_000, ms(100), t0);
    // The mean of the two, 250 ms: every 2.92 s (smoothed at 0.15 from the
    // first, 355 ms: 4.15 s).
    assert_within(c.interval(), ms(2910), ms(2930));
    for _ in 0..8 {
        c.charge(Refresh::Trouble, 130_000, ms(100), t0);
    }
    // The mean of the first six (150 ms), then four steps at 0.15 towards
    // 100 ms: 126.1 ms, every 1.47 s (smoothed at 0.15 from the start:
    // 169 ms, 1.97 s).
    assert_within(c.interval(), ms(1465), ms(1480));
    for _ in 0..30 {
        c.charge(Refresh::Trouble, 130_000, ms(100), t0);
    }
    assert_within(c.interval(), ms(1168), ms(1175));
}

#[test]
fn the_cpu_meter_never_charges_more_than_the_cores_could_have_used() {
    // As if the last reading had failed and read zero: the next one would
    // be all CPU time since start (what made the old monitor stop refreshing
    // for minutes). The bound is the wall time since the last reading times
    // the cores.
    let spent = crate::collect::clock::process_cpu();
    while crate::collect::clock::process_cpu() < spent + Duration::from_millis(20) {
        std::hint::black_box(0u64);
    }
    let before = Instant::now();
    let mut m = CpuMeter::from(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(1));
    let used = m.take();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let bound = before.elapsed() * cores;
    // The test binary has used more than that by now (its start, the
    // other tests), so an unbounded meter would fail here.
    assert!(crate::collect::clock::process_cpu() > bound, "precondition");
    assert!(used <= bound, "{used:?} > {bound:?}");
}

fn engine_of(
    script: Scripted<impl FnMut(Refresh, usize) -> Result<Snapshot, SourceError> + Send + 'static>,
) -> Engine {
    Engine::new(Box::new(script), SEC)
}

/// The refreshes a scripted source was asked for, in order.
type Asked = std::sync::Arc<std::sync::Mutex<Vec<Refresh>>>;

/// An engine on a partial source of a table large enough to split, whose
/// trouble refreshes are its full one passed through `trouble`; and the log
/// of the refreshes the source was asked for.
fn split_table(trouble: impl Fn(&mut Snapshot) + Send + 'static) -> (Asked, Engine) {
    let asked = Asked::default();
    let log = std::sync::Arc::clone(&asked);
    let script = Scripted::new(move |refresh, n| {
        log.lock().unwrap().push(refresh);
        let mut snap = big(SPLIT_ABOVE + 10);
        at(&mut snap, n as u64, n as u64);
        if refresh == Refresh::Trouble {
            trouble(&mut snap);
        }
        Ok(snap)
    })
    .with_partial();
    (asked, engine_of(script))
}

#[test]
fn a_trouble_refresh_is_merged_into_the_last_full_dump_once_per_socket() {
    let (asked, mut e) = split_table(|snap| {
        // Only the non-ESTABLISHED sockets, and one of the connections
        // went to CLOSE_WAIT since the full dump.
        snap.sockets
            .retain(|s| s.proto == Proto::Tcp && s.state != TcpState::Established);
        let mut moved = big(1).sockets.pop().unwrap();
        moved.state = TcpState::CloseWait;
        snap.sockets.push(moved);
        // As the system source: no owner scan on a trouble refresh.
        for s in &mut snap.sockets {
            s.owners.clear();
        }
        snap.processes.clear();
    });
    let full = e.step(false).unwrap();
    assert!(full.parts.is_none());
    e.cadence_mut().charge(
        Refresh::Trouble,
        0,
        Duration::from_millis(1),
        Instant::now(),
    );
    let merged = e.step(false).unwrap();
    assert_eq!(
        asked.lock().unwrap().as_slice(),
        [Refresh::Full, Refresh::Trouble]
    );
    let parts = merged
        .parts
        .expect("a partial sample says how old its rest is");
    assert_eq!(parts.established_age, SEC);
    // Every socket once: the moved connection only as CLOSE_WAIT.
    assert_eq!(merged.snapshot.sockets.len(), full.snapshot.sockets.len());
    let moved: Vec<_> = merged
        .snapshot
        .sockets
        .iter()
        .filter(|s| s.inode == 1_000_000)
        .map(|s| s.state)
        .collect();
    assert_eq!(moved, [TcpState::CloseWait]);
    // Its holder is the one the full dump found for its inode.
    let moved = merged
        .snapshot
        .sockets
        .iter()
        .find(|s| s.inode == 1_000_000)
        .unwrap();
    assert_eq!(moved.owners.first().map(|o| o.pid), Some(1000));
    let redis_cw = merged
        .snapshot
        .sockets
        .iter()
        .filter(|s| s.state == TcpState::CloseWait && s.local.port() == 6800)
        .all(|s| s.owners.iter().any(|o| o.pid == 1000));
    assert!(redis_cw, "the fixture's CLOSE_WAIT keep their holder");
    assert_eq!(merged.snapshot.monotonic, Duration::from_secs(1001));
    assert!(merged.snapshot.processes.contains_key(&1000));
    // The findings and the history are of the merged sample.
    assert_eq!(merged.history.samples().len(), 2);
    // The connection that moved is new in its state; one still ESTABLISHED
    // keeps its age from the full dump (it was there at the first sample).
    let h = &merged.history;
    let now = merged.snapshot.monotonic;
    let moved_key = merged
        .snapshot
        .sockets
        .iter()
        .find(|s| s.inode == 1_000_000)
        .unwrap()
        .key();
    assert_eq!(h.age(&moved_key, now), Some((Duration::ZERO, false)));
    let kept = merged
        .snapshot
        .sockets
        .iter()
        .find(|s| s.inode == 1_000_001)
        .unwrap();
    assert_eq!(kept.state, TcpState::Established);
    assert_eq!(h.age(&kept.key(), now), Some((SEC, true)));
    assert_eq!(
        merged.counts.get(TcpState::CloseWait),
        full.counts.get(TcpState::CloseWait) + 1
    );
    // The counts the history took when recording are the sample's own.
    for a in [&full, &merged] {
        assert_eq!(a.counts, crate::model::group::by_state(&a.snapshot.sockets));
    }
}

#[test]
fn a_failing_source_is_reported_and_the_next_good_sample_is_a_full_one() {
    let script = Scripted::new(|refresh, n| {
        if n == 1 || n == 2 {
            return Err(SourceError("netlink sock_diag: EBUSY".into()));
        }
        let mut snap = big(SPLIT_ABOVE + 10);
        at(&mut snap, n as u64, n as u64);
        if refresh == Refresh::Trouble {
            snap.sockets.retain(|s| s.state != TcpState::Established);
        }
        Ok(snap)
    })
    .with_partial();
    let mut e = engine_of(script);
    assert!(e.step(false).is_ok());
    let err = e.step(false).unwrap_err();
    assert!(err.0.contains("EBUSY"), "{err}");
    assert!(e.step(false).is_err());
    let back = e.step(false).unwrap();
    assert!(back.parts.is_none(), "after a failure: a full dump");
    assert_eq!(
        back.history.samples().len(),
        2,
        "the failures recorded nothing"
    );
}

#[test]
fn a_wall_clock_step_changes_no_age_rate_or_growth() {
    // The wall clock jumps an hour ahead at the fourth sample (NTP, date -s);
    // the steady clock goes on a second a sample.
    let script = Scripted::new(|_, n| {
        let n = n as u64;
        let mut snap = fixture::leaking(n);
        let jump = if n >= 3 { 3600 } else { 0 };
        at(&mut snap, n + jump, n);
        for s in &mut snap.sockets {
            if let Some(t) = &mut s.tcp_info {
                t.bytes_received = 1000 * n;
            }
        }
        Ok(snap)
    });
    let mut e = engine_of(script);
    let mut last = None;
    for _ in 0..20 {
        last = Some(e.step(false).unwrap());
    }
    let a = last.unwrap();
    let h = &a.history;
    let snap = &a.snapshot;
    let established = snap
        .sockets
        .iter()
        .find(|s| s.state == TcpState::Established && s.tcp_info.is_some())
        .expect("the fixture has a connection");
    let (age, lower_bound) = h.age(&established.key(), snap.monotonic).unwrap();
    assert_eq!(age, Duration::from_secs(19), "19 samples a second apart");
    assert!(lower_bound);
    let rate = h.conn_rate(&established.key()).unwrap();
    assert_eq!(rate.in_bps, 1000, "bytes per steady second");
    assert_eq!(h.span(), Duration::from_secs(19));
    // A CLOSE_WAIT socket that arrived at sample 10: 9 s in its state.
    let late = snap
        .sockets
        .iter()
        .filter(|s| s.state == TcpState::CloseWait)
        .find(|s| {
            h.age(&s.key(), snap.monotonic)
                .is_some_and(|(d, exact)| !exact && d == Duration::from_secs(9))
        });
    assert!(late.is_some(), "exact ages across the step");
    // And what a finding says of when it started is on today's wall clock.
    let (seen, _) = h.first_seen(&late.unwrap().key()).unwrap();
    assert_eq!(
        snap.taken_at.duration_since(seen).unwrap(),
        Duration::from_secs(9)
    );
    let growth = h
        .service_close_wait_growth(Some(1000))
        .expect("enough samples");
    assert!(
        (growth.per_min - 60.0).abs() < 1.0,
        "one a second: {growth:?}"
    );
}

#[test]
fn the_live_engine_holds_one_sample_for_a_ui_that_does_not_take_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sampled = std::sync::Arc::new(AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&sampled);
    let script = Scripted::new(move |_, n| {
        count.fetch_add(1, Ordering::SeqCst);
        let mut snap = fixture::small();
        at(&mut snap, n as u64, n as u64);
        Ok(snap)
    });
    let mut engine = Engine::new(Box::new(script), Duration::from_millis(5));
    engine.cadence_mut().set_base(Duration::from_millis(5));
    let (tx, rx) = std::sync::mpsc::channel();
    let live = live::spawn(engine, None, move |n| tx.send(n).is_ok());
    assert_eq!(rx.recv().unwrap(), live::Notice::Sample);
    // Not taken: the engine goes on sampling, replacing the one in the slot,
    // and sends no more wake-ups.
    while sampled.load(Ordering::SeqCst) < 10 {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(rx.try_recv().is_err(), "one wake-up per slot fill");
    let newest = live.slot.take().expect("the newest sample");
    assert!(
        newest.generation >= 9,
        "the slot holds the newest: {}",
        newest.generation
    );
    assert_eq!(
        rx.recv().unwrap(),
        live::Notice::Sample,
        "taken: woken again"
    );
    drop(rx);
}

#[test]
fn the_live_engine_and_its_workers_run_nicer_than_the_ui() {
    // A key press must not wait behind a refresh of 130k sockets: the
    // engine thread, and any thread it starts to collect, run at a lower
    // weight than the thread that started it (the UI), which keeps its own.
    use rustix::process::getpriority_process;
    let (tx, rx) = std::sync::mpsc::channel();
    let script = Scripted::new(move |_, n| {
        let engine = getpriority_process(None);
        let worker = std::thread::spawn(|| getpriority_process(None))
            .join()
            .expect("a worker");
        let _ = tx.send((engine, worker));
        let mut snap = fixture::small();
        at(&mut snap, n as u64, n as u64);
        Ok(snap)
    });
    let ui = getpriority_process(None).expect("this thread's nice value");
    let engine = Engine::new(Box::new(script), SEC);
    let live = live::spawn(engine, None, |_| true);
    let (engine, worker) = rx.recv().expect("a sample");
    let want = (ui + live::ENGINE_NICE).min(19);
    assert_eq!(engine.expect("the engine's nice value"), want);
    assert_eq!(worker.expect("a worker's nice value"), want);
    assert_eq!(
        getpriority_process(None).ok(),
        Some(ui),
        "the UI keeps its own"
    );
    drop(live);
}

#[test]
fn the_first_dump_of_a_large_table_leaves_tcp_info_out_as_the_next_ones_do() {
    let info = fixture::small()
        .sockets
        .iter()
        .find_map(|s| s.tcp_info.clone())
        .expect("the fixture has tcp_info");
    let with_info = move |n: usize| {
        let mut snap = big(n);
        for s in &mut snap.sockets {
            s.tcp_info = Some(info.clone());
        }
        snap
    };
    let large = with_info.clone();
    let mut engine =
        engine_of(Scripted::new(move |_, _| Ok(large(SPLIT_ABOVE + 10))).with_partial());
    let first = engine.step(false).unwrap();
    assert!(first.snapshot.sockets.iter().all(|s| s.tcp_info.is_none()));
    // A small table keeps it.
    let mut engine = engine_of(Scripted::new(move |_, _| Ok(with_info(100))).with_partial());
    let first = engine.step(false).unwrap();
    assert!(first.snapshot.sockets.iter().all(|s| s.tcp_info.is_some()));
}

#[test]
fn a_scheduled_full_dump_of_a_split_table_comes_right_after_fresh_trouble_states() {
    let (asked, mut e) = split_table(|snap| {
        snap.sockets.retain(|s| s.state != TcpState::Established);
    });
    let mut shown = Vec::new();
    let mut publish = |a: Result<Arc<Analysis>, SourceError>| {
        shown.push(a.unwrap().parts.is_some());
        true
    };
    assert!(e.tick(false, &mut publish), "the first: a full dump alone");
    let now = Instant::now();
    let n = SPLIT_ABOVE + 10;
    e.cadence_mut()
        .charge(Refresh::Trouble, n, Duration::from_millis(1), now);
    assert!(e.tick(false, &mut publish), "a trouble refresh is due");
    // The full dump's time has come (the last one a minute ago).
    e.cadence_mut().charge(
        Refresh::Full,
        n,
        Duration::from_millis(1),
        now - 2 * MAX_FULL,
    );
    assert!(e.tick(false, &mut publish));
    // Asked for now (the user's action): a full dump at once.
    assert!(e.tick(true, &mut publish));
    assert_eq!(
        asked.lock().unwrap().as_slice(),
        [
            Refresh::Full,
            Refresh::Trouble,
            Refresh::Trouble,
            Refresh::Full,
            Refresh::Full
        ]
    );
    // Each shown, the trouble refreshes as partial samples.
    assert_eq!(shown, [false, true, true, false, false]);
}

#[test]
fn each_sample_shows_the_interval_its_own_cost_set() {
    // A sample is charged once digested (its digestion is part of its
    // cost): what it shows must be the cadence after that charge, not
    // before it.
    let (_, mut e) = split_table(|snap| {
        snap.sockets
            .retain(|s| s.proto == Proto::Tcp && s.state != TcpState::Established);
    });
    let check = |e: &Engine, stats: Option<super::CollectStats>, parts: Option<super::Parts>| {
        assert_eq!(stats.map(|s| s.interval), Some(e.cadence().interval()));
        if let Some(p) = parts {
            assert_eq!(p.full_interval, e.cadence().full_interval());
        }
    };
    // A base interval too short to matter: each interval is then what the
    // costs charged make it, and moves with every charge.
    e.cadence_mut().set_base(Duration::from_micros(1));
    let full = e.step(false).unwrap();
    assert!(e.cadence().split());
    check(&e, full.stats, full.parts);
    for _ in 0..3 {
        let a = e.step(false).unwrap();
        assert!(a.parts.is_some(), "a trouble refresh");
        check(&e, a.stats, a.parts);
        assert!(e.cadence().interval() > Duration::from_micros(1));
    }
    // The same for a sink that keeps no history (`record`).
    let (_, stats, parts) = e.sample(false).unwrap();
    assert!(parts.is_some());
    check(&e, Some(stats), parts);
}
