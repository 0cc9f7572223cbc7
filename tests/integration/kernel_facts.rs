//! Issue 17, the kernel's side: port exhaustion under `tcp_tw_reuse` and
//! SYN retries at a full queue, each in a network namespace the test
//! creates (its sysctls and counters are its own, never the host's);
//! timers with their time left from both sources; a socket pid 1 passes
//! over SCM_RIGHTS (in a PID namespace of its own); a socket only a
//! thread's private fd table holds.

use crate::common;
use crate::real_servers::{findings, of_kind, text};

use common::{output, poll, sockscope};
use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `script` (Python) as root in a network namespace of its own, with
/// loopback up; its stdout.
fn in_new_netns(script: &str, args: &[&str]) -> std::process::Output {
    let out = output(
        Command::new("unshare")
            .args([
                "-n",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec python3 -c \"$0\" \"$@\"",
            ])
            .arg(script)
            .args(args),
    );
    assert!(
        out.status.success(),
        "the namespace's script failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn port_exhaustion_under_tw_reuse_2_with_failing_connects_is_never_info() {
    let test = "port_exhaustion_under_tw_reuse_2_with_failing_connects_is_never_info";
    if !common::root_or_skip(test, "port exhaustion in a namespace of its own") {
        return;
    }
    for tool in ["unshare", "ip"] {
        assert!(
            common::find_program(tool).is_some(),
            "{tool} is needed (.ci/run installs it)"
        );
    }
    // In the namespace: 1000 ports, tcp_tw_reuse = 2 (the default); a
    // server that closes after its client; a client that connects and
    // closes as fast as it can, counting EADDRNOTAVAIL, while sockscope
    // diagnoses.
    let script = r#"
import errno, json, os, socket, subprocess, sys, threading, time
open('/proc/sys/net/ipv4/ip_local_port_range', 'w').write('40000 40999')
open('/proc/sys/net/ipv4/tcp_tw_reuse', 'w').write('2')
l = socket.socket(); l.bind(('127.0.0.1', 18400)); l.listen(4096)
server = os.fork()
if server == 0:
    while True:
        c, _ = l.accept()
        c.recv(1)
        c.close()
l.close()
stop = False
failed = 0
def churn():
    global failed
    while not stop:
        s = socket.socket()
        try:
            s.connect(('127.0.0.1', 18400))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                failed += 1
        s.close()
t = threading.Thread(target=churn); t.start()
time.sleep(2)
before = failed
d = subprocess.run([sys.argv[1], 'diagnose', '--json', '--for', '2', 'rport:18400'], capture_output=True)
after = failed
stop = True; t.join()
os.kill(server, 9)
print(json.dumps({'code': d.returncode, 'doc': json.loads(d.stdout), 'failed_during': after - before}))
"#;
    let out = in_new_netns(script, &[common::bin()]);
    let res: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    let failed = res["failed_during"].as_u64().unwrap();
    assert!(
        failed > 0,
        "the client never hit EADDRNOTAVAIL: the situation was not produced ({res:#})"
    );
    let doc = &res["doc"];
    let tw = of_kind(doc, "time_wait_pressure");
    let f = tw
        .iter()
        .find(|f| f["port"] == 18400)
        .unwrap_or_else(|| panic!("no time_wait_pressure towards :18400: {doc:#}"));
    assert_ne!(
        f["severity"], "info",
        "connects are failing ({failed} during the diagnosis): {f:#}"
    );
    assert!(text(f, "message").contains("EADDRNOTAVAIL"), "{f:#}");
    assert_eq!(res["code"], 1, "{res:#}");
}

#[test]
fn syn_retries_at_a_full_accept_queue_are_not_reported_as_packet_loss() {
    let test = "syn_retries_at_a_full_accept_queue_are_not_reported_as_packet_loss";
    if !common::root_or_skip(test, "SYN retries in a namespace of its own") {
        return;
    }
    // In the namespace (its counters are its own): a listener that never
    // accepts, with a backlog of 2, and 200 clients trying to connect (their SYNs retried at 1 s and 3 s).
    let script = r#"
import json, socket, subprocess, sys, time
l = socket.socket(); l.bind(('127.0.0.1', 18500)); l.listen(2)
clients = []
for _ in range(200):
    s = socket.socket(); s.setblocking(False)
    try:
        s.connect(('127.0.0.1', 18500))
    except BlockingIOError:
        pass
    clients.append(s)
time.sleep(1.5)
d = subprocess.run([sys.argv[1], 'diagnose', '--json', '--for', '3'], capture_output=True)
snmp = open('/proc/net/netstat').read().split('\n')
names, values = snmp[0].split(), snmp[1].split()
print(json.dumps({'code': d.returncode, 'doc': json.loads(d.stdout),
                  'syn_retrans': int(values[names.index('TCPSynRetrans')])}))
"#;
    let out = in_new_netns(script, &[common::bin()]);
    let res: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    assert!(
        res["syn_retrans"].as_u64().unwrap() > 0,
        "no SYN was retried: the situation was not produced ({res:#})"
    );
    let doc = &res["doc"];
    let loss: Vec<&Value> = of_kind(doc, "retransmissions");
    assert!(
        loss.iter().all(|f| f["severity"] == "info"),
        "SYN retries are not packet loss: {doc:#}"
    );
    assert!(
        !findings(doc)
            .iter()
            .any(|f| text(f, "next_step").contains("ip -s link")),
        "nobody is sent to interface errors: {doc:#}"
    );
    let at_listener: Vec<&Value> = findings(doc)
        .into_iter()
        .filter(|f| f["port"] == 18500)
        .filter(|f| f["kind"] == "listen_queue_full" || f["kind"] == "accept_stalled")
        .collect();
    assert_eq!(at_listener.len(), 1, "{doc:#}");
    assert!(
        text(at_listener[0], "message").contains("TcpExt.TCPSynRetrans rose by"),
        "the SYN retries are tied to the full queue: {:#}",
        at_listener[0]
    );
}

#[test]
fn time_wait_and_orphaned_fin_wait2_carry_their_time_left_from_both_sources() {
    // TIME_WAIT: the client closes first and the server after it.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client_port = c.local_addr().unwrap().port();
    let (s, _) = l.accept().unwrap();
    drop(c);
    std::thread::sleep(Duration::from_millis(50));
    drop(s);
    // Orphaned FIN_WAIT2: a client that closes while the server keeps its end.
    let c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let orphan_port = c2.local_addr().unwrap().port();
    let (_kept, _) = l.accept().unwrap();
    drop(c2);
    for source in ["netlink", "proc"] {
        let timer_of = |lport: u16, state: &str| {
            poll(&format!("{state} on :{lport} via {source}"), || {
                let out = output(&mut sockscope(&[
                    "snapshot",
                    "--json",
                    "--source",
                    source,
                    &format!("lport:{lport}"),
                    &format!("rport:{port}"),
                ]));
                let rows: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
                rows.into_iter()
                    .find(|r| r["state"] == state)
                    .map(|r| r["timer"].clone())
            })
        };
        // TIME_WAIT lasts 60 s; an orphaned FIN_WAIT2 net.ipv4.tcp_fin_timeout,
        // which a benchmark on this machine may have raised.
        let fin_timeout_ms = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fin_timeout")
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .map_or(60_000, |s| s * 1000);
        for (lport, state, most) in [
            (client_port, "TIME_WAIT", 60_000),
            (orphan_port, "FIN_WAIT2", fin_timeout_ms),
        ] {
            let timer = timer_of(lport, state);
            let left = timer["expires_ms"]
                .as_u64()
                .unwrap_or_else(|| panic!("{state} via {source} has no time left: {timer}"));
            assert!(left > 0 && left <= most, "{state} via {source}: {timer}");
        }
    }
}

#[test]
fn a_socket_passed_by_pid_1_over_scm_rights_counts_as_the_receivers_filter_lists_it() {
    let test = "a_socket_passed_by_pid_1_over_scm_rights_counts_as_the_receivers_filter_lists_it";
    if !common::root_or_skip(test, "SCM_RIGHTS from pid 1 in a PID namespace of its own") {
        return;
    }
    // In a PID namespace the script is pid 1 (as systemd is for socket
    // activation): it accepts two connections, passes both to a receiver
    // over SCM_RIGHTS, keeps its copy of the first, and the clients close.
    let script = r#"
import json, os, socket, subprocess, sys, time
a, b = socket.socketpair()
receiver = os.fork()
if receiver == 0:
    a.close()
    msg, fds, _, _ = socket.recv_fds(b, 16, 2)
    b.send(b'ok')
    b.recv(1)
    os._exit(0)
b.close()
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(8)
port = l.getsockname()[1]
c1 = socket.create_connection(('127.0.0.1', port)); s1, _ = l.accept()
c2 = socket.create_connection(('127.0.0.1', port)); s2, _ = l.accept()
socket.send_fds(a, [b'fds'], [s1.fileno(), s2.fileno()])
a.recv(2)
s2.close()
c1.close(); c2.close()
time.sleep(0.3)
d = subprocess.run([sys.argv[1], 'diagnose', '--json', '--for', '0', 'lport:%d' % port], capture_output=True)
doc = json.loads(d.stdout)
listed = {}
for f in doc['findings']:
    if f['kind'] == 'close_wait_leak':
        rows = subprocess.run([sys.argv[1], 'snapshot', '--json'] + f['filter'].split(), capture_output=True)
        listed[f['filter']] = len(json.loads(rows.stdout))
print(json.dumps({'doc': doc, 'receiver': receiver, 'listed': listed}))
a.close()
os.waitpid(receiver, 0)
"#;
    let out = output(
        Command::new("unshare")
            .args(["-p", "-f", "--mount-proc", "--", "python3", "-c", script])
            .arg(common::bin()),
    );
    assert!(
        out.status.success(),
        "the namespace's script failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let res: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    let receiver = res["receiver"].as_u64().unwrap();
    let cw = of_kind(&res["doc"], "close_wait_leak");
    assert_eq!(cw.len(), 1, "one finding for the two sockets: {res:#}");
    let f = cw[0];
    assert_eq!(f["pid"], receiver, "{f:#}");
    assert_eq!(f["count"], 2, "{f:#}");
    let filter = text(f, "filter");
    assert_eq!(
        res["listed"][&filter], f["count"],
        "the finding's filter `{filter}` lists what it counts: {res:#}"
    );
}

#[test]
fn a_socket_held_only_by_a_thread_with_its_own_fd_table_gets_the_true_cause() {
    // A thread that unshared its fd table (CLONE_FILES) opens a listener:
    // /proc/PID/fd (the main thread's table) does not show it.
    let script = r#"
import ctypes, socket, sys, threading, time
CLONE_FILES = 0x400
libc = ctypes.CDLL(None, use_errno=True)
ready = threading.Event()
def private():
    if libc.unshare(CLONE_FILES) != 0:
        print('unshare failed', ctypes.get_errno(), flush=True); ready.set(); return
    l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
    print(l.getsockname()[1], flush=True)
    ready.set()
    time.sleep(30)
threading.Thread(target=private, daemon=True).start()
ready.wait()
sys.stdin.read()
"#;
    let mut child = common::spawn_locked(
        Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let pid = child.id();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the thread said {line:?}"));
    let out = output(&mut sockscope(&[
        "snapshot",
        "--json",
        &format!("lport:{port}"),
    ]));
    let rows = common::parse_rows(&out.stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if rows[0].owners.iter().any(|o| o.pid == pid) {
        // An owner scan that reads each thread's table finds it: nothing to explain.
    } else {
        let note = stderr
            .lines()
            .find(|l| l.starts_with("sockscope: "))
            .unwrap_or_else(|| panic!("an owner is missing and nothing says why: {stderr:?}"));
        assert!(
            note.contains("held by a thread with its own fd table"),
            "the note names the cause that fits: {note}"
        );
        assert!(!note.contains(" 0 sockets"), "{note}");
        let (n, _) = common::parse_attribution_note(note).expect("the note parses");
        assert!(n >= 1, "{note}");
    }
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}
