//! Tenant context. On AWS it is set by the authorizer Lambda; locally `dev` derives it from
//! an API key with [`authenticate`], the same lookup the authorizer does.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use crate::audit::{AuditLog, Subject};
use crate::cache::TtlCache;
use crate::error::Error;
use crate::ids::{Channel, OrgId};
use crate::registry::{ApiKeyRecord, KeyHash, Registry};

/// Who is calling. Built only from the authorizer context, never from headers or body.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantContext {
    pub org: OrgId,
    pub scopes: Vec<String>,
    /// The channel the key is bound to; `None` for an unbound key.
    pub channel: Option<Channel>,
    /// The key's public id (first 16 hex digits of its hash), for logs.
    pub key_id: Option<String>,
    /// The key's own limit of tool calls a second, within its organization's.
    pub key_rate_limit: Option<u32>,
}

impl TenantContext {
    pub fn new(org: OrgId) -> Self {
        Self {
            org,
            scopes: Vec::new(),
            channel: None,
            key_id: None,
            key_rate_limit: None,
        }
    }

    /// Binds the context to a channel, as a channel-bound key's does.
    pub fn on_channel(mut self, channel: Channel) -> Self {
        self.channel = Some(channel);
        self
    }

    pub fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Reads the Lambda authorizer's context (`requestContext.authorizer.lambda`), as
    /// [`Authorizer::simple_response`] writes it. A missing or malformed `orgId` means no
    /// tenant, a malformed `channel` no trustworthy binding, and a malformed `keyRateLimit`
    /// (or one without a `keyId`) no limit to count: all 401. Other fields are ignored:
    /// caller details come from the channel's payload, not from here.
    pub fn from_authorizer(fields: &Map<String, Value>) -> Result<Self, Error> {
        let org = match fields.get("orgId") {
            Some(Value::String(s)) => OrgId::parse(s.as_str()).map_err(|_| {
                Error::Unauthenticated("the authorizer context holds an invalid orgId".into())
            })?,
            _ => return Err(no_tenant()),
        };
        let scopes = match fields.get("scopes") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => s
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        // A bound key read as unbound would widen it to every plugin: refuse instead.
        let channel = match fields.get("channel") {
            None => None,
            Some(Value::String(s)) => Some(Channel::parse(s.as_str()).map_err(|_| {
                Error::Unauthenticated("the authorizer context holds an invalid channel".into())
            })?),
            Some(_) => {
                return Err(Error::Unauthenticated(
                    "the authorizer context holds an invalid channel".into(),
                ));
            }
        };
        let key_id = fields
            .get("keyId")
            .and_then(Value::as_str)
            .filter(|k| k.len() <= 64)
            .map(str::to_owned);
        // A limit read as absent would lift it: refuse a malformed one instead.
        let key_rate_limit = match fields.get("keyRateLimit") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        Error::Unauthenticated(
                            "the authorizer context holds an invalid keyRateLimit".into(),
                        )
                    })?,
            ),
        };
        // A limit is counted in the key's bucket: without a key to name it, it would lapse.
        if key_rate_limit.is_some() && key_id.is_none() {
            return Err(Error::Unauthenticated(
                "the authorizer context holds a keyRateLimit without a valid keyId".into(),
            ));
        }
        Ok(Self {
            org,
            scopes,
            channel,
            key_id,
            key_rate_limit,
        })
    }
}

pub fn no_tenant() -> Error {
    Error::Unauthenticated(
        "no tenant context: send 'Authorization: Bearer <api key>' through the API's authorizer"
            .into(),
    )
}

/// Turns `Authorization: Bearer <key>` into a tenant by the key's SHA-256: the authorizer
/// Lambda's logic, which `dev` runs in-process. Lookups are cached per key hash.
pub struct Authorizer {
    registry: Registry,
    keys: TtlCache<KeyHash, ApiKeyRecord>,
    /// Where a refused key of a known organization (a revoked one) is recorded.
    audit: Option<Arc<AuditLog>>,
    /// Revoked keys recorded in the last minute.
    refusals: TtlCache<KeyHash, ()>,
}

