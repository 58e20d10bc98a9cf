//! One adapter call's requests: a single time budget for all of them, bounded retries with
//! jittered backoff, and the credential re-fetched once when the upstream rejects it.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::Value;
use switchboard::ids::EntityName;
use switchboard::ports::{DataError, StoreError};
use switchboard::secrets::{CredentialRef, SecretValue};
use switchboard::spec::rest::Auth;
use tokio::time::Instant;

use crate::client::Failure;
use crate::{RestData, secret_error};

/// No retry starts with less than this left of the call's budget (after its backoff).
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// An upstream answer, body read in full.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub etag: Option<HeaderValue>,
    pub total: Option<u64>,
    pub body: Bytes,
}

/// One adapter call (one `DataAdapter` method): the deadline all its requests, retries and
/// pages share, and whether it already re-fetched the credential.
pub(crate) struct Ctx {
    pub deadline: Instant,
    refreshed: AtomicBool,
}

impl Ctx {
    /// What is left of the budget.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The context for compensating a failed batch: the rest of the budget, but at least
    /// [`UNDO_BUDGET`]; still at most one credential refresh in the whole call.
    pub fn for_undo(&self) -> Self {
        Self {
            deadline: self.deadline.max(Instant::now() + UNDO_BUDGET),
            refreshed: AtomicBool::new(self.refreshed.load(Ordering::Relaxed)),
        }
    }
}

/// One request to send, possibly several times.
pub(crate) struct Call<'a> {
    pub entity: &'a EntityName,
    pub method: Method,
    pub url: String,
    pub body: Option<Bytes>,
    pub if_match: Option<HeaderValue>,
}

/// Jitter over an exponential step: 100–200 ms, then 200–400 ms, 400–800 ms, …
pub(crate) fn backoff(attempt: u32) -> Duration {
    let step = 100u64 << attempt.min(5);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    Duration::from_millis(step / 2 + random % (step / 2 + 1))
}

/// A failed batch's compensation may run this long past an exhausted budget: leaving a
/// partial batch behind is worse than a slightly later answer.
const UNDO_BUDGET: Duration = Duration::from_secs(1);

impl RestData {
    /// The context of one adapter call, its budget starting now.
    pub(crate) fn begin(&self) -> Ctx {
        Ctx {
            deadline: Instant::now() + self.config.timeout,
            refreshed: AtomicBool::new(false),
        }
    }

    pub(crate) fn timed_out(&self, entity: &EntityName, method: &Method) -> DataError {
        DataError::UpstreamTimeout(format!(
            "the {entity} API did not answer a {method} within the call's {} ms budget",
            self.config.timeout.as_millis()
        ))
    }

