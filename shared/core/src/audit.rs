//! The audit log: one entry per tool call (every route: plugin, voice platform, tool-call
//! event, Bedrock), per admin write and per refused request an organization can be named
//! for, kept under the organization in the platform's data table.
//!
//! An entry holds who (org, channel, key id), what (route, plugin, function, the SHA-256
//! of the canonical parameters, never their values), how it went (status, error code,
//! latency, replayed) and the request and idempotency ids. Layout: partition
//! `AUDIT#<org>#<UTC day>#<shard>` (the request id picks one of [`SHARDS`], so a busy
//! organization spreads its writes over several partitions a day), sort key
//! `<inverted epoch µs>#<request id>#<n>#<hash of the entry>`, so a range read returns
//! newest first and two entries never share a key. Entries
//! expire with the table's TTL after the organization's retention (90 days by default).
//!
//! Writing never fails a call: an entry that cannot be stored is logged in full at ERROR
//! (`audit entry not stored`, the log group keeps it) and counted
//! ([`AuditLog::failures`]). It is written before the call answers, so a call that
//! succeeded has its entry (or that log line) whatever happens to the container after.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Error;
use crate::ids::OrgId;
use crate::ports::{ItemStore, Key, Precondition, SkRange, StoreError};
use crate::registry::{OrgProfile, Registry, sha256_hex};

/// The scope that reads an organization's audit log (`admin:write` includes it).
pub const SCOPE: &str = "audit:read";
/// The CloudWatch metric counting entries that could not be stored (template alarm).
pub const METRIC_NOT_STORED: &str = "AuditEntriesNotStored";
/// Partitions per organization and day.
pub const SHARDS: u32 = 8;
/// How long entries are kept unless the organization's profile says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
/// The longest retention a profile may set (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;
/// A page holds at most this many entries.
pub const MAX_PAGE: usize = 200;
/// Entries one query request reads at most (matching or not), and days it walks at most:
/// a filter that matches little returns fewer entries and a cursor to go on from.
const READ_BUDGET: usize = 2000;
/// Entries read from each shard per step, whatever the page size: a small page with a
/// filter that matches little still moves on in large steps.
const SHARD_PAGE: usize = 100;
/// The longest sort key an entry has (16 digits, a request id of up to 256, the rest).
const MAX_SORT_KEY: usize = 16 + 1 + 256 + 1 + 4 + 1 + 12;
const DAYS_PER_REQUEST: usize = 31;
/// Above every epoch microsecond until the year 2286, in 16 digits.
const INVERT: u64 = 9_999_999_999_999_999;
const INVERT_DIGITS: usize = 16;
const DAY_MS: u64 = 86_400_000;
const DAY_US: u64 = 86_400_000_000;

/// One audited request or tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When it started, RFC 3339 (UTC, microseconds).
    pub at: String,
    pub org: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// `POST /plugins/booking`, `retell`, `vapi`, `mcp`, `bedrock`, or an admin write's
    /// method and path.
    pub route: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub latency_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub replayed: bool,
    pub request_id: String,
    /// SHA-256 (hex) of the canonical JSON of the parameters or body; never the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_sha256: Option<String>,
}

/// What an entry is, before the time and outcome are known.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub org: Option<OrgId>,
    pub channel: Option<String>,
    pub key_id: Option<String>,
    pub route: String,
    pub plugin: Option<String>,
    pub function: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_id: String,
    pub params_sha256: Option<String>,
}

impl Subject {
    /// The entry for an outcome: `status`, the error's code when it failed.
    pub fn entry(
        self,
        org: &OrgId,
        started: SystemTime,
        latency: Duration,
        status: u16,
        error_code: Option<&str>,
        replayed: bool,
    ) -> AuditEntry {
        AuditEntry {
            at: rfc3339(epoch_us(started)),
            org: org.to_string(),
            channel: self.channel,
            key_id: self.key_id,
            route: self.route,
            plugin: self.plugin,
            function: self.function,
            status,
            error_code: error_code.map(str::to_owned),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            idempotency_key: self.idempotency_key,
            replayed,
            request_id: self.request_id,
            params_sha256: self.params_sha256,
        }
    }
}

