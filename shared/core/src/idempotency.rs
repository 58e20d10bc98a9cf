//! Idempotent tool calls (the Powertools for AWS Lambda model): a retried call with a side
//! effect gets the first call's result instead of running again.
//!
//! A record per (org, plugin, function, key) in the platform's data table, whatever data
//! adapter the instance uses: written `IN_PROGRESS` by a create-only put (or by a versioned
//! replace of an expired record), then `COMPLETED` with the result, or deleted when the call
//! fails so that a retry runs it again. DynamoDB's TTL deletes records late, so expiry is
//! always checked here as well.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::error::Error;
use crate::ids::{FunctionName, OrgId, PluginName};
use crate::ports::{ItemStore, Key, Precondition, StoreError};
use crate::registry::sha256_hex;

/// How long a completed call is replayed: a voice platform's retries come within seconds,
/// a client's own within a day.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long an unfinished record holds its key: longer than a plugin function may run (20 s,
/// template.yaml), so a live call is never run twice, and short enough that a crashed
/// attempt's retry proceeds within seconds.
pub const IN_PROGRESS_WINDOW: Duration = Duration::from_secs(25);
/// How long a record keyed by Retell's call id (and arguments) replays: Retell retries
/// within seconds of a failure.
pub const RETELL_RETRY_WINDOW: Duration = Duration::from_secs(120);
/// How long a repeat waits for the first call to finish before answering 409.
const WAIT_FOR_FIRST: Duration = Duration::from_millis(2_000);
/// How long a call that has its answer spends completing or releasing its record, at most.
pub const BOOKKEEPING_BUDGET: Duration = Duration::from_secs(3);
/// The longest replay window an organization may set (a week, in hours).
pub const MAX_IDEMPOTENCY_TTL_HOURS: u64 = 168;
/// The longest `Idempotency-Key` accepted.
pub const MAX_KEY_LEN: usize = 255;

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

/// What identifies a call for idempotency, before it is scoped to the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The `Idempotency-Key` header (with a Vapi tool call's id when a batch carries it).
    Header(String),
    /// Vapi's `toolCall.id`.
    ToolCall(String),
    /// Retell's `call.call_id`: with the function and the arguments' hash it makes the key.
    RetellCall(String),
    /// A signed webhook's signature, as a hash (the signature itself stays out of records
    /// and audit entries): a platform's retry or a replay signs the same.
    Webhook(String),
}

impl KeySource {
    /// The key as the caller or platform gave it.
    pub fn id(&self) -> &str {
        match self {
            Self::Header(k) | Self::ToolCall(k) | Self::RetellCall(k) | Self::Webhook(k) => k,
        }
    }
}

/// Checks an `Idempotency-Key` header: 400 unless 1 to 255 visible ASCII characters.
pub fn header_key(raw: &str) -> Result<String, Error> {
    let ok = (1..=MAX_KEY_LEN).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Error::invalid_request(format!(
            "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} visible ASCII characters (a UUID is a good key)"
        )))
    }
}

/// The idempotency store: the table and the windows.
pub struct Idempotency {
    table: Arc<dyn ItemStore>,
    ttl: Duration,
    in_progress: Duration,
    wait: Duration,
    /// How long completing or releasing a record may take once the call has its answer.
    bookkeeping: Duration,
}

/// What [`Idempotency::begin`] decided.
#[derive(Debug)]
pub enum Begin {
    /// Run the call, then [`Idempotency::complete`] or [`Idempotency::abandon`] the claim.
    Proceed(Claim),
    /// The call ran before: this is its result.
    Replay(Value),
}

/// The record this call holds while it runs.
#[derive(Debug)]
pub struct Claim {
    key: Key,
    version: u64,
    payload_hash: String,
    ttl: Duration,
    /// Written into the record: a write whose answer was lost (the SDK retried it and met
    /// its own record) is recognised as this call's.
    token: String,
}

impl Claim {
    /// Where the record is.
    pub fn key(&self) -> &Key {
        &self.key
    }
}

