//! Lead handlers: capture, lookup, listing, the status workflow and manager approval.
//!
//! Every change acts only on what was read: status changes and approvals are conditional
//! writes expecting the status, approval and revision as read, so of two concurrent changes
//! one wins and the other is a 409. Duplicates are refused twice: first by comparing with the
//! leads on file (for a precise message), then atomically by claiming the new lead's email
//! and phone in `lead_keys` with one all-or-nothing `batch_create`.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::{CallContext, Condition, DataAdapter, DataError, Error, RecordId, Speaker};

use crate::config::CrmConfig;
use crate::records::{
    APPROVED, EMAIL_KEY, LEAD_KEYS, LEADS, Lead, PENDING, PHONE_KEY, Status, check_transition,
    email_key, entity, id_of, id_order, lead_id, phone_key, str_field, view,
};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
/// Fewer digits than this cannot be a phone number anyone can call back.
const MIN_PHONE_DIGITS: usize = 7;
/// The longest international number (E.164).
const MAX_PHONE_DIGITS: usize = 15;
/// Claim ids are `e:` plus the address and record ids hold at most 256 bytes.
const MAX_EMAIL_BYTES: usize = 254;

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn no_lead(sp: &Speaker, id: &str) -> Error {
    Error::not_found(sp.say("no-lead", &[("id", id.into())]))
}

async fn read_lead(sp: &Speaker, data: &dyn DataAdapter, id: &RecordId) -> Result<Lead, Error> {
    match data.get(&entity(LEADS)?, id).await? {
        Some(r) => Ok(Lead::from_record(r)),
        None => Err(no_lead(sp, id.as_str())),
    }
}

/// The approval a lead gets on entering `status`: pending when the business requires it for
/// qualified leads, otherwise none (leaving qualified clears it).
fn approval_for(cfg: &CrmConfig, status: Status) -> Value {
    if status == Status::Qualified && cfg.require_manager_approval {
        json!(PENDING)
    } else {
        Value::Null
    }
}

/// Applies `patch` only if the lead is still as read; a lost race is a 409.
async fn update_as_read(
    sp: &Speaker,
    data: &dyn DataAdapter,
    id: &RecordId,
    lead: &Lead,
    patch: Value,
) -> Result<Lead, Error> {
    match data
        .update_where(&entity(LEADS)?, id, patch, &lead.unchanged())
        .await
    {
        Ok(r) => Ok(Lead::from_record(r)),
        Err(DataError::Conflict { .. }) => Err(Error::conflict(
            sp.say("changed", &[("lead", (&lead.label(sp)).into())]),
        )),
        Err(DataError::NotFound { .. }) => Err(no_lead(sp, id.as_str())),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLead {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    pub source: String,
    #[serde(default)]
    pub notes: Option<String>,
}

/// The contact detail a new lead shares with one on file.
#[derive(Debug, Clone, Copy)]
enum Shared {
    Email,
    Phone,
}

impl Shared {
    fn key(self) -> &'static str {
        match self {
            Shared::Email => "email",
            Shared::Phone => "phone",
        }
    }
}

// No name in the message: a number can be shared, and the caller must not learn who else
// is on file.
fn duplicate(sp: &Speaker, existing: &Lead, shared: Shared) -> Error {
    Error::conflict(sp.say(
        "duplicate",
        &[
            ("id", (&existing.id).into()),
            ("shared", shared.key().into()),
        ],
    ))
}

/// The lead on file (lowest id first) sharing the email (any case) or phone (same digits).
async fn find_duplicate(
    data: &dyn DataAdapter,
    email: Option<&str>,
    phone: Option<&str>,
) -> Result<Option<(Lead, Shared)>, Error> {
    let leads = entity(LEADS)?;
    // The manifest's derived keys: the adapter normalises the text as given the way it
    // normalises every lead's, so leads written by any tool (once reindexed on the built-in
    // store) are found, whatever their case or punctuation.
    let by = |key: &'static str, text: Option<&str>| {
        let leads = &leads;
        let text = text.map(str::to_owned);
        async move {
            match text {
                Some(t) => data.query(leads, &[Condition::eq(key, t)]).await,
                None => Ok(vec![]),
            }
        }
    };
    let (same_email, same_phone) = tokio::join!(by(EMAIL_KEY, email), by(PHONE_KEY, phone));
    let email = email.map(email_key);
    let phone = phone.map(phone_key);
    let mut found: Vec<(Lead, Shared)> = same_email?
        .into_iter()
        .chain(same_phone?)
        .filter_map(|r| {
            let same_email = email.as_deref().is_some_and(|e| {
                let stored = email_key(str_field(&r, "email"));
                !stored.is_empty() && stored == e
            });
            let same_phone = phone.as_deref().is_some_and(|p| {
                let stored = phone_key(str_field(&r, "phone"));
                !stored.is_empty() && stored == p
            });
            let shared = if same_email {
                Shared::Email
            } else if same_phone {
                Shared::Phone
            } else {
                return None;
            };
            Some((Lead::from_record(r), shared))
        })
        .collect();
    found.sort_by(|a, b| id_order(&a.0.id, &b.0.id));
    Ok(found.into_iter().next())
}

