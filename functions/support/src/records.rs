//! The stored records and typed views over them.
//!
//! A ticket lives in `tickets` with an id the adapter allocates; that id is the ticket number
//! the caller hears. Each comment is its own record in `ticket_comments`, so concurrent
//! comments never overwrite one another. Status changes bump `revision`, which writes are
//! conditioned on.

use std::cmp::Reverse;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};
use switchboard::{EntityName, Error, RecordId};

pub const TICKETS: &str = "tickets";
pub const COMMENTS: &str = "ticket_comments";
/// The manifest's derived index keys of a ticket's contact.
pub const CONTACT_PHONE: &str = "contactPhone";
pub const CONTACT_EMAIL: &str = "contactEmail";

/// Status changes kept on a ticket; older ones are dropped so the record stays small.
pub const MAX_HISTORY: usize = 50;

pub fn entity(name: &str) -> Result<EntityName, Error> {
    EntityName::parse(name).map_err(|e| Error::internal(e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Pending,
    Resolved,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// One status change in a ticket's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub from: Status,
    pub to: Status,
    #[serde(default)]
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An id stored as a string or (by some external adapters) as a number.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "an id must be a string or a number, not {other}"
        ))),
    }
}

/// An id allocated by a sequence ("1", "2", …) as a number, which orders records by creation.
pub fn id_number(id: &str) -> Option<u64> {
    id.parse().ok()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub description: String,
    pub status: Status,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub contact: Contact,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// As stored, so a conditional write compares it exactly; absent on records that were
    /// never changed through this plugin.
    #[serde(default)]
    pub revision: Option<Value>,
    #[serde(default)]
    pub history: Vec<Change>,
}

impl Ticket {
    pub fn from_record(record: Value) -> Result<Self, Error> {
        let id = record.get("id").cloned().unwrap_or(Value::Null);
        serde_json::from_value(record)
            .map_err(|e| Error::internal(format!("ticket {id} is unreadable: {e}")))
    }

    /// The revision as a number, for the next one (0 when absent or unreadable).
    pub fn revision_number(&self) -> u64 {
        match &self.revision {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// What the agent sees; `comments` only when they were read.
    pub fn view(&self, comments: Option<&[Comment]>) -> Value {
        let mut v = Map::new();
        v.insert("ticketId".into(), json!(self.id));
        v.insert("subject".into(), json!(self.subject));
        v.insert("description".into(), json!(self.description));
        v.insert("status".into(), json!(self.status));
        v.insert("priority".into(), json!(self.priority));
        v.insert("contact".into(), json!(self.contact));
        if let Some(c) = &self.channel {
            v.insert("channel".into(), json!(c));
        }
        v.insert("createdAt".into(), json!(self.created_at));
        v.insert("updatedAt".into(), json!(self.updated_at));
        v.insert("history".into(), json!(self.history));
        if let Some(comments) = comments {
            v.insert("commentCount".into(), json!(comments.len()));
            let list: Vec<Value> = comments.iter().map(Comment::view).collect();
            v.insert("comments".into(), Value::Array(list));
        }
        Value::Object(v)
    }

    /// The short form ListTickets returns.
    pub fn summary(&self) -> Value {
        json!({
            "ticketId": self.id,
            "subject": self.subject,
            "status": self.status,
            "priority": self.priority,
            "contactName": self.contact.name,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(deserialize_with = "id_string")]
    pub ticket_id: String,
    pub text: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub created_at: String,
}

impl Comment {
    pub fn from_record(record: Value) -> Result<Self, Error> {
        let id = record.get("id").cloned().unwrap_or(Value::Null);
        serde_json::from_value(record)
            .map_err(|e| Error::internal(format!("comment {id} is unreadable: {e}")))
    }

    pub fn view(&self) -> Value {
        json!({
            "commentId": self.id,
            "text": self.text,
            "author": self.author,
            "createdAt": self.created_at,
        })
    }
}

/// Parses stored comments, skipping (and logging) records that cannot be read, in the order
/// they were added: by allocated id (the adapter's sequence is atomic), else by time.
pub fn ordered_comments(records: Vec<Value>) -> Vec<Comment> {
    let mut out: Vec<Comment> = records
        .into_iter()
        .filter_map(|r| match Comment::from_record(r) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = ?e, "skipping a comment record that cannot be read");
                None
            }
        })
        .collect();
    // Numbered ids first, in order; any others after them, by time.
    out.sort_by_cached_key(|c| {
        let n = id_number(&c.id);
        (n.is_none(), n, c.created_at.clone(), c.id.clone())
    });
    out
}

/// Tickets newest first: by allocated id, else by creation time.
pub fn newest_first(tickets: &mut [Ticket]) {
    // Numbered ids first, highest first; any others after them, newest first.
    tickets.sort_by_cached_key(|t| {
        let n = id_number(&t.id);
        (
            n.is_none(),
            Reverse(n),
            Reverse(t.created_at.clone()),
            Reverse(t.id.clone()),
        )
    });
}

pub fn record_id(id: &str) -> Result<RecordId, Error> {
    RecordId::parse(id).map_err(|e| Error::invalid_field("/ticketId", e.to_string()))
}

/// An email as the manifest's `contactEmail` key holds it: trimmed of ASCII whitespace,
/// ASCII letters lowercased.
pub fn email_key(s: &str) -> String {
    s.trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase()
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
    fn comments_are_ordered_by_allocated_id() {
        let c =
            |id: &str, at: &str| json!({"id": id, "ticketId": "1", "text": id, "createdAt": at});
        let out = ordered_comments(vec![
            c("10", "2025-01-01T00:00:00Z"),
            c("9", "2025-01-01T00:00:01Z"),
            c("x", "2024-01-01T00:00:00Z"),
            json!({"id": "11", "ticketId": "1"}),
        ]);
        let ids: Vec<&str> = out.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["9", "10", "x"]);
    }

    #[test]
    fn tickets_are_listed_newest_first() {
        let t = |id: &str| {
            Ticket::from_record(json!({"id": id, "status": "open", "createdAt": "2025"})).unwrap()
        };
        let mut list = vec![t("2"), t("10"), t("abc"), t("1")];
        newest_first(&mut list);
        let ids: Vec<&str> = list.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["10", "2", "1", "abc"]);
    }

    #[test]
    fn numeric_ids_and_revisions_are_read() {
        let t =
            Ticket::from_record(json!({"id": 7, "status": "pending", "revision": "3"})).unwrap();
        assert_eq!((t.id.as_str(), t.revision_number()), ("7", 3));
        assert!(Ticket::from_record(json!({"id": "1", "status": "done"})).is_err());
    }

    #[test]
    fn phone_keys_keep_the_last_ten_digits() {
        assert_eq!(phone_key("+1 (555) 010-2000"), "5550102000");
        assert_eq!(phone_key("555.010.2000"), "5550102000");
    }
}
