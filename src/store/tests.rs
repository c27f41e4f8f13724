//! What both stores keep, checked on each: SQLite in a temporary directory,
//! PostgreSQL in a database of its own on the machine's server
//! (`MQTRIGGER_TEST_POSTGRES`, default postgres://postgres@127.0.0.1:5432;
//! `scripts/brokers up` makes sure it runs).

use super::*;
use crate::mapping::{MappingSpec, SourceAccessConfiguration, SourceAccessType};

fn spec() -> MappingSpec {
    MappingSpec {
        function_name: "echo".into(),
        event_source_arn: "arn:aws:mq:us-east-1:0:broker:b:b-1".into(),
        queues: vec!["q".into()],
        batch_size: Some(5),
        maximum_batching_window_in_seconds: None,
        enabled: None,
        filter_criteria: None,
        source_access_configurations: vec![SourceAccessConfiguration {
            kind: SourceAccessType::BasicAuth,
            uri: "s".into(),
        }],
        scaling_config: None,
        ..Default::default()
    }
}

fn server() -> String {
    std::env::var("MQTRIGGER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database made for one test, dropped after it.
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    pub fn new() -> TestDatabase {
        let name = format!("mqt_test_{}", Uuid::new_v4().simple());
        admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        TestDatabase {
            url: format!("{}/{name}", server()),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name));
    }
}

fn admin() -> ::postgres::Client {
    // Off the test's thread: the blocking client must not meet a runtime.
    let url = format!("{}/postgres", server());
    std::thread::spawn(move || ::postgres::Client::connect(&url, ::postgres::NoTls))
        .join()
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL must run at {} (scripts/brokers up): {e}",
                server()
            )
        })
}

/// Where a store lives, so a test can open it again.
enum Place {
    Dir(tempfile::TempDir),
    Db(TestDatabase),
}

impl Place {
    fn open(&self) -> Store {
        match self {
            Place::Dir(dir) => Store::open(dir.path()).unwrap(),
            Place::Db(db) => Store::connect(&db.url).unwrap(),
        }
    }
}

fn places() -> [Place; 2] {
    [
        Place::Dir(tempfile::tempdir().unwrap()),
        Place::Db(TestDatabase::new()),
    ]
}

#[test]
fn mappings_survive_reopening_in_the_order_they_were_made() {
    for place in places() {
        let m = Mapping::new(spec(), "arn:f".into());
        let other = Mapping::new(spec(), "arn:g".into());
        {
            let store = place.open();
            assert!(store.is_fresh());
            store.put_mapping(&m, Some(&spec())).unwrap();
            store.put_mapping(&other, None).unwrap();
            let mut changed = m.clone();
            changed.spec.batch_size = Some(7);
            store.put_mapping(&changed, None).unwrap();
        }
        let store = place.open();
        assert!(!store.is_fresh());
        let all = store.mappings().unwrap();
        assert_eq!(
            all.iter().map(|(m, _)| m.uuid).collect::<Vec<_>>(),
            [m.uuid, other.uuid],
            "an update keeps a mapping's place"
        );
        assert_eq!(
            all[0].0.spec.batch_size,
            Some(7),
            "the run-time change is kept"
        );
        assert_eq!(
            all[0].1.as_ref(),
            Some(&spec()),
            "the file spec is kept beside it"
        );
        assert_eq!(all[1].1, None);
        assert_eq!(
            store
                .mapping(m.uuid)
                .unwrap()
                .unwrap()
                .last_modified
                .timestamp(),
            m.last_modified.timestamp()
        );
        assert!(store.delete_mapping(other.uuid).unwrap());
        assert!(!store.delete_mapping(other.uuid).unwrap());
        assert_eq!(store.mapping(other.uuid).unwrap(), None);
    }
}

