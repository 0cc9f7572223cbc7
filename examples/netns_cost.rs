//! What reading the other network namespaces adds to a refresh, on this
//! machine as it is (bench/netns.sh starts loadgen's ~130k host sockets and
//! 200 namespaces of 50 sockets first):
//!
//! ```text
//! cargo run --release --example netns_cost -- [--refreshes 20] [--rounds 3]
//!     [--warmup 3] [--gap-ms 0] [--cold] [--modes off,on] [--dump-one]
//!     [--prefix sockscope-bench-]
//! ```
//!
//! Runs one incremental collector per mode, as the monitor runs it above 20k
//! sockets (`tcp_info` off, owners on): namespaces off, and on. Each makes
//! `--warmup` untimed full refreshes, then the modes take turns, `--rounds`
//! blocks of `--refreshes` full refreshes each (the order swaps every
//! round, so drift in the host's load falls on both). A refresh's cost is
//! the process's CPU time over it, user and system (`getrusage`): a
//! namespace's dump is kernel time, spent walking the TCP hash that all
//! namespaces share.
//!
//! Back to back (`--gap-ms 0`), a namespace whose counters have not moved
//! reuses its last table (up to `MAX_REUSE`), so most refreshes dump none:
//! what the monitor and `serve` pay each refresh once they run. `--cold`
//! makes a new collector for every timed refresh, so that every namespace
//! is dumped (and every fd table listed): what a first refresh, or
//! `snapshot`, pays.
//!
//! `--dump-one` also times, with the public pieces the collector uses, one
//! namespace's dump (the first `/run/netns/PREFIX*`), its counters' read
//! (what deciding on a reuse costs), the discovery of namespaces, and the
//! host's own TCP dump.

