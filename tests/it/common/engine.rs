//! An engine in the test's own process ([`Running`]): one mapping's
//! config, store and record file in a directory of its own, and what the
//! mapping and its dead letters look like while it runs.

use super::{Setup, read_events, wait_for};
use mqtrigger::config::Config;
use mqtrigger::engine::Control;
use mqtrigger::mapping::Mapping;
use mqtrigger::store::Store;
use std::path::PathBuf;

/// An engine running one mapping in this process, with its own state and record file.
pub struct Running {
    pub dir: tempfile::TempDir,
    pub record: PathBuf,
    pub config_path: PathBuf,
    pub control: Control,
}

impl Running {
    pub async fn start(setup: &Setup) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("events.jsonl");
        std::fs::write(&record, b"").unwrap();
        let config_path = dir.path().join("mqtrigger.toml");
        std::fs::write(&config_path, setup.toml(&record)).unwrap();
        let config = Config::load(&config_path).expect("test config is valid");
        // SQLite in the test's directory, unless `extra_toml` names a [store].
        let store = Store::choose(None, &config, &dir.path().join("state")).unwrap();
        let control = Control::start(config, store).await.unwrap();
        Running {
            dir,
            record,
            config_path,
            control,
        }
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        read_events(&self.record)
    }

    pub fn mapping(&self) -> Mapping {
        self.control.list().unwrap().remove(0)
    }

    /// The mapping's dead letters in the journal, newest first.
    pub fn dead_letters(&self) -> Vec<mqtrigger::store::DeadLetter> {
        let uuid = self.mapping().uuid;
        self.control.store().dead_letters(Some(uuid), 100).unwrap()
    }

    /// Waits for the mapping to stop itself; its reason and the sentence behind it.
    pub async fn stopped(&self) -> (mqtrigger::mapping::StateTransitionReason, String) {
        use mqtrigger::mapping::State;
        wait_for("the mapping to stop", || {
            self.mapping().state == State::Disabled
        })
        .await;
        let m = self.mapping();
        (
            m.state_transition_reason,
            m.state_detail.unwrap_or_default(),
        )
    }
}
