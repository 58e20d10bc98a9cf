//! Operator commands: they call the admin API (and `GET /agents/{channel}`) at a base URL
//! with a key, so the same commands work against `dev` and a deployed stack.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A failed command: the message to print, and whether it was the API that refused.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

pub struct Api {
    base: String,
    key: String,
    http: HyperClient<Https, Full<Bytes>>,
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl Api {
    /// `base`: e.g. `http://127.0.0.1:3000` or the stack's `ApiUrl` output. Plain http
    /// only to this machine (`dev`) unless `allow_insecure`: the key is a bearer token.
    pub fn new(base: &str, key: &str, allow_insecure: bool) -> Result<Self, Failure> {
        let uri: hyper::Uri = base
            .parse()
            .map_err(|_| Failure(format!("'{base}' is not a URL")))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if allow_insecure || uri.host().is_some_and(is_loopback) => {}
            Some("http") => {
                return Err(Failure(format!(
                    "refusing to send the API key over plain http:// to {}: use the https:// URL (a deployed stack's ApiUrl is https), or pass --allow-insecure if this network is trusted",
                    uri.host().unwrap_or(base)
                )));
            }
            _ => {
                return Err(Failure(format!(
                    "the API URL must start with http:// or https://, not '{base}'"
                )));
            }
        }
        if key.trim().is_empty() {
            return Err(Failure(
                "no API key: pass --key or set SWITCHBOARD_API_KEY".into(),
            ));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Failure(format!("TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key: key.trim().to_owned(),
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// The API's `paths` as full URLs under this base.
    fn urls(&self, paths: &Value) -> Vec<String> {
        paths
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|p| format!("{}{p}", self.base))
            .collect()
    }

    /// One request; a non-2xx answer becomes the API's own message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        if_match: Option<u64>,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let (status, value) = self.raw(method, path, if_match, body).await?;
        if (200..300).contains(&status) {
            Ok(value.get("result").cloned().unwrap_or(value))
        } else {
            Err(api_failure(status, &value))
        }
    }

    /// The status and JSON body, whatever the status.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        if_match: Option<u64>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Failure> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.key))
            .header("accept", "application/json");
        if let Some(v) = if_match {
            req = req.header("if-match", format!("\"{v}\""));
        }
        let bytes = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(bytes))
            .map_err(|e| Failure(format!("bad request for {url}: {e}")))?;
        let resp = tokio::time::timeout(TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| Failure(format!("{url} did not answer within {TIMEOUT:?}")))?
            .map_err(|e| Failure(format!("cannot reach {url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
            .await
            .map_err(|_| Failure(format!("{url} did not finish its answer")))?
            .map_err(|e| Failure(format!("reading the answer from {url}: {e}")))?
            .to_bytes();
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|_| {
                Failure(format!(
                    "{url} answered {status} with a body that is not JSON: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ))
            })?
        };
        Ok((status, value))
    }
}

/// `localhost`, 127.0.0.0/8 or ::1: traffic that never leaves the machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn api_failure(status: u16, body: &Value) -> Failure {
    let err = &body["error"];
    let mut msg = format!(
        "{status} {}: {}",
        err["code"].as_str().unwrap_or("error"),
        err["message"]
            .as_str()
            .unwrap_or("the API refused the request")
    );
    if let Some(details) = err["details"].as_array() {
        for d in details {
            msg.push_str(&format!(
                "\n  {}: {}",
                d["path"].as_str().unwrap_or(""),
                d["message"].as_str().unwrap_or("")
            ));
        }
    }
    Failure(msg)
}

/// What a command printed: JSON for scripts, or text for people.
pub struct Output {
    pub json: Value,
    pub text: String,
}

fn out(json: Value, text: impl Into<String>) -> Output {
    Output {
        json,
        text: text.into(),
    }
}

pub async fn publish(api: &Api, file: &str) -> Result<Output, Failure> {
    let text =
        std::fs::read_to_string(file).map_err(|e| Failure(format!("cannot read {file}: {e}")))?;
    let manifest: Value =
        serde_json::from_str(&text).map_err(|e| Failure(format!("{file} is not JSON: {e}")))?;
    let r = api
        .call(Method::POST, "/admin/plugins", None, Some(&manifest))
        .await?;
    let what = if r["created"] == true {
        "published"
    } else {
        "already published with the same content"
    };
    let line = format!(
        "{} {} {what}",
        r["name"].as_str().unwrap_or("?"),
        r["version"].as_str().unwrap_or("?")
    );
    Ok(out(r, line))
}

pub async fn plugins(api: &Api) -> Result<Output, Failure> {
    let r = api.call(Method::GET, "/admin/plugins", None, None).await?;
    let mut lines = vec![format!("{:<24} {:<10} versions", "plugin", "latest")];
    for p in r["plugins"].as_array().into_iter().flatten() {
        let versions: Vec<&str> = p["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        lines.push(format!(
            "{:<24} {:<10} {}",
            p["name"].as_str().unwrap_or("?"),
            p["latest"].as_str().unwrap_or("-"),
            versions.join(", ")
        ));
    }
    Ok(out(r, lines.join("\n")))
}

pub async fn org_create(api: &Api, org: &str, name: &str) -> Result<Output, Failure> {
    let r = api
        .call(
            Method::POST,
            "/admin/orgs",
            None,
            Some(&json!({"org": org, "display_name": name})),
        )
        .await?;
    let line = format!(
        "created organization {org}\nadmin key (shown once): {}",
        r["key"].as_str().unwrap_or("?")
    );
    Ok(out(r, line))
}

/// The instance's current version, or `None` when it does not exist yet.
async fn current(api: &Api, path: &str) -> Result<Option<(u64, Value)>, Failure> {
    let (status, body) = api.raw(Method::GET, path, None, None).await?;
    match status {
        200 => {
            let r = body["result"].clone();
            let v = r["version"]
                .as_u64()
                .ok_or_else(|| Failure(format!("{path} has no version")))?;
            Ok(Some((v, r)))
        }
        404 => Ok(None),
        _ => Err(api_failure(status, &body)),
    }
}

/// `org enable|disable|configure`: one read for the version, then a conditional write.
pub async fn instance(
    api: &Api,
    plugin: &str,
    patch: Map<String, Value>,
    verb: &str,
) -> Result<Output, Failure> {
    let path = format!("/admin/instances/{plugin}");
    let version = current(api, &path).await?.map(|(v, _)| v);
    let r = api
        .call(Method::PUT, &path, version, Some(&Value::Object(patch)))
        .await?;
    let line = format!(
        "{plugin} {verb}: {} {}, version {}",
        if r["enabled"] == true {
            "enabled"
        } else {
            "disabled"
        },
        r["pinned_version"].as_str().unwrap_or("?"),
        r["version"]
    );
    Ok(out(r, line))
}

/// `org profile [options]`: shows the profile, or patches it at its current version.
pub async fn profile(api: &Api, patch: Map<String, Value>) -> Result<Output, Failure> {
    let path = "/admin/profile";
    let r = if patch.is_empty() {
        api.call(Method::GET, path, None, None).await?
    } else {
        let version = current(api, path).await?.map(|(v, _)| v);
        api.call(Method::PUT, path, version, Some(&Value::Object(patch)))
            .await?
    };
    let line = format!(
        "{} ({}, {}), idempotent calls replayed for {} h, version {}",
        r["display_name"].as_str().unwrap_or("?"),
        r["timezone"].as_str().unwrap_or("?"),
        r["locale"].as_str().unwrap_or("?"),
        r["idempotency_ttl_hours"].as_u64().unwrap_or(24),
        r["version"]
    );
    Ok(out(r, line))
}

/// `channel assign <channel> <plugin> [--priority N]`: adds or replaces one assignment.
pub async fn assign(
    api: &Api,
    channel: &str,
    plugin: &str,
    priority: i64,
) -> Result<Output, Failure> {
    let path = format!("/admin/channels/{channel}");
    let (version, mut config) = channel_draft(api, &path).await?;
    let list = config["plugin_assignments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut list: Vec<Value> = list.into_iter().filter(|a| a["plugin"] != plugin).collect();
    list.push(json!({"plugin": plugin, "priority": priority, "enabled": true}));
    config["plugin_assignments"] = Value::Array(list);
    let r = api.call(Method::PUT, &path, version, Some(&config)).await?;
    let names: Vec<String> = r["plugin_assignments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{} ({})",
                a["plugin"].as_str().unwrap_or("?"),
                a["priority"]
            )
        })
        .collect();
    let line = format!("{channel}: {} (version {})", names.join(", "), r["version"]);
    Ok(out(r, line))
}

