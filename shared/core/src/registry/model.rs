//! What the registry holds: org profiles, plugin instances, channel configs, API keys and
//! credential metadata, as the domain sees them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Detail, Error};
use crate::ids::{BedrockAgentRef, Channel, ConnectionId, OrgId, PluginName, VoicePlatform};
pub use crate::spec::DataAdapterConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgProfile {
    pub display_name: String,
    #[serde(default = "default_tz")]
    pub timezone: String,
    #[serde(default = "default_locale")]
    pub locale: String,
    /// How long idempotent calls are replayed; the platform's 24 h when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_ttl_hours: Option<u64>,
    /// How long the audit log keeps entries, in days; 90 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_retention_days: Option<u32>,
    /// Tool calls a second across the organization's channels; the platform's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// Further instruction variables (phone number, address, …).
    #[serde(default, flatten)]
    pub extra: Map<String, Value>,
}

// By hand, so a profile built in code gets the same defaults as one read without them.
impl Default for OrgProfile {
    fn default() -> Self {
        Self {
            display_name: String::new(),
            timezone: default_tz(),
            locale: default_locale(),
            idempotency_ttl_hours: None,
            audit_retention_days: None,
            rate_limit_per_second: None,
            extra: Map::new(),
        }
    }
}

fn default_tz() -> String {
    "UTC".to_owned()
}
fn default_locale() -> String {
    "en-US".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInstance {
    pub plugin: PluginName,
    pub enabled: bool,
    /// The manifest version this organization is pinned to.
    pub pinned_version: String,
    #[serde(default = "empty_object")]
    pub config: Value,
    #[serde(default)]
    pub data_adapter: DataAdapterConfig,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub plugin: PluginName,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_adapter: Option<DataAdapterConfig>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// The language the channel's agent speaks (BCP 47, e.g. `es-US`); the organization
    /// profile's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default)]
    pub plugin_assignments: Vec<Assignment>,
}

impl ChannelConfig {
    /// Parses a channel config as written by an operator: 422 with one detail per bad
    /// field (e.g. a non-integer priority) or a plugin assigned twice.
    pub fn from_json(value: &Value) -> Result<Self, Error> {
        let details = shape_problems(value);
        if !details.is_empty() {
            return Err(Error::Validation {
                code: "validation_failed",
                message: "the channel config is invalid".into(),
                details,
            });
        }
        let mut config: ChannelConfig =
            serde_json::from_value(value.clone()).map_err(|e| Error::Validation {
                code: "validation_failed",
                message: format!("the channel config is invalid: {e}"),
                details: vec![Detail::new("", e.to_string())],
            })?;
        config.validate()?;
        config.locale = config
            .locale
            .map(|l| crate::locale::canonical(&l).unwrap_or(l));
        Ok(config)
    }

    /// Refuses a plugin assigned twice.
    pub fn validate(&self) -> Result<(), Error> {
        let mut seen = std::collections::HashSet::new();
        let details: Vec<Detail> = self
            .plugin_assignments
            .iter()
            .enumerate()
            .filter(|(_, a)| !seen.insert(&a.plugin))
            .map(|(i, a)| {
                Detail::new(
                    format!("/plugin_assignments/{i}/plugin"),
                    format!("'{}' is assigned more than once", a.plugin),
                )
            })
            .collect();
        if details.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation {
                code: "validation_failed",
                message: "each plugin may be assigned to a channel once".into(),
                details,
            })
        }
    }
}