/// How long an organization's entries are kept: its profile's `audit_retention_days`, held
/// to the range the admin API allows (a profile written around it too), or the default.
pub fn retention_days(profile: Option<&OrgProfile>) -> u32 {
    profile
        .and_then(|p| p.audit_retention_days)
        .map_or(DEFAULT_RETENTION_DAYS, |d| d.clamp(1, MAX_RETENTION_DAYS))
}

/// [`retention_days`] of `org`'s stored profile; the default when it cannot be read, since
/// the entry is written whatever happened.
pub async fn retention_of(registry: &Registry, org: &OrgId) -> u32 {
    match registry.get_profile(org).await {
        Ok(p) => retention_days(p.as_ref().map(|p| &p.value)),
        Err(e) => {
            tracing::warn!(error = %e, "profile unreadable; audit entry kept for the default retention");
            DEFAULT_RETENTION_DAYS
        }
    }
}

impl Subject {
    /// The entry of a request refused with `e` before any function ran.
    pub fn refused(
        self,
        org: &OrgId,
        started_at: SystemTime,
        started: std::time::Instant,
        e: &Error,
    ) -> AuditEntry {
        self.entry(
            org,
            started_at,
            started.elapsed(),
            e.status(),
            Some(e.code()),
            false,
        )
    }
}

/// The hash an entry keeps of `params`: SHA-256 of their canonical JSON.
pub fn params_hash(params: &Value) -> String {
    sha256_hex(crate::idempotency::canonical(params).as_bytes())
}

/// How long a call waits for its entry to be stored before logging it instead.
pub const WRITE_BUDGET: Duration = Duration::from_secs(3);

/// The audit log over one table.
pub struct AuditLog {
    table: Arc<dyn ItemStore>,
    failures: AtomicU64,
}

impl AuditLog {
    pub fn new(table: Arc<dyn ItemStore>) -> Self {
        Self {
            table,
            failures: AtomicU64::new(0),
        }
    }

    /// Entries this container could not store since it started (each logged instead).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Stores `entry` (the `seq`-th of its request) for `retention_days`; never fails the
    /// caller. A retry of a write that landed finds the entry there and counts as stored.
    pub async fn record(&self, entry: &AuditEntry, seq: usize, retention_days: u32) {
        self.record_within(entry, seq, retention_days, WRITE_BUDGET)
            .await;
    }

    /// [`record`](Self::record), waiting at most `budget` for the write.
    pub async fn record_within(
        &self,
        entry: &AuditEntry,
        seq: usize,
        retention_days: u32,
        budget: Duration,
    ) {
        let Ok(org) = OrgId::parse(entry.org.as_str()) else {
            return self.lost(entry, "the entry names no valid organization");
        };
        let Some(at_us) = parse_us(&entry.at) else {
            return self.lost(entry, "the entry's time is unreadable");
        };
        let Ok(text) = serde_json::to_string(entry) else {
            return self.lost(entry, "the entry cannot be serialised");
        };
        let key = entry_key(
            &org,
            at_us,
            &entry.request_id,
            seq,
            &sha256_hex(text.as_bytes())[..12],
        );
        let expires_at = at_us / 1_000_000 + u64::from(retention_days.max(1)) * 86_400;
        let mut data = match serde_json::to_value(entry) {
            Ok(v) => v,
            Err(e) => return self.lost(entry, &e.to_string()),
        };
        data["expiresAt"] = json!(expires_at);
        let written = self
            .table
            .put_expiring(&key, &data, Precondition::NotExists, expires_at);
        match tokio::time::timeout(budget, written).await {
            Ok(Ok(_) | Err(StoreError::Conflict { .. })) => {}
            Ok(Err(e)) => self.lost(entry, &e.to_string()),
            Err(_) => self.lost(
                entry,
                &format!("no answer within {} ms", budget.as_millis()),
            ),
        }
    }

