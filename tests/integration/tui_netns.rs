//! Issue 12 in the monitor and the findings, on a fixed snapshot with two
//! other network namespaces (`fixture::containers`): a container with a
//! CLOSE_WAIT leak and an `ip netns` with the same 4-tuple as one of it.

use crate::ui_harness;

use crossterm::event::KeyCode;
use sockscope::app::{App, Event};
use sockscope::model::findings::{self, Kind};
use sockscope::model::history::History;
use sockscope::model::view::Grouping;
use sockscope::model::{Filter, fixture};
use sockscope::ui::Theme;
use std::sync::Arc;
use ui_harness::{STATS, new_app, press, render, screen};

fn app_with(snap: sockscope::model::Snapshot) -> App {
    let mut app = new_app();
    app.handle(Event::Snapshot(Arc::new(snap.clone()), STATS));
    app.clock = snap.taken_at;
    app
}

#[test]
fn the_group_key_reaches_the_namespace_view_only_where_other_namespaces_exist() {
    let mut app = app_with(fixture::containers());
    for _ in 0..4 {
        press(&mut app, KeyCode::Char('g'));
    }
    assert_eq!(app.grouping, Grouping::Netns);
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(app.grouping, Grouping::Process);

    let mut host_only = app_with(fixture::small());
    for _ in 0..4 {
        press(&mut host_only, KeyCode::Char('g'));
    }
    assert_eq!(
        host_only.grouping,
        Grouping::Process,
        "no namespace view to show"
    );
}

#[test]
fn namespace_view_at_80x24_lists_the_container_first_with_its_pod() {
    let mut app = app_with(fixture::containers());
    for _ in 0..4 {
        press(&mut app, KeyCode::Char('g'));
    }
    let t = screen(&render(&app, 80, 24, Theme::mono()));
    let web = t.lines().position(|l| l.contains("web-7f9c")).expect(&t);
    let host = t.lines().position(|l| l.contains("host ")).expect(&t);
    assert!(web < host, "301 sockets before the host's 8:\n{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn connections_view_shows_the_netns_column_and_the_same_tuple_twice() {
    let mut app = app_with(fixture::containers());
    press(&mut app, KeyCode::Char('/'));
    for c in "8080 !cw".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('g'));
    }
    assert_eq!(app.grouping, Grouping::Flat);
    let t = screen(&render(&app, 120, 30, Theme::mono()));
    assert!(t.contains("NETNS"), "{t}");
    let tuple_rows: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("127.0.0.1:8080") && l.contains("LISTEN"))
        .collect();
    assert_eq!(tuple_rows.len(), 2, "one listener per namespace:\n{t}");
    assert!(tuple_rows.iter().any(|l| l.contains("web-7f9c")), "{t}");
    assert!(tuple_rows.iter().any(|l| l.contains("blue")), "{t}");
}

#[test]
fn host_only_views_have_no_netns_column() {
    let mut app = app_with(fixture::small());
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('g'));
    }
    let t = screen(&render(&app, 200, 30, Theme::mono()));
    assert!(!t.contains("NETNS"), "{t}");
}

#[test]
fn a_hostile_namespace_name_is_drawn_without_its_escape_sequences() {
    let mut snap = fixture::containers();
    let mut list = (*snap.namespaces.list).clone();
    let web = list.get_mut(&fixture::WEB_NETNS).unwrap();
    web.name = "evil\x1b[2J\x1b]0;owned\x07name".into();
    web.container = Some(web.name.clone());
    snap.namespaces.list = Arc::new(list);
    let mut app = app_with(snap);
    for _ in 0..4 {
        press(&mut app, KeyCode::Char('g'));
    }
    for width in [40, 80, 120] {
        let t = screen(&render(&app, width, 24, Theme::mono()));
        assert!(!t.contains('\x1b') && !t.contains('\x07'), "{t:?}");
        assert!(t.contains("evil"), "at {width} columns:\n{t}");
    }
}

#[test]
fn the_leak_finding_names_the_container_and_its_pod_and_selects_its_namespace() {
    let snap = fixture::containers();
    let found = findings::analyze(&snap, &History::default(), &Filter::default());
    let leak = found
        .iter()
        .find(|f| f.kind == Kind::CloseWaitLeak && f.pid == Some(4242))
        .expect("the container's leak");
    assert_eq!(leak.count, 300);
    assert_eq!(leak.netns.as_deref(), Some("web-7f9c"));
    assert!(
        leak.summary.starts_with("[web-7f9c] python3 (pid 4242)"),
        "{}",
        leak.summary
    );
    assert!(
        leak.message
            .starts_with("In container web-7f9c (pod shop/web-7f9c): "),
        "{}",
        leak.message
    );
    // Its filter selects the container's sockets only, not blue's tuple.
    let filter = Filter::parse(&leak.filter).unwrap();
    let selected: Vec<_> = snap
        .sockets
        .iter()
        .filter(|s| filter.matches(s, &snap))
        .collect();
    assert_eq!(selected.len(), 300, "`{}`", leak.filter);
    assert!(selected.iter().all(|s| s.netns == fixture::WEB_NETNS));
}

