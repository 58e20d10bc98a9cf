//! Per-organization (and, for a key with one of its own, per-key) rate limits, enforced
//! across every container of every plugin function.
//!
//! An organization may make `limit` tool calls per second: its profile's
//! `rate_limit_per_second`, else the platform's (`SWITCHBOARD_RATE_LIMIT_PER_SECOND`). The
//! limit is a token bucket of `limit` tokens refilled at `limit` a second, kept as GCRA's
//! "theoretical arrival time" (`tat`) in one item of the data table (`RATE#<org>` / `gcra`):
//! `n` calls at `now` fit when `max(tat, now) + n/limit` is at most a second ahead of `now`,
//! and taking them moves `tat` there with a write conditional on the item's version. After
//! a quiet second an organization may burst its whole limit; under a sustained flood it is
//! admitted `limit` calls a second, evenly spread: a container refused this second spends
//! its tokens one per `1/limit` s (a burst of admitted calls is what slows the other tenants
//! on shared tables).
//!
//! A key with a limit of its own has a bucket of its own too (`RATE#<org>#KEY#<key id>`),
//! taken from before the organization's: its limit counts every call it sends, those its
//! organization's limit then refuses included.
//!
//! A container takes tokens before it spends them: a call that finds none left takes its
//! own need plus a lease of up to `allowance` more (sized by what the container spent the
//! second before), and the calls after it spend the lease with no round trip; leased
//! tokens lapse after a second. One call per organization asks at a time in a container;
//! the others wait for its answer. A refusal costs no write: the container keeps the `tat`
//! it read and refuses locally until enough tokens would have freed up (at least a quarter
//! of the limit, and a tenth of a second later again if another container took them first),
//! then asks for that quarter or nothing, so a flood costs the table a few requests per
//! container and second, not one per refused call or per scrap another container left.
//!
//! What this allows: never more than `limit` counted calls in a second beyond the bucket's
//! burst (up to `2 × limit` in a one-second span right after a quiet one, as any token
//! bucket); token times are nanoseconds rounded up, so the counted rate never exceeds the
//! limit. A call whose container lost every race for a bucket that still had room for half
//! the limit (and for its own calls) goes through uncounted (`uncounted`): many containers
//! starting at once are not over the limit, and a full bucket is never contended that way. The lease trades
//! overshoot for undershoot: a container's unspent leased tokens lapse (at most `allowance`,
//! or a quarter of the limit after a refusal, plus the calls it saw waiting), so an
//! organization spread over many busy containers can be refused slightly before its limit.
//!
//! Each bucket request has 250 ms, and no attempt starts after a call has asked for 500 ms
//! (eight at most). If the bucket cannot be reached, the
//! container holds the organization to `limit` calls a second by itself until the next
//! second (logged once a second, counted): a limiter outage must not refuse every tenant,
//! and each container still bounds what it admits.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::sync::Notify;

use crate::error::Error;
use crate::ids::OrgId;
use crate::pipeline::Clock;
use crate::ports::{ItemStore, Key, Precondition, StoreError};

/// An organization's calls per second when neither its profile nor the platform sets one.
pub const DEFAULT_PER_SECOND: u32 = 100;
/// The highest limit a profile or the platform may set: the bucket is one item, and
/// DynamoDB serves about 1,000 writes a second to one item (leases divide the writes).
pub const MAX_PER_SECOND: u32 = 10_000;
/// The most tokens a container leases beyond a call's own need.
pub const DEFAULT_ALLOWANCE: u32 = 10;
const SECOND_NS: u64 = 1_000_000_000;
/// How long after the bucket is full again its item may be deleted.
const ITEM_LIFETIME_SECS: u64 = 60;
/// The longest one request to the bucket may take.
const BUCKET_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);
/// After this long asking the bucket, a call starts no further attempt.
const ASK_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);
/// Conditional writes tried before a call gives up on a contended bucket. A lost race means
/// another container took tokens, not that none are left: many containers starting at once
/// (a scale-out) must all get through while the bucket has room.
const ATTEMPTS: u32 = 8;
/// Above this many organizations in a container's table, idle ones are dropped.
const PRUNE_ABOVE: usize = 4096;

/// The limiter of one container: the shared buckets, and this container's leases.
pub struct RateLimiter {
    store: Arc<dyn ItemStore>,
    default_limit: u32,
    allowance: u32,
    buckets: Mutex<HashMap<Bucket, Local>>,
    clock: Clock,
    round_trips: AtomicU64,
    failures: AtomicU64,
    uncounted: AtomicU64,
    refused: AtomicU64,
}

/// Whose calls a bucket counts: an organization's, or one of its keys' (within the
/// organization's, which its calls are counted in as well).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Bucket {
    Org(OrgId),
    Key(OrgId, String),
}