    fn lost(&self, entry: &AuditEntry, cause: &str) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let entry = serde_json::to_string(entry).unwrap_or_default();
        tracing::error!(audit_failures = failures, cause, entry = %entry, "audit entry not stored");
        crate::telemetry::count_failure(METRIC_NOT_STORED, 1);
    }

    /// One page of `org`'s entries matching `q`, newest first, and the cursor to the next.
    pub async fn query(
        &self,
        org: &OrgId,
        q: &AuditQuery,
        now: SystemTime,
    ) -> Result<AuditPage, Error> {
        let now_ms = epoch_ms(now);
        let (from_us, to_us) = q.micros();
        let (mut day, mut after) = match &q.cursor {
            Some(c) => (c.day, c.after.clone()),
            None => (to_us / DAY_US, None),
        };
        let first_day = from_us / DAY_US;
        let (lo, hi) = bounds(from_us, to_us);
        let cursor = |day, after| {
            Some(Cursor {
                from_ms: q.from_ms,
                to_ms: q.to_ms,
                day,
                after,
            })
        };
        let mut entries = Vec::new();
        let mut read = 0;
        let mut days = 0;
        loop {
            // One step: up to a page from every shard, merged; complete up to the first
            // full shard page's last key.
            let pages = futures_util::future::join_all((0..SHARDS).map(|shard| {
                let pk = partition(org, day, shard);
                let range = SkRange::Between(lo.clone(), hi.clone());
                let after = after.clone();
                let table = self.table.clone();
                async move {
                    table
                        .query_range(&pk, &range, after.as_deref(), Some(SHARD_PAGE))
                        .await
                }
            }))
            .await;
            let mut items = Vec::new();
            let mut complete_to: Option<String> = None;
            for page in pages {
                let page = page?;
                if page.next.is_some()
                    && let Some(last) = page.items.last()
                    && complete_to.as_ref().is_none_or(|c| last.key.sk < *c)
                {
                    complete_to = Some(last.key.sk.clone());
                }
                items.extend(page.items);
            }
            items.sort_by(|a, b| a.key.sk.cmp(&b.key.sk));
            let mut stopped_at: Option<String> = None;
            for item in items {
                if complete_to.as_ref().is_some_and(|c| item.key.sk > *c) {
                    break;
                }
                read += 1;
                stopped_at = Some(item.key.sk.clone());
                let expired = item.data["expiresAt"]
                    .as_u64()
                    .is_some_and(|x| x.saturating_mul(1000) <= now_ms);
                if expired {
                    continue;
                }
                let Ok(entry) = serde_json::from_value::<AuditEntry>(item.data) else {
                    continue;
                };
                if q.matches(&entry) {
                    entries.push(entry);
                    if entries.len() == q.limit {
                        break;
                    }
                }
            }
            if entries.len() == q.limit {
                let next = cursor(day, stopped_at.or(after));
                return Ok(AuditPage { entries, next });
            }
            if complete_to.is_some() {
                // More of this day: everything up to `stopped_at` has been read.
                after = stopped_at.or(after);
            } else {
                if day <= first_day {
                    return Ok(AuditPage {
                        entries,
                        next: None,
                    });
                }
                day -= 1;
                days += 1;
                after = None;
            }
            if read >= READ_BUDGET || days >= DAYS_PER_REQUEST {
                // Not done, but this request has read its share: go on from here.
                let next = cursor(day, after);
                return Ok(AuditPage { entries, next });
            }
        }
    }
}

/// A query of the audit log: `from`, `to` (epoch ms), the filters, the page.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub from_ms: u64,
    pub to_ms: u64,
    pub plugin: Option<String>,
    pub function: Option<String>,
    pub status: Option<StatusFilter>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

/// `status=409` or `status=4xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Exact(u16),
    Class(u16),
}