/// One call as idempotency sees it: whose, which function, which key and which arguments.
pub struct CallKey<'a> {
    pub org: &'a OrgId,
    pub plugin: &'a PluginName,
    pub function: &'a FunctionName,
    pub source: &'a KeySource,
    pub params: &'a Value,
}

impl CallKey<'_> {
    /// Where this call's record is.
    pub fn record_key(&self) -> Key {
        self.record().0
    }

    /// The record's key (the tenant scope and the caller's key, hashed) and the arguments'
    /// hash.
    fn record(&self) -> (Key, String) {
        let payload_hash = sha256_hex(canonical(self.params).as_bytes());
        let key = match self.source {
            KeySource::Header(k) => format!("header\n{k}"),
            KeySource::ToolCall(id) => format!("tool-call\n{id}"),
            KeySource::RetellCall(id) => format!("retell\n{id}\n{payload_hash}"),
            KeySource::Webhook(id) => format!("webhook\n{id}"),
        };
        let scoped = format!("{}\n{}\n{}\n{key}", self.org, self.plugin, self.function);
        let id = sha256_hex(scoped.as_bytes());
        (
            Key::new(
                format!("IDEM#{}#{}#{}#{id}", self.org, self.plugin, self.function),
                "IDEM",
            ),
            payload_hash,
        )
    }
}

impl Idempotency {
    pub fn new(table: Arc<dyn ItemStore>) -> Self {
        Self {
            table,
            ttl: DEFAULT_TTL,
            in_progress: IN_PROGRESS_WINDOW,
            wait: WAIT_FOR_FIRST,
            bookkeeping: BOOKKEEPING_BUDGET,
        }
    }

    /// Replaces the windows (tests shorten them).
    pub fn with_windows(mut self, ttl: Duration, in_progress: Duration, wait: Duration) -> Self {
        self.ttl = ttl;
        self.in_progress = in_progress;
        self.wait = wait;
        self
    }

    /// How long a completed call is replayed: the organization's window (`org_ttl`, else
    /// the platform's), but only Retell's quick retries for Retell's derived keys.
    fn ttl_for(&self, source: &KeySource, org_ttl: Option<Duration>) -> Duration {
        let ttl = org_ttl.unwrap_or(self.ttl);
        match source {
            // A conversation may legitimately repeat a call (book, cancel, book the same
            // time again): only Retell's own quick retries should meet the record.
            KeySource::RetellCall(_) => ttl.min(RETELL_RETRY_WINDOW),
            KeySource::Header(_) | KeySource::ToolCall(_) | KeySource::Webhook(_) => ttl,
        }
    }

