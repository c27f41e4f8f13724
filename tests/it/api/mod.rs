//! Lambda's event-source-mapping API, driven as its users drive it:
//! aws-sdk-lambda, the AWS CLI, boto3 and mqtrigger's own clients, against
//! a real engine on the real RabbitMQ, signed and keyless. This file holds
//! what several of them share: the signed API in this process, the AWS
//! CLI, and a keyless `serve --api` with raw HTTP requests to it.

use crate::common::*;
use aws_sdk_lambda::config::{Credentials, Region};
use std::time::SystemTime;

const KEY_ID: &str = "AKIDMQTRIGGERTEST";
const KEY_SECRET: &str = "api-secret-never-printed-7f3a";

struct Api {
    running: Running,
    url: String,
    _stop: tokio_util::sync::DropGuard,
}

async fn start_api(queue: &str) -> Api {
    let mut setup = Setup::new(queue);
    setup.extra_toml =
        format!("[api]\naccess_keys = [{{ id = \"{KEY_ID}\", secret = \"{KEY_SECRET}\" }}]\n");
    let running = Running::start(&setup).await;
    let listener = mqtrigger::api::bind("127.0.0.1:0".parse().unwrap(), &[])
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mqtrigger::api::serve(
        running.control.clone(),
        listener,
        stop.clone(),
    ));
    Api {
        running,
        url,
        _stop: stop.drop_guard(),
    }
}

fn lambda(url: &str, id: &str, secret: &str, clock: Option<SystemTime>) -> aws_sdk_lambda::Client {
    let mut config = aws_sdk_lambda::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(id, secret, None, None, "test"));
    if let Some(t) = clock {
        config = config.time_source(aws_smithy_async::time::StaticTimeSource::new(t));
    }
    aws_sdk_lambda::Client::from_conf(config.build())
}

/// The real AWS CLI (`pip install awscli`; scripts/test installs it).
fn aws(url: &str, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = std::process::Command::new("aws")
        .args(["lambda", "--endpoint-url", url, "--output", "json"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_PAGER", "")
        .output()
        .expect("the AWS CLI is installed (pip install awscli)");
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(serde_json::from_str(text.trim()).unwrap_or(serde_json::Value::Null))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// boto3 (botocore's own shapes, validation and signing) running `script`
/// against `url` (its first argument), with these credentials.
fn boto3(url: &str, script: &str, (id, secret): (&str, &str)) -> Result<String, String> {
    let out = std::process::Command::new(python())
        .args(["-c", script, url])
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("python3 runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

async fn aws_async(url: String, args: Vec<String>) -> Result<serde_json::Value, String> {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        aws(&url, &args)
    })
    .await
    .unwrap()
}

/// `aws!(url, ARGS…)`: [`aws`] on a blocking thread, each argument
/// anything `Display`. Defined before the `mod` lines: a `macro_rules!`
/// reaches only the modules declared after it.
macro_rules! aws {
    ($url:expr, $($arg:expr),+ $(,)?) => {
        aws_async($url.to_owned(), vec![$($arg.to_string()),+]).await
    };
}

mod aws_cli;
mod esm_rest;
mod guard;
mod keyless_clients;
mod loopback;
mod sdk;
mod sigv4;

// ---------------------------------------------------------------------------
// A keyless `serve --api` on loopback, for the tests of its guard against the
// web pages of a browser on the same machine (`guard.rs`) and of the clients
// it must still serve (`keyless_clients.rs`).

/// One answer of [`raw`]: the status, `x-amzn-ErrorType`, and the body.
#[derive(Debug)]
struct Answer {
    status: u16,
    kind: String,
    body: String,
}

/// An HTTP/1.1 request with exactly these headers (a `Host` of `addr`
/// unless one is given), as a browser or a hostile page would send it.
async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let kind = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-amzn-errortype")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    Answer {
        status,
        kind,
        body: body.to_owned(),
    }
}

/// A keyless `serve --api` on loopback (the README's default) whose
/// function writes each event it gets to DIR/touched: the directory, its
/// address, the mapping's UUID and the process.
struct Keyless {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    queue: String,
    uuid: String,
    _service: KillOnDrop,
}

impl Keyless {
    async fn start(name: &str, api_toml: &str) -> Keyless {
        let queue = unique(name);
        Broker::connect()
            .await
            .declare(&queue, Default::default())
            .await;
        let dir = tempfile::tempdir().unwrap();
        let touched = dir.path().join("touched");
        let mut setup = Setup::new(&queue);
        setup.function_command = Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "cat > '{}'; echo '{{\"replayed\": true}}'",
                touched.display()
            ),
        ]);
        setup.extra_toml = api_toml.to_owned();
        write_service_config(dir.path(), &setup);
        let addr = free_port();
        let service = serve_api(dir.path(), addr, &[]);
        wait_listening(addr).await;
        let listed = raw(addr, "GET", "/2015-03-31/event-source-mappings/", &[], "").await;
        assert_eq!(listed.status, 200, "{listed:?}");
        let listed: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
        let uuid = listed["EventSourceMappings"][0]["UUID"]
            .as_str()
            .unwrap()
            .to_owned();
        Keyless {
            dir,
            addr,
            queue,
            uuid,
            _service: service,
        }
    }

    fn touched(&self) -> bool {
        self.dir.path().join("touched").exists()
    }

    async fn uuids(&self) -> Vec<String> {
        let listed = raw(
            self.addr,
            "GET",
            "/2015-03-31/event-source-mappings/",
            &[],
            "",
        )
        .await;
        assert_eq!(listed.status, 200, "{listed:?}");
        let listed: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
        listed["EventSourceMappings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["UUID"].as_str().unwrap().to_owned())
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn replay_path(&self) -> String {
        format!("/mqtrigger/v1/mappings/{}/replay", self.uuid)
    }
}

const EVENT: &str = r#"{"eventSource":"aws:rmq","rmqMessagesByQueue":{}}"#;