/// How long a found key is reused; a revocation takes effect within it (plus API Gateway's
/// own authorizer cache, `ReauthorizeEvery` in template.yaml).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

impl Authorizer {
    pub fn new(registry: Registry, ttl: Duration) -> Self {
        Self {
            registry,
            keys: TtlCache::new(ttl),
            audit: None,
            refusals: TtlCache::new(KEY_CACHE_TTL),
        }
    }

    /// Records refused keys that belong to an organization (revoked ones) in `audit`; an
    /// unknown key belongs to no one and is only logged.
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The audit entry of a refused revoked key, under its organization.
    async fn audit_refusal(
        &self,
        refused: (KeyHash, ApiKeyRecord),
        event: &Value,
        e: &Error,
        started: (SystemTime, Instant),
    ) {
        let Some(log) = &self.audit else {
            return;
        };
        let (hash, rec) = refused;
        // One entry per key and minute: a revoked key sent in a loop (with the header
        // varied past API Gateway's cache) must not become one write per request.
        if self.refusals.get(&hash).is_some() {
            return;
        }
        self.refusals.insert(hash.clone(), ());
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(|s| s.chars().take(256).collect::<String>())
        };
        let subject = Subject {
            channel: rec.channel.as_ref().map(ToString::to_string),
            key_id: Some(hash.id().to_owned()),
            route: text(event.get("routeKey"))
                .or_else(|| text(event.get("rawPath")))
                .unwrap_or_else(|| "authorizer".to_owned()),
            request_id: text(event.pointer("/requestContext/requestId")).unwrap_or_default(),
            ..Subject::default()
        };
        let entry = subject.refused(&rec.org, started.0, started.1, e);
        let days = crate::audit::retention_of(&self.registry, &rec.org).await;
        log.record(&entry, 0, days).await;
    }

    /// 401 for a missing, malformed, unknown or revoked key; 503 if the registry is down.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<TenantContext, Error> {
        self.check(authorization).await.map_err(|(e, _)| e)
    }

    /// [`Authorizer::authenticate`]; a revoked key's refusal also carries its hash and
    /// record, which name the organization it belongs to.
    async fn check(
        &self,
        authorization: Option<&str>,
    ) -> Result<TenantContext, (Error, Option<(KeyHash, ApiKeyRecord)>)> {
        let Some(header) = authorization else {
            return Err((no_tenant(), None));
        };
        let key = bearer(header).ok_or_else(|| {
            (
                Error::Unauthenticated(
                    "the Authorization header must be 'Bearer <api key>'".into(),
                ),
                None,
            )
        })?;
        let hash = KeyHash::of(key);
        let key_id = hash.id().to_owned();
        // Only found keys are cached: a key created a moment ago must work at once.
        let record = match self.keys.get(&hash) {
            Some(hit) => Some(hit),
            None => {
                let found = self
                    .registry
                    .get_api_key(&hash)
                    .await
                    .map_err(|e| (Error::from(e), None))?;
                if let Some(rec) = &found {
                    self.keys.insert(hash.clone(), rec.clone());
                }
                found
            }
        };
        match record {
            Some(rec) if !rec.revoked => Ok(TenantContext {
                org: rec.org,
                scopes: rec.scopes,
                channel: rec.channel,
                key_id: Some(key_id),
                key_rate_limit: rec
                    .rate_limit_per_second
                    .map(|l| l.clamp(1, crate::ratelimit::MAX_PER_SECOND)),
            }),
            Some(rec) => Err((
                Error::Unauthenticated("this API key has been revoked".into()),
                Some((hash, rec)),
            )),
            None => Err((Error::Unauthenticated("unknown API key".into()), None)),
        }
    }

    /// The HTTP API "simple response" for an authorizer event (payload format 2.0): the
    /// context is `orgId`, `scopes` (space-separated), `keyId`, for a channel-bound key
    /// `channel`, and for a key with a limit of its own `keyRateLimit`. A refused key is `isAuthorized: false`; only a registry outage is an `Err`.
    pub async fn simple_response(&self, event: &Value) -> Result<Value, Error> {
        let started = (SystemTime::now(), Instant::now());
        let header = event
            .get("headers")
            .and_then(|h| h.get("authorization"))
            .or_else(|| event.get("identitySource").and_then(|s| s.get(0)))
            .and_then(Value::as_str);
        match self.check(header).await {
            Ok(t) => {
                let mut context = json!({"orgId": t.org, "scopes": t.scopes.join(" ")});
                if let Some(id) = &t.key_id {
                    context["keyId"] = json!(id);
                }
                if let Some(channel) = &t.channel {
                    context["channel"] = json!(channel);
                }
                if let Some(limit) = t.key_rate_limit {
                    context["keyRateLimit"] = json!(limit);
                }
                Ok(json!({"isAuthorized": true, "context": context}))
            }
            Err((e @ Error::Unauthenticated(_), refused)) => {
                tracing::info!(reason = %e, "authorization refused");
                if let Some(refused) = refused {
                    self.audit_refusal(refused, event, &e, started).await;
                }
                Ok(json!({"isAuthorized": false}))
            }
            Err((e, _)) => Err(e),
        }
    }
}

