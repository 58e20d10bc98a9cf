//! The admin API (`/admin/…`): the write side of the registry for the tenant in the
//! authorizer context. Every write names the version it read (`If-Match` or a `version`
//! field); a stale one is 409 with the current version.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::adapters::DataAdapters;
use crate::auth::{TenantContext, no_tenant};
use crate::error::{Detail, Error};
use crate::ids::{Channel, OrgId, PluginName};
use crate::manifest::{CompiledManifest, Manifest};
use crate::registry::{
    ApiKeyRecord, ChannelConfig, CredentialMeta, DataAdapterConfig, KeyHash, PluginInstance,
    Published, Registry, Versioned,
};
use crate::secrets::SecretValue;

/// Reads the org's instances, channels, keys and credential metadata.
pub const SCOPE_READ: &str = "admin:read";
/// Writes them (implies read).
pub const SCOPE_WRITE: &str = "admin:write";
/// Publishes manifests to the shared plugin library: a platform operator's scope.
pub const SCOPE_PUBLISH: &str = "platform:publish";

/// Creates organizations (their profile and first admin key): a platform operator's scope.
pub const SCOPE_ORGS: &str = "platform:orgs";
/// What a new organization's first key holds unless the operator names fewer.
pub const TENANT_SCOPES: [&str; 3] = ["admin:write", "plugins:call", "agents:read"];

/// Admin bodies are small documents; manifests are the largest.
pub const MAX_ADMIN_BODY: usize = 256 * 1024;

pub struct AdminRequest<'a> {
    pub tenant: Option<TenantContext>,
    pub method: &'a str,
    /// The path from `/admin` on (a stage prefix before it is ignored).
    pub path: &'a str,
    pub if_match: Option<&'a str>,
    pub body: &'a [u8],
}

pub struct AdminService {
    registry: Registry,
    adapters: Arc<DataAdapters>,
    clock: fn() -> u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

type Reply = Result<(u16, Value), Error>;

fn ok(status: u16, result: Value) -> Reply {
    Ok((status, json!({"success": true, "result": result})))
}

impl AdminService {
    pub fn new(registry: Registry, adapters: Arc<DataAdapters>) -> Self {
        Self {
            registry,
            adapters,
            clock: unix_now,
        }
    }

    pub async fn handle(&self, req: AdminRequest<'_>) -> (u16, Value) {
        match self.route(req).await {
            Ok(r) => r,
            Err(e) => {
                if e.status() >= 500 {
                    tracing::error!(error = ?e, "admin request failed");
                }
                (e.status(), e.to_body())
            }
        }
    }

