//! OAuth2 access tokens for the `api` adapter: client credentials, refresh token (a rotated
//! refresh token is written back to the secret) and the JWT-bearer grant of RFC 7523 (RS256
//! assertions, as Google service accounts and Salesforce's JWT flow use). Tokens are cached
//! per container until [`EARLY`] before they expire; one request per token at a time (the
//! others wait for it). Tokens, secrets and assertions never reach a log or an error message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard::error::Error;
use switchboard::ids::OrgId;
use switchboard::secrets::{CredentialRef, SecretValue, Secrets};
use switchboard::spec::api::{ClientAuth, Grant, OAuth2};
use tokio::time::Instant;

use crate::api::{encode, exchange, form};
use crate::client::Failure;
use crate::client::RestClient;

/// A token is replaced this long before the provider says it expires.
pub const EARLY: Duration = Duration::from_secs(60);
/// When the provider does not say (Salesforce): a 401 replaces it sooner if need be.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// An RFC 7523 assertion's lifetime: Salesforce accepts at most three minutes (this leaves
/// room for clock skew), Google an hour.
const ASSERTION_LIFETIME: u64 = 150;
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// However long a provider says a token lives, it is asked again after this.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A token request goes on this long after its caller left: a refresh token the provider
/// rotated must reach the store even if the call that asked was cut off.
const DETACHED_BUDGET: Duration = Duration::from_secs(10);

struct Cached {
    token: String,
    good_until: Instant,
    /// The refresh token the access token came with: another one in the secret (another
    /// user's consent) must not be served this user's token.
    refresh: Option<String>,
}

/// A refresh token the provider issued that could not be written back: used instead of the
/// stored one while the store still holds the token it replaced.
struct Unsaved {
    spent: String,
    fresh: String,
}

#[derive(Default)]
struct Inner {
    cached: Mutex<HashMap<String, Cached>>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    unsaved: Mutex<HashMap<String, Unsaved>>,
}

/// The container's access tokens, by organization, credential (and which client or account
/// it holds), grant, endpoint, scope, subject and audience.
#[derive(Clone, Default)]
pub struct Tokens {
    inner: Arc<Inner>,
}

/// What one token is for; owned, so its request can finish in a task of its own.
#[derive(Clone)]
pub(crate) struct TokenScope {
    pub client: RestClient,
    pub secrets: Arc<Secrets>,
    pub org: OrgId,
    pub reference: CredentialRef,
    pub oauth: OAuth2,
}

impl TokenScope {
    fn credential_key(&self) -> String {
        format!("{}\n{}", self.org, self.reference)
    }

    /// The cache key. The secret's identity fields are in it (hashed): a credential
    /// replaced by another client or account does not inherit the old one's token.
    fn key(&self, secret: &SecretValue) -> String {
        let o = &self.oauth;
        let opt = |s: &Option<String>| s.clone().unwrap_or_default();
        let identity: String = [
            "client_id",
            "client_email",
            "private_key_id",
            "token_uri",
            "account_id",
        ]
        .iter()
        .map(|f| format!("{}\n", secret.field(f).unwrap_or_default()))
        .collect();
        let digest = Sha256::digest(identity.as_bytes());
        let fingerprint: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.credential_key(),
            fingerprint,
            o.grant.as_str(),
            opt(&o.token_url),
            opt(&o.scope),
            opt(&o.subject),
            opt(&o.audience)
        )
    }

    /// One token request at a time per key; per credential for a refresh token, whatever
    /// the scope: two requests would spend the same refresh token.
    fn flight_key(&self, key: &str) -> String {
        match self.oauth.grant {
            Grant::RefreshToken => self.credential_key(),
            _ => key.to_owned(),
        }
    }
}

/// A provider's answer to a token request.
struct Granted {
    access_token: String,
    lifetime: Duration,
    refresh_token: Option<String>,
}

/// Why a token request failed.
enum Refusal {
    /// The provider refused the grant (its `error` code, e.g. `invalid_grant`).
    Grant(String),
    Other(Error),
}

fn out_of_time() -> Error {
    Error::UpstreamTimeout(
        "the OAuth2 access token was not obtained within the call's budget".into(),
    )
}

