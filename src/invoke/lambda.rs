//! The `lambda` runtime: aws-sdk-lambda Invoke (RequestResponse).
//!
//! - The SDK's own retries are off: the engine retries whole batches and
//!   counts the attempts, as Lambda's poller does.
//! - The client gives up `timeout + 5 s` after sending (840 s + 5 s when no
//!   `timeout` is configured: the function's real timeout lives on Lambda,
//!   which answers a timed-out function with a function error of its own).
//!   Giving up is [`InvokeError::Timeout`].
//! - The next batch's request is built and signed while the function works
//!   on the last one, and goes the moment its turn comes (`lambda_http`).
//! - An `endpoint_url` on this machine (127.0.0.0/8, `localhost`, `::1`)
//!   needs no AWS account: region and credentials come from the environment
//!   and the shared config files only (never the EC2 instance metadata
//!   service, which hangs off EC2), and when there are no credentials the
//!   requests are signed with the dummy `mqtrigger-local` ones.

use super::lambda_answer::function_failed;
use super::lambda_http::{self, TurnClient, Unsent};
use super::{FunctionConfig, InvokeError, Invoked, Invoker, Turn};
pub use crate::aws::LOCAL_ACCESS_KEY;
use crate::aws::{DEFAULT_REGION, is_loopback, local_credentials, local_region_chain};
use crate::error_text::causes;
use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::Region;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError as ApiError;
use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_lambda::primitives::SdkBody;
use aws_sdk_lambda::types::InvocationType;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long a Lambda invoke may take when no `timeout` is configured: the
/// function's real timeout lives on Lambda, and 14 minutes is its maximum.
pub const DEFAULT_LAMBDA_TIMEOUT: Duration = Duration::from_secs(super::MAX_TIMEOUT_SECS);
/// Added to the function's timeout before the client gives up, so Lambda's
/// own timeout error (a function error with the logs' request id) comes first.
const CLIENT_GRACE: Duration = Duration::from_secs(5);

pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    /// Where its requests run (see `lanes`).
    lane: Option<super::lanes::Lane>,
    function: String,
    /// The endpoint URL, or "Lambda in REGION".
    endpoint: String,
    timeout: Duration,
}

