//! Tests of `sqlite`.

use crate::store::Store;
use rusqlite::Connection;

#[test]
fn a_second_engine_on_the_same_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path())
        .err()
        .expect("second open must fail")
        .to_string();
    assert!(err.contains("in use by another mqtrigger"), "{err}");
    assert!(
        err.contains(&format!("(process {})", std::process::id())),
        "names the holder: {err}"
    );
}

#[test]
fn deleting_the_lock_file_does_not_let_a_second_engine_in() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("mqtrigger.lock")).unwrap();
    let err = Store::open(dir.path())
        .err()
        .expect("the directory is still locked")
        .to_string();
    assert!(err.contains("in use by another mqtrigger"), "{err}");
}

#[test]
fn a_store_from_a_newer_version_is_refused_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join("mqtrigger.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = format!("{:#}", Store::open(dir.path()).err().expect("must refuse"));
    assert!(err.contains("newer mqtrigger"), "{err}");
}

/// A store of schema 2 (before the journal kept AMQP headers) gets the
/// column, and its letters read back without headers.
#[test]
fn a_store_of_schema_two_is_upgraded_and_keeps_its_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join("mqtrigger.db")).unwrap();
    conn.execute_batch(
        "ALTER TABLE dead_letters DROP COLUMN amqp_headers;
         INSERT INTO dead_letters(mapping, at, queue, message_id, attempts, reason, error, destination, record, body, moved)
         VALUES ('00000000-0000-0000-0000-000000000001', '2026-01-01T00:00:00Z', 'q', NULL, 6, 'r', NULL, 'q.dlq', X'7B7D', X'00', 1);",
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    let letters = store.dead_letters(None, 10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].amqp_headers, None);
    assert_eq!(letters[0].record, b"{}");
}

#[test]
fn a_corrupt_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mqtrigger.db"), vec![0x42u8; 8192]).unwrap();
    let err = format!("{:#}", Store::open(dir.path()).err().expect("must refuse"));
    assert!(err.contains("not an mqtrigger store"), "{err}");
    assert!(err.contains("Move it aside (mv "), "says what to do: {err}");
    assert!(err.contains("dead letters"), "says what is lost: {err}");
}

#[test]
fn a_store_says_when_it_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    assert!(first.is_fresh());
    assert!(first.fresh_notice().contains("new UUIDs"));
    drop(first);
    assert!(!Store::open(dir.path()).unwrap().is_fresh());
    std::fs::remove_file(dir.path().join("mqtrigger.db")).unwrap();
    assert!(
        Store::open(dir.path()).unwrap().is_fresh(),
        "a deleted store is noticed"
    );
}