/// The channel's config as a draft to write back (without its version, which goes in
/// If-Match), and that version; a new channel's empty config and none.
async fn channel_draft(api: &Api, path: &str) -> Result<(Option<u64>, Value), Failure> {
    let (version, mut config) = match current(api, path).await? {
        Some((v, c)) => (Some(v), c),
        None => (None, json!({"plugin_assignments": []})),
    };
    if let Value::Object(m) = &mut config {
        m.remove("version");
    }
    Ok((version, config))
}

/// Sets (or, with `none`, removes) the channel's locale, keeping its assignments.
pub async fn channel_locale(api: &Api, channel: &str, locale: &str) -> Result<Output, Failure> {
    let path = format!("/admin/channels/{channel}");
    let (version, mut config) = channel_draft(api, &path).await?;
    if let Value::Object(m) = &mut config {
        if locale == "none" {
            m.remove("locale");
        } else {
            m.insert("locale".into(), json!(locale));
        }
    }
    let r = api.call(Method::PUT, &path, version, Some(&config)).await?;
    let line = match r["locale"].as_str() {
        Some(l) => format!("{channel}: speaks {l} (version {})", r["version"]),
        None => format!(
            "{channel}: speaks the organization's locale (version {})",
            r["version"]
        ),
    };
    Ok(out(r, line))
}