    /// The deadline a request's repeats wait until for first calls still running: one per
    /// request, so a batch of calls waits once, not once per call.
    pub fn wait_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.wait
    }

    /// Claims the key for this call, or returns the result of the call that claimed it.
    /// The same key with other arguments is 422; a first call still running at `deadline`
    /// is 409 with a retry hint. `org_ttl` is the organization's replay window, if it set one.
    pub async fn begin(
        &self,
        call: &CallKey<'_>,
        deadline: tokio::time::Instant,
        org_ttl: Option<Duration>,
    ) -> Result<Begin, Error> {
        self.begin_as(call, deadline, org_ttl, new_token()).await
    }

    /// [`begin`](Self::begin) with the claim's token chosen by the caller, which can then
    /// release a claim whose `begin` it dropped ([`release_if_ours`](Self::release_if_ours)).
    pub async fn begin_as(
        &self,
        call: &CallKey<'_>,
        deadline: tokio::time::Instant,
        org_ttl: Option<Duration>,
        token: String,
    ) -> Result<Begin, Error> {
        let (key, payload_hash) = call.record();
        let ttl = self.ttl_for(call.source, org_ttl);
        let mut pause = Duration::from_millis(10);
        let mut claim_first = true;
        // The version of the claim this call holds, once it holds one.
        let version = loop {
            // Real time, not the call's clock: expiry is the table's TTL's business.
            let now = SystemTime::now();
            let fresh = self.in_progress_record(&payload_hash, &token, now, ttl);
            if claim_first
                && let Some(version) = self
                    .try_claim(&key, &fresh, Precondition::NotExists)
                    .await?
            {
                break version;
            }
            let Some(found) = self.table.get(&key).await? else {
                claim_first = true; // released by a failed first call: claim it again
                continue;
            };
            let record = &found.data;
            if record["status"] == IN_PROGRESS && record["claim"].as_str() == Some(token.as_str()) {
                // Our own claim: the write landed and its answer was lost.
                break found.version;
            }
            let secs = epoch_secs(now);
            let live = number(record, "expires_at") > secs;
            if live && record["payload_hash"].as_str() != Some(payload_hash.as_str()) {
                return Err(Error::Validation {
                    code: "idempotency_key_reused",
                    message: "this idempotency key was used for a call with other arguments; send a new key for a new call".into(),
                    details: Vec::new(),
                });
            }
            let dead = !live
                || (record["status"] == IN_PROGRESS
                    && number(record, "in_progress_until_ms") <= epoch_millis(now));
            if dead {
                // Take the dead record over at the version read: one of several racers wins.
                let pre = Precondition::Version(found.version);
                if let Some(version) = self.try_claim(&key, &fresh, pre).await? {
                    break version;
                }
                claim_first = false;
                continue;
            }
            if record["status"] == COMPLETED {
                // Stored as text: a store's number types must not reshape the answer.
                let result = record["result"]
                    .as_str()
                    .and_then(|t| serde_json::from_str(t).ok())
                    .ok_or_else(|| {
                        Error::internal(format!("idempotency record {key} has no readable result"))
                    })?;
                return Ok(Begin::Replay(result));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Conflict {
                    code: "request_in_progress",
                    message: "a call with this idempotency key is still running; retry in a second to get its result".into(),
                });
            }
            // Poll by reading only: a claim attempt would spend a write each time.
            claim_first = false;
            tokio::time::sleep(
                pause.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
            pause = (pause * 2).min(Duration::from_millis(200));
        };
        Ok(Begin::Proceed(Claim {
            key,
            version,
            payload_hash,
            ttl,
            token,
        }))
    }

    /// Writes a claim on the precondition: its version, or `None` when another call's
    /// record stands in the way.
    async fn try_claim(
        &self,
        key: &Key,
        fresh: &Value,
        pre: Precondition,
    ) -> Result<Option<u64>, Error> {
        match self
            .table
            .put_expiring(key, fresh, pre, fresh_expiry(fresh))
            .await
        {
            Ok(version) => Ok(Some(version)),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn in_progress_record(
        &self,
        payload_hash: &str,
        token: &str,
        now: SystemTime,
        ttl: Duration,
    ) -> Value {
        let secs = epoch_secs(now);
        let in_progress_ms = u64::try_from(self.in_progress.as_millis()).unwrap_or(u64::MAX);
        json!({
            "status": IN_PROGRESS,
            "payload_hash": payload_hash,
            "claim": token,
            "in_progress_until_ms": epoch_millis(now).saturating_add(in_progress_ms),
            // Whole seconds, as DynamoDB's TTL reads them; never before the claim lapses.
            "expires_at": secs.saturating_add(ttl.as_secs().max(self.in_progress.as_secs() + 1)),
        })
    }

    /// Stores the call's result for its repeats. A failure to store is logged, not returned:
    /// the call itself succeeded, and its record expires as an unfinished one would.
    pub async fn complete(&self, claim: Claim, result: &Value) {
        let expires_at = epoch_secs(SystemTime::now()).saturating_add(claim.ttl.as_secs());
        let record = json!({
            "status": COMPLETED,
            "payload_hash": claim.payload_hash,
            "claim": claim.token,
            "expires_at": expires_at,
            "result": result.to_string(),
        });
        let written = async {
            match self
                .table
                .put_expiring(
                    &claim.key,
                    &record,
                    Precondition::Version(claim.version),
                    expires_at,
                )
                .await
            {
                Ok(_) => Ok(()),
                // The version moved: by this very write if its answer was lost.
                Err(StoreError::Conflict { .. }) => match self.table.get(&claim.key).await? {
                    Some(found)
                        if found.data["status"] == COMPLETED
                            && found.data["claim"].as_str() == Some(claim.token.as_str()) =>
                    {
                        Ok(())
                    }
                    _ => Err(StoreError::Internal(
                        "another call took the record over".into(),
                    )),
                },
                Err(e) => Err(e),
            }
        };
        let e = match tokio::time::timeout(self.bookkeeping, written).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.bookkeeping.as_millis()),
        };
        tracing::warn!(error = %e, "idempotency record not completed; a retry after the in-progress window runs the call again");
    }

    /// Releases `key` if its record is an unfinished claim made with `token`: for a `begin`
    /// dropped before it answered, whose claim may have landed.
    pub async fn release_if_ours(&self, key: &Key, token: &str) {
        let released = async {
            match self.table.get(key).await? {
                Some(found)
                    if found.data["status"] == IN_PROGRESS
                        && found.data["claim"].as_str() == Some(token) =>
                {
                    self.table
                        .delete(key, Precondition::Version(found.version))
                        .await
                        .map(|_| ())
                }
                _ => Ok(()),
            }
        };
        match tokio::time::timeout(self.bookkeeping, released).await {
            Ok(Ok(()) | Err(StoreError::Conflict { .. })) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "idempotency claim of a call cut off not released; it expires after the in-progress window")
            }
            Err(_) => tracing::warn!(
                "idempotency claim of a call cut off not released in time; it expires after the in-progress window"
            ),
        }
    }

    /// Releases the key after a failed call, so that a retry runs it again.
    pub async fn abandon(&self, claim: Claim) {
        let deleted = self
            .table
            .delete(&claim.key, Precondition::Version(claim.version));
        let e = match tokio::time::timeout(self.bookkeeping, deleted).await {
            Ok(Ok(_) | Err(StoreError::Conflict { .. })) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.bookkeeping.as_millis()),
        };
        tracing::warn!(error = %e, "idempotency record not released; it expires after the in-progress window");
    }
}

