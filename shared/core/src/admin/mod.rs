//! The admin API (`/admin/…`): the write side of the registry for the tenant in the
//! authorizer context. Every write names the version it read (`If-Match` or a `version`
//! field); a stale one is 409 with the current version. This module routes; one module per
//! resource does the work.

mod bedrock;
mod channels;
mod connections;
mod credentials;
mod instances;
mod keys;
mod plugins;
mod preview;
mod profile;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::{self, AuditLog, Subject};
use crate::auth::{TenantContext, no_tenant};
use crate::error::{Detail, Error};
use crate::ids::{Channel, OrgId, PluginName};
use crate::manifest::{CompiledManifest, Manifest};
use crate::ports::AdapterCheck;
use crate::registry::{
    ApiKeyRecord, ChannelConfig, CredentialMeta, DataAdapterConfig, KeyHash, PluginInstance,
    Published, Registry, Versioned,
};
use crate::secrets::{SecretValue, Secrets};
use crate::spec::AdapterKind;

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

#[derive(Default)]
pub struct AdminRequest<'a> {
    pub tenant: Option<TenantContext>,
    pub method: &'a str,
    /// The path from `/admin` on (a stage prefix before it is ignored).
    pub path: &'a str,
    pub if_match: Option<&'a str>,
    pub body: &'a [u8],
    /// The query string's parameters (`GET /admin/audit`).
    pub query: &'a [(String, String)],
    /// API Gateway's request id, for the audit log.
    pub request_id: &'a str,
}

pub struct AdminService {
    registry: Registry,
    secrets: Arc<Secrets>,
    adapters: Arc<dyn AdapterCheck>,
    audit: Option<Arc<AuditLog>>,
    /// How the preview exports agents (the public URL Vapi's and Retell's formats need).
    export: crate::agent::dialects::ExportOptions,
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
    /// `secrets` stores credential values; `adapters` checks adapter configs on write.
    pub fn new(registry: Registry, secrets: Arc<Secrets>, adapters: Arc<dyn AdapterCheck>) -> Self {
        Self {
            registry,
            secrets,
            adapters,
            audit: None,
            export: crate::agent::dialects::ExportOptions::default(),
            clock: unix_now,
        }
    }

    /// Exports in the preview use `export` (as the agent builder's do).
    pub fn with_export(mut self, export: crate::agent::dialects::ExportOptions) -> Self {
        self.export = export;
        self
    }

    /// Writes an audit entry for every admin write into `audit`, and answers
    /// `GET /admin/audit` from it.
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    pub async fn handle(&self, req: AdminRequest<'_>) -> (u16, Value) {
        let started_at = std::time::SystemTime::now();
        let started = std::time::Instant::now();
        // A preview is a POST that writes nothing: no audit entry.
        let dry_run = req.method == "POST"
            && req.path.contains("/admin/channels/")
            && req.path.trim_end_matches('/').ends_with("/preview");
        let write = !matches!(req.method, "GET" | "HEAD" | "OPTIONS") && !dry_run;
        let trail = write.then(|| (req.tenant.clone(), self.subject(&req)));
        let (status, body) = match self.route(req).await {
            Ok(r) => r,
            Err(e) => {
                if e.status() >= 500 {
                    tracing::error!(error = ?e, "admin request failed");
                }
                (e.status(), e.to_body())
            }
        };
        if let (Some(log), Some((Some(tenant), subject))) = (&self.audit, trail) {
            let code = body["error"]["code"].as_str();
            let entry = subject.entry(
                &tenant.org,
                started_at,
                started.elapsed(),
                status,
                code,
                false,
            );
            let days = audit::retention_of(&self.registry, &tenant.org).await;
            log.record(&entry, 0, days).await;
        }
        (status, body)
    }

    /// What an admin write's audit entry says: the route, and a hash of the body (none for
    /// a credential's, whose values a hash of a guessable secret would give away).
    fn subject(&self, req: &AdminRequest<'_>) -> Subject {
        let path = match req.path.find("/admin/") {
            Some(i) => &req.path[i..],
            None => req.path,
        };
        let route = format!(
            "{} {}",
            req.method,
            path.chars().take(256).collect::<String>()
        );
        let hashed = !path.starts_with("/admin/credentials") && req.body.len() <= MAX_ADMIN_BODY;
        Subject {
            channel: None,
            key_id: req.tenant.as_ref().and_then(|t| t.key_id.clone()),
            route,
            request_id: req.request_id.to_owned(),
            params_sha256: serde_json::from_slice::<Value>(req.body)
                .ok()
                .filter(|_| hashed)
                .map(|v| audit::params_hash(&v)),
            ..Subject::default()
        }
    }

