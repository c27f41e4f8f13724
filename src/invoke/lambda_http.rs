//! The HTTP client under the `lambda` runtime's aws-sdk-lambda.
//!
//! The SDK builds, signs and sends a request in one `send()`, and its work
//! (about 150 µs of CPU a call on this machine's loopback, measured in
//! BENCHMARKS.md) used to sit between one function answer and the next
//! request. Here the SDK's work for the next batch happens while the
//! function still works on the last one: the engine starts the next batch's
//! `send()` early, and this connector, the last step before the wire, holds
//! the signed request until it is the batch's turn (`invoke::Turn`). It also
//! reads the whole answer and tells the turn whether the function succeeded
//! before the SDK parses it, so the next request goes out first.
//!
//! - The turn reaches the connector as a task-local: the SDK offers no
//!   public way to pass a value of ours from `send()` to its connector, and
//!   its connector future runs inside `send()`'s task.
//! - A request held longer than [`HELD_AT_MOST`] is given up unsent
//!   ([`Unsent::Stale`]) and the invoker sends it anew: a SigV4 signature
//!   is good for five minutes.
//! - The function's timeout counts from the moment the request goes, not
//!   while it waits: the connector gives up after `limit` ([`GaveUp`]), and
//!   the SDK has no operation timeout of its own.

use super::lambda_answer::answer_succeeded;
use super::{NotSent, Turn};
use aws_sdk_lambda::config::ConfigBag;
use aws_sdk_lambda::primitives::SdkBody;
use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// How long a signed request may wait for its turn before it is signed anew.
const HELD_AT_MOST: Duration = Duration::from_secs(60);

tokio::task_local! {
    /// The turn of the attempt whose request the SDK sends on this task.
    static TURN: Arc<dyn Turn>;
}

/// Runs an SDK `send()` whose request waits for `turn` before it goes.
pub async fn in_turn<F: Future>(turn: Arc<dyn Turn>, send: F) -> F::Output {
    TURN.scope(turn, send).await
}

/// Why a request did not go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsent {
    #[error("the request waited too long for its turn and is signed anew")]
    Stale,
    #[error("the session ended before the batch's turn")]
    SessionEnded,
}

/// The function did not answer within its timeout after the request went.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
pub struct GaveUp(pub Duration);

/// Wraps the SDK's default HTTPS client (aws-smithy-http-client with
/// rustls on aws-lc, the proxy from the environment: what the
/// `default-https-client` feature would give the SDK).
#[derive(Debug)]
pub struct TurnClient {
    inner: SharedHttpClient,
    limit: Duration,
}

impl TurnClient {
    pub fn new(limit: Duration) -> TurnClient {
        let inner = Builder::new().build_with_connector_fn(|settings, components| {
            let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ));
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        });
        TurnClient { inner, limit }
    }
}

impl HttpClient for TurnClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(TurnConnector {
            inner: self.inner.http_connector(settings, components),
            limit: self.limit,
        })
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_base_client_config(components, cfg)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }
}

#[derive(Debug)]
struct TurnConnector {
    inner: SharedHttpConnector,
    limit: Duration,
}

impl HttpConnector for TurnConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let turn = TURN.try_with(Arc::clone).ok();
        // The batch's trace, as Lambda's callers send it (outside the
        // signature: unsigned headers are allowed).
        if let Some(trace) = crate::trace::current() {
            let headers = request.headers_mut();
            headers.insert("x-amzn-trace-id", trace.to_xray());
            headers.insert("traceparent", trace.to_w3c());
        }
        let (inner, limit) = (self.inner.clone(), self.limit);
        HttpConnectorFuture::new(async move {
            // Built before the turn comes (it sends nothing until polled):
            // converting the request is work done ahead too.
            let call = inner.call(request);
            if let Some(turn) = &turn {
                let unsent = |why| ConnectorError::other(Box::new(why), None);
                match tokio::time::timeout(HELD_AT_MOST, turn.go()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(NotSent)) => return Err(unsent(Unsent::SessionEnded)),
                    Err(_) => return Err(unsent(Unsent::Stale)),
                }
            }
            let answer = async {
                let mut call = std::pin::pin!(call);
                // The first poll hands the request to the connection's task.
                let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
                if let Some(turn) = &turn {
                    turn.sent();
                }
                let mut response = match first {
                    Poll::Ready(response) => response?,
                    Poll::Pending => call.await?,
                };
                let body = response
                    .take_body()
                    .collect()
                    .await
                    .map_err(ConnectorError::io)?
                    .to_bytes();
                Ok::<_, ConnectorError>((response, body))
            };
            let (mut response, body) = tokio::time::timeout(limit, answer)
                .await
                .map_err(|_| ConnectorError::timeout(Box::new(GaveUp(limit))))??;
            if let Some(turn) = &turn {
                turn.answered(answer_succeeded(&response, &body));
                // The next batch's task, woken by that, sends its request
                // before this task goes on to parse the answer.
                tokio::task::yield_now().await;
            }
            *response.body_mut() = SdkBody::from(body);
            Ok(response)
        })
    }
}

