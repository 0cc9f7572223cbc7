use super::*;
use crate::model::fixture::{self, socket};
use crate::model::history::History;
use crate::model::{Filter, Process};

const RUN: Collection = Collection {
    took: Duration::from_millis(250),
    collections: 3,
    errors: 1,
    tcp_info: true,
};

fn family<'a>(families: &'a [Family], name: &str) -> &'a Family {
    families
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

/// The value of the one series of `f` whose labels include all of `want`.
fn value(f: &Family, want: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&Sample> = f
        .samples
        .iter()
        .filter(|s| want.iter().all(|(k, v)| s.label(k) == Some(v)))
        .collect();
    assert!(matching.len() <= 1, "{want:?} matches {matching:?}");
    matching.first().map(|s| s.value.as_f64())
}

fn add_process(snap: &mut Snapshot, pid: u32, name: &str) {
    snap.processes.insert(
        pid,
        Process {
            pid,
            name: name.to_string(),
            cmdline: name.to_string(),
            uid: Some(0),
            user: Some("root".into()),
            closed_sockets: 0,
            state: None,
            netns: 0,
        },
    );
}

/// `n` CLOSE_WAIT sockets held by `pid` on local port `port`.
fn add_close_wait(snap: &mut Snapshot, pid: u32, port: u16, n: u16) {
    for i in 0..n {
        let inode = u64::from(pid) * 1000 + u64::from(i);
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::CloseWait,
            &format!("127.0.0.1:{port}"),
            &format!("127.0.0.1:{}", 40000 + i),
            inode,
            0,
            &[(pid, 10 + u32::from(i))],
        ));
    }
}

/// The fixture (redis 1000 holds 2 CLOSE_WAIT) plus java 2000 with 3 and
/// node 3000 with 1.
fn three_leakers() -> Snapshot {
    let mut snap = fixture::small();
    add_process(&mut snap, 2000, "java");
    add_process(&mut snap, 3000, "node");
    add_close_wait(&mut snap, 2000, 8080, 3);
    add_close_wait(&mut snap, 3000, 3000, 1);
    snap
}

fn build(snap: &Snapshot, top: usize) -> Vec<Family> {
    let mut history = History::default();
    history.record(snap);
    let found = crate::model::findings::analyze(snap, &history, &Filter::default());
    families(snap, &found, &RUN, top)
}

#[test]
fn sockets_are_counted_per_protocol_and_state_with_every_tcp_state_present() {
    let fams = build(&fixture::small(), 10);
    let f = family(&fams, "sockets");
    assert_eq!(f.kind, Type::Gauge);
    let at = |proto, state| value(f, &[("proto", proto), ("state", state)]);
    assert_eq!(at("tcp", "LISTEN"), Some(2.0));
    assert_eq!(at("tcp", "CLOSE_WAIT"), Some(2.0));
    assert_eq!(at("tcp", "TIME_WAIT"), Some(1.0));
    assert_eq!(
        at("tcp", "SYN_RECV"),
        Some(0.0),
        "zeros are values, not gaps"
    );
    assert_eq!(at("udp", "CLOSE"), Some(1.0));
    assert_eq!(at("udp", "ESTABLISHED"), Some(0.0));
    assert_eq!(f.samples.len(), TcpState::ALL.len() + 2);
}

#[test]
fn top_n_processes_per_state_get_their_own_series_and_the_rest_one_other() {
    let snap = three_leakers();
    let cw = |fams: &[Family], process: &str| {
        value(
            family(fams, "process_sockets"),
            &[("process", process), ("state", "CLOSE_WAIT")],
        )
    };

    let top1 = build(&snap, 1);
    assert_eq!(
        cw(&top1, "java"),
        Some(3.0),
        "the biggest holder keeps its name"
    );
    assert_eq!(cw(&top1, "redis-server"), None);
    assert_eq!(cw(&top1, "other"), Some(3.0), "redis 2 + node 1");
    let f = family(&top1, "process_sockets");
    let other = f
        .samples
        .iter()
        .find(|s| s.label("process") == Some("other") && s.label("state") == Some("CLOSE_WAIT"))
        .unwrap();
    assert_eq!(other.label("pid"), None, "other has no pid");
    assert_eq!(other.label("proto"), Some("tcp"));
    let java = f
        .samples
        .iter()
        .find(|s| s.label("process") == Some("java"))
        .unwrap();
    assert_eq!(java.label("pid"), Some("2000"));

    let top2 = build(&snap, 2);
    assert_eq!(cw(&top2, "java"), Some(3.0));
    assert_eq!(cw(&top2, "redis-server"), Some(2.0));
    assert_eq!(cw(&top2, "other"), Some(1.0));

    let top10 = build(&snap, 10);
    assert_eq!(cw(&top10, "node"), Some(1.0));
    assert_eq!(cw(&top10, "other"), None, "no other when everyone fits");

    let top0 = build(&snap, 0);
    assert_eq!(cw(&top0, "other"), Some(6.0));
    assert!(
        family(&top0, "process_sockets")
            .samples
            .iter()
            .all(|s| s.label("pid").is_none())
    );
}

