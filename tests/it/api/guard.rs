//! A keyless API against the web pages of a browser on the same machine
//! (`src/api/guard.rs`): cross-site requests, untyped bodies and rebound host
//! names are refused and logged once, and the origins and hosts it is told
//! to allow are let in.

use super::{Answer, EVENT, Keyless, raw};
use crate::common::*;
use std::time::Duration;

/// A 403 `AccessDeniedException` whose message names `rule`.
fn refused_by(answer: &Answer, rule: &str) {
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(answer.kind, "AccessDeniedException", "{answer:?}");
    let message = serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(&format!("refused by the API's {rule} rule: ")),
        "{message}"
    );
}

/// What a page may send to create a mapping: Lambda's JSON, on another queue.
fn create_body(queue: &str) -> String {
    serde_json::json!({
        "FunctionName": "recorder",
        "EventSourceArn": BROKER_ARN,
        "Queues": [queue],
        "SourceAccessConfigurations": [
            { "Type": "BASIC_AUTH", "URI": SECRET_ARN },
            { "Type": "VIRTUAL_HOST", "URI": "/" },
        ],
    })
    .to_string()
}

const COLLECTION: &str = "/2015-03-31/event-source-mappings/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_api_refuses_what_another_sites_web_page_can_send() {
    let api = Keyless::start("guard-hostile", "").await;
    let addr = api.addr;
    let page = [
        ("Content-Type", "text/plain"),
        ("Origin", "http://evil.example"),
    ];

    // The hostile trial's create: a simple request, no preflight needed.
    let create = create_body(&unique("guard-never"));
    let answer = raw(addr, "POST", COLLECTION, &page, &create).await;
    refused_by(&answer, "cross-site");
    assert!(
        answer.body.contains("Origin http://evil.example"),
        "{answer:?}"
    );
    assert!(answer.body.contains("[api] allowed_origins"), "{answer:?}");
    // A browser that strips Origin still cannot send JSON without asking;
    // nor may a page's untyped POST (fetch in no-cors mode) pass.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let answer = raw(
            addr,
            "POST",
            COLLECTION,
            &[("Content-Type", content_type)],
            &create,
        )
        .await;
        refused_by(&answer, "content-type");
    }
    refused_by(
        &raw(addr, "POST", COLLECTION, &[], &create).await,
        "content-type",
    );
    // A no-cors GET of a script or an image says where it comes from.
    let answer = raw(
        addr,
        "GET",
        COLLECTION,
        &[("Sec-Fetch-Site", "cross-site")],
        "",
    )
    .await;
    refused_by(&answer, "cross-site");

    // The replay: an event of the page's making, to the mapping's function.
    let replay = api.replay_path();
    refused_by(
        &raw(addr, "POST", &replay, &page, EVENT).await,
        "cross-site",
    );
    let plain = [("Content-Type", "text/plain")];
    refused_by(
        &raw(addr, "POST", &replay, &plain, EVENT).await,
        "content-type",
    );
    refused_by(
        &raw(addr, "POST", &replay, &[], EVENT).await,
        "content-type",
    );

    // DNS rebinding: the page's own name, resolved to 127.0.0.1.
    let rebound = format!("evil.example:{}", addr.port());
    for path in [
        COLLECTION,
        "/mqtrigger/v1/dead-letters",
        "/mqtrigger/v1/snapshot",
    ] {
        let answer = raw(addr, "GET", path, &[("Host", &rebound)], "").await;
        refused_by(&answer, "host");
        assert!(answer.body.contains("[api] allowed_hosts"), "{answer:?}");
    }
    refused_by(
        &raw(addr, "GET", COLLECTION, &[("Host", "evil.example")], "").await,
        "host",
    );

    // Nothing was created, nothing invoked.
    assert_eq!(api.uuids().await, std::slice::from_ref(&api.uuid));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!api.touched(), "a refused replay reached the function");

    // The same replay from this machine's tools goes through: the file
    // above would have been written, had a refusal let one pass.
    let json = [("Content-Type", "application/json")];
    let answer = raw(addr, "POST", &replay, &json, EVENT).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("replayed"), "{answer:?}");
    assert!(api.touched());
    for host in [
        format!("localhost:{}", addr.port()),
        "localhost".to_owned(),
        addr.to_string(),
    ] {
        let answer = raw(addr, "GET", COLLECTION, &[("Host", &host)], "").await;
        assert_eq!(answer.status, 200, "{host}: {answer:?}");
    }

    // Each rule's refusals are logged once at warn for this peer.
    let log = api.log();
    for rule in ["cross-site", "content-type", "host"] {
        let warned = log
            .lines()
            .filter(|l| l.contains(" WARN ") && l.contains(&format!("the API's {rule} rule")))
            .count();
        assert_eq!(warned, 1, "{rule} refusals warned about:\n{log}");
    }
    Broker::connect().await.delete(&api.queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_api_takes_the_origins_and_hosts_it_is_told_to() {
    let ui = "http://ops-ui:8080";
    let api = Keyless::start(
        "guard-allowed",
        &format!("[api]\nallowed_origins = [\"{ui}\"]\nallowed_hosts = [\"ops-1\"]\n"),
    )
    .await;
    let addr = api.addr;
    let from_ui = [
        ("Origin", ui),
        ("Sec-Fetch-Site", "cross-site"),
        ("Content-Type", "application/json"),
    ];
    let queue = unique("guard-from-ui");
    let answer = raw(addr, "POST", COLLECTION, &from_ui, &create_body(&queue)).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(api.uuids().await.len(), 2);
    // Only that origin: another port of it is another origin.
    let other = [("Origin", "http://ops-ui:8081")];
    refused_by(
        &raw(addr, "GET", COLLECTION, &other, "").await,
        "cross-site",
    );
    // An allowed origin is still held to the content-type rule.
    let typed = [("Origin", ui), ("Content-Type", "text/plain")];
    refused_by(
        &raw(addr, "POST", &api.replay_path(), &typed, EVENT).await,
        "content-type",
    );
    assert!(!api.touched());

    let answer = raw(addr, "GET", COLLECTION, &[("Host", "ops-1")], "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let port = format!("ops-1:{}", addr.port());
    refused_by(
        &raw(addr, "GET", COLLECTION, &[("Host", &port)], "").await,
        "host",
    );
    refused_by(
        &raw(addr, "GET", COLLECTION, &[("Host", "ops-2")], "").await,
        "host",
    );
    Broker::connect().await.delete(&api.queue).await;
}