impl LambdaInvoker {
    pub async fn new(config: &FunctionConfig) -> Result<Self, InvokeError> {
        let function = config.lambda.clone().unwrap_or_default();
        if function.trim().is_empty() {
            return Err(InvokeError::ConfigNotValid(
                "`lambda` is empty: give the function's name or ARN".into(),
            ));
        }
        if let Some(url) = &config.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(InvokeError::ConfigNotValid(format!(
                "`endpoint_url = \"{url}\"` is not an http:// or https:// URL"
            )));
        }
        let local = config.endpoint_url.as_deref().is_some_and(is_loopback);
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        // The region: `region`, else the one the function's ARN names (an
        // Invoke of that ARN goes there anyway, and no instance metadata
        // needs asking), else the SDK's chain.
        if let Some(region) = config.region.clone().or_else(|| arn_region(&function)) {
            loader = loader.region(Region::new(region));
        } else if local {
            loader = loader.region(local_region_chain(config.profile.as_deref()));
        }
        if local {
            loader =
                loader.credentials_provider(local_credentials(config.profile.as_deref()).await);
        }
        let shared = loader.load().await;
        let timeout = config
            .timeout
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LAMBDA_TIMEOUT);
        let region = shared.region().cloned().unwrap_or_else(|| {
            // The SDK's own warnings of this (the instance metadata's) are
            // silenced in the log filter; this is the one line that says it.
            tracing::warn!(
                "function {function}: no region in its `region`, its ARN, AWS_REGION or the profile, and no instance metadata to ask: invoking in {DEFAULT_REGION}; set the function's `region`"
            );
            Region::new(DEFAULT_REGION)
        });
        let mut builder = aws_sdk_lambda::config::Builder::from(&shared)
            .region(region.clone())
            .retry_config(RetryConfig::disabled())
            .stalled_stream_protection(
                aws_sdk_lambda::config::StalledStreamProtectionConfig::disabled(),
            )
            // The timeout counts from sending, in the HTTP client: a request
            // waiting for its turn is not late.
            .http_client(TurnClient::new(timeout + CLIENT_GRACE))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
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
            lane: super::lanes::Lane::next(),
            function,
            endpoint,
            timeout,
        })
    }

    /// One Invoke. With a turn, the request is prepared at once and goes
    /// when the turn comes (None: it never did).
    async fn call(
        &self,
        event: Bytes,
        turn: Option<Arc<dyn Turn>>,
    ) -> Option<Result<Bytes, InvokeError>> {
        loop {
            let send = self.send(event.clone(), turn.clone());
            let result = match self.lane.as_ref().filter(|l| !l.is_current()) {
                Some(lane) => match lane.run(send).await {
                    Some(result) => result,
                    None => {
                        let gone = "the invocation's thread went away";
                        return Some(Err(InvokeError::Transient(gone.into())));
                    }
                },
                None => send.await,
            };
            let unsent = match &result {
                Err(SdkError::DispatchFailure(e)) => {
                    e.as_connector_error().and_then(lambda_http::unsent)
                }
                _ => None,
            };
            return match unsent {
                Some(Unsent::Stale) => continue,
                Some(Unsent::SessionEnded) => None,
                None => Some(self.outcome(result)),
            };
        }
    }

    /// The SDK's Invoke, as a future that owns what it needs (it may run
    /// on the lane's thread).
    fn send(
        &self,
        event: Bytes,
        turn: Option<Arc<dyn Turn>>,
    ) -> impl Future<Output = Result<InvokeOutput, SdkError<ApiError>>> + Send + 'static {
        let length = event.len().to_string();
        // The event becomes the body as it is: `payload(Blob)` would copy
        // it (up to 6 MB) into a Vec first.
        let send = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .customize()
            .mutate_request(move |request| {
                *request.body_mut() = SdkBody::from(event.clone());
                request
                    .headers_mut()
                    .insert("content-length", length.clone());
            })
            .send();
        async move {
            match turn {
                Some(turn) => lambda_http::in_turn(turn, send).await,
                None => send.await,
            }
        }
    }

    fn outcome(
        &self,
        result: Result<InvokeOutput, SdkError<ApiError>>,
    ) -> Result<Bytes, InvokeError> {
        let out = result.map_err(|e| self.classify(e))?;
        let payload = out
            .payload
            .map(|b| Bytes::from(b.into_inner()))
            .unwrap_or_default();
        match function_failed(out.function_error.as_deref(), &payload) {
            Some(e) => Err(e),
            None => Ok(payload),
        }
    }

    fn classify(&self, err: SdkError<ApiError>) -> InvokeError {
        let (function, endpoint) = (&self.function, &self.endpoint);
        let fix = "check the function's `lambda`, `region` and `endpoint_url`";
        match err {
            SdkError::TimeoutError(_) => InvokeError::Timeout(self.timeout),
            SdkError::DispatchFailure(e)
                if e.as_connector_error().is_some_and(lambda_http::gave_up) =>
            {
                InvokeError::Timeout(self.timeout)
            }
            SdkError::DispatchFailure(e) => {
                let why = match e.as_connector_error() {
                    Some(c) => causes(c),
                    None => format!("{e:?}"),
                };
                // Signing happens before sending: a request that cannot be
                // signed for want of credentials fails here too. None at all,
                // or a broken setup, is for the user to fix; a provider that
                // failed to answer (SSO, STS unreachable) may recover.
                let no_credentials = e.is_other()
                    && (why.contains("the credential provider was not enabled")
                        || why.contains("the credentials provider was not properly configured"));
                if no_credentials {
                    InvokeError::ConfigNotValid(format!(
                        "no usable AWS credentials to invoke Lambda function '{function}' at {endpoint} ({why}) — set the function's `profile`, or AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                    ))
                } else {
                    InvokeError::Transient(format!(
                        "cannot reach {endpoint} to invoke '{function}': {why}"
                    ))
                }
            }
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let e = se.into_err();
                let code = e.code().filter(|c| !c.is_empty()).unwrap_or("Unknown");
                let said = match e.message().filter(|m| !m.is_empty()) {
                    Some(m) => format!("{code}: {m}"),
                    None => code.to_owned(),
                };
                let code = code.to_owned();
                match class_of(&code, status) {
                    Class::TooLarge => InvokeError::Function {
                        error_type: "RequestTooLarge".into(),
                        payload: serde_json::json!({
                            "errorType": code,
                            "errorMessage": format!("{endpoint} refused the event: {said}"),
                        })
                        .to_string(),
                    },
                    Class::Transient => InvokeError::Transient(format!(
                        "{endpoint} could not invoke '{function}' now (HTTP {status}, {said})"
                    )),
                    Class::Config if code == "ResourceNotFoundException" => {
                        InvokeError::ConfigNotValid(format!(
                            "Lambda function '{function}' was not found at {endpoint} ({said}) — {fix}"
                        ))
                    }
                    Class::Config => InvokeError::ConfigNotValid(format!(
                        "{endpoint} refused to invoke Lambda function '{function}' (HTTP {status}, {said}) — {fix}, and the function's state and permissions"
                    )),
                }
            }
            SdkError::ConstructionFailure(_) => InvokeError::ConfigNotValid(format!(
                "cannot build an Invoke request for Lambda function '{function}' ({}) — {fix}",
                causes(&err)
            )),
            other => InvokeError::Transient(format!(
                "invoking '{function}' at {endpoint} failed: {}",
                causes(&other)
            )),
        }
    }
}

