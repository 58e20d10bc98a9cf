//! Per-organization rate limits, enforced across every container of every plugin function.
//!
//! An organization may make `limit` tool calls per second: its profile's
//! `rate_limit_per_second`, else the platform's (`SWITCHBOARD_RATE_LIMIT_PER_SECOND`). The
//! limit behaves like a token bucket of `limit` tokens refilled at `limit` a second: after a
//! quiet second an organization may burst up to its whole limit at once, and under a
//! sustained flood it is admitted `limit` calls a second spread evenly over the second, not
//! all at its start (a burst of admitted calls is what slows everyone else's calls on shared
//! tables). It is counted over one-second windows in the data table (`RATE#<org>#<second>`,
//! atomic ADDs, expiring a minute later): by the end of the `k`-th tenth of a second, the
//! window admits `limit − previous + limit × k / 10` calls, `previous` being what the
//! second before admitted, and never more than `limit`.
//!
//! A container reserves tokens before it spends them. A call that finds none left in its
//! container adds its own need plus a lease of up to `allowance` more to the window's count
//! and keeps what the count grants, giving back the rest; the calls after it spend the lease
//! with no round trip. One call per organization asks at a time: the calls that arrive
//! meanwhile wait for its answer and are asked for with it, so a burst costs one write, not
//! one per call. The lease follows the container's own traffic (what it spent in the
//! previous second), so a quiet container reserves nothing it will not use. A refused
//! container refuses locally until the count would have room again.
//!
//! What this allows: within one window, never more than `limit` calls across all containers
//! (tokens are counted before they are spent); across a window boundary after a quiet
//! second, up to 2 × `limit` in a one-second span, as a token bucket allows. What the lease
//! costs instead of overshoot: tokens a container leased and did not spend lapse with the
//! second, at most `allowance` per container, so an organization spread over many containers
//! can be refused a little before `limit`. A flood costs the table at most two writes (an
//! ask, and a give-back when another container was first) per container per tenth of a
//! second, not one per refused call.
//!
//! If the count cannot be reached, the container holds the organization to the limit by
//! itself for the rest of the second (its own calls only; logged once a second, counted): a
//! limiter outage must not refuse every tenant, nor let a flood through unchecked.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::error::Error;
use crate::ids::OrgId;
use crate::pipeline::Clock;
use crate::ports::{ItemStore, Key};

/// An organization's calls per second when neither its profile nor the platform sets one.
pub const DEFAULT_PER_SECOND: u32 = 100;
/// The highest limit a profile or the platform may set: one window's counter is one item,
/// and DynamoDB serves about 1,000 writes a second to one item (leases divide the writes).
pub const MAX_PER_SECOND: u32 = 10_000;
/// The most tokens a container leases beyond a call's own need.
pub const DEFAULT_ALLOWANCE: u32 = 10;
/// How long a window's counter is kept after its second.
const COUNTER_LIFETIME_SECS: u64 = 60;
/// The refill step, as a fraction of a second.
const STEP: f64 = 0.1;
/// Above this many organizations in a container's table, stale windows are dropped.
const PRUNE_ABOVE: usize = 4096;

/// The limiter of one container: the shared counts, and this container's leases.
pub struct RateLimiter {
    store: Arc<dyn ItemStore>,
    default_limit: u32,
    allowance: u32,
    windows: Mutex<HashMap<OrgId, Window>>,
    clock: Clock,
    round_trips: AtomicU64,
    failures: AtomicU64,
    refused: AtomicU64,
}

/// This container's view of one organization's current window.
#[derive(Default)]
struct Window {
    second: u64,
    /// Tokens leased from the count and not yet spent.
    credit: u32,
    spent: u32,
    /// What this container spent in the second before: the size of its next lease.
    previous_spent: u32,
    /// What all containers were admitted in the second before, once read.
    previous_count: Option<u64>,
    /// The window's count as last seen.
    seen: u64,
    /// Refuse locally until this far into the second (0 to 1): the count has no room before.
    closed_until: f64,
    /// A refusal of this window has been reported (audit entry, log line).
    reported: bool,
    /// The count could not be reached this second: this container counts alone.
    alone: bool,
    /// A call of this container is asking the count; the others wait for its answer
    /// instead of all asking at once.
    asking: bool,
    /// Tokens the waiting calls need: the asking call asks for them too.
    waiting: u32,
    /// Wakes the waiting calls when the asking one has its answer.
    answered: Arc<Notify>,
}

