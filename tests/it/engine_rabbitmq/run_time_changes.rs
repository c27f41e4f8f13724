//! Changes made while the engine runs (BatchSize, disabled) survive a
//! restart, until the config file itself changes.

use crate::common::*;
use lapin::types::FieldTable;
use mqtrigger::mapping::State;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_time_changes_survive_a_restart_until_the_file_changes() {
    let broker = Broker::connect().await;
    let queue = unique("persist");
    broker.declare(&queue, FieldTable::default()).await;
    let setup = Setup::new(&queue);
    let running = Running::start(&setup).await;
    let uuid = running.mapping().uuid;
    running.control.set_batch_size(uuid, 42).await.unwrap();
    running.control.disable(uuid).await.unwrap();
    assert!(
        running.control.set_batch_size(uuid, 20_000).await.is_err(),
        "BatchSize is validated"
    );
    running.control.shutdown().await;
    let Running {
        dir,
        config_path,
        control,
        ..
    } = running;
    drop(control);

    let restart = || async {
        let config = mqtrigger::config::Config::load(&config_path).unwrap();
        let store = mqtrigger::store::Store::open(&dir.path().join("state")).unwrap();
        mqtrigger::engine::Control::start(config, store)
            .await
            .unwrap()
    };
    let control = restart().await;
    let m = control.get(uuid).expect("the same mapping, same UUID");
    assert_eq!((m.spec.batch_size, m.state), (Some(42), State::Disabled));
    control.shutdown().await;
    drop(control);

    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("BatchSize = 10", "BatchSize = 7");
    std::fs::write(&config_path, text).unwrap();
    let control = restart().await;
    let m = control.get(uuid).unwrap();
    assert_eq!(
        m.spec.batch_size,
        Some(7),
        "an edited config file wins over the old run-time change"
    );
    control.shutdown().await;
    broker.delete(&queue).await;
}