impl Tokens {
    /// An access token for `scope`, from cache or from the provider. The request runs in a
    /// task of its own, holding the single-flight turn: if the caller's budget runs out, the
    /// request (and the write-back of a rotated refresh token) still completes.
    pub(crate) async fn token(
        &self,
        scope: &TokenScope,
        secret: &SecretValue,
        deadline: Instant,
    ) -> Result<String, Error> {
        let key = scope.key(secret);
        let refresh = match scope.oauth.grant {
            Grant::RefreshToken => self
                .current(scope, secret.clone())
                .field("refresh_token")
                .map(str::to_owned),
            _ => None,
        };
        if let Some(t) = self.fresh(&key, refresh.as_deref()) {
            return Ok(t);
        }
        let flight_key = scope.flight_key(&key);
        let flight = self.flight(&flight_key);
        let result = async {
            let turn = tokio::time::timeout_at(deadline, flight.clone().lock_owned())
                .await
                .map_err(|_| out_of_time())?;
            if let Some(t) = self.fresh(&key, refresh.as_deref()) {
                return Ok(t);
            }
            let (tokens, scope, secret) = (self.clone(), scope.clone(), secret.clone());
            let job = tokio::spawn(async move {
                let _turn = turn;
                let budget = Instant::now() + DETACHED_BUDGET;
                let granted = tokens.obtain(&scope, &secret, budget).await?;
                Ok::<_, Error>(tokens.keep(&key, granted))
            });
            match tokio::time::timeout_at(deadline, job).await {
                Err(_) => Err(out_of_time()),
                Ok(Err(e)) => Err(Error::internal(format!("token request task: {e}"))),
                Ok(Ok(r)) => r,
            }
        }
        .await;
        drop(flight);
        if let Ok(mut f) = self.inner.flights.lock()
            && f.get(&flight_key)
                .is_some_and(|mine| Arc::strong_count(mine) == 1)
        {
            f.remove(&flight_key);
        }
        result
    }

    fn keep(&self, key: &str, granted: Granted) -> String {
        let life = granted.lifetime.min(MAX_LIFETIME);
        let life = life.saturating_sub(EARLY.min(life / 2));
        if let Ok(mut c) = self.inner.cached.lock() {
            c.insert(
                key.to_owned(),
                Cached {
                    token: granted.access_token.clone(),
                    good_until: Instant::now() + life,
                    refresh: granted.refresh_token,
                },
            );
        }
        granted.access_token
    }

    /// Drops `token` (the API rejected it) unless another call already replaced it.
    pub(crate) fn forget(&self, org: &OrgId, reference: &CredentialRef, token: &str) {
        let prefix = format!("{org}\n{reference}\n");
        if let Ok(mut c) = self.inner.cached.lock() {
            c.retain(|k, v| !(k.starts_with(&prefix) && v.token == token));
        }
    }