pub async fn key_create(
    api: &Api,
    name: Option<&str>,
    scopes: &[String],
    channel: Option<&str>,
    rate_limit: Option<u32>,
) -> Result<Output, Failure> {
    let mut body = json!({"name": name, "scopes": scopes});
    if let Some(channel) = channel {
        body["channel"] = json!(channel);
    }
    if let Some(limit) = rate_limit {
        body["rate_limit_per_second"] = json!(limit);
    }
    let r = api
        .call(Method::POST, "/admin/keys", None, Some(&body))
        .await?;
    let mut bound = channel.map_or(String::new(), |c| format!(", bound to channel {c}"));
    // The server's answer: a limited creator's key inherits its limit unasked.
    if let Some(limit) = r["rate_limit_per_second"].as_u64() {
        bound.push_str(&format!(", at most {limit} tool calls a second"));
    }
    let line = format!(
        "key {} ({}{bound}) — shown once:\n{}",
        r["id"].as_str().unwrap_or("?"),
        scopes.join(", "),
        r["key"].as_str().unwrap_or("?")
    );
    Ok(out(r, line))
}

pub async fn key_list(api: &Api) -> Result<Output, Failure> {
    let r = api.call(Method::GET, "/admin/keys", None, None).await?;
    let mut lines = vec![format!(
        "{:<18} {:<8} {:<24} {:<12} {:<8} scopes",
        "id", "state", "name", "channel", "limit/s"
    )];
    for k in r["keys"].as_array().into_iter().flatten() {
        let scopes: Vec<&str> = k["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let limit = k["rate_limit_per_second"]
            .as_u64()
            .map_or_else(|| "-".to_owned(), |l| l.to_string());
        lines.push(format!(
            "{:<18} {:<8} {:<24} {:<12} {:<8} {}",
            k["id"].as_str().unwrap_or("?"),
            if k["revoked"] == true {
                "revoked"
            } else {
                "active"
            },
            k["name"].as_str().unwrap_or(""),
            k["channel"].as_str().unwrap_or("-"),
            limit,
            scopes.join(", ")
        ));
    }
    Ok(out(r, lines.join("\n")))
}

/// One page of the audit log; `params` are the query's, those given.
pub async fn audit(api: &Api, params: &[(&str, Option<String>)]) -> Result<Output, Failure> {
    let query: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    let path = if query.is_empty() {
        "/admin/audit".to_owned()
    } else {
        format!("/admin/audit?{}", query.join("&"))
    };
    let r = api.call(Method::GET, &path, None, None).await?;
    let mut lines = vec![format!(
        "{:<24} {:<6} {:<28} {:<32} {:>9}  key",
        "at", "status", "route", "function", "ms"
    )];
    for e in r["entries"].as_array().into_iter().flatten() {
        let status = match e["errorCode"].as_str() {
            Some(code) => format!("{} {code}", e["status"]),
            None => e["status"].to_string(),
        };
        let function = match (e["plugin"].as_str(), e["function"].as_str()) {
            (Some(p), Some(f)) => format!("{p}.{f}"),
            (Some(p), None) => p.to_owned(),
            _ => "-".to_owned(),
        };
        let ms = e["latencyUs"].as_u64().unwrap_or(0) as f64 / 1000.0;
        lines.push(format!(
            "{:<24} {:<6} {:<28} {:<32} {:>9.1}  {}",
            e["at"].as_str().unwrap_or("?"),
            status,
            e["route"].as_str().unwrap_or("?"),
            function,
            ms,
            e["keyId"].as_str().unwrap_or("-"),
        ));
    }
    if let Some(next) = r["next"].as_str() {
        lines.push(format!("more: --cursor {next}"));
    }
    Ok(out(r, lines.join("\n")))
}

/// `s` for a query string: unreserved characters kept, every other byte %-escaped.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub async fn key_revoke(api: &Api, id: &str) -> Result<Output, Failure> {
    let r = api
        .call(Method::DELETE, &format!("/admin/keys/{id}"), None, None)
        .await?;
    Ok(out(r, format!("key {id} revoked")))
}

