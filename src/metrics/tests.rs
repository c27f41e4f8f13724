//! Tests of `metrics`.

use super::*;
use crate::engine::{BatchId, CloseReason, EngineEvent};
use crate::mapping::MappingSpec;
use std::time::Duration;
use uuid::Uuid;

fn mapping() -> Mapping {
    Mapping::new(
        MappingSpec {
            function_name: "echo".into(),
            event_source_arn: "arn:aws:mq:us-east-1:0:broker:b:b-1".into(),
            queues: vec!["q".into()],
            batch_size: None,
            maximum_batching_window_in_seconds: None,
            enabled: None,
            filter_criteria: None,
            source_access_configurations: vec![],
            scaling_config: None,
            ..Default::default()
        },
        "arn:aws:lambda:local:0:function:echo".into(),
    )
}

fn value(text: &str, name: &str, uuid: Uuid) -> String {
    let labels = format!("{{function=\"echo\",mapping=\"{uuid}\",queue=\"q\"}}");
    let alt = format!("{{mapping=\"{uuid}\",function=\"echo\",queue=\"q\"}}");
    text.lines()
        .find(|l| {
            l.starts_with(&format!("{name}{labels} ")) || l.starts_with(&format!("{name}{alt} "))
        })
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned()
}

fn render(m: &Mapping, events: &[EngineEvent]) -> String {
    let mut stats = EngineStats::default();
    for e in events {
        stats.apply(e);
    }
    Scrape {
        mappings: vec![m.clone()],
        stats,
        tasks: None,
        instance: None,
    }
    .render()
}

#[test]
fn a_mapping_with_nothing_counted_shows_its_counters_at_zero() {
    let m = mapping();
    let text = render(&m, &[]);
    for name in [
        "mqtrigger_messages_received_total",
        "mqtrigger_messages_filtered_total",
        "mqtrigger_messages_succeeded_total",
        "mqtrigger_batches_in_flight",
    ] {
        assert_eq!(value(&text, name, m.uuid), "0", "{name}");
    }
}

#[test]
fn filtered_only_traffic_shows_as_received_and_filtered_before_any_invocation() {
    let m = mapping();
    let text = render(
        &m,
        &[
            EngineEvent::Received {
                mapping: m.uuid,
                messages: 3,
                redelivered: 0,
            },
            EngineEvent::Filtered {
                mapping: m.uuid,
                messages: 3,
            },
        ],
    );
    assert_eq!(
        value(&text, "mqtrigger_messages_received_total", m.uuid),
        "3"
    );
    assert_eq!(
        value(&text, "mqtrigger_messages_filtered_total", m.uuid),
        "3"
    );
    assert_eq!(
        value(&text, "mqtrigger_messages_invoked_total", m.uuid),
        "0"
    );
}

#[test]
fn the_engine_s_counts_become_counters_gauges_and_histograms() {
    let m = mapping();
    let id = m.uuid;
    let mut events = vec![EngineEvent::Received {
        mapping: id,
        messages: 12,
        redelivered: 2,
    }];
    events.push(EngineEvent::Filtered {
        mapping: id,
        messages: 2,
    });
    let started = |attempt| EngineEvent::BatchStarted {
        mapping: id,
        batch: BatchId(1),
        messages: 10,
        bytes: 100,
        attempt,
        closed_by: CloseReason::Count,
        at: chrono::Utc::now(),
        event: bytes::Bytes::new(),
    };
    events.push(started(1));
    let text = render(&m, &events);
    assert_eq!(value(&text, "mqtrigger_messages_in_flight", id), "10");
    assert_eq!(value(&text, "mqtrigger_batches_in_flight", id), "1");
    events.push(EngineEvent::BatchFailed {
        mapping: id,
        batch: BatchId(1),
        messages: 10,
        attempt: 1,
        error: "boom".into(),
        latency: Duration::from_millis(3),
    });
    events.push(started(2));
    events.push(EngineEvent::BatchSucceeded {
        mapping: id,
        batch: BatchId(1),
        messages: 10,
        attempts: 2,
        latency: Duration::from_millis(30),
    });
    let text = render(&m, &events);
    assert_eq!(value(&text, "mqtrigger_messages_received_total", id), "12");
    assert_eq!(
        value(&text, "mqtrigger_messages_redelivered_total", id),
        "2"
    );
    assert_eq!(value(&text, "mqtrigger_messages_filtered_total", id), "2");
    assert_eq!(value(&text, "mqtrigger_messages_invoked_total", id), "20");
    assert_eq!(value(&text, "mqtrigger_messages_failed_total", id), "10");
    assert_eq!(value(&text, "mqtrigger_messages_succeeded_total", id), "10");
    assert_eq!(value(&text, "mqtrigger_batches_invoked_total", id), "2");
    assert_eq!(value(&text, "mqtrigger_messages_in_flight", id), "0");
    assert_eq!(
        value(&text, "mqtrigger_function_latency_seconds_count", id),
        "1"
    );
    assert_eq!(value(&text, "mqtrigger_batch_size_messages_count", id), "2");
    let enabled = text
        .lines()
        .find(|l| l.starts_with("mqtrigger_mapping_state") && l.contains("state=\"Enabled\""))
        .unwrap();
    assert!(enabled.ends_with(" 1"), "{enabled}");
    let disabled = text
        .lines()
        .find(|l| l.starts_with("mqtrigger_mapping_state") && l.contains("state=\"Disabled\""))
        .unwrap();
    assert!(disabled.ends_with(" 0"), "{disabled}");
}

#[tokio::test]
async fn the_runtime_s_tasks_are_counted_as_they_come_and_go() {
    let tasks = |text: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix("mqtrigger_runtime_tasks "))
            .unwrap_or_else(|| panic!("no mqtrigger_runtime_tasks in\n{text}"))
            .parse()
            .unwrap()
    };
    let before = tasks(&Scrape::of_runtime().render());
    let stop = CancellationToken::new();
    let waiting: Vec<_> = (0..3)
        .map(|_| tokio::spawn(stop.clone().cancelled_owned()))
        .collect();
    assert_eq!(tasks(&Scrape::of_runtime().render()), before + 3);
    stop.cancel();
    for task in waiting {
        task.await.unwrap();
    }
    assert_eq!(tasks(&Scrape::of_runtime().render()), before);
}

#[test]
fn metrics_config_event_count_adds_lambdas_esm_metric_names() {
    let plain = mapping();
    let events = [
        EngineEvent::Received {
            mapping: plain.uuid,
            messages: 7,
            redelivered: 0,
        },
        EngineEvent::Filtered {
            mapping: plain.uuid,
            messages: 2,
        },
    ];
    let text = render(&plain, &events);
    assert!(!text.contains("PolledEventCount"), "not asked for:\n{text}");
    let mut counting = plain.clone();
    counting.spec.metrics_config = Some(crate::mapping::MetricsConfig {
        metrics: vec![crate::mapping::EventSourceMappingMetric::EventCount],
    });
    let text = render(&counting, &events);
    assert_eq!(value(&text, "PolledEventCount", counting.uuid), "7");
    assert_eq!(value(&text, "FilteredOutEventCount", counting.uuid), "2");
    assert_eq!(value(&text, "DroppedEventCount", counting.uuid), "0");
    assert!(text.contains("# TYPE PolledEventCount gauge"), "{text}");
}