/// A token no other claim has: a random number drawn once per container, and a counter.
pub fn new_token() -> String {
    static SEED: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        use std::io::Read;
        let mut bytes = [0u8; 8];
        match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
            Ok(()) => u64::from_le_bytes(bytes),
            // The clock's nanoseconds and the process id still tell containers apart.
            Err(_) => {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
                    .rotate_left(17)
                    ^ u64::from(std::process::id())
            }
        }
    });
    format!("{seed:016x}{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn fresh_expiry(record: &Value) -> u64 {
    number(record, "expires_at")
}

fn number(record: &Value, field: &str) -> u64 {
    record[field].as_u64().unwrap_or(0)
}

/// JSON with object keys sorted at every level, so equal arguments hash equally whatever
/// order a client sent them in.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, {"q": 2, "p": 1}], "x": "s"}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a": {"x": "s", "y": [1, {"p": 1, "q": 2}]}, "b": 1}"#)
                .unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(
            canonical(&a),
            r#"{"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1}"#
        );
    }

    #[test]
    fn header_keys_are_bounded_visible_ascii() {
        assert!(header_key("3f1c-uuid-like").is_ok());
        for bad in ["", "with space", "é", &"k".repeat(256)] {
            let e = header_key(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn keys_are_scoped_by_org_plugin_and_function() {
        let params = json!({"a": 1});
        let source = KeySource::Header("k1".into());
        let org = OrgId::parse("acme").unwrap();
        let other = OrgId::parse("globex").unwrap();
        let plugin = PluginName::parse("support").unwrap();
        let f = FunctionName::parse("CreateTicket").unwrap();
        let g = FunctionName::parse("AddTicketComment").unwrap();
        let key = |org, function| {
            CallKey {
                org,
                plugin: &plugin,
                function,
                source: &source,
                params: &params,
            }
            .record()
            .0
        };
        assert_ne!(key(&org, &f), key(&other, &f));
        assert_ne!(key(&org, &f), key(&org, &g));
        assert!(
            key(&org, &f)
                .pk
                .starts_with("IDEM#acme#support#CreateTicket#")
        );
    }
}