/// `switchboard channel connect`: a signed route for a voice platform, and the URLs to paste
/// into it (one per plugin on the channel; each plugin is its own function).
pub async fn connect(
    api: &Api,
    platform: &str,
    channel: &str,
    credential: &str,
) -> Result<Output, Failure> {
    let body = json!({"platform": platform, "channel": channel, "credential": credential});
    let mut r = api
        .call(Method::POST, "/admin/connections", None, Some(&body))
        .await?;
    let urls = api.urls(&r["paths"]);
    let mut lines = vec![format!(
        "connection {} ({platform}, channel {channel}, secret from credential {credential})",
        r["id"].as_str().unwrap_or("?")
    )];
    if urls.is_empty() && platform == "twilio" {
        lines.push(format!(
            "no plugin on channel {channel} takes Twilio's webhooks yet; assign one (sms), then `switchboard channel connections` lists the URLs"
        ));
    } else if urls.is_empty() {
        lines.push(format!(
            "no plugin is assigned and enabled on channel {channel} yet; assign one, then `switchboard channel connections` lists the URLs"
        ));
    } else {
        let tool = match platform {
            "vapi" => "Paste the URL of each tool's plugin as the tool's server URL in Vapi:",
            "twilio" => {
                "Set each plugin's Twilio callback to its URL (sms: its config's statusCallbackUrl, with `switchboard org configure sms --config '{…, \"statusCallbackUrl\": \"<url>\"}'`, the whole config):"
            }
            _ => "Paste the URL of each function's plugin as the custom function's URL in Retell:",
        };
        lines.push(tool.into());
        lines.extend(urls.iter().map(|u| format!("  {u}")));
    }
    r["urls"] = json!(urls);
    Ok(out(r, lines.join("\n")))
}

pub async fn connections(api: &Api) -> Result<Output, Failure> {
    let mut r = api
        .call(Method::GET, "/admin/connections", None, None)
        .await?;
    let mut lines = vec![format!(
        "{:<36} {:<7} {:<12} {:<20} urls",
        "id", "platform", "channel", "credential"
    )];
    for c in r["connections"].as_array_mut().into_iter().flatten() {
        let urls = api.urls(&c["paths"]);
        lines.push(format!(
            "{:<36} {:<7} {:<12} {:<20} {}",
            c["id"].as_str().unwrap_or("?"),
            c["platform"].as_str().unwrap_or("?"),
            c["channel"].as_str().unwrap_or("?"),
            c["credential"].as_str().unwrap_or("?"),
            if urls.is_empty() {
                "-".to_owned()
            } else {
                urls.join(" ")
            }
        ));
        c["urls"] = json!(urls);
    }
    Ok(out(r, lines.join("\n")))
}

pub async fn disconnect(api: &Api, id: &str) -> Result<Output, Failure> {
    let r = api
        .call(
            Method::DELETE,
            &format!("/admin/connections/{id}"),
            None,
            None,
        )
        .await?;
    Ok(out(
        r,
        format!(
            "connection {id} deleted; its URLs answer 404 (warm functions may accept them for their cache period)"
        ),
    ))
}

pub async fn bedrock_map(
    api: &Api,
    agent_id: &str,
    alias_id: &str,
    org: &str,
    channel: &str,
) -> Result<Output, Failure> {
    let body = json!({"agent_id": agent_id, "alias_id": alias_id, "org": org, "channel": channel});
    let r = api
        .call(Method::POST, "/admin/bedrock-agents", None, Some(&body))
        .await?;
    Ok(out(
        r,
        format!(
            "Bedrock agent {agent_id} alias {alias_id} now calls as {org} on channel {channel}; its action groups take `GET /agents/{channel}?format=bedrock` (one per plugin, each with that plugin's function as executor)"
        ),
    ))
}

