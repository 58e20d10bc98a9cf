//! The Salesforce CRM plugin: leads in the organization's own Salesforce through its REST API
//! (the instance's `api` data adapter: the org's instance URL, e.g.
//! `https://acme.my.salesforce.com`, with an `oauth2` credential; Salesforce's JWT bearer flow
//! or a refresh token).
//!
//! Every value in a SOQL query is a string literal escaped here ([`soql`]); field and object
//! names are fixed in the code.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::api::{ApiRequest, ApiResponse, segment};
use switchboard::{CallContext, ContractError, Error, Plugin};

/// The manifest this binary serves and publishes.
pub const MANIFEST: &str = include_str!("../manifest.json");

const FIELDS: &str = "Id, FirstName, LastName, Company, Email, Phone, Status, LeadSource";
const MAX_FOUND: usize = 20;

/// The credential scope that sees leads' names and contact details in FindLeads: staff
/// tools, not a public caller's channel.
pub const READ_SCOPE: &str = "leads:read";

/// The messages callers hear, by language (`locales/*.ftl`).
const LOCALES: &[(&str, &str)] = switchboard::locales!("en", "es");

/// Builds the plugin; fails if the manifest and the handlers disagree.
pub fn plugin() -> Result<Plugin, ContractError> {
    Plugin::builder(MANIFEST)
        .messages(LOCALES)
        .handler("CreateLead", create_lead)
        .handler("FindLeads", find_leads)
        .handler("UpdateLeadStatus", update_lead_status)
        .build()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    auto_qualify_leads: bool,
    #[serde(default)]
    require_manager_approval: bool,
    new_status: String,
    qualified_status: String,
    statuses: Vec<String>,
    default_company: String,
    api_version: String,
}

