//! Prints what the transitions feed sees each second (a manual check of the
//! event source on this kernel): `cargo run --example trace_watch`.

fn main() {
    let feed = match sockscope::trace::Feed::start() {
        Ok(f) => f,
        Err(why) => {
            eprintln!("transitions unavailable: {why}");
            std::process::exit(1);
        }
    };
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    for _ in 0..secs {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let t = feed.take();
        let w = &t.window;
        println!(
            "events {} dropped {} opened {} closed {} (local {} peer {} reset {} failed {}) resets sent {} recv {} retrans {} live {} cpu {:?}",
            w.events,
            w.dropped,
            w.total.opened,
            w.total.closed,
            w.total.closed_local,
            w.total.closed_peer,
            w.total.closed_reset,
            w.total.failed,
            w.total.resets_sent,
            w.total.resets_received,
            w.total.retransmits,
            t.live,
            feed.cpu()
        );
        for tr in t.recent.iter().take(12) {
            println!(
                "  {:?} {} -> {} {}->{} after {:?} pid {:?}",
                tr.at, tr.local, tr.remote, tr.old, tr.new, tr.after, tr.pid
            );
        }
    }
}
