//! Newtypes parsed once at the boundary. Every name that ends up inside a storage key is
//! restricted to `[a-zA-Z0-9_-]{1,64}`, so no value can smuggle a `#` key separator.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} '{value}' is invalid: use 1 to 64 characters from a-z, A-Z, 0-9, '_' and '-'")]
pub struct InvalidName {
    pub kind: &'static str,
    pub value: String,
}

/// True when `s` matches `^[a-zA-Z0-9_-]{1,64}$`, the strictest tool-name rule of the model APIs.
pub fn is_valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidName> {
                let s = s.into();
                if is_valid_name(&s) {
                    Ok(Self(s))
                } else {
                    Err(InvalidName { kind: $kind, value: truncate(&s) })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A tenant. Only ever taken from the authorizer context.
    OrgId, "organization id"
);
name_type!(
    /// A plugin's registered name, e.g. `booking`.
    PluginName, "plugin name"
);
name_type!(
    /// A function (tool) name inside a plugin manifest.
    FunctionName, "function name"
);
name_type!(
    /// A channel: `twilio`, `retell`, `whatsapp`, `web`, …
    Channel, "channel"
);
name_type!(
    /// An entity (table) name inside a plugin's data.
    EntityName, "entity name"
);

fn truncate(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A record id inside one entity. Ids are sort keys only, so they cannot leave the tenant's
/// partition; they are still bounded and free of control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RecordId(String);

impl RecordId {
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidName> {
        let s = s.into();
        if !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control) {
            Ok(Self(s))
        } else {
            Err(InvalidName {
                kind: "record id",
                value: truncate(&s),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RecordId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(s).map_err(serde::de::Error::custom)
    }
}

/// A platform that calls Switchboard's signed routes with its own signature scheme: a voice
/// platform's tool calls (Retell, Vapi), or Twilio's webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoicePlatform {
    Retell,
    Vapi,
    /// Twilio's webhooks (e.g. a message's status callback) to a plugin's webhook function.
    Twilio,
}

impl VoicePlatform {
    pub const ALL: [Self; 3] = [Self::Retell, Self::Vapi, Self::Twilio];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retell => "retell",
            Self::Vapi => "vapi",
            Self::Twilio => "twilio",
        }
    }

    /// Whether the platform's signed requests are its own webhooks, each run by the plugin
    /// function that declares it (`webhook` in the manifest), rather than an agent's tool calls.
    pub fn sends_webhooks(self) -> bool {
        matches!(self, Self::Twilio)
    }

    /// The field of the connection's credential that holds the signing secret.
    pub fn secret_field(self) -> &'static str {
        match self {
            Self::Retell => "api_key",
            Self::Vapi => "secret",
            Self::Twilio => "auth_token",
        }
    }
}

impl fmt::Display for VoicePlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An Amazon Bedrock agent and one of its aliases (`agent.id`, `agent.alias` of an action
/// group's event): 10 and 1 to 10 characters from `[0-9a-zA-Z]`, Bedrock's own patterns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawAgentRef")]
pub struct BedrockAgentRef {
    pub agent_id: String,
    pub alias_id: String,
}

#[derive(Deserialize)]
struct RawAgentRef {
    agent_id: String,
    alias_id: String,
}

impl TryFrom<RawAgentRef> for BedrockAgentRef {
    type Error = String;
    fn try_from(raw: RawAgentRef) -> Result<Self, String> {
        Self::parse(&raw.agent_id, &raw.alias_id).map_err(|(_, why)| why)
    }
}

impl BedrockAgentRef {
    /// The error names the field that does not fit, and what it takes.
    pub fn parse(agent_id: &str, alias_id: &str) -> Result<Self, (&'static str, String)> {
        let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
        if agent_id.len() != 10 || !alnum(agent_id) {
            return Err((
                "agent_id",
                format!(
                    "'{}' is not a Bedrock agent id (10 characters from 0-9, a-z, A-Z)",
                    truncate(agent_id)
                ),
            ));
        }
        if !(1..=10).contains(&alias_id.len()) || !alnum(alias_id) {
            return Err((
                "alias_id",
                format!(
                    "'{}' is not a Bedrock agent alias id (1 to 10 characters from 0-9, a-z, A-Z, e.g. TSTALIASID)",
                    truncate(alias_id)
                ),
            ));
        }
        Ok(Self {
            agent_id: agent_id.to_owned(),
            alias_id: alias_id.to_owned(),
        })
    }
}

impl fmt::Display for BedrockAgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.agent_id, self.alias_id)
    }
}