    async fn route(&self, req: AdminRequest<'_>) -> Reply {
        let tenant = req.tenant.clone().ok_or_else(no_tenant)?;
        if req.body.len() > MAX_ADMIN_BODY {
            return Err(Error::PayloadTooLarge {
                size: req.body.len(),
                limit: MAX_ADMIN_BODY,
            });
        }
        let tail = match req.path.find("/admin/") {
            Some(i) => &req.path[i + "/admin/".len()..],
            None => return Err(Error::not_found(format!("no admin route {}", req.path))),
        };
        let parts: Vec<&str> = tail.trim_end_matches('/').split('/').collect();
        let org = &tenant.org;
        match (req.method, parts.as_slice()) {
            ("GET", ["plugins"]) => {
                need(&tenant, SCOPE_READ)?;
                self.list_plugins().await
            }
            ("POST", ["plugins"]) => {
                need(&tenant, SCOPE_PUBLISH)?;
                self.publish(req.body).await
            }
            ("GET", ["plugins", name]) => {
                need(&tenant, SCOPE_READ)?;
                self.plugin_versions(&plugin_name(name)?).await
            }
            ("GET", ["plugins", name, "versions", version]) => {
                need(&tenant, SCOPE_READ)?;
                let m = self.manifest(&plugin_name(name)?, version).await?;
                ok(200, to_json(&m)?)
            }
            ("POST", ["orgs"]) => {
                need(&tenant, SCOPE_ORGS)?;
                self.create_org(req.body).await
            }
            ("GET", ["instances"]) => {
                need(&tenant, SCOPE_READ)?;
                let snap = self.registry.org_snapshot(org).await?;
                let list: Vec<Value> = snap.instances.iter().map(versioned_json).collect();
                ok(200, json!({ "instances": list }))
            }
            ("GET", ["instances", name]) => {
                need(&tenant, SCOPE_READ)?;
                let p = plugin_name(name)?;
                let inst = self.registry.get_instance(org, &p).await?;
                let inst = inst.ok_or_else(|| not_enabled(&p))?;
                ok(200, versioned_json(&inst))
            }
            ("PUT", ["instances", name]) => {
                need(&tenant, SCOPE_WRITE)?;
                self.put_instance(org, &plugin_name(name)?, req.if_match, req.body)
                    .await
            }
            ("GET", ["channels", name]) => {
                need(&tenant, SCOPE_READ)?;
                let c = channel_name(name)?;
                let chan = self.registry.get_channel(org, &c).await?;
                let chan = chan
                    .ok_or_else(|| Error::not_found(format!("channel '{c}' is not configured")))?;
                ok(200, versioned_json(&chan))
            }
            ("PUT", ["channels", name]) => {
                need(&tenant, SCOPE_WRITE)?;
                self.put_channel(org, &channel_name(name)?, req.if_match, req.body)
                    .await
            }
            ("GET", ["keys"]) => {
                need(&tenant, SCOPE_READ)?;
                let keys = self.registry.list_api_keys(org).await?;
                ok(200, json!({ "keys": keys }))
            }
            ("POST", ["keys"]) => {
                need(&tenant, SCOPE_WRITE)?;
                self.create_key(&tenant, req.body).await
            }
            ("DELETE", ["keys", id]) => {
                need(&tenant, SCOPE_WRITE)?;
                let meta = self.registry.revoke_api_key(org, id).await?;
                let meta = meta.ok_or_else(|| Error::not_found(format!("no key '{id}'")))?;
                ok(200, to_json(&meta)?)
            }
            ("GET", ["credentials", name]) => {
                need(&tenant, SCOPE_READ)?;
                let meta = self.registry.get_credential_versioned(org, name).await?;
                let meta =
                    meta.ok_or_else(|| Error::not_found(format!("no credential '{name}'")))?;
                ok(200, versioned_json(&meta))
            }
            ("PUT", ["credentials", name]) => {
                need(&tenant, SCOPE_WRITE)?;
                self.put_credential(org, name, req.if_match, req.body).await
            }
            (
                _,
                [
                    "plugins" | "instances" | "channels" | "keys" | "credentials",
                    ..,
                ],
            ) => Err(Error::MethodNotAllowed(format!(
                "{} is not supported on /admin/{tail}",
                req.method
            ))),
            _ => Err(Error::not_found(format!(
                "no admin route /admin/{tail}; see the README's admin API section"
            ))),
        }
    }

    async fn list_plugins(&self) -> Reply {
        let out: Vec<Value> = self
            .registry
            .library()
            .await?
            .into_iter()
            .map(|e| json!({"name": e.name, "latest": e.versions.last(), "versions": e.versions}))
            .collect();
        ok(200, json!({ "plugins": out }))
    }

    async fn plugin_versions(&self, name: &PluginName) -> Reply {
        let versions = self.registry.manifest_versions(name).await?;
        let Some(latest) = versions.last() else {
            return Err(unknown_plugin(name));
        };
        let manifest = self.manifest(name, latest).await?;
        ok(
            200,
            json!({"name": name, "latest": latest, "versions": versions, "manifest": manifest}),
        )
    }

