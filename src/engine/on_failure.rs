//! Lambda's on-failure record, for a mapping with
//! `DestinationConfig.OnFailure`: what its dead letters become when they go
//! to a function or a queue instead of the broker's dead-letter queue. The
//! shape is Lambda's for asynchronous invocations and stream sources; for
//! MQ the request payload is the event of the dead-lettered records, as the
//! function was given them.

use crate::source::DeadLetterReason;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

/// The record: `requestContext` (why, how often the function was
/// invoked), `requestPayload` (the event of these records),
/// `responseContext` and `responsePayload` (its last error, if any).
pub(super) fn record(
    function_arn: &str,
    event: &[u8],
    reason: &DeadLetterReason,
    attempts: u32,
    last_error: Option<&str>,
) -> Vec<u8> {
    let condition = match reason {
        DeadLetterReason::RetriesExhausted { .. } => "RetryAttemptsExhausted",
        DeadLetterReason::Expired => "RecordAgeExceeded",
        DeadLetterReason::TooLarge { .. } => "MaximumPayloadSizeExceeded",
    };
    let payload: Value = serde_json::from_slice(event).unwrap_or(Value::Null);
    let response: Value = last_error
        .map(|e| serde_json::from_str(e).unwrap_or_else(|_| Value::String(e.to_owned())))
        .unwrap_or(Value::Null);
    let mut record = json!({
        "version": "1.0",
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
        },
        "responsePayload": response,
    });
    if last_error.is_some() {
        record["responseContext"]["functionError"] = json!("Unhandled");
    }
    record.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_has_lambdas_shape_with_the_records_as_its_payload() {
        let event = br#"{"eventSource":"aws:mq","messages":[{"messageID":"m1"}]}"#;
        let reason = DeadLetterReason::RetriesExhausted {
            attempts: 6,
            last_error: None,
        };
        let bytes = record(
            "arn:aws:lambda:us-east-1:0:function:orders",
            event,
            &reason,
            6,
            Some(r#"{"errorType":"OrderError","errorMessage":"bad"}"#),
        );
        let r: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(r["version"], "1.0");
        assert_eq!(r["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(r["requestContext"]["approximateInvokeCount"], 6);
        assert_eq!(r["requestPayload"]["messages"][0]["messageID"], "m1");
        assert_eq!(r["responseContext"]["functionError"], "Unhandled");
        assert_eq!(r["responsePayload"]["errorType"], "OrderError");
        assert!(r["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
