//! The monitor's actions on fixture snapshots: which keys open which dialog,
//! what the dialogs hold, and which effects they ask the loop for. No
//! process is signalled and no socket destroyed here (see tests/actions.rs).

use crate::ui_harness;

use ui_harness::{app_with, fixture_app as app, press, typed};

use crossterm::event::KeyCode;
use sockscope::act::destroy::{Outcome, Tuple};
use sockscope::act::export::Format;
use sockscope::act::plan::SshSession;
use sockscope::act::signal::{Signal, SignalError, Target};
use sockscope::app::actions::{ActionEffect, ActionEvent, Dialog, Opening};
use sockscope::app::{App, Effect, Event, Mode};
use sockscope::model::{SourceKind, TcpState, fixture};
use std::sync::Arc;

fn kill_dialog(app: &App) -> &sockscope::app::actions::KillDialog {
    match &app.dialog {
        Some(Dialog::Kill(d)) => d,
        other => panic!("no kill dialog: {other:?}"),
    }
}

fn destroy_tuples(app: &App) -> Vec<Tuple> {
    match &app.dialog {
        Some(Dialog::Destroy(d)) => d.tuples.clone(),
        other => panic!("no destroy dialog: {other:?}"),
    }
}

/// A real target, for the path after the pidfd opened: a `sleep` child,
/// killed and reaped when the guard drops. Nothing here signals it.
struct Sleeper(std::process::Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sleeper() -> (Sleeper, Arc<Target>) {
    let child = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    let target = Target::open(child.id(), &[]).expect("open the sleep child");
    (Sleeper(child), Arc::new(target))
}

#[test]
fn k_on_a_process_opens_the_dialog_with_sigterm_and_asks_the_loop_for_a_pidfd() {
    let mut a = app();
    let fx = press(&mut a, KeyCode::Char('k'));
    assert_eq!(a.mode, Mode::Kill);
    assert_eq!(
        fx,
        vec![Effect::Action(ActionEffect::OpenTarget {
            pid: 1000,
            holds: vec![(6, 101), (7, 102), (8, 103)],
        })]
    );
    let d = kill_dialog(&a);
    assert_eq!(d.owner.name, "redis-server");
    assert_eq!(d.owner.cmdline, "redis-server *:6800");
    assert_eq!((d.owner.sockets, d.owner.close_wait), (3, 2));
    assert_eq!(d.signal, Signal::Term);
    assert_eq!(d.target, Opening::Pending);
}

#[test]
fn arrows_choose_the_signal_and_esc_cancels_without_effects() {
    let mut a = app();
    press(&mut a, KeyCode::Char('k'));
    press(&mut a, KeyCode::Down);
    assert_eq!(kill_dialog(&a).signal, Signal::Kill);
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Down);
    assert_eq!(kill_dialog(&a).signal, Signal::Int);
    press(&mut a, KeyCode::Down);
    assert_eq!(kill_dialog(&a).signal, Signal::Term, "wraps around");
    press(&mut a, KeyCode::Up);
    assert_eq!(kill_dialog(&a).signal, Signal::Int);
    // Keys that mean something elsewhere do nothing here.
    assert!(press(&mut a, KeyCode::Char('x')).is_empty());
    assert!(press(&mut a, KeyCode::Char('g')).is_empty());
    assert_eq!(a.mode, Mode::Kill);
    let fx = press(&mut a, KeyCode::Esc);
    assert!(fx.is_empty());
    assert_eq!(a.mode, Mode::Normal);
    assert!(a.dialog.is_none());
    assert_eq!(a.status.as_deref(), Some("cancelled: no signal sent"));
}

#[test]
fn enter_waits_for_the_pidfd_then_sends_the_chosen_signal_through_it() {
    let (_child, target) = sleeper();
    let mut a = app();
    press(&mut a, KeyCode::Char('k'));
    assert!(press(&mut a, KeyCode::Enter).is_empty(), "no pidfd yet");
    assert_eq!(a.mode, Mode::Kill);
    a.handle(Event::Action(ActionEvent::TargetOpened(
        1000,
        Ok(target.clone()),
    )));
    assert_eq!(kill_dialog(&a).target, Opening::Ready(target.clone()));
    press(&mut a, KeyCode::Down);
    let fx = press(&mut a, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Action(ActionEffect::Signal(
            target.clone(),
            Signal::Kill
        ))]
    );
    assert_eq!(a.mode, Mode::Normal);
    let fx = a.handle(Event::Action(ActionEvent::Signalled {
        pid: target.pid,
        name: "sleep".into(),
        signal: Signal::Kill,
        result: Ok(()),
    }));
    assert_eq!(fx, vec![Effect::Action(ActionEffect::RefreshNow)]);
    assert_eq!(
        a.status,
        Some(format!("sent SIGKILL to pid {} (sleep)", target.pid))
    );
}