impl Window {
    fn roll(&mut self, second: u64) {
        if self.second == second {
            return;
        }
        let next = self.second + 1 == second;
        self.previous_spent = if next { self.spent } else { 0 };
        // The count seen last second is a floor for what it admitted; read it anyway.
        self.previous_count = None;
        self.second = second;
        self.credit = 0;
        self.spent = 0;
        self.seen = 0;
        self.closed_until = 0.0;
        self.reported = false;
        self.alone = false;
        self.asking = false;
        self.waiting = 0;
        // Calls waiting on the old second's answer wake and look again.
        self.answered.notify_waiters();
    }

    /// The first refusal of the window is reported; the rest of a flood only repeats it.
    fn report(&mut self) -> bool {
        !std::mem::replace(&mut self.reported, true)
    }
}

/// What the window admits by `f` into its second, after a second that admitted `previous`:
/// refilled a step at a time, so that containers racing for the next token ask once a step.
fn admissible(limit: u32, previous: u64, f: f64) -> u64 {
    let limit = u64::from(limit);
    let carried = limit.saturating_sub(previous);
    // The nudge keeps a step's own start (as `opens_at` computes it) inside the step.
    let steps = (((f + 1e-9) / STEP).floor() + 1.0).min(1.0 / STEP);
    // Whole tokens only, at most `limit`.
    let refilled = (limit as f64 * steps * STEP).floor() as u64;
    (carried + refilled).min(limit)
}

/// How far into the second the window admits `total` calls (1: not this second).
fn opens_at(limit: u32, previous: u64, total: u64) -> f64 {
    if total > u64::from(limit) {
        return 1.0;
    }
    let carried = u64::from(limit).saturating_sub(previous);
    let refill = total.saturating_sub(carried) as f64 / f64::from(limit);
    // The step whose end refills that much, where `admissible` admits it.
    let step = (refill / STEP - 1e-9).ceil() - 1.0;
    (step.max(0.0) * STEP).min(1.0)
}

/// A call refused for its organization's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: u32,
    /// The container's first refusal of the organization in this second: the one worth an
    /// audit entry and a log line (the rest of a flood would only repeat it).
    pub first: bool,
}

impl Refusal {
    /// The 429 the caller gets (`Retry-After: 1`: the count has room within a second).
    pub fn error(&self, org: &OrgId) -> Error {
        Error::RateLimited(format!(
            "organization {org} is over its limit of {} tool calls per second; retry after 1 s",
            self.limit
        ))
    }
}

/// What a call does after looking at its organization's window.
enum Step {
    Admitted,
    Refused {
        first: bool,
    },
    /// Wait for the call asking the count.
    Wait(Arc<Notify>),
    /// Ask the count for `ask` tokens, holding `held` from the lease; read the second
    /// before's count too unless known.
    Ask {
        held: u32,
        ask: u32,
        previous: Option<u64>,
    },
}

/// Clears `asking` if the asking call ends without an answer (its future dropped), so the
/// calls waiting on it do not wait for ever.
struct Asking<'a> {
    limiter: &'a RateLimiter,
    org: &'a OrgId,
    second: u64,
    done: bool,
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut windows = self.limiter.lock();
        if let Some(w) = windows.get_mut(self.org)
            && w.second == self.second
        {
            w.asking = false;
            w.answered.notify_waiters();
        }
    }
}