impl Invoker for LambdaInvoker {
    fn invoke(&self, event: Bytes) -> BoxFuture<'_, Result<Bytes, InvokeError>> {
        Box::pin(async move {
            // Without a turn nothing holds the request back.
            let not_sent = || Err(InvokeError::Transient("the request was not sent".into()));
            self.call(event, None).await.unwrap_or_else(not_sent)
        })
    }

    fn invoke_in_turn(&self, event: Bytes, turn: Arc<dyn Turn>) -> BoxFuture<'_, Option<Invoked>> {
        Box::pin(async move { Some((self.call(event, Some(turn)).await?, Vec::new())) })
    }

    fn describe(&self) -> String {
        format!("lambda {} at {}", self.function, self.endpoint)
    }

    fn lane(&self) -> Option<super::lanes::Lane> {
        self.lane.clone()
    }
}

/// The region of a function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`).
fn arn_region(function: &str) -> Option<String> {
    let mut parts = function.split(':');
    let prefix = (parts.next()?, parts.next()?, parts.next()?);
    match (prefix, parts.next()) {
        (("arn", _, "lambda"), Some(region)) if !region.is_empty() => Some(region.to_owned()),
        _ => None,
    }
}

#[derive(Debug, PartialEq)]
enum Class {
    /// The function cannot be invoked as configured: stop the mapping.
    Config,
    /// Try again later.
    Transient,
    /// The event is over Lambda's request limit.
    TooLarge,
}

