//! The plugin manifest: its model, whole-manifest validation, and the validators compiled
//! from it once per container.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use jsonschema::Validator;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Detail, Error};
use crate::ids::{FunctionName, PluginName, is_valid_name};
use crate::index::Indexes;
use crate::spec::AdapterKind;

/// The JSON Schema of the manifest format itself, published for third parties.
pub const MANIFEST_SCHEMA: &str = include_str!("../schema/manifest.schema.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: PluginName,
    pub version: String,
    pub display_name: String,
    pub description: String,
    pub functions: Vec<FunctionDef>,
    #[serde(default = "default_adapters")]
    pub data_adapters: Vec<AdapterKind>,
    /// Paths this plugin also answers besides `/plugins/<name>` (legacy routes, e.g.
    /// `/api/booking`); the deployment routes them to the plugin's function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_aliases: Vec<String>,
    pub instruction_template: String,
    /// `instruction_template` in other languages, by BCP 47 tag (e.g. `es`); an agent
    /// whose locale matches one gets it ([`crate::locale`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub instruction_templates: std::collections::BTreeMap<String, String>,
    #[serde(default = "empty_object_schema")]
    pub config_schema: Value,
    #[serde(default = "empty_object")]
    pub default_config: Value,
    /// The fields each entity's records are looked up by (see [`crate::index`]).
    #[serde(default, skip_serializing_if = "Indexes::is_empty")]
    pub indexes: Indexes,
    /// This plugin's own functions it may schedule to run later for the same caller
    /// (`CallContext::schedule_call`), e.g. a reminder's `SendSms`; the deployment lets the
    /// scheduler invoke only the functions of plugins that list some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled_functions: Vec<FunctionName>,
    /// AWS API actions the plugin's own code calls with its function's role, e.g.
    /// `translate:TranslateText`, out of [`GRANTABLE_AWS_ACTIONS`]; the deployment grants
    /// exactly these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_actions: Vec<String>,
}

/// The AWS actions a plugin's `aws_actions` may name. They are granted on every resource
/// (`Resource: "*"`), so only actions that answer from the request itself are here (a
/// translation reads at most the account's terminology lists): a new one is added to this
/// list by review, never by a manifest.
pub const GRANTABLE_AWS_ACTIONS: [&str; 2] = [
    "translate:TranslateText",
    "comprehend:DetectDominantLanguage",
];

