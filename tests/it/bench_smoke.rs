//! `mqtrigger bench` works end to end with tiny numbers (the real figures
//! come from running it by hand: BENCHMARKS.md). Nothing here is timed.

use crate::common::*;
use std::process::Command;

fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .args([
            "bench",
            "--output",
            "json",
            "--messages",
            "200",
            "--batch-size",
            "10",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("bench --output json prints JSON")
}

fn check(report: &serde_json::Value, with_ceiling: bool) {
    let engine = &report["engine"];
    assert_eq!(engine["messages"], 200);
    assert!(engine["messages_per_second"].as_f64().unwrap() > 0.0);
    assert!(
        engine["latency"]["max_ms"].as_f64().unwrap() > 0.0,
        "latencies were logged"
    );
    assert!(engine["peak_rss_mb"].as_f64().unwrap() > 1.0);
    let function = &report["function_timing"];
    let invocations = function["invocations"].as_u64().unwrap();
    assert!(
        (20..=200).contains(&invocations),
        "the function logged each batch (20 of 10, more if a window closed one early): {function}"
    );
    let busy = function["busy_percent"].as_f64().unwrap();
    assert!(busy > 0.0 && busy <= 100.0, "{function}");
    assert!(function["gap_p50_us"].as_f64().unwrap() >= 0.0);
    assert_eq!(report["ratio"].is_number(), with_ceiling);
    assert!(
        !report["broker"].as_str().unwrap().contains(":guest@"),
        "no password"
    );
}

#[test]
fn bench_runs_on_rabbitmq_with_the_lambda_server() {
    check(&bench(&["--broker", &amqp_url()]), true);
}

#[test]
fn bench_runs_on_activemq_with_a_command_function() {
    let stomp = stomp_endpoint().replace("stomp://", "stomp://admin:admin@");
    check(
        &bench(&["--broker", &stomp, "--function", "command", "--no-ceiling"]),
        false,
    );
}

#[test]
fn bench_measures_idle_mappings() {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
        .args([
            "bench",
            "--output",
            "json",
            "--idle-mappings",
            "3",
            "--idle-seconds",
            "1",
        ])
        .args(["--broker", &amqp_url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mappings"], 3);
    assert_eq!(report["running"], 3);
}