impl Bucket {
    /// The bucket's item in the data table, under its organization's `RATE#` partitions.
    fn item_key(&self) -> Key {
        match self {
            Self::Org(org) => Key::new(format!("RATE#{org}"), "gcra"),
            Self::Key(org, id) => Key::new(format!("RATE#{org}#KEY#{id}"), "gcra"),
        }
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Org(org) => write!(f, "{org}"),
            Self::Key(org, id) => write!(f, "{org} key {id}"),
        }
    }
}

/// This container's view of one organization's (or key's) bucket.
#[derive(Default)]
struct Local {
    /// The bucket as last read or written: `tat` (ns since the epoch) and its version.
    seen: Option<(u64, u64)>,
    /// Tokens taken from the bucket and not yet spent, and when they lapse (ns).
    credit: u32,
    credit_until: u64,
    /// Refuse locally before this (ns): the bucket has no room for this container's need.
    closed_until: u64,
    /// Tokens taken after a refusal are spent one per `pace` ns (0: as calls come), the
    /// next no earlier than `next_spend`: a flood's admitted calls reach the shared tables
    /// spread out, not as a burst of a quarter of the limit.
    pace: u64,
    next_spend: u64,
    /// The current second (local accounting) and what this container admitted in it, and in
    /// the second before (the size of its next lease).
    second: u64,
    spent: u32,
    previous_spent: u32,
    /// The second of the last refusal reported (audit entry, log line).
    reported: Option<u64>,
    /// The bucket could not be reached this second: the container counts alone.
    alone: bool,
    /// A call of this container is asking the bucket; the others wait for its answer.
    asking: bool,
    waiting: u32,
    answered: Arc<Notify>,
}

impl Local {
    /// Moves the local accounting to `second`; never backwards (a clock read before another
    /// call moved it on must not undo that call's second).
    fn roll(&mut self, second: u64) {
        if second <= self.second {
            return;
        }
        self.previous_spent = if self.second + 1 == second {
            self.spent
        } else {
            0
        };
        self.second = second;
        self.spent = 0;
        self.alone = false;
    }

    /// The first refusal of a second is reported; the rest of a flood only repeats it.
    fn report(&mut self) -> bool {
        let first = self.reported != Some(self.second);
        self.reported = Some(self.second);
        first
    }

    fn spend(&mut self, calls: u32) {
        self.spent = self.spent.saturating_add(calls);
    }
}

/// A call refused for its organization's (or key's) limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: u32,
    /// The calls the request carried (a Vapi batch has several).
    pub calls: u32,
    /// The container's first refusal of the organization (or key) in this second: the one worth an
    /// audit entry and a log line (the rest of a flood would only repeat it).
    pub first: bool,
}

impl Refusal {
    /// The caller's error: 429 with `Retry-After: 1` (a token frees up within a second), or
    /// 422 for a batch that could never fit.
    pub fn error(&self, org: &OrgId) -> Error {
        self.error_of(&format!("organization {org}"), "its limit")
    }

    /// [`error`](Self::error) for a key's own limit.
    pub fn key_error(&self, org: &OrgId, key_id: &str) -> Error {
        self.error_of(
            &format!("API key {key_id} of organization {org}"),
            "its own limit",
        )
    }

    fn error_of(&self, whose: &str, limit: &str) -> Error {
        let n = self.limit;
        if self.calls > n {
            return Error::unprocessable(format!(
                "this request carries {} tool calls, more than {whose} may make a second ({limit} is {n}); send at most {n} at a time",
                self.calls
            ));
        }
        Error::RateLimited(format!(
            "{whose} is over {limit} of {n} tool calls per second; retry after 1 s"
        ))
    }
}

/// What a call does after looking at its organization's bucket.
enum Step {
    Admitted,
    Refused { first: bool },
    Wait(Arc<Notify>),
    Ask(Want),
}

/// What an asking call wants of the bucket: `ask` tokens, and nothing unless `least` fit (at
/// least `need`, its calls beyond the `held` tokens of the lease).
#[derive(Clone, Copy)]
struct Want {
    held: u32,
    need: u32,
    ask: u32,
    least: u32,
    /// Refused this second: what is granted is spent at the limit's pace.
    paced: bool,
}

/// A waiting call's share of the next ask, taken back when it stops waiting.
struct Waiting<'a> {
    limiter: &'a RateLimiter,
    org: &'a Bucket,
    calls: u32,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.limiter.unwait(self.org, self.calls);
    }
}

/// Ends the asking call's turn however it ends: a dropped call (its future cancelled) puts
/// its held tokens back and wakes the waiting calls, which would otherwise wait for ever.
struct Asking<'a> {
    limiter: &'a RateLimiter,
    org: &'a Bucket,
    held: u32,
    done: bool,
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut buckets = self.limiter.lock();
        if let Some(b) = buckets.get_mut(self.org) {
            b.asking = false;
            b.credit = b.credit.saturating_add(self.held);
            b.answered.notify_waiters();
        }
    }
}

