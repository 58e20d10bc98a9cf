//! Patient and provider handlers.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::{CallContext, DataError, Error};

use crate::config::BookingConfig;
use crate::records::{
    PATIENTS, PROVIDERS, all_numbered, create_numbered, entity, get_numbered, patient_name,
    phone_key, str_field, with_number,
};
use crate::rules::{Now, parse_date, speak_date};
use switchboard::Speaker;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;
/// Fewer digits than this match too many numbers to identify a caller.
const MIN_PHONE_DIGITS: usize = 7;
/// Most patients a search returns: enough to choose from, few enough to read out.
const MAX_SEARCH_RESULTS: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetAllPatients {
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub cursor: Option<String>,
}

pub async fn get_all_patients(ctx: CallContext, p: GetAllPatients) -> Result<Value, Error> {
    let limit = match p.limit {
        None => DEFAULT_PAGE,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                Error::invalid_field(
                    "/limit",
                    ctx.say("limit-range", &[("max", MAX_PAGE.into())]),
                )
            })?,
    };
    let cursor = p.cursor.as_deref().filter(|c| !c.is_empty());
    let page = match ctx.data.list(&entity(PATIENTS)?, limit, cursor).await {
        Ok(page) => page,
        // The adapter refuses a cursor it did not hand out.
        Err(DataError::Invalid(m)) => {
            tracing::info!(reason = %m, "a cursor this listing did not hand out");
            return Err(Error::invalid_field("/cursor", ctx.say("bad-cursor", &[])));
        }
        Err(e) => return Err(e.into()),
    };
    let patients: Vec<Value> = page
        .items
        .into_iter()
        .map(|r| with_number(r, "PatNum"))
        .collect();
    Ok(json!({"patients": patients, "nextCursor": page.next}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetPatient {
    #[serde(rename = "PatNum")]
    pub pat_num: i64,
}

pub fn no_patient(sp: &Speaker, n: i64) -> String {
    sp.say("no-patient", &[("n", n.into())])
}

pub async fn get_patient(ctx: CallContext, p: GetPatient) -> Result<Value, Error> {
    get_numbered(ctx.data.as_ref(), PATIENTS, "PatNum", p.pat_num, || {
        no_patient(&ctx.speaker(), p.pat_num)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchPatients {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

fn normalise_name(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

pub async fn search_patients(ctx: CallContext, p: SearchPatients) -> Result<Value, Error> {
    let name = p
        .name
        .as_deref()
        .map(normalise_name)
        .filter(|n| !n.is_empty());
    let phone = match p.phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            let key = phone_key(raw);
            if key.len() < MIN_PHONE_DIGITS {
                return Err(Error::invalid_field(
                    "/phone",
                    ctx.say("few-digits", &[("given", raw.into())]),
                ));
            }
            Some(key)
        }
    };
    // On a phone line the model may search by the number the caller is calling from.
    let phone = match (&name, phone) {
        (None, None) => ctx
            .caller_phone
            .as_deref()
            .map(phone_key)
            .filter(|k| k.len() >= MIN_PHONE_DIGITS),
        (_, phone) => phone,
    };
    if name.is_none() && phone.is_none() {
        return Err(Error::unprocessable(ctx.say("search-needs", &[])));
    }
    let mut patients: Vec<Value> = all_numbered(ctx.data.as_ref(), PATIENTS, "PatNum")
        .await?
        .into_iter()
        .filter(|r| {
            let name_ok = name
                .as_ref()
                .is_none_or(|n| normalise_name(&patient_name(r)).contains(n.as_str()));
            // A shorter query matches the end of the number ("010-2000").
            let phone_ok = phone.as_ref().is_none_or(|q| {
                let stored = phone_key(str_field(r, "WirelessPhone"));
                !stored.is_empty() && stored.ends_with(q.as_str())
            });
            name_ok && phone_ok
        })
        .collect();
    let truncated = patients.len() > MAX_SEARCH_RESULTS;
    if !truncated {
        return Ok(json!({ "patients": patients, "truncated": false }));
    }
    patients.truncate(MAX_SEARCH_RESULTS);
    Ok(json!({
        "patients": patients,
        "truncated": true,
        "message": ctx.say("too-many", &[("max", MAX_SEARCH_RESULTS.into())]),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePatient {
    #[serde(rename = "FName")]
    pub first: String,
    #[serde(rename = "LName")]
    pub last: String,
    #[serde(rename = "WirelessPhone", default)]
    pub phone: Option<String>,
    #[serde(rename = "Email", default)]
    pub email: Option<String>,
    #[serde(rename = "Birthdate", default)]
    pub birthdate: Option<String>,
}

/// `what`: `first` or `last` (name).
fn required_name(sp: &Speaker, path: &str, what: &str, s: &str) -> Result<String, Error> {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() {
        Err(Error::invalid_field(
            path,
            sp.say("name-required", &[("what", what.into())]),
        ))
    } else {
        Ok(s)
    }
}

pub async fn create_patient(ctx: CallContext, p: CreatePatient) -> Result<Value, Error> {
    let sp = &ctx.speaker();
    let practice = ctx.config::<BookingConfig>()?.practice(sp.clone())?;
    let first = required_name(sp, "/FName", "first", &p.first)?;
    let last = required_name(sp, "/LName", "last", &p.last)?;
    let phone = p.phone.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(phone) = phone {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        if !(MIN_PHONE_DIGITS..=15).contains(&digits) {
            return Err(Error::invalid_field(
                "/WirelessPhone",
                sp.say("not-a-phone", &[("given", phone.into())]),
            ));
        }
    }
    let email = p.email.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let birthdate = match p.birthdate.as_deref() {
        None => None,
        Some(s) => {
            let d = parse_date(sp, "/Birthdate", s)?;
            let today = Now::new(&practice, ctx.now)?.today();
            let year = d.year().to_string();
            if d > today {
                return Err(Error::invalid_field(
                    "/Birthdate",
                    sp.say(
                        "birth-future",
                        &[
                            ("date", (&speak_date(sp, d)).into()),
                            ("year", (&year).into()),
                        ],
                    ),
                ));
            }
            if d.year() < 1900 {
                return Err(Error::invalid_field(
                    "/Birthdate",
                    sp.say("birth-implausible", &[("year", (&year).into())]),
                ));
            }
            Some(s.to_owned())
        }
    };

    let full = normalise_name(&format!("{first} {last}"));
    let phone_k = phone.map(phone_key);
    for existing in all_numbered(ctx.data.as_ref(), PATIENTS, "PatNum").await? {
        if normalise_name(&patient_name(&existing)) != full {
            continue;
        }
        let same_phone = phone_k
            .as_ref()
            .is_some_and(|k| *k == phone_key(str_field(&existing, "WirelessPhone")));
        let same_birthdate = birthdate
            .as_deref()
            .is_some_and(|b| str_field(&existing, "Birthdate") == b);
        if same_phone || same_birthdate {
            let num = existing.get("PatNum").cloned().unwrap_or(Value::Null);
            return Err(Error::conflict(sp.say(
                "patient-on-file",
                &[
                    ("name", (&format!("{first} {last}")).into()),
                    ("n", (&num.to_string()).into()),
                ],
            )));
        }
    }

    let mut record = Map::new();
    record.insert("FName".into(), json!(first));
    record.insert("LName".into(), json!(last));
    record.insert("WirelessPhone".into(), json!(phone.unwrap_or("")));
    record.insert("Email".into(), json!(email.unwrap_or("")));
    record.insert("Birthdate".into(), json!(birthdate.unwrap_or_default()));
    create_numbered(ctx.data.as_ref(), PATIENTS, "PatNum", record).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetProviders {}

pub async fn get_providers(ctx: CallContext, _: GetProviders) -> Result<Value, Error> {
    let providers = all_numbered(ctx.data.as_ref(), PROVIDERS, "ProvNum").await?;
    Ok(json!({ "providers": providers }))
}
