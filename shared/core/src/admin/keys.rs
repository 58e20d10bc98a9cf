//! Organizations and their API keys.

use super::*;

/// What a channel-bound key may hold: calling its channel's plugins and reading its agent.
const CHANNEL_SCOPES: [&str; 2] = ["plugins:call", "agents:read"];

impl AdminService {
    pub(super) async fn create_key(&self, tenant: &TenantContext, body: &[u8]) -> Reply {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NewKey {
            name: Option<String>,
            scopes: Vec<String>,
            channel: Option<String>,
            rate_limit_per_second: Option<u64>,
        }
        let req: NewKey = parse_as(body)?;
        let max = crate::ratelimit::MAX_PER_SECOND;
        let asked = super::profile::in_range(
            req.rate_limit_per_second,
            max,
            "/rate_limit_per_second",
            |l| {
                format!(
                    "give 1 to {max} tool calls per second, not {l}, or leave it out for the organization's limit alone"
                )
            },
        )?;
        // A key never holds more than the key that created it: a limited creator's keys
        // are limited at most as it is.
        let rate_limit = match (asked, tenant.key_rate_limit) {
            (Some(a), Some(own)) if a > own => {
                return Err(Error::Forbidden {
                    code: "forbidden",
                    message: format!(
                        "a key cannot get a higher rate limit than its creator's {own} tool calls per second, not {a}"
                    ),
                });
            }
            (None, own) => own,
            (asked, _) => asked,
        };
        let channel = req
            .channel
            .map(|c| Channel::parse(c).map_err(|e| Error::invalid_field("/channel", e.to_string())))
            .transpose()?;
        if let Some(channel) = &channel {
            // Admin and platform scopes reach past any one channel.
            if let Some((i, s)) = req
                .scopes
                .iter()
                .enumerate()
                .find(|(_, s)| !CHANNEL_SCOPES.contains(&s.as_str()))
            {
                return Err(Error::invalid_field(
                    format!("/scopes/{i}"),
                    format!(
                        "a key bound to a channel holds only {}, not '{s}'",
                        CHANNEL_SCOPES.join(" and ")
                    ),
                ));
            }
            // A typo would make a key that only ever gets 403.
            if self
                .registry
                .get_channel(&tenant.org, channel)
                .await?
                .is_none()
            {
                return Err(Error::invalid_field(
                    "/channel",
                    format!(
                        "the channel '{channel}' is not configured; configure it first (PUT /admin/channels/{channel})"
                    ),
                ));
            }
        }
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
            channel,
            rate_limit_per_second: rate_limit,
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
    pub(super) async fn create_org(&self, body: &[u8]) -> Reply {
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
        if let Some(tz) = req.timezone {
            profile.timezone = tz;
        }
        if let Some(locale) = req.locale {
            if !crate::locale::is_tag(&locale) {
                return Err(Error::invalid_field(
                    "/locale",
                    "give a BCP 47 language tag, e.g. en-US or es-US",
                ));
            }
            profile.locale = crate::locale::canonical(&locale).unwrap_or(locale);
        }
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
            channel: None,
            rate_limit_per_second: None,
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
}
