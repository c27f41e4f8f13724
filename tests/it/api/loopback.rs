//! Where a keyless API may listen: no flag, config entry or IPv6 form puts
//! it beyond loopback without access keys, a name is checked as the address
//! it resolves to, and with access keys any address may be listened on.

use super::{KEY_ID, KEY_SECRET};
use crate::common::*;
use std::time::Duration;

#[tokio::test]
async fn without_keys_the_api_will_not_listen_beyond_loopback() {
    let err = mqtrigger::api::bind("0.0.0.0:0".parse().unwrap(), &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("access_keys"), "{err}");
}

/// `mqtrigger ARGS`, which should be refused at once: its stderr.
fn refused_start(args: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"));
    command.args(args);
    let out = run_to_its_end(&mut command, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("mqtrigger {args:?} started: {e}"));
    assert!(!out.status.success(), "mqtrigger {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_way_to_listen_puts_a_keyless_api_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let queue = unique("guard-listen");
    let port = free_port().port();
    let config = |extra: &str| {
        let path = dir.path().join(format!("c{}.toml", extra.len()));
        let mut setup = Setup::new(&queue);
        setup.extra_toml = extra.to_owned();
        std::fs::write(&path, setup.toml(&dir.path().join("events.jsonl"))).unwrap();
        path.display().to_string()
    };
    let plain = config("");
    let state = dir.path().join("state").display().to_string();
    let everywhere = format!("0.0.0.0:{port}");
    let v6_everywhere = format!("[::]:{port}");
    let listen_everywhere = config(&format!("[api]\nlisten = \"{everywhere}\"\n"));
    let cases: [(&str, Vec<&str>); 4] = [
        (
            "serve --api",
            vec![
                "serve",
                "-c",
                &plain,
                "--state",
                &state,
                "--api",
                &everywhere,
            ],
        ),
        (
            "serve --api [::]",
            vec![
                "serve",
                "-c",
                &plain,
                "--state",
                &state,
                "--api",
                &v6_everywhere,
            ],
        ),
        (
            "[api] listen",
            vec!["serve", "-c", &listen_everywhere, "--state", &state],
        ),
        // Said before the console asks for a terminal, which this has not.
        (
            "console --api",
            vec![
                "console",
                "-c",
                &plain,
                "--state",
                &state,
                "--api",
                &everywhere,
            ],
        ),
    ];
    for (what, args) in cases {
        let stderr = refused_start(&args);
        assert!(
            stderr.contains("refusing to serve the API on")
                && stderr.contains("without [api] access_keys"),
            "{what}: {stderr}"
        );
    }
    // A name is resolved to one address, and that one is checked and bound:
    // `localhost` (127.0.0.1 here, ::1 on some machines) is loopback.
    let by_name = format!("localhost:{port}");
    let serving = spawn_with(&["serve", "-c", &plain, "--state", &state, "--api", &by_name]);
    wait_listening(format!("127.0.0.1:{port}").parse().unwrap()).await;
    drop(serving);
    // With access_keys any address may be listened on.
    let keyed = config(&format!(
        "[api]\nlisten = \"{everywhere}\"\naccess_keys = [{{ id = \"{KEY_ID}\", secret = \"{KEY_SECRET}\" }}]\n"
    ));
    let serving = spawn_with(&["serve", "-c", &keyed, "--state", &state]);
    wait_listening(format!("127.0.0.1:{port}").parse().unwrap()).await;
    drop(serving);
}

fn spawn_with(args: &[&str]) -> KillOnDrop {
    KillOnDrop::new(
        std::process::Command::new(env!("CARGO_BIN_EXE_mqtrigger"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}