#[test]
fn process_series_stay_bounded_by_top_plus_one_per_state() {
    let mut snap = fixture::small();
    for pid in 10_000..10_200 {
        add_process(&mut snap, pid, "worker");
        add_close_wait(&mut snap, pid, 9000, 1);
    }
    let fams = build(&snap, 5);
    let f = family(&fams, "process_sockets");
    let mut per_state: HashMap<(String, String), usize> = HashMap::new();
    for s in &f.samples {
        let key = (
            s.label("proto").unwrap().to_string(),
            s.label("state").unwrap().to_string(),
        );
        *per_state.entry(key).or_default() += 1;
    }
    assert!(per_state.values().all(|&n| n <= 6), "{per_state:?}");
    let cw = value(f, &[("process", "other"), ("state", "CLOSE_WAIT")]).unwrap();
    let named: f64 = f
        .samples
        .iter()
        .filter(|s| s.label("state") == Some("CLOSE_WAIT") && s.label("pid").is_some())
        .map(|s| s.value.as_f64())
        .sum();
    assert_eq!(named + cw, 202.0, "200 workers + redis' 2, nothing lost");
}

#[test]
fn a_shared_socket_counts_for_each_holder_once() {
    let mut snap = fixture::small();
    add_process(&mut snap, 4243, "nginx");
    // One listener in two workers, and twice (two fds) in the first.
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::Listen,
        "0.0.0.0:443",
        "0.0.0.0:0",
        900,
        33,
        &[(4242, 7), (4242, 8), (4243, 7)],
    ));
    let fams = build(&snap, 10);
    let f = family(&fams, "process_sockets");
    let listen = |pid| value(f, &[("pid", pid), ("state", "LISTEN")]);
    assert_eq!(listen("4242"), Some(2.0), "port 80 and port 443");
    assert_eq!(listen("4243"), Some(1.0));
}

#[test]
fn a_hostile_process_name_is_cleaned_and_escaped() {
    let hostile = "evil\x1b]0;pwned\x07 \"quoted\" back\\slash\nnext\u{202e}line";
    let mut snap = fixture::small();
    add_process(&mut snap, 6666, hostile);
    add_close_wait(&mut snap, 6666, 6666, 1);
    let fams = build(&snap, 10);
    let f = family(&fams, "process_sockets");
    let sample = f
        .samples
        .iter()
        .find(|s| s.label("pid") == Some("6666"))
        .unwrap();
    let cleaned = "evil?]0;pwned? \"quoted\" back\\slash?next?line";
    assert_eq!(sample.label("process"), Some(cleaned));

    let bodies = encode(fams).unwrap();
    for body in [&bodies.text, &bodies.openmetrics] {
        assert!(
            !body.chars().any(|c| c != '\n' && sanitize::is_unsafe(c)),
            "a control character got out"
        );
        let line = body
            .lines()
            .find(|l| l.contains("pid=\"6666\""))
            .expect("the hostile process's series");
        assert!(
            line.contains(r#"process="evil?]0;pwned? \"quoted\" back\\slash?next?line""#),
            "quotes and backslash escaped: {line}"
        );
    }
}

#[test]
fn findings_are_counted_by_kind_and_severity_with_every_combination_present() {
    let snap = three_leakers();
    let fams = build(&snap, 10);
    let f = family(&fams, "findings");
    assert_eq!(f.samples.len(), KINDS.len() * SEVERITIES.len());
    let leaks: f64 = SEVERITIES
        .iter()
        .map(|&s| {
            value(
                f,
                &[("kind", "close_wait_leak"), ("severity", severity_name(s))],
            )
            .unwrap()
        })
        .sum();
    assert_eq!(leaks, 3.0, "one finding per leaking process");
    assert_eq!(
        value(f, &[("kind", "syn_flood"), ("severity", "critical")]),
        Some(0.0)
    );
}

#[test]
fn every_finding_kind_is_listed() {
    // A new Kind must be added to KINDS (else its series would be missing):
    // this match stops compiling when one is added.
    for kind in KINDS {
        match kind {
            Kind::CloseWaitLeak
            | Kind::ClosedSocketsHeld
            | Kind::AcceptStalled
            | Kind::FinWait2
            | Kind::TimeWaitPressure
            | Kind::ListenQueueFull
            | Kind::SynFlood
            | Kind::Retransmissions
            | Kind::TopClients
            | Kind::ConnectionStorm
            | Kind::ResetStorm
            | Kind::ShortLived
            | Kind::CloseWaitInflow => {}
        }
    }
    let names: HashSet<&str> = KINDS.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), KINDS.len());
}

fn with_counters(pairs: &[(&str, u64)]) -> Snapshot {
    let mut snap = fixture::small();
    for (k, v) in pairs {
        snap.system.counters.insert(k.to_string(), *v);
    }
    snap
}