/// Field-by-field checks of a channel config, so each problem gets its own pointer.
fn shape_problems(value: &Value) -> Vec<Detail> {
    let mut out = Vec::new();
    let Some(obj) = value.as_object() else {
        return vec![Detail::new("", "a channel config must be a JSON object")];
    };
    if obj
        .get("instructions")
        .is_some_and(|i| !i.is_string() && !i.is_null())
    {
        out.push(Detail::new("/instructions", "must be a string"));
    }
    match obj.get("locale") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if crate::locale::is_tag(t) => {}
        Some(_) => out.push(Detail::new(
            "/locale",
            "must be a BCP 47 language tag, e.g. es-US or en",
        )),
    }
    let Some(list) = obj.get("plugin_assignments") else {
        return out;
    };
    let Some(list) = list.as_array() else {
        out.push(Detail::new("/plugin_assignments", "must be an array"));
        return out;
    };
    for (i, a) in list.iter().enumerate() {
        let at = format!("/plugin_assignments/{i}");
        if !a.is_object() {
            out.push(Detail::new(
                at,
                "must be an object {plugin, enabled, priority}",
            ));
            continue;
        }
        if !a
            .get("plugin")
            .and_then(Value::as_str)
            .is_some_and(crate::ids::is_valid_name)
        {
            out.push(Detail::new(format!("{at}/plugin"), "must be a plugin name"));
        }
        if !a.get("priority").is_some_and(|p| p.is_i64()) {
            out.push(Detail::new(format!("{at}/priority"), "must be an integer"));
        }
        if a.get("enabled").is_some_and(|e| !e.is_boolean()) {
            out.push(Detail::new(
                format!("{at}/enabled"),
                "must be true or false",
            ));
        }
        match a.get("data_adapter") {
            None | Some(Value::Null) => {}
            Some(d) if d.is_object() => {
                let at = format!("{at}/data_adapter");
                if let Err(Error::Validation { details, .. }) = DataAdapterConfig::from_json(d, &at)
                {
                    out.extend(details);
                }
            }
            Some(_) => out.push(Detail::new(
                format!("{at}/data_adapter"),
                "must be an object",
            )),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub org: OrgId,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Seconds since the Unix epoch.
    pub created: u64,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A channel-bound key calls only the plugins assigned and enabled on its channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Tool calls a second this key may make, within its organization's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
}

/// What an org may see of one of its keys: never the key, never its full hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyMeta {
    /// The first 16 hex digits of the key's SHA-256: enough to name it, useless to forge it.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    pub created: u64,
    pub revoked: bool,
}

/// A stored credential as the registry knows it: the reference and field names, no value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialMeta {
    pub name: String,
    pub reference: String,
    /// Seconds since the Unix epoch.
    pub updated: u64,
    pub fields: Vec<String>,
}

/// An Amazon Bedrock agent alias mapped to the organization and channel its action groups
/// run as. Written by a platform operator only: the agents live in the operator's account
/// (the plugin functions' Bedrock permission names them), and the event's own attributes are
/// the end user's to influence, so they never choose the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BedrockAgent {
    pub agent: BedrockAgentRef,
    pub org: OrgId,
    pub channel: Channel,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// A voice platform's (or Twilio's webhooks') way in: requests to
/// `/channels/<platform>/<id>/<plugin>` signed with the secret in `credential` run as `org`,
/// on `channel`, with only `plugins:call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub org: OrgId,
    pub channel: Channel,
    pub platform: VoicePlatform,
    /// The name of the org's credential that holds the signing secret.
    pub credential: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// A new API key: `prefix` + 32 bytes from the OS RNG, base64url (43 characters).
pub fn new_api_key(prefix: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::from(prefix);
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    Ok(out)
}

/// The SHA-256 of an API key, hex-encoded: the only form in which keys are stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(pub(crate) String);

/// The SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(bytes) {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

impl KeyHash {
    pub fn of(secret: &str) -> Self {
        Self(sha256_hex(secret.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's public id: the first 16 hex digits of its hash.
    pub fn id(&self) -> &str {
        self.0.get(..16).unwrap_or(&self.0)
    }
}

/// A value with the optimistic-lock version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// Everything under one organization's partition, read in one query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgSnapshot {
    pub profile: Option<Versioned<OrgProfile>>,
    pub instances: Vec<Versioned<PluginInstance>>,
    pub channels: Vec<(Channel, Versioned<ChannelConfig>)>,
    /// The org's voice-platform connections (their index entries).
    pub connections: Vec<Connection>,
    /// The Bedrock agent aliases mapped to the org (their index entries).
    pub bedrock_agents: Vec<BedrockAgent>,
}

/// A plugin in the library and its published versions, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryEntry {
    pub name: PluginName,
    pub versions: Vec<String>,
}

/// Result of publishing a manifest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Created,
    /// The same content was already published under that version.
    Unchanged,
}