/// What an Invoke API error means for the mapping, by error code (matched
/// without regard to case, as Lambda's spelling varies: `EC2ThrottledException`,
/// `KMSAccessDeniedException`), else by HTTP status.
fn class_of(code: &str, status: u16) -> Class {
    let code = code.to_ascii_lowercase();
    let code = code.strip_suffix("exception").unwrap_or(&code);
    match code {
        "requesttoolarge" | "serializedrequestentitytoolarge" => Class::TooLarge,
        // Throttling, Lambda's own trouble, and states Lambda says to wait out.
        "toomanyrequests"
        | "throttling"
        | "throttled"
        | "requestlimitexceeded"
        | "service"
        | "internalfailure"
        | "serviceunavailable"
        | "requesttimeout"
        | "resourcenotready"
        | "eninotready"
        | "snapstartnotready"
        | "snapstarttimeout"
        | "ec2throttled"
        | "ec2unexpected"
        | "codeartifactuserpending"
        | "efsmounttimeout"
        | "s3filesmounttimeout" => Class::Transient,
        // The function, its permissions or its VPC/KMS/EFS setup need fixing,
        // although Lambda answers some of these with 5xx.
        "resourcenotfound"
        | "invalidparametervalue"
        | "accessdenied"
        | "unrecognizedclient"
        | "invalidsignature"
        | "expiredtoken"
        | "resourceconflict"
        | "kmsaccessdenied"
        | "kmsdisabled"
        | "kmsinvalidstate"
        | "kmsnotfound"
        | "enilimitreached"
        | "invalidsubnetid"
        | "invalidsecuritygroupid"
        | "subnetipaddresslimitreached"
        | "ec2accessdenied"
        | "invalidzipfile"
        | "invalidruntime"
        | "efsio"
        | "efsmountconnectivity"
        | "efsmountfailure"
        | "s3filesmountconnectivity"
        | "s3filesmountfailure"
        | "codeartifactuserdeleted"
        | "codeartifactuserfailed"
        | "snapstart"
        | "snapstartregenerationfailure"
        | "recursiveinvocation"
        | "modenotsupported"
        | "nopublishedversion"
        | "unsupportedmediatype"
        | "invalidrequestcontent" => Class::Config,
        _ if status == 413 => Class::TooLarge,
        _ if status == 429 || status == 408 || status >= 500 => Class::Transient,
        _ => Class::Config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_arn_names_its_region_and_a_name_does_not() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders";
        assert_eq!(arn_region(arn).as_deref(), Some("eu-west-1"));
        assert_eq!(
            arn_region("arn:aws-cn:lambda:cn-north-1:1:function:f").as_deref(),
            Some("cn-north-1")
        );
        for other in [
            "orders",
            "arn:aws:sqs:eu-west-1:1:q",
            "arn:aws:lambda::1:function:f",
        ] {
            assert_eq!(arn_region(other), None, "{other}");
        }
    }

    #[test]
    fn loopback_endpoints_are_recognised() {
        for url in [
            "http://127.0.0.1:9001",
            "http://localhost:9001/x",
            "http://LOCALHOST",
            "http://[::1]:9001",
            "http://127.3.2.1",
            "http://user:pw@127.0.0.1:9001",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://lambda.us-east-1.amazonaws.com",
            "http://10.0.0.1:9001",
            "http://localhost.example.com",
            "http://[::2]:9001",
            "http://example.com/127.0.0.1",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn api_errors_are_classified_by_code_then_status() {
        let cases = [
            ("ResourceNotFoundException", 404, Class::Config),
            ("AccessDeniedException", 403, Class::Config),
            ("KMSAccessDeniedException", 502, Class::Config),
            ("ENILimitReachedException", 502, Class::Config),
            ("ResourceConflictException", 409, Class::Config),
            ("EC2ThrottledException", 502, Class::Transient),
            ("EniNotReadyException", 502, Class::Transient),
            ("TooManyRequestsException", 429, Class::Transient),
            ("ThrottlingException", 400, Class::Transient),
            ("ServiceException", 500, Class::Transient),
            ("RequestTooLargeException", 413, Class::TooLarge),
            ("Unknown", 413, Class::TooLarge),
            ("Unknown", 503, Class::Transient),
            ("Unknown", 404, Class::Config),
        ];
        for (code, status, class) in cases {
            assert_eq!(class_of(code, status), class, "{code} {status}");
        }
    }
}