    async fn manifest(&self, name: &PluginName, version: &str) -> Result<Manifest, Error> {
        self.registry
            .get_manifest(name, version)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!("plugin {name} has no published version {version}"))
            })
    }

    async fn publish(&self, body: &[u8]) -> Reply {
        let value = parse_body(body)?;
        // The whole manifest is checked: its own schema and every embedded schema compiles.
        let compiled = CompiledManifest::from_value(value).map_err(Error::from)?;
        let m = compiled.manifest();
        match self.registry.publish_manifest(m).await {
            Ok(Published::Created) => ok(
                201,
                json!({"name": m.name, "version": m.version, "created": true}),
            ),
            Ok(Published::Unchanged) => ok(
                200,
                json!({"name": m.name, "version": m.version, "created": false}),
            ),
            Err(crate::ports::StoreError::Conflict { .. }) => Err(Error::conflict(format!(
                "{} {} is already published with different content; versions are immutable, publish a new version",
                m.name, m.version
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_instance(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Reply {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Patch {
            enabled: Option<bool>,
            pinned_version: Option<String>,
            config: Option<Value>,
            data_adapter: Option<DataAdapterConfig>,
            version: Option<u64>,
        }
        let patch: Patch = parse_as(body)?;
        let expected = expected_version(if_match, patch.version)?;
        let current = self.registry.get_instance(org, plugin).await?;
        check_version(&current, expected, &format!("instance {plugin}"))?;

        let versions = self.registry.manifest_versions(plugin).await?;
        let Some(latest) = versions.last() else {
            return Err(unknown_plugin(plugin));
        };
        let base = current.as_ref().map(|c| c.value.clone());
        let pinned = patch
            .pinned_version
            .or_else(|| base.as_ref().map(|b| b.pinned_version.clone()))
            .unwrap_or_else(|| latest.clone());
        if !versions.contains(&pinned) {
            return Err(Error::invalid_field(
                "/pinned_version",
                format!(
                    "plugin {plugin} has no published version {pinned}; published: {}",
                    versions.join(", ")
                ),
            ));
        }
        let config = patch
            .config
            .or_else(|| base.as_ref().map(|b| b.config.clone()))
            .unwrap_or_else(|| json!({}));
        if !config.is_object() {
            return Err(Error::invalid_field("/config", "must be an object"));
        }
        let manifest = self.manifest(plugin, &pinned).await?;
        let compiled = CompiledManifest::compile(manifest).map_err(Error::from)?;
        let upgrading = base.as_ref().is_some_and(|b| b.pinned_version != pinned);
        compiled
            .validate_config(&compiled.effective_config(&config))
            .map_err(|e| match e {
                Error::Validation { details, .. } if upgrading => Error::Validation {
                    code: "invalid_config",
                    message: format!(
                        "the current config fails {plugin} {pinned}'s config_schema; change these fields with the upgrade: {}",
                        details.iter().map(|d| if d.path.is_empty() { "/" } else { d.path.as_str() }).collect::<Vec<_>>().join(", ")
                    ),
                    details: prefixed("/config", details),
                },
                Error::Validation { code, message, details } => Error::Validation {
                    code,
                    message,
                    details: prefixed("/config", details),
                },
                other => other,
            })?;
        let data_adapter = patch
            .data_adapter
            .or_else(|| base.as_ref().map(|b| b.data_adapter.clone()))
            .unwrap_or_default();
        if !compiled.manifest().data_adapters.is_empty()
            && !compiled
                .manifest()
                .data_adapters
                .contains(&data_adapter.kind)
        {
            return Err(Error::invalid_field(
                "/data_adapter/type",
                format!(
                    "{plugin} supports the data adapters {}, not '{}'",
                    compiled.manifest().data_adapters.join(", "),
                    data_adapter.kind
                ),
            ));
        }
        let enabled = patch
            .enabled
            .or_else(|| base.as_ref().map(|b| b.enabled))
            .unwrap_or(true);
        // Re-checked (credential resolved) only when it changes or the instance is switched
        // on, so disabling works during a Secrets Manager outage or after a secret is gone.
        let adapter_changed = base.as_ref().is_none_or(|b| b.data_adapter != data_adapter);
        let enabling = enabled && !base.as_ref().is_some_and(|b| b.enabled);
        if adapter_changed || enabling {
            self.adapters
                .check(org, &data_adapter, "/data_adapter")
                .await?;
        }
        let instance = PluginInstance {
            plugin: plugin.clone(),
            enabled,
            pinned_version: pinned,
            config,
            data_adapter,
        };
        let version = self
            .registry
            .put_instance(org, &instance, current.as_ref().map(|c| c.version))
            .await?;
        let status = if current.is_some() { 200 } else { 201 };
        ok(
            status,
            versioned_json(&Versioned {
                value: instance,
                version,
            }),
        )
    }

    async fn put_channel(
        &self,
        org: &OrgId,
        channel: &Channel,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let mut value = parse_body(body)?;
        let body_version =
            match value.as_object_mut().and_then(|m| m.remove("version")) {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    Error::invalid_field("/version", "must be a positive integer")
                })?),
            };
        let expected = expected_version(if_match, body_version)?;
        let config = ChannelConfig::from_json(&value)?;
        let current = self.registry.get_channel(org, channel).await?;
        check_version(&current, expected, &format!("channel {channel}"))?;

        let snap = self.registry.org_snapshot(org).await?;
        let mut details = Vec::new();
        for (i, a) in config.plugin_assignments.iter().enumerate() {
            let enabled = snap
                .instances
                .iter()
                .any(|inst| inst.value.plugin == a.plugin && inst.value.enabled);
            if !enabled {
                details.push(Detail::new(
                    format!("/plugin_assignments/{i}/plugin"),
                    format!(
                        "{} is not enabled for this organization; enable it first",
                        a.plugin
                    ),
                ));
            }
        }
        if !details.is_empty() {
            return Err(Error::Validation {
                code: "validation_failed",
                message: format!(
                    "the channel assigns plugins this organization has not enabled: {}",
                    details
                        .iter()
                        .map(|d| d.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                details,
            });
        }
        for (i, a) in config.plugin_assignments.iter().enumerate() {
            let Some(d) = &a.data_adapter else { continue };
            let at = format!("/plugin_assignments/{i}/data_adapter");
            if let Some(inst) = snap.instances.iter().find(|x| x.value.plugin == a.plugin) {
                let m = self.manifest(&a.plugin, &inst.value.pinned_version).await?;
                if !m.data_adapters.is_empty() && !m.data_adapters.contains(&d.kind) {
                    return Err(Error::invalid_field(
                        format!("{at}/type"),
                        format!(
                            "{} supports the data adapters {}, not '{}'",
                            a.plugin,
                            m.data_adapters.join(", "),
                            d.kind
                        ),
                    ));
                }
            }
            self.adapters.check(org, d, &at).await?;
        }
        let version = self
            .registry
            .put_channel(org, channel, &config, current.as_ref().map(|c| c.version))
            .await?;
        let status = if current.is_some() { 200 } else { 201 };
        ok(
            status,
            versioned_json(&Versioned {
                value: config,
                version,
            }),
        )
    }

    async fn create_key(&self, tenant: &TenantContext, body: &[u8]) -> Reply {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NewKey {
            name: Option<String>,
            scopes: Vec<String>,
        }
        let req: NewKey = parse_as(body)?;
        if req.scopes.is_empty() {
            return Err(Error::invalid_field("/scopes", "name at least one scope"));
        }
        // A key can never hold more than the key that created it.
        let beyond: Vec<&str> = req
            .scopes
            .iter()
            .filter(|s| !holds(tenant, s))
            .map(String::as_str)
            .collect();
        if !beyond.is_empty() {
            return Err(Error::Forbidden {
                code: "forbidden",
                message: format!(
                    "a key cannot grant scopes its creator lacks: {}",
                    beyond.join(", ")
                ),
            });
        }
        let secret = new_key_secret()?;
        let hash = KeyHash::of(&secret);
        let record = ApiKeyRecord {
            org: tenant.org.clone(),
            scopes: req.scopes,
            created: (self.clock)(),
            revoked: false,
            name: req.name,
        };
        let meta = self.registry.create_api_key(&hash, &record).await?;
        let mut out = to_json(&meta)?;
        if let Value::Object(m) = &mut out {
            m.insert("key".into(), Value::String(secret));
            m.insert(
                "note".into(),
                json!("the key is shown only now; only its SHA-256 is stored"),
            );
        }
        ok(201, out)
    }

    /// A new organization: its profile and a first key for its own admin, returned once.
    /// Platform scopes can never be granted to a tenant this way.
    async fn create_org(&self, body: &[u8]) -> Reply {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NewOrg {
            org: String,
            display_name: String,
            timezone: Option<String>,
            locale: Option<String>,
            scopes: Option<Vec<String>>,
        }
        let req: NewOrg = parse_as(body)?;
        let org = OrgId::parse(req.org).map_err(|e| Error::invalid_field("/org", e.to_string()))?;
        if let Some(tz) = &req.timezone
            && jiff::tz::TimeZone::get(tz).is_err()
        {
            return Err(Error::invalid_field(
                "/timezone",
                format!("'{tz}' is not an IANA time zone, e.g. America/New_York"),
            ));
        }
        let scopes = req
            .scopes
            .unwrap_or_else(|| TENANT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
        if scopes.is_empty() {
            return Err(Error::invalid_field(
                "/scopes",
                format!("name at least one scope, e.g. {}", TENANT_SCOPES.join(", ")),
            ));
        }
        for (i, sc) in scopes.iter().enumerate() {
            let well_formed = sc
                .split_once(':')
                .is_some_and(|(a, b)| crate::ids::is_valid_name(a) && crate::ids::is_valid_name(b));
            if !well_formed {
                return Err(Error::invalid_field(
                    format!("/scopes/{i}"),
                    format!("'{sc}' is not a scope; scopes look like 'admin:write'"),
                ));
            }
            if sc.starts_with("platform:") {
                return Err(Error::invalid_field(
                    format!("/scopes/{i}"),
                    format!("'{sc}' is a platform scope; an organization's key cannot hold it"),
                ));
            }
        }
        let mut profile = crate::registry::OrgProfile {
            display_name: req.display_name,
            ..Default::default()
        };
        profile.timezone = req.timezone.unwrap_or_else(|| "UTC".into());
        profile.locale = req.locale.unwrap_or_else(|| "en-US".into());
        // Any item in the partition (a key, an instance) means the org exists, profile or not.
        if self.registry.org_exists(&org).await? {
            return Err(Error::conflict(format!(
                "organization {org} already exists"
            )));
        }
        let secret = new_key_secret()?;
        let record = ApiKeyRecord {
            org: org.clone(),
            scopes,
            created: (self.clock)(),
            revoked: false,
            name: Some("first admin key".into()),
        };
        // Profile and first key together, or neither: an org without a key could never get one.
        let meta = match self
            .registry
            .create_org(&org, &profile, &KeyHash::of(&secret), &record)
            .await
        {
            Ok(m) => m,
            Err(crate::ports::StoreError::Conflict { .. }) => {
                return Err(Error::conflict(format!(
                    "organization {org} already exists"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        ok(
            201,
            json!({"org": org, "key": secret, "key_id": meta.id, "scopes": meta.scopes,
                   "note": "the key is shown only now; only its SHA-256 is stored"}),
        )
    }

    async fn put_credential(
        &self,
        org: &OrgId,
        name: &str,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Reply {
        // Fixed messages only: a parser's message could quote the secret.
        const SHAPE: &str = "the body must be {\"value\": {…}, \"version\"?: n} with a non-empty object of string fields";
        let Value::Object(mut doc) = serde_json::from_slice::<Value>(body)
            .map_err(|_| Error::invalid_request("the body is not valid JSON"))?
        else {
            return Err(Error::invalid_field("", SHAPE));
        };
        let version =
            match doc.remove("version") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    Error::invalid_field("/version", "must be a positive integer")
                })?),
            };
        let value = match (doc.remove("value"), doc.is_empty()) {
            (Some(Value::Object(m)), true) if !m.is_empty() => m,
            _ => return Err(Error::invalid_field("/value", SHAPE)),
        };
        let expected = expected_version(if_match, version)?;
        if !crate::ids::is_valid_name(name) {
            return Err(Error::invalid_request(
                "a credential name is 1 to 64 characters from a-z, A-Z, 0-9, '_' and '-'",
            ));
        }
        let current = self.registry.get_credential_versioned(org, name).await?;
        check_version(&current, expected, &format!("credential {name}"))?;
        let secret = SecretValue::new(value);
        let meta = CredentialMeta {
            name: name.to_owned(),
            reference: self.adapters.secrets().name_for(org, name),
            updated: (self.clock)(),
            fields: secret_fields(&secret),
        };
        // The conditional registry write is the lock: of two writers holding one version,
        // only the winner goes on to write the secret, so the loser's 409 means "not applied".
        let version = self
            .registry
            .put_credential(org, &meta, current.as_ref().map(|c| c.version))
            .await?;
        if let Err(e) = self.adapters.secrets().store(org, name, &secret).await {
            // Put the previous metadata back (as a new version) so it describes what is stored.
            let restore = match &current {
                Some(c) => self
                    .registry
                    .put_credential(org, &c.value, Some(version))
                    .await
                    .map(|_| ()),
                None => self.registry.delete_credential(org, name, version).await,
            };
            if let Err(r) = restore {
                tracing::error!(credential = name, error = %r, "could not restore credential metadata");
            }
            return Err(e);
        }
        let status = if current.is_some() { 200 } else { 201 };
        ok(
            status,
            versioned_json(&Versioned {
                value: meta,
                version,
            }),
        )
    }
}

fn secret_fields(secret: &SecretValue) -> Vec<String> {
    secret.field_names()
}

/// Whether the caller holds `scope` (`admin:write` includes `admin:read`).
fn holds(tenant: &TenantContext, scope: &str) -> bool {
    tenant.scopes.iter().any(|s| s == scope)
        || (scope == SCOPE_READ && tenant.scopes.iter().any(|s| s == SCOPE_WRITE))
}

fn need(tenant: &TenantContext, scope: &str) -> Result<(), Error> {
    if holds(tenant, scope) {
        Ok(())
    } else {
        Err(Error::Forbidden {
            code: "forbidden",
            message: format!("this key lacks the '{scope}' scope"),
        })
    }
}

fn plugin_name(s: &str) -> Result<PluginName, Error> {
    PluginName::parse(s).map_err(|e| Error::invalid_request(e.to_string()))
}

fn channel_name(s: &str) -> Result<Channel, Error> {
    Channel::parse(s).map_err(|e| Error::invalid_request(e.to_string()))
}

fn unknown_plugin(p: &PluginName) -> Error {
    Error::NotFound {
        code: "unknown_plugin",
        message: format!("no plugin named {p} is published"),
    }
}

fn not_enabled(p: &PluginName) -> Error {
    Error::NotFound {
        code: "not_found",
        message: format!("{p} has no instance in this organization"),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, Error> {
    if body.is_empty() {
        return Err(Error::invalid_request("the request needs a JSON body"));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid_request(format!("the body is not valid JSON: {e}")))
}

fn parse_as<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let v = parse_body(body)?;
    serde_json::from_value(v).map_err(|e| Error::Validation {
        code: "validation_failed",
        message: format!("the body is invalid: {e}"),
        details: vec![Detail::new("", e.to_string())],
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::internal(e.to_string()))
}

fn versioned_json<T: serde::Serialize>(v: &Versioned<T>) -> Value {
    let mut out = serde_json::to_value(&v.value).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut out {
        m.insert("version".into(), json!(v.version));
    }
    out
}

fn prefixed(at: &str, details: Vec<Detail>) -> Vec<Detail> {
    details
        .into_iter()
        .map(|d| Detail::new(format!("{at}{}", d.path), d.message))
        .collect()
}

/// The version a write expects: `If-Match` (an integer, quotes allowed) or the body's.
fn expected_version(if_match: Option<&str>, body: Option<u64>) -> Result<Option<u64>, Error> {
    let header = match if_match {
        None => None,
        Some(h) => Some(h.trim().trim_matches('"').parse::<u64>().map_err(|_| {
            Error::invalid_request("If-Match must be the item's version, e.g. If-Match: \"3\"")
        })?),
    };
    match (header, body) {
        (Some(h), Some(b)) if h != b => Err(Error::invalid_request(format!(
            "If-Match ({h}) and the body's version ({b}) disagree"
        ))),
        (h, b) => Ok(h.or(b)),
    }
}

/// An update must name the current version; a create must not name one.
fn check_version<T>(
    current: &Option<Versioned<T>>,
    expected: Option<u64>,
    what: &str,
) -> Result<(), Error> {
    match (current, expected) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(Error::conflict(format!(
            "{what} does not exist yet; create it without a version"
        ))),
        (Some(c), None) => Err(Error::conflict(format!(
            "{what} exists; send its current version {} (If-Match or \"version\")",
            c.version
        ))),
        (Some(c), Some(v)) if c.version != v => Err(Error::conflict(format!(
            "{what} changed concurrently; current version is {}",
            c.version
        ))),
        _ => Ok(()),
    }
}

fn new_key_secret() -> Result<String, Error> {
    crate::registry::new_api_key("sb_live_")
        .map_err(|e| Error::internal(format!("no randomness for a key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_and_body_versions() {
        assert_eq!(expected_version(Some("\"3\""), None).unwrap(), Some(3));
        assert_eq!(expected_version(None, Some(4)).unwrap(), Some(4));
        assert_eq!(expected_version(Some("x"), None).unwrap_err().status(), 400);
        assert_eq!(
            expected_version(Some("3"), Some(4)).unwrap_err().status(),
            400
        );
    }

    #[test]
    fn key_secrets_are_long_and_distinct() {
        let a = new_key_secret().unwrap();
        let b = new_key_secret().unwrap();
        assert!(a.starts_with("sb_live_") && a.len() == 8 + 43, "{a}");
        assert_ne!(a, b);
    }
}