impl RateLimiter {
    /// Counts in `store` (the data table); `default_limit` applies to organizations whose
    /// profile sets none, `allowance` bounds a container's lease.
    pub fn new(store: Arc<dyn ItemStore>, default_limit: u32, allowance: u32) -> Self {
        Self {
            store,
            default_limit: default_limit.clamp(1, MAX_PER_SECOND),
            allowance,
            windows: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemTime::now),
            round_trips: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Replaces the clock windows are cut by (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn default_limit(&self) -> u32 {
        self.default_limit
    }

    /// Writes to the count so far (for benches: the cost per call).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Counts that could not be reached, each followed by a second counted in the container.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Calls refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The current second, and how far into it (0 to 1).
    fn now(&self) -> (u64, f64) {
        let since = (self.clock)()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (since.as_secs(), f64::from(since.subsec_nanos()) / 1e9)
    }

    /// Takes `calls` tokens of `org`'s limit, `limit` being the organization's own (the
    /// platform default when `None`).
    pub async fn acquire(
        &self,
        org: &OrgId,
        limit: Option<u32>,
        calls: u32,
    ) -> Result<(), Refusal> {
        let limit = limit.unwrap_or(self.default_limit).clamp(1, MAX_PER_SECOND);
        if calls > limit {
            // A batch larger than a whole second's limit never fits; the window stays open
            // for smaller calls.
            return self.refuse(limit, true);
        }
        let mut waited = false;
        loop {
            let (second, f) = self.now();
            match self.look(org, second, f, limit, calls, waited) {
                Step::Admitted => return Ok(()),
                Step::Refused { first } => return self.refuse(limit, first),
                Step::Wait(answered) => {
                    let notified = answered.notified();
                    tokio::pin!(notified);
                    // Registered before the window is looked at again, so no wake is lost.
                    notified.as_mut().enable();
                    if self.still_asking(org, second) {
                        notified.await;
                    }
                    waited = true;
                }
                Step::Ask {
                    held,
                    ask,
                    previous,
                } => {
                    let asked = Asked {
                        second,
                        f,
                        limit,
                        calls,
                        held,
                        ask,
                        previous,
                    };
                    return self.ask(org, asked).await;
                }
            }
        }
    }

    /// Spends from the lease, or says whom to wait for or how much to ask the count for
    /// (taking the whole lease: a concurrent call cannot spend it twice).
    fn look(&self, org: &OrgId, second: u64, f: f64, limit: u32, calls: u32, waited: bool) -> Step {
        let mut windows = self.lock();
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, w| w.second + 1 >= second || w.asking);
        }
        let w = windows.entry(org.clone()).or_default();
        w.roll(second);
        if w.alone {
            if w.spent.saturating_add(calls) > limit {
                return Step::Refused { first: w.report() };
            }
            w.spent += calls;
            return Step::Admitted;
        }
        if w.credit >= calls {
            w.credit -= calls;
            w.spent += calls;
            return Step::Admitted;
        }
        if f < w.closed_until {
            return Step::Refused { first: w.report() };
        }
        let need = calls - w.credit;
        if let Some(previous) = w.previous_count {
            // The count only grows, so what it showed last is a floor: no room then, none now.
            let seen = w.seen.saturating_add(u64::from(need));
            if admissible(limit, previous, f) < seen {
                w.closed_until = opens_at(limit, previous, seen);
                return Step::Refused { first: w.report() };
            }
        }
        if w.asking {
            if !waited {
                w.waiting = w.waiting.saturating_add(calls);
            }
            return Step::Wait(w.answered.clone());
        }
        w.asking = true;
        let held = std::mem::take(&mut w.credit);
        // What this call needs, what the calls waiting behind it need, and a lease sized by
        // this container's last second, within the room the count showed last.
        let queued = std::mem::take(&mut w.waiting);
        let mut extra = queued.saturating_add(self.allowance.min(w.previous_spent));
        if let Some(previous) = w.previous_count {
            let room = admissible(limit, previous, f).saturating_sub(w.seen);
            let room = u32::try_from(room).unwrap_or(u32::MAX);
            extra = extra.min(room.saturating_sub(need));
        }
        let ask = need.saturating_add(extra).min(limit.max(need));
        Step::Ask {
            held,
            ask,
            previous: w.previous_count,
        }
    }

    fn still_asking(&self, org: &OrgId, second: u64) -> bool {
        self.lock()
            .get(org)
            .is_some_and(|w| w.second == second && w.asking)
    }

