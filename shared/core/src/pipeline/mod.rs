//! The call pipeline behind `POST /plugins/{plugin}`: tenant → instance → effective config
//! → data adapter → [`Plugin::call`] (function, parameters, handler) → envelope.

mod bedrock;
mod envelope;
mod internal;
mod signed;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tracing::Instrument;

use crate::audit::{self, AuditEntry, AuditLog, Subject};
use crate::auth::{TenantContext, no_tenant};
use crate::cache::TtlCache;
use crate::error::Error;
use crate::idempotency::{Begin, CallKey, Claim, Idempotency, KeySource, header_key};
use crate::ids::{Channel, ConnectionId, OrgId, PluginName, VoicePlatform};
use crate::plugin::{CallScope, Plugin, Prepared};
use crate::ports::{DataAdapterFactory, ItemStore};
use crate::ratelimit::RateLimiter;
use crate::registry::{Connection, Registry};
use crate::secrets::Secrets;
use crate::spec::AdapterSpec;

pub use bedrock::BedrockEvent;
pub use envelope::{Envelope, Incoming, parse_body, parse_body_as};
pub use internal::{InvokedTenant, TOOL_CALL_KIND, ToolCallEvent};
pub use signed::SignedCall;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The scope a tenant's credential needs to call plugin functions.
pub const CALL_SCOPE: &str = "plugins:call";

pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Per-container state shared by every call: built once in `main`.
pub struct Platform {
    pub registry: Registry,
    pub data: Arc<dyn DataAdapterFactory>,
    /// Records of calls with side effects, in the platform's data table.
    idempotency: Idempotency,
    instances: TtlCache<(OrgId, PluginName), Option<Arc<ResolvedInstance>>>,
    /// What each organization's profile sets for calls (idempotency window, audit
    /// retention).
    policies: TtlCache<OrgId, OrgPolicy>,
    /// Each channel's assignments, overrides parsed; `None` for a channel not configured.
    channels: TtlCache<(OrgId, Channel), Option<ChannelAssignments>>,
    /// Voice-platform connections by id.
    connections: TtlCache<ConnectionId, Arc<Connection>>,
    /// Ids looked up and not found.
    unknown_connections: TtlCache<ConnectionId, ()>,
    /// Where signed routes get their signing secrets.
    secrets: Option<Arc<Secrets>>,
    /// Where every call's audit entry goes; none in benches that measure without it.
    audit: Option<Arc<AuditLog>>,
    /// Each organization's calls per second; none in benches that measure without it.
    limiter: Option<Arc<RateLimiter>>,
    /// Where plugins' scheduled calls go; none where the deployment has no scheduler.
    scheduler: Option<Arc<dyn crate::ports::Scheduler>>,
    /// The API's public base URL (`SWITCHBOARD_PUBLIC_URL`): a URL Twilio signed may be
    /// this one when a proxy or custom domain in front rewrites the request's own.
    public_url: Option<String>,
    clock: Clock,
}

/// An organization's profile settings a call needs.
#[derive(Clone)]
struct OrgPolicy {
    idempotency_ttl: Option<Duration>,
    audit_days: u32,
    rate_limit: Option<u32>,
    locale: Arc<str>,
}

/// A channel's plugin assignments, each override parsed (or its parse error), and its locale.
type ChannelAssignments = Arc<ChannelState>;

struct ChannelState {
    plugins: Vec<AssignedPlugin>,
    locale: Option<String>,
}

struct AssignedPlugin {
    plugin: PluginName,
    enabled: bool,
    data_adapter: Option<Result<AdapterSpec, Error>>,
}

/// An instance as a call needs it: resolved, validated and parsed once per cache fill.
struct ResolvedInstance {
    enabled: bool,
    /// Set when the instance is pinned to a major version this build does not serve.
    version_mismatch: Option<String>,
    config: Result<Arc<Value>, Error>,
    data_adapter: Result<AdapterSpec, Error>,
}