/// The key of an `Authorization: Bearer <key>` header.
fn bearer(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn reads_org_scopes_key_and_channel() {
        let t = TenantContext::from_authorizer(&map(json!({
            "orgId": "acme", "scopes": "plugins:call admin", "channel": "twilio",
            "keyId": "0123456789abcdef", "callerPhone": "+15550102000"
        })))
        .unwrap();
        assert_eq!(t.org.as_str(), "acme");
        assert_eq!(t.scopes, vec!["plugins:call", "admin"]);
        assert_eq!(t.channel.unwrap().as_str(), "twilio");
        assert_eq!(t.key_id.as_deref(), Some("0123456789abcdef"));
    }

    #[test]
    fn a_keys_own_limit_is_read_and_a_malformed_one_refused() {
        let read = |limit: Value| {
            TenantContext::from_authorizer(&map(
                json!({"orgId": "acme", "scopes": "plugins:call", "keyId": "k", "keyRateLimit": limit}),
            ))
        };
        assert_eq!(read(json!(5)).unwrap().key_rate_limit, Some(5));
        // API Gateway may hand context values on as strings.
        assert_eq!(read(json!("5")).unwrap().key_rate_limit, Some(5));
        for bad in [
            json!(0),
            json!(-1),
            json!("many"),
            json!(null),
            json!(1.5),
            json!(u64::MAX),
        ] {
            assert_eq!(read(bad.clone()).unwrap_err().status(), 401, "{bad}");
        }
        let none = TenantContext::from_authorizer(&map(json!({"orgId": "acme"}))).unwrap();
        assert_eq!(none.key_rate_limit, None);
        // A limit with no key to count it against would lapse.
        for key in [json!(null), json!("k".repeat(65))] {
            let e = TenantContext::from_authorizer(&map(
                json!({"orgId": "acme", "keyId": key, "keyRateLimit": 5}),
            ))
            .unwrap_err();
            assert_eq!(e.status(), 401, "{key}");
        }
    }

    #[test]
    fn a_malformed_channel_is_not_read_as_unbound() {
        for channel in [json!("Bad Channel"), json!(7), json!(""), json!(null)] {
            let e = TenantContext::from_authorizer(&map(
                json!({"orgId": "acme", "scopes": "plugins:call", "channel": channel}),
            ))
            .unwrap_err();
            assert_eq!(e.status(), 401, "{channel}");
        }
    }

    #[test]
    fn missing_or_bad_org_is_unauthenticated() {
        for fields in [
            json!({}),
            json!({"orgId": 7}),
            json!({"orgId": "ORG#other"}),
        ] {
            let e = TenantContext::from_authorizer(&map(fields)).unwrap_err();
            assert_eq!(e.status(), 401);
        }
    }
}
