//! Kernel counters and the sysctls that shape connection lifetimes.

use crate::model::SystemContext;
use std::collections::BTreeMap;

/// The sysctls sockscope reads, as dotted names.
pub const SYSCTLS: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.ip_local_port_range",
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_max_orphans",
    "net.ipv4.tcp_retries2",
    "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_syn_linear_timeouts",
    "net.ipv4.tcp_synack_retries",
    "net.ipv4.tcp_orphan_retries",
    "net.ipv4.tcp_abort_on_overflow",
    "net.ipv4.tcp_timestamps",
    "net.core.netdev_max_backlog",
];

/// Reads counters, sockstat and sysctls. Missing files leave their entries out:
/// a container may hide some of them, and none of them is worth failing for.
pub fn read() -> SystemContext {
    let mut counters = BTreeMap::new();
    for path in ["/proc/net/snmp", "/proc/net/netstat"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            parse_counter_pairs(&text, &mut counters);
        }
    }
    let mut sockstat = BTreeMap::new();
    for path in ["/proc/net/sockstat", "/proc/net/sockstat6"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            parse_sockstat(&text, &mut sockstat);
        }
    }
    SystemContext {
        counters,
        sockstat,
        sysctls: read_sysctls(),
    }
}

/// The sysctls of [`SYSCTLS`] as the calling thread's network namespace has them.
pub fn read_sysctls() -> BTreeMap<String, String> {
    let mut sysctls = BTreeMap::new();
    for name in SYSCTLS {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        if let Ok(v) = std::fs::read_to_string(path) {
            sysctls.insert(
                (*name).to_string(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            );
        }
    }
    sysctls
}

/// `/proc/net/snmp` and `netstat` come as pairs of lines, names then values:
/// `Tcp: RtoAlgorithm ActiveOpens ...` / `Tcp: 1 42 ...`. Keys become `Tcp.ActiveOpens`.
pub fn parse_counter_pairs(text: &str, out: &mut BTreeMap<String, u64>) {
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((prefix, names)), Some((vprefix, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if prefix != vprefix {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            // Tcp.MaxConn is -1 ("no limit"); it is not a counter.
            if let Ok(v) = v.parse::<u64>() {
                out.insert(format!("{prefix}.{n}"), v);
            }
        }
    }
}

/// `TCP: inuse 5 orphan 0 tw 2 alloc 7 mem 1` → `TCP.inuse` = 5, ...
pub fn parse_sockstat(text: &str, out: &mut BTreeMap<String, u64>) {
    for line in text.lines() {
        let Some((prefix, rest)) = line.split_once(':') else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        for pair in words.chunks(2) {
            if let [k, v] = pair
                && let Ok(v) = v.parse::<u64>()
            {
                out.insert(format!("{prefix}.{k}"), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_pairs_are_keyed_by_section_and_name() {
        let text =
            "Tcp: RtoAlgorithm MaxConn ActiveOpens\nTcp: 1 -1 42\nUdp: InDatagrams\nUdp: 7\n";
        let mut out = BTreeMap::new();
        parse_counter_pairs(text, &mut out);
        assert_eq!(out.get("Tcp.ActiveOpens"), Some(&42));
        assert_eq!(out.get("Udp.InDatagrams"), Some(&7));
        assert_eq!(out.get("Tcp.MaxConn"), None, "-1 is not a counter");
    }

    #[test]
    fn sockstat_lines_become_keyed_values() {
        let text = "sockets: used 140\nTCP: inuse 5 orphan 0 tw 2 alloc 7 mem 1\n";
        let mut out = BTreeMap::new();
        parse_sockstat(text, &mut out);
        assert_eq!(out.get("TCP.tw"), Some(&2));
        assert_eq!(out.get("sockets.used"), Some(&140));
    }

    #[test]
    fn this_machine_has_the_usual_counters_and_sysctls() {
        let ctx = read();
        assert!(ctx.counter("Tcp.ActiveOpens").is_some());
        assert!(ctx.counter("TcpExt.ListenOverflows").is_some());
        assert!(ctx.local_port_range().is_some());
        assert!(ctx.sysctl_u64("net.ipv4.tcp_fin_timeout").is_some());
    }
}
