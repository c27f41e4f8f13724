//! The `lambda` runtime: aws-sdk-lambda Invoke (RequestResponse).
//!
//! The SDK's own retries are off: the engine retries whole batches and counts
//! the attempts, as Lambda's poller does.

use super::{FunctionConfig, InvokeError, Invoker};
use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError as ApiError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::time::Duration;

/// How long a Lambda invoke may take when no `timeout` is configured: the
/// function's real timeout lives on Lambda, and 14 minutes is its maximum.
const DEFAULT_LAMBDA_TIMEOUT: Duration = Duration::from_secs(super::MAX_TIMEOUT_SECS);

pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    function: String,
    endpoint: String,
    timeout: Duration,
}

/// A Lambda-compatible server on this machine needs no AWS account.
fn is_loopback(url: &str) -> bool {
    let host = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = host.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or_default()
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl LambdaInvoker {
    pub async fn new(config: &FunctionConfig) -> Result<Self, InvokeError> {
        let function = config.lambda.clone().unwrap_or_default();
        let local = config.endpoint_url.as_deref().is_some_and(is_loopback);
        let env_region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .ok();
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        match config.region.clone().or(env_region) {
            Some(region) => loader = loader.region(Region::new(region)),
            // Without a region the chain would ask the instance metadata
            // service, which hangs off EC2; a local endpoint needs none.
            None if local => loader = loader.region(Region::new("us-east-1")),
            None => {}
        }
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        } else if local && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new(
                "mqtrigger-local",
                "mqtrigger-local",
                None,
                None,
                "mqtrigger",
            ));
        }
        let shared = loader.load().await;
        let timeout = config
            .timeout
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LAMBDA_TIMEOUT);
        let region = shared
            .region()
            .cloned()
            .unwrap_or_else(|| Region::new("us-east-1"));
        let mut builder = aws_sdk_lambda::config::Builder::from(&shared)
            .region(region.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(timeout + Duration::from_secs(5))
                    .build(),
            );
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        let endpoint = config
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("Lambda in {region}"));
        Ok(LambdaInvoker {
            client: aws_sdk_lambda::Client::from_conf(builder.build()),
            function,
            endpoint,
            timeout,
        })
    }

    async fn call(&self, event: Bytes) -> Result<Bytes, InvokeError> {
        let result = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(event.to_vec()))
            .send()
            .await;
        match result {
            Ok(out) => {
                let payload = out
                    .payload
                    .map(|b| Bytes::from(b.into_inner()))
                    .unwrap_or_default();
                match out.function_error {
                    Some(kind) => Err(InvokeError::Function {
                        error_type: kind,
                        payload: String::from_utf8_lossy(&payload).into_owned(),
                    }),
                    None => Ok(payload),
                }
            }
            Err(e) => Err(self.classify(e)),
        }
    }

    fn classify(&self, err: SdkError<ApiError>) -> InvokeError {
        let (function, endpoint) = (&self.function, &self.endpoint);
        let fix = "check the function's `lambda`, `region` and `endpoint_url`";
        match err {
            SdkError::TimeoutError(_) => InvokeError::Timeout(self.timeout),
            SdkError::DispatchFailure(e) if e.is_timeout() => InvokeError::Timeout(self.timeout),
            SdkError::DispatchFailure(e) => InvokeError::Transient(format!(
                "cannot reach {endpoint} to invoke '{function}': {:?}",
                e.as_connector_error()
            )),
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let e = se.into_err();
                let code = e.code().unwrap_or("Unknown").to_owned();
                let message = e.message().unwrap_or_default().to_owned();
                let said = format!("{code}: {message}");
                match e {
                    ApiError::ResourceNotFoundException(_) => InvokeError::ConfigNotValid(format!(
                        "Lambda function '{function}' was not found at {endpoint} ({said}) — {fix}"
                    )),
                    ApiError::RequestTooLargeException(_)
                    | ApiError::SerializedRequestEntityTooLargeException(_) => {
                        InvokeError::Function {
                            error_type: "RequestTooLarge".into(),
                            payload: said,
                        }
                    }
                    ApiError::TooManyRequestsException(_)
                    | ApiError::ServiceException(_)
                    | ApiError::ResourceNotReadyException(_)
                    | ApiError::EniNotReadyException(_)
                    | ApiError::SnapStartNotReadyException(_) => InvokeError::Transient(format!(
                        "{endpoint} could not invoke '{function}' now ({said})"
                    )),
                    _ if status >= 500 || status == 429 => InvokeError::Transient(format!(
                        "{endpoint} could not invoke '{function}' now (HTTP {status}, {said})"
                    )),
                    _ => InvokeError::ConfigNotValid(format!(
                        "{endpoint} refused to invoke Lambda function '{function}' (HTTP {status}, {said}) — {fix}"
                    )),
                }
            }
            other => InvokeError::Transient(format!(
                "invoking '{function}' at {endpoint} failed: {other:?}"
            )),
        }
    }
}

impl Invoker for LambdaInvoker {
    fn invoke(&self, event: Bytes) -> BoxFuture<'_, Result<Bytes, InvokeError>> {
        Box::pin(self.call(event))
    }

    fn describe(&self) -> String {
        format!("lambda {} at {}", self.function, self.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_endpoints_are_recognised() {
        for url in [
            "http://127.0.0.1:9001",
            "http://localhost:9001/x",
            "http://[::1]:9001",
            "http://127.3.2.1",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://lambda.us-east-1.amazonaws.com",
            "http://10.0.0.1:9001",
            "http://localhost.example.com",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