#[test]
fn a_pidfd_that_cannot_be_opened_closes_the_dialog_with_the_reason() {
    let mut a = app();
    press(&mut a, KeyCode::Char('k'));
    a.handle(Event::Action(ActionEvent::TargetOpened(
        1000,
        Err(SignalError::Exited),
    )));
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(
        a.status.as_deref(),
        Some("pid 1000 (redis-server): process has exited")
    );
}

#[test]
fn a_refused_signal_shows_the_kernels_reason() {
    let mut a = app();
    a.handle(Event::Action(ActionEvent::Signalled {
        pid: 1000,
        name: "redis\x1b]0;x".into(),
        signal: Signal::Term,
        result: Err(SignalError::NotPermitted),
    }));
    assert_eq!(
        a.status.as_deref(),
        Some(
            "pid 1000 (redis?]0;x): not permitted: run as root or as the process owner; SIGTERM not sent"
        )
    );
}

#[test]
fn init_and_sockscope_itself_are_refused_before_any_pidfd() {
    let mut snap = fixture::small();
    for s in &mut snap.sockets {
        for o in &mut s.owners {
            if o.pid == 1000 {
                o.pid = 1;
            }
        }
    }
    let mut a = app_with(snap);
    assert!(press(&mut a, KeyCode::Char('k')).is_empty());
    assert_eq!(a.mode, Mode::Normal);
    assert!(
        a.status.as_deref().unwrap().starts_with("refused: pid 1 "),
        "{:?}",
        a.status
    );

    let mut a = app();
    a.own_pid = 1000;
    assert!(press(&mut a, KeyCode::Char('k')).is_empty());
    assert!(
        a.status.as_deref().unwrap().contains("sockscope itself"),
        "{:?}",
        a.status
    );
}

#[test]
fn a_process_holding_the_ssh_session_needs_enter_twice() {
    let (_child, target) = sleeper();
    let mut a = app();
    // Redis's CLOSE_WAIT socket 127.0.0.1:6800 <- 127.0.0.1:51000 plays the session.
    a.ssh = SshSession::parse("127.0.0.1 51000 127.0.0.1 6800");
    press(&mut a, KeyCode::Char('k'));
    a.handle(Event::Action(ActionEvent::TargetOpened(
        1000,
        Ok(target.clone()),
    )));
    assert!(kill_dialog(&a).ssh.is_some());
    assert!(
        press(&mut a, KeyCode::Enter).is_empty(),
        "first Enter only asks again"
    );
    assert!(kill_dialog(&a).asked_again);
    let fx = press(&mut a, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Action(ActionEffect::Signal(target, Signal::Term))]
    );

    // nginx does not hold it: one Enter.
    let (_child, target) = sleeper();
    let mut a = app();
    a.ssh = SshSession::parse("127.0.0.1 51000 127.0.0.1 6800");
    typed(&mut a, "/nginx");
    press(&mut a, KeyCode::Enter);
    press(&mut a, KeyCode::Char('k'));
    assert_eq!(kill_dialog(&a).owner.pid, 4242);
    assert!(kill_dialog(&a).ssh.is_none());
    a.handle(Event::Action(ActionEvent::TargetOpened(
        4242,
        Ok(target.clone()),
    )));
    assert_eq!(
        press(&mut a, KeyCode::Enter),
        vec![Effect::Action(ActionEffect::Signal(target, Signal::Term))]
    );
}

#[test]
fn read_only_refuses_k_and_x_but_not_export_or_copy() {
    let mut a = app();
    a.read_only = true;
    for key in ['k', 'x'] {
        assert!(press(&mut a, KeyCode::Char(key)).is_empty());
        assert_eq!(a.mode, Mode::Normal);
        assert!(
            a.status.as_deref().unwrap().starts_with("read-only"),
            "{:?}",
            a.status
        );
    }
    assert_eq!(
        press(&mut a, KeyCode::Char('e')),
        vec![Effect::Action(ActionEffect::Export(Format::Csv))]
    );
    assert!(matches!(
        press(&mut a, KeyCode::Char('y'))[..],
        [Effect::Action(ActionEffect::Copy(_))]
    ));
}

