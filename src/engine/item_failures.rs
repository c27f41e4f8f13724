//! What a function that reports batch item failures answered
//! (`FunctionResponseTypes: ["ReportBatchItemFailures"]`), read by Lambda's
//! rules for SQS, Kinesis and DynamoDB:
//!
//! - no answer, `null`, an object without `batchItemFailures`, or an empty
//!   or null list: every message succeeded;
//! - `{"batchItemFailures": [{"itemIdentifier": "ID"}, …]}`: those messages
//!   failed, the others succeeded;
//! - anything else (not JSON, a list that is not one, an item without an
//!   `itemIdentifier`, a null or empty one, or one not in the batch): the
//!   whole batch failed, and the reason says which rule it broke.
//!
//! An identifier is a record's message id: `messageID` on ActiveMQ,
//! `basicProperties.messageId` on RabbitMQ, or for a RabbitMQ message
//! without one the `mqtriggerMessageId` its record is given.

use std::collections::BTreeSet;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reported {
    AllSucceeded,
    /// The identifiers the function named, each one in the batch.
    Failed(BTreeSet<String>),
    /// The answer breaks a rule: the whole batch failed, for this reason.
    Invalid(String),
}

/// Reads `answer` against the identifiers of the batch's messages.
pub(super) fn read(answer: &[u8], ids: &BTreeSet<&str>) -> Reported {
    if answer.iter().all(u8::is_ascii_whitespace) {
        return Reported::AllSucceeded;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return Reported::Invalid(
            "ReportBatchItemFailures: the function's answer is not JSON; it must be {\"batchItemFailures\": [{\"itemIdentifier\": \"…\"}]}, or empty for a success".into(),
        );
    };
    let list = match &value {
        serde_json::Value::Null => return Reported::AllSucceeded,
        serde_json::Value::Object(o) => match o.get("batchItemFailures") {
            None | Some(serde_json::Value::Null) => return Reported::AllSucceeded,
            Some(serde_json::Value::Array(list)) => list,
            Some(_) => {
                return Reported::Invalid(
                    "ReportBatchItemFailures: batchItemFailures is not a list".into(),
                );
            }
        },
        _ => {
            return Reported::Invalid(
                "ReportBatchItemFailures: the function's answer must be an object, {\"batchItemFailures\": [...]}".into(),
            );
        }
    };
    let mut failed = BTreeSet::new();
    for item in list {
        match item.get("itemIdentifier") {
            Some(serde_json::Value::String(id)) if id.is_empty() => {
                return Reported::Invalid(
                    "ReportBatchItemFailures: an itemIdentifier is empty".into(),
                );
            }
            Some(serde_json::Value::String(id)) if ids.contains(id.as_str()) => {
                failed.insert(id.clone());
            }
            Some(serde_json::Value::String(id)) => {
                return Reported::Invalid(format!(
                    "ReportBatchItemFailures: itemIdentifier {id:?} names no message of the batch"
                ));
            }
            Some(serde_json::Value::Null) | None => {
                return Reported::Invalid(format!(
                    "ReportBatchItemFailures: an item has no itemIdentifier: {item}"
                ));
            }
            Some(other) => {
                return Reported::Invalid(format!(
                    "ReportBatchItemFailures: itemIdentifier {other} is not a string"
                ));
            }
        }
    }
    if failed.is_empty() {
        Reported::AllSucceeded
    } else {
        Reported::Failed(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> BTreeSet<&'static str> {
        ["m1", "m2", "m3"].into_iter().collect()
    }

    #[test]
    fn no_answer_null_no_key_and_an_empty_list_are_success() {
        for answer in [
            "",
            "  ",
            "null",
            "{}",
            r#"{"batchItemFailures": []}"#,
            r#"{"batchItemFailures": null}"#,
        ] {
            assert_eq!(
                read(answer.as_bytes(), &ids()),
                Reported::AllSucceeded,
                "{answer}"
            );
        }
    }

    #[test]
    fn named_messages_fail_and_only_they() {
        let answer =
            br#"{"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}"#;
        assert_eq!(
            read(answer, &ids()),
            Reported::Failed(["m2".to_owned(), "m3".to_owned()].into_iter().collect())
        );
    }

    #[test]
    fn a_broken_rule_fails_the_whole_batch_and_says_which() {
        for (answer, why) in [
            ("not json", "not JSON"),
            (r#""ok""#, "must be an object"),
            (r#"{"batchItemFailures": {}}"#, "not a list"),
            (
                r#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#,
                "empty",
            ),
            (
                r#"{"batchItemFailures": [{"itemIdentifier": null}]}"#,
                "no itemIdentifier",
            ),
            (
                r#"{"batchItemFailures": [{"id": "m1"}]}"#,
                "no itemIdentifier",
            ),
            (
                r#"{"batchItemFailures": [{"itemIdentifier": "m9"}]}"#,
                "names no message",
            ),
            (
                r#"{"batchItemFailures": [{"itemIdentifier": 7}]}"#,
                "not a string",
            ),
        ] {
            match read(answer.as_bytes(), &ids()) {
                Reported::Invalid(reason) => assert!(reason.contains(why), "{answer}: {reason}"),
                other => panic!("{answer}: {other:?}"),
            }
        }
    }
}
