//! Whether a Lambda Invoke answer says the function failed: one rule, for
//! the `lambda` runtime's outcome and for its HTTP client, which frees the
//! next batch's turn the moment a success is in (`lambda_http`).

use super::InvokeError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// What a Lambda-compatible endpoint answers with HTTP 200 and no
/// `X-Amz-Function-Error` when the function failed: the Runtime Interface
/// Emulator and `sam local start-lambda` give a thrown error as its
/// `{"errorType", "errorMessage"}` body, and a timeout as a "Task timed out
/// after N seconds" message. Lambda itself would have flagged both: so are
/// they here, as function errors. A response with any other field is the
/// function's own.
pub fn hidden_error(payload: &[u8]) -> Option<InvokeError> {
    const ERROR_FIELDS: &[&str] = &[
        "errorType",
        "errorMessage",
        "stackTrace",
        "requestId",
        "cause",
        "trace",
    ];
    // Most answers are the function's own: find out without parsing them.
    let mentions = |what: &str| memchr::memmem::find(payload, what.as_bytes()).is_some();
    if !mentions("errorMessage") && !mentions("Task timed out after") {
        return None;
    }
    let text = String::from_utf8_lossy(payload);
    let timed_out = |m: &str| m.contains("Task timed out after");
    let function = |error_type: &str| InvokeError::Function {
        error_type: error_type.to_owned(),
        payload: text.clone().into_owned(),
    };
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(fields)) => {
            let message = fields.get("errorMessage")?.as_str()?;
            if !fields.keys().all(|k| ERROR_FIELDS.contains(&k.as_str())) {
                return None;
            }
            match fields.get("errorType").and_then(|t| t.as_str()) {
                Some(t) => Some(function(t)),
                None if timed_out(message) => Some(function("Sandbox.Timedout")),
                None => Some(function("Unhandled")),
            }
        }
        Ok(serde_json::Value::String(message)) if timed_out(&message) => {
            Some(function("Sandbox.Timedout"))
        }
        Err(_) if timed_out(&text) => Some(function("Sandbox.Timedout")),
        _ => None,
    }
}

/// How an Invoke answer that reached the client says the function failed:
/// Lambda's `X-Amz-Function-Error`, or an error hidden in a 200 (above).
pub(super) fn function_failed(function_error: Option<&str>, payload: &[u8]) -> Option<InvokeError> {
    match function_error {
        Some(kind) => Some(InvokeError::Function {
            error_type: kind.to_owned(),
            payload: String::from_utf8_lossy(payload).into_owned(),
        }),
        None => hidden_error(payload),
    }
}

/// The same rule on the raw answer, for the HTTP client: it lets the next
/// batch go before the SDK has parsed this one.
pub(super) fn answer_succeeded(response: &HttpResponse, body: &[u8]) -> bool {
    let function_error = response.headers().get("x-amz-function-error");
    response.status().is_success() && function_failed(function_error, body).is_none()
}

#[cfg(test)]
mod hidden_error_tests {
    use super::*;

    fn error_type(payload: &str) -> Option<String> {
        match hidden_error(payload.as_bytes()) {
            Some(InvokeError::Function { error_type, .. }) => Some(error_type),
            Some(other) => panic!("{other:?}"),
            None => None,
        }
    }

    #[test]
    fn errors_answered_with_200_are_function_errors() {
        assert_eq!(
            error_type(
                r#"{"errorType":"ValueError","errorMessage":"bad order","stackTrace":["a"]}"#
            )
            .as_deref(),
            Some("ValueError")
        );
        assert_eq!(
            error_type(
                r#"{"errorMessage":"2026-12-01T10:00:00Z 1f2e Task timed out after 3.00 seconds"}"#
            )
            .as_deref(),
            Some("Sandbox.Timedout")
        );
        assert_eq!(
            error_type(r#""Task timed out after 3.00 seconds""#).as_deref(),
            Some("Sandbox.Timedout")
        );
        assert_eq!(
            error_type("Task timed out after 3.00 seconds").as_deref(),
            Some("Sandbox.Timedout")
        );
    }

    #[test]
    fn a_response_of_the_functions_own_is_not_an_error() {
        for ok in [
            r#"{"handled":3}"#,
            r#"{"errorMessage":"none","status":"done"}"#,
            r#"{"errorType":"NotReally"}"#,
            r#""fine""#,
            "",
            "null",
        ] {
            assert_eq!(error_type(ok), None, "{ok}");
        }
    }
}