impl AuditQuery {
    /// From the query string: `from` and `to` (epoch ms or RFC 3339; the last 24 hours by
    /// default), `plugin`, `function`, `status` (`409` or `4xx`), `limit` (1 to 200, 50),
    /// `cursor`. 400 naming the parameter when one is malformed.
    pub fn parse(params: &[(String, String)], now: SystemTime) -> Result<Self, Error> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let now_ms = epoch_ms(now);
        let time = |name: &str, default: u64| -> Result<u64, Error> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .or_else(|| parse_ms(v))
                    .ok_or_else(|| {
                        Error::invalid_request(format!(
                            "{name} must be epoch milliseconds or an RFC 3339 time such as 2026-12-07T09:00:00Z, not '{}'",
                            v.chars().take(64).collect::<String>()
                        ))
                    }),
            }
        };
        // Nothing is newer than now (a minute's clock skew aside), nothing older than the
        // longest retention: the walk back day by day stays bounded whatever is asked.
        let newest = now_ms.saturating_add(60_000);
        let oldest = now_ms.saturating_sub(u64::from(MAX_RETENTION_DAYS) * DAY_MS);
        let to_ms = time("to", now_ms)?.min(newest);
        let from_ms = time("from", to_ms.saturating_sub(DAY_MS))?.max(oldest);
        if from_ms > to_ms {
            return Err(Error::invalid_request("from must not be after to"));
        }
        let status = match get("status") {
            None => None,
            Some(s) => Some(parse_status(s).ok_or_else(|| {
                Error::invalid_request(format!(
                    "status must be an HTTP status such as 409 or a class such as 4xx, not '{}'",
                    s.chars().take(16).collect::<String>()
                ))
            })?),
        };
        let limit = match get("limit") {
            None => 50,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| Error::invalid_request(format!("limit must be 1 to {MAX_PAGE}")))?,
        };
        let bad_cursor = || {
            Error::invalid_request(
                "the cursor is not one this API returned; start again without it",
            )
        };
        // A cursor goes on with the window it was made for: `to` defaults to now, which
        // moves between pages.
        let (from_ms, to_ms, cursor) = match get("cursor") {
            None => (from_ms, to_ms, None),
            // `from` and `to` are the cursor's: those of its first page, clamped then.
            Some(c) => {
                let mut c = Cursor::parse(c).ok_or_else(bad_cursor)?;
                c.from_ms = c.from_ms.max(oldest);
                c.to_ms = c.to_ms.min(newest);
                let (from_us, to_us) = micros(c.from_ms, c.to_ms);
                let (lo, hi) = bounds(from_us, to_us);
                let in_range = (from_us / DAY_US..=to_us / DAY_US).contains(&c.day)
                    && c.after.as_ref().is_none_or(|a| lo <= *a && *a <= hi);
                if c.from_ms > c.to_ms || !in_range {
                    return Err(bad_cursor());
                }
                (c.from_ms, c.to_ms, Some(c))
            }
        };
        Ok(Self {
            from_ms,
            to_ms,
            plugin: get("plugin").map(str::to_owned),
            function: get("function").map(str::to_owned),
            status,
            limit,
            cursor,
        })
    }

    fn micros(&self) -> (u64, u64) {
        micros(self.from_ms, self.to_ms)
    }

    fn matches(&self, e: &AuditEntry) -> bool {
        let (from, to) = self.micros();
        let at = parse_us(&e.at).unwrap_or(0);
        (from..=to).contains(&at)
            && self
                .plugin
                .as_ref()
                .is_none_or(|p| e.plugin.as_ref() == Some(p))
            && self
                .function
                .as_ref()
                .is_none_or(|f| e.function.as_ref() == Some(f))
            && match self.status {
                None => true,
                Some(StatusFilter::Exact(s)) => e.status == s,
                Some(StatusFilter::Class(c)) => e.status / 100 == c,
            }
    }
}

fn parse_status(s: &str) -> Option<StatusFilter> {
    if let Some(class) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
        return class
            .parse::<u16>()
            .ok()
            .filter(|c| (1..=5).contains(c))
            .map(StatusFilter::Class);
    }
    s.parse::<u16>()
        .ok()
        .filter(|s| (100..=599).contains(s))
        .map(StatusFilter::Exact)
}

