//! What the console says about where it runs and what runs where: attached
//! to a service that went away, on a store shared by several instances,
//! and a mapping stopped by a stop code (snapshots).

use super::fixture::{ORDERS, PAYMENTS, SHIPMENTS, demo};
use super::{flat, press, render, render_on, rows};
use crossterm::event::KeyCode;
use mqtrigger::console::action::Action;
use mqtrigger::engine::EngineEvent;
use mqtrigger::mapping::{State, StateTransitionReason};
use uuid::Uuid;

/// Attached to a read-only service that then went away: the title bar says
/// where, that nothing may change, and that this is the last picture; a
/// snapshot from the service (it came back) clears the word and replaces
/// the counts, the rates starting over rather than counting the gap.
#[test]
fn an_attached_console_says_where_read_only_and_lost() {
    use mqtrigger::engine::{FeedItem, Snapshot};
    let mut app = demo();
    app.view.endpoint = Some("http://ops-1:9001".into());
    app.view.readonly = true;
    let before = app.view.stats.clone();
    app.update(Action::Feed(FeedItem::Lost(
        "mqtrigger at http://ops-1:9001 closed the event stream (stopped or restarting)".into(),
    )));
    insta::assert_snapshot!(render(&app));
    assert_eq!(app.view.stats, before, "the last picture stays while lost");
    let mut snapshot = Snapshot {
        mappings: app.view.mappings.clone(),
        ..Snapshot::default()
    };
    app.view.stats.mappings.entry(ORDERS).or_default().succeeded = 10;
    app.update(Action::Tick);
    let fresh = mqtrigger::engine::MappingStats {
        succeeded: 25,
        ..Default::default()
    };
    snapshot.stats.mappings.insert(ORDERS, fresh);
    app.update(Action::Feed(FeedItem::Synced(Box::new(snapshot))));
    assert!(app.view.lost.is_none());
    assert_eq!(app.view.stats.of(ORDERS).succeeded, 25);
    app.update(Action::Tick);
    assert_eq!(
        app.view.rates[&ORDERS].per_second.iter().sum::<u64>(),
        0,
        "a rate starts at the count first seen after the gap"
    );
    assert!(!render(&app).contains("LOST"));
}

/// Several instances on one store: the table says which runs each mapping
/// (`*` the one this console drives, `none` while none does), and the
/// counts of one run elsewhere are that instance's, as it wrote them.
#[test]
fn on_a_shared_store_the_table_says_which_instance_runs_each_mapping() {
    let mut app = demo();
    let (here, there) = (
        Uuid::from_u128(0xa1b2c3d4_0000_4000_8000_000000000001),
        Uuid::from_u128(0x5e6f7a8b_0000_4000_8000_000000000002),
    );
    app.view.instance = Some(here);
    for (mapping, instance) in [
        (ORDERS, Some(here)),
        (PAYMENTS, Some(there)),
        (SHIPMENTS, None),
    ] {
        app.update(Action::Engine(EngineEvent::Placed { mapping, instance }));
    }
    let theirs = mqtrigger::engine::MappingStats {
        received: 42,
        succeeded: 40,
        dead_lettered: 2,
        ..Default::default()
    };
    app.update(Action::Engine(EngineEvent::Counts {
        mapping: PAYMENTS,
        stats: Box::new(theirs),
    }));
    let screen = render_on(&app, 200, 50);
    insta::assert_snapshot!(screen);
    let owners: Vec<&str> = rows(&screen)
        .iter()
        .map(|r| r.trim_start_matches('│').split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(owners, ["a1b2c3d4*", "5e6f7a8b", "none"]);
}

#[test]
fn a_stopped_mapping_says_what_to_fix() {
    let mut app = demo();
    let mut payments = app.view.mapping(PAYMENTS).unwrap().clone();
    payments.state = State::Disabled;
    payments.state_transition_reason = StateTransitionReason::EventSourceAuthnError;
    payments.state_detail = Some(
        "ActiveMQ refused the login for user 'app' at 127.0.0.1:61613 — check the secret".into(),
    );
    payments.last_processing_result = "PROBLEM: EVENT_SOURCE_AUTHN_ERROR".into();
    app.update(Action::Engine(EngineEvent::MappingChanged(Box::new(
        payments,
    ))));
    press(&mut app, KeyCode::Down);
    let screen = render(&app);
    // The Errors panel, right of the Batches: its rows read as one text.
    let errors: String = screen
        .lines()
        .filter_map(|l| l.rsplit_once("││").map(|(_, right)| right))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat(&errors).contains("EVENT_SOURCE_AUTHN_ERROR: ActiveMQ refused the login for user 'app' at 127.0.0.1:61613 — check the secret"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}
