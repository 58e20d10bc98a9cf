//! The `api` adapter: a vendor's HTTP API that a plugin's own code calls (`ctx.api()`), with
//! the instance's credential added to each request. One budget (`timeout_ms`) covers the
//! credential look-up, a token request and every attempt. A request that never reached the
//! vendor (no connection) is sent again, and a read (GET) also after a transport error or a
//! 502/503/504 while the budget lasts; a write is sent again only after a 401. A 401 is answered once: an OAuth2 token is replaced by a fresh one,
//! a key or password re-read from the secret store (rotation); a second 401 is a 502 naming
//! the credential.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use switchboard::api::{ApiBody, ApiRequest, ApiResponse};
use switchboard::error::Error;
use switchboard::ids::OrgId;
use switchboard::ports::Api;
use switchboard::secrets::{CredentialRef, SecretValue, Secrets};
use switchboard::spec::ApiConfig;
use switchboard::spec::api::ApiAuth;
use switchboard::spec::rest::Auth;
use tokio::time::Instant;

use crate::client::{Failure, RestClient};
use crate::oauth2::{TokenScope, Tokens};

/// Form and query values: everything but the unreserved characters is encoded.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn encode(text: &str) -> String {
    utf8_percent_encode(text, FORM).to_string()
}

/// `k=v&…`, form-urlencoded (spaces as %20, which every decoder accepts).
pub(crate) fn form(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `api` adapter of one call: the shared client, the instance's settings, the
/// organization whose credential it may read and the container's token cache.
pub struct VendorApi {
    client: RestClient,
    config: Arc<ApiConfig>,
    secrets: Arc<Secrets>,
    org: OrgId,
    tokens: Tokens,
}

/// An answer, body read in full.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub body: Bytes,
}

/// One attempt of `req` before `deadline`.
pub(crate) async fn exchange(
    client: &RestClient,
    req: Request<Full<Bytes>>,
    deadline: Instant,
) -> Result<Reply, Failure> {
    let (parts, body) = client.exchange(req, deadline).await?;
    Ok(Reply {
        status: parts.status,
        etag: parts
            .headers
            .get(header::ETAG)
            .and_then(|t| t.to_str().ok())
            .map(str::to_owned),
        body,
    })
}

/// The credential header a request carries, and what produced it (to answer a 401).
enum Credential {
    None,
    Secret(HeaderValue, SecretValue),
    Token(HeaderValue, String),
}

impl Credential {
    fn header(&self) -> Option<&HeaderValue> {
        match self {
            Self::None => None,
            Self::Secret(h, _) | Self::Token(h, _) => Some(h),
        }
    }
}

fn sensitive(text: &str, reference: &CredentialRef, field: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(text).map_err(|_| {
        Error::unprocessable(format!(
            "credential '{reference}' field '{field}' cannot be sent in an HTTP header"
        ))
    })?;
    // Kept out of HPACK tables and redacted from the header map's Debug output.
    v.set_sensitive(true);
    Ok(v)
}

impl VendorApi {
    pub fn new(
        client: RestClient,
        config: Arc<ApiConfig>,
        secrets: Arc<Secrets>,
        org: OrgId,
        tokens: Tokens,
    ) -> Self {
        Self {
            client,
            config,
            secrets,
            org,
            tokens,
        }
    }

    fn host(&self) -> &str {
        let rest = self
            .config
            .base_url
            .split_once("://")
            .map_or(self.config.base_url.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest)
    }

    fn timed_out(&self) -> Error {
        Error::UpstreamTimeout(format!(
            "the API at {} did not answer within the call's {} ms budget",
            self.host(),
            self.config.timeout.as_millis()
        ))
    }

