//! Stored leads, the status workflow, and the contact keys that make duplicates detectable.
//!
//! A lead record: `name`, `email`, `phone`, `source`, `notes`, `status`, `approval`
//! ("pending", "approved" or null), `capturedVia` (the channel), `createdAt`, `updatedAt`,
//! `history` and `revision` (bumped on every change, so a conditional write can tell whether
//! the lead is still as read). Ids are allocated by the data adapter.

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard::{Condition, EntityName, Error, RecordId, Speaker};

pub const LEADS: &str = "leads";
/// The manifest's derived index keys of a lead's email (lowercased) and phone (its last ten
/// digits). crm 1.3.0 also stored them as fields; [`view`] still hides those.
pub const EMAIL_KEY: &str = "emailKey";
pub const PHONE_KEY: &str = "phoneKey";
/// One record per email and phone on file, with an explicit id (`e:<email>` / `p:<digits>`):
/// creating one is atomic create-if-absent, so two leads can never hold the same contact.
pub const LEAD_KEYS: &str = "lead_keys";

pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";

/// Most history entries kept on a lead; older ones are dropped so records stay small.
pub const MAX_HISTORY: usize = 50;

pub fn entity(name: &str) -> Result<EntityName, Error> {
    EntityName::parse(name).map_err(|e| Error::internal(e.to_string()))
}

/// The `leadId` parameter as a record id (the schema already restricts its characters).
pub fn lead_id(sp: &Speaker, id: &str) -> Result<RecordId, Error> {
    RecordId::parse(id.trim())
        .map_err(|_| Error::invalid_field("/leadId", sp.say("not-a-lead-id", &[("id", id.into())])))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    New,
    Contacted,
    Qualified,
    Lost,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::New,
        Status::Contacted,
        Status::Qualified,
        Status::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Contacted => "contacted",
            Status::Qualified => "qualified",
            Status::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Where a lead with this status may be moved. Nothing returns to `new` (it only marks
    /// a lead nobody has acted on), and `lost` is terminal unless reopened as `contacted`.
    pub fn next(self) -> &'static [Status] {
        match self {
            Status::New => &[Status::Contacted, Status::Qualified, Status::Lost],
            Status::Contacted => &[Status::Qualified, Status::Lost],
            Status::Qualified => &[Status::Contacted, Status::Lost],
            Status::Lost => &[Status::Contacted],
        }
    }
}

fn spoken_list(sp: &Speaker, items: &[Status]) -> String {
    let words: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
    match words.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => sp.say(
            "or-list",
            &[
                ("rest", (&rest.join(", ")).into()),
                ("last", (*last).into()),
            ],
        ),
    }
}

/// Checks a status change: back to `new` is a 422 (never valid), the same status or a move
/// the workflow does not allow from the current status is a 409.
pub fn check_transition(sp: &Speaker, id: &str, from: Status, to: Status) -> Result<(), Error> {
    let next = spoken_list(sp, from.next());
    let moves = [
        ("id", id.into()),
        ("from", from.as_str().into()),
        ("next", (&next).into()),
    ];
    if to == Status::New {
        return Err(Error::invalid_field("/status", sp.say("never-new", &moves)));
    }
    if from == to {
        return Err(Error::conflict(sp.say(
            "already",
            &[("id", id.into()), ("status", to.as_str().into())],
        )));
    }
    if !from.next().contains(&to) {
        let advice = if from == Status::Lost {
            sp.say("reopen-first", &[("id", id.into())])
        } else {
            sp.say("only-to", &moves)
        };
        return Err(Error::conflict(advice));
    }
    Ok(())
}

/// Lower-cased, trimmed email: addresses differing only in letter case are one person.
pub fn email_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Digits of a phone number, keeping the last ten, so "+1 (555) 010-2000" and
/// "555.010.2000" are the same number.
pub fn phone_key(s: &str) -> String {
    let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(10)..].iter().collect()
}

pub fn str_field<'a>(record: &'a Value, field: &str) -> &'a str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