#[test]
fn dead_letters_keep_their_bytes_and_their_move() {
    for place in places() {
        let store = place.open();
        let uuid = Uuid::new_v4();
        let letter = DeadLetter {
            id: 0,
            mapping: uuid,
            at: Utc::now(),
            queue: "q".into(),
            message_id: Some("m1".into()),
            attempts: 6,
            reason: "function failed".into(),
            error: Some("{\"errorType\":\"X\"}".into()),
            destination: "q.dlq".into(),
            record: b"{}".to_vec(),
            body: vec![0, 159, 146, 150],
            moved: false,
            amqp_headers: Some(vec![0, 0, 0, 0]),
        };
        let ids = store
            .add_dead_letters(&[letter.clone(), letter.clone()])
            .unwrap();
        assert!(ids[0] < ids[1], "ids in order: {ids:?}");
        let got = store.dead_letters(Some(uuid), 10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id, ids[1], "the newest first");
        assert_eq!(got[0].body, letter.body);
        assert_eq!(got[0].record, letter.record);
        assert_eq!(got[0].attempts, 6);
        assert_eq!(got[0].error, letter.error);
        assert_eq!(got[0].amqp_headers, letter.amqp_headers);
        let without = DeadLetter {
            amqp_headers: None,
            ..letter.clone()
        };
        let id = store.add_dead_letters(&[without]).unwrap()[0];
        assert_eq!(store.dead_letter(id).unwrap().unwrap().amqp_headers, None);
        let ids = [ids[0], ids[1], id];
        assert!(
            got.iter().all(|d| !d.moved),
            "not moved until the broker says so"
        );
        store.mark_moved(&ids[..1]).unwrap();
        assert!(store.dead_letter(ids[0]).unwrap().unwrap().moved);
        assert!(!store.dead_letter(ids[1]).unwrap().unwrap().moved);
        assert!(!store.dead_letter(ids[2]).unwrap().unwrap().moved);
        assert_eq!(store.dead_letters(None, 1).unwrap().len(), 1);
        assert!(
            store
                .dead_letters(Some(Uuid::new_v4()), 10)
                .unwrap()
                .is_empty()
        );
    }
}

#[test]
fn batch_history_keeps_the_newest_thousand_per_mapping() {
    for place in places() {
        let store = place.open();
        let (busy, quiet) = (Uuid::new_v4(), Uuid::new_v4());
        let batch = |mapping, n: usize| BatchRecord {
            mapping,
            at: Utc::now(),
            messages: n,
            bytes: 100 * n,
            attempts: 1,
            outcome: "ok".into(),
            error: None,
            latency_ms: 3,
        };
        store.add_batch(&batch(quiet, 1)).unwrap();
        let many: Vec<_> = (0..1_250).map(|n| batch(busy, n)).collect();
        store.add_batches(&many).unwrap();
        let kept = store.batches(busy, 5_000).unwrap();
        assert!(
            (BATCHES_KEPT as usize..BATCHES_KEPT as usize + 100).contains(&kept.len()),
            "{} kept",
            kept.len()
        );
        assert_eq!(kept[0].messages, 1_249, "the newest first");
        assert_eq!(
            store.batches(quiet, 10).unwrap().len(),
            1,
            "another mapping's stay"
        );
    }
}

#[test]
fn a_postgres_store_from_a_newer_version_is_refused_not_reset() {
    let db = TestDatabase::new();
    drop(Store::connect(&db.url).unwrap());
    let url = db.url.clone();
    std::thread::spawn(move || {
        ::postgres::Client::connect(&url, ::postgres::NoTls)
            .unwrap()
            .batch_execute("UPDATE mqtrigger_schema SET version = 99")
            .unwrap()
    })
    .join()
    .unwrap();
    let err = format!("{:#}", Store::connect(&db.url).err().expect("must refuse"));
    assert!(err.contains("newer mqtrigger (schema 99"), "{err}");
}

