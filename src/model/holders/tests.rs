use super::*;
use crate::model::fixture::{self, socket};
use crate::model::{Proto::Tcp, TcpState::*};

fn forked() -> Snapshot {
    fixture::forked()
}

#[test]
fn processes_sharing_sockets_form_one_service_named_after_them() {
    let snap = forked();
    let h = snap.holders();
    let svc = h.service_of(101).expect("a service");
    assert_eq!(svc.id, 100);
    assert_eq!(svc.pids, vec![100, 101]);
    assert_eq!(svc.name.as_deref(), Some("oracle"));
    assert_eq!(svc.ports, vec![6900]);
    assert_eq!(h.service_of(100), Some(svc));
    // redis shares nothing: a service of its own.
    assert_eq!(h.service_of(1000).map(|s| s.pids.clone()), Some(vec![1000]));
}

#[test]
fn init_holding_a_passed_listener_does_not_join_unrelated_services() {
    let mut snap = forked();
    snap.sockets[0].owners.insert(0, Owner { pid: 1, fd: 30 }); // redis's listener, socket-activated
    snap.sockets.push(socket(
        Tcp,
        Listen,
        "0.0.0.0:7000",
        "0.0.0.0:0",
        9300,
        0,
        &[(1, 31), (100, 40)],
    ));
    let h = snap.holders();
    assert_eq!(h.service_of(1000).map(|s| s.pids.clone()), Some(vec![1000]));
    assert_eq!(
        h.service_of(100).map(|s| s.pids.clone()),
        Some(vec![100, 101])
    );
}

#[test]
fn an_unaccepted_connection_belongs_to_its_listeners_holders() {
    let mut snap = forked();
    let mut queued = socket(
        Tcp,
        CloseWait,
        "127.0.0.1:6900",
        "127.0.0.1:50100",
        0,
        0,
        &[],
    );
    queued.cookie = 77;
    snap.sockets.push(queued.clone());
    let listener = snap.holders().listener_of(&snap, &queued).expect("queued");
    assert_eq!(listener.inode, 9001);
    assert_eq!(snap.holders().queue_of(listener), (1, 1));
    let pids: Vec<u32> = pids(effective(&snap, &queued)).collect();
    assert_eq!(pids, vec![100, 101]);
    assert_eq!(why_none(&snap, &queued), None);
}

#[test]
fn sockets_without_holders_say_why() {
    let snap = fixture::small();
    let tw = snap.sockets.iter().find(|s| s.state == TimeWait).unwrap();
    assert_eq!(why_none(&snap, tw), Some(NoHolder::TimeWait));
    let mut unseen = socket(Tcp, CloseWait, "10.0.0.1:9", "10.0.0.2:9", 555, 0, &[]);
    unseen.cookie = 1;
    assert_eq!(why_none(&snap, &unseen), Some(NoHolder::Unseen));
    let orphan = socket(Tcp, FinWait2, "10.0.0.1:9", "10.0.0.2:9", 0, 0, &[]);
    assert_eq!(why_none(&snap, &orphan), Some(NoHolder::Orphan));
    // A CLOSE_WAIT with no descriptor on a port nobody listens on is not queued.
    let stray = socket(Tcp, CloseWait, "10.0.0.1:9", "10.0.0.2:9", 0, 0, &[]);
    assert_eq!(snap.holders().listener_of(&snap, &stray), None);
}

#[test]
fn a_listener_bound_to_another_address_does_not_take_the_connection() {
    let mut snap = fixture::small();
    snap.sockets.push(socket(
        Tcp,
        Listen,
        "10.9.9.9:7100",
        "0.0.0.0:0",
        8000,
        0,
        &[(4242, 50)],
    ));
    let q = socket(
        Tcp,
        Established,
        "127.0.0.1:7100",
        "127.0.0.1:40000",
        0,
        0,
        &[],
    );
    snap.sockets.push(q.clone());
    assert_eq!(snap.holders().listener_of(&snap, &q), None);
}

#[test]
fn workers_of_one_program_on_an_so_reuseport_group_are_one_service() {
    let mut snap = fixture::small();
    for w in 0..3u32 {
        let pid = 300 + w;
        snap.sockets.push(socket(
            Tcp,
            Listen,
            "0.0.0.0:7700",
            "0.0.0.0:0",
            7000 + u64::from(w),
            0,
            &[(pid, 3)],
        ));
        snap.processes.insert(
            pid,
            fixture::process(pid, "loadgen", "loadgen worker", 0, "root"),
        );
    }
    // Another program on another address of the same port stays apart.
    snap.sockets.push(socket(
        Tcp,
        Listen,
        "127.0.0.2:7700",
        "0.0.0.0:0",
        7100,
        0,
        &[(310, 3)],
    ));
    snap.processes
        .insert(310, fixture::process(310, "other", "other", 0, "root"));
    let h = snap.holders();
    assert_eq!(
        h.service_of(302).map(|s| s.pids.clone()),
        Some(vec![300, 301, 302])
    );
    assert_eq!(h.service_of(310).map(|s| s.pids.clone()), Some(vec![310]));
}

#[test]
fn a_holder_without_a_process_entry_is_still_a_holder() {
    let mut snap = fixture::small();
    snap.sockets.push(socket(
        Tcp,
        CloseWait,
        "127.0.0.1:7300",
        "127.0.0.1:40000",
        7300,
        0,
        &[(4444, 9)],
    ));
    let s = snap.sockets.last().unwrap().clone();
    assert_eq!(service_id(&snap, &s), Some(4444));
}