    /// The request's URL under the base URL. A path that could leave it is the plugin's bug.
    fn url(&self, req: &ApiRequest) -> Result<String, Error> {
        let bad = !req.path.starts_with('/')
            || req.path.contains(['?', '#'])
            || req
                .path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            || req.path.split('/').any(|s| s == ".." || s == ".");
        // What `segment` made of a caller's "." or "..": still a dot-segment to servers
        // that decode before resolving, and the caller's to fix.
        let dots = req
            .path
            .split('/')
            .any(|s| !s.is_empty() && s.to_ascii_uppercase().split("%2E").all(str::is_empty));
        if dots {
            return Err(Error::unprocessable(
                "a value that names part of the vendor's path cannot be '.' or '..'",
            ));
        }
        if bad {
            return Err(Error::internal(format!(
                "the plugin built an API path that is not a plain path under the base URL: {:?}",
                req.path.chars().take(80).collect::<String>()
            )));
        }
        let mut url = format!("{}{}", self.config.base_url, req.path);
        if !req.query.is_empty() {
            url.push('?');
            url.push_str(&form(&req.query));
        }
        Ok(url)
    }

    async fn secret(&self, deadline: Instant) -> Result<Option<SecretValue>, Error> {
        let Some(reference) = &self.config.credential else {
            return Ok(None);
        };
        tokio::time::timeout_at(deadline, self.secrets.resolve(&self.org, reference))
            .await
            .map_err(|_| store_timeout())?
            .map(Some)
    }

    async fn credential(
        &self,
        secret: Option<&SecretValue>,
        deadline: Instant,
    ) -> Result<Credential, Error> {
        let (Some(auth), Some(secret), Some(reference)) =
            (&self.config.auth, secret, &self.config.credential)
        else {
            return Ok(Credential::None);
        };
        let field = |name: &str| {
            secret.field(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::unprocessable(format!(
                    "credential '{reference}' has no non-empty string field '{name}'"
                ))
            })
        };
        Ok(match auth {
            ApiAuth::Key(Auth::Bearer { field: f }) => Credential::Secret(
                sensitive(&format!("Bearer {}", field(f)?), reference, f)?,
                secret.clone(),
            ),
            ApiAuth::Key(Auth::Header { field: f, .. }) => {
                Credential::Secret(sensitive(field(f)?, reference, f)?, secret.clone())
            }
            ApiAuth::Basic { username, password } => {
                let pair = format!("{}:{}", field(username)?, field(password)?);
                Credential::Secret(
                    sensitive(
                        &format!("Basic {}", STANDARD.encode(pair)),
                        reference,
                        username,
                    )?,
                    secret.clone(),
                )
            }
            ApiAuth::OAuth2(o) => {
                let scope = TokenScope {
                    client: self.client.clone(),
                    secrets: self.secrets.clone(),
                    org: self.org.clone(),
                    reference: reference.clone(),
                    oauth: o.clone(),
                };
                let token = self.tokens.token(&scope, secret, deadline).await?;
                Credential::Token(
                    sensitive(&format!("Bearer {token}"), reference, "access_token")?,
                    token,
                )
            }
        })
    }

    fn request(
        &self,
        req: &ApiRequest,
        url: &str,
        credential: &Credential,
    ) -> Result<Request<Full<Bytes>>, Error> {
        let auth_name = match &self.config.auth {
            Some(ApiAuth::Key(Auth::Header { name, .. })) => name.clone(),
            _ => header::AUTHORIZATION,
        };
        let (body, content_type) = match &req.body {
            ApiBody::Empty => (Bytes::new(), None),
            ApiBody::Json(v) => (
                Bytes::from(serde_json::to_vec(v).map_err(|e| {
                    Error::internal(format!("an API request body cannot be encoded: {e}"))
                })?),
                Some("application/json"),
            ),
            ApiBody::Form(f) => (
                Bytes::from(form(f)),
                Some("application/x-www-form-urlencoded"),
            ),
        };
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(url)
            .header(header::ACCEPT, "application/json");
        if let Some(t) = content_type {
            builder = builder.header(header::CONTENT_TYPE, t);
        }
        for (name, value) in &req.headers {
            if *name == auth_name || *name == header::HOST || *name == header::CONTENT_LENGTH {
                return Err(Error::internal(format!(
                    "the plugin may not set the {name} header of an API request"
                )));
            }
            builder = builder.header(name, value);
        }
        if let Some(v) = credential.header() {
            builder = builder.header(auth_name, v);
        }
        builder
            .body(Full::new(body))
            .map_err(|e| Error::internal(format!("building an API request: {e}")))
    }

    /// One request with its bounded repeats (see the module's doc).
    async fn attempts(
        &self,
        req: &ApiRequest,
        url: &str,
        credential: &Credential,
        deadline: Instant,
    ) -> Result<Reply, Error> {
        let read = req.method == Method::GET;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = if Instant::now() >= deadline {
                Err(Failure::Timeout)
            } else {
                exchange(&self.client, self.request(req, url, credential)?, deadline).await
            };
            let again = match &result {
                Ok(r) => read && matches!(r.status.as_u16(), 502..=504),
                Err(Failure::Connect(_)) => true,
                Err(Failure::Transport(_) | Failure::Timeout) => read,
                Err(Failure::Refused) => false,
            };
            let pause = crate::transport::backoff(attempt);
            if again
                && attempt < 3
                && deadline.saturating_duration_since(Instant::now()) > pause * 2
            {
                tokio::time::sleep(pause).await;
                continue;
            }
            return match result {
                Ok(r) => Ok(r),
                Err(Failure::Timeout) => Err(self.timed_out()),
                Err(Failure::Refused) => Err(Error::Upstream(format!(
                    "the API at {} was not called: the api data adapter refuses to call private or loopback addresses",
                    self.host()
                ))),
                Err(Failure::Connect(cause) | Failure::Transport(cause)) => {
                    tracing::warn!(host = self.host(), method = %req.method, %cause, "vendor API call failed");
                    Err(Error::Upstream(format!(
                        "the API at {} could not be reached for a {}",
                        self.host(),
                        req.method
                    )))
                }
            };
        }
    }
}