    fn fresh(&self, key: &str, refresh: Option<&str>) -> Option<String> {
        let c = self.inner.cached.lock().ok()?;
        c.get(key)
            .filter(|c| Instant::now() < c.good_until && c.refresh.as_deref() == refresh)
            .map(|c| c.token.clone())
    }

    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.inner.flights.lock() {
            Ok(mut f) => f.entry(key.to_owned()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// The refresh token to send: what the store holds, unless this container holds a
    /// newer one it could not write back.
    fn current(&self, scope: &TokenScope, stored: SecretValue) -> SecretValue {
        let unsaved = self.inner.unsaved.lock().ok().and_then(|u| {
            u.get(&scope.credential_key())
                .filter(|u| stored.field("refresh_token") == Some(u.spent.as_str()))
                .map(|u| u.fresh.clone())
        });
        match unsaved {
            Some(fresh) => stored.with_field("refresh_token", &fresh),
            None => stored,
        }
    }

    /// One grant. A refresh token is read from the store first (another container may have
    /// rotated it: providers refuse a spent one and may revoke the whole grant for it), and
    /// once more if refused as `invalid_grant`, tried again if it changed.
    async fn obtain(
        &self,
        scope: &TokenScope,
        secret: &SecretValue,
        deadline: Instant,
    ) -> Result<Granted, Error> {
        let mut secret = secret.clone();
        let mut stored = None;
        if scope.oauth.grant == Grant::RefreshToken {
            let now = latest(scope, deadline).await?;
            secret = self.current(scope, now.clone());
            stored = Some(now);
        }
        let mut reread = false;
        loop {
            match request(scope, &secret, deadline).await {
                Ok(mut g) => {
                    if let Some(stored) = &stored {
                        // A provider that does not rotate keeps the token that was sent.
                        if g.refresh_token.is_none() {
                            g.refresh_token = secret.field("refresh_token").map(str::to_owned);
                        }
                        self.write_back(scope, stored, &g).await;
                    }
                    return Ok(g);
                }
                Err(Refusal::Grant(code))
                    if code == "invalid_grant"
                        && scope.oauth.grant == Grant::RefreshToken
                        && !reread =>
                {
                    reread = true;
                    let now = latest(scope, deadline).await?;
                    let next = self.current(scope, now.clone());
                    if next.same(&secret) {
                        return Err(refused(scope, &code));
                    }
                    secret = next;
                    stored = Some(now);
                }
                Err(Refusal::Grant(code)) => return Err(refused(scope, &code)),
                Err(Refusal::Other(e)) => return Err(e),
            }
        }
    }

    /// Keeps a refresh token the provider rotated: the one sent is spent. When the store
    /// cannot be written, this container keeps the new token in memory and tries again at
    /// its next refresh; the failure is logged as an error (other containers, and this one
    /// after it stops, only have the spent token: the credential must then be renewed).
    async fn write_back(&self, scope: &TokenScope, stored: &SecretValue, granted: &Granted) {
        let Some(new) = &granted.refresh_token else {
            return;
        };
        if stored.field("refresh_token") == Some(new.as_str()) {
            return;
        }
        let value = stored.with_field("refresh_token", new);
        let key = scope.credential_key();
        match scope
            .secrets
            .replace(&scope.org, &scope.reference, &value)
            .await
        {
            Ok(()) => {
                if let Ok(mut u) = self.inner.unsaved.lock() {
                    u.remove(&key);
                }
                tracing::info!(credential = %scope.reference, "stored the provider's rotated refresh token");
            }
            Err(e) => {
                if let Ok(mut u) = self.inner.unsaved.lock() {
                    u.insert(
                        key,
                        Unsaved {
                            spent: stored.field("refresh_token").unwrap_or_default().to_owned(),
                            fresh: new.clone(),
                        },
                    );
                }
                tracing::error!(credential = %scope.reference, error = %e,
                    "the provider's rotated refresh token could not be stored; this container keeps it and retries at its next refresh, others hold a spent one");
            }
        }
    }
}

async fn latest(scope: &TokenScope, deadline: Instant) -> Result<SecretValue, Error> {
    tokio::time::timeout_at(
        deadline,
        scope.secrets.resolve_latest(&scope.org, &scope.reference),
    )
    .await
    .map_err(|_| {
        Error::Unavailable("the secret store did not answer within the call's time budget".into())
    })?
}

fn refused(scope: &TokenScope, code: &str) -> Error {
    Error::Upstream(format!(
        "the OAuth2 token endpoint refused credential '{}' ({code}, {} grant); update the secret or the adapter's auth.oauth2 settings",
        scope.reference,
        scope.oauth.grant.as_str()
    ))
}

fn field<'a>(scope: &TokenScope, secret: &'a SecretValue, name: &str) -> Result<&'a str, Error> {
    secret.field(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        Error::unprocessable(format!(
            "credential '{}' has no non-empty string field '{name}' for the {} grant",
            scope.reference,
            scope.oauth.grant.as_str()
        ))
    })
}

/// The token endpoint: the setting, else (JWT bearer) the secret's `token_uri`.
fn token_url(scope: &TokenScope, secret: &SecretValue) -> Result<String, Error> {
    match &scope.oauth.token_url {
        Some(u) => Ok(u.clone()),
        None => field(scope, secret, "token_uri").map(str::to_owned),
    }
}