    async fn route(&self, req: AdminRequest<'_>) -> Reply {
        let tenant = req.tenant.clone().ok_or_else(no_tenant)?;
        // A channel's key configures nothing: it could otherwise assign itself any plugin.
        if let Some(channel) = &tenant.channel {
            return Err(Error::Forbidden {
                code: "forbidden",
                message: format!(
                    "this key is bound to the '{channel}' channel and cannot use the admin API; use an unbound admin key"
                ),
            });
        }
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
                if !crate::manifest::is_version(version) {
                    return Err(Error::invalid_request(format!(
                        "'{}' is not a version; versions look like 1.2.3",
                        version.chars().take(64).collect::<String>()
                    )));
                }
                let m = self.manifest(&plugin_name(name)?, version).await?;
                ok(200, to_json(&m)?)
            }
            ("POST", ["orgs"]) => {
                need(&tenant, SCOPE_ORGS)?;
                self.create_org(req.body).await
            }
            ("GET", ["audit"]) => {
                need(&tenant, audit::SCOPE)?;
                let Some(log) = &self.audit else {
                    return Err(Error::not_found("this deployment keeps no audit log"));
                };
                let now = std::time::SystemTime::now();
                let q = audit::AuditQuery::parse(req.query, now)?;
                let page = log.query(org, &q, now).await?;
                ok(200, page.to_json())
            }
            ("GET", ["whoami"]) => ok(
                200,
                json!({"org": org, "scopes": tenant.scopes, "key_id": tenant.key_id}),
            ),
            ("GET", ["profile"]) => {
                need(&tenant, SCOPE_READ)?;
                self.get_profile(org).await
            }
            ("PUT", ["profile"]) => {
                need(&tenant, SCOPE_WRITE)?;
                self.put_profile(org, req.if_match, req.body).await
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
            ("GET", ["channels"]) => {
                need(&tenant, SCOPE_READ)?;
                let snap = self.registry.org_snapshot(org).await?;
                let mut list: Vec<Value> = snap
                    .channels
                    .iter()
                    .map(|(c, v)| {
                        let mut out = versioned_json(v);
                        out["channel"] = json!(c);
                        out
                    })
                    .collect();
                list.sort_by(|a, b| a["channel"].as_str().cmp(&b["channel"].as_str()));
                ok(200, json!({ "channels": list }))
            }
            ("POST", ["channels", name, "preview"]) => {
                // Writes nothing: reading is enough.
                need(&tenant, SCOPE_READ)?;
                self.preview(org, &channel_name(name)?, req.body).await
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
            ("GET", ["connections"]) => {
                need(&tenant, SCOPE_READ)?;
                self.list_connections(org).await
            }
            ("POST", ["connections"]) => {
                need(&tenant, SCOPE_WRITE)?;
                self.create_connection(org, req.body).await
            }
            ("GET", ["connections", id]) => {
                need(&tenant, SCOPE_READ)?;
                self.get_connection(org, id).await
            }
            ("DELETE", ["connections", id]) => {
                need(&tenant, SCOPE_WRITE)?;
                self.delete_connection(org, id).await
            }
            ("GET", ["bedrock-agents"]) => {
                need(&tenant, SCOPE_READ)?;
                self.list_bedrock_agents(org).await
            }
            ("POST", ["bedrock-agents"]) => {
                need(&tenant, SCOPE_ORGS)?;
                self.create_bedrock_agent(req.body).await
            }
            ("GET", ["bedrock-agents", agent, alias]) => {
                self.get_bedrock_agent(&tenant, agent, alias).await
            }
            ("DELETE", ["bedrock-agents", agent, alias]) => {
                need(&tenant, SCOPE_ORGS)?;
                self.delete_bedrock_agent(agent, alias).await
            }
            ("GET", ["credentials"]) => {
                need(&tenant, SCOPE_READ)?;
                let list: Vec<Value> = self
                    .registry
                    .list_credentials(org)
                    .await?
                    .iter()
                    .map(versioned_json)
                    .collect();
                ok(200, json!({ "credentials": list }))
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
                    "plugins" | "instances" | "channels" | "keys" | "credentials" | "connections"
                    | "bedrock-agents",
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
}

/// 422 unless `manifest` lists the adapter type `kind` (the config at `at`).
fn supports(manifest: &Manifest, kind: AdapterKind, at: &str) -> Result<(), Error> {
    if manifest.data_adapters.is_empty() || manifest.data_adapters.contains(&kind) {
        return Ok(());
    }
    let listed: Vec<&str> = manifest.data_adapters.iter().map(|k| k.as_str()).collect();
    Err(Error::invalid_field(
        format!("{at}/type"),
        format!(
            "{} supports the data adapters {}, not '{kind}'",
            manifest.name,
            listed.join(", ")
        ),
    ))
}

fn secret_fields(secret: &SecretValue) -> Vec<String> {
    secret.field_names()
}

/// Whether the caller holds `scope` (`admin:write` includes `admin:read` and
/// `audit:read`).
fn holds(tenant: &TenantContext, scope: &str) -> bool {
    tenant.scopes.iter().any(|s| s == scope)
        || ((scope == SCOPE_READ || scope == audit::SCOPE)
            && tenant.scopes.iter().any(|s| s == SCOPE_WRITE))
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
