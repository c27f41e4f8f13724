//! The console's side of a service attached to (`console --endpoint URL`):
//! a [`Driver`] over HTTP. Changes go through Lambda's event-source-mapping
//! API, the rest through [`super::watch`]'s routes; every request is signed
//! with SigV4 by the AWS credentials the AWS CLI would use (dummy ones for
//! a loopback endpoint without any, as `mqtrigger mappings` does).
//!
//! The event stream reconnects by itself: while the service is away the
//! console is told so ([`FeedItem::Lost`]) and keeps its last picture; the
//! service's first item on a new stream is a snapshot, so counts resync.

use super::routes::EventSourceMappingConfiguration;
use super::watch::{self, PREFIX, PROTOCOL, Replayed, ServiceInfo};
use crate::engine::{ControlError, FeedItem, Kind};
use crate::mapping::MappingSpec;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use uuid::Uuid;

type Result<T> = std::result::Result<T, ControlError>;

mod operate;
type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A request that gets no answer in this long has failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A stream silent this long (three keep-alives missed) is a lost service.
const SILENCE: Duration = Duration::from_secs(3 * watch::KEEP_ALIVE.as_secs());
const RECONNECT_FIRST: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Lambda's API signs as this service.
const SERVICE: &str = "lambda";
const MAPPINGS: &str = "/2015-03-31/event-source-mappings/";

/// A running mqtrigger's API, as a console drives it.
#[derive(Clone)]
pub struct Remote {
    /// The URL as given, without a trailing slash.
    endpoint: String,
    http: Client<Https, Full<Bytes>>,
    credentials: SharedCredentialsProvider,
    region: String,
}

impl Remote {
    /// Ready to talk to `endpoint` (nothing is sent yet: [`Driver::describe`]
    /// is the first request).
    pub async fn new(endpoint: &str) -> anyhow::Result<Remote> {
        let (credentials, region) = credentials(endpoint).await;
        Remote::signing_with(endpoint, credentials, region)
    }

