//! Stop codes: a wrong password, missing permissions, a missing virtual
//! host, queue or function program each stop the mapping with Lambda's
//! reason, it stays stopped across restarts until enabled, and the other
//! mappings go on.

use crate::common::*;
use lapin::BasicProperties;
use lapin::types::FieldTable;
use mqtrigger::mapping::{State, StateTransitionReason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stops_the_mapping_with_event_source_authn_error() {
    let queue = unique("authn");
    let mut setup = Setup::new(&queue);
    setup.password = "not-the-password".into();
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(
        code,
        StateTransitionReason::EventSourceAuthnError,
        "{detail}"
    );
    assert!(
        detail.contains("'guest'") && detail.contains("127.0.0.1:5672"),
        "names the user and broker: {detail}"
    );
}

/// Lambda's rule: a mapping a stop code stopped stays stopped, across
/// restarts too, until a user enables it; State never says Disabled of a
/// mapping that consumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_stopped_by_a_stop_code_stays_stopped_after_a_restart_until_enabled() {
    use mqtrigger::config::Config;
    use mqtrigger::engine::Control;
    use mqtrigger::store::Store;
    let broker = Broker::connect().await;
    let queue = unique("stays");
    broker.declare(&queue, FieldTable::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    std::fs::write(&record, b"").unwrap();
    let config_path = dir.path().join("mqtrigger.toml");
    let state = dir.path().join("state");
    let start = |password: &str| {
        let mut setup = Setup::new(&queue);
        setup.password = password.into();
        std::fs::write(&config_path, setup.toml(&record)).unwrap();
        let config = Config::load(&config_path).unwrap();
        let store = Store::open(&state).unwrap();
        Control::start(config, store)
    };
    let control = start("not-the-password").await.unwrap();
    let uuid = control.list().unwrap()[0].uuid;
    wait_for("the stop code", || {
        control.get(uuid).unwrap().state == State::Disabled
    })
    .await;
    control.shutdown().await;
    drop(control);
    // The password is fixed in [secrets]; mqtrigger starts again.
    let control = start("guest").await.unwrap();
    broker
        .publish(&queue, b"waits", BasicProperties::default())
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let m = control.get(uuid).unwrap();
    assert_eq!(m.state, State::Disabled);
    assert_eq!(
        m.state_transition_reason,
        StateTransitionReason::EventSourceAuthnError
    );
    assert_eq!(
        broker.ready(&queue).await,
        1,
        "a Disabled mapping consumes nothing"
    );
    assert!(read_events(&record).is_empty());
    control.enable(uuid).await.unwrap();
    wait_for("the message at the function", || {
        read_events(&record).len() == 1
    })
    .await;
    assert_eq!(control.get(uuid).unwrap().state, State::Enabled);
    control.shutdown().await;
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_host_that_does_not_exist_stops_with_esm_config_not_valid() {
    let mut setup = Setup::new(&unique("novhost"));
    setup.vhost = unique("no-such-vhost");
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(code, StateTransitionReason::EsmConfigNotValid, "{detail}");
    assert!(
        detail.contains("no such virtual host") && detail.contains(&setup.vhost),
        "names the vhost: {detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_permissions_stops_with_event_source_authz_error() {
    let broker = Broker::connect().await;
    let queue = unique("authz");
    broker.declare(&queue, FieldTable::default()).await;
    let mut setup = Setup::new(&queue);
    setup.username = "mqt_noperm".into();
    setup.password = "mqt_noperm_secret".into();
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(
        code,
        StateTransitionReason::EventSourceAuthzError,
        "{detail}"
    );
    assert!(detail.contains("mqt_noperm"), "{detail}");

    let mut setup = Setup::new(&queue);
    setup.username = "mqt_noread".into();
    setup.password = "mqt_noread_secret".into();
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(
        code,
        StateTransitionReason::EventSourceAuthzError,
        "no read permission on the queue: {detail}"
    );
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_stops_with_esm_config_not_valid() {
    let setup = Setup::new(&unique("missing"));
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(code, StateTransitionReason::EsmConfigNotValid, "{detail}");
    assert!(detail.contains(&setup.queue), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_function_program_stops_with_function_config_not_valid_and_loses_nothing() {
    let broker = Broker::connect().await;
    let queue = unique("nofunc");
    broker.declare(&queue, FieldTable::default()).await;
    broker
        .publish(&queue, b"keep me", BasicProperties::default())
        .await;
    let mut setup = Setup::new(&queue);
    setup.function_command = Some(vec!["/nonexistent/handler".into()]);
    let running = Running::start(&setup).await;
    let (code, detail) = running.stopped().await;
    assert_eq!(
        code,
        StateTransitionReason::FunctionConfigNotValid,
        "{detail}"
    );
    assert!(detail.contains("/nonexistent/handler"), "{detail}");
    running.control.shutdown().await;
    assert_eq!(
        broker.ready(&queue).await,
        1,
        "the message went back to the queue"
    );
    broker.delete(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_mapping_leaves_the_others_running() {
    let broker = Broker::connect().await;
    let good = unique("good");
    broker.declare(&good, FieldTable::default()).await;
    broker
        .publish(&good, b"hello", BasicProperties::default())
        .await;
    let setup = Setup::new(&good);
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let mut text = setup.toml(&record);
    // A second mapping on a queue that does not exist.
    let bad_mapping =
        text[text.find("[[mappings]]").unwrap()..].replace(&good, "mqt-no-such-queue");
    text.push_str(&bad_mapping);
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let config = mqtrigger::config::Config::load(&path).unwrap();
    let store = mqtrigger::store::Store::open(&dir.path().join("state")).unwrap();
    let control = mqtrigger::engine::Control::start(config, store)
        .await
        .unwrap();
    wait_for("the good mapping to deliver", || {
        !read_events(&record).is_empty()
    })
    .await;
    wait_for("the bad mapping to stop", || {
        control
            .list()
            .unwrap()
            .iter()
            .any(|m| m.state == State::Disabled)
    })
    .await;
    let states: Vec<(String, State)> = control
        .list()
        .unwrap()
        .iter()
        .map(|m| (m.spec.queue().to_owned(), m.state))
        .collect();
    assert!(
        states.contains(&(good.clone(), State::Enabled)),
        "{states:?}"
    );
    control.shutdown().await;
    broker.delete(&good).await;
}