/// Whether `action` is one a plugin may be granted ([`GRANTABLE_AWS_ACTIONS`]).
pub fn grantable_aws_action(action: &str) -> bool {
    GRANTABLE_AWS_ACTIONS.contains(&action)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDef {
    pub name: FunctionName,
    pub description: String,
    pub parameters: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Required by the manifest schema; absent only in manifests published before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side_effects: Option<bool>,
    #[serde(default, skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Value>,
    /// The platform whose signed webhooks this function answers (e.g. `twilio` for a
    /// message's status callbacks): it is no agent's tool, and runs only from that platform's
    /// route, `/channels/<platform>/{connection}/<plugin>`, with the webhook's fields as its
    /// parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::ids::VoicePlatform>,
}

impl FunctionDef {
    /// Whether agents see it: every function but a platform's webhook.
    pub fn is_tool(&self) -> bool {
        self.webhook.is_none()
    }

    /// Whether calls change anything; an older manifest that does not say counts its
    /// functions not marked read-only as changing.
    pub fn has_side_effects(&self) -> bool {
        self.side_effects.unwrap_or(!self.annotations.read_only)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotations {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destructive: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotent: bool,
}

impl Annotations {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn default_adapters() -> Vec<AdapterKind> {
    vec![AdapterKind::Dynamodb]
}
fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}
fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A manifest that failed validation; `problems` names every failing place.
#[derive(Debug, Clone, thiserror::Error)]
#[error("manifest is invalid: {}", summary(.problems))]
pub struct ManifestError {
    pub problems: Vec<Detail>,
}

fn summary(problems: &[Detail]) -> String {
    problems
        .iter()
        .map(|d| {
            format!(
                "{}: {}",
                if d.path.is_empty() { "/" } else { &d.path },
                d.message
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Self {
        Error::Validation {
            code: "invalid_manifest",
            message: e.to_string(),
            details: e.problems,
        }
    }
}

/// A validated manifest with its schemas compiled.
pub struct CompiledManifest {
    manifest: Manifest,
    params: HashMap<FunctionName, Validator>,
    config: Validator,
}

impl std::fmt::Debug for CompiledManifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledManifest")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

fn format_validator() -> &'static Validator {
    static META: OnceLock<Validator> = OnceLock::new();
    META.get_or_init(|| {
        let schema: Value = serde_json::from_str(MANIFEST_SCHEMA)
            .unwrap_or_else(|e| panic!("bundled manifest.schema.json is not JSON: {e}"));
        compile(&schema).unwrap_or_else(|e| panic!("bundled manifest.schema.json: {e}"))
    })
}

/// Compiles a schema with no remote or file `$ref` resolution (the crate is built without it).
pub fn compile(schema: &Value) -> Result<Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}

/// Validates `instance`, returning one detail per failing JSON pointer. Missing required
/// properties and unexpected properties are reported at the property's own pointer.
pub fn check(validator: &Validator, instance: &Value) -> Vec<Detail> {
    let mut by_path: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for err in validator.iter_errors(instance) {
        let base = err.instance_path().as_str().to_owned();
        match err.kind() {
            jsonschema::error::ValidationErrorKind::Required { property } => {
                let name = property
                    .as_str()
                    .map_or_else(|| property.to_string(), str::to_owned);
                by_path
                    .entry(format!("{base}/{}", escape_pointer(&name)))
                    .or_default()
                    .push(format!("'{name}' is required"));
            }
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    by_path
                        .entry(format!("{base}/{}", escape_pointer(name)))
                        .or_default()
                        .push(format!("'{name}' is not an accepted property"));
                }
            }
            _ => by_path.entry(base).or_default().push(err.to_string()),
        }
    }
    by_path
        .into_iter()
        .map(|(path, msgs)| Detail::new(path, msgs.join("; ")))
        .collect()
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl CompiledManifest {
    /// Parses and validates a manifest as a whole, collecting every problem.
    pub fn from_json(text: &str) -> Result<Self, ManifestError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ManifestError {
            problems: vec![Detail::new("", format!("not valid JSON: {e}"))],
        })?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, ManifestError> {
        let problems = check(format_validator(), &value);
        if !problems.is_empty() {
            return Err(ManifestError { problems });
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| ManifestError {
            problems: vec![Detail::new("", e.to_string())],
        })?;
        Self::compile(manifest)
    }

    pub fn compile(manifest: Manifest) -> Result<Self, ManifestError> {
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        let mut params = HashMap::new();
        for (i, f) in manifest.functions.iter().enumerate() {
            let at = format!("/functions/{i}");
            if !is_valid_name(f.name.as_str()) {
                problems.push(Detail::new(format!("{at}/name"), "invalid name"));
            }
            if !seen.insert(f.name.clone()) {
                problems.push(Detail::new(
                    format!("{at}/name"),
                    format!("duplicate function name '{}'", f.name),
                ));
            }
            if f.parameters.get("type") != Some(&Value::String("object".into())) {
                problems.push(Detail::new(
                    format!("{at}/parameters/type"),
                    "a function's parameters schema must have \"type\": \"object\"",
                ));
            }
            match compile(&f.parameters) {
                Ok(v) => {
                    for (j, ex) in f.examples.iter().enumerate() {
                        for d in check(&v, ex) {
                            problems.push(Detail::new(
                                format!("{at}/examples/{j}{}", d.path),
                                format!("example fails the parameters schema: {}", d.message),
                            ));
                        }
                    }
                    params.insert(f.name.clone(), v);
                }
                Err(e) => problems.push(Detail::new(
                    format!("{at}/parameters"),
                    format!("schema does not compile: {e}"),
                )),
            }
            if f.side_effects == Some(true) && f.annotations.read_only {
                problems.push(Detail::new(
                    format!("{at}/side_effects"),
                    "a function with side effects cannot be annotated read_only",
                ));
            }
            if let Some(out) = &f.output_schema
                && let Err(e) = compile(out)
            {
                problems.push(Detail::new(
                    format!("{at}/output_schema"),
                    format!("schema does not compile: {e}"),
                ));
            }
        }
        // A declared name must not be the hashed name the agent builder may give another
        // function of this plugin on a collision: the plugin's route could not tell them apart.
        for (i, g) in manifest.functions.iter().enumerate() {
            let qualified = crate::toolnames::qualified(&manifest.name, &g.name);
            if let Some(f) = manifest.functions.iter().find(|f| {
                f.name != g.name && crate::toolnames::hashed(&manifest.name, &f.name) == qualified
            }) {
                problems.push(Detail::new(
                    format!("/functions/{i}/name"),
                    format!(
                        "'{}' qualified is the name the agent builder gives '{}' on a collision; rename it",
                        g.name, f.name
                    ),
                ));
            }
        }
        let config = match compile(&manifest.config_schema) {
            Ok(v) => {
                for d in check(&v, &manifest.default_config) {
                    problems.push(Detail::new(
                        format!("/default_config{}", d.path),
                        format!("default_config fails config_schema: {}", d.message),
                    ));
                }
                Some(v)
            }
            Err(e) => {
                problems.push(Detail::new(
                    "/config_schema",
                    format!("schema does not compile: {e}"),
                ));
                None
            }
        };
        problems.extend(manifest.indexes.problems());
        let mut seen = std::collections::BTreeSet::new();
        for tag in manifest.instruction_templates.keys() {
            let at = format!("/instruction_templates/{}", escape_pointer(tag));
            match crate::locale::canonical(tag) {
                None => problems.push(Detail::new(
                    at,
                    "must be keyed by a BCP 47 language tag, e.g. es",
                )),
                Some(c) if c == crate::locale::TEMPLATE_LANGUAGE => problems.push(Detail::new(
                    at,
                    "instruction_template is the English one: key by another language",
                )),
                Some(c) => {
                    if !seen.insert(c.clone()) {
                        problems.push(Detail::new(at, format!("{c} is given twice")));
                    }
                }
            }
        }
        for (i, a) in manifest.aws_actions.iter().enumerate() {
            if !grantable_aws_action(a) {
                problems.push(Detail::new(
                    format!("/aws_actions/{i}"),
                    format!(
                        "{a} is not an AWS action a plugin may be granted; those are {}",
                        GRANTABLE_AWS_ACTIONS.join(", ")
                    ),
                ));
            }
        }
        for (i, f) in manifest.scheduled_functions.iter().enumerate() {
            match manifest.functions.iter().find(|d| &d.name == f) {
                None => problems.push(Detail::new(
                    format!("/scheduled_functions/{i}"),
                    format!("{f} is not a function of this manifest"),
                )),
                Some(d) if !d.is_tool() => problems.push(Detail::new(
                    format!("/scheduled_functions/{i}"),
                    format!("{f} is a webhook function: only its platform runs it"),
                )),
                Some(_) => {}
            }
        }
        let mut hooked = HashSet::new();
        for (i, f) in manifest.functions.iter().enumerate() {
            let Some(platform) = f.webhook else { continue };
            let at = format!("/functions/{i}/webhook");
            if !platform.sends_webhooks() {
                problems.push(Detail::new(
                    at,
                    format!("{platform} sends tool calls, not webhooks; only twilio's webhooks run a function"),
                ));
            } else if !hooked.insert(platform) {
                problems.push(Detail::new(
                    at,
                    format!("another function already answers {platform}'s webhooks; a plugin's route runs one"),
                ));
            }
        }
        match config {
            Some(config) if problems.is_empty() => Ok(Self {
                manifest,
                params,
                config,
            }),
            _ => Err(ManifestError { problems }),
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn name(&self) -> &PluginName {
        &self.manifest.name
    }

    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        self.manifest
            .functions
            .iter()
            .find(|f| f.name.as_str() == name)
    }

    /// The function that answers `platform`'s webhooks, if the plugin has one.
    pub fn webhook_function(&self, platform: crate::ids::VoicePlatform) -> Option<&FunctionDef> {
        self.manifest
            .functions
            .iter()
            .find(|f| f.webhook == Some(platform))
    }

    /// Validates call parameters; 422 with one detail per failing pointer.
    pub fn validate_params(&self, function: &FunctionName, params: &Value) -> Result<(), Error> {
        let validator = self
            .params
            .get(function)
            .ok_or_else(|| Error::internal(format!("no validator for {function}")))?;
        let details = check(validator, params);
        if details.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation {
                code: "validation_failed",
                message: format!(
                    "parameters for {function} are invalid: {}",
                    summary(&details)
                ),
                details,
            })
        }
    }

    /// Validates an effective config against `config_schema`. The details say what fails
    /// where; the message only points at them.
    pub fn validate_config(&self, config: &Value) -> Result<(), Error> {
        let details = check(&self.config, config);
        let Some(first) = details.first() else {
            return Ok(());
        };
        let at = if first.path.is_empty() {
            "/"
        } else {
            &first.path
        };
        let name = &self.manifest.name;
        let message = match details.len() {
            1 => format!("the {name} instance's config fails its config_schema at {at}"),
            n => format!(
                "the {name} instance's config fails its config_schema in {n} places, the first at {at}"
            ),
        };
        Err(Error::Validation {
            code: "invalid_config",
            message,
            details,
        })
    }

    /// `default_config` overlaid by an instance's config.
    pub fn effective_config(&self, instance_config: &Value) -> Value {
        let mut out = self.manifest.default_config.clone();
        overlay(&mut out, instance_config);
        out
    }
}

/// Deep-merges `top` onto `base`: objects merge key by key, anything else replaces.
/// Whether `v` is a semantic version as manifests write it (`1.2.3`, `1.0.0-rc.1+b7`), at
/// most 64 characters: what may be looked up as a manifest version.
pub fn is_version(v: &str) -> bool {
    let ident = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    let number = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    if v.len() > 64 {
        return false;
    }
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| number(p))
        && pre.is_none_or(ident)
        && build.is_none_or(ident)
}