    /// Signs with these credentials, whatever the environment holds.
    pub fn signing_with(
        endpoint: &str,
        credentials: SharedCredentialsProvider,
        region: String,
    ) -> anyhow::Result<Remote> {
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        let uri: hyper::Uri = endpoint.parse().map_err(|e| {
            anyhow::anyhow!("--endpoint {endpoint} is not a URL ({e}); give http://HOST:PORT")
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            anyhow::bail!("--endpoint {endpoint} is not an http:// or https:// URL");
        }
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| anyhow::anyhow!("cannot read this system's CA certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Remote {
            endpoint,
            http: Client::builder(TokioExecutor::new()).build(tls),
            credentials,
            region,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends one signed request; the response's status and the response
    /// itself, the body still to be read.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> std::result::Result<hyper::Response<hyper::body::Incoming>, String> {
        let url = format!("{}{path}", self.endpoint);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .map_err(|e| format!("cannot make a request of {url}: {e}"))?;
        self.sign(&mut request, &body).await?;
        let sent = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(request)).await;
        match sent {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(format!(
                "cannot reach mqtrigger at {} (is `mqtrigger serve --api` running there?): {}",
                self.endpoint,
                crate::error_text::causes(&e)
            )),
            Err(_) => Err(format!(
                "mqtrigger at {} did not answer within {REQUEST_TIMEOUT:?}",
                self.endpoint
            )),
        }
    }

    async fn sign(
        &self,
        request: &mut hyper::Request<Full<Bytes>>,
        body: &[u8],
    ) -> std::result::Result<(), String> {
        let credentials = self.credentials.provide_credentials().await.map_err(|e| {
            format!(
                "no AWS credentials to sign with ({}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, to one of the service's [api] access_keys",
                crate::error_text::causes(&e)
            )
        })?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into();
        let uri = request.uri().to_string();
        let host = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/json"),
        ];
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    /// One request whose answer is JSON of type `T`; an error answer is
    /// Lambda's `{"Type", "message"}` with `x-amzn-ErrorType`.
    pub(super) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<T> {
        let response = self
            .send(method, path, body)
            .await
            .map_err(ControlError::failed)?;
        let status = response.status();
        let kind = error_kind(response.headers());
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| {
                ControlError::failed(format!("mqtrigger at {} stopped answering", self.endpoint))
            })?
            .map_err(|e| {
                ControlError::failed(format!("the answer of {} broke off: {e}", self.endpoint))
            })?
            .to_bytes();
        if !status.is_success() {
            return Err(self.refusal(status, kind.as_deref(), &bytes, path));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ControlError::failed(format!(
                "{} answered {path} with something this console does not read ({e}); is it the same mqtrigger version?",
                self.endpoint
            ))
        })
    }

    /// An error answer, as the console shows it.
    fn refusal(
        &self,
        status: StatusCode,
        kind: Option<&str>,
        body: &[u8],
        path: &str,
    ) -> ControlError {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| crate::error_text::first_line(&String::from_utf8_lossy(body), 200));
        match (status, kind) {
            (_, Some("ResourceNotFoundException"))
                if path.starts_with(PREFIX) && message.starts_with("mqtrigger serves") =>
            {
                // Its fallback answered: an mqtrigger from before /mqtrigger/v1.
                ControlError::failed(format!(
                    "{} is an mqtrigger without the console's API (an older version: upgrade it to attach a console): {message}",
                    self.endpoint
                ))
            }
            (_, Some("ResourceNotFoundException")) => remote(Kind::NotFound, message),
            (_, Some("AccessDeniedException")) => remote(Kind::ReadOnly, message),
            (_, Some("ResourceConflictException")) => remote(Kind::Conflict, message),
            (_, Some("InvalidParameterValueException")) => remote(Kind::Invalid, message),
            (StatusCode::FORBIDDEN, _) => ControlError::failed(format!(
                "mqtrigger at {} refused this console's signature: {}. The console signs with the AWS CLI's credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE); they must be one of the service's [api] access_keys",
                self.endpoint,
                message.trim_end_matches('.')
            )),
            (_, None) => ControlError::failed(format!(
                "{} is not an mqtrigger API ({path} answered {status}: {message})",
                self.endpoint
            )),
            _ => ControlError::failed(message),
        }
    }

    /// Every mapping's counts, and with a shared store its owner.
    pub async fn stats(&self) -> Result<crate::engine::EngineStats> {
        let path = format!("{PREFIX}/stats");
        self.call(Method::GET, &path, Bytes::new()).await
    }

    /// The instances on the service's shared store.
    pub async fn instances(&self) -> Result<watch::Instances> {
        let path = format!("{PREFIX}/instances");
        self.call(Method::GET, &path, Bytes::new()).await
    }

    /// UpdateEventSourceMapping with these fields.
    pub async fn update(
        &self,
        uuid: Uuid,
        change: serde_json::Value,
    ) -> Result<EventSourceMappingConfiguration> {
        self.call(Method::PUT, &format!("{MAPPINGS}{uuid}"), json(&change))
            .await
    }

    /// What runs there, checked to be an mqtrigger speaking this console's protocol.
    pub async fn service(&self) -> Result<ServiceInfo> {
        let info: ServiceInfo = self
            .call(Method::GET, &format!("{PREFIX}/service"), Bytes::new())
            .await?;
        if info.service != "mqtrigger" || info.protocol != PROTOCOL {
            return Err(ControlError::failed(format!(
                "{} runs {} {} (console protocol {}); this console is mqtrigger {} (protocol {PROTOCOL}): use the same version on both sides",
                self.endpoint,
                info.service,
                info.version,
                info.protocol,
                env!("CARGO_PKG_VERSION")
            )));
        }
        Ok(info)
    }

    /// The service's snapshot, then its events, reconnecting when it goes
    /// away (saying so with [`FeedItem::Lost`]).
    pub fn follow(&self) -> mpsc::Receiver<FeedItem> {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(self.clone().keep_following(tx));
        rx
    }

    /// CreateEventSourceMapping.
    pub async fn create(&self, spec: &MappingSpec) -> Result<EventSourceMappingConfiguration> {
        self.call(Method::POST, MAPPINGS, json(spec)).await
    }

    /// DeleteEventSourceMapping.
    pub async fn delete(&self, uuid: Uuid) -> Result<EventSourceMappingConfiguration> {
        self.call(Method::DELETE, &format!("{MAPPINGS}{uuid}"), Bytes::new())
            .await
    }

    /// Invokes the mapping's function with a dead letter's record.
    pub async fn replay(&self, mapping: Uuid, letter: i64) -> Result<String> {
        let path = format!("{PREFIX}/mappings/{mapping}/dead-letters/{letter}/replay");
        let r: Replayed = self.call(Method::POST, &path, Bytes::new()).await?;
        Ok(r.response)
    }

    /// Invokes the mapping's function with this event.
    pub async fn replay_event(&self, mapping: Uuid, event: Bytes) -> Result<String> {
        let path = format!("{PREFIX}/mappings/{mapping}/replay");
        let r: Replayed = self.call(Method::POST, &path, event).await?;
        Ok(r.response)
    }

    /// Puts a dead letter back on its queue.
    pub async fn republish(&self, mapping: Uuid, letter: i64) -> Result<()> {
        let path = format!("{PREFIX}/mappings/{mapping}/dead-letters/{letter}/republish");
        let _: serde_json::Value = self.call(Method::POST, &path, Bytes::new()).await?;
        Ok(())
    }

    /// Follows the event stream until it ends, fails or the console goes.
    async fn stream(&self, tx: &mpsc::Sender<FeedItem>, heard: &mut bool) -> StreamEnd {
        let path = format!("{PREFIX}/events");
        let response = match self.send(Method::GET, &path, Bytes::new()).await {
            Ok(r) => r,
            Err(why) => return StreamEnd::Failed(why),
        };
        let status = response.status();
        if !status.is_success() {
            let kind = error_kind(response.headers());
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return StreamEnd::Failed(
                self.refusal(status, kind.as_deref(), &body, &path)
                    .to_string(),
            );
        }
        // Silence is measured on the bytes, keep-alive comments included.
        let body = response.into_body().into_data_stream();
        let timed = futures::stream::unfold(body, |mut body| async move {
            match tokio::time::timeout(SILENCE, body.next()).await {
                Ok(Some(chunk)) => Some((chunk.map_err(|e| e.to_string()), body)),
                Ok(None) => None,
                Err(_) => Some((Err(format!("no word for {}s", SILENCE.as_secs())), body)),
            }
        });
        let mut events = eventsource_stream::Eventsource::eventsource(timed.boxed());
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    return StreamEnd::Failed(format!(
                        "the event stream of {} broke off: {e}",
                        self.endpoint
                    ));
                }
            };
            let item: FeedItem = match serde_json::from_str(&event.data) {
                Ok(item) => item,
                Err(e) => {
                    return StreamEnd::Failed(format!(
                        "{} sent an event this console does not read ({e}); is it the same mqtrigger version?",
                        self.endpoint
                    ));
                }
            };
            *heard = true;
            if tx.send(item).await.is_err() {
                return StreamEnd::ConsoleGone;
            }
        }
        StreamEnd::Failed(format!(
            "mqtrigger at {} closed the event stream (stopped or restarting)",
            self.endpoint
        ))
    }

    async fn keep_following(self, tx: mpsc::Sender<FeedItem>) {
        let mut wait = RECONNECT_FIRST;
        loop {
            let mut heard = false;
            let why = match self.stream(&tx, &mut heard).await {
                StreamEnd::ConsoleGone => return,
                StreamEnd::Failed(why) => why,
            };
            if heard {
                wait = RECONNECT_FIRST;
            }
            tracing::warn!("{why}; reconnecting");
            if tx.send(FeedItem::Lost(why)).await.is_err() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = tx.closed() => return,
            }
            wait = (wait * 2).min(RECONNECT_MAX);
        }
    }
}