/// The lead a contact claim names, if it still exists.
async fn claim_holder(data: &dyn DataAdapter, claim: &Value) -> Result<Option<Lead>, Error> {
    let Ok(id) = RecordId::parse(str_field(claim, "leadId")) else {
        return Ok(None);
    };
    Ok(data.get(&entity(LEADS)?, &id).await?.map(Lead::from_record))
}

/// Claims the new lead's contact keys, all or none. A key held by another lead on file is a
/// duplicate (409 naming it); a key whose lead no longer exists (left by a create that
/// failed half-way) is released and the claim tried once more.
async fn claim_contacts(
    sp: &Speaker,
    data: &dyn DataAdapter,
    lead: &str,
    keys: &[(String, Shared)],
) -> Result<(), Error> {
    let ent = entity(LEAD_KEYS)?;
    let records: Vec<Value> = keys
        .iter()
        .map(|(k, _)| json!({"id": k, "leadId": lead}))
        .collect();
    for _ in 0..2 {
        match data.batch_create(&ent, records.clone()).await {
            Ok(_) => return Ok(()),
            Err(DataError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        for (key, shared) in keys {
            let rid = RecordId::parse(key.as_str()).map_err(|e| Error::internal(e.to_string()))?;
            let Some(claim) = data.get(&ent, &rid).await? else {
                continue;
            };
            if str_field(&claim, "leadId") == lead {
                continue;
            }
            if let Some(existing) = claim_holder(data, &claim).await? {
                return Err(duplicate(sp, &existing, *shared));
            }
            tracing::warn!(claim = %key, "releasing a contact claim whose lead no longer exists");
            // Only as read: a claim someone has just taken afresh is kept.
            let expect = [Condition::eq(
                "leadId",
                claim.get("leadId").cloned().unwrap_or(Value::Null),
            )];
            match data.delete_where(&ent, &rid, &expect).await {
                Ok(_) | Err(DataError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Err(Error::conflict(sp.say("saved-meanwhile", &[])))
}

/// Takes back a lead whose contacts could not be claimed, unless someone has already acted
/// on it (revision no longer 1). Best effort: a lead left behind is still found by the
/// duplicate check of later creates.
async fn remove_lead(data: &dyn DataAdapter, id: &str) {
    let removed = async {
        let rid = RecordId::parse(id).map_err(|e| Error::internal(e.to_string()))?;
        data.delete_where(&entity(LEADS)?, &rid, &[Condition::eq("revision", 1)])
            .await?;
        Ok::<_, Error>(())
    };
    if let Err(e) = removed.await {
        tracing::warn!(lead = id, error = ?e, "could not remove a lead whose contacts were not claimed");
    }
}

pub async fn create_lead(ctx: CallContext, p: CreateLead) -> Result<Value, Error> {
    let cfg = ctx.config::<CrmConfig>()?;
    let sp = &ctx.speaker();
    let data = ctx.data.as_ref();
    let name = collapse(&p.name);
    if name.is_empty() {
        return Err(Error::invalid_field("/name", sp.say("name-needed", &[])));
    }
    let source = collapse(&p.source);
    if source.is_empty() {
        return Err(Error::invalid_field(
            "/source",
            sp.say("source-needed", &[]),
        ));
    }
    let email = p.email.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if email.is_some_and(|e| email_key(e).len() > MAX_EMAIL_BYTES) {
        return Err(Error::invalid_field(
            "/email",
            sp.say("email-too-long", &[]),
        ));
    }
    let phone = p.phone.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(phone) = phone {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits) {
            return Err(Error::invalid_field(
                "/phone",
                sp.say(
                    "not-a-phone",
                    &[
                        ("phone", phone.into()),
                        ("min", MIN_PHONE_DIGITS.into()),
                        ("max", MAX_PHONE_DIGITS.into()),
                    ],
                ),
            ));
        }
    }
    if email.is_none() && phone.is_none() {
        return Err(Error::unprocessable(sp.say("contact-needed", &[])));
    }
    let notes = p.notes.as_deref().map(str::trim).unwrap_or("");

    // The usual duplicate, with a precise message; it also catches leads stored without
    // claims (e.g. written straight into an external CRM).
    if let Some((existing, shared)) = find_duplicate(data, email, phone).await? {
        return Err(duplicate(sp, &existing, shared));
    }

    let status = if cfg.auto_qualify_leads && email.is_some() && phone.is_some() {
        Status::Qualified
    } else {
        Status::New
    };
    let approval = approval_for(&cfg, status);
    let at = ctx.timestamp()?;
    let mut record = Map::new();
    record.insert("name".into(), json!(name));
    record.insert("email".into(), json!(email));
    record.insert("phone".into(), json!(phone));
    record.insert("source".into(), json!(source));
    record.insert("notes".into(), json!(notes));
    record.insert("status".into(), json!(status.as_str()));
    record.insert("approval".into(), approval.clone());
    record.insert(
        "capturedVia".into(),
        json!(ctx.channel.as_ref().map(|c| c.as_str())),
    );
    record.insert("createdAt".into(), json!(at));
    record.insert("updatedAt".into(), json!(at));
    record.insert("revision".into(), json!(1));
    record.insert(
        "history".into(),
        json!([{"at": at, "status": status.as_str(), "note": "created"}]),
    );
    // No id: the adapter allocates it.
    let lead = Lead::from_record(data.create(&entity(LEADS)?, Value::Object(record)).await?);

    let keys: Vec<(String, Shared)> = email
        .map(|e| (format!("e:{}", email_key(e)), Shared::Email))
        .into_iter()
        .chain(phone.map(|p| (format!("p:{}", phone_key(p)), Shared::Phone)))
        .collect();
    if let Err(e) = claim_contacts(sp, data, &lead.id, &keys).await {
        // Lost a race to a lead with the same contact, or the claim failed: either way this
        // lead must not stay as an unguarded duplicate.
        remove_lead(data, &lead.id).await;
        return Err(e);
    }

    let saved = match (status, approval.is_null()) {
        (Status::Qualified, false) => "saved-awaiting",
        (Status::Qualified, true) => "saved-qualified",
        _ => "saved-new",
    };
    let message = sp.say(
        saved,
        &[("name", (&name).into()), ("id", (&lead.id).into())],
    );
    Ok(json!({"lead": view(&lead.record), "message": message}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetLeadsByStatus {
    pub status: Status,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub pending_approval: bool,
}

pub async fn get_leads_by_status(ctx: CallContext, p: GetLeadsByStatus) -> Result<Value, Error> {
    let limit = match p.limit {
        None => DEFAULT_LIMIT,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Error::invalid_field(
                    "/limit",
                    ctx.say("limit-range", &[("max", MAX_LIMIT.into())]),
                )
            })?,
    };
    if p.pending_approval && p.status != Status::Qualified {
        return Err(Error::invalid_field(
            "/pendingApproval",
            ctx.say("pending-qualified", &[]),
        ));
    }
    let status = p.status.as_str();
    let records = ctx
        .data
        .query(&entity(LEADS)?, &[Condition::eq("status", status)])
        .await?;
    // Pending leads are hidden whatever the current config: pending means not yet approved.
    let (pending, listed): (Vec<Value>, Vec<Value>) = records
        .into_iter()
        .partition(|r| str_field(r, "approval") == PENDING);
    let awaiting = pending.len();
    let mut chosen = if p.pending_approval { pending } else { listed };
    // Newest first: timestamps are fixed-width UTC, so they sort as text.
    chosen.sort_by(|a, b| {
        str_field(b, "createdAt")
            .cmp(str_field(a, "createdAt"))
            .then_with(|| id_order(&id_of(b), &id_of(a)))
    });
    let total = chosen.len();
    let truncated = total > limit;
    chosen.truncate(limit);

    let mut out = Map::new();
    out.insert("status".into(), json!(status));
    out.insert(
        "leads".into(),
        Value::Array(chosen.iter().map(view).collect()),
    );
    out.insert("count".into(), json!(chosen.len()));
    out.insert("total".into(), json!(total));
    out.insert("truncated".into(), json!(truncated));
    let listing = if p.pending_approval { "yes" } else { "no" };
    let mut message = if total == 0 {
        ctx.say(
            "none-listed",
            &[("pending", listing.into()), ("status", status.into())],
        )
    } else if truncated {
        ctx.say(
            "showing-newest",
            &[
                ("limit", limit.into()),
                ("total", total.into()),
                ("pending", listing.into()),
                ("status", status.into()),
            ],
        )
    } else {
        String::new()
    };
    if p.status == Status::Qualified && !p.pending_approval {
        out.insert("awaitingApproval".into(), json!(awaiting));
        if awaiting > 0 {
            message.push(' ');
            message.push_str(&ctx.say("more-awaiting", &[("awaiting", awaiting.into())]));
        }
    }
    let message = message.trim();
    if !message.is_empty() {
        out.insert("message".into(), json!(message));
    }
    Ok(Value::Object(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetLead {
    pub lead_id: String,
}

pub async fn get_lead(ctx: CallContext, p: GetLead) -> Result<Value, Error> {
    let sp = &ctx.speaker();
    let lead = read_lead(sp, ctx.data.as_ref(), &lead_id(sp, &p.lead_id)?).await?;
    Ok(json!({"lead": view(&lead.record)}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateLeadStatus {
    pub lead_id: String,
    pub status: Status,
    #[serde(default)]
    pub note: Option<String>,
}

pub async fn update_lead_status(ctx: CallContext, p: UpdateLeadStatus) -> Result<Value, Error> {
    let cfg = ctx.config::<CrmConfig>()?;
    let sp = &ctx.speaker();
    let data = ctx.data.as_ref();
    let id = lead_id(sp, &p.lead_id)?;
    let lead = read_lead(sp, data, &id).await?;
    let Some(from) = lead.status else {
        return Err(Error::conflict(sp.say(
            "odd-status",
            &[
                ("lead", (&lead.label(sp)).into()),
                ("status", str_field(&lead.record, "status").into()),
            ],
        )));
    };
    let to = p.status;
    check_transition(sp, &lead.id, from, to)?;
    let approval = approval_for(&cfg, to);
    let at = ctx.timestamp()?;
    let mut entry = json!({"at": at, "status": to.as_str(), "from": from.as_str()});
    if let Some(note) = p.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        entry["note"] = json!(note);
    }
    let patch = json!({
        "status": to.as_str(),
        "approval": approval,
        "updatedAt": at,
        "revision": lead.revision() + 1,
        "history": lead.history_with(entry),
    });
    let updated = update_as_read(sp, data, &id, &lead, patch).await?;
    let label = updated.label(sp);
    let message = if approval.is_null() {
        sp.say(
            "now",
            &[("lead", (&label).into()), ("status", to.as_str().into())],
        )
    } else {
        sp.say("awaits-approval", &[("lead", (&label).into())])
    };
    Ok(json!({"lead": view(&updated.record), "message": message}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApproveLead {
    pub lead_id: String,
}

pub async fn approve_lead(ctx: CallContext, p: ApproveLead) -> Result<Value, Error> {
    if !ctx.has_scope(crate::APPROVE_SCOPE) {
        return Err(Error::Forbidden {
            code: "forbidden",
            message: ctx.say("staff-approves", &[("scope", crate::APPROVE_SCOPE.into())]),
        });
    }
    let sp = &ctx.speaker();
    let data = ctx.data.as_ref();
    let id = lead_id(sp, &p.lead_id)?;
    let lead = read_lead(sp, data, &id).await?;
    let label = lead.label(sp);
    if lead.status != Some(Status::Qualified) {
        return Err(Error::conflict(sp.say(
            "nothing-to-approve",
            &[
                ("lead", (&label).into()),
                ("status", str_field(&lead.record, "status").into()),
            ],
        )));
    }
    match lead.approval() {
        Some(PENDING) => {}
        Some(APPROVED) => {
            return Err(Error::conflict(
                sp.say("already-approved", &[("lead", (&label).into())]),
            ));
        }
        _ => {
            return Err(Error::conflict(
                sp.say("no-approval-needed", &[("lead", (&label).into())]),
            ));
        }
    }
    let at = ctx.timestamp()?;
    let patch = json!({
        "approval": APPROVED,
        "approvedAt": at,
        "updatedAt": at,
        "revision": lead.revision() + 1,
        "history": lead.history_with(json!({"at": at, "approval": APPROVED})),
    });
    let updated = update_as_read(sp, data, &id, &lead, patch).await?;
    Ok(json!({
        "lead": view(&updated.record),
        "message": sp.say("approved", &[("lead", (&updated.label(sp)).into())]),
    }))
}