#[test]
fn instances_on_one_database_import_the_config_file_once() {
    let db = TestDatabase::new();
    let (a, b) = (
        Store::connect(&db.url).unwrap(),
        Store::connect(&db.url).unwrap(),
    );
    assert_ne!(a.instance(), b.instance());
    // Each makes the mapping unless it is there, inside `exclusive`: the
    // second waits for the first, then finds it.
    let make = |store: &Store| {
        store
            .exclusive(|| {
                if store.mappings().unwrap().is_empty() {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    store
                        .put_mapping(&Mapping::new(spec(), "arn:f".into()), Some(&spec()))
                        .unwrap();
                }
            })
            .unwrap()
    };
    std::thread::scope(|s| {
        s.spawn(|| make(&a));
        s.spawn(|| make(&b));
    });
    assert_eq!(a.mappings().unwrap().len(), 1);
}

#[test]
fn a_postgres_store_that_cannot_be_reached_says_where_and_what_to_check() {
    let err = format!(
        "{:#}",
        Store::connect("postgres://mqt:secret-pw@127.0.0.1:1/nowhere")
            .err()
            .expect("nothing listens on port 1")
    );
    assert!(err.contains("mqt@127.0.0.1:1/nowhere"), "{err}");
    assert!(err.contains("--store"), "{err}");
    assert!(!err.contains("secret-pw"), "no password in errors: {err}");
    let err = format!("{:#}", Store::connect("mysql://x").err().unwrap());
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
}

#[test]
fn a_change_is_made_again_on_top_of_a_write_that_came_between() {
    for place in places() {
        let store = place.open();
        let m = Mapping::new(spec(), "arn:f".into());
        store.put_mapping(&m, None).unwrap();
        let mut calls = 0;
        let written = store
            .modify_mapping(m.uuid, |mine| {
                calls += 1;
                if calls == 1 {
                    // Another instance writes between this read and write.
                    let mut theirs = m.clone();
                    theirs.last_processing_result = "theirs".into();
                    store.put_mapping(&theirs, None).unwrap();
                }
                mine.spec.batch_size = Some(9);
                Ok::<_, anyhow::Error>(())
            })
            .unwrap()
            .unwrap();
        assert_eq!(calls, 2, "made again on what the other wrote");
        let stored = store.mapping(m.uuid).unwrap().unwrap();
        assert_eq!(stored, written);
        assert_eq!(stored.spec.batch_size, Some(9));
        assert_eq!(
            stored.last_processing_result, "theirs",
            "their write is kept"
        );
        assert_eq!(
            store
                .modify_mapping(Uuid::new_v4(), |_| Ok::<_, anyhow::Error>(()))
                .unwrap(),
            None
        );
    }
}

/// A change that checks what it makes checks the mapping as it is at the
/// write: one that another instance's write made wrong in between is
/// refused, and nothing of it is written.
#[test]
fn a_change_refused_on_top_of_a_write_that_came_between_writes_nothing() {
    for place in places() {
        let store = place.open();
        let m = Mapping::new(spec(), "arn:f".into());
        store.put_mapping(&m, None).unwrap();
        let mut calls = 0;
        let refused = store.modify_mapping(m.uuid, |mine| {
            calls += 1;
            if calls == 1 {
                let mut theirs = m.clone();
                theirs.spec.batch_size = Some(500);
                store.put_mapping(&theirs, None).unwrap();
            }
            mine.spec.maximum_batching_window_in_seconds = Some(3);
            match mine.spec.batch_size() {
                500 => anyhow::bail!("refused on top of theirs"),
                _ => Ok(()),
            }
        });
        let err = refused.expect_err("the second try sees their batch size");
        assert_eq!(err.to_string(), "refused on top of theirs");
        assert_eq!(calls, 2);
        let stored = store.mapping(m.uuid).unwrap().unwrap();
        assert_eq!(stored.spec.batch_size, Some(500), "theirs is kept");
        assert_eq!(
            stored.spec.maximum_batching_window_in_seconds, None,
            "nothing of the refused change is written"
        );
    }
}
