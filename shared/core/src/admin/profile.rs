//! The organization's own profile: display name, time zone, locale, how long its idempotent
//! calls are replayed and its audit entries kept, and its rate limit.

use super::*;
use crate::idempotency::MAX_IDEMPOTENCY_TTL_HOURS;

/// Longest display name and locale tag accepted.
const MAX_DISPLAY_NAME: usize = 200;
const MAX_LOCALE: usize = 35;

impl AdminService {
    pub(super) async fn get_profile(&self, org: &OrgId) -> Reply {
        let profile = self.registry.get_profile(org).await?;
        let profile = profile.ok_or_else(|| {
            Error::not_found(format!(
                "organization {org} has no profile yet; PUT /admin/profile with a display_name"
            ))
        })?;
        ok(200, versioned_json(&profile))
    }

    /// A patch of the profile: fields left out keep their value, `null` resets
    /// `idempotency_ttl_hours` to the platform's 24 h, `audit_retention_days` to 90 and
    /// `rate_limit_per_second` to the platform's limit.
    pub(super) async fn put_profile(
        &self,
        org: &OrgId,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Reply {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Patch {
            display_name: Option<String>,
            timezone: Option<String>,
            locale: Option<String>,
            #[serde(default, deserialize_with = "present")]
            idempotency_ttl_hours: Option<Option<u64>>,
            #[serde(default, deserialize_with = "present")]
            audit_retention_days: Option<Option<u64>>,
            #[serde(default, deserialize_with = "present")]
            rate_limit_per_second: Option<Option<u64>>,
            version: Option<u64>,
        }
        let patch: Patch = parse_as(body)?;
        let expected = expected_version(if_match, patch.version)?;
        let current = self.registry.get_profile(org).await?;
        check_version(&current, expected, &format!("the profile of {org}"))?;
        let mut profile = current
            .as_ref()
            .map(|c| c.value.clone())
            .unwrap_or_default();
        if let Some(name) = patch.display_name {
            if name.trim().is_empty() || name.chars().count() > MAX_DISPLAY_NAME {
                return Err(Error::invalid_field(
                    "/display_name",
                    format!("give a display name of 1 to {MAX_DISPLAY_NAME} characters"),
                ));
            }
            profile.display_name = name;
        } else if current.is_none() {
            return Err(Error::invalid_field(
                "/display_name",
                "a new profile needs a display_name",
            ));
        }
        if let Some(tz) = patch.timezone {
            if jiff::tz::TimeZone::get(&tz).is_err() {
                return Err(Error::invalid_field(
                    "/timezone",
                    format!("'{tz}' is not an IANA time zone, e.g. America/New_York"),
                ));
            }
            profile.timezone = tz;
        }
        if let Some(locale) = patch.locale {
            if locale.len() > MAX_LOCALE || !crate::locale::is_tag(&locale) {
                return Err(Error::invalid_field(
                    "/locale",
                    format!(
                        "give a BCP 47 language tag of at most {MAX_LOCALE} characters, e.g. en-US or es-US"
                    ),
                ));
            }
            profile.locale = crate::locale::canonical(&locale).unwrap_or(locale);
        }
        if let Some(ttl) = patch.idempotency_ttl_hours {
            if let Some(h) = ttl
                && !(1..=MAX_IDEMPOTENCY_TTL_HOURS).contains(&h)
            {
                return Err(Error::invalid_field(
                    "/idempotency_ttl_hours",
                    format!(
                        "give 1 to {MAX_IDEMPOTENCY_TTL_HOURS} hours, not {h}, or null for the default 24"
                    ),
                ));
            }
            profile.idempotency_ttl_hours = ttl;
        }
        if let Some(days) = patch.audit_retention_days {
            let max = crate::audit::MAX_RETENTION_DAYS;
            let default = crate::audit::DEFAULT_RETENTION_DAYS;
            profile.audit_retention_days = in_range(days, max, "/audit_retention_days", |d| {
                format!("give 1 to {max} days, not {d}, or null for the default {default}")
            })?;
        }
        if let Some(limit) = patch.rate_limit_per_second {
            let max = crate::ratelimit::MAX_PER_SECOND;
            profile.rate_limit_per_second = in_range(limit, max, "/rate_limit_per_second", |l| {
                format!(
                    "give 1 to {max} tool calls per second, not {l}, or null for the platform's limit"
                )
            })?;
        }
        let version = self
            .registry
            .put_profile(org, &profile, current.as_ref().map(|c| c.version))
            .await?;
        let status = if current.is_some() { 200 } else { 201 };
        ok(
            status,
            versioned_json(&Versioned {
                value: profile,
                version,
            }),
        )
    }
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// A setting sent as `null` (back to its default) or a number from 1 to `max`; `fix` says
/// what to send instead of an out-of-range one.
pub(super) fn in_range(
    value: Option<u64>,
    max: u32,
    at: &str,
    fix: impl Fn(u64) -> String,
) -> Result<Option<u32>, Error> {
    match value {
        None => Ok(None),
        Some(v) => u32::try_from(v)
            .ok()
            .filter(|v| (1..=max).contains(v))
            .map(Some)
            .ok_or_else(|| Error::invalid_field(at, fix(v))),
    }
}
