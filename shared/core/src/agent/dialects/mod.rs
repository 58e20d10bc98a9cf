//! Exports an assembled [`Agent`] in the tool-definition formats channels and model APIs
//! speak: OpenAI Chat Completions and Responses, Anthropic Messages, Bedrock Agents action
//! groups, MCP `tools/list`, Vapi and Retell (ARCHITECTURE.md, "The path of one call").
//! Every export carries `org`, `channel`, `format`, `instructions` and `warnings`, so a
//! channel gets everything in one call.
//! Nothing is dropped or truncated silently: what a dialect cannot carry is named in
//! `warnings` (or, for Bedrock, `notExportable`).

mod anthropic;
mod bedrock;
mod mcp;
mod openai;
mod retell;
mod strict;
mod vapi;

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value, json};

use super::{Agent, AgentTool};
use crate::error::Error;
use crate::ids::{ConnectionId, VoicePlatform, is_valid_name};

pub use mcp::{output_schema as mcp_output_schema, structured_content as mcp_structured_content};
pub use strict::{
    RELAXED, SERVER_FORMATS, STRICT_FORMATS, lower_strict, strict_rule_violations,
    strip_strict_nulls,
};

/// One export dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OpenAI Chat Completions `tools`.
    OpenAi,
    /// OpenAI Responses API `tools` (flattened).
    OpenAiResponses,
    /// Anthropic Messages API `tools`.
    Anthropic,
    /// Amazon Bedrock Agents action group, function details.
    Bedrock,
    /// The MCP `tools/list` result.
    Mcp,
    /// Vapi function tools with a server URL.
    Vapi,
    /// Retell custom functions.
    Retell,
}

impl Format {
    /// The accepted names, in the order of [`Format::VARIANTS`].
    pub const ALL: [&str; 7] = [
        "openai",
        "openai-responses",
        "anthropic",
        "bedrock",
        "mcp",
        "vapi",
        "retell",
    ];

    pub const VARIANTS: [Format; 7] = [
        Format::OpenAi,
        Format::OpenAiResponses,
        Format::Anthropic,
        Format::Bedrock,
        Format::Mcp,
        Format::Vapi,
        Format::Retell,
    ];

    /// Parses a format name (ASCII case-insensitive); 400 `invalid_request` naming every
    /// accepted format otherwise.
    pub fn parse(s: &str) -> Result<Format, Error> {
        let wanted = s.trim();
        Self::ALL
            .iter()
            .zip(Self::VARIANTS)
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, f)| f)
            .ok_or_else(|| {
                let shown: String = wanted.chars().take(40).collect();
                Error::invalid_request(format!(
                    "unknown format '{shown}': use one of {}",
                    Self::ALL.join(", ")
                ))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::OpenAiResponses => "openai-responses",
            Format::Anthropic => "anthropic",
            Format::Bedrock => "bedrock",
            Format::Mcp => "mcp",
            Format::Vapi => "vapi",
            Format::Retell => "retell",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Deployment facts an export may need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// The public origin the plugin routes are served under, e.g. `https://api.example.com`
    /// (`SWITCHBOARD_PUBLIC_URL`). Vapi and Retell call tools by URL, so they need it.
    pub public_base_url: Option<String>,
}

/// Exports `agent` in `format`. 422 when the format needs a public base URL that is not
/// configured (Vapi, Retell).
pub fn export(agent: &Agent, format: Format, opts: &ExportOptions) -> Result<Value, Error> {
    let mut warnings = Vec::new();
    let body = match format {
        Format::OpenAi => openai::chat(&usable(agent, &mut warnings), &mut warnings),
        Format::OpenAiResponses => openai::responses(&usable(agent, &mut warnings), &mut warnings),
        Format::Anthropic => anthropic::export(&usable(agent, &mut warnings)),
        // Bedrock's own name rule is checked (and reported) there.
        Format::Bedrock => bedrock::export(&agent.tools, &mut warnings),
        Format::Mcp => mcp::export(&usable(agent, &mut warnings)),
        Format::Vapi => {
            let base = public_base(opts, format)?;
            let urls = voice_urls(agent, VoicePlatform::Vapi, base, &mut warnings);
            vapi::export(&usable(agent, &mut warnings), &urls)
        }
        Format::Retell => {
            let base = public_base(opts, format)?;
            let urls = voice_urls(agent, VoicePlatform::Retell, base, &mut warnings);
            retell::export(&usable(agent, &mut warnings), &urls)
        }
    };
    let mut out = Map::new();
    out.insert("org".into(), json!(agent.org.as_str()));
    out.insert("channel".into(), json!(agent.channel.as_str()));
    out.insert("format".into(), json!(format.as_str()));
    out.insert("instructions".into(), json!(agent.instructions));
    out.extend(body);
    out.insert("warnings".into(), Value::Array(warnings));
    Ok(Value::Object(out))
}

/// The tools whose names every JSON-schema dialect accepts (`^[a-zA-Z0-9_-]{1,64}$`); any
/// other is left out with a warning rather than sent to be refused by the model API.
fn usable<'a>(agent: &'a Agent, warnings: &mut Vec<Value>) -> Vec<&'a AgentTool> {
    agent
        .tools
        .iter()
        .filter(|t| {
            let ok = is_valid_name(&t.name);
            if !ok {
                warnings.push(warning(
                    &t.name,
                    "left out: the name does not match ^[a-zA-Z0-9_-]{1,64}$",
                ));
            }
            ok
        })
        .collect()
}