/// A voice-platform connection's id: `cn_` and 32 hex digits from the OS RNG. It is in the
/// URL the platform calls, so it names the connection without being guessable; the
/// signature, not the id, is what authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("cn_")?;
        (hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(s.to_owned()))
    }

    /// A fresh id.
    pub fn generate() -> std::io::Result<Self> {
        use std::io::Read;
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self(format!("cn_{hex}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ConnectionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s)
            .ok_or_else(|| serde::de::Error::custom("not a connection id (cn_ and 32 hex digits)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_tool_name_rule() {
        assert!(PluginName::parse("booking").is_ok());
        assert!(FunctionName::parse("Get_All-Patients9").is_ok());
        assert!(OrgId::parse("a".repeat(64)).is_ok());
        for bad in ["", "has space", "ORG#x", "a/b", "é", &"a".repeat(65)] {
            let err = OrgId::parse(bad).unwrap_err();
            assert_eq!(err.kind, "organization id");
        }
    }

    #[test]
    fn record_ids_refuse_control_characters_and_length() {
        assert!(RecordId::parse("prov-1@2030").is_ok());
        assert!(RecordId::parse("").is_err());
        assert!(RecordId::parse("a\nb").is_err());
        assert!(RecordId::parse("x".repeat(257)).is_err());
    }

    #[test]
    fn connection_ids_are_cn_and_32_hex_digits() {
        let id = ConnectionId::generate().unwrap();
        assert_eq!(ConnectionId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(ConnectionId::generate().unwrap(), id);
        for bad in [
            "",
            "cn_",
            "cn_0123",
            &format!("cn_{}", "A".repeat(32)),
            &format!("xx_{}", "a".repeat(32)),
            &format!("cn_{}#", "a".repeat(31)),
        ] {
            assert_eq!(ConnectionId::parse(bad), None, "{bad}");
        }
        assert_eq!(VoicePlatform::parse("retell"), Some(VoicePlatform::Retell));
        assert_eq!(VoicePlatform::parse("twilio"), Some(VoicePlatform::Twilio));
        assert_eq!(VoicePlatform::parse("whatsapp"), None);
    }

    #[test]
    fn bedrock_ids_follow_bedrocks_patterns() {
        assert!(BedrockAgentRef::parse("AGENT12345", "TSTALIASID").is_ok());
        assert!(BedrockAgentRef::parse("a1B2c3D4e5", "1").is_ok());
        for (agent, alias, field) in [
            ("AGENT1234", "TSTALIASID", "agent_id"),
            ("AGENT12345X", "TSTALIASID", "agent_id"),
            ("AGENT#1234", "TSTALIASID", "agent_id"),
            ("AGENT12345", "", "alias_id"),
            ("AGENT12345", "TSTALIASID1", "alias_id"),
            ("AGENT12345", "A#B", "alias_id"),
        ] {
            assert_eq!(BedrockAgentRef::parse(agent, alias).unwrap_err().0, field);
        }
    }

    #[test]
    fn deserialize_validates() {
        let ok: Result<Channel, _> = serde_json::from_str("\"twilio\"");
        assert!(ok.is_ok());
        let bad: Result<Channel, _> = serde_json::from_str("\"two words\"");
        assert!(bad.is_err());
    }
}
