//! Connections: the signed way in for Retell's and Vapi's tool calls and Twilio's webhooks
//! (no API key).

use super::*;
use crate::ids::PluginName;
use crate::ids::{ConnectionId, VoicePlatform};
use crate::registry::{Connection, OrgSnapshot};

impl AdminService {
    pub(super) async fn create_connection(&self, org: &OrgId, body: &[u8]) -> Reply {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NewConnection {
            platform: String,
            channel: String,
            credential: String,
        }
        let req: NewConnection = parse_as(body)?;
        let platform = VoicePlatform::parse(&req.platform).ok_or_else(|| {
            Error::invalid_field(
                "/platform",
                format!(
                    "'{}' is not a platform with signed routes; use retell, vapi or twilio",
                    req.platform.chars().take(64).collect::<String>()
                ),
            )
        })?;
        let channel = Channel::parse(req.channel)
            .map_err(|e| Error::invalid_field("/channel", e.to_string()))?;
        if self.registry.get_channel(org, &channel).await?.is_none() {
            return Err(Error::invalid_field(
                "/channel",
                format!(
                    "the channel '{channel}' is not configured; configure it first (PUT /admin/channels/{channel})"
                ),
            ));
        }
        // The metadata names the credential's fields, so the check reads no secret.
        let field = platform.secret_field();
        let meta = self
            .registry
            .get_credential_versioned(org, &req.credential)
            .await?;
        match meta {
            None => {
                return Err(Error::invalid_field(
                    "/credential",
                    format!(
                        "this organization has no credential '{}'; store the {platform} secret first (PUT /admin/credentials/<name> with {{\"value\": {{\"{field}\": \"…\"}}}})",
                        req.credential.chars().take(64).collect::<String>()
                    ),
                ));
            }
            Some(m) if !m.value.fields.iter().any(|f| f == field) => {
                return Err(Error::invalid_field(
                    "/credential",
                    format!(
                        "credential '{}' has no '{field}' field, which a {platform} connection signs with (it has: {})",
                        req.credential,
                        m.value.fields.join(", ")
                    ),
                ));
            }
            Some(_) => {}
        }
        let id = ConnectionId::generate()
            .map_err(|e| Error::internal(format!("no randomness for a connection id: {e}")))?;
        let conn = Connection {
            id,
            org: org.clone(),
            channel,
            platform,
            credential: req.credential,
            created: (self.clock)(),
        };
        self.registry.create_connection(&conn).await?;
        ok(201, self.connection_json(&conn).await?)
    }

    pub(super) async fn get_connection(&self, org: &OrgId, id: &str) -> Reply {
        let conn = self.own_connection(org, id).await?;
        ok(200, self.connection_json(&conn).await?)
    }

    /// The org's connections and their channels' assignments, from one partition query
    /// (and one batch read of manifests when a connection takes webhooks).
    pub(super) async fn list_connections(&self, org: &OrgId) -> Reply {
        let snap = self.registry.org_snapshot(org).await?;
        let hooks = self.webhook_plugins(&snap).await?;
        let mut out = Vec::new();
        for conn in &snap.connections {
            out.push(connection_json(conn, &snap, &hooks)?);
        }
        ok(200, json!({ "connections": out }))
    }

    /// The org's plugins whose pinned manifests answer a platform's webhooks, read only if a
    /// connection takes webhooks.
    async fn webhook_plugins(
        &self,
        snap: &OrgSnapshot,
    ) -> Result<Vec<(PluginName, VoicePlatform)>, Error> {
        if !snap.connections.iter().any(|c| c.platform.sends_webhooks()) {
            return Ok(Vec::new());
        }
        let pinned: Vec<(PluginName, String)> = snap
            .instances
            .iter()
            .map(|i| (i.value.plugin.clone(), i.value.pinned_version.clone()))
            .collect();
        let manifests = self.registry.get_manifests(&pinned).await?;
        Ok(manifests
            .iter()
            .flat_map(|m| {
                m.functions
                    .iter()
                    .filter_map(|f| f.webhook)
                    .map(|p| (m.name.clone(), p))
            })
            .collect())
    }

    pub(super) async fn delete_connection(&self, org: &OrgId, id: &str) -> Reply {
        let missing = || Error::not_found(format!("no connection '{}'", truncated(id)));
        let id = ConnectionId::parse(id).ok_or_else(missing)?;
        let conn = self.registry.delete_connection(org, &id).await?;
        let conn = conn.ok_or_else(missing)?;
        ok(200, to_json(&conn)?)
    }

    /// The org's own connection `id` (another org's is as absent as a made-up one).
    async fn own_connection(&self, org: &OrgId, id: &str) -> Result<Connection, Error> {
        let missing = || Error::not_found(format!("no connection '{}'", truncated(id)));
        let id = ConnectionId::parse(id).ok_or_else(missing)?;
        match self.registry.get_connection(&id).await? {
            Some(c) if c.org == *org => Ok(c),
            _ => Err(missing()),
        }
    }

    async fn connection_json(&self, conn: &Connection) -> Result<Value, Error> {
        let snap = self.registry.org_snapshot(&conn.org).await?;
        let hooks = if conn.platform.sends_webhooks() {
            self.webhook_plugins(&snap).await?
        } else {
            Vec::new()
        };
        connection_json(conn, &snap, &hooks)
    }
}

/// A connection and the paths its platform calls: one per plugin assigned and enabled on
/// its channel now (each plugin is its own function behind its own route); for a webhook
/// platform, only those plugins that answer its webhooks (`hooks`).
fn connection_json(
    conn: &Connection,
    snap: &OrgSnapshot,
    hooks: &[(PluginName, VoicePlatform)],
) -> Result<Value, Error> {
    let channel: Option<&ChannelConfig> = snap
        .channels
        .iter()
        .find(|(c, _)| c == &conn.channel)
        .map(|(_, v)| &v.value);
    let paths: Vec<String> = channel
        .map(|c| c.plugin_assignments.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|a| a.enabled)
        .filter(|a| {
            !conn.platform.sends_webhooks() || hooks.contains(&(a.plugin.clone(), conn.platform))
        })
        .map(|a| format!("/channels/{}/{}/{}", conn.platform, conn.id, a.plugin))
        .collect();
    let mut v = to_json(conn)?;
    v["paths"] = json!(paths);
    Ok(v)
}

fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}