enum StreamEnd {
    ConsoleGone,
    Failed(String),
}

/// Lambda's error type, from `x-amzn-ErrorType` (`Type:extra` → `Type`).
fn error_kind(headers: &hyper::HeaderMap) -> Option<String> {
    let value = headers.get("x-amzn-ErrorType")?.to_str().ok()?;
    Some(value.split(':').next().unwrap_or(value).to_owned())
}

fn json(value: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// The AWS CLI's credentials and region; a loopback endpoint without any
/// signs with dummy ones.
async fn credentials(endpoint: &str) -> (SharedCredentialsProvider, String) {
    let region = |r: Option<&aws_config::Region>| {
        r.map(|r| r.to_string())
            .unwrap_or_else(|| crate::aws::DEFAULT_REGION.into())
    };
    if crate::aws::is_loopback(endpoint) {
        // A region too, as `mqtrigger mappings` gives one: else the SDK
        // asks the instance metadata service for one, and warns when
        // there is none.
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(crate::aws::local_credentials(None).await)
            .region(super::client::loopback_region())
            .load()
            .await;
        let provider = shared.credentials_provider().expect("set just above");
        return (provider, region(shared.region()));
    }
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let provider = shared.credentials_provider().unwrap_or_else(|| {
        SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "", "", None, None, "none",
        ))
    });
    (provider, region(shared.region()))
}

/// A service's refusal, in its words.
fn remote(kind: Kind, message: String) -> ControlError {
    ControlError::Remote { kind, message }
}