impl Config {
    fn path(&self, rest: &str) -> String {
        format!("/services/data/{}{rest}", self.api_version)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLead {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    source: String,
    notes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindLeads {
    email: Option<String>,
    phone: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateLeadStatus {
    lead_id: String,
    status: String,
}

/// `text` as a SOQL string literal, quotes included: backslash, quotes and the control
/// characters SOQL has escapes for are escaped, other control characters dropped; in a
/// `LIKE` pattern `%` and `_` are escaped too, so a caller's text matches only itself.
pub fn soql(text: &str, like: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '%' | '_' if like => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Salesforce's first and last name: the last word is the last name (which it requires).
fn split_name(name: &str) -> (Option<String>, String) {
    let name = one_line(name);
    match name.rsplit_once(' ') {
        Some((first, last)) => (Some(first.to_owned()), last.to_owned()),
        None => (None, name),
    }
}

fn lead_view(r: &Value) -> Value {
    let s = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    let name = [r.get("FirstName"), r.get("LastName")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "leadId": s("Id"),
        "name": name,
        "company": s("Company"),
        "email": s("Email"),
        "phone": s("Phone"),
        "status": s("Status"),
        "source": s("LeadSource"),
    })
}

/// Salesforce's error: its `errorCode` and message, from the array it answers with.
fn sf_error(resp: &ApiResponse) -> (Option<&str>, String) {
    let first = resp.body.get(0);
    let code = first
        .and_then(|e| e.get("errorCode"))
        .and_then(Value::as_str);
    let message = first
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .chars()
        .take(200)
        .collect();
    (code, message)
}

/// Which function an answer came to, for where a refused value came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asked {
    Query,
    Create,
    Update,
}

/// Maps an answer Salesforce refused: what the caller gave is a 4xx at its parameter, the
/// organization's settings an `invalid_config` at theirs, a spent API allowance a 503, the
/// rest the upstream's (502).
fn refused(ctx: &CallContext, resp: &ApiResponse, asked: Asked) -> Error {
    let (code, message) = sf_error(resp);
    let what = match asked {
        Asked::Query => "query",
        Asked::Create => "create",
        Asked::Update => "update",
    };
    let said = |id: &str| ctx.say(id, &[("said", (&message).into())]);
    let field = resp
        .body
        .pointer("/0/fields/0")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (resp.status, code) {
        (_, Some("DUPLICATES_DETECTED")) => Error::conflict(said("duplicate-rules")),
        (_, Some("REQUEST_LIMIT_EXCEEDED")) => Error::Unavailable(ctx.say("allowance-spent", &[])),
        (400, Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")) if field == "LeadSource" => {
            Error::invalid_field("/source", said("lead-sources"))
        }
        (400, Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")) => Error::invalid_config(
            if asked == Asked::Update {
                "/config/statuses"
            } else {
                "/config/newStatus"
            },
            format!("Salesforce refused a picklist value: {message}"),
        ),
        (
            400 | 403,
            Some(
                "INVALID_FIELD"
                | "INVALID_TYPE"
                | "INSUFFICIENT_ACCESS_OR_READONLY"
                | "INSUFFICIENT_ACCESS"
                | "API_DISABLED_FOR_ORG",
            ),
        )
        | (403, _) => Error::invalid_config(
            "/data_adapter/credential",
            format!("Salesforce does not let this credential's user do that ({message})"),
        ),
        (400, _) => Error::unprocessable(ctx.say(
            "refused",
            &[("what", what.into()), ("said", (&message).into())],
        )),
        (404, _) if asked != Asked::Update => Error::invalid_config(
            "/config/apiVersion",
            format!(
                "Salesforce has no such API resource ({message}); check apiVersion and the base URL"
            ),
        ),
        _ => resp.upstream_error(&format!(
            "Salesforce's {}",
            match asked {
                Asked::Query => "query",
                Asked::Create => "new lead",
                Asked::Update => "status change",
            }
        )),
    }
}

async fn query(ctx: &CallContext, cfg: &Config, soql_text: String) -> Result<Vec<Value>, Error> {
    let resp = ctx
        .api()?
        .send(ApiRequest::get(cfg.path("/query")).query("q", soql_text))
        .await?;
    if !resp.is_success() {
        return Err(refused(ctx, &resp, Asked::Query));
    }
    Ok(resp
        .body
        .get("records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

async fn create_lead(ctx: CallContext, p: CreateLead) -> Result<Value, Error> {
    let cfg: Config = ctx.config()?;
    if !cfg.statuses.contains(&cfg.new_status) || !cfg.statuses.contains(&cfg.qualified_status) {
        return Err(Error::invalid_config(
            "/config/statuses",
            "newStatus and qualifiedStatus must be among statuses",
        ));
    }
    let (first, last) = split_name(&p.name);
    if last.is_empty()
        || last.chars().count() > 80
        || first.as_ref().is_some_and(|f| f.chars().count() > 40)
    {
        return Err(Error::invalid_field("/name", ctx.say("name-needed", &[])));
    }
    let email = p.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let phone = p.phone.as_deref().map(str::trim).filter(|e| !e.is_empty());
    if email.is_none() && phone.is_none() {
        return Err(Error::invalid_field(
            "/email",
            ctx.say("contact-needed", &[]),
        ));
    }
    let mut by = Vec::new();
    if let Some(e) = email {
        by.push(format!("Email = {}", soql(e, false)));
    }
    if let Some(ph) = phone {
        by.push(format!("Phone = {}", soql(ph, false)));
    }
    let found = query(
        &ctx,
        &cfg,
        format!(
            "SELECT Id FROM Lead WHERE IsConverted = false AND ({}) ORDER BY CreatedDate DESC LIMIT 1",
            by.join(" OR ")
        ),
    )
    .await?;
    if let Some(id) = found
        .first()
        .and_then(|r| r.get("Id"))
        .and_then(Value::as_str)
    {
        // No name: a number can be shared, and the caller must not learn who else is on file.
        return Err(Error::conflict(
            ctx.say("already-on-file", &[("id", id.into())]),
        ));
    }
    let qualified = cfg.auto_qualify_leads
        && !cfg.require_manager_approval
        && email.is_some()
        && phone.is_some();
    let status = if qualified {
        &cfg.qualified_status
    } else {
        &cfg.new_status
    };
    let mut lead = Map::new();
    if let Some(f) = first {
        lead.insert("FirstName".into(), json!(f));
    }
    lead.insert("LastName".into(), json!(last));
    let company = p
        .company
        .as_deref()
        .map(one_line)
        .filter(|c| !c.is_empty())
        .unwrap_or(cfg.default_company.clone());
    lead.insert("Company".into(), json!(company));
    if let Some(e) = email {
        lead.insert("Email".into(), json!(e));
    }
    if let Some(ph) = phone {
        lead.insert("Phone".into(), json!(ph));
    }
    lead.insert("LeadSource".into(), json!(one_line(&p.source)));
    lead.insert("Status".into(), json!(status));
    if let Some(n) = &p.notes {
        lead.insert("Description".into(), json!(n.trim()));
    }
    let resp = ctx
        .api()?
        .send(ApiRequest::post_json(
            cfg.path("/sobjects/Lead"),
            Value::Object(lead.clone()),
        ))
        .await?;
    if !resp.is_success() {
        return Err(refused(&ctx, &resp, Asked::Create));
    }
    let id = resp.body.get("id").and_then(Value::as_str).ok_or_else(|| {
        Error::Upstream(format!(
            "Salesforce answered {} to a new lead without its id",
            resp.status
        ))
    })?;
    lead.insert("Id".into(), json!(id));
    Ok(lead_view(&Value::Object(lead)))
}

async fn find_leads(ctx: CallContext, p: FindLeads) -> Result<Value, Error> {
    let cfg: Config = ctx.config()?;
    let mut by = Vec::new();
    if let Some(e) = p.email.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        by.push(format!("Email = {}", soql(e, false)));
    }
    if let Some(ph) = p.phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        by.push(format!("Phone = {}", soql(ph, false)));
    }
    if let Some(n) = p.name.as_deref().map(one_line).filter(|s| !s.is_empty()) {
        let pattern = soql(&n, true);
        // The pattern's closing quote moves after the wildcard: 'Riv' becomes 'Riv%'.
        let prefix = format!("{}%'", &pattern[..pattern.len() - 1]);
        by.push(format!(
            "(FirstName LIKE {prefix} OR LastName LIKE {prefix})"
        ));
    }
    if by.is_empty() {
        return Err(Error::invalid_field("/email", ctx.say("search-needs", &[])));
    }
    let records = query(
        &ctx,
        &cfg,
        format!(
            "SELECT {FIELDS} FROM Lead WHERE {} ORDER BY CreatedDate DESC LIMIT {MAX_FOUND}",
            by.join(" AND ")
        ),
    )
    .await?;
    // A public channel's caller learns only that a lead exists and its status, not who it is.
    let staff = ctx.has_scope(READ_SCOPE);
    let leads: Vec<Value> = records
        .iter()
        .map(|r| {
            let full = lead_view(r);
            if staff {
                full
            } else {
                json!({"leadId": full["leadId"], "status": full["status"]})
            }
        })
        .collect();
    Ok(json!({"leads": leads, "count": leads.len()}))
}

async fn update_lead_status(ctx: CallContext, p: UpdateLeadStatus) -> Result<Value, Error> {
    let cfg: Config = ctx.config()?;
    if !cfg.statuses.contains(&p.status) {
        return Err(Error::invalid_field(
            "/status",
            ctx.say(
                "not-a-status",
                &[
                    (
                        "status",
                        (&p.status.chars().take(40).collect::<String>()).into(),
                    ),
                    ("statuses", (&cfg.statuses.join(", ")).into()),
                ],
            ),
        ));
    }
    if cfg.require_manager_approval && p.status == cfg.qualified_status {
        return Err(Error::Forbidden {
            code: "forbidden",
            message: ctx.say(
                "manager-only",
                &[("status", (&cfg.qualified_status).into())],
            ),
        });
    }
    let path = cfg.path(&format!("/sobjects/Lead/{}", segment(&p.lead_id)));
    let resp = ctx
        .api()?
        .send(ApiRequest::patch_json(path, json!({"Status": p.status})))
        .await?;
    match resp.status {
        200 | 204 => Ok(json!({"leadId": p.lead_id, "status": p.status})),
        404 => Err(Error::not_found(
            ctx.say("no-lead", &[("id", (&p.lead_id).into())]),
        )),
        _ => Err(refused(&ctx, &resp, Asked::Update)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_literals_cannot_end_early_or_widen_a_match() {
        assert_eq!(soql("O'Brien", false), r"'O\'Brien'");
        assert_eq!(soql(r"a\' OR Id != '", false), r"'a\\\' OR Id != \''");
        assert_eq!(soql("50%_off", true), r"'50\%\_off'");
        assert_eq!(soql("50%_off", false), "'50%_off'");
        assert_eq!(soql("line\nbreak\u{0}", false), r"'line\nbreak'");
    }

    #[test]
    fn the_last_word_is_the_last_name() {
        assert_eq!(
            split_name("  Jordan  Rivera "),
            (Some("Jordan".into()), "Rivera".into())
        );
        assert_eq!(
            split_name("Ana María de la Cruz"),
            (Some("Ana María de la".into()), "Cruz".into())
        );
        assert_eq!(split_name("Cher"), (None, "Cher".into()));
    }
}