/// Sorts versions in semantic-version order (non-numeric parts compare as text).
pub fn sort_versions(versions: &mut [String]) {
    fn key(v: &str) -> Vec<(u64, String)> {
        v.split(['.', '-'])
            .map(|p| (p.parse::<u64>().unwrap_or(u64::MAX), p.to_owned()))
            .collect()
    }
    versions.sort_by_cached_key(|v| key(v));
}

pub fn overlay(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(k) {
                    Some(existing) => overlay(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, t) => *b = t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_recognised() {
        for ok in [
            "1.2.3",
            "0.0.0",
            "10.20.30",
            "1.0.0-rc.1",
            "1.0.0+b7",
            "1.0.0-alpha-2+x.y",
        ] {
            assert!(is_version(ok), "{ok}");
        }
        let long = format!("1.0.0-{}", "a".repeat(70));
        for bad in [
            "1.2",
            "01.2.3",
            "1.2.3-",
            "1.2.3+",
            "a.b.c",
            "1..3",
            long.as_str(),
        ] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    #[test]
    fn versions_sort_semantically() {
        let mut v = vec!["1.10.0".to_owned(), "1.2.0".into(), "0.9.1".into()];
        sort_versions(&mut v);
        assert_eq!(v, ["0.9.1", "1.2.0", "1.10.0"]);
    }
    use serde_json::json;

    fn base() -> Value {
        json!({
            "name": "demo",
            "version": "1.0.0",
            "display_name": "Demo",
            "description": "A demo plugin",
            "instruction_template": "Be nice.",
            "config_schema": {"type": "object", "properties": {"slots": {"type": "integer"}}},
            "default_config": {"slots": 30},
            "functions": [
                {"name": "Ping", "description": "ping", "side_effects": false, "parameters": {"type": "object",
                  "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": false},
                 "examples": [{"n": 1}]}
            ]
        })
    }

    fn problems(v: Value) -> Vec<Detail> {
        match CompiledManifest::from_value(v) {
            Ok(_) => panic!("expected the manifest to be refused"),
            Err(e) => e.problems,
        }
    }

    fn has(problems: &[Detail], path: &str, needle: &str) -> bool {
        problems
            .iter()
            .any(|d| d.path == path && d.message.contains(needle))
    }

    #[test]
    fn a_good_manifest_compiles() {
        let m = CompiledManifest::from_value(base()).unwrap();
        assert_eq!(m.name().as_str(), "demo");
        assert!(m.function("Ping").is_some());
    }

    #[test]
    fn aws_actions_and_scheduled_functions_are_checked() {
        let mut v = base();
        v["aws_actions"] = json!(["translate:TranslateText", "apigateway:PATCH"]);
        v["scheduled_functions"] = json!(["NoSuchFunction"]);
        let e = CompiledManifest::from_value(v.clone()).unwrap_err();
        let paths: Vec<&str> = e.problems.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/aws_actions/1", "/scheduled_functions/0"]);
        // Wildcards fail the manifest schema itself.
        v["aws_actions"] = json!(["s3:*"]);
        let e = CompiledManifest::from_value(v).unwrap_err();
        assert!(
            e.problems
                .iter()
                .any(|d| d.path.starts_with("/aws_actions")),
            "{e:?}"
        );
        assert!(grantable_aws_action("comprehend:DetectDominantLanguage"));
        assert!(!grantable_aws_action("lambda:InvokeFunction"));
        assert!(!grantable_aws_action("logs:FilterLogEvents"));
    }

    #[test]
    fn webhook_functions_are_one_per_platform_and_never_scheduled() {
        let hook = |name: &str, platform: &str| {
            json!({"name": name, "description": "a callback", "side_effects": false,
                "webhook": platform, "parameters": {"type": "object"}})
        };
        let mut v = base();
        v["functions"]
            .as_array_mut()
            .unwrap()
            .push(hook("Status", "twilio"));
        let m = CompiledManifest::from_value(v.clone()).unwrap();
        let status = m.webhook_function(crate::ids::VoicePlatform::Twilio);
        assert_eq!(status.map(|f| f.name.as_str()), Some("Status"));
        assert!(status.is_some_and(|f| !f.is_tool()));
        assert!(m.function("Ping").is_some_and(FunctionDef::is_tool));
        assert!(
            m.webhook_function(crate::ids::VoicePlatform::Retell)
                .is_none()
        );

        let mut twice = v.clone();
        twice["functions"]
            .as_array_mut()
            .unwrap()
            .push(hook("Again", "twilio"));
        let p = problems(twice);
        assert!(has(&p, "/functions/2/webhook", "already answers"), "{p:?}");
        let mut scheduled = v.clone();
        scheduled["scheduled_functions"] = json!(["Status"]);
        let p = problems(scheduled);
        assert!(
            has(&p, "/scheduled_functions/0", "webhook function"),
            "{p:?}"
        );
        // Retell and Vapi send tool calls: the manifest schema names only webhook platforms.
        let mut retell = base();
        retell["functions"]
            .as_array_mut()
            .unwrap()
            .push(hook("Status", "retell"));
        let p = problems(retell);
        assert!(
            p.iter().any(|d| d.path.starts_with("/functions/1")),
            "{p:?}"
        );
    }

    #[test]
    fn duplicate_function_names_are_refused() {
        let mut v = base();
        let f = v["functions"][0].clone();
        v["functions"].as_array_mut().unwrap().push(f);
        let p = problems(v);
        assert!(
            has(&p, "/functions/1/name", "duplicate function name 'Ping'"),
            "{p:?}"
        );
    }

    #[test]
    fn a_name_equal_to_another_functions_hashed_name_is_refused() {
        let mut v = base();
        let plugin = crate::ids::PluginName::parse(v["name"].as_str().unwrap()).unwrap();
        let ping = crate::ids::FunctionName::parse("Ping").unwrap();
        let hashed = crate::toolnames::hashed(&plugin, &ping);
        // The declared name whose qualified form is that hashed name.
        let evil = hashed
            .strip_prefix(&format!("{plugin}_"))
            .unwrap()
            .to_owned();
        let mut f = v["functions"][0].clone();
        f["name"] = json!(evil);
        v["functions"].as_array_mut().unwrap().push(f);
        let p = problems(v);
        assert!(
            has(&p, "/functions/1/name", "on a collision; rename it"),
            "{p:?}"
        );
    }

    #[test]
    fn parameters_must_be_an_object_schema_that_compiles() {
        let mut v = base();
        v["functions"][0]["parameters"] = json!({"type": "string"});
        let p = problems(v);
        assert!(
            has(
                &p,
                "/functions/0/parameters/type",
                "must have \"type\": \"object\""
            ),
            "{p:?}"
        );

        let mut v = base();
        v["functions"][0]["parameters"] =
            json!({"type": "object", "properties": {"n": {"type": 12}}});
        let p = problems(v);
        assert!(
            has(&p, "/functions/0/parameters", "does not compile"),
            "{p:?}"
        );
    }

    #[test]
    fn remote_refs_are_not_fetched() {
        let mut v = base();
        v["functions"][0]["parameters"] =
            json!({"type": "object", "properties": {"n": {"$ref": "https://example.com/x.json"}}});
        let p = problems(v);
        assert!(
            has(&p, "/functions/0/parameters", "does not compile"),
            "{p:?}"
        );
    }

    #[test]
    fn default_config_must_satisfy_config_schema() {
        let mut v = base();
        v["default_config"] = json!({"slots": "thirty"});
        let p = problems(v);
        assert!(
            has(&p, "/default_config/slots", "fails config_schema"),
            "{p:?}"
        );
    }

    #[test]
    fn examples_must_satisfy_their_function_schema() {
        let mut v = base();
        v["functions"][0]["examples"] = json!([{"n": 1}, {"n": "one"}, {}]);
        let p = problems(v);
        assert!(
            has(&p, "/functions/0/examples/1/n", "example fails"),
            "{p:?}"
        );
        assert!(
            has(&p, "/functions/0/examples/2/n", "'n' is required"),
            "{p:?}"
        );
    }

    #[test]
    fn names_outside_the_tool_name_rule_are_refused() {
        let mut v = base();
        v["functions"][0]["name"] = json!("get patient");
        v["name"] = json!("x".repeat(65));
        let p = problems(v);
        assert!(p.iter().any(|d| d.path == "/functions/0/name"), "{p:?}");
        assert!(p.iter().any(|d| d.path == "/name"), "{p:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut v = base();
        v["default_config"] = json!({"slots": false});
        v["functions"][0]["parameters"] = json!({"type": "array"});
        let p = problems(v);
        assert!(p.len() >= 2, "{p:?}");
    }

    #[test]
    fn params_errors_have_one_detail_per_pointer() {
        let m = CompiledManifest::from_value(base()).unwrap();
        let f = FunctionName::parse("Ping").unwrap();
        let err = m.validate_params(&f, &json!({"extra": 1})).unwrap_err();
        match err {
            Error::Validation { details, .. } => {
                let paths: Vec<_> = details.iter().map(|d| d.path.as_str()).collect();
                assert_eq!(paths, vec!["/extra", "/n"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(m.validate_params(&f, &json!({"n": 3})).is_ok());
    }

    #[test]
    fn overlay_merges_objects_deeply() {
        let mut base = json!({"a": 1, "hours": {"mon": "8-5", "tue": "8-5"}});
        overlay(&mut base, &json!({"hours": {"tue": null}, "b": [1]}));
        assert_eq!(
            base,
            json!({"a": 1, "hours": {"mon": "8-5", "tue": null}, "b": [1]})
        );
    }
}
