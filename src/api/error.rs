//! Lambda's error responses: a status, the `x-amzn-ErrorType` header the SDKs
//! read the error's type from, and `{"Type": …, "message": …}`.

use super::guard::Refused;
use super::sigv4::SigError;
use crate::engine::{ControlError, Kind};
use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Lambda's exception name, e.g. `ResourceNotFoundException`.
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "InvalidParameterValueException",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "ResourceNotFoundException",
            message: message.into(),
        }
    }

    pub fn too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "RequestTooLargeException",
            message: format!("Request must be smaller than {limit} bytes"),
        }
    }

    pub fn forbidden(e: &SigError) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            kind: e.error_type(),
            message: e.to_string(),
        }
    }

    /// The Type field: whose fault it was.
    fn blame(&self) -> &'static str {
        if self.status.is_server_error() {
            "Service"
        } else {
            "User"
        }
    }
}

/// A request the guard refused: 403 `AccessDeniedException`, its message
/// naming the rule.
impl From<Refused> for ApiError {
    fn from(e: Refused) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            kind: "AccessDeniedException",
            message: e.to_string(),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let message = e.to_string();
        match e.kind() {
            Kind::NotFound => Self::not_found(message),
            Kind::Invalid => Self::invalid(message),
            Kind::ReadOnly => Self {
                status: StatusCode::FORBIDDEN,
                kind: "AccessDeniedException",
                message,
            },
            Kind::Conflict => Self {
                status: StatusCode::CONFLICT,
                kind: "ResourceConflictException",
                message,
            },
            Kind::Failed => {
                // The whole chain of causes, in one line.
                let message = crate::error_text::causes(&e);
                tracing::error!("API request failed: {message}");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    kind: "ServiceException",
                    message: format!("mqtrigger could not complete the request: {message}"),
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "Type": self.blame(), "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.kind));
        response
    }
}