    fn auth_header(
        &self,
        entity: &EntityName,
        auth: &Auth,
        secret: &SecretValue,
    ) -> Result<(HeaderName, HeaderValue), DataError> {
        let (name, field) = match auth {
            Auth::Bearer { field } => (header::AUTHORIZATION, field),
            Auth::Header { name, field } => (name.clone(), field),
        };
        let reference = self
            .config
            .credential
            .as_ref()
            .map(CredentialRef::as_str)
            .unwrap_or_default();
        let Some(value) = secret.field(field).filter(|v| !v.is_empty()) else {
            return Err(DataError::Invalid(format!(
                "credential '{reference}' has no non-empty string field '{field}' for the {entity} API's auth"
            )));
        };
        let text = match auth {
            Auth::Bearer { .. } => format!("Bearer {value}"),
            Auth::Header { .. } => value.to_owned(),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            DataError::Invalid(format!(
                "credential '{reference}' field '{field}' cannot be sent in an HTTP header"
            ))
        })?;
        // Kept out of HPACK tables and redacted from the header map's Debug output.
        value.set_sensitive(true);
        Ok((name, value))
    }

    /// One attempt, before `deadline` (connect, headers and the whole body).
    async fn once(
        &self,
        call: &Call<'_>,
        auth: Option<&(HeaderName, HeaderValue)>,
        deadline: Instant,
    ) -> Result<Reply, Failure> {
        let mut req = Request::builder()
            .method(call.method.clone())
            .uri(call.url.as_str())
            .header(header::ACCEPT, "application/json");
        if call.body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some((name, value)) = auth {
            req = req.header(name, value);
        }
        if let Some(tag) = &call.if_match {
            req = req.header(header::IF_MATCH, tag);
        }
        let req = req
            .body(Full::new(call.body.clone().unwrap_or_default()))
            .map_err(|e| Failure::Transport(format!("building the request: {e}")))?;
        let (parts, body) = self.client.exchange(req, deadline).await?;
        let total = parts
            .headers
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Ok(Reply {
            status: parts.status,
            // Only a strong validator can guard a write (If-Match compares strongly).
            etag: parts
                .headers
                .get(header::ETAG)
                .filter(|t| !t.as_bytes().starts_with(b"W/"))
                .cloned(),
            total,
            body,
        })
    }

    /// The call with bounded retries within the call's budget: reads on any failure to
    /// answer and on 502/503/504, writes only when no connection was made. No retry starts
    /// when less than [`MIN_ATTEMPT`] would remain after its backoff.
    async fn attempts(
        &self,
        cx: &Ctx,
        call: &Call<'_>,
        auth: Option<&(HeaderName, HeaderValue)>,
    ) -> Result<Reply, DataError> {
        let read = call.method == Method::GET;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = if cx.remaining().is_zero() {
                Err(Failure::Timeout)
            } else {
                self.once(call, auth, cx.deadline).await
            };
            let retry = match &result {
                Ok(r) => read && matches!(r.status.as_u16(), 502..=504),
                Err(Failure::Refused) => false,
                Err(Failure::Connect(_)) => true,
                Err(_) => read,
            };
            let pause = backoff(attempt);
            if retry && attempt <= self.config.retries && cx.remaining() >= pause + MIN_ATTEMPT {
                let why = match &result {
                    Ok(r) => r.status.to_string(),
                    Err(Failure::Timeout) => "timeout".into(),
                    Err(Failure::Refused) => "refused".into(),
                    Err(Failure::Connect(c) | Failure::Transport(c)) => c.clone(),
                };
                tracing::warn!(entity = %call.entity, method = %call.method, attempt, %why, "upstream call failed; retrying");
                tokio::time::sleep(pause).await;
                continue;
            }
            return match result {
                Ok(r) => Ok(r),
                Err(Failure::Timeout) => Err(self.timed_out(call.entity, &call.method)),
                Err(Failure::Refused) => Err(DataError::Upstream(format!(
                    "the {} API was not called ({}): the rest data adapter refuses to call private or loopback addresses",
                    call.entity, call.method
                ))),
                Err(Failure::Connect(cause) | Failure::Transport(cause)) => {
                    tracing::warn!(entity = %call.entity, method = %call.method, %cause, "upstream call failed");
                    Err(DataError::Upstream(format!(
                        "the {} API could not be reached for a {}",
                        call.entity, call.method
                    )))
                }
            };
        }
    }

    /// Sends with the credential; on 401/403 re-fetches it, at most once per adapter call,
    /// and, if it was rotated, sends again (the refused request was not applied, so this
    /// holds for writes too). The secret store's answers count against the budget.
    pub(crate) async fn send(&self, cx: &Ctx, call: Call<'_>) -> Result<Reply, DataError> {
        let store_timeout = || {
            DataError::Store(StoreError::Unavailable(
                "the secret store did not answer within the call's time budget".into(),
            ))
        };
        let mut secret = match &self.config.credential {
            Some(r) => Some(
                tokio::time::timeout_at(cx.deadline, self.secrets.resolve(&self.org, r))
                    .await
                    .map_err(|_| store_timeout())?
                    .map_err(secret_error)?,
            ),
            None => None,
        };
        loop {
            let auth = match (&self.config.auth, &secret) {
                (Some(a), Some(s)) => Some(self.auth_header(call.entity, a, s)?),
                _ => None,
            };
            let reply = self.attempts(cx, &call, auth.as_ref()).await?;
            let status = reply.status;
            if !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                return Ok(reply);
            }
            let (Some(reference), Some(used)) = (&self.config.credential, &secret) else {
                return Err(DataError::Upstream(format!(
                    "the {} API refused a {} ({status}) and no credential is configured",
                    call.entity, call.method
                )));
            };
            if !cx.refreshed.swap(true, Ordering::Relaxed) {
                let refreshed = tokio::time::timeout_at(
                    cx.deadline,
                    self.secrets.refresh(&self.org, reference, used),
                )
                .await
                .map_err(|_| store_timeout())?
                .map_err(secret_error)?;
                if let Some(rotated) = refreshed {
                    tracing::info!(entity = %call.entity, credential = %reference, "upstream rejected the credential; retrying once with its rotated value");
                    secret = Some(rotated);
                    continue;
                }
            }
            return Err(DataError::Upstream(format!(
                "the {} API rejected credential '{reference}' ({status} to {}); update the secret",
                call.entity, call.method
            )));
        }
    }

    pub(crate) async fn call(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        method: Method,
        url: String,
        body: Option<&Value>,
        if_match: Option<HeaderValue>,
    ) -> Result<Reply, DataError> {
        let body = body
            .map(|b| serde_json::to_vec(b).map(Bytes::from))
            .transpose()
            .map_err(|e| DataError::Invalid(format!("a {entity} record cannot be encoded: {e}")))?;
        self.send(
            cx,
            Call {
                entity,
                method,
                url,
                body,
                if_match,
            },
        )
        .await
    }
}
