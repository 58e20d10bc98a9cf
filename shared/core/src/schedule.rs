//! Calls a plugin schedules for later: one of its own functions (listed in its manifest's
//! `scheduled_functions`), for the same organization, channel and scopes as the call that
//! scheduled it, e.g. a reminder's `SendSms` an hour before an appointment.
//!
//! A scheduled call is a tool-call event ([`ToolCallEvent`], marked `scheduled`) delivered
//! to the plugin's own function at its time: on AWS by a one-time EventBridge Scheduler
//! schedule (`at(…)`, deleted after it runs); on the embedded store it waits in the data
//! table until `dev` runs it ([`StoredSchedules::take_due`]). Each event carries an
//! idempotency key made from its schedule's name, so a delivery repeated by the scheduler
//! is answered from the first one's record, not sent twice.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::ids::{FunctionName, OrgId, PluginName};
use crate::pipeline::{InvokedTenant, ToolCallEvent};
use crate::ports::{ItemStore, Key, Precondition, Scheduler, StoreError};

/// One call to make at `at` (epoch seconds) under the schedule name `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeferredCall {
    /// Unique per organization, plugin and the plugin's own name for it
    /// ([`schedule_name`]); at most 64 characters of `[0-9a-z-]`, as EventBridge Scheduler
    /// takes them.
    pub name: String,
    pub at: i64,
    pub event: ToolCallEvent,
}

/// The schedule name of a plugin's `name` for `org`: the plugin's name (its first 20
/// characters) and a SHA-256 of all three, so names never collide across organizations and
/// reveal nothing of the organization or the plugin's name for it.
pub fn schedule_name(org: &OrgId, plugin: &PluginName, name: &str) -> String {
    let digest = Sha256::digest(format!("{org}\n{plugin}\n{name}").as_bytes());
    let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
    let prefix: String = plugin
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(20)
        .collect();
    format!("{prefix}-{hex}")
}

/// What a call's handler may schedule: set by the pipeline when the platform has a
/// scheduler, bound to the call's tenant and (by [`crate::Plugin::call`]) to its plugin.
#[derive(Clone)]
pub struct Deferrals {
    scheduler: Arc<dyn Scheduler>,
    tenant: InvokedTenant,
    plugin: Option<(PluginName, Vec<FunctionName>)>,
}

impl std::fmt::Debug for Deferrals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferrals")
            .field("org", &self.tenant.org)
            .finish_non_exhaustive()
    }
}

/// Longest name a plugin gives a scheduled call.
const MAX_NAME: usize = 200;

/// The furthest ahead a call may be scheduled: schedules are a shared account quota, and a
/// call waiting years would outlive its event format.
pub const MAX_AHEAD: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

impl Deferrals {
    pub fn new(scheduler: Arc<dyn Scheduler>, mut tenant: InvokedTenant) -> Self {
        // A call delivered later counts toward its organization alone: the key's own limit
        // would refuse a reminder burst the key never sent, and no retry would bring it back.
        tenant.key_rate_limit = None;
        Self {
            scheduler,
            tenant,
            plugin: None,
        }
    }

    /// Bound to `plugin`, which may schedule `functions`.
    pub fn for_plugin(mut self, plugin: PluginName, functions: Vec<FunctionName>) -> Self {
        self.plugin = Some((plugin, functions));
        self
    }

    fn plugin(&self) -> Result<&(PluginName, Vec<FunctionName>), Error> {
        self.plugin
            .as_ref()
            .ok_or_else(|| Error::internal("scheduled calls are not bound to a plugin"))
    }

    fn name(&self, name: &str) -> Result<String, Error> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(Error::internal(format!(
                "a scheduled call's name must be 1 to {MAX_NAME} bytes"
            )));
        }
        Ok(schedule_name(&self.tenant.org, &self.plugin()?.0, name))
    }

    /// Schedules `function(parameters)` at `at` under the plugin's `name` for it. A name
    /// already scheduled is `409 conflict`; a time not in the future `422`.
    pub async fn schedule(
        &self,
        name: &str,
        at: SystemTime,
        now: SystemTime,
        function: &str,
        parameters: Value,
    ) -> Result<(), Error> {
        let (plugin, allowed) = self.plugin()?;
        if !allowed.iter().any(|f| f.as_str() == function) {
            return Err(Error::internal(format!(
                "{plugin} may not schedule {function}: list it in the manifest's scheduled_functions"
            )));
        }
        if at <= now {
            return Err(Error::unprocessable(
                "a call can only be scheduled for a time in the future",
            ));
        }
        if at.duration_since(now).unwrap_or_default() > MAX_AHEAD {
            return Err(Error::unprocessable(
                "a call can be scheduled at most a year ahead",
            ));
        }
        let at = at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::unprocessable("the time is out of range"))?
            .as_secs();
        let at = i64::try_from(at).map_err(|_| Error::unprocessable("the time is out of range"))?;
        let schedule = self.name(name)?;
        let tenant = crate::auth::TenantContext::from(self.tenant.clone());
        // The time is in the key, so a name scheduled again is a new call, not a replay; and
        // 128 random bits, so no client's Idempotency-Key can take the key first.
        let key = format!("schedule-{schedule}-{at}-{}", nonce());
        let event = ToolCallEvent::new(plugin.clone(), &tenant, function, parameters, &key)
            .with_idempotency_key(Some(&key))
            .scheduled();
        self.scheduler
            .create(&DeferredCall {
                name: schedule,
                at,
                event,
            })
            .await
    }

    /// Cancels the plugin's scheduled call `name`; whether there was one to cancel.
    pub async fn cancel(&self, name: &str) -> Result<bool, Error> {
        let schedule = self.name(name)?;
        self.scheduler.delete(&schedule).await
    }
}