impl RateLimiter {
    /// Buckets in `store` (the data table); `default_limit` applies to organizations whose
    /// profile sets none, `allowance` bounds a container's lease.
    pub fn new(store: Arc<dyn ItemStore>, default_limit: u32, allowance: u32) -> Self {
        Self {
            store,
            default_limit: default_limit.clamp(1, MAX_PER_SECOND),
            allowance,
            buckets: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemTime::now),
            round_trips: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            uncounted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn default_limit(&self) -> u32 {
        self.default_limit
    }

    /// Requests to the bucket so far (for benches: the cost per call).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Buckets that could not be reached, each followed by a second counted in the container.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Calls admitted without a token: their container lost every race for a bucket that
    /// still had room.
    pub fn uncounted(&self) -> u64 {
        self.uncounted.load(Ordering::Relaxed)
    }

    /// Calls refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn now_ns(&self) -> u64 {
        (self.clock)()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Takes `calls` tokens of `org`'s bucket, `limit` being the organization's own (the
    /// platform default when `None`).
    pub async fn acquire(
        &self,
        org: &OrgId,
        limit: Option<u32>,
        calls: u32,
    ) -> Result<(), Refusal> {
        let limit = limit.unwrap_or(self.default_limit);
        self.take(&Bucket::Org(org.clone()), limit, calls).await
    }

    /// Takes `calls` tokens of the bucket of `org`'s key `key_id`, whose own limit is
    /// `limit`: one key's flood leaves the organization's other keys their share.
    pub async fn acquire_for_key(
        &self,
        org: &OrgId,
        key_id: &str,
        limit: u32,
        calls: u32,
    ) -> Result<(), Refusal> {
        let bucket = Bucket::Key(org.clone(), key_id.to_owned());
        self.take(&bucket, limit, calls).await
    }

    async fn take(&self, org: &Bucket, limit: u32, calls: u32) -> Result<(), Refusal> {
        let limit = limit.clamp(1, MAX_PER_SECOND);
        let mut waited = false;
        loop {
            let now = self.now_ns();
            match self.look(org, now, limit, calls, waited) {
                Step::Admitted => return Ok(()),
                Step::Refused { first } => return self.refuse(limit, calls, first),
                Step::Wait(answered) => {
                    // Counted as waiting from the first wait until it ends, however it ends
                    // (a dropped call included): the asker asks for the waiting calls too.
                    let _waiting = (!waited).then(|| Waiting {
                        limiter: self,
                        org,
                        calls,
                    });
                    let notified = answered.notified();
                    tokio::pin!(notified);
                    // Registered before the bucket is looked at again, so no wake is lost.
                    notified.as_mut().enable();
                    if self.still_asking(org) {
                        notified.await;
                    }
                    waited = true;
                }
                Step::Ask(want) => return self.ask(org, now, limit, calls, want).await,
            }
        }
    }

    /// Spends from the lease, or says whom to wait for or how much to ask for.
    fn look(&self, org: &Bucket, now: u64, limit: u32, calls: u32, waited: bool) -> Step {
        let mut buckets = self.lock();
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| b.asking || b.credit_until > now || b.closed_until > now);
        }
        let b = buckets.entry(org.clone()).or_default();
        b.roll(now / SECOND_NS);
        // A batch that could never fit is the caller's mistake (422), not a flood: it is
        // always reported and leaves the container's pace alone.
        if calls > limit {
            return Step::Refused { first: true };
        }
        if b.alone {
            if b.spent.saturating_add(calls) > limit {
                return Step::Refused { first: b.report() };
            }
            b.spend(calls);
            return Step::Admitted;
        }
        if b.credit_until <= now {
            b.credit = 0;
        }
        if b.credit >= calls {
            if b.pace > 0 {
                if now < b.next_spend {
                    return Step::Refused { first: b.report() };
                }
                b.next_spend = now + b.pace * u64::from(calls);
            }
            b.credit -= calls;
            b.spend(calls);
            return Step::Admitted;
        }
        if now < b.closed_until || (b.pace > 0 && now < b.next_spend) {
            return Step::Refused { first: b.report() };
        }
        if b.asking {
            if !waited {
                b.waiting = b.waiting.saturating_add(calls);
            }
            return Step::Wait(b.answered.clone());
        }
        b.asking = true;
        let held = std::mem::take(&mut b.credit);
        let need = calls - held;
        // Refused this second, the pace decides what is granted: a quarter of the limit or
        // nothing, instead of the lease, so a flooding organization's containers ask a few
        // times a second rather than once per freed token or for the scraps another left.
        // Refused this second or the one before: a flood does not pause at a second's edge.
        let refused_now = b.reported.is_some_and(|r| r + 1 >= b.second);
        let extra = if refused_now {
            quantum(limit, need).saturating_sub(need)
        } else {
            self.allowance
                .min(b.previous_spent)
                .saturating_add(b.waiting)
        };
        let ask = need.saturating_add(extra).min(limit).max(need);
        let least = if refused_now { ask } else { need };
        Step::Ask(Want {
            held,
            need,
            ask,
            least,
            paced: refused_now,
        })
    }

    fn still_asking(&self, org: &Bucket) -> bool {
        self.lock().get(org).is_some_and(|b| b.asking)
    }