/// What a failed send says about itself, if it came from here.
pub fn unsent(error: &ConnectorError) -> Option<Unsent> {
    std::error::Error::source(error)?
        .downcast_ref::<Unsent>()
        .copied()
}

/// Whether a failed send was this connector giving up on the function.
pub fn gave_up(error: &ConnectorError) -> bool {
    std::error::Error::source(error).is_some_and(|s| s.is::<GaveUp>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use futures::future::BoxFuture;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::watch;

    /// An endpoint that answers after `takes` with `function_error` set or not.
    #[derive(Debug)]
    struct Endpoint {
        takes: Duration,
        function_error: bool,
        calls: Arc<AtomicUsize>,
    }

    impl HttpConnector for Endpoint {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            let (takes, function_error) = (self.takes, self.function_error);
            let calls = self.calls.clone();
            // Like hyper's: nothing goes before the future is polled.
            HttpConnectorFuture::new(async move {
                calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(takes).await;
                let mut response =
                    HttpResponse::new(200.try_into().unwrap(), SdkBody::from("{\"ok\":1}"));
                if function_error {
                    response
                        .headers_mut()
                        .insert("x-amz-function-error", "Unhandled");
                }
                Ok(response)
            })
        }
    }

    /// A turn that comes when `comes` says so, and remembers what it was told.
    struct TestTurn {
        comes: watch::Receiver<Option<Result<(), NotSent>>>,
        sent: AtomicUsize,
        answers: Mutex<Vec<bool>>,
    }

    impl Turn for TestTurn {
        fn go(&self) -> BoxFuture<'_, Result<(), NotSent>> {
            let mut comes = self.comes.clone();
            Box::pin(async move {
                let came = *comes.wait_for(Option::is_some).await.unwrap();
                came.unwrap()
            })
        }
        fn sent(&self) {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        fn answered(&self, succeeded: bool) {
            self.answers.lock().unwrap().push(succeeded);
        }
    }

    struct Case {
        connector: TurnConnector,
        turn: Arc<TestTurn>,
        comes: watch::Sender<Option<Result<(), NotSent>>>,
        calls: Arc<AtomicUsize>,
    }

    fn case(takes: Duration, function_error: bool, limit: Duration) -> Case {
        let calls = Arc::new(AtomicUsize::new(0));
        let (comes, rx) = watch::channel(None);
        Case {
            connector: TurnConnector {
                inner: SharedHttpConnector::new(Endpoint {
                    takes,
                    function_error,
                    calls: calls.clone(),
                }),
                limit,
            },
            turn: Arc::new(TestTurn {
                comes: rx,
                sent: AtomicUsize::new(0),
                answers: Mutex::default(),
            }),
            comes,
            calls,
        }
    }

    impl Case {
        async fn send(&self) -> Result<HttpResponse, ConnectorError> {
            // As in the SDK, the connector is called within the send.
            in_turn(self.turn.clone(), async {
                self.connector.call(HttpRequest::empty()).await
            })
            .await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_request_waits_for_its_turn_and_its_timeout_counts_from_sending() {
        let c = case(Duration::from_secs(8), false, Duration::from_secs(10));
        let send = c.send();
        let comes = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            assert_eq!(
                c.calls.load(Ordering::Relaxed),
                0,
                "nothing sent before the turn"
            );
            c.comes.send_replace(Some(Ok(())));
        };
        let (response, ()) = tokio::join!(send, comes);
        let body = response.unwrap().into_body();
        assert_eq!(body.bytes(), Some(&b"{\"ok\":1}"[..]), "the whole answer");
        assert_eq!(c.turn.sent.load(Ordering::Relaxed), 1);
        assert_eq!(*c.turn.answers.lock().unwrap(), [true]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_function_error_does_not_free_the_turn() {
        let c = case(Duration::ZERO, true, Duration::from_secs(10));
        c.comes.send_replace(Some(Ok(())));
        assert!(c.send().await.is_ok());
        assert_eq!(*c.turn.answers.lock().unwrap(), [false]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_held_too_long_is_given_up_unsent_to_be_signed_anew() {
        let c = case(Duration::ZERO, false, Duration::from_secs(10));
        let error = c.send().await.unwrap_err();
        assert_eq!(unsent(&error), Some(Unsent::Stale));
        assert_eq!(c.calls.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_that_never_comes_sends_nothing() {
        let c = case(Duration::ZERO, false, Duration::from_secs(10));
        c.comes.send_replace(Some(Err(NotSent)));
        let error = c.send().await.unwrap_err();
        assert_eq!(unsent(&error), Some(Unsent::SessionEnded));
        assert_eq!(c.calls.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_function_slower_than_the_limit_is_given_up_on() {
        let c = case(Duration::from_secs(11), false, Duration::from_secs(10));
        c.comes.send_replace(Some(Ok(())));
        let error = c.send().await.unwrap_err();
        assert!(gave_up(&error), "{error:?}");
        assert!(c.turn.answers.lock().unwrap().is_empty(), "no answer");
    }
}