#[test]
fn kernel_counters_are_counters_gauges_are_gauges_and_settings_are_left_out() {
    let snap = with_counters(&[
        ("Tcp.RetransSegs", 5),
        ("TcpExt.ListenOverflows", 7),
        ("Tcp.CurrEstab", 3),
        ("MPTcpExt.MPCurrEstab", 0),
        ("Tcp.RtoMin", 200),
        ("Tcp.RtoMax", 120000),
        ("Tcp.RtoAlgorithm", 1),
        ("Ip.Forwarding", 1),
        ("Ip.DefaultTTL", 64),
    ]);
    let fams = build(&snap, 10);
    let retrans = family(&fams, "netstat_tcp_retranssegs");
    assert_eq!(retrans.kind, Type::Counter);
    assert_eq!(retrans.samples[0].value, Value::Int(5));
    let overflows = family(&fams, "netstat_tcpext_listenoverflows");
    assert!(
        overflows.help.contains("accept queue was full"),
        "pinned counters are explained: {}",
        overflows.help
    );
    assert_eq!(family(&fams, "netstat_tcp_currestab").kind, Type::Gauge);
    assert_eq!(
        family(&fams, "netstat_mptcpext_mpcurrestab").kind,
        Type::Gauge
    );
    for gone in [
        "netstat_tcp_rtomin",
        "netstat_tcp_rtomax",
        "netstat_tcp_rtoalgorithm",
        "netstat_ip_forwarding",
        "netstat_ip_defaultttl",
    ] {
        assert!(fams.iter().all(|f| f.name != gone), "{gone} is a setting");
    }

    let bodies = encode(fams).unwrap();
    let text = &bodies.text;
    assert!(text.contains("# TYPE sockscope_netstat_tcp_retranssegs_total counter\n"));
    assert!(text.contains("\nsockscope_netstat_tcp_retranssegs_total 5\n"));
    assert!(text.contains("# TYPE sockscope_netstat_tcp_currestab gauge\n"));
    assert!(text.contains("\nsockscope_netstat_tcp_currestab 3\n"));
    let om = &bodies.openmetrics;
    assert!(om.contains("# TYPE sockscope_netstat_tcp_retranssegs counter\n"));
    assert!(om.contains("\nsockscope_netstat_tcp_retranssegs_total 5\n"));
    assert!(om.ends_with("# EOF\n"));
    assert!(!text.contains("# EOF"));
}

#[test]
fn kernel_names_become_lower_case_metric_names() {
    assert_eq!(
        kernel_metric_name("TcpExt.TCPSACKReneging"),
        "netstat_tcpext_tcpsackreneging"
    );
    assert_eq!(
        kernel_metric_name("IcmpMsg.InType3"),
        "netstat_icmpmsg_intype3"
    );
    assert_eq!(kernel_metric_name("Odd.Name-1 x"), "netstat_odd_name_1_x");
}

#[test]
fn the_exporter_reports_its_own_collections() {
    let fams = build(&fixture::small(), 10);
    let bodies = encode(fams).unwrap();
    let text = &bodies.text;
    for line in [
        "sockscope_collections_total 3\n",
        "sockscope_collection_errors_total 1\n",
        "sockscope_collection_duration_seconds 0.25\n",
        "sockscope_snapshot_timestamp_seconds 1800000000",
        "sockscope_tcp_info_collected 1\n",
        "sockscope_unreadable_processes 0\n",
        "# TYPE sockscope_collections_total counter\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains(&format!(
        "sockscope_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    )));
}

#[test]
fn help_text_is_one_plain_line() {
    assert_eq!(
        help_text("a \"quoted\"\nback\\slash"),
        "a 'quoted' back/slash"
    );
}

#[test]
fn limits_are_exported_with_their_bounds() {
    use crate::model::{Proto::Tcp, TcpState::*};
    let mut snap = fixture::small();
    // Three connections to one backend from ephemeral ports, one to another.
    for (local, remote) in [
        ("10.0.0.1:40001", "10.0.0.9:5432"),
        ("10.0.0.1:40002", "10.0.0.9:5432"),
        ("10.0.0.1:40003", "10.0.0.9:5432"),
        ("10.0.0.1:40004", "10.0.0.8:6379"),
    ] {
        snap.sockets
            .push(socket(Tcp, TimeWait, local, remote, 0, 0, &[]));
    }
    snap.system.sockstat.insert("TCP.tw".into(), 7);
    let text = encode(build(&snap, 10)).unwrap().text;
    for line in [
        "sockscope_time_wait_buckets 7\n",
        "sockscope_time_wait_buckets_max 262144\n",
        "sockscope_ephemeral_ports 28232\n",
        "sockscope_ephemeral_ports_busiest_destination 3\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    // A sysctl that could not be read is no series, not a 0 limit.
    snap.system.sysctls.clear();
    let text = encode(build(&snap, 10)).unwrap().text;
    assert!(text.contains("sockscope_time_wait_buckets 7\n"));
    assert!(!text.contains("# TYPE sockscope_time_wait_buckets_max"));
    assert!(!text.contains("# TYPE sockscope_ephemeral_ports"));
}