/// 128 bits from the system's random source (a claim token's seed and counter if it cannot
/// be read).
fn nonce() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => crate::idempotency::new_token(),
    }
}

/// The embedded store's scheduler: each scheduled call an item of the data table, run by
/// `dev` when due ([`StoredSchedules::take_due`]). Nothing runs them on AWS: there the
/// platform uses EventBridge Scheduler.
pub struct StoredSchedules {
    store: Arc<dyn ItemStore>,
}

/// The partition of every scheduled call (a `dev` store's few; on AWS this is unused).
const PARTITION: &str = "SCHEDULE";

impl StoredSchedules {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    fn key(name: &str) -> Key {
        Key::new(PARTITION, name)
    }

    /// Removes and returns the calls due at `now` (epoch seconds). Each is removed with a
    /// condition on its version, so of two runners only one takes it.
    pub async fn take_due(&self, now: i64) -> Result<Vec<DeferredCall>, Error> {
        let mut due = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .query(PARTITION, after.as_deref(), Some(100))
                .await
                .map_err(store_error)?;
            for item in page.items {
                let at = item.data.get("at").and_then(Value::as_i64).unwrap_or(0);
                if at > now {
                    continue;
                }
                let taken = self
                    .store
                    .delete(&item.key, Precondition::Version(item.version))
                    .await;
                match taken {
                    Ok(true) => {}
                    Ok(false) | Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(store_error(e)),
                }
                let event = item
                    .data
                    .get("event")
                    .cloned()
                    .map(serde_json::from_value::<ToolCallEvent>);
                match event {
                    Some(Ok(event)) => due.push(DeferredCall {
                        name: item.key.sk.clone(),
                        at,
                        event,
                    }),
                    _ => {
                        tracing::error!(schedule = %item.key.sk, "a stored schedule's event cannot be read; dropped")
                    }
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(due)
    }
}

fn store_error(e: StoreError) -> Error {
    Error::Unavailable(format!("the schedule store failed: {e}"))
}

#[async_trait]
impl Scheduler for StoredSchedules {
    async fn create(&self, call: &DeferredCall) -> Result<(), Error> {
        let event = serde_json::to_value(&call.event)
            .map_err(|e| Error::internal(format!("a scheduled call's event: {e}")))?;
        match self
            .store
            .put(
                &Self::key(&call.name),
                &json!({"at": call.at, "event": event}),
                Precondition::NotExists,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { .. }) => Err(already_scheduled()),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn delete(&self, name: &str) -> Result<bool, Error> {
        self.store
            .delete(&Self::key(name), Precondition::None)
            .await
            .map_err(store_error)
    }
}

/// A scheduled call of that name exists already.
pub fn already_scheduled() -> Error {
    Error::conflict("this is already scheduled; cancel it first to schedule it again")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Never;

    #[async_trait::async_trait]
    impl Scheduler for Never {
        async fn create(&self, _: &DeferredCall) -> Result<(), Error> {
            unreachable!()
        }
        async fn delete(&self, _: &str) -> Result<bool, Error> {
            unreachable!()
        }
    }

    #[test]
    fn a_scheduled_call_counts_toward_its_organization_alone() {
        let tenant = InvokedTenant {
            org: OrgId::parse("acme").unwrap(),
            channel: None,
            scopes: vec!["plugins:call".into()],
            key_id: Some("0123456789abcdef".into()),
            key_rate_limit: Some(2),
        };
        let d = Deferrals::new(Arc::new(Never), tenant);
        assert_eq!(d.tenant.key_rate_limit, None);
        assert_eq!(d.tenant.key_id.as_deref(), Some("0123456789abcdef"));
    }

    #[test]
    fn names_are_scheduler_names_and_differ_by_org() {
        let p = PluginName::parse("sms").unwrap();
        let a = schedule_name(&OrgId::parse("acme").unwrap(), &p, "reminder-1042");
        let b = schedule_name(&OrgId::parse("globex").unwrap(), &p, "reminder-1042");
        assert_ne!(a, b);
        assert!(a.starts_with("sms-") && a.len() <= 64, "{a}");
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        );
        assert!(!a.contains("1042"));
    }
}