fn store_timeout() -> Error {
    Error::Unavailable("the secret store did not answer within the call's time budget".into())
}

#[switchboard::async_trait]
impl Api for VendorApi {
    async fn send(&self, req: ApiRequest) -> Result<ApiResponse, Error> {
        let deadline = Instant::now() + self.config.timeout;
        if self
            .config
            .plain_http(&self.config.base_url, self.client.egress())
        {
            return Err(Error::Upstream(format!(
                "the API at {} was not called: credentials are never sent over plain http; use an https:// base_url",
                self.host()
            )));
        }
        let url = self.url(&req)?;
        let mut secret = self.secret(deadline).await?;
        let mut renewed = false;
        loop {
            let credential = self.credential(secret.as_ref(), deadline).await?;
            let reply = self.attempts(&req, &url, &credential, deadline).await?;
            if reply.status != StatusCode::UNAUTHORIZED {
                return Ok(ApiResponse {
                    status: reply.status.as_u16(),
                    body: serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
                    etag: reply.etag,
                });
            }
            let Some(reference) = &self.config.credential else {
                return Err(Error::Upstream(format!(
                    "the API at {} refused a {} (401) and no credential is configured",
                    self.host(),
                    req.method
                )));
            };
            if !renewed {
                renewed = true;
                match &credential {
                    Credential::Token(_, token) => {
                        tracing::info!(host = self.host(), credential = %reference, "the API rejected the access token; retrying once with a new one");
                        self.tokens.forget(&self.org, reference, token);
                        continue;
                    }
                    Credential::Secret(_, used) => {
                        let rotated = tokio::time::timeout_at(
                            deadline,
                            self.secrets.refresh(&self.org, reference, used),
                        )
                        .await
                        .map_err(|_| store_timeout())??;
                        if let Some(v) = rotated {
                            tracing::info!(host = self.host(), credential = %reference, "the API rejected the credential; retrying once with its rotated value");
                            secret = Some(v);
                            continue;
                        }
                    }
                    Credential::None => {}
                }
            }
            return Err(Error::Upstream(format!(
                "the API at {} rejected credential '{reference}' (401 to a {}); update the secret",
                self.host(),
                req.method
            )));
        }
    }
}
