//! Credentials: references in config, values from a [`SecretStore`] (Secrets Manager on
//! Lambda, the embedded store locally), cached per container by [`Secrets`].
//!
//! A reference must name a secret under `<prefix>/<org>/`, so an organization's config can
//! never resolve another organization's credential.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::{Detail, Error};
use crate::ids::OrgId;
pub use crate::ports::{SecretError, SecretStore};
use crate::settings::Settings;

/// A Secrets Manager secret name or ARN, as written in instance or adapter config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CredentialRef(String);

impl CredentialRef {
    /// Accepts a secret name (`[A-Za-z0-9/_+=.@-]{1,512}`) or a Secrets Manager ARN.
    pub fn parse(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        let name = arn_name(&s).unwrap_or(&s);
        let ok = (1..=512).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b));
        if ok {
            Ok(Self(s))
        } else {
            Err(format!(
                "'{}' is not a Secrets Manager secret name or ARN",
                s.chars().take(80).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The secret name: the reference itself, or the name part of an ARN.
    pub fn name(&self) -> &str {
        arn_name(&self.0).unwrap_or(&self.0)
    }
}

fn arn_name(s: &str) -> Option<&str> {
    // arn:<partition>:secretsmanager:<region>:<account>:secret:<name>
    let mut parts = s.splitn(7, ':');
    let ok = parts.next() == Some("arn")
        && parts.next().is_some()
        && parts.next() == Some("secretsmanager");
    if !ok {
        return None;
    }
    let _region = parts.next()?;
    let _account = parts.next()?;
    (parts.next()? == "secret").then_some(())?;
    parts.next()
}

impl fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CredentialRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A secret's value: a JSON object. `Debug` and `Display` redact it, and it has no
/// `Serialize`, so it cannot reach a log line, an error or a response by accident.
#[derive(Clone)]
pub struct SecretValue(Arc<Map<String, Value>>);

impl SecretValue {
    pub fn new(fields: Map<String, Value>) -> Self {
        Self(Arc::new(fields))
    }

    /// Parses a secret string, which must be a JSON object. The error never quotes it.
    pub fn from_secret_string(s: &str) -> Result<Self, SecretError> {
        match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(Self::new(m)),
            _ => Err(SecretError::Invalid(
                "the secret value is not a JSON object".into(),
            )),
        }
    }

    /// A string field, e.g. `token` or `connection_string`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// This value with the string field `name` set to `value` (the others kept).
    pub fn with_field(&self, name: &str, value: &str) -> Self {
        let mut m = (*self.0).clone();
        m.insert(name.to_owned(), Value::String(value.to_owned()));
        Self::new(m)
    }

    /// The field names (not values): what the admin API may show.
    pub fn field_names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// The JSON text, for writing to a secret store only.
    pub fn to_secret_string(&self) -> String {
        Value::Object((*self.0).clone()).to_string()
    }

    /// Whether two values hold the same fields (e.g. after a re-fetch: was it rotated?).
    pub fn same(&self, other: &SecretValue) -> bool {
        self.0 == other.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

struct Entry {
    /// Served without asking the store until then.
    good_until: Instant,
    /// When the store last gave this value: a stale value is served only so long after.
    fetched: Instant,
    value: SecretValue,
}

/// After an outage with a value cached: serve it this long before asking the store again,
/// so an outage costs one slow fetch per interval, not one per call.
const STALE_GRACE: Duration = Duration::from_secs(30);
/// After an outage with nothing cached: answer 503 at once for this long.
const FAILURE_GRACE: Duration = Duration::from_secs(5);
/// A credential that does not exist is answered from memory this long, so a misconfigured
/// instance does not cost a store request per call; writing it through [`Secrets::store`]
/// ends that at once in this container.
pub const MISSING_GRACE: Duration = Duration::from_secs(10);
/// The oldest cached value served while the store is unreachable, by default: past it a
/// revoked credential could otherwise live on for the whole outage.
pub const MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// At most one rotation re-fetch per reference per interval, whatever upstreams say.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The per-container resolver: a TTL cache over a [`SecretStore`] that fetches a missing
/// secret once however many calls want it, serves a stale value when the store fails, and
/// re-fetches once when an upstream rejects a credential (rotation).
pub struct Secrets {
    store: Arc<dyn SecretStore>,
    ttl: Duration,
    prefix: String,
    // Shared with detached fetches, which record their outcome even if every caller left.
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    /// When the store last failed for a reference with nothing (usable) cached.
    failures: Arc<Mutex<HashMap<String, Instant>>>,
    /// When the store last said a reference does not exist.
    missing: Arc<Mutex<HashMap<String, Instant>>>,
    max_stale: Duration,
    /// When a reference was last re-fetched after a rejection.
    refreshed: Mutex<HashMap<String, Instant>>,
    refresh_interval: Duration,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Secrets {
    pub fn new(store: Arc<dyn SecretStore>, ttl: Duration, prefix: impl Into<String>) -> Self {
        Self {
            store,
            ttl,
            prefix: prefix.into().trim_end_matches('/').to_owned(),
            entries: Arc::default(),
            failures: Arc::default(),
            missing: Arc::default(),
            max_stale: MAX_STALE,
            refreshed: Mutex::default(),
            refresh_interval: REFRESH_INTERVAL,
            flights: Mutex::default(),
        }
    }

    /// How often a rejected credential may be re-fetched ([`REFRESH_INTERVAL`] by default).
    pub fn with_refresh_interval(mut self, every: Duration) -> Self {
        self.refresh_interval = every;
        self
    }

    /// How old a cached value may be and still be served during an outage ([`MAX_STALE`]
    /// by default); older, the call fails closed with 503.
    pub fn with_max_stale(mut self, max: Duration) -> Self {
        self.max_stale = max;
        self
    }

    /// The resolver the settings describe (TTL, prefix, stale bound).
    pub fn from_settings(store: Arc<dyn SecretStore>, settings: &Settings) -> Self {
        Self::new(store, settings.secret_ttl, settings.secret_prefix.clone())
            .with_max_stale(settings.secret_max_stale)
    }

    /// The name under which `org`'s credential `label` is stored.
    pub fn name_for(&self, org: &OrgId, label: &str) -> String {
        format!("{}/{org}/{label}", self.prefix)
    }

    /// Refuses a reference outside `<prefix>/<org>/` (422 on the config field `at`).
    pub fn check_scope(
        &self,
        org: &OrgId,
        reference: &CredentialRef,
        at: &str,
    ) -> Result<(), Error> {
        let own = format!("{}/{org}/", self.prefix);
        if reference.name().starts_with(&own) {
            Ok(())
        } else {
            Err(Error::Validation {
                code: "invalid_config",
                message: format!(
                    "credential '{reference}' is not one of this organization's: its name must start with '{own}'"
                ),
                details: vec![Detail::new(at, format!("must start with '{own}'"))],
            })
        }
    }

    /// The secret's value, from cache within the TTL.
    pub async fn resolve(
        &self,
        org: &OrgId,
        reference: &CredentialRef,
    ) -> Result<SecretValue, Error> {
        self.check_scope(org, reference, "/credential")?;
        if let Some(v) = self.fresh(reference) {
            return Ok(v);
        }
        self.failed_recently(reference)?;
        let flight = self.flight(reference);
        let result = {
            let _guard = flight.lock().await;
            // Another call may have fetched (or failed) while this one waited.
            match self.fresh(reference) {
                Some(v) => Ok(v),
                None => match self.failed_recently(reference) {
                    Ok(()) => self.fetch(reference).await,
                    Err(e) => Err(e),
                },
            }
        };
        self.land(reference, flight);
        result
    }

    /// [`Secrets::resolve`] for a config being written: asks the store again even if it said
    /// moments ago that the credential does not exist, since it may just have been stored
    /// through another container.
    pub async fn resolve_for_check(
        &self,
        org: &OrgId,
        reference: &CredentialRef,
    ) -> Result<SecretValue, Error> {
        if let Ok(mut m) = self.missing.lock() {
            m.remove(reference.as_str());
        }
        self.resolve(org, reference).await
    }

    /// The value the store holds now, whatever is cached (the cache takes it): for a value
    /// another container may just have replaced, e.g. a rotating refresh token about to be
    /// spent.
    pub async fn resolve_latest(
        &self,
        org: &OrgId,
        reference: &CredentialRef,
    ) -> Result<SecretValue, Error> {
        self.check_scope(org, reference, "/credential")?;
        let flight = self.flight(reference);
        let result = {
            let _guard = flight.lock().await;
            self.fetch_with(reference, false).await
        };
        self.land(reference, flight);
        result
    }

    /// After an upstream rejected `rejected` (401/403): fetch the secret again, once per
    /// rotation. Returns the new value, or `None` when the store still holds the same one.
    pub async fn refresh(
        &self,
        org: &OrgId,
        reference: &CredentialRef,
        rejected: &SecretValue,
    ) -> Result<Option<SecretValue>, Error> {
        self.check_scope(org, reference, "/credential")?;
        let flight = self.flight(reference);
        let result = {
            let _guard = flight.lock().await;
            if let Some(v) = self.cached(reference).filter(|v| !v.same(rejected)) {
                // A concurrent call already re-fetched.
                Ok(Some(v))
            } else if !self.may_refresh(reference) {
                Ok(None)
            } else {
                match self.fetch(reference).await {
                    Ok(v) => Ok((!v.same(rejected)).then_some(v)),
                    Err(e) => Err(e),
                }
            }
        };
        self.land(reference, flight);
        result
    }

    /// Records a rotation re-fetch, unless one happened within [`REFRESH_INTERVAL`].
    fn may_refresh(&self, reference: &CredentialRef) -> bool {
        let Ok(mut r) = self.refreshed.lock() else {
            return true;
        };
        let now = Instant::now();
        match r.get(reference.as_str()) {
            Some(at) if now.duration_since(*at) < self.refresh_interval => false,
            _ => {
                r.insert(reference.as_str().to_owned(), now);
                true
            }
        }
    }

    /// A 503 within [`FAILURE_GRACE`] of an outage, the same 422 within [`MISSING_GRACE`] of
    /// the store saying the credential does not exist: no store request for either.
    fn failed_recently(&self, reference: &CredentialRef) -> Result<(), Error> {
        let missing = self
            .missing
            .lock()
            .ok()
            .and_then(|m| m.get(reference.as_str()).copied())
            .is_some_and(|at| at.elapsed() < MISSING_GRACE);
        if missing {
            return Err(does_not_exist(reference));
        }
        let recent = self
            .failures
            .lock()
            .ok()
            .and_then(|f| f.get(reference.as_str()).copied())
            .is_some_and(|at| at.elapsed() < FAILURE_GRACE);
        if recent {
            Err(Error::Unavailable(
                "the secret store is unreachable; retry shortly".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Fetches in a detached task: a caller whose own deadline fires mid-fetch (an adapter's
    /// call budget) must not cancel the bookkeeping — stale re-stamp, failure memory — that
    /// spares the next callers the same wait.
    async fn fetch(&self, reference: &CredentialRef) -> Result<SecretValue, Error> {
        self.fetch_with(reference, true).await
    }

    /// [`Secrets::fetch`]; `stale_ok: false` fails with 503 during an outage instead of
    /// serving the cached value.
    async fn fetch_with(
        &self,
        reference: &CredentialRef,
        stale_ok: bool,
    ) -> Result<SecretValue, Error> {
        let book = Book {
            stale_ok,
            store: self.store.clone(),
            entries: self.entries.clone(),
            failures: self.failures.clone(),
            missing: self.missing.clone(),
            ttl: self.ttl,
            max_stale: self.max_stale,
        };
        let reference = reference.clone();
        tokio::spawn(async move { book.fetch(&reference).await })
            .await
            .map_err(|e| Error::internal(format!("secret fetch task: {e}")))?
    }

    fn cached(&self, reference: &CredentialRef) -> Option<SecretValue> {
        cached(&self.entries, reference)
    }

    fn fresh(&self, reference: &CredentialRef) -> Option<SecretValue> {
        let e = self.entries.lock().ok()?;
        e.get(reference.as_str())
            .filter(|e| Instant::now() < e.good_until)
            .map(|e| e.value.clone())
    }

    /// Drops the single-flight lock of `reference` when no other call holds it, so the map
    /// does not grow with every reference ever resolved.
    fn land(&self, reference: &CredentialRef, flight: Arc<tokio::sync::Mutex<()>>) {
        drop(flight);
        if let Ok(mut f) = self.flights.lock()
            && f.get(reference.as_str())
                .is_some_and(|mine| Arc::strong_count(mine) == 1)
        {
            f.remove(reference.as_str());
        }
    }

    fn flight(&self, reference: &CredentialRef) -> Arc<tokio::sync::Mutex<()>> {
        match self.flights.lock() {
            Ok(mut f) => f.entry(reference.as_str().to_owned()).or_default().clone(),
            // A poisoned map only costs the single-flight guarantee.
            Err(_) => Arc::default(),
        }
    }

    /// Writes a new value of `org`'s credential `reference` (an OAuth2 provider rotated its
    /// refresh token); this container uses it from now on. Fails with 503 when the store
    /// cannot be written: the caller decides what that costs.
    pub async fn replace(
        &self,
        org: &OrgId,
        reference: &CredentialRef,
        value: &SecretValue,
    ) -> Result<(), Error> {
        self.check_scope(org, reference, "/credential")?;
        match self.store.update(reference, value).await {
            Ok(()) => {
                if let Ok(mut e) = self.entries.lock() {
                    let now = Instant::now();
                    e.insert(
                        reference.as_str().to_owned(),
                        Entry {
                            good_until: now + self.ttl,
                            fetched: now,
                            value: value.clone(),
                        },
                    );
                }
                Ok(())
            }
            Err(e) => Err(Error::Unavailable(format!(
                "the secret store could not be written: {e}"
            ))),
        }
    }

    /// Writes a secret under `<prefix>/<org>/<label>` and returns its reference.
    pub async fn store(
        &self,
        org: &OrgId,
        label: &str,
        value: &SecretValue,
    ) -> Result<CredentialRef, Error> {
        if !crate::ids::is_valid_name(label) {
            return Err(Error::invalid_field(
                "/name",
                "a credential name is 1 to 64 characters from a-z, A-Z, 0-9, '_' and '-'",
            ));
        }
        let name = self.name_for(org, label);
        match self.store.put(&name, value).await {
            Ok(r) => {
                if let Ok(mut e) = self.entries.lock() {
                    e.remove(r.as_str());
                }
                if let Ok(mut m) = self.missing.lock() {
                    m.remove(r.as_str());
                }
                Ok(r)
            }
            Err(SecretError::Unavailable(cause)) => {
                tracing::error!(credential = %name, %cause, "secret store unavailable");
                Err(Error::Unavailable(
                    "the secret store is unreachable; retry shortly".into(),
                ))
            }
            // E.g. a secret scheduled for deletion, or deleted between create and put.
            Err(e) => Err(Error::conflict(format!(
                "credential '{label}' cannot be written now ({e}); restore or wait for the \
                 pending deletion of that secret, or store the credential under another name"
            ))),
        }
    }
}

fn cached(
    entries: &Mutex<HashMap<String, Entry>>,
    reference: &CredentialRef,
) -> Option<SecretValue> {
    let e = entries.lock().ok()?;
    e.get(reference.as_str()).map(|e| e.value.clone())
}

fn does_not_exist(reference: &CredentialRef) -> Error {
    Error::Validation {
        code: "invalid_config",
        message: format!(
            "credential '{reference}' does not exist; store it first or fix the reference"
        ),
        details: vec![Detail::new("/credential", "does not exist")],
    }
}

/// What a detached fetch needs to record its outcome.
struct Book {
    store: Arc<dyn SecretStore>,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    failures: Arc<Mutex<HashMap<String, Instant>>>,
    missing: Arc<Mutex<HashMap<String, Instant>>>,
    ttl: Duration,
    max_stale: Duration,
    stale_ok: bool,
}

impl Book {
    async fn fetch(&self, reference: &CredentialRef) -> Result<SecretValue, Error> {
        match self.store.fetch(reference).await {
            Ok(v) => {
                self.keep(reference, v.clone(), self.ttl, Instant::now());
                if let Ok(mut f) = self.failures.lock() {
                    f.remove(reference.as_str());
                }
                if let Ok(mut m) = self.missing.lock() {
                    m.remove(reference.as_str());
                }
                Ok(v)
            }
            Err(SecretError::Unavailable(cause)) => {
                let stale = self.entries.lock().ok().and_then(|e| {
                    e.get(reference.as_str())
                        .map(|e| (e.value.clone(), e.fetched))
                });
                match stale {
                    Some((value, fetched))
                        if self.stale_ok && fetched.elapsed() < self.max_stale =>
                    {
                        tracing::warn!(credential = %reference, %cause, "secret store unavailable; serving the cached value");
                        // Never past the bound, however the grace falls.
                        let left = self.max_stale.saturating_sub(fetched.elapsed());
                        let grace = STALE_GRACE.min(self.ttl).min(left);
                        self.keep(reference, value.clone(), grace, fetched);
                        return Ok(value);
                    }
                    Some(_) if !self.stale_ok => {
                        tracing::error!(credential = %reference, %cause,
                            "secret store unavailable; this read must see the stored value, not a cached one");
                    }
                    Some(_) => {
                        tracing::error!(credential = %reference, %cause, max_stale_secs = self.max_stale.as_secs(),
                            "secret store unavailable and the cached value is too old to serve; failing closed");
                    }
                    None => {
                        tracing::error!(credential = %reference, %cause, "secret store unavailable and nothing cached");
                    }
                }
                if let Ok(mut f) = self.failures.lock() {
                    f.insert(reference.as_str().to_owned(), Instant::now());
                }
                Err(Error::Unavailable(
                    "the secret store is unreachable; retry shortly".into(),
                ))
            }
            Err(SecretError::NotFound(_)) => {
                // A deleted secret's old value must not be served again, not even stale.
                if let Ok(mut e) = self.entries.lock() {
                    e.remove(reference.as_str());
                }
                if let Ok(mut m) = self.missing.lock() {
                    m.insert(reference.as_str().to_owned(), Instant::now());
                }
                Err(does_not_exist(reference))
            }
            Err(SecretError::Invalid(m)) => Err(Error::Validation {
                code: "invalid_config",
                message: format!("credential '{reference}' cannot be used: {m}"),
                details: vec![Detail::new("/credential", m)],
            }),
        }
    }

    fn keep(
        &self,
        reference: &CredentialRef,
        value: SecretValue,
        for_: Duration,
        fetched: Instant,
    ) {
        if let Ok(mut e) = self.entries.lock() {
            e.insert(
                reference.as_str().to_owned(),
                Entry {
                    good_until: Instant::now() + for_,
                    fetched,
                    value,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        fetches: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
        missing: std::sync::atomic::AtomicBool,
        value: Mutex<String>,
    }

    #[async_trait]
    impl SecretStore for Counting {
        async fn fetch(&self, _: &CredentialRef) -> Result<SecretValue, SecretError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(SecretError::Unavailable("down".into()));
            }
            if self.missing.load(Ordering::SeqCst) {
                return Err(SecretError::NotFound("no such secret".into()));
            }
            let s = self.value.lock().map(|v| v.clone()).unwrap_or_default();
            SecretValue::from_secret_string(&s)
        }
        async fn put(&self, name: &str, _: &SecretValue) -> Result<CredentialRef, SecretError> {
            CredentialRef::parse(name).map_err(SecretError::Invalid)
        }
    }

    fn setup() -> (Arc<Counting>, Secrets, OrgId, CredentialRef) {
        let store = Arc::new(Counting {
            fetches: AtomicUsize::new(0),
            fail: false.into(),
            missing: false.into(),
            value: Mutex::new(r#"{"token":"s3cr3t-v1"}"#.into()),
        });
        let secrets = Secrets::new(store.clone(), Duration::from_millis(200), "sb")
            .with_refresh_interval(Duration::ZERO);
        let org = OrgId::parse("acme").unwrap();
        let r = CredentialRef::parse("sb/acme/api").unwrap();
        (store, secrets, org, r)
    }

    #[test]
    fn references_parse_names_and_arns() {
        let arn = CredentialRef::parse(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:sb/acme/api-AbCdEf",
        )
        .unwrap();
        assert_eq!(arn.name(), "sb/acme/api-AbCdEf");
        assert!(CredentialRef::parse("has space").is_err());
        assert!(CredentialRef::parse("").is_err());
    }

    #[test]
    fn values_redact() {
        let v = SecretValue::from_secret_string(r#"{"token":"s3cr3t"}"#).unwrap();
        assert!(!format!("{v:?} {v}").contains("s3cr3t"));
        assert_eq!(v.field("token"), Some("s3cr3t"));
        let e = SecretValue::from_secret_string("s3cr3t").unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"));
    }

    #[tokio::test]
    async fn concurrent_misses_fetch_once() {
        let (store, secrets, org, r) = setup();
        let secrets = Arc::new(secrets);
        let calls = (0..16).map(|_| {
            let (s, o, r) = (secrets.clone(), org.clone(), r.clone());
            tokio::spawn(async move { s.resolve(&o, &r).await })
        });
        for c in calls {
            assert_eq!(c.await.unwrap().unwrap().field("token"), Some("s3cr3t-v1"));
        }
        assert_eq!(store.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stale_value_served_when_the_store_fails() {
        let (store, secrets, org, r) = setup();
        secrets.resolve(&org, &r).await.unwrap();
        store.fail.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(250)).await;
        let v = secrets.resolve(&org, &r).await.unwrap();
        assert_eq!(v.field("token"), Some("s3cr3t-v1"));
        assert_eq!(store.fetches.load(Ordering::SeqCst), 2);
        // The outage is remembered: the next calls get the stale value without a fetch each.
        for _ in 0..5 {
            assert!(secrets.resolve(&org, &r).await.is_ok());
        }
        assert_eq!(store.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_value_older_than_the_stale_bound_fails_closed() {
        let (store, secrets, org, r) = setup();
        let secrets = secrets.with_max_stale(Duration::from_millis(1000));
        secrets.resolve(&org, &r).await.unwrap();
        store.fail.store(true, Ordering::SeqCst);
        // Past the TTL, within the bound: the cached value, re-stamped for STALE_GRACE
        // (capped at the 200 ms TTL) without moving the time it was fetched.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(secrets.resolve(&org, &r).await.is_ok());
        tokio::time::sleep(Duration::from_millis(800)).await;
        let e = secrets.resolve(&org, &r).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (503, "dependency_unavailable"));
        let fetches = store.fetches.load(Ordering::SeqCst);
        // Remembered: the next calls fail at once, without a fetch each.
        assert_eq!(secrets.resolve(&org, &r).await.unwrap_err().status(), 503);
        assert_eq!(store.fetches.load(Ordering::SeqCst), fetches);
        // The store back: a fresh value, and the bound counts from it.
        store.fail.store(false, Ordering::SeqCst);
        tokio::time::sleep(FAILURE_GRACE).await;
        assert!(secrets.resolve(&org, &r).await.is_ok());
    }

    #[tokio::test]
    async fn a_missing_secret_is_remembered_briefly_and_forgotten_when_stored() {
        let (store, secrets, org, r) = setup();
        store.missing.store(true, Ordering::SeqCst);
        for _ in 0..5 {
            let e = secrets.resolve(&org, &r).await.unwrap_err();
            assert_eq!((e.status(), e.code()), (422, "invalid_config"));
            assert!(e.to_string().contains("does not exist"), "{e}");
        }
        assert_eq!(store.fetches.load(Ordering::SeqCst), 1);
        // Storing it ends the memory in this container at once.
        store.missing.store(false, Ordering::SeqCst);
        let value = SecretValue::from_secret_string(r#"{"token":"s3cr3t-v2"}"#).unwrap();
        secrets.store(&org, "api", &value).await.unwrap();
        assert!(secrets.resolve(&org, &r).await.is_ok());
        assert_eq!(store.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn nothing_cached_and_store_down_is_503() {
        let (store, secrets, org, r) = setup();
        store.fail.store(true, Ordering::SeqCst);
        let e = secrets.resolve(&org, &r).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (503, "dependency_unavailable"));
        // Concurrent and following calls within the grace answer 503 without a fetch each.
        let secrets = Arc::new(secrets);
        let calls = (0..8).map(|_| {
            let (s, o, r) = (secrets.clone(), org.clone(), r.clone());
            tokio::spawn(async move { s.resolve(&o, &r).await })
        });
        for c in calls {
            assert_eq!(c.await.unwrap().unwrap_err().status(), 503);
        }
        assert_eq!(store.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn rejected_credentials_are_refetched_at_most_once_per_interval() {
        let (store, _, org, r) = setup();
        let secrets = Secrets::new(store.clone(), Duration::from_secs(60), "sb");
        let v = secrets.resolve(&org, &r).await.unwrap();
        for _ in 0..10 {
            assert!(secrets.refresh(&org, &r, &v).await.unwrap().is_none());
        }
        assert_eq!(
            store.fetches.load(Ordering::SeqCst),
            2,
            "one resolve, one refresh"
        );
        assert!(
            secrets.flights.lock().unwrap().is_empty(),
            "single-flight locks are dropped"
        );
    }

    #[tokio::test]
    async fn other_organizations_references_are_refused() {
        let (store, secrets, org, _) = setup();
        let theirs = CredentialRef::parse("sb/globex/api").unwrap();
        let e = secrets.resolve(&org, &theirs).await.unwrap_err();
        assert_eq!(e.status(), 422);
        // Prefix tricks: "sb/acme-evil/…" is not under "sb/acme/".
        let tricky = CredentialRef::parse("sb/acme-evil/api").unwrap();
        assert_eq!(
            secrets.resolve(&org, &tricky).await.unwrap_err().status(),
            422
        );
        assert_eq!(store.fetches.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn refresh_after_rejection_fetches_once_and_reports_rotation() {
        let (store, secrets, org, r) = setup();
        let old = secrets.resolve(&org, &r).await.unwrap();
        // Not rotated: the same value comes back, so the caller gives up.
        assert!(secrets.refresh(&org, &r, &old).await.unwrap().is_none());
        if let Ok(mut v) = store.value.lock() {
            *v = r#"{"token":"s3cr3t-v2"}"#.into();
        }
        let new = secrets.refresh(&org, &r, &old).await.unwrap().unwrap();
        assert_eq!(new.field("token"), Some("s3cr3t-v2"));
        assert_eq!(store.fetches.load(Ordering::SeqCst), 3);
        // The cache now holds the rotated value.
        assert_eq!(
            secrets.resolve(&org, &r).await.unwrap().field("token"),
            Some("s3cr3t-v2")
        );
    }
}
