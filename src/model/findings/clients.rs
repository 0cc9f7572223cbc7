//! `top_clients`: one remote host holding an outsized share of a service's
//! connections.

use super::text::{percent, who};
use super::{Finding, Input, Kind, Severity};
use crate::model::socket::TcpState;
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeSet;
use std::net::IpAddr;

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    let limits = &input.limits;
    let mut services: HashMap<u16, BTreeSet<u32>> = HashMap::new();
    for s in &input.listeners {
        services
            .entry(s.local.port())
            .or_default()
            .extend(s.owners.iter().map(|o| o.pid));
    }
    // Inbound connections per service, per client host.
    let mut clients: HashMap<u16, HashMap<IpAddr, u64>> = HashMap::new();
    for s in input.tcp(TcpState::Established) {
        if services.contains_key(&s.local.port()) {
            *clients
                .entry(s.local.port())
                .or_default()
                .entry(s.remote.ip().to_canonical())
                .or_default() += 1;
        }
    }
    for (port, hosts) in clients {
        let total: u64 = hosts.values().sum();
        if total < limits.top_clients_min || hosts.len() < 2 {
            // A single client is a proxy or a load balancer, not an outlier.
            continue;
        }
        let Some((&host, &n)) = hosts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else {
            continue;
        };
        let share = n as f64 / total as f64;
        if share < limits.top_clients_share {
            continue;
        }
        let owners = services.get(&port).cloned().unwrap_or_default();
        let pid = owners.iter().next().copied();
        let name = pid.and_then(|p| input.process_name(p));
        let mut f = Finding::new(Kind::TopClients, Severity::Info, n);
        f.summary = format!(
            "{host} holds {n} of {total} connections to port {port} ({})",
            percent(share)
        );
        f.message = format!(
            "{host} holds {n} of the {total} established connections to port {port} ({}), \
             served by {}; the other {} clients share the rest.",
            percent(share),
            who(pid, name.as_deref()),
            hosts.len() - 1
        );
        f.next_step = format!(
            "If {host} is not a proxy or load balancer, it may open connections without \
             reusing or closing them: look at them with `sockscope raddr:{host} lport:{port}`. \
             A per-client connection limit protects the others."
        );
        f.filter = format!("lport:{port} raddr:{host}");
        f.port = Some(port);
        f.pid = pid;
        f.process = name;
        f.pids = owners.into_iter().collect();
        f.ports = vec![port];
        f.peers = vec![super::Peer {
            addr: host.to_string(),
            count: n,
            pid: None,
            process: None,
            state: None,
            queued: false,
        }];
        out.push(f);
    }
}