async fn request(
    scope: &TokenScope,
    secret: &SecretValue,
    deadline: Instant,
) -> Result<Granted, Refusal> {
    let o = &scope.oauth;
    let url = token_url(scope, secret).map_err(Refusal::Other)?;
    if !url.starts_with("https://") && !scope.client.egress().allows_private() {
        return Err(Refusal::Other(Error::Upstream(
            "the OAuth2 token endpoint was not called: credentials are never sent over plain http; use an https:// token_url".into(),
        )));
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut basic = None;
    let client_fields = |fields: &mut Vec<(String, String)>,
                         basic: &mut Option<String>,
                         secret_required: bool|
     -> Result<(), Error> {
        let id = field(scope, secret, "client_id")?;
        let client_secret = if secret_required {
            Some(field(scope, secret, "client_secret")?)
        } else {
            secret.field("client_secret").filter(|s| !s.is_empty())
        };
        match (o.client_auth, client_secret) {
            (ClientAuth::Basic, Some(s)) => {
                // RFC 6749 §2.3.1: each part form-encoded before joining.
                let pair = format!("{}:{}", encode(id), encode(s));
                *basic = Some(format!("Basic {}", STANDARD.encode(pair)));
            }
            (_, s) => {
                fields.push(("client_id".into(), id.to_owned()));
                if let Some(s) = s {
                    fields.push(("client_secret".into(), s.to_owned()));
                }
            }
        }
        Ok(())
    };
    match o.grant {
        Grant::ClientCredentials => {
            fields.push(("grant_type".into(), "client_credentials".into()));
            client_fields(&mut fields, &mut basic, true).map_err(Refusal::Other)?;
            if let Some(s) = &o.scope {
                fields.push(("scope".into(), s.clone()));
            }
        }
        Grant::AccountCredentials => {
            fields.push(("grant_type".into(), "account_credentials".into()));
            let account = field(scope, secret, "account_id").map_err(Refusal::Other)?;
            fields.push(("account_id".into(), account.to_owned()));
            client_fields(&mut fields, &mut basic, true).map_err(Refusal::Other)?;
            if let Some(s) = &o.scope {
                fields.push(("scope".into(), s.clone()));
            }
        }
        Grant::RefreshToken => {
            fields.push(("grant_type".into(), "refresh_token".into()));
            let token = field(scope, secret, "refresh_token").map_err(Refusal::Other)?;
            fields.push(("refresh_token".into(), token.to_owned()));
            client_fields(&mut fields, &mut basic, false).map_err(Refusal::Other)?;
            if let Some(s) = &o.scope {
                fields.push(("scope".into(), s.clone()));
            }
        }
        Grant::JwtBearer => {
            fields.push(("grant_type".into(), JWT_BEARER.into()));
            let jwt = assertion(scope, secret, &url, SystemTime::now()).map_err(Refusal::Other)?;
            fields.push(("assertion".into(), jwt));
        }
    }
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(url.as_str())
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(b) = basic {
        let mut v = HeaderValue::from_str(&b).map_err(|_| {
            Refusal::Other(Error::unprocessable(format!(
                "credential '{}' holds a client id or secret an HTTP header cannot carry",
                scope.reference
            )))
        })?;
        v.set_sensitive(true);
        builder = builder.header(header::AUTHORIZATION, v);
    }
    let req = builder
        .body(Full::new(Bytes::from(form(&fields))))
        .map_err(|e| Refusal::Other(Error::internal(format!("building a token request: {e}"))))?;
    let host = url
        .split_once("://")
        .map_or(url.as_str(), |(_, r)| r)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    // A token request is not repeated: a spent refresh token must not be sent twice.
    let reply = exchange(&scope.client, req, deadline).await.map_err(|f| {
        Refusal::Other(match f {
            Failure::Timeout => Error::UpstreamTimeout(format!(
                "the OAuth2 token endpoint at {host} did not answer within the call's budget"
            )),
            Failure::Refused => Error::Upstream(format!(
                "the OAuth2 token endpoint at {host} was not called: the api data adapter refuses to call private or loopback addresses"
            )),
            Failure::Connect(cause) | Failure::Transport(cause) => {
                tracing::warn!(%host, %cause, "OAuth2 token request failed");
                Error::Upstream(format!(
                    "the OAuth2 token endpoint at {host} could not be reached"
                ))
            }
        })
    })?;
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    if !reply.status.is_success() {
        // Only the provider's error code (RFC 6749 §5.2), never the description.
        let code = body
            .get("error")
            .and_then(Value::as_str)
            .filter(|c| c.len() <= 40 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        return Err(match code {
            Some(c) if reply.status.is_client_error() => Refusal::Grant(c.to_owned()),
            _ => Refusal::Other(Error::Upstream(format!(
                "the OAuth2 token endpoint at {host} answered {}",
                reply.status
            ))),
        });
    }
    let access_token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Refusal::Other(Error::Upstream(format!(
                "the OAuth2 token endpoint at {host} answered without an access_token"
            )))
        })?
        .to_owned();
    let lifetime = match body.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64().map(Duration::from_secs),
        // Some providers send it as a string.
        Some(Value::String(s)) => s.parse().ok().map(Duration::from_secs),
        _ => None,
    }
    .unwrap_or(DEFAULT_LIFETIME);
    Ok(Granted {
        access_token,
        lifetime,
        refresh_token: body
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    })
}