use sockscope::collect::netlink::{DumpRequest, Dumper};
use sockscope::collect::netns::{MAX_REUSE, discover, enter};
use sockscope::collect::{Collector, Options, SourceChoice, SystemCollector};
use sockscope::model::{Family, HOST_NETNS, Proto, Snapshot};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    refreshes: usize,
    rounds: usize,
    warmup: usize,
    gap: Duration,
    cold: bool,
    modes: Vec<bool>,
    dump_one: bool,
    prefix: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        refreshes: 20,
        rounds: 3,
        warmup: 3,
        gap: Duration::ZERO,
        cold: false,
        modes: vec![false, true],
        dump_one: false,
        prefix: "sockscope-bench-".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{arg} {v}: {e}"));
        match arg.as_str() {
            "--refreshes" => a.refreshes = number(value()?)?.max(1),
            "--rounds" => a.rounds = number(value()?)?.max(1),
            "--warmup" => a.warmup = number(value()?)?,
            "--gap-ms" => a.gap = Duration::from_millis(number(value()?)? as u64),
            "--cold" => a.cold = true,
            "--modes" => {
                a.modes = value()?
                    .split(',')
                    .map(|m| match m {
                        "off" => Ok(false),
                        "on" => Ok(true),
                        _ => Err(format!("--modes: {m}: want off and/or on")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--dump-one" => a.dump_one = true,
            "--prefix" => a.prefix = value()?,
            "-h" | "--help" => {
                println!("see the comment at the top of examples/netns_cost.rs");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(a)
}

/// User and system CPU time of the whole process so far, all threads
/// (including the ones that have ended: the owner scan's workers and the
/// threads that enter a namespace).
fn cpu() -> (Duration, Duration) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage for the kernel to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Default)]
struct Tally {
    user: Vec<Duration>,
    sys: Vec<Duration>,
    wall: Vec<Duration>,
    sockets: usize,
    ours: usize,
    namespaces: usize,
    our_namespaces: usize,
    dumped: u64,
    reused: u64,
}

impl Tally {
    fn total(&self) -> Vec<Duration> {
        self.user
            .iter()
            .zip(&self.sys)
            .map(|(u, s)| *u + *s)
            .collect()
    }
    fn mean(v: &[Duration]) -> Duration {
        v.iter().sum::<Duration>() / v.len().max(1) as u32
    }
    fn median(v: &[Duration]) -> Duration {
        let mut v = v.to_vec();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
}

fn collector(namespaces: bool) -> SystemCollector {
    SystemCollector::new(Options {
        source: SourceChoice::Auto,
        // Above 20k sockets (TCP_INFO_LIMIT) the monitor leaves it out.
        tcp_info: false,
        owners: true,
        incremental: true,
        namespaces,
    })
}

fn refresh(c: &mut SystemCollector) -> Snapshot {
    c.collect().expect("collect")
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("netns_cost: {e}");
            std::process::exit(2);
        }
    };
    let mut collectors: Vec<(bool, SystemCollector, Tally)> = args
        .modes
        .iter()
        .map(|&on| (on, collector(on), Tally::default()))
        .collect();
    for (_, c, _) in &mut collectors {
        for _ in 0..args.warmup {
            refresh(c);
        }
    }
    let mut gap_note = if args.gap.is_zero() {
        "back to back".to_string()
    } else {
        format!("{} ms apart", args.gap.as_millis())
    };
    if args.cold {
        gap_note.push_str(", each by a new collector (every namespace dumped)");
    }
    println!(
        "netns_cost: {} rounds x {} full refreshes per mode, {gap_note}, after {} warm-up refreshes; \
         incremental, owners on, tcp_info off; namespace table reuse up to {} s",
        args.rounds,
        args.refreshes,
        args.warmup,
        MAX_REUSE.as_secs_f64()
    );
    for round in 0..args.rounds {
        let n = collectors.len();
        for k in 0..n {
            // Swap the order every round.
            let i = if round % 2 == 0 { k } else { n - 1 - k };
            let (on, c, t) = &mut collectors[i];
            let (mut d0, mut r0) = c.namespace_reads();
            for _ in 0..args.refreshes {
                if !args.gap.is_zero() {
                    std::thread::sleep(args.gap);
                }
                if args.cold {
                    *c = collector(*on);
                }
                let (u0, s0) = cpu();
                let w0 = Instant::now();
                let snap = refresh(c);
                let wall = w0.elapsed();
                if args.cold {
                    // A new collector counts from 0.
                    let (d1, r1) = c.namespace_reads();
                    t.dumped += d1;
                    t.reused += r1;
                    (d0, r0) = (0, 0);
                }
                let (u1, s1) = cpu();
                t.user.push(u1 - u0);
                t.sys.push(s1 - s0);
                t.wall.push(wall);
                t.sockets = snap.sockets.len();
                t.namespaces = snap.namespaces.list.len();
                t.our_namespaces = snap
                    .namespaces
                    .list
                    .values()
                    .filter(|n| n.name.starts_with(&args.prefix))
                    .count();
                t.ours = snap
                    .sockets
                    .iter()
                    .filter(|s| {
                        s.netns != HOST_NETNS
                            && snap.namespaces.name(s.netns).starts_with(&args.prefix)
                    })
                    .count();
            }
            if !args.cold {
                let (d1, r1) = c.namespace_reads();
                t.dumped += d1 - d0;
                t.reused += r1 - r0;
            }
        }
    }

    println!();
    println!(
        "{:<16} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>9} {:>8} {:>8}",
        "namespaces",
        "refreshes",
        "CPU ms",
        "user ms",
        "sys ms",
        "CPU ms",
        "CPU ms",
        "wall ms",
        "sockets",
        "netns",
        "of them",
        "ns",
        "ns"
    );
    println!(
        "{:<16} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>9} {:>8} {:>8}",
        "", "", "mean", "mean", "mean", "median", "max", "mean", "", "", "ours", "dumped", "reused"
    );
    for (on, _, t) in &collectors {
        let total = t.total();
        println!(
            "{:<16} {:>9} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>6} {:>9} {:>8} {:>8}",
            if *on { "on" } else { "off" },
            total.len(),
            ms(Tally::mean(&total)),
            ms(Tally::mean(&t.user)),
            ms(Tally::mean(&t.sys)),
            ms(Tally::median(&total)),
            ms(total.iter().max().copied().unwrap_or_default()),
            ms(Tally::mean(&t.wall)),
            t.sockets,
            t.namespaces,
            format!("{}/{}", t.our_namespaces, t.ours),
            t.dumped,
            t.reused
        );
    }
    for (on, _, t) in &collectors {
        // For bench/netns.sh.
        let total = t.total();
        println!(
            "figures: namespaces={} refreshes={} mean_cpu_ms={:.3} median_cpu_ms={:.3} dumped={} reused={}",
            if *on { "on" } else { "off" },
            total.len(),
            ms(Tally::mean(&total)),
            ms(Tally::median(&total)),
            t.dumped,
            t.reused
        );
    }
    println!(
        "(sockets and netns: of the last refresh; 'of them ours': namespaces named {}* / their sockets;",
        args.prefix
    );
    println!(" ns dumped / reused: namespace tables dumped / reused over the timed refreshes)");
    let find = |want: bool| collectors.iter().find(|(on, _, _)| *on == want);
    if let (Some((_, _, off)), Some((_, _, on))) = (find(false), find(true)) {
        let (a, b) = (Tally::mean(&on.total()), Tally::mean(&off.total()));
        let (am, bm) = (Tally::median(&on.total()), Tally::median(&off.total()));
        let extra = on.dumped as f64 / on.total().len() as f64;
        println!(
            "on / off - 1: {:+.1}% (mean CPU: {:.1} vs {:.1} ms), {:+.1}% (median CPU); \
             {extra:.1} namespace dumps per refresh",
            (a.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0,
            ms(a),
            ms(b),
            (am.as_secs_f64() / bm.as_secs_f64() - 1.0) * 100.0,
        );
    }
    if args.dump_one {
        dump_one(&args.prefix);
    }
}

/// The CPU time of `f`, the median of `n` runs.
fn median_cpu(n: usize, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let (u0, s0) = cpu();
            f();
            let (u1, s1) = cpu();
            (u1 + s1) - (u0 + s0)
        })
        .collect();
    v.sort();
    v[n / 2]
}

/// One namespace's pieces of a refresh, timed apart.
fn dump_one(prefix: &str) {
    println!();
    let first = std::fs::read_dir("/run/netns").ok().and_then(|d| {
        let mut names: Vec<String> = d
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort_by_key(|n| (n.len(), n.clone()));
        names.into_iter().next()
    });
    let Some(name) = first else {
        println!("dump-one: no /run/netns/{prefix}* to time");
        return;
    };
    let path = format!("/run/netns/{name}");
    let ns: Arc<OwnedFd> = Arc::new(File::open(&path).expect("open the namespace").into());
    let mut dumper = Dumper::open_in(Arc::clone(&ns), 64 << 10).expect("netlink in the namespace");
    let mut host = Dumper::open().expect("netlink");
    const RUNS: usize = 15;
    // Negative: the namespace shares the host's TCP hash, and each of its
    // TCP dumps walks every socket of the machine.
    let ehash = enter::read_in(ns.as_fd(), &["/proc/sys/net/ipv4/tcp_ehash_entries"])
        .ok()
        .and_then(|v| v.into_iter().next().flatten())
        .map_or("?".to_string(), |s| s.trim().to_string());
    println!("{name}: tcp_ehash_entries {ehash} (negative: it shares the host's TCP hash)");
    println!("pieces of a refresh, CPU time (user + sys), median of {RUNS}:");
    // What the collector does: TCP of both families in one walk, then UDP
    // per family.
    let mut got = 0;
    let mut total = median_cpu(RUNS, || {
        let mut out = Vec::new();
        dumper
            .dump_tcp_both_families(false, &mut out)
            .expect("dump");
        got = out.len();
    });
    println!(
        "  {name} Tcp both families, one walk: {:>8.3} ms ({got} sockets)",
        ms(total)
    );
    for proto in [Proto::Tcp, Proto::Udp] {
        for family in [Family::V4, Family::V6] {
            let req = DumpRequest {
                proto,
                family,
                tcp_info: false,
            };
            let mut got = 0;
            let t = median_cpu(RUNS, || {
                let mut out = Vec::new();
                dumper.dump(req, &mut out).expect("dump");
                got = out.len();
            });
            if proto == Proto::Udp {
                total += t;
            }
            println!(
                "  {name} {:?} {:?} dump: {:>8.3} ms ({got} sockets)",
                proto,
                family,
                ms(t)
            );
        }
    }
    println!(
        "  one namespace's whole dump (TCP in one walk, UDP per family): {:.3} ms",
        ms(total)
    );
    let files = enter::run_in(ns.as_fd(), || {
        ["snmp", "sockstat", "sockstat6", "netstat"]
            .iter()
            .filter_map(|f| File::open(format!("/proc/thread-self/net/{f}")).ok())
            .collect::<Vec<_>>()
    })
    .expect("enter the namespace");
    let mut buf = vec![0u8; 64 << 10];
    let t = median_cpu(RUNS, || {
        for f in &files {
            let _ = f.read_at(&mut buf, 0);
        }
    });
    println!(
        "  its counters read ({} files, what a reuse costs): {:.3} ms",
        files.len(),
        ms(t)
    );
    signature_drift(&files);
    let mut found = 0;
    let t = median_cpu(5, || found = discover::discover().found.len());
    println!(
        "  discovery of namespaces (/proc/*/ns/net, mountinfo): {:.1} ms ({found} namespaces)",
        ms(t)
    );
    for family in [Family::V4, Family::V6] {
        let mut got = 0;
        let t = median_cpu(5, || {
            let mut out = Vec::new();
            host.dump(
                DumpRequest {
                    proto: Proto::Tcp,
                    family,
                    tcp_info: false,
                },
                &mut out,
            )
            .expect("dump");
            got = out.len();
        });
        println!(
            "  host Tcp {family:?} dump: {:.1} ms ({got} sockets)",
            ms(t)
        );
    }
}

/// Which of the texts a namespace's reuse depends on (snmp, sockstat,
/// sockstat6) moved over one second of this idle namespace, and, for
/// sockstat, in which fields: some (TCP orphan, alloc, mem; UDP mem) are
/// the machine's, not the namespace's.
fn signature_drift(files: &[File]) {
    let read = |f: &File| {
        let mut buf = vec![0u8; 64 << 10];
        let n = f.read_at(&mut buf, 0).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let before: Vec<String> = files.iter().take(3).map(read).collect();
    std::thread::sleep(Duration::from_secs(1));
    let after: Vec<String> = files.iter().take(3).map(read).collect();
    let mut moved = Vec::new();
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        let file = ["snmp", "sockstat", "sockstat6"][i];
        if a == b {
            continue;
        }
        let mut fields = Vec::new();
        for (la, lb) in a.lines().zip(b.lines()) {
            let (wa, wb): (Vec<&str>, Vec<&str>) = (
                la.split_whitespace().collect(),
                lb.split_whitespace().collect(),
            );
            // sockstat lines are "TCP: inuse 49 orphan 0 tw 0 alloc 9 mem 1".
            for k in (1..wa.len().min(wb.len())).step_by(2) {
                if wa.get(k + 1) != wb.get(k + 1) {
                    fields.push(format!("{} {}", wa[0].trim_end_matches(':'), wa[k]));
                }
            }
        }
        if i == 0 {
            moved.push(file.to_string());
        } else {
            moved.push(format!("{file} ({})", fields.join(", ")));
        }
    }
    if moved.is_empty() {
        println!(
            "  over 1 s, this idle namespace's snmp, sockstat, sockstat6 stood still: its table can be reused"
        );
    } else {
        println!(
            "  over 1 s, in this idle namespace, moved: {} (a moved text means a dump)",
            moved.join("; ")
        );
    }
}