#[test]
fn netns_container_and_pod_terms_select_by_what_runs_in_the_namespace() {
    let snap = fixture::containers();
    let count = |text: &str| {
        let f = Filter::parse(text).unwrap();
        snap.sockets.iter().filter(|s| f.matches(s, &snap)).count()
    };
    assert_eq!(count("netns:web-7f9c"), 301);
    assert_eq!(count(&format!("netns:{}", fixture::BLUE_NETNS)), 2);
    assert_eq!(count("netns:blue"), 2);
    assert_eq!(count("netns:host"), fixture::small().sockets.len());
    assert_eq!(count("container:web-7f9c"), 301);
    assert_eq!(count("container:7f9c2ab3"), 301, "an id prefix");
    assert_eq!(count("pod:shop/web-7f9c"), 301);
    assert_eq!(count("pod:web-7f9c"), 301);
    assert_eq!(count("pod:web-7f9c !netns:web-7f9c"), 0);
    assert_eq!(
        count("container:blue"),
        2,
        "a namespace's name stands for it"
    );
}

/// [`fixture::containers`] whose web namespace has its own counters and
/// port range, one second after `at`.
fn containers_with_counters(at: u64, overflows: u64) -> sockscope::model::Snapshot {
    let mut snap = fixture::containers();
    snap.advance(std::time::Duration::from_secs(at));
    let mut list = (*snap.namespaces.list).clone();
    let web = list.get_mut(&fixture::WEB_NETNS).unwrap();
    Arc::make_mut(&mut web.system)
        .counters
        .insert("TcpExt.ListenOverflows".into(), overflows);
    Arc::make_mut(&mut web.system)
        .counters
        .insert("Tcp.InSegs".into(), 1000 * at);
    Arc::make_mut(&mut web.system)
        .sysctls
        .insert("net.ipv4.ip_local_port_range".into(), "40000 40099".into());
    snap.namespaces.list = Arc::new(list);
    snap
}

#[test]
fn counters_and_sysctls_views_show_the_filtered_namespaces_own() {
    let mut app = new_app();
    press(&mut app, KeyCode::Char('/'));
    for c in "netns:web-7f9c".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    for (at, overflows) in [(0, 10), (1, 30)] {
        let snap = containers_with_counters(at, overflows);
        app.handle(Event::Snapshot(Arc::new(snap.clone()), STATS));
        app.clock = snap.taken_at;
    }
    press(&mut app, KeyCode::Char('3'));
    let t = screen(&render(&app, 100, 30, Theme::mono()));
    assert!(t.contains("netns web-7f9c"), "{t}");
    let overflow = t
        .lines()
        .find(|l| l.contains("TcpExt.ListenOverflows"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(
        overflow.contains("20"),
        "20 a second in the container: {overflow}\n{t}"
    );

    press(&mut app, KeyCode::Char('4'));
    let t = screen(&render(&app, 100, 30, Theme::mono()));
    assert!(t.contains("netns web-7f9c"), "{t}");
    assert!(t.contains("40000 40099"), "the container's own range:\n{t}");

    // Without the filter, the host's again.
    press(&mut app, KeyCode::Char('1'));
    press(&mut app, KeyCode::Char('/'));
    for _ in 0.."netns:web-7f9c".len() {
        press(&mut app, KeyCode::Backspace);
    }
    press(&mut app, KeyCode::Enter);
    let snap = containers_with_counters(2, 40);
    app.handle(Event::Snapshot(Arc::new(snap), STATS));
    press(&mut app, KeyCode::Char('4'));
    let t = screen(&render(&app, 100, 30, Theme::mono()));
    assert!(
        !t.contains("netns web-7f9c") && !t.contains("40000 40099"),
        "{t}"
    );
}

#[test]
fn each_namespace_counts_its_own_time_wait_against_its_own_limit() {
    let mut snap = fixture::containers();
    snap.system.sockstat.insert("TCP.tw".into(), 5000);
    snap.system
        .sysctls
        .insert("net.ipv4.tcp_max_tw_buckets".into(), "5200".into());
    let mut list = (*snap.namespaces.list).clone();
    let web = list.get_mut(&fixture::WEB_NETNS).unwrap();
    let system = Arc::make_mut(&mut web.system);
    system.sockstat.insert("TCP.tw".into(), 3);
    system
        .sysctls
        .insert("net.ipv4.tcp_max_tw_buckets".into(), "512".into());
    snap.namespaces.list = Arc::new(list);
    let found = findings::analyze(&snap, &History::default(), &Filter::default());
    let buckets: Vec<_> = found
        .iter()
        .filter(|f| f.kind == Kind::TimeWaitPressure && f.port.is_none())
        .collect();
    assert_eq!(buckets.len(), 1, "the host's only: {buckets:#?}");
    assert_eq!(buckets[0].netns, None);
    assert_eq!(buckets[0].count, 5000);
}