/// An RS256-signed RFC 7523 assertion: issued by the secret's `client_email` (or
/// `client_id`), for `aud` (the token endpoint unless configured), with the scope and
/// subject configured.
fn assertion(
    scope: &TokenScope,
    secret: &SecretValue,
    token_url: &str,
    now: SystemTime,
) -> Result<String, Error> {
    let o = &scope.oauth;
    let issuer = secret
        .field("client_email")
        .or_else(|| secret.field("client_id"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::unprocessable(format!(
                "credential '{}' has neither 'client_email' nor 'client_id' for the jwt_bearer grant",
                scope.reference
            ))
        })?;
    let iat = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut head = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = secret.field("private_key_id").filter(|k| !k.is_empty()) {
        head["kid"] = json!(kid);
    }
    let mut claims = json!({
        "iss": issuer,
        "aud": o.audience.as_deref().unwrap_or(token_url),
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME,
    });
    if let Some(s) = &o.scope {
        claims["scope"] = json!(s);
    }
    if let Some(s) = &o.subject {
        claims["sub"] = json!(s);
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(head.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let pem = field(scope, secret, "private_key")?;
    let unusable = || {
        Error::unprocessable(format!(
            "credential '{}' field 'private_key' is not an RSA private key in PKCS#8 PEM (a PRIVATE KEY block; `openssl pkcs8 -topk8 -nocrypt` converts an RSA PRIVATE KEY)",
            scope.reference
        ))
    };
    let der = pkcs8_der(pem).ok_or_else(unusable)?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|_| unusable())?;
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| Error::internal("signing an OAuth2 assertion failed"))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

// Spelled in two parts so the source never holds what looks like the start of a key.
const PEM_BEGIN: &str = concat!("-----BEGIN ", "PRIVATE KEY-----");
const PEM_END: &str = concat!("-----END ", "PRIVATE KEY-----");

/// The DER inside a `PRIVATE KEY` PEM block (escaped newlines, as JSON key files carry
/// them when pasted, are accepted).
fn pkcs8_der(pem: &str) -> Option<Vec<u8>> {
    let pem = pem.replace("\\n", "\n");
    let start = pem.find(PEM_BEGIN)? + PEM_BEGIN.len();
    let end = pem[start..].find(PEM_END)? + start;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_read_with_real_or_escaped_newlines() {
        let body = STANDARD.encode([1u8, 2, 3, 250]);
        let pem = format!("{PEM_BEGIN}\n{body}\n{PEM_END}\n");
        assert_eq!(pkcs8_der(&pem), Some(vec![1, 2, 3, 250]));
        assert_eq!(
            pkcs8_der(&pem.replace('\n', "\\n")),
            Some(vec![1, 2, 3, 250])
        );
        let pkcs1 = pem.replace("PRIVATE KEY", "RSA PRIVATE KEY");
        assert_eq!(pkcs8_der(&pkcs1), None);
    }
}