    fn unwait(&self, org: &Bucket, calls: u32) {
        if let Some(b) = self.lock().get_mut(org) {
            b.waiting = b.waiting.saturating_sub(calls);
        }
    }

    async fn ask(
        &self,
        org: &Bucket,
        mut now: u64,
        limit: u32,
        calls: u32,
        want: Want,
    ) -> Result<(), Refusal> {
        let Want {
            held,
            need,
            ask,
            least,
            paced,
        } = want;
        let mut asking = Asking {
            limiter: self,
            org,
            held,
            done: false,
        };
        let key = org.item_key();
        // A bucket left alone past its lifetime may have been deleted and written again from
        // version 1: its cached version would match a newer item.
        let lifetime = ITEM_LIFETIME_SECS * SECOND_NS;
        let mut seen = self
            .lock()
            .get(org)
            .and_then(|b| b.seen)
            .filter(|(tat, _)| tat.saturating_add(lifetime) > now);
        let mut outcome = Outcome::Contended { roomy: false };
        let mut roomy = false;
        let mut conflicted = false;
        let give_up = tokio::time::Instant::now() + ASK_BUDGET;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 && tokio::time::Instant::now() >= give_up {
                break;
            }
            if conflicted {
                // Spread the losers out, so that they do not meet again at once; a first
                // loss that brought the bucket back goes again at once (one winner took it).
                if seen.is_none() || attempt > 1 {
                    tokio::time::sleep(std::time::Duration::from_micros(contention_pause_us(
                        attempt,
                    )))
                    .await;
                }
                // The others' writes are as of their clocks: a stale `now` would see the
                // bucket a whole second fuller than it is.
                now = self.now_ns().max(now);
            }
            let (tat, version) = match seen {
                Some(s) => (s.0, Some(s.1)),
                None => match self.read(&key).await {
                    Ok(Some((tat, version))) => (tat, Some(version)),
                    Ok(None) => (0, None),
                    Err(e) => {
                        outcome = Outcome::Unreachable(e);
                        break;
                    }
                },
            };
            // A stored time more than a second ahead (another container's clock, a damaged
            // item) counts as a full bucket, not as a number to overflow on.
            let base = tat.clamp(now, now + SECOND_NS);
            let fits = fitting(limit, now + SECOND_NS - base);
            roomy = fits >= u64::from((limit / 2).max(need).max(1));
            let granted = u32::try_from(fits.min(u64::from(ask))).unwrap_or(ask);
            if granted < least {
                // When a quarter of the limit fits (what is wanted, if more), and a tenth of
                // a second later if another container took the last tokens first, so that
                // containers do not all ask at every freed token.
                let quantum = quantum(limit, least);
                let mut ready = (base + cost(limit, quantum)).saturating_sub(SECOND_NS);
                if conflicted {
                    ready += SECOND_NS / 10;
                }
                outcome = Outcome::Full {
                    tat,
                    version,
                    ready,
                };
                break;
            }
            let next = base + cost(limit, granted);
            let pre = version.map_or(Precondition::NotExists, Precondition::Version);
            let expires = next / SECOND_NS + ITEM_LIFETIME_SECS;
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            match budget(
                self.store
                    .put_expiring(&key, &json!({ "tat_ns": next }), pre, expires),
            )
            .await
            {
                Ok(v) => {
                    outcome = Outcome::Taken {
                        granted,
                        seen: (next, v),
                    };
                    break;
                }
                // Another container moved the bucket: go on from what the write found,
                // or read it again.
                Err(StoreError::Conflict { current, found, .. }) => {
                    let tat = found.as_deref().and_then(|d| d["tat_ns"].as_u64());
                    seen = tat.zip(current);
                    conflicted = true;
                }
                Err(e) => {
                    outcome = Outcome::Unreachable(e);
                    break;
                }
            }
        }
        if let Outcome::Contended { roomy: r } = &mut outcome {
            *r = roomy;
        }
        asking.done = true;
        let mut buckets = self.lock();
        let b = buckets.entry(org.clone()).or_default();
        b.asking = false;
        b.answered.notify_waiters();
        match outcome {
            Outcome::Taken { granted, seen } => {
                b.seen = Some(seen);
                if b.credit_until <= now {
                    b.credit = 0;
                }
                b.credit = b.credit.saturating_add(held + granted - calls);
                b.credit_until = now + SECOND_NS;
                b.pace = if paced { cost(limit, 1) } else { 0 };
                b.next_spend = now + b.pace * u64::from(calls);
                b.spend(calls);
                Ok(())
            }
            Outcome::Full {
                tat,
                version,
                ready,
            } => {
                b.seen = version.map(|v| (tat, v));
                // The held tokens stay for calls that need fewer.
                b.credit = b.credit.saturating_add(held);
                b.closed_until = ready;
                let first = b.report();
                drop(buckets);
                self.refuse(limit, calls, first)
            }
            Outcome::Contended { roomy: false } => {
                // Others keep taking what frees up: step back a tenth of a second.
                b.seen = None;
                b.credit = b.credit.saturating_add(held);
                b.closed_until = now + SECOND_NS / 10;
                let first = b.report();
                drop(buckets);
                self.refuse(limit, calls, first)
            }
            // Containers racing for a bucket with room (a scale-out) are not over the limit:
            // this request goes through uncounted, and the next one asks again.
            Outcome::Contended { roomy: true } => {
                b.seen = None;
                b.credit = b.credit.saturating_add(held);
                b.spend(calls);
                drop(buckets);
                let n = self
                    .uncounted
                    .fetch_add(u64::from(calls), Ordering::Relaxed);
                tracing::debug!(%org, uncounted = n + u64::from(calls), "rate-limit bucket contended; call admitted uncounted");
                Ok(())
            }
            Outcome::Unreachable(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                b.seen = None;
                b.credit = b.credit.saturating_add(held);
                let first = !b.alone;
                b.alone = true;
                let admitted = b.spent.saturating_add(calls) <= limit;
                if admitted {
                    b.spend(calls);
                }
                let reported = if admitted { false } else { b.report() };
                drop(buckets);
                if first {
                    tracing::warn!(bucket = %org, error = %e, "rate-limit bucket unreachable; this container holds it to its limit alone until the next second");
                }
                if admitted {
                    Ok(())
                } else {
                    self.refuse(limit, calls, reported)
                }
            }
        }
    }

    /// The bucket's `tat` and version, if it has been written.
    async fn read(&self, key: &Key) -> Result<Option<(u64, u64)>, StoreError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let Some(item) = budget(self.store.get(key)).await? else {
            return Ok(None);
        };
        // A damaged item is written over (conditionally, on its version) as an empty
        // bucket, rather than leaving every container counting alone for good.
        let tat = item.data["tat_ns"].as_u64().unwrap_or_else(|| {
            tracing::warn!(%key, "rate-limit bucket unreadable; starting it afresh");
            0
        });
        Ok(Some((tat, item.version)))
    }

    fn refuse(&self, limit: u32, calls: u32, first: bool) -> Result<(), Refusal> {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(Refusal {
            limit,
            calls,
            first,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Bucket, Local>> {
        // A panic while holding the map leaves plain numbers behind: still usable.
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a container refused this second asks the bucket for: a quarter of the limit, or
/// `need` if more.
fn quantum(limit: u32, need: u32) -> u32 {
    need.max(limit / 4).clamp(1, limit)
}

/// Nanoseconds `n` tokens take to free up, rounded up so the limit is never exceeded.
fn cost(limit: u32, n: u32) -> u64 {
    let ns = (u128::from(n) * u128::from(SECOND_NS)).div_ceil(u128::from(limit));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Whole tokens that free up in `span_ns`. Each token's cost was rounded up by under a
/// nanosecond, so `limit` nanoseconds of slack give a full bucket back all its tokens (and,
/// for limits up to 31,622, never one more).
fn fitting(limit: u32, span_ns: u64) -> u64 {
    let n = (u128::from(span_ns) + u128::from(limit)) * u128::from(limit) / u128::from(SECOND_NS);
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A bucket request within the limiter's own budget: a call waits for the bucket at most
/// this long before its container counts alone, rather than the store's 5 s.
async fn budget<T>(
    request: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(BUCKET_BUDGET, request)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "rate-limit bucket timed out".into(),
            ))
        })
}

/// How an ask ended.
enum Outcome {
    Taken {
        granted: u32,
        seen: (u64, u64),
    },
    /// No room for the need: `ready` is when there will be (ns).
    Full {
        tat: u64,
        version: Option<u64>,
        ready: u64,
    },
    /// Every attempt lost to another container; `roomy` when the bucket last read had room
    /// for half the limit.
    Contended {
        roomy: bool,
    },
    Unreachable(StoreError),
}

/// A pause of up to 2^attempt ms (at most 16 ms), drawn from the clock's nanoseconds.
fn contention_pause_us(attempt: u32) -> u64 {
    let max = 1_000u64 << attempt.min(4);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos % max
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Item, Page, SkRange, Write};
    use serde_json::Value;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    /// Items with versions in memory: what the limiter needs of a table.
    #[derive(Default)]
    struct Table {
        items: Mutex<HashMap<Key, (Value, u64)>>,
        down: AtomicBool,
        /// How long each request takes, like a round trip.
        delay: Option<Duration>,
        /// Reads, writes, and writes refused for a stale version.
        gets: AtomicU64,
        puts: AtomicU64,
        conflicts: AtomicU64,
    }

    impl Table {
        async fn wait(&self) -> Result<(), StoreError> {
            if let Some(d) = self.delay {
                tokio::time::sleep(d).await;
            }
            if self.down.load(Ordering::Relaxed) {
                return Err(StoreError::Unavailable("throttled".into()));
            }
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl ItemStore for Table {
        async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.wait().await?;
            Ok(self
                .items
                .lock()
                .unwrap()
                .get(key)
                .map(|(data, version)| Item {
                    key: key.clone(),
                    data: data.clone(),
                    version: *version,
                }))
        }
        async fn put(&self, key: &Key, data: &Value, pre: Precondition) -> Result<u64, StoreError> {
            self.puts.fetch_add(1, Ordering::Relaxed);
            self.wait().await?;
            let mut items = self.items.lock().unwrap();
            let current = items.get(key).map(|(_, v)| *v);
            let found = items.get(key).map(|(d, _)| Box::new(d.clone()));
            let holds = match pre {
                Precondition::None => true,
                Precondition::NotExists => current.is_none(),
                Precondition::Exists => current.is_some(),
                Precondition::Version(v) => current == Some(v),
            };
            if !holds {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                    current,
                    found,
                });
            }
            let version = current.unwrap_or(0) + 1;
            items.insert(key.clone(), (data.clone(), version));
            Ok(version)
        }
        async fn delete(&self, _: &Key, _: Precondition) -> Result<bool, StoreError> {
            unreachable!()
        }
        async fn query_range(
            &self,
            _: &str,
            _: &SkRange,
            _: Option<&str>,
            _: Option<usize>,
        ) -> Result<Page<Item>, StoreError> {
            unreachable!()
        }
        async fn batch_get(&self, _: &[Key]) -> Result<Vec<Item>, StoreError> {
            unreachable!()
        }
        async fn transact_write(&self, _: &[Write<'_>]) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn increment(&self, _: &Key) -> Result<u64, StoreError> {
            unreachable!()
        }
    }

    type Now = Arc<Mutex<SystemTime>>;

    fn clock_at(secs: u64) -> (Now, Clock) {
        let now = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(secs)));
        let c = now.clone();
        (now, Arc::new(move || *c.lock().unwrap()))
    }

    fn set(now: &Now, start: u64, ms: u64) {
        *now.lock().unwrap() = UNIX_EPOCH + Duration::from_secs(start) + Duration::from_millis(ms);
    }

    fn org(s: &str) -> OrgId {
        OrgId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn containers_together_admit_the_limit_and_a_flood_evenly() {
        let table = Arc::new(Table::default());
        let (now, clock) = clock_at(1_000_000);
        let containers: Vec<RateLimiter> = (0..3)
            .map(|_| RateLimiter::new(table.clone(), 20, 5).with_clock(clock.clone()))
            .collect();
        let acme = org("acme");
        let mut per_tenth = vec![0u32; 50];
        let mut first_refusals = 0;
        // 500 calls a second for 5 seconds, round robin.
        for ms in (0..5000u64).step_by(2) {
            set(&now, 1_000_000, ms);
            match containers[(ms / 2) as usize % 3]
                .acquire(&acme, None, 1)
                .await
            {
                Ok(()) => per_tenth[(ms / 100) as usize] += 1,
                Err(r) => {
                    assert_eq!((r.limit, r.calls), (20, 1));
                    first_refusals += u32::from(r.first);
                }
            }
        }
        // The bucket's burst, then 20 a second spread over it (2 a tenth, give or take).
        let first_second: u32 = per_tenth[..10].iter().sum();
        assert!(
            (20..=40).contains(&first_second),
            "{per_tenth:?} failures {:?}",
            containers
                .iter()
                .map(RateLimiter::failures)
                .collect::<Vec<_>>()
        );
        assert!(per_tenth[0] <= 22, "{per_tenth:?}");
        for (tenth, n) in per_tenth.iter().enumerate().skip(10) {
            assert!(*n <= 6, "tenth {tenth}: {n} ({per_tenth:?})");
        }
        let later: u32 = per_tenth[10..].iter().sum();
        assert!((60..=85).contains(&later), "{later} in 4 s ({per_tenth:?})");
        assert!(
            first_refusals <= 3 * 5,
            "one report per container and second"
        );
        // A refusal writes nothing: requests stay near the admissions, not the 2,500 calls.
        let requests: u64 = containers.iter().map(RateLimiter::round_trips).sum();
        assert!(requests <= 400, "{requests} requests");
    }

    #[tokio::test]
    async fn many_containers_starting_at_once_are_not_refused_below_the_limit() {
        // Each request a millisecond long: the containers' reads and writes interleave, so
        // most of them lose races for the bucket before they win one.
        let table = Arc::new(Table {
            delay: Some(Duration::from_millis(1)),
            ..Table::default()
        });
        let (_now, clock) = clock_at(6_000_000);
        let containers: Vec<RateLimiter> = (0..16)
            .map(|_| RateLimiter::new(table.clone(), 1000, 10).with_clock(clock.clone()))
            .collect();
        let acme = org("acme");
        let calls = containers.iter().map(|l| l.acquire(&acme, None, 1));
        for (i, admitted) in futures_util::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            assert!(admitted.is_ok(), "container {i} refused: {admitted:?}");
        }
    }

    #[tokio::test]
    async fn a_flood_over_many_containers_at_once_stays_near_the_limit() {
        let table = Arc::new(Table {
            delay: Some(Duration::from_millis(1)),
            ..Table::default()
        });
        let (_now, clock) = clock_at(7_000_000);
        let containers: Vec<RateLimiter> = (0..16)
            .map(|_| RateLimiter::new(table.clone(), 100, 10).with_clock(clock.clone()))
            .collect();
        let acme = org("acme");
        // The clock stands still: the bucket's burst of 100 is all there is.
        let calls = containers
            .iter()
            .flat_map(|l| (0..50).map(|_| l.acquire(&acme, None, 1)));
        let results = futures_util::future::join_all(calls).await;
        let admitted = results.iter().filter(|r| r.is_ok()).count() as u64;
        let uncounted: u64 = containers.iter().map(RateLimiter::uncounted).sum();
        eprintln!("admitted {admitted}, uncounted {uncounted}");
        assert!(
            admitted - uncounted <= 100,
            "{admitted} admitted, {uncounted} uncounted"
        );
        assert!(uncounted < 100, "{uncounted} uncounted");
    }

    /// Two containers flooded at 1,000 calls a second for 3 s, in real time, against a bucket
    /// that answers in 3 ms: what the flood costs the table.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sustained_flood_costs_the_bucket_a_few_requests_a_second() {
        let table = Arc::new(Table {
            delay: Some(Duration::from_millis(3)),
            ..Table::default()
        });
        let containers: Vec<Arc<RateLimiter>> = (0..2)
            .map(|_| Arc::new(RateLimiter::new(table.clone(), 20, DEFAULT_ALLOWANCE)))
            .collect();
        let acme = org("acme");
        let started = std::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut calls = Vec::new();
        for i in 0..3000usize {
            tick.tick().await;
            let limiter = containers[i % 2].clone();
            let acme = acme.clone();
            calls.push(tokio::spawn(async move {
                let admitted = limiter.acquire(&acme, None, 1).await.is_ok();
                admitted.then(|| started.elapsed())
            }));
        }
        // Admissions by the tenth of a second (real time: a slow machine stretches the run).
        let mut at = Vec::new();
        for c in calls {
            at.extend(c.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        let mut per_tenth = vec![0u32; (secs * 10.0).ceil() as usize + 1];
        for t in &at {
            per_tenth[(t.as_secs_f64() * 10.0) as usize] += 1;
        }
        let admitted = at.len() as f64;
        let requests: u64 = containers.iter().map(|l| l.round_trips()).sum();
        eprintln!(
            "{per_tenth:?} in {secs:.2} s: admitted {admitted}, requests {requests}: {} gets, {} puts, {} conflicts",
            table.gets.load(Ordering::Relaxed),
            table.puts.load(Ordering::Relaxed),
            table.conflicts.load(Ordering::Relaxed)
        );
        // After the first second's burst, 2 a tenth of a second (a token every 50 ms, two
        // containers' paces overlapping at most), not a quarter of the limit at once.
        for (tenth, n) in per_tenth.iter().enumerate().skip(11) {
            assert!(*n <= 4, "tenth {tenth}: {n} ({per_tenth:?})");
        }
        // The burst and 20 a second, give or take a lapsed quarter.
        assert!(
            admitted <= 20.0 + 20.0 * secs + 5.0 && admitted >= 20.0 * secs - 10.0,
            "{admitted} admitted in {secs:.2} s"
        );
        // About 18 a second here; one per freed token and scrap would be over 60.
        assert!(
            (requests as f64) <= 25.0 * secs,
            "{requests} requests in {secs:.2} s"
        );
    }

    #[tokio::test]
    async fn traffic_under_the_limit_is_never_refused() {
        let table = Arc::new(Table::default());
        let (now, clock) = clock_at(2_000_000);
        let limiter = RateLimiter::new(table, 100, 10).with_clock(clock);
        let acme = org("acme");
        // Limit 1: a call every 1.5 s.
        for i in 0..10 {
            set(&now, 2_000_000, i * 1500);
            limiter.acquire(&acme, Some(1), 1).await.unwrap();
        }
        // Limit 10: a batch of 8 at the top of every second.
        let other = org("other");
        for second in 0..10 {
            set(&now, 2_100_000 + second, 0);
            limiter.acquire(&other, Some(10), 8).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_profile_limit_replaces_the_default_and_orgs_count_apart() {
        let table = Arc::new(Table::default());
        let (now, clock) = clock_at(3_000_000);
        let limiter = RateLimiter::new(table, 100, 10).with_clock(clock);
        let (small, other) = (org("small"), org("other"));
        for _ in 0..3 {
            limiter.acquire(&small, Some(3), 1).await.unwrap();
        }
        let refusal = limiter.acquire(&small, Some(3), 1).await.unwrap_err();
        assert_eq!(
            refusal,
            Refusal {
                limit: 3,
                calls: 1,
                first: true
            }
        );
        let e = refusal.error(&small);
        assert_eq!(e.status(), 429);
        assert!(
            e.to_string().contains("limit of 3 tool calls per second"),
            "{e}"
        );
        assert!(!limiter.acquire(&small, Some(3), 1).await.unwrap_err().first);
        for _ in 0..50 {
            limiter.acquire(&other, None, 1).await.unwrap();
        }
        // A batch larger than the limit never fits: 422, reported once a second.
        let batch = limiter.acquire(&other, Some(5), 6).await.unwrap_err();
        assert_eq!(batch.error(&other).status(), 422);
        assert!(limiter.acquire(&other, Some(5), 6).await.is_err());
        // A token frees up every third of a second.
        set(&now, 3_000_000, 340);
        limiter.acquire(&small, Some(3), 1).await.unwrap();
    }

    #[test]
    fn refusals_name_whose_limit_it_is() {
        let acme = org("acme");
        let over = Refusal {
            limit: 2,
            calls: 1,
            first: true,
        };
        let e = over.key_error(&acme, "0123456789abcdef");
        assert_eq!(e.status(), 429);
        assert_eq!(
            e.to_string(),
            "API key 0123456789abcdef of organization acme is over its own limit of 2 tool calls per second; retry after 1 s"
        );
        let e = over.error(&acme);
        assert!(
            e.to_string()
                .starts_with("organization acme is over its limit of 2 tool calls per second"),
            "{e}"
        );
        let batch = Refusal { calls: 3, ..over };
        let e = batch.key_error(&acme, "0123456789abcdef");
        assert_eq!(e.status(), 422);
        assert!(
            e.to_string().contains("carries 3 tool calls")
                && e.to_string().contains("send at most 2 at a time"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_lost_race_goes_on_from_what_the_write_found() {
        let table = Arc::new(Table::default());
        let (now, clock) = clock_at(5_000_000);
        let (a, b) = (
            RateLimiter::new(table.clone(), 100, 0).with_clock(clock.clone()),
            RateLimiter::new(table.clone(), 100, 0).with_clock(clock),
        );
        let acme = org("acme");
        // Each takes a token per call (no lease), so every call of one after the other's
        // finds the bucket moved.
        for ms in 0..6 {
            set(&now, 5_000_000, ms * 10);
            let limiter = if ms % 2 == 0 { &a } else { &b };
            limiter.acquire(&acme, None, 1).await.unwrap();
        }
        // The first read of each container, then none: a lost write brought the bucket back.
        assert_eq!(table.gets.load(Ordering::Relaxed), 2);
        assert_eq!(table.conflicts.load(Ordering::Relaxed), 4);
        assert_eq!(table.puts.load(Ordering::Relaxed), 10);
    }

    #[tokio::test]
    async fn a_burst_waits_for_one_request_instead_of_each_sending_its_own() {
        let table = Arc::new(Table {
            delay: Some(Duration::from_millis(20)),
            ..Table::default()
        });
        let (_now, clock) = clock_at(4_000_000);
        let limiter = Arc::new(RateLimiter::new(table, 50, 10).with_clock(clock));
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let limiter = limiter.clone();
            burst.spawn(async move { limiter.acquire(&org("acme"), None, 1).await });
        }
        let results = burst.join_all().await;
        let admitted = results.iter().filter(|r| r.is_ok()).count();
        let first = results
            .iter()
            .filter(|r| matches!(r, Err(Refusal { first: true, .. })))
            .count();
        assert_eq!(admitted, 50);
        assert_eq!(first, 1);
        assert!(
            limiter.round_trips() <= 4,
            "{} requests",
            limiter.round_trips()
        );
    }

    #[tokio::test]
    async fn a_caller_dropped_while_asking_does_not_strand_the_others() {
        let table = Arc::new(Table {
            delay: Some(Duration::from_millis(50)),
            ..Table::default()
        });
        let limiter = Arc::new(RateLimiter::new(table, 50, 10));
        let asking = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(&org("acme"), None, 1).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(&org("acme"), None, 1).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        asking.abort();
        let answer = tokio::time::timeout(Duration::from_secs(2), waiting).await;
        assert!(matches!(answer, Ok(Ok(Ok(())))), "{answer:?}");
    }

    #[tokio::test]
    async fn an_unreachable_bucket_leaves_each_container_counting_alone() {
        let table = Arc::new(Table::default());
        table.down.store(true, Ordering::Relaxed);
        let (now, clock) = clock_at(5_000_000);
        let limiter = RateLimiter::new(table.clone(), 5, 10).with_clock(clock);
        let acme = org("acme");
        let mut admitted = 0;
        for _ in 0..20 {
            admitted += usize::from(limiter.acquire(&acme, None, 1).await.is_ok());
        }
        assert_eq!(admitted, 5);
        assert_eq!(
            limiter.failures(),
            1,
            "asked once, then alone for the second"
        );
        // The next second asks again, and the bucket is back.
        table.down.store(false, Ordering::Relaxed);
        set(&now, 5_000_001, 0);
        limiter.acquire(&acme, None, 1).await.unwrap();
        assert_eq!(limiter.failures(), 1);
    }
}
