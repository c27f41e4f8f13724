//! What lapin's errors mean to a user: which are worth retrying and
//! which stop the mapping with a stop code, in words that say what to fix.
//! Where AMQP's reply code is shared by several causes (ACCESS_REFUSED for
//! a bad login and a denied queue), RabbitMQ's reply text tells them apart.

use crate::source::SourceError;
use crate::source::shared;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};

/// A frame larger than the frame size we asked for.
pub(super) fn is_frame_error(err: &lapin::Error) -> bool {
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Hard(AMQPHardError::FRAMEERROR)))
}

/// Turns lapin's errors into what a user has to do about them.
pub fn classify(err: &lapin::Error, what: &str) -> SourceError {
    if let lapin::ErrorKind::ProtocolError(amqp) = err.kind() {
        let text = amqp.get_message().as_str();
        if let Some(quota) = quota_reached(text) {
            // A quota frees up when other clients let go: retried with
            // back-off, and named so the operator can raise it.
            return SourceError::Connection(format!(
                "RabbitMQ refused {what}: {quota} is reached ({text}); raise it (rabbitmqctl set_vhost_limits or set_user_limits) or stop other clients — mqtrigger shares one connection among up to {} mappings",
                shared::MAPPINGS_PER_CONNECTION
            ));
        }
        return match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
                if text.contains("Login was refused") =>
            {
                SourceError::Authentication(format!("RabbitMQ refused the login {what}: {text}"))
            }
            // RabbitMQ answers a vhost that does not exist with NOT_ALLOWED
            // ("vhost x not found"): a missing resource is the mapping's
            // configuration to fix, as Lambda has it, not a permission.
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) if text.contains("not found") => {
                SourceError::Config(format!(
                    "RabbitMQ has no such virtual host {what}: {text}; create it or fix the mapping's VIRTUAL_HOST"
                ))
            }
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)
            | AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => {
                SourceError::Authorization(format!("RabbitMQ denied access {what}: {text}"))
            }
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => {
                SourceError::Config(format!("RabbitMQ has no such queue {what}: {text}"))
            }
            AMQPErrorKind::Hard(AMQPHardError::INVALIDPATH) => {
                SourceError::Config(format!("RabbitMQ has no such virtual host {what}: {text}"))
            }
            _ => SourceError::Connection(format!("RabbitMQ closed the connection {what}: {text}")),
        };
    }
    let text = err.to_string();
    // A certificate problem is the user's to fix, never a reason to retry
    // (and never a reason to fall back to plain text).
    if let Some(problem) = tls_problem(&text) {
        return SourceError::Config(format!("TLS {what}: {problem} ({text})"));
    }
    // RabbitMQ answers a bad password by closing the socket during the
    // handshake; lapin reports that as an I/O error with this wording.
    if text.contains("ACCESS_REFUSED") || text.contains("authentication failure") {
        return SourceError::Authentication(format!("RabbitMQ refused the login {what}: {text}"));
    }
    SourceError::Connection(format!("cannot reach RabbitMQ {what}: {text}"))
}

/// RabbitMQ's words for a limit it enforces ("connection limit (0) is
/// reached", "queue limit in vhost 'v' (1) is reached", "channel limit"),
/// as the quota to name.
fn quota_reached(text: &str) -> Option<&'static str> {
    if !text.contains("is reached") {
        return None;
    }
    [
        ("connection limit", "the connection limit"),
        ("channel limit", "the channel limit"),
        ("queue limit", "the queue limit"),
    ]
    .into_iter()
    .find_map(|(said, quota)| text.contains(said).then_some(quota))
}

/// What to fix when the TLS handshake failed on the broker's certificate.
fn tls_problem(text: &str) -> Option<&'static str> {
    if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
        Some(
            "the broker's certificate is not signed by a trusted CA; give its CA in the broker's `ca_file`",
        )
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        Some(
            "the broker's certificate is not for this host name; connect with a name the certificate lists",
        )
    } else if text.contains("invalid peer certificate")
        || text.contains("certificate") && text.contains("expired")
    {
        Some("the broker's certificate was refused")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_quota_is_named() {
        let text = "NOT_ALLOWED - access to vhost 'v' refused for user 'guest': connection limit (0) is reached";
        assert_eq!(quota_reached(text), Some("the connection limit"));
        assert_eq!(quota_reached("NOT_ALLOWED - vhost v not found"), None);
    }
}
