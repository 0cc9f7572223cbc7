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