pub async fn bedrock_agents(api: &Api) -> Result<Output, Failure> {
    let r = api
        .call(Method::GET, "/admin/bedrock-agents", None, None)
        .await?;
    let mut lines = vec![format!("{:<12} {:<12} {:<12}", "agent", "alias", "channel")];
    for m in r["bedrock_agents"].as_array().into_iter().flatten() {
        lines.push(format!(
            "{:<12} {:<12} {:<12}",
            m["agent_id"].as_str().unwrap_or("?"),
            m["alias_id"].as_str().unwrap_or("?"),
            m["channel"].as_str().unwrap_or("?"),
        ));
    }
    Ok(out(r, lines.join("\n")))
}

pub async fn bedrock_unmap(api: &Api, agent_id: &str, alias_id: &str) -> Result<Output, Failure> {
    // They go into the URL's path: refused here rather than as another path.
    if let Err((field, why)) = switchboard::BedrockAgentRef::parse(agent_id, alias_id) {
        return Err(Failure(format!("--{}: {why}", field.replace('_', "-"))));
    }
    let r = api
        .call(
            Method::DELETE,
            &format!("/admin/bedrock-agents/{agent_id}/{alias_id}"),
            None,
            None,
        )
        .await?;
    Ok(out(
        r,
        format!(
            "Bedrock agent {agent_id} alias {alias_id} unmapped; its calls are refused from now on"
        ),
    ))
}

pub async fn agent_preview(
    api: &Api,
    channel: &str,
    format: Option<&str>,
) -> Result<Output, Failure> {
    let path = match format {
        Some(f) => format!("/agents/{channel}?format={f}"),
        None => format!("/agents/{channel}"),
    };
    let r = api.call(Method::GET, &path, None, None).await?;
    let text = match format {
        Some(_) => serde_json::to_string_pretty(&r)?,
        None => preview_text(channel, &r),
    };
    Ok(out(r, text))
}

fn preview_text(channel: &str, r: &Value) -> String {
    let mut lines = vec![format!("agent for channel {channel}")];
    for t in r["tools"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  tool {:<32} {}",
            t["name"].as_str().unwrap_or("?"),
            t["plugin"].as_str().unwrap_or("")
        ));
    }
    for s in r["skipped"].as_array().into_iter().flatten() {
        lines.push(format!("  skipped {s}"));
    }
    if let Some(i) = r["instructions"].as_str() {
        lines.push(String::new());
        lines.push(i.to_owned());
    }
    lines.join("\n")
}

/// `credential set <name> --from-file <file>`: the file holds the secret's JSON object. It
/// is read from a file, not the command line, so it never lands in shell history or `ps`.
pub async fn credential_set(api: &Api, name: &str, file: &str) -> Result<Output, Failure> {
    let text =
        std::fs::read_to_string(file).map_err(|e| Failure(format!("cannot read {file}: {e}")))?;
    let value: Value = serde_json::from_str(&text).map_err(|_| {
        Failure(format!(
            "{file} must hold a JSON object of the secret's fields"
        ))
    })?;
    if !value.is_object() {
        return Err(Failure(format!(
            "{file} must hold a JSON object of the secret's fields"
        )));
    }
    let path = format!("/admin/credentials/{name}");
    let version = current(api, &path).await?.map(|(v, _)| v);
    let r = api
        .call(
            Method::PUT,
            &path,
            version,
            Some(&json!({ "value": value })),
        )
        .await?;
    let line = format!(
        "credential {name} stored; reference it as \"credential\": \"{}\"",
        r["reference"].as_str().unwrap_or("?")
    );
    Ok(out(r, line))
}

pub async fn credential_show(api: &Api, name: &str) -> Result<Output, Failure> {
    let r = api
        .call(
            Method::GET,
            &format!("/admin/credentials/{name}"),
            None,
            None,
        )
        .await?;
    let fields: Vec<&str> = r["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let line = format!(
        "credential {name}: {} (fields: {}; version {})",
        r["reference"].as_str().unwrap_or("?"),
        fields.join(", "),
        r["version"]
    );
    Ok(out(r, line))
}
