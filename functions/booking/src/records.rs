//! The stored records (OpenDental field names) and typed views over them.
//!
//! Numbers (`PatNum`, `AptNum`, …) equal the record id: records are created without an id,
//! the adapter allocates one, and the number is written in a follow-up update. Reads fill the
//! number from the id when it is missing, so a record whose follow-up failed still works.

use jiff::civil::DateTime;
use serde_json::{Map, Value, json};
use switchboard::{DataAdapter, EntityName, Error, RecordId};

use crate::config::Practice;
use crate::rules::{Interval, parse_datetime, stored_interval};

pub const PATIENTS: &str = "patients";
pub const PROVIDERS: &str = "providers";
pub const OPERATORIES: &str = "operatories";
pub const APPOINTMENTS: &str = "appointments";
pub const SLOT_CLAIMS: &str = "slot_claims";

pub const SCHEDULED: &str = "Scheduled";
pub const BROKEN: &str = "Broken";

pub fn entity(name: &str) -> Result<EntityName, Error> {
    EntityName::parse(name).map_err(|e| Error::internal(e.to_string()))
}

pub fn record_id(id: impl ToString) -> Result<RecordId, Error> {
    RecordId::parse(id.to_string()).map_err(|e| Error::internal(e.to_string()))
}

/// An integer field that may be stored as a number or a numeric string.
pub fn int_field(record: &Value, field: &str) -> Option<i64> {
    match record.get(field)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn str_field<'a>(record: &'a Value, field: &str) -> &'a str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Fills `field` from the record id when it is missing.
pub fn with_number(mut record: Value, field: &str) -> Value {
    if int_field(&record, field).is_none()
        && let Some(n) = int_field(&record, "id")
        && let Value::Object(m) = &mut record
    {
        m.insert(field.to_owned(), json!(n));
    }
    record
}

/// Creates a record with an allocated id and stores its number (`number_field` = id).
pub async fn create_numbered(
    data: &dyn DataAdapter,
    entity_name: &str,
    number_field: &str,
    mut record: Map<String, Value>,
) -> Result<Value, Error> {
    let ent = entity(entity_name)?;
    record.remove("id");
    let created = data.create(&ent, Value::Object(record)).await?;
    let Some(n) = int_field(&created, "id") else {
        tracing::warn!(entity = entity_name, id = %created["id"], "allocated id is not a number");
        return Ok(created);
    };
    let id = record_id(n)?;
    match data.update(&ent, &id, json!({ number_field: n })).await {
        Ok(updated) => Ok(updated),
        Err(e) => {
            // The record exists; reads derive the number from the id.
            tracing::warn!(entity = entity_name, %id, error = ?e, "could not store {number_field}");
            Ok(with_number(created, number_field))
        }
    }
}

/// Gets a record by its number, or 404 with `missing` as the message.
pub async fn get_numbered(
    data: &dyn DataAdapter,
    entity_name: &str,
    number_field: &str,
    n: i64,
    missing: impl FnOnce() -> String,
) -> Result<Value, Error> {
    match data.get(&entity(entity_name)?, &record_id(n)?).await? {
        Some(r) => Ok(with_number(r, number_field)),
        None => Err(Error::not_found(missing())),
    }
}

const LIST_PAGE: usize = 1000;

