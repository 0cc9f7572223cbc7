//! The shipped rules and dashboard against the real thing: Debian's
//! `prometheus` server on a free loopback port with a temporary data
//! directory, scraping a real `sockscope serve` while this test holds a real,
//! growing CLOSE_WAIT leak. Through Prometheus's HTTP API: the target is up,
//! every recording rule yields series, the CLOSE_WAIT alert (a test copy of
//! the rules with a short `for:`) goes pending or firing for the leaking pid,
//! and every dashboard query returns data.

use crate::common::{self, Holder, find_program};
use crate::prometheus_rules::{assets, dashboard_queries};
use crate::serve::client::{Server, http};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The Prometheus server; killed and reaped on drop, whatever the test did.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `/api/v1/...` as JSON; `None` while Prometheus is not answering yet.
fn api(port: u16, path_and_query: &str) -> Option<serde_json::Value> {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    drop(stream);
    let resp = http(port, "GET", path_and_query, &[]);
    if resp.status != 200 {
        return None;
    }
    serde_json::from_str(&resp.body).ok()
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query (empty when it has no series).
fn query(port: u16, q: &str) -> Vec<serde_json::Value> {
    api(port, &format!("/api/v1/query?query={}", encode(q)))
        .and_then(|v| v["data"]["result"].as_array().cloned())
        .unwrap_or_default()
}

/// Polls `f` every 500 ms until it returns `Some` or `deadline` passes.
fn until<T>(deadline: Instant, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn real_prometheus_scrapes_serve_evaluates_the_rules_and_fires_the_close_wait_alert() {
    let Some(prometheus) = find_program("prometheus") else {
        common::skipped(
            "real_prometheus_scrapes_serve_evaluates_the_rules_and_fires_the_close_wait_alert",
            "the rules and dashboard against a Prometheus server",
            "prometheus is not on PATH",
            ".ci/run installs it: Debian package prometheus",
        );
        return;
    };
    // A leak of 10 (the alert's floor), grown by one socket a second below.
    let mut leaker = Holder::new();
    let (listener, leak_port) = leaker.listen("127.0.0.1:0");
    let leak_one = |leaker: &mut Holder| {
        let (client, _) = leaker.connect(&format!("127.0.0.1:{leak_port}"));
        leaker.accept(listener);
        leaker.close(client);
    };
    for _ in 0..10 {
        leak_one(&mut leaker);
    }
    let leaker_pid = leaker.pid().to_string();
    let serve = Server::start(&["--interval", "1s", "--top", "10000"]);

    // The test copy of the rules: the same expressions, `for:` of seconds.
    let rules = std::fs::read_to_string(assets().join("prometheus/sockscope-rules.yml")).unwrap();
    let fast = rules
        .lines()
        .map(|l| match l.trim().strip_prefix("for: ") {
            Some(_) => l.replace(l.trim(), "for: 5s"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(fast.contains("for: 5s") && !fast.contains("for: 10m"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), fast).unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - rules.yml\n\
             scrape_configs:\n  - job_name: sockscope\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            serve.port
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let mut cmd = std::process::Command::new(prometheus);
    cmd.arg(format!(
        "--config.file={}",
        dir.path().join("prometheus.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        dir.path().join("data").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
    .current_dir(dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(log);
    let child = common::spawn_locked(&mut cmd);
    let log_path = dir.path().join("prometheus.log");
    let server = Prometheus {
        child,
        port,
        _dir: dir,
    };
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);

    // The scrape is healthy.
    let target = until(deadline, || {
        let targets = api(server.port, "/api/v1/targets")?;
        let active = targets["data"]["activeTargets"].as_array()?.clone();
        active
            .into_iter()
            .find(|t| t["labels"]["job"] == "sockscope" && t["health"] == "up")
    })
    .unwrap_or_else(|| {
        panic!(
            "the sockscope target never came up; prometheus log:\n{}",
            log()
        )
    });
    assert_eq!(target["lastError"], "", "{target}");

    // Grow the leak while the rules watch it, until the alert goes
    // pending/firing for the leaking pid.
    let mut grown = 0;
    let alert = until(deadline, || {
        leak_one(&mut leaker);
        grown += 1;
        let alerts = api(server.port, "/api/v1/alerts")?;
        alerts["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == "SockscopeCloseWaitLeak"
                    && a["labels"]["pid"] == leaker_pid.as_str()
            })
            .cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "no SockscopeCloseWaitLeak alert for pid {leaker_pid} after growing the leak by {grown}; prometheus log:\n{}",
            log()
        )
    });
    let state = alert["state"].as_str().unwrap_or("");
    assert!(state == "pending" || state == "firing", "{alert}");
    assert_eq!(alert["labels"]["state"], "CLOSE_WAIT");
    assert!(
        alert["annotations"]["runbook"]
            .as_str()
            .unwrap_or("")
            .contains(&format!(
                "sockscope diagnose pid:{leaker_pid} state:close-wait"
            )),
        "{alert}"
    );

    // Every recording rule yields series by now (the rate rules need two
    // scrapes in their window, which the alert already waited for).
    let records: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(|r| r.trim().to_string())
        .collect();
    assert!(records.len() >= 5, "{records:?}");
    for record in &records {
        until(deadline, || {
            (!query(server.port, record).is_empty()).then_some(())
        })
        .unwrap_or_else(|| panic!("recording rule {record} yields no series"));
    }
    let growth = query(
        server.port,
        &format!("pid:sockscope_close_wait_sockets:deriv10m_per_minute{{pid=\"{leaker_pid}\"}}"),
    );
    assert_eq!(growth.len(), 1, "{growth:?}");

    // Every dashboard query parses on the server and returns data.
    for (panel, expr) in dashboard_queries("1m") {
        until(deadline, || {
            (!query(server.port, &expr).is_empty()).then_some(())
        })
        .unwrap_or_else(|| panic!("panel {panel:?}: no data for {expr}"));
    }
    drop(server);
    drop(serve);
}
