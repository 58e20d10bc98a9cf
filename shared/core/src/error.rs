//! The error contract: every failure is one of these, and each maps to one status and code.

use serde::Serialize;
use serde_json::{Value, json};

/// One failing location, as a JSON pointer into the checked document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub path: String,
    pub message: String,
}

impl Detail {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A failure as the caller sees it. Messages say what to fix; `Internal` keeps its cause
/// for the log and shows the caller nothing of it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("request body is {size} bytes; the limit is {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("{message}")]
    Validation {
        code: &'static str,
        message: String,
        details: Vec<Detail>,
    },
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    UpstreamTimeout(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn invalid_request(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound {
            code: "not_found",
            message: msg.into(),
        }
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict {
            code: "conflict",
            message: msg.into(),
        }
    }
    /// A rule or input problem with no single JSON pointer (e.g. "the office is closed").
    pub fn unprocessable(msg: impl Into<String>) -> Self {
        Self::Validation {
            code: "validation_failed",
            message: msg.into(),
            details: Vec::new(),
        }
    }
    /// A rule violation tied to one parameter.
    pub fn invalid_field(path: impl Into<String>, msg: impl Into<String>) -> Self {
        let msg = msg.into();
        Self::Validation {
            code: "validation_failed",
            details: vec![Detail::new(path, msg.clone())],
            message: msg,
        }
    }
    /// 422 `invalid_config`: the organization's setting at `path` (e.g. `/config/fromNumber`)
    /// to fix, not the caller's input.
    pub fn invalid_config(path: impl Into<String>, msg: impl Into<String>) -> Self {
        let msg = msg.into();
        Self::Validation {
            code: "invalid_config",
            details: vec![Detail::new(path, msg.clone())],
            message: msg,
        }
    }
    pub fn internal(cause: impl Into<String>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) => 400,
            Self::Unauthenticated(_) => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::NotAcceptable(_) => 406,
            Self::UnsupportedMediaType(_) => 415,
            Self::Conflict { .. } => 409,
            Self::PayloadTooLarge { .. } => 413,
            Self::Validation { .. } => 422,
            Self::RateLimited(_) => 429,
            Self::Upstream(_) => 502,
            Self::Unavailable(_) => 503,
            Self::UpstreamTimeout(_) => 504,
            Self::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Validation { code, .. } => code,
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::NotAcceptable(_) => "not_acceptable",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::RateLimited(_) => "rate_limited",
            Self::Upstream(_) => "upstream_error",
            Self::UpstreamTimeout(_) => "upstream_timeout",
            Self::Unavailable(_) => "dependency_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The response body of the contract: `{"success": false, "error": {code, message, details}}`.
    pub fn to_body(&self) -> Value {
        let details = match self {
            Self::Validation { details, .. } => details.as_slice(),
            _ => &[],
        };
        json!({
            "success": false,
            "error": {"code": self.code(), "message": self.to_string(), "details": details},
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = Error::internal("table registry: bad attribute 'version'");
        let body = e.to_body();
        assert_eq!(e.status(), 500);
        assert_eq!(body["error"]["message"], "internal error");
        assert!(!body.to_string().contains("registry"));
    }

    #[test]
    fn validation_lists_details() {
        let e = Error::invalid_field("/AptDateTime", "not a date");
        assert_eq!(e.status(), 422);
        assert_eq!(e.to_body()["error"]["details"][0]["path"], "/AptDateTime");
    }
}
