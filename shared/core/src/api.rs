//! What a plugin's own code sends to a vendor's API through `ctx.api()` (the `api` data
//! adapter): requests relative to the configured base URL, answers with their status and JSON
//! body. The adapter adds the credential (a key, Basic, or an OAuth2 access token it obtains
//! and caches), connects only through the egress guard and keeps to the call's time budget.

use http::Method;
use http::header::{HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::error::Error;

/// Everything but RFC 3986's unreserved characters is encoded in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as one path segment: a value from a caller (an event id, a phone number) can never
/// reach another path: `../other` becomes `..%2Fother`, and `.` or `..` alone `%2E`, `%2E%2E`.
pub fn segment(text: &str) -> String {
    if !text.is_empty() && text.bytes().all(|b| b == b'.') {
        return "%2E".repeat(text.len());
    }
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiBody {
    Empty,
    Json(Value),
    /// `application/x-www-form-urlencoded` (Twilio, OAuth2 token endpoints).
    Form(Vec<(String, String)>),
}

/// One request to the instance's API.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// Under the base URL, starting with '/'; caller-supplied parts through [`segment`].
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: ApiBody,
    /// Extra headers, e.g. `If-Match` or a vendor's idempotency key. The credential's header
    /// cannot be set here.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: ApiBody::Empty,
            headers: Vec::new(),
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    pub fn patch_json(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PATCH, path).json(body)
    }

    pub fn post_json(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path).json(body)
    }

    pub fn post_form<K: Into<String>, V: Into<String>>(
        path: impl Into<String>,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut r = Self::new(Method::POST, path);
        r.body = ApiBody::Form(
            fields
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        r
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = ApiBody::Json(body);
        self
    }

    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// An answer, whatever its status: the plugin decides what a 404 or a 409 means.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    /// The JSON body; `Null` when empty or not JSON.
    pub body: Value,
    pub etag: Option<String>,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body of a 2xx answer. Any other status is `502 upstream_error` naming `what`
    /// (e.g. "Twilio's Messages API") and the status, plus the vendor's own message when it
    /// gives one in a known place (never the whole body).
    pub fn into_json(self, what: &str) -> Result<Value, Error> {
        if self.is_success() {
            return Ok(self.body);
        }
        Err(self.upstream_error(what))
    }

    /// `502 upstream_error` for this answer (see [`ApiResponse::into_json`]).
    pub fn upstream_error(&self, what: &str) -> Error {
        let said = vendor_message(&self.body)
            .map(|m| format!(": {}", m.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        Error::Upstream(format!("{what} answered {}{said}", self.status))
    }
}

/// Where the vendors this platform speaks to put a human-readable error: Twilio's `message`,
/// Google's `error.message`, Salesforce's `[{"message"}]`, OAuth2's `error_description`.
fn vendor_message(body: &Value) -> Option<&str> {
    body.get("message")
        .or_else(|| body.pointer("/error/message"))
        .or_else(|| body.pointer("/0/message"))
        .or_else(|| body.get("error_description"))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_segment_cannot_leave_its_place_in_the_path() {
        assert_eq!(segment("../admin?x=1#f"), "..%2Fadmin%3Fx%3D1%23f");
        assert_eq!(segment("+1 (555) 010"), "%2B1%20%28555%29%20010");
        assert_eq!(segment("evt_9-a.b~c"), "evt_9-a.b~c");
        assert_eq!(
            (segment(".."), segment(".")),
            ("%2E%2E".into(), "%2E".into())
        );
    }

    #[test]
    fn a_failed_answer_names_the_api_status_and_vendor_message() {
        let r = ApiResponse {
            status: 400,
            body: json!({"code": 21211, "message": "The 'To' number is not valid.", "more_info": "x"}),
            etag: None,
        };
        let e = r.into_json("Twilio's Messages API").unwrap_err();
        assert_eq!((e.status(), e.code()), (502, "upstream_error"));
        assert_eq!(
            e.to_string(),
            "Twilio's Messages API answered 400: The 'To' number is not valid."
        );
        let ok = ApiResponse {
            status: 201,
            body: json!({"sid": "SM1"}),
            etag: None,
        };
        assert_eq!(ok.into_json("x").unwrap()["sid"], "SM1");
    }
}
