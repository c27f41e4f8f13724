//! A pause asked of one instance holds on the instance that runs the
//! mapping: the store carries it, as every change.

use super::{consumers_become, instance};
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_step_and_resume_through_either_instance_hold_on_the_owner() {
    let db = TestDatabase::new();
    let broker = Broker::connect().await;
    let queue = unique("pg-pause");
    broker.declare(&queue, Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        batch_size: 2,
        window_secs: Some(0),
        ..Setup::new(&queue)
    };
    let (api_a, api_b) = (free_port(), free_port());
    let (_a, record_a) = instance(
        dir.path(),
        "a",
        &setup,
        &db,
        &["--api".into(), api_a.to_string()],
    );
    let (_b, record_b) = instance(
        dir.path(),
        "b",
        &setup,
        &db,
        &["--api".into(), api_b.to_string()],
    );
    wait_listening(api_a).await;
    wait_listening(api_b).await;
    assert!(
        consumers_become(&broker, &queue, 1).await,
        "one instance consumes"
    );
    let (a, b) = (format!("http://{api_a}"), format!("http://{api_b}"));
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&mappings_cli(&a, &["--output", "json", "list"]))).unwrap();
    let uuid = listed["EventSourceMappings"][0]["UUID"]
        .as_str()
        .unwrap()
        .to_owned();

    // Paused through B: whichever runs it lets its consumer go.
    let out = mappings_cli(&b, &["pause", &uuid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        consumers_become(&broker, &queue, 0).await,
        "no consumer while paused"
    );
    for i in 0..6 {
        broker
            .publish(&queue, format!("m{i}").as_bytes(), Default::default())
            .await;
    }
    let seen = || {
        [&record_a, &record_b]
            .iter()
            .flat_map(|r| read_events(r))
            .flat_map(|e| messages(&e))
            .count()
    };
    // A step through A: one batch of two, then paused again.
    let out = mappings_cli(&a, &["step", &uuid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("one batch through", || seen() == 2).await;
    assert!(consumers_become(&broker, &queue, 0).await, "paused again");
    assert_eq!(broker.ready(&queue).await, 4);
    // Resumed through B: the rest.
    let out = mappings_cli(&b, &["resume", &uuid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("all six", || seen() == 6).await;
    broker.delete(&queue).await;
}