/// Every record of an entity with its number filled in, ordered by number: for the
/// practice's own lists (providers, operatories, patients), which grow with the practice,
/// not with its history of appointments.
pub async fn all_numbered(
    data: &dyn DataAdapter,
    entity_name: &str,
    number_field: &str,
) -> Result<Vec<Value>, Error> {
    let ent = entity(entity_name)?;
    let mut out: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = data.list(&ent, LIST_PAGE, cursor.as_deref()).await?;
        out.extend(page.items.into_iter().map(|r| with_number(r, number_field)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out.sort_by_key(|r| int_field(r, number_field).unwrap_or(i64::MAX));
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub num: i64,
    /// What the agent says: `Abbr` (e.g. "Dr. Lee") or else first and last name.
    pub name: String,
}

impl Provider {
    pub fn from_record(r: &Value) -> Option<Self> {
        let num = int_field(r, "ProvNum").or_else(|| int_field(r, "id"))?;
        let abbr = str_field(r, "Abbr").trim();
        let name = if abbr.is_empty() {
            let full = format!("{} {}", str_field(r, "FName"), str_field(r, "LName"));
            // Empty: said as "provider N" in the call's language ([`Provider::label`]).
            full.trim().to_owned()
        } else {
            abbr.to_owned()
        };
        Some(Self { num, name })
    }

    /// Its name, or "provider N" in the call's language when it has none.
    pub fn label(&self, sp: &switchboard::Speaker) -> String {
        if self.name.is_empty() {
            sp.say("provider-n", &[("n", (&self.num.to_string()).into())])
        } else {
            self.name.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub struct Operatory {
    pub num: i64,
    pub name: String,
}

impl Operatory {
    pub fn from_record(r: &Value) -> Option<Self> {
        let num = int_field(r, "OperatoryNum").or_else(|| int_field(r, "id"))?;
        // Empty: said as "operatory N" in the call's language ([`Operatory::label`]).
        let name = str_field(r, "OpName").trim().to_owned();
        Some(Self { num, name })
    }

    /// Its name, or "operatory N" in the call's language when it has none.
    pub fn label(&self, sp: &switchboard::Speaker) -> String {
        if self.name.is_empty() {
            sp.say("operatory-n", &[("n", (&self.num.to_string()).into())])
        } else {
            self.name.clone()
        }
    }
}

pub fn patient_name(r: &Value) -> String {
    format!("{} {}", str_field(r, "FName"), str_field(r, "LName"))
        .trim()
        .to_owned()
}

/// A stored appointment, parsed.
#[derive(Debug, Clone)]
pub struct Appointment {
    pub num: i64,
    pub pat: i64,
    pub prov: i64,
    pub op: i64,
    pub start: DateTime,
    pub minutes: i64,
    pub status: String,
    pub record: Value,
}

impl Appointment {
    pub fn from_record(practice: &Practice, r: Value) -> Option<Self> {
        let r = with_number(r, "AptNum");
        let start = parse_datetime(
            &practice.speaker,
            "/AptDateTime",
            str_field(&r, "AptDateTime"),
        )
        .ok()?;
        Some(Self {
            num: int_field(&r, "AptNum")?,
            pat: int_field(&r, "PatNum")?,
            prov: int_field(&r, "ProvNum")?,
            op: int_field(&r, "Op")?,
            start,
            // Bounded so a corrupt record cannot make a huge interval.
            minutes: int_field(&r, "durationMinutes")
                .unwrap_or(practice.default_minutes)
                .clamp(0, 24 * 60),
            status: str_field(&r, "AptStatus").to_owned(),
            record: r,
        })
    }

    pub fn is_scheduled(&self) -> bool {
        self.status == SCHEDULED
    }

    pub fn interval(&self, practice: &Practice) -> Interval {
        stored_interval(practice, self.start, self.minutes)
    }
}

/// Parses stored appointments, skipping (and logging) records that cannot be read.
pub fn parse_appointments(practice: &Practice, records: Vec<Value>) -> Vec<Appointment> {
    records
        .into_iter()
        .filter_map(|r| {
            let id = r.get("id").cloned().unwrap_or(Value::Null);
            let apt = Appointment::from_record(practice, r);
            if apt.is_none() {
                tracing::warn!(%id, "skipping an appointment record that cannot be read");
            }
            apt
        })
        .collect()
}

/// Digits of a phone number, keeping the last ten (drops a country code like +1).
pub fn phone_key(s: &str) -> String {
    let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(10)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_keys_keep_the_last_ten_digits() {
        assert_eq!(phone_key("+1 (555) 010-2000"), "5550102000");
        assert_eq!(phone_key("555-010-2000"), "5550102000");
        assert_eq!(phone_key("010 2000"), "0102000");
        assert_eq!(phone_key("call me"), "");
    }

    #[test]
    fn numbers_come_from_the_id_when_missing() {
        let r = with_number(json!({"id": "7", "FName": "A"}), "PatNum");
        assert_eq!(r["PatNum"], 7);
        let r = with_number(json!({"id": "7", "PatNum": 9}), "PatNum");
        assert_eq!(r["PatNum"], 9);
        let r = with_number(json!({"id": "abc"}), "PatNum");
        assert!(r.get("PatNum").is_none());
    }

    #[test]
    fn providers_are_named_by_abbr() {
        let p = Provider::from_record(
            &json!({"id": "1", "ProvNum": 1, "FName": "Maya", "LName": "Lee", "Abbr": "Dr. Lee"}),
        )
        .unwrap();
        assert_eq!((p.num, p.name.as_str()), (1, "Dr. Lee"));
        let p =
            Provider::from_record(&json!({"id": "2", "FName": "Sam", "LName": "Ortiz"})).unwrap();
        assert_eq!((p.num, p.name.as_str()), (2, "Sam Ortiz"));
    }
}