#[test]
fn x_on_a_process_lists_its_sockets_under_the_filter() {
    let mut a = app();
    press(&mut a, KeyCode::Char('x'));
    assert_eq!(a.mode, Mode::Destroy);
    let all = destroy_tuples(&a);
    assert_eq!(all.len(), 2, "two CLOSE_WAIT, the listener spared: {all:?}");
    assert!(all.iter().all(|t| t.state == TcpState::CloseWait));
    match &a.dialog {
        Some(Dialog::Destroy(d)) => {
            assert_eq!(d.spared_listeners, 1);
            assert!(d.warnings.is_empty(), "{:?}", d.warnings);
            assert_eq!(d.held, vec![(102, vec![1000]), (103, vec![1000])]);
        }
        _ => unreachable!(),
    }
    press(&mut a, KeyCode::Esc);
    // Asked for by state, the listener is in, and the dialog says what that does.
    typed(&mut a, "/listen");
    press(&mut a, KeyCode::Enter);
    press(&mut a, KeyCode::Char('x'));
    match &a.dialog {
        Some(Dialog::Destroy(d)) => {
            assert_eq!(d.tuples.len(), 1);
            assert_eq!(d.tuples[0].state, TcpState::Listen);
            assert_eq!(
                d.warnings,
                vec!["includes the listener *:6800: new clients will be refused".to_string()]
            );
        }
        other => panic!("{other:?}"),
    }
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.status.as_deref(), Some("cancelled: nothing destroyed"));

    typed(&mut a, "/cw");
    press(&mut a, KeyCode::Enter);
    press(&mut a, KeyCode::Char('x'));
    let cw = destroy_tuples(&a);
    assert_eq!(cw.len(), 2);
    assert!(cw.iter().all(|t| t.state == TcpState::CloseWait));
    match &a.dialog {
        Some(Dialog::Destroy(d)) => {
            assert_eq!(d.what, "held by pid 1000 (redis-server)");
            assert_eq!(d.states, vec![(TcpState::CloseWait, 2)]);
        }
        _ => unreachable!(),
    }
    let fx = press(&mut a, KeyCode::Enter);
    assert_eq!(fx, vec![Effect::Action(ActionEffect::Destroy(cw.clone()))]);
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(a.status.as_deref(), Some("destroying 2 sockets…"));

    let results = vec![(cw[0], Outcome::Destroyed), (cw[1], Outcome::AlreadyGone)];
    let fx = a.handle(Event::Action(ActionEvent::Destroyed(results)));
    assert_eq!(fx, vec![Effect::Action(ActionEffect::RefreshNow)]);
    // Only the destroyed one's descriptor is left behind in redis.
    assert_eq!(
        a.status.as_deref(),
        Some(
            "destroyed 1, already gone 1; pid 1000 (redis-server) still holds their 1 descriptor: only close() or exit frees it"
        )
    );
}

#[test]
fn x_on_a_connection_or_a_state_of_the_strip() {
    let mut a = app();
    // Drill into redis, first connection (CLOSE_WAIT sorts first).
    press(&mut a, KeyCode::Enter);
    press(&mut a, KeyCode::Char('x'));
    let one = destroy_tuples(&a);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].state, TcpState::CloseWait);
    press(&mut a, KeyCode::Esc);

    // The strip, drilled into redis: CLOSE_WAIT (the strip's default state) of pid 1000.
    press(&mut a, KeyCode::Tab);
    press(&mut a, KeyCode::Char('x'));
    let cw = destroy_tuples(&a);
    assert_eq!(cw.len(), 2);
    assert!(cw.iter().all(|t| t.state == TcpState::CloseWait));
}

#[test]
fn x_on_a_table_from_proc_net_says_destroy_needs_netlink() {
    let mut snap = fixture::small();
    snap.source = SourceKind::Proc;
    let mut a = app_with(snap);
    assert!(press(&mut a, KeyCode::Char('x')).is_empty());
    assert_eq!(a.mode, Mode::Normal);
    assert!(
        a.status.as_deref().unwrap().contains("netlink"),
        "{:?}",
        a.status
    );
}

#[test]
fn destroying_the_ssh_session_needs_enter_twice() {
    let mut a = app();
    a.ssh = SshSession::parse("127.0.0.1 51000 127.0.0.1 6800");
    press(&mut a, KeyCode::Char('x'));
    assert!(press(&mut a, KeyCode::Enter).is_empty());
    assert_eq!(a.mode, Mode::Destroy);
    assert!(matches!(
        press(&mut a, KeyCode::Enter)[..],
        [Effect::Action(ActionEffect::Destroy(_))]
    ));
}

#[test]
fn export_and_copy_ask_the_loop_and_report_the_path() {
    let mut a = app();
    assert_eq!(
        press(&mut a, KeyCode::Char('E')),
        vec![Effect::Action(ActionEffect::Export(Format::Json))]
    );
    a.handle(Event::Action(ActionEvent::Exported(Ok((
        "/tmp/sockscope-20270115-080000.json".into(),
        5,
    )))));
    assert_eq!(
        a.status.as_deref(),
        Some("wrote 5 rows to /tmp/sockscope-20270115-080000.json")
    );
    let fx = press(&mut a, KeyCode::Char('y'));
    assert_eq!(
        fx,
        vec![Effect::Action(ActionEffect::Copy(
            "PID=1000 PROCESS=redis-server USER=redis TOTAL=3 ESTAB=0 CLOSE_WAIT=2 FIN_WAIT2=0 \
             TIME_WAIT=0 LISTEN=1 OTHER=0 IN/s=0 OUT/s=0"
                .into()
        ))]
    );
}

#[test]
fn q_still_quits_from_a_dialog() {
    let mut a = app();
    press(&mut a, KeyCode::Char('x'));
    assert_eq!(press(&mut a, KeyCode::Char('q')), vec![Effect::Quit]);
}