impl Platform {
    /// `idempotency` is the table idempotency records live in: the platform's data table,
    /// whatever data adapter an instance uses.
    pub fn new(
        registry: Registry,
        data: Arc<dyn DataAdapterFactory>,
        idempotency: Arc<dyn ItemStore>,
        cache_ttl: Duration,
    ) -> Self {
        Self {
            registry,
            data,
            idempotency: Idempotency::new(idempotency),
            policies: TtlCache::new(cache_ttl),
            instances: TtlCache::new(cache_ttl),
            channels: TtlCache::new(cache_ttl),
            connections: TtlCache::new(cache_ttl),
            unknown_connections: TtlCache::new(cache_ttl),
            secrets: None,
            audit: None,
            limiter: None,
            scheduler: None,
            public_url: None,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// The API's public base URL, e.g. `https://api.example.com`: signed webhooks also
    /// verify against it (Twilio signs the URL it was given, which a custom domain's API
    /// mapping or a proxy may rewrite before the function sees the request).
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url;
        self
    }

    /// Replaces the idempotency windows (tests shorten them).
    pub fn with_idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// The secret resolver the signed voice-platform routes verify with (the one the data
    /// adapters use); without it those routes answer 500.
    pub fn with_secrets(mut self, secrets: Arc<Secrets>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Writes an audit entry for every call into `audit`.
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Holds every organization to its calls per second.
    pub fn with_rate_limits(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Lets plugins schedule calls of their own functions for later.
    pub fn with_scheduler(mut self, scheduler: Arc<dyn crate::ports::Scheduler>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// The rate limiter calls go through, if any.
    pub fn rate_limiter(&self) -> Option<&Arc<RateLimiter>> {
        self.limiter.as_ref()
    }

    /// The audit log calls are written to, if any.
    pub fn audit(&self) -> Option<&Arc<AuditLog>> {
        self.audit.as_ref()
    }

    /// Replaces the clock (tests pin "now").
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    async fn instance(
        &self,
        plugin: &Plugin,
        org: &OrgId,
    ) -> Result<Option<Arc<ResolvedInstance>>, Error> {
        let key = (org.clone(), plugin.name().clone());
        let load = || async {
            let found = self.registry.get_instance(org, plugin.name()).await?;
            Ok(found.map(|v| {
                let manifest = plugin.manifest();
                let effective = manifest.effective_config(&v.value.config);
                let served = &manifest.manifest().version;
                let pinned = &v.value.pinned_version;
                Arc::new(ResolvedInstance {
                    enabled: v.value.enabled,
                    version_mismatch: (major(pinned) != major(served)).then(|| {
                        format!(
                            "this organization's {} instance is pinned to version {pinned}, but this deployment serves {served}; upgrade the instance or deploy {pinned}",
                            plugin.name()
                        )
                    }),
                    config: manifest
                        .validate_config(&effective)
                        .map(|()| Arc::new(effective)),
                    data_adapter: AdapterSpec::parse(&v.value.data_adapter, "/data_adapter"),
                })
            }))
        };
        self.instances.get_or_load(&key, load).await
    }
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

impl Platform {
    /// The organization's replay window for idempotent calls (its profile's
    /// `idempotency_ttl_hours`), cached like instances.
    async fn policy(&self, org: &OrgId) -> Result<OrgPolicy, Error> {
        let load = || async {
            let profile = self.registry.get_profile(org).await?.map(|p| p.value);
            let profile = profile.as_ref();
            Ok(OrgPolicy {
                idempotency_ttl: profile
                    .and_then(|p| p.idempotency_ttl_hours)
                    // The admin API checks the range; a profile written around it is held to it.
                    .map(|h| h.clamp(1, crate::idempotency::MAX_IDEMPOTENCY_TTL_HOURS))
                    .map(|h| Duration::from_secs(h * 3600)),
                audit_days: audit::retention_days(profile),
                rate_limit: profile.and_then(|p| p.rate_limit_per_second),
                locale: profile
                    .map_or(crate::locale::DEFAULT_LOCALE, |p| p.locale.as_str())
                    .into(),
            })
        };
        self.policies.get_or_load(org, load).await
    }

    async fn idempotency_ttl(&self, org: &OrgId) -> Result<Option<Duration>, Error> {
        Ok(self.policy(org).await?.idempotency_ttl)
    }

    /// How long `org`'s entries are kept; the default when the profile cannot be read, as
    /// the entry must be written whatever happened to the call.
    async fn audit_days(&self, org: &OrgId) -> u32 {
        match self.policy(org).await {
            Ok(p) => p.audit_days,
            Err(e) => {
                tracing::warn!(error = %e, "profile unreadable; audit entry kept for the default retention");
                audit::DEFAULT_RETENTION_DAYS
            }
        }
    }

    /// Takes `calls` of the tenant's calls this second, if the platform limits them: from
    /// its key's own bucket first (a key with a limit of its own), then from its
    /// organization's. The platform's limit applies while the profile cannot be read. A
    /// refusal after the container's first one in a second marks the trail quiet: no audit
    /// entry, no log line.
    async fn admit(
        &self,
        tenant: &TenantContext,
        calls: usize,
        trail: &Trail<'_>,
    ) -> Result<(), Error> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let org = &tenant.org;
        let quiet = |first: bool| {
            if !first {
                trail
                    .quiet
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        };
        let batch = u32::try_from(calls).unwrap_or(u32::MAX);
        if let (Some(key_id), Some(key_limit)) = (&tenant.key_id, tenant.key_rate_limit) {
            limiter
                .acquire_for_key(org, key_id, key_limit, batch)
                .await
                .map_err(|r| {
                    quiet(r.first);
                    r.key_error(org, key_id)
                })?;
        }
        let limit = match self.policy(org).await {
            Ok(p) => p.rate_limit,
            Err(e) => {
                tracing::warn!(error = %e, "profile unreadable; the platform's rate limit applies");
                None
            }
        };
        limiter.acquire(org, limit, batch).await.map_err(|r| {
            quiet(r.first);
            r.error(org)
        })
    }

    /// Stores an audit entry for a call of `org`'s, if the platform keeps a log: within the
    /// audit's budget and by `answer`, else the entry is logged instead.
    async fn write_audit(
        &self,
        org: &OrgId,
        entry: AuditEntry,
        seq: usize,
        answer: tokio::time::Instant,
    ) {
        if let Some(log) = &self.audit {
            let until = answer.min(tokio::time::Instant::now() + audit::WRITE_BUDGET);
            // An uncached profile is read once more, briefly: the entry matters more.
            let lookup = until.min(tokio::time::Instant::now() + RETENTION_LOOKUP);
            let days = match tokio::time::timeout_at(lookup, self.audit_days(org)).await {
                Ok(days) => days,
                Err(_) => {
                    tracing::warn!(
                        "profile not read in time; audit entry kept for the default retention"
                    );
                    audit::DEFAULT_RETENTION_DAYS
                }
            };
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            log.record_within(&entry, seq, days, left).await;
        }
    }

    /// A channel's assignments as a call needs them, cached like instances; `None` for a
    /// channel that is not configured.
    async fn channel(
        &self,
        org: &OrgId,
        channel: &Channel,
    ) -> Result<Option<ChannelAssignments>, Error> {
        let key = (org.clone(), channel.clone());
        let load = || async {
            let found = self.registry.get_channel(org, channel).await?;
            Ok(found.map(|v| {
                let assigned = v.value.plugin_assignments.iter().enumerate().map(|(i, a)| {
                    let at = format!("/plugin_assignments/{i}/data_adapter");
                    AssignedPlugin {
                        plugin: a.plugin.clone(),
                        enabled: a.enabled,
                        data_adapter: a.data_adapter.as_ref().map(|d| AdapterSpec::parse(d, &at)),
                    }
                });
                Arc::new(ChannelState {
                    plugins: assigned.collect(),
                    locale: v.value.locale.clone(),
                })
            }))
        };
        self.channels.get_or_load(&key, load).await
    }

    /// The language a call speaks: its channel's locale (`channel`, from the assignments the
    /// call already read), else the organization's, else the default: a profile that cannot
    /// be read changes the words of an answer, never whether there is one.
    async fn call_locale(&self, org: &OrgId, channel: Option<String>) -> String {
        if let Some(locale) = channel {
            return locale;
        }
        match self.policy(org).await {
            Ok(p) => p.locale.to_string(),
            Err(e) => {
                tracing::warn!(error = %e, "the organization's profile could not be read; answering in the default locale");
                crate::locale::DEFAULT_LOCALE.to_owned()
            }
        }
    }

    /// What the channel a key is bound to says about a call to `plugin`: 403 unless the
    /// plugin is assigned and enabled there; else its data adapter override, if any (the
    /// instance's adapter applies otherwise; ARCHITECTURE.md, "The path of one call"). A
    /// stored override that does not parse fails the calls that would use it, and only those.
    async fn channel_override(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        channel: &Channel,
    ) -> Result<(Option<Result<AdapterSpec, Error>>, Option<String>), Error> {
        let not_assigned = |why: String, fix: &str| Error::Forbidden {
            code: "plugin_not_assigned",
            message: format!(
                "this key is bound to the '{channel}' channel, {why}; {fix} (PUT /admin/channels/{channel}), or call with a key bound to a channel that has it"
            ),
        };
        let Some(assigned) = self.channel(org, channel).await? else {
            return Err(not_assigned(
                "which is not configured".into(),
                "configure the channel",
            ));
        };
        match assigned.plugins.iter().find(|a| &a.plugin == plugin) {
            None => Err(not_assigned(
                format!("which has no {plugin} plugin assigned"),
                "assign the plugin to the channel",
            )),
            Some(a) if !a.enabled => Err(not_assigned(
                format!("on which the {plugin} plugin is disabled"),
                "enable its assignment",
            )),
            Some(a) => Ok((a.data_adapter.clone(), assigned.locale.clone())),
        }
    }
}

/// What a call answers: the contract's envelope around a result, or a channel's own shape.
enum Reply {
    Result(Value),
    Raw(Value),
}

/// A call's answer: status, body, and whether it is a stored result replayed. Also the
/// reply to a [`ToolCallEvent`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallOutput {
    pub status: u16,
    pub body: Value,
    /// `Idempotent-Replayed: true`: every call in the request was answered from its record.
    #[serde(default)]
    pub replayed: bool,
}

/// One function call's result, and whether it came from its idempotency record.
struct Ran {
    value: Value,
    replayed: bool,
}

/// A call ready to run, or the stored result of its first run.
enum Ready {
    Run(Box<(Prepared, CallScope, Option<Claim>)>),
    Replay(Value),
}

/// How long a call's work may take (rate limit, lookups, idempotency, the function): with
/// the idempotency record's and the audit entry's bookkeeping after it, a call answers
/// within [`ANSWER_BUDGET`], before the plugin function's 20 s timeout.
pub const CALL_BUDGET: Duration = Duration::from_secs(10);
/// How long writing an audit entry waits for the organization's retention setting when it
/// is not cached.
const RETENTION_LOOKUP: Duration = Duration::from_secs(1);
/// The longest a call takes to answer whatever its dependencies do.
pub const ANSWER_BUDGET: Duration = CALL_BUDGET
    .saturating_add(crate::idempotency::BOOKKEEPING_BUDGET)
    .saturating_add(audit::WRITE_BUDGET);

/// When a request's work must stop, and when it must have answered.
#[derive(Clone, Copy)]
struct Deadlines {
    /// Repeats of a call still running wait for it until then.
    wait: tokio::time::Instant,
    /// The end of the request's work (every call of a Vapi batch together).
    work: tokio::time::Instant,
    /// The end of its bookkeeping: idempotency records, then audit entries.
    answer: tokio::time::Instant,
}

impl Deadlines {
    fn from(arrived: tokio::time::Instant, wait: tokio::time::Instant) -> Self {
        Self {
            wait,
            work: arrived + CALL_BUDGET,
            answer: arrived + ANSWER_BUDGET,
        }
    }

    /// Until when an idempotency record may be completed or released: what is left after it
    /// is the audit entry's.
    fn records(&self) -> tokio::time::Instant {
        self.work + crate::idempotency::BOOKKEEPING_BUDGET
    }
}

/// In the message of a 503 whose call may have had its effect: not one to repeat blindly.
pub const MAY_HAVE_RUN: &str = "may still take effect";

/// The 503 of a call whose budget ran out: before its function ran, or while it ran.
fn out_of_time(ran: bool) -> Error {
    let budget = CALL_BUDGET.as_secs();
    Error::Unavailable(if ran {
        format!(
            "the call ran past its {budget} s budget because a dependency is slow; what it changes {MAY_HAVE_RUN}, so check before calling it again"
        )
    } else {
        format!(
            "the call did not run: a dependency is too slow and its {budget} s budget ran out; retry shortly"
        )
    })
}

/// `work`, unless `deadline` comes first: then 503 (nothing ran), the work dropped.
async fn within<T>(
    deadline: tokio::time::Instant,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| Err(out_of_time(false)))
}

/// What the audit entries of one request share, and how many it has written.
struct Trail<'a> {
    route: &'a str,
    request_id: &'a str,
    written: std::sync::atomic::AtomicUsize,
    /// A refusal that repeats one already recorded (a flood past the rate limit).
    quiet: std::sync::atomic::AtomicBool,
}

impl Trail<'_> {
    fn next_seq(&self) -> usize {
        self.written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn written(&self) -> usize {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn quiet(&self) -> bool {
        self.quiet.load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub struct PluginService {
    plugin: Plugin,
    routes: Vec<String>,
    platform: Arc<Platform>,
}

/// The 404 for a path no plugin answers; `served` lists the routes that exist.
pub fn route_error(path: &str, served: &[String]) -> Error {
    match path.rsplit_once("/plugins/") {
        Some((_, name)) => Error::NotFound {
            code: "unknown_plugin",
            message: format!(
                "no plugin named '{name}' is served here; available: {}",
                served.join(", ")
            ),
        },
        None => Error::not_found(format!(
            "no route {path}; plugins answer POST /plugins/<name>"
        )),
    }
}

/// What a request's body may be, by the route it came on.
enum Shape {
    /// Any body a plugin route takes.
    Any,
    /// One voice platform's tool calls (its signed route).
    Platform(VoicePlatform),
    /// A platform's verified webhook, run by the plugin's webhook function for that
    /// platform with the body's fields; a repeat of it is recognised by its signature.
    Webhook(VoicePlatform, crate::signature::TwilioBody, String),
}

impl PluginService {
    /// The call a webhook's `fields` make: the plugin's webhook function for `platform`.
    fn webhook_envelope(
        &self,
        platform: VoicePlatform,
        fields: serde_json::Map<String, Value>,
    ) -> Result<Envelope, Error> {
        let function = self
            .plugin
            .manifest()
            .webhook_function(platform)
            .ok_or_else(|| Error::NotFound {
                code: "no_webhook",
                message: format!(
                    "the {} plugin answers no {platform} webhooks; point {platform} at a plugin that does",
                    self.plugin.name()
                ),
            })?;
        Ok(Envelope {
            function: function.name.to_string(),
            parameters: Value::Object(fields),
            session_id: None,
            caller_phone: None,
            retry_key: None,
            webhook: Some(platform),
        })
    }
}

/// A call as the pipeline sees it, whatever carried it (API Gateway event or `dev`).
pub struct CallInput<'a> {
    pub tenant: Option<TenantContext>,
    pub body: &'a [u8],
    pub request_id: &'a str,
    /// The `Idempotency-Key` header, if the request carried one.
    pub idempotency_key: Option<&'a str>,
}

impl PluginService {
    pub fn new(plugin: Plugin, platform: Arc<Platform>) -> Self {
        Self {
            routes: plugin.routes(),
            plugin,
            platform,
        }
    }

    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// `/plugins/<name>` and the plugin's legacy aliases.
    pub fn routes(&self) -> &[String] {
        &self.routes
    }

    /// Runs one call and returns `(status, body)` in the contract's envelope.
    pub async fn call(&self, input: CallInput<'_>) -> (u16, Value) {
        let out = self.respond(input).await;
        (out.status, out.body)
    }

    /// Runs one call: status, body in the contract's envelope, and whether it was replayed.
    pub async fn respond(&self, input: CallInput<'_>) -> CallOutput {
        let route = format!("POST /plugins/{}", self.plugin.name());
        self.respond_as(input, Shape::Any, &route).await
    }

    /// [`respond`](Self::respond), the body held to `shape`; `route` names the way it came
    /// in for the audit log.
    async fn respond_as(&self, input: CallInput<'_>, shape: Shape, route: &str) -> CallOutput {
        self.respond_from(input, shape, route, tokio::time::Instant::now())
            .await
    }

    /// [`respond_as`](Self::respond_as) for a request that arrived at `arrived`: its budget
    /// counts from then.
    async fn respond_from(
        &self,
        input: CallInput<'_>,
        shape: Shape,
        route: &str,
        arrived: tokio::time::Instant,
    ) -> CallOutput {
        let started = Instant::now();
        let started_at = self.platform.now();
        let trail = Trail {
            route,
            request_id: input.request_id,
            written: Default::default(),
            quiet: Default::default(),
        };
        let who = input.tenant.clone();
        let org = input.tenant.as_ref().map(|t| t.org.to_string());
        let key = input.tenant.as_ref().and_then(|t| t.key_id.clone());
        let span = tracing::info_span!(
            "call",
            request_id = input.request_id,
            org = org.as_deref().unwrap_or("-"),
            key = key.as_deref().unwrap_or("-"),
            plugin = %self.plugin.name(),
            function = tracing::field::Empty,
        );
        let result = self
            .run(input, shape, &trail, arrived)
            .instrument(span.clone())
            .await;
        // Refused before any function ran (scope, body, envelope, rate): one entry for the
        // request.
        if let (Err(e), Some(t), 0, false) = (&result, &who, trail.written(), trail.quiet()) {
            let subject = Subject {
                channel: t.channel.as_ref().map(ToString::to_string),
                key_id: t.key_id.clone(),
                route: route.to_owned(),
                plugin: Some(self.plugin.name().to_string()),
                request_id: trail.request_id.to_owned(),
                ..Subject::default()
            };
            let entry = subject.refused(&t.org, started_at, started, e);
            self.platform
                .write_audit(&t.org, entry, 0, arrived + ANSWER_BUDGET)
                .await;
        }
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        span.in_scope(|| match &result {
            Ok(_) => tracing::info!(status = 200, elapsed_us, "call ok"),
            Err(Error::Internal(cause)) => {
                tracing::error!(status = 500, elapsed_us, cause = %cause, "call failed: internal")
            }
            Err(e) if e.status() >= 500 => {
                tracing::warn!(
                    status = e.status(),
                    code = e.code(),
                    elapsed_us,
                    "call failed"
                )
            }
            Err(e) if trail.quiet() => tracing::debug!(
                status = e.status(),
                code = e.code(),
                elapsed_us,
                "call refused"
            ),
            Err(e) => tracing::info!(
                status = e.status(),
                code = e.code(),
                elapsed_us,
                "call refused"
            ),
        });
        let (status, body, replayed) = match result {
            Ok((Reply::Result(v), replayed)) => {
                (200, json!({"success": true, "result": v}), replayed)
            }
            Ok((Reply::Raw(v), replayed)) => (200, v, replayed),
            Err(e) => (e.status(), e.to_body(), false),
        };
        CallOutput {
            status,
            body,
            replayed,
        }
    }

    async fn run(
        &self,
        input: CallInput<'_>,
        shape: Shape,
        trail: &Trail<'_>,
        arrived: tokio::time::Instant,
    ) -> Result<(Reply, bool), Error> {
        let tenant = input.tenant.ok_or_else(no_tenant)?;
        if !tenant.scopes.iter().any(|s| s == CALL_SCOPE) {
            return Err(Error::Forbidden {
                code: "forbidden",
                message: format!(
                    "this credential lacks the '{CALL_SCOPE}' scope needed to call plugins"
                ),
            });
        }
        if input.body.len() > MAX_BODY_BYTES {
            return Err(Error::PayloadTooLarge {
                size: input.body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let header = input.idempotency_key.map(header_key).transpose()?;
        // Repeats of calls still running wait once per request, however many calls it has.
        let deadlines = Deadlines::from(arrived, self.platform.idempotency.wait_deadline());
        let incoming = match shape {
            Shape::Any => parse_body_as(input.body, None)?,
            Shape::Platform(p) => parse_body_as(input.body, Some(p))?,
            Shape::Webhook(p, kind, retry) => {
                let fields = signed::webhook_fields(kind, input.body)?;
                let mut envelope = self.webhook_envelope(p, fields)?;
                envelope.retry_key = Some(KeySource::Webhook(retry));
                Incoming::Call(envelope)
            }
        };
        let calls = match &incoming {
            Incoming::Call(_) => 1,
            Incoming::Vapi(calls) => calls.len(),
        };
        within(deadlines.work, self.platform.admit(&tenant, calls, trail)).await?;
        match incoming {
            Incoming::Call(mut envelope) => {
                if let Some(k) = header {
                    envelope.retry_key = Some(KeySource::Header(k));
                }
                let ran = self.audited(&tenant, envelope, deadlines, trail).await?;
                Ok((Reply::Result(ran.value), ran.replayed))
            }
            Incoming::Vapi(calls) => {
                // Vapi wants HTTP 200 with one single-line string per call.
                let mut results = Vec::with_capacity(calls.len());
                let mut all_replayed = true;
                for (id, mut envelope) in calls {
                    // One header for a batch: each call's key is the header and its id.
                    if let Some(k) = &header {
                        envelope.retry_key = Some(KeySource::Header(format!("{k}\n{id}")));
                    }
                    let function = envelope.function.clone();
                    let ran = self.audited(&tenant, envelope, deadlines, trail).await;
                    all_replayed &= ran.as_ref().is_ok_and(|r| r.replayed);
                    results.push(match ran.map(|r| r.value) {
                        Ok(Value::String(text)) => json!({"toolCallId": id, "result": text}),
                        Ok(v) => json!({"toolCallId": id, "result": v.to_string()}),
                        Err(e) => {
                            // The HTTP status is 200 whatever happens, so say it here.
                            match &e {
                                Error::Internal(cause) => tracing::error!(tool_call = %id, %function, cause = %cause, "vapi call failed: internal"),
                                _ => tracing::info!(tool_call = %id, %function, status = e.status(), code = e.code(), "vapi call refused"),
                            }
                            json!({"toolCallId": id, "error": e.to_string()})
                        }
                    });
                }
                Ok((Reply::Raw(json!({"results": results})), all_replayed))
            }
        }
    }

    /// [`run_one`](Self::run_one), and its audit entry written before it answers.
    async fn audited(
        &self,
        tenant: &TenantContext,
        envelope: Envelope,
        deadlines: Deadlines,
        trail: &Trail<'_>,
    ) -> Result<Ran, Error> {
        if self.platform.audit.is_none() {
            return self.run_one(tenant, envelope, deadlines).await;
        }
        let started_at = self.platform.now();
        let started = Instant::now();
        let subject = Subject {
            org: Some(tenant.org.clone()),
            channel: tenant.channel.as_ref().map(ToString::to_string),
            key_id: tenant.key_id.clone(),
            route: trail.route.to_owned(),
            plugin: Some(self.plugin.name().to_string()),
            function: Some(envelope.function.chars().take(128).collect()),
            idempotency_key: envelope.retry_key.as_ref().map(|k| k.id().to_owned()),
            request_id: trail.request_id.to_owned(),
            params_sha256: Some(audit::params_hash(&envelope.parameters)),
        };
        let result = self.run_one(tenant, envelope, deadlines).await;
        let (status, code, replayed) = match &result {
            Ok(r) => (200, None, r.replayed),
            Err(e) => (e.status(), Some(e.code()), false),
        };
        let entry = subject.entry(
            &tenant.org,
            started_at,
            started.elapsed(),
            status,
            code,
            replayed,
        );
        self.platform
            .write_audit(&tenant.org, entry, trail.next_seq(), deadlines.answer)
            .await;
        result
    }

    /// One function call, after the tenant and body checks: its work by the request's work
    /// deadline, then its idempotency record completed or released.
    async fn run_one(
        &self,
        tenant: &TenantContext,
        envelope: Envelope,
        d: Deadlines,
    ) -> Result<Ran, Error> {
        // The claim's token and key, known before the claim is tried: a claim that landed
        // while `ready` was cut off is released, since the call never ran.
        let token = crate::idempotency::new_token();
        let mut claiming = None;
        let ready = within(
            d.work,
            self.ready(tenant, envelope, d.wait, &token, &mut claiming),
        )
        .await;
        if let (Err(_), Some(key)) = (&ready, &claiming) {
            let release = self.platform.idempotency.release_if_ours(key, &token);
            if tokio::time::timeout_at(d.records(), release).await.is_err() {
                tracing::warn!(
                    "no time left to release the idempotency claim; it lapses after the in-progress window"
                );
            }
        }
        let (call, scope, claim) = match ready? {
            Ready::Replay(value) => {
                tracing::info!("idempotent replay");
                return Ok(Ran {
                    value,
                    replayed: true,
                });
            }
            Ready::Run(ready) => *ready,
        };
        let (result, cut) = if tokio::time::Instant::now() >= d.work {
            // Nothing ran yet: the claim is released below.
            (Err(out_of_time(false)), false)
        } else {
            match tokio::time::timeout_at(d.work, self.plugin.run(call, scope)).await {
                Ok(result) => (result, false),
                Err(_) => (Err(out_of_time(true)), true),
            }
        };
        if let Some(claim) = claim {
            let idempotency = &self.platform.idempotency;
            let settled = async {
                match (&result, cut) {
                    (Ok(value), _) => idempotency.complete(claim, value).await,
                    // A write of the function's may still land: the key stays held until the
                    // record lapses, so a retry does not run beside it.
                    (Err(_), true) => tracing::warn!(
                        "call cut off at its budget; its idempotency record lapses after the in-progress window"
                    ),
                    (Err(_), false) => idempotency.abandon(claim).await,
                }
            };
            if tokio::time::timeout_at(d.records(), settled).await.is_err() {
                tracing::warn!(
                    "no time left to complete or release the idempotency record; it lapses after the in-progress window"
                );
            }
        }
        result.map(|value| Ran {
            value,
            replayed: false,
        })
    }

    /// The lookups and checks before a call runs, and its idempotency claim.
    /// `claiming` is set to the record's key before the claim is tried, so the caller can
    /// release it if this is dropped; the claim is made with `token`.
    async fn ready(
        &self,
        tenant: &TenantContext,
        envelope: Envelope,
        deadline: tokio::time::Instant,
        token: &str,
        claiming: &mut Option<crate::ports::Key>,
    ) -> Result<Ready, Error> {
        let plugin = &self.plugin;
        let name = plugin.name();

        // A channel-bound key learns nothing about plugins outside its channel.
        let (channel_override, channel_locale) = match &tenant.channel {
            Some(channel) => {
                self.platform
                    .channel_override(&tenant.org, name, channel)
                    .await?
            }
            None => (None, None),
        };
        let instance = self.platform.instance(plugin, &tenant.org).await?;
        let instance = match instance {
            Some(i) if i.enabled => i,
            Some(_) => {
                return Err(Error::Forbidden {
                    code: "plugin_not_enabled",
                    message: format!("the {name} plugin is disabled for this organization"),
                });
            }
            None => {
                return Err(Error::Forbidden {
                    code: "plugin_not_enabled",
                    message: format!("the {name} plugin is not enabled for this organization"),
                });
            }
        };
        if let Some(msg) = &instance.version_mismatch {
            return Err(Error::Conflict {
                code: "version_mismatch",
                message: msg.clone(),
            });
        }
        // A webhook function runs only from its platform's verified webhook, and that
        // webhook runs nothing else: said before its parameters are checked.
        let function = plugin.resolve(&envelope.function)?;
        let declared = plugin
            .manifest()
            .function(function.as_str())
            .and_then(|f| f.webhook);
        if declared != envelope.webhook {
            return Err(match declared {
                Some(p) => Error::Forbidden {
                    code: "webhook_only",
                    message: format!(
                        "{function} answers {p}'s signed webhooks only (POST /channels/{p}/{{connection}}/{name}); no agent or key calls it"
                    ),
                },
                None => Error::internal(format!(
                    "a webhook was routed to {function}, which is no webhook function"
                )),
            });
        }
        // The request's own mistakes (function, parameters) come before the instance's.
        let call = plugin.prepare(&envelope.function, envelope.parameters)?;
        let config = instance.config.clone()?;
        let spec = channel_override.unwrap_or_else(|| instance.data_adapter.clone())?;
        let data = self.platform.data.build(
            &tenant.org,
            name,
            &spec,
            &plugin.manifest().manifest().indexes,
        )?;
        let api = self.platform.data.api(&tenant.org, &spec)?;
        let locale = self.platform.call_locale(&tenant.org, channel_locale).await;
        let scope = CallScope {
            locale,
            org: tenant.org.clone(),
            channel: tenant.channel.clone(),
            session_id: envelope.session_id,
            caller_phone: envelope.caller_phone,
            scopes: tenant.scopes.clone(),
            config,
            data,
            api,
            deferrals: self
                .platform
                .scheduler
                .as_ref()
                .map(|s| crate::schedule::Deferrals::new(s.clone(), tenant.into())),
            now: self.platform.now(),
        };
        // Only calls that change something, and only with a key to recognise a retry by; a
        // signed webhook always (its signature has no timestamp: a replay is answered from
        // the record, whatever the function does).
        let side_effects = envelope.webhook.is_some()
            || plugin
                .manifest()
                .function(call.function().as_str())
                .is_some_and(|f| f.has_side_effects());
        let claim = match envelope.retry_key.filter(|_| side_effects) {
            Some(source) => {
                let key = CallKey {
                    org: &tenant.org,
                    plugin: name,
                    function: call.function(),
                    source: &source,
                    params: call.params(),
                };
                let org_ttl = self.platform.idempotency_ttl(&tenant.org).await?;
                *claiming = Some(key.record_key());
                match self
                    .platform
                    .idempotency
                    .begin_as(&key, deadline, org_ttl, token.to_owned())
                    .await?
                {
                    Begin::Replay(value) => return Ok(Ready::Replay(value)),
                    Begin::Proceed(claim) => Some(claim),
                }
            }
            None => None,
        };
        Ok(Ready::Run(Box::new((call, scope, claim))))
    }
}
