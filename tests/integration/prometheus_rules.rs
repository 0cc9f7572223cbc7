//! The Prometheus rules shipped in `assets/prometheus/` and the Grafana
//! dashboard in `assets/grafana/`, checked by the real `promtool` (Debian's
//! `prometheus` package, installed by `.ci/run`): the rules load, their unit
//! tests pass, every alert has a test in which it fires and one in which it
//! does not, and every panel's query parses.

use crate::common;
use common::find_program;
use std::path::{Path, PathBuf};

pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// promtool, or a visible skip (a failure under `CI=true`).
pub fn promtool_or_skip(test: &str, what: &str) -> Option<PathBuf> {
    let found = find_program("promtool");
    if found.is_none() {
        common::skipped(
            test,
            what,
            "promtool is not on PATH",
            ".ci/run installs it: Debian package prometheus",
        );
    }
    found
}

fn run_promtool(promtool: &Path, args: &[&str], dir: &Path) -> String {
    let out = common::output(
        std::process::Command::new(promtool)
            .args(args)
            .current_dir(dir),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "promtool {args:?}:\n{text}");
    text
}

/// The names after `- alert:` in a rule file.
pub fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn shipped_rules_load_and_their_unit_tests_pass_in_promtool() {
    let Some(promtool) = promtool_or_skip(
        "shipped_rules_load_and_their_unit_tests_pass_in_promtool",
        "promtool check rules / test rules",
    ) else {
        return;
    };
    let dir = assets().join("prometheus");
    let checked = run_promtool(&promtool, &["check", "rules", "sockscope-rules.yml"], &dir);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run_promtool(
        &promtool,
        &["test", "rules", "sockscope-rules.test.yml"],
        &dir,
    );
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// What promtool cannot say: that no alert is left untested. Each alert
/// needs an evaluation expecting it to fire and one expecting silence, and a
/// summary and a runbook pointing at a sockscope command.
#[test]
fn every_alert_has_a_firing_and_a_silent_unit_test_and_a_runbook() {
    let dir = assets().join("prometheus");
    let rules = std::fs::read_to_string(dir.join("sockscope-rules.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("sockscope-rules.test.yml")).unwrap();
    let alerts = alert_names(&rules);
    for expected in [
        "SockscopeCloseWaitLeak",
        "SockscopeAcceptQueueFull",
        "SockscopeEphemeralPortsNearExhaustion",
        "SockscopeTimeWaitBucketsNearLimit",
        "SockscopeCollectionFailing",
    ] {
        assert!(alerts.iter().any(|a| a == expected), "{expected} missing");
    }
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for alert in &alerts {
        let mut firing = false;
        let mut silent = false;
        for (i, line) in lines.iter().enumerate() {
            // An alert_rule_test entry (not the alertname among exp_labels).
            let entry = i > 0 && lines[i - 1].starts_with("- eval_time:");
            if entry && *line == format!("alertname: {alert}") {
                match lines.get(i + 1) {
                    Some(&"exp_alerts: []") => silent = true,
                    Some(&"exp_alerts:") => firing = true,
                    other => panic!("{alert}: unexpected {other:?} after alertname"),
                }
            }
        }
        assert!(firing, "{alert} has no test in which it fires");
        assert!(silent, "{alert} has no test in which it stays silent");
        // Each alert's block carries a summary and a runbook line.
        let block = rules
            .split("- alert: ")
            .find(|b| b.starts_with(alert.as_str()))
            .unwrap();
        assert!(block.contains("summary: "), "{alert}: no summary");
        let runbook = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("runbook: "))
            .unwrap_or_else(|| panic!("{alert}: no runbook"));
        assert!(runbook.contains("sockscope diagnose"), "{alert}: {runbook}");
    }
}

/// Every panel's queries in the dashboard, as (panel title, expr), with the
/// dashboard's variables replaced by what "All" selects and
/// `$__rate_interval` by `rate_interval`.
pub fn dashboard_queries(rate_interval: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(assets().join("grafana/sockscope.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap_or("").to_string();
        let targets = panel["targets"].as_array().map_or(&[][..], Vec::as_slice);
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
            let expr = expr
                .replace("$__rate_interval", rate_interval)
                .replace("$host", ".*")
                .replace("$service", ".*");
            assert!(!expr.contains('$'), "{title}: unknown variable in {expr}");
            out.push((title.clone(), expr));
        }
    }
    out
}

#[test]
fn dashboard_has_host_and_service_variables_and_the_panels_asked_for() {
    let text = std::fs::read_to_string(assets().join("grafana/sockscope.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vars: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for v in ["datasource", "host", "service"] {
        assert!(vars.contains(&v), "no ${v} variable: {vars:?}");
    }
    let titles: Vec<String> = dashboard_queries("5m")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    for wanted in [
        "TCP sockets by state",
        "Top services by CLOSE_WAIT",
        "Findings by kind and host",
        "Accept queue overflows and drops",
        "Retransmission share",
    ] {
        assert!(titles.iter().any(|t| t == wanted), "no panel {wanted:?}");
    }
    // Every query is scoped to the host variable, so the selector means something.
    let text_queries: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    for q in &text_queries {
        assert!(
            q.contains("instance=~\"$host\""),
            "not scoped to $host: {q}"
        );
    }
    // Panel ids are unique (Grafana keys panel state by them).
    let mut ids: Vec<i64> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_i64())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate panel ids");
}

/// promtool has no offline "parse this query"; a rule file holding each
/// panel's query as a recording rule makes `promtool check rules` parse them.
#[test]
fn every_dashboard_query_parses_in_promtool() {
    let Some(promtool) = promtool_or_skip(
        "every_dashboard_query_parses_in_promtool",
        "the dashboard's PromQL",
    ) else {
        return;
    };
    let queries = dashboard_queries("5m");
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        // JSON strings are valid YAML double-quoted scalars.
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::Value::String(expr.clone())
        ));
    }
    std::fs::write(dir.path().join("dashboard.yml"), &rules).unwrap();
    let out = run_promtool(&promtool, &["check", "rules", "dashboard.yml"], dir.path());
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );
    // The check is not vacuous: a broken query is refused.
    std::fs::write(
        dir.path().join("broken.yml"),
        "groups:\n  - name: b\n    rules:\n      - record: b:x\n        expr: \"sum by (instance) (\"\n",
    )
    .unwrap();
    let broken = common::output(
        std::process::Command::new(&promtool)
            .args(["check", "rules", "broken.yml"])
            .current_dir(dir.path()),
    );
    assert_ne!(broken.status.code(), Some(0));
}