    async fn ask(&self, org: &OrgId, a: Asked) -> Result<(), Refusal> {
        let mut asking = Asking {
            limiter: self,
            org,
            second: a.second,
            done: false,
        };
        let expires = a.second + COUNTER_LIFETIME_SECS;
        let window = Key::new(format!("RATE#{org}#{}", a.second), "n");
        let add = self.store.add_expiring(&window, i64::from(a.ask), expires);
        let counted = match a.previous {
            Some(previous) => {
                self.round_trips.fetch_add(1, Ordering::Relaxed);
                add.await.map(|total| (total, previous))
            }
            None => {
                // Adding nothing reads the count without a read of another kind.
                self.round_trips.fetch_add(2, Ordering::Relaxed);
                let before = Key::new(format!("RATE#{org}#{}", a.second.saturating_sub(1)), "n");
                let read = self.store.add_expiring(&before, 0, expires);
                match tokio::join!(add, read) {
                    (Ok(total), Ok(previous)) => Ok((total, previous)),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
        };
        let (total, previous) = match counted {
            Ok(counted) => counted,
            Err(e) => {
                asking.done = true;
                self.failures.fetch_add(1, Ordering::Relaxed);
                let first = self.answer(org, a.second, |w| {
                    let first = !w.alone;
                    w.alone = true;
                    // The lease's tokens were spent, or will be, by this container.
                    w.spent = w.spent.saturating_add(a.calls);
                    w.credit = 0;
                    first
                });
                if first != Some(false) {
                    tracing::warn!(%org, error = %e, "rate-limit count unreachable; this container holds the organization to its limit alone for the rest of the second");
                }
                return Ok(());
            }
        };
        let before = total.saturating_sub(u64::from(a.ask));
        let room = admissible(a.limit, previous, a.f).saturating_sub(before);
        // At most `ask`, so it fits a u32.
        let granted = u32::try_from(room.min(u64::from(a.ask))).unwrap_or(a.ask);
        let returned = a.ask - granted;
        if returned > 0 {
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self
                .store
                .add_expiring(&window, -i64::from(returned), expires)
                .await
            {
                // Counted as spent: the organization is held a little below its limit.
                tracing::warn!(%org, error = %e, returned, "rate-limit tokens not given back");
            }
        }
        asking.done = true;
        let total = total - u64::from(returned);
        let admitted = a.held + granted >= a.calls;
        let first = self.answer(org, a.second, |w| {
            w.previous_count = Some(previous);
            w.seen = w.seen.max(total);
            if admitted {
                w.credit += a.held + granted - a.calls;
                w.spent += a.calls;
                false
            } else {
                // The held tokens stay for calls that need fewer.
                w.credit += a.held + granted;
                let need = u64::from(a.calls - w.credit.min(a.calls));
                w.closed_until = opens_at(a.limit, previous, total + need);
                w.report()
            }
        });
        if admitted {
            Ok(())
        } else {
            self.refuse(a.limit, first.unwrap_or(false))
        }
    }

    /// Ends the asking call's turn: `then` updates the window if it is still `second`'s,
    /// and the waiting calls wake to look again.
    fn answer<T>(
        &self,
        org: &OrgId,
        second: u64,
        then: impl FnOnce(&mut Window) -> T,
    ) -> Option<T> {
        let mut windows = self.lock();
        let w = windows.get_mut(org)?;
        if w.second != second {
            return None;
        }
        w.asking = false;
        let out = then(w);
        w.answered.notify_waiters();
        Some(out)
    }

    fn refuse(&self, limit: u32, first: bool) -> Result<(), Refusal> {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(Refusal { limit, first })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrgId, Window>> {
        // A panic while holding the map leaves plain counters behind: still usable.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One ask of the count: when, for how much, and what the call needs.
struct Asked {
    second: u64,
    f: f64,
    limit: u32,
    calls: u32,
    held: u32,
    ask: u32,
    previous: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Item, Page, Precondition, SkRange, StoreError, Write};
    use serde_json::Value;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    /// Counters in memory; reads and writes of items are not needed by the limiter.
    #[derive(Default)]
    struct Counts {
        n: Mutex<HashMap<String, u64>>,
        down: AtomicBool,
        /// How long each count takes, like a round trip.
        delay: Option<Duration>,
    }

    #[async_trait::async_trait]
    impl ItemStore for Counts {
        async fn get(&self, _: &Key) -> Result<Option<Item>, StoreError> {
            unreachable!()
        }
        async fn put(&self, _: &Key, _: &Value, _: Precondition) -> Result<u64, StoreError> {
            unreachable!()
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
        async fn add_expiring(&self, key: &Key, by: i64, _: u64) -> Result<u64, StoreError> {
            if let Some(d) = self.delay {
                tokio::time::sleep(d).await;
            }
            if self.down.load(Ordering::Relaxed) {
                return Err(StoreError::Unavailable("throttled".into()));
            }
            let mut n = self.n.lock().unwrap();
            let c = n.entry(key.pk.clone()).or_default();
            *c = c.checked_add_signed(by).unwrap();
            Ok(*c)
        }
    }

    fn at(clock: &Arc<Mutex<SystemTime>>) -> Clock {
        let c = clock.clone();
        Arc::new(move || *c.lock().unwrap())
    }

    fn org(s: &str) -> OrgId {
        OrgId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn containers_together_admit_the_limit_per_second_and_no_more() {
        let store = Arc::new(Counts::default());
        let now = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(1_000_000)));
        let containers: Vec<RateLimiter> = (0..3)
            .map(|_| RateLimiter::new(store.clone(), 20, 5).with_clock(at(&now)))
            .collect();
        let acme = org("acme");
        for second in 0..5 {
            let mut admitted = 0;
            let mut first_refusals = 0;
            let start = *now.lock().unwrap();
            for i in 0..500 {
                // Spread over the second.
                *now.lock().unwrap() = start + Duration::from_millis(i * 2);
                match containers[i as usize % 3].acquire(&acme, None, 1).await {
                    Ok(()) => admitted += 1,
                    Err(r) => {
                        assert_eq!(r.limit, 20);
                        first_refusals += usize::from(r.first);
                    }
                }
            }
            // The first second has no lease (no traffic before it): exactly the limit.
            // Later ones lease ahead, and what one container leases another cannot spend.
            assert!(admitted <= 20, "second {second}: {admitted} admitted");
            assert!(
                admitted >= 20 - 3 * 5,
                "second {second}: {admitted} admitted"
            );
            if second == 0 {
                assert_eq!(admitted, 20);
            }
            assert_eq!(first_refusals, 3, "one per container");
            *now.lock().unwrap() = start + Duration::from_secs(1);
        }
        // At most an ask and a give-back per container and tenth of a second, not a write
        // per call.
        let writes: u64 = containers.iter().map(RateLimiter::round_trips).sum();
        assert!(writes <= 5 * 3 * 2 * 10, "{writes} writes for 2,500 calls");
    }

    #[tokio::test]
    async fn a_sustained_flood_is_admitted_evenly_and_a_quiet_org_may_burst() {
        let store = Arc::new(Counts::default());
        let start = UNIX_EPOCH + Duration::from_secs(4_000_000);
        let now = Arc::new(Mutex::new(start));
        let limiter = RateLimiter::new(store, 100, 10).with_clock(at(&now));
        let (flood, quiet) = (org("flood"), org("quiet"));
        // After a quiet second, the whole limit at once.
        let mut burst = 0;
        for _ in 0..150 {
            burst += usize::from(limiter.acquire(&flood, Some(40), 1).await.is_ok());
        }
        assert_eq!(burst, 40);
        // Then, flooded at 1,000 calls a second, 40 a second spread over it: about 4 in each
        // tenth, not 40 at the start.
        let mut per_tenth = vec![0usize; 30];
        for ms in 1000..4000u64 {
            *now.lock().unwrap() = start + Duration::from_millis(ms);
            if limiter.acquire(&flood, Some(40), 1).await.is_ok() {
                per_tenth[(ms as usize - 1000) / 100] += 1;
            }
        }
        for (tenth, n) in per_tenth.iter().enumerate() {
            assert!(
                (1..=8).contains(n),
                "tenth {tenth}: {n} admitted ({per_tenth:?})"
            );
        }
        let total: usize = per_tenth.iter().sum();
        assert!((100..=120).contains(&total), "{total} in 3 s");
        // Another organization is untouched by it.
        for _ in 0..40 {
            limiter.acquire(&quiet, Some(40), 1).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_profile_limit_replaces_the_default_and_orgs_count_apart() {
        let store = Arc::new(Counts::default());
        let now = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(2_000_000)));
        let limiter = RateLimiter::new(store, 100, 10).with_clock(at(&now));
        let (small, other) = (org("small"), org("other"));
        for _ in 0..3 {
            limiter.acquire(&small, Some(3), 1).await.unwrap();
        }
        let refusal = limiter.acquire(&small, Some(3), 1).await.unwrap_err();
        assert_eq!(
            refusal,
            Refusal {
                limit: 3,
                first: true
            }
        );
        assert!(
            refusal
                .error(&small)
                .to_string()
                .contains("limit of 3 tool calls per second")
        );
        assert_eq!(refusal.error(&small).status(), 429);
        for _ in 0..50 {
            limiter.acquire(&other, None, 1).await.unwrap();
        }
        // A batch is all or nothing; the next second starts afresh.
        *now.lock().unwrap() += Duration::from_secs(1);
        assert!(limiter.acquire(&small, Some(3), 4).await.is_err());
        *now.lock().unwrap() += Duration::from_secs(1);
        limiter.acquire(&small, Some(3), 3).await.unwrap();
    }

    #[test]
    fn a_window_opens_at_the_first_step_that_admits_the_total() {
        for limit in [1, 3, 10, 20, 37, 100, 1000, MAX_PER_SECOND] {
            for previous in [
                0,
                1,
                u64::from(limit) / 2,
                u64::from(limit),
                5 * u64::from(limit),
            ] {
                for total in 0..=u64::from(limit) + 1 {
                    let at = opens_at(limit, previous, total);
                    if total > u64::from(limit) {
                        assert_eq!(at, 1.0);
                        continue;
                    }
                    let case = format!("limit {limit}, previous {previous}, total {total}: {at}");
                    assert!(at < 1.0, "{case}");
                    assert!(admissible(limit, previous, at) >= total, "{case}");
                    if at > 0.0 {
                        assert!(admissible(limit, previous, at - STEP) < total, "{case}");
                    }
                }
                assert_eq!(admissible(limit, previous, 0.999_999), u64::from(limit));
            }
        }
    }

    #[tokio::test]
    async fn a_burst_waits_for_one_write_instead_of_each_sending_its_own() {
        let store = Arc::new(Counts {
            delay: Some(Duration::from_millis(20)),
            ..Counts::default()
        });
        let now = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(3_000_000)));
        let limiter = Arc::new(RateLimiter::new(store, 50, 10).with_clock(at(&now)));
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
        // One asks alone (and reads the second before), the next asks for the waiting
        // calls and gives back what the limit does not grant; the rest are refused here.
        assert!(
            limiter.round_trips() <= 4,
            "{} writes",
            limiter.round_trips()
        );
    }

    #[tokio::test]
    async fn a_caller_dropped_while_asking_does_not_strand_the_others() {
        let store = Arc::new(Counts {
            delay: Some(Duration::from_millis(50)),
            ..Counts::default()
        });
        let limiter = Arc::new(RateLimiter::new(store, 50, 10));
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
    async fn an_unreachable_count_leaves_each_container_counting_alone() {
        let store = Arc::new(Counts::default());
        store.down.store(true, Ordering::Relaxed);
        let now = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(5_000_000)));
        let limiter = RateLimiter::new(store.clone(), 5, 10).with_clock(at(&now));
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
        // The next second asks again, and the count is back.
        store.down.store(false, Ordering::Relaxed);
        *now.lock().unwrap() += Duration::from_secs(1);
        limiter.acquire(&acme, None, 1).await.unwrap();
        assert_eq!(limiter.failures(), 1);
        assert!(limiter.round_trips() >= 2);
    }
}