/// The record's id as text (stored as a string; a number is tolerated).
pub fn id_of(record: &Value) -> String {
    match record.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Orders ids numerically when both are numbers ("9" before "10"), else as text.
pub fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// A stored lead as read, with what a conditional write needs to expect.
#[derive(Debug, Clone)]
pub struct Lead {
    pub id: String,
    pub status: Option<Status>,
    pub record: Value,
}

impl Lead {
    pub fn from_record(record: Value) -> Self {
        Self {
            id: id_of(&record),
            status: Status::parse(str_field(&record, "status")),
            record,
        }
    }

    pub fn name(&self) -> &str {
        str_field(&self.record, "name")
    }

    /// "Lead 3 (Jordan Rivera)", to start a message with.
    pub fn label(&self, sp: &Speaker) -> String {
        match self.name().trim() {
            "" => sp.say("lead", &[("id", (&self.id).into())]),
            n => sp.say(
                "lead-named",
                &[("id", (&self.id).into()), ("name", n.into())],
            ),
        }
    }

    pub fn approval(&self) -> Option<&str> {
        self.record.get("approval").and_then(Value::as_str)
    }

    pub fn revision(&self) -> i64 {
        self.record
            .get("revision")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    /// What must still hold of the stored lead for a change based on this read: the same
    /// status, approval and revision, compared as stored.
    pub fn unchanged(&self) -> Vec<Condition> {
        ["status", "approval", "revision"]
            .into_iter()
            .filter_map(|f| self.record.get(f).map(|v| Condition::eq(f, v.clone())))
            .collect()
    }

    /// The history with `entry` appended, keeping the newest [`MAX_HISTORY`] entries.
    pub fn history_with(&self, entry: Value) -> Value {
        let mut history: Vec<Value> = self
            .record
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        history.push(entry);
        let excess = history.len().saturating_sub(MAX_HISTORY);
        history.drain(..excess);
        Value::Array(history)
    }
}

/// A lead as the agent sees it: `leadId` instead of `id`, without bookkeeping fields.
pub fn view(record: &Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("leadId".into(), json!(id_of(record)));
    if let Value::Object(m) = record {
        for (k, v) in m {
            // The contact keys are lookup fields, not the lead's details.
            if !["id", "revision", EMAIL_KEY, PHONE_KEY].contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_keys_normalise() {
        assert_eq!(phone_key("+1 (555) 010-2000"), "5550102000");
        assert_eq!(phone_key("555.010.2000"), "5550102000");
        assert_eq!(phone_key("010 2000"), "0102000");
        assert_eq!(email_key("  Jordan@Example.COM "), "jordan@example.com");
    }

    fn english() -> Speaker {
        let m = switchboard::i18n::Messages::new(crate::LOCALES).unwrap();
        Speaker::new(Some(std::sync::Arc::new(m)), "en")
    }

    #[test]
    fn the_workflow_allows_only_listed_moves() {
        use Status::*;
        let sp = &english();
        for from in Status::ALL {
            for to in Status::ALL {
                let r = check_transition(sp, "1", from, to);
                let allowed = from.next().contains(&to);
                assert_eq!(r.is_ok(), allowed, "{from:?} -> {to:?}");
                if let Err(e) = r {
                    let want = if to == New { 422 } else { 409 };
                    assert_eq!(e.status(), want, "{from:?} -> {to:?}");
                }
            }
        }
        assert!(check_transition(sp, "1", Lost, Contacted).is_ok());
        let msg = check_transition(sp, "4", Lost, Qualified)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("reopen it by moving it to contacted"), "{msg}");
        let msg = check_transition(sp, "4", Contacted, Contacted)
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "Lead 4 is already contacted, so nothing was changed.");
        let msg = check_transition(sp, "4", New, New).unwrap_err().to_string();
        assert!(msg.contains("contacted, qualified or lost"), "{msg}");
        let m = switchboard::i18n::Messages::new(crate::LOCALES).unwrap();
        let es = Speaker::new(Some(std::sync::Arc::new(m)), "es-US");
        let msg = check_transition(&es, "4", New, New)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("puede pasar a contacted, qualified o lost"),
            "{msg}"
        );
    }

    #[test]
    fn views_hide_bookkeeping() {
        let v = view(&json!({"id": "3", "name": "A", "revision": 2, "status": "new"}));
        assert_eq!(v, json!({"leadId": "3", "name": "A", "status": "new"}));
    }

    #[test]
    fn history_keeps_the_newest_entries() {
        let old: Vec<Value> = (0..MAX_HISTORY).map(|i| json!({ "n": i })).collect();
        let lead = Lead::from_record(json!({"id": "1", "history": old}));
        let h = lead.history_with(json!({"n": "last"}));
        let h = h.as_array().unwrap();
        assert_eq!(h.len(), MAX_HISTORY);
        assert_eq!(h[0]["n"], 1);
        assert_eq!(h[MAX_HISTORY - 1]["n"], "last");
    }
}