/// Whether `s` has the shape of an entry's sort key ([`entry_key`]).
fn is_sort_key(s: &str) -> bool {
    let parts: Vec<&str> = s.split('#').collect();
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    s.len() <= MAX_SORT_KEY
        && parts.len() >= 4
        && digits(parts[0], INVERT_DIGITS)
        && parts.get(parts.len() - 2).is_some_and(|p| digits(p, 4))
        && parts
            .last()
            .is_some_and(|p| p.len() == 12 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `[from, to]` in microseconds, `to`'s whole millisecond included.
fn micros(from_ms: u64, to_ms: u64) -> (u64, u64) {
    (
        from_ms.saturating_mul(1000),
        to_ms.saturating_mul(1000).saturating_add(999),
    )
}

/// The sort keys of `[from, to]`: inverted, so `to` bounds from below.
fn bounds(from_us: u64, to_us: u64) -> (String, String) {
    (
        format!("{:016}", INVERT - to_us.min(INVERT)),
        format!("{:016}~", INVERT - from_us.min(INVERT)),
    )
}

/// Where a page ended: the query's window, the day, and the last sort key read there
/// (none: the day is to be read from its start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    from_ms: u64,
    to_ms: u64,
    day: u64,
    after: Option<String>,
}

impl Cursor {
    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}|{}|{}|{}",
            self.from_ms,
            self.to_ms,
            self.day,
            self.after.as_deref().unwrap_or("")
        ))
    }

    fn parse(token: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        let mut parts = raw.splitn(4, '|');
        let (from, to, day, after) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let after = match after {
            "" => None,
            a if is_sort_key(a) => Some(a.to_owned()),
            _ => return None,
        };
        Some(Self {
            from_ms: from.parse().ok()?,
            to_ms: to.parse().ok()?,
            day: day.parse().ok()?,
            after,
        })
    }
}

/// One page of entries, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<Cursor>,
}

impl AuditPage {
    pub fn to_json(&self) -> Value {
        json!({
            "entries": self.entries,
            "count": self.entries.len(),
            "next": self.next.as_ref().map(Cursor::token),
        })
    }
}

fn partition(org: &OrgId, day: u64, shard: u32) -> String {
    format!("AUDIT#{org}#{}#{shard}", day_name(day))
}

/// `nonce`: a hash of the entry, so a retried write of one entry finds itself there while
/// two different entries never share a key.
fn entry_key(org: &OrgId, at_us: u64, request_id: &str, seq: usize, nonce: &str) -> Key {
    let shard =
        u32::from_str_radix(&sha256_hex(request_id.as_bytes())[..8], 16).map_or(0, |h| h % SHARDS);
    // At most 256 bytes, so every key fits [`MAX_SORT_KEY`] (and DynamoDB's 1 KiB).
    let mut end = request_id.len().min(256);
    while !request_id.is_char_boundary(end) {
        end -= 1;
    }
    let request_id = &request_id[..end];
    Key::new(
        partition(org, at_us / DAY_US, shard),
        format!(
            "{:016}#{request_id}#{seq:04}#{nonce}",
            INVERT - at_us.min(INVERT)
        ),
    )
}

fn day_name(day: u64) -> String {
    let ms = i64::try_from(day.saturating_mul(DAY_MS)).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| day.to_string())
}

pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn epoch_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn rfc3339(us: u64) -> String {
    let us = i64::try_from(us).unwrap_or(i64::MAX);
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

fn parse_ms(s: &str) -> Option<u64> {
    let t: jiff::Timestamp = s.parse().ok()?;
    u64::try_from(t.as_millisecond()).ok()
}

fn parse_us(s: &str) -> Option<u64> {
    let t: jiff::Timestamp = s.parse().ok()?;
    u64::try_from(t.as_microsecond()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_newest_first_and_spread_over_shards() {
        let org = OrgId::parse("acme").unwrap();
        let a = entry_key(&org, 1_765_000_000_000_000, "r1", 0, "n");
        let b = entry_key(&org, 1_765_000_000_000_001, "r1", 0, "n");
        assert!(b.sk < a.sk, "later sorts first");
        assert!(a.pk.starts_with("AUDIT#acme#2025-12-06#"), "{}", a.pk);
        let shards: std::collections::HashSet<String> = (0..64)
            .map(|i| entry_key(&org, 1_765_000_000_000_000, &format!("req-{i}"), 0, "n").pk)
            .collect();
        assert_eq!(shards.len(), SHARDS as usize);
    }

    /// The query `pairs` make at 2025-12-06T05:46:40Z.
    fn parse_at_test_now(pairs: &[(&str, &str)]) -> Result<AuditQuery, Error> {
        let now = UNIX_EPOCH + Duration::from_millis(1_765_000_000_000);
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AuditQuery::parse(&v, now)
    }

    #[test]
    fn queries_parse_and_bad_parameters_are_named() {
        let p = parse_at_test_now;
        let q = p(&[]).unwrap();
        assert_eq!((q.to_ms - q.from_ms, q.limit), (DAY_MS, 50));
        let q = p(&[
            ("from", "2025-12-01T00:00:00Z"),
            ("status", "4xx"),
            ("plugin", "crm"),
        ])
        .unwrap();
        assert_eq!(q.from_ms, 1_764_547_200_000);
        assert_eq!(q.status, Some(StatusFilter::Class(4)));
        for (pairs, says) in [
            (vec![("from", "yesterday")], "from must be"),
            (vec![("status", "42")], "status must be"),
            (vec![("limit", "0")], "limit must be"),
            (vec![("cursor", "%%%")], "cursor"),
            (vec![("from", "1765000000001")], "from must not be after to"),
        ] {
            let e = p(&pairs).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let c = Cursor {
            from_ms: 1_764_547_200_000,
            to_ms: 1_765_000_000_000,
            day: 20_428,
            after: Some(format!("{:016}#r#0000#0123456789ab", 42)),
        };
        assert_eq!(Cursor::parse(&c.token()), Some(c.clone()));
        let fresh_day = Cursor { after: None, ..c };
        assert_eq!(Cursor::parse(&fresh_day.token()), Some(fresh_day));
        for forged in ["x|y", "1|2|3|AUDIT#other", "1|2|3|0042"] {
            assert_eq!(
                Cursor::parse(&URL_SAFE_NO_PAD.encode(forged)),
                None,
                "{forged}"
            );
        }
    }

    #[test]
    fn a_cursor_keeps_its_window_and_windows_stay_bounded() {
        let p = parse_at_test_now;
        // A year 9999 `to` is now; a 1970 `from` the longest retention back.
        let wide = p(&[("from", "0"), ("to", "253402300799000")]).unwrap();
        assert!(wide.to_ms <= 1_765_000_060_000);
        assert_eq!(
            wide.to_ms - wide.from_ms,
            u64::from(MAX_RETENTION_DAYS) * DAY_MS + 60_000
        );
        let c = Cursor {
            from_ms: 1_764_900_000_000,
            to_ms: 1_764_990_000_000,
            day: 1_764_950_000_000 / DAY_MS,
            after: None,
        };
        // The cursor's window, whatever `to` now defaults to.
        let q = p(&[("cursor", &c.token())]).unwrap();
        assert_eq!((q.from_ms, q.to_ms), (c.from_ms, c.to_ms));
        // Its first page's, whatever `from` and `to` come with it.
        let other = p(&[("cursor", &c.token()), ("from", "1764000000000")]).unwrap();
        assert_eq!((other.from_ms, other.to_ms), (c.from_ms, c.to_ms));
        // A key of any other shape is no cursor of ours (nor a DynamoDB error).
        let long = Cursor {
            after: Some(format!("{:016}#{}#0000#0123456789ab", 2, "r".repeat(2000))),
            ..c.clone()
        };
        assert_eq!(p(&[("cursor", &long.token())]).unwrap_err().status(), 400);
        // A day outside the window, or a key outside its range, is no cursor of ours.
        let outside = Cursor {
            day: c.day + 30,
            ..c.clone()
        };
        assert_eq!(
            p(&[("cursor", &outside.token())]).unwrap_err().status(),
            400
        );
        let far = Cursor {
            after: Some(format!("{:016}#r#0000#0123456789ab", 1)),
            ..c
        };
        assert_eq!(p(&[("cursor", &far.token())]).unwrap_err().status(), 400);
    }
}