/// The agent's tools as MCP's `tools/list` lists them (those with a name MCP clients take).
pub fn mcp_tools(agent: &Agent) -> Vec<Value> {
    usable(agent, &mut Vec::new())
        .into_iter()
        .map(mcp::tool)
        .collect()
}

/// One `warnings` entry.
fn warning(tool: &str, message: impl Into<String>) -> Value {
    json!({"tool": tool, "message": message.into()})
}

/// The configured public origin without a trailing '/', or 422.
fn public_base(opts: &ExportOptions, format: Format) -> Result<&str, Error> {
    let base = opts
        .public_base_url
        .as_deref()
        .map(|b| b.trim().trim_end_matches('/'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            Error::unprocessable(format!(
                "the public base URL is not configured (set SWITCHBOARD_PUBLIC_URL); {format} \
                 tools are called by URL"
            ))
        })?;
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(Error::unprocessable(format!(
            "the public base URL (SWITCHBOARD_PUBLIC_URL) must be an absolute http(s) URL, \
             not '{base}'"
        )));
    }
    Ok(base)
}

/// Where a voice platform calls a tool: the signed route of the channel's connection for
/// that platform, or (without one, with a warning) the API-key route.
pub(super) struct VoiceUrls<'a> {
    base: &'a str,
    connection: Option<(VoicePlatform, &'a ConnectionId)>,
}

impl VoiceUrls<'_> {
    fn of(&self, tool: &AgentTool) -> String {
        match self.connection {
            Some((platform, id)) => tool_url(
                self.base,
                &format!("/channels/{platform}/{id}/{}", tool.plugin),
            ),
            None => tool_url(self.base, &tool.route),
        }
    }
}

fn voice_urls<'a>(
    agent: &'a Agent,
    platform: VoicePlatform,
    base: &'a str,
    warnings: &mut Vec<Value>,
) -> VoiceUrls<'a> {
    let connection = agent.connection(platform).map(|id| (platform, id));
    if connection.is_none() {
        warnings.push(warning(
            "*",
            format!(
                "the '{}' channel has no {platform} connection, so the tool URLs are the API-key routes, which {platform} can only call with the key in a header; for signed calls run `switchboard channel connect {platform} {} --credential <name>`",
                agent.channel, agent.channel
            ),
        ));
    }
    VoiceUrls { base, connection }
}

/// `<base><route>`, with exactly one '/' between them.
fn tool_url(base: &str, route: &str) -> String {
    if route.starts_with('/') {
        format!("{base}{route}")
    } else {
        format!("{base}/{route}")
    }
}

/// Resolves a local `$ref` (`#` or `#/json/pointer`) against the schema root.
fn resolve_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    match reference.strip_prefix('#')? {
        "" => Some(root),
        pointer => root.pointer(pointer),
    }
}

/// Escapes one JSON pointer segment.
fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// A human title from a tool name: `CreateAppointment` → "Create Appointment",
/// `get_all-patients` → "Get All Patients", `SendSMSReminder` → "Send SMS Reminder".
fn title(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c.is_whitespace() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
        .iter()
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(first) => first.to_uppercase().chain(cs).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_split_words() {
        assert_eq!(title("CreateAppointment"), "Create Appointment");
        assert_eq!(title("get_all-patients9"), "Get All Patients9");
        assert_eq!(title("SendSMSReminder"), "Send SMS Reminder");
        assert_eq!(title("booking_GetPatient"), "Booking Get Patient");
        assert_eq!(title("x"), "X");
    }

    #[test]
    fn formats_round_trip_and_unknown_is_a_400_listing_all() {
        for (name, f) in Format::ALL.iter().zip(Format::VARIANTS) {
            assert_eq!(Format::parse(name).ok(), Some(f));
            assert_eq!(f.as_str(), *name);
        }
        assert_eq!(Format::parse("OpenAI").ok(), Some(Format::OpenAi));
        let Err(e) = Format::parse("gemini") else {
            panic!("gemini is not a format")
        };
        assert_eq!(e.status(), 400);
        assert_eq!(e.code(), "invalid_request");
        for name in Format::ALL {
            assert!(e.to_string().contains(name), "{e} does not list {name}");
        }
    }

    #[test]
    fn base_urls_are_trimmed_and_checked() {
        let opts = |s: &str| ExportOptions {
            public_base_url: Some(s.to_owned()),
        };
        assert_eq!(
            public_base(&opts("https://api.example.com/"), Format::Vapi).ok(),
            Some("https://api.example.com")
        );
        assert!(public_base(&opts("api.example.com"), Format::Vapi).is_err());
        let Err(e) = public_base(&ExportOptions::default(), Format::Retell) else {
            panic!("no base configured")
        };
        assert_eq!(e.status(), 422);
        assert!(e.to_string().contains("SWITCHBOARD_PUBLIC_URL"), "{e}");
        assert_eq!(
            tool_url("https://a.b", "/plugins/x"),
            "https://a.b/plugins/x"
        );
        assert_eq!(
            tool_url("https://a.b", "plugins/x"),
            "https://a.b/plugins/x"
        );
    }
}
