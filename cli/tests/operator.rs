//! The operator's flow of issue 5, with nothing but the `switchboard` binary against `dev`:
//! publish the CRM manifest, create an org and enable crm for it, assign it to the org's
//! whatsapp channel, create a key, and preview the agent; then the refusals.

mod common;

use common::{cli, cli_ok as ok, start_dev};
use serde_json::Value;

#[test]
fn an_operator_onboards_an_org_with_the_cli_only() {
    let dir = std::env::temp_dir().join(format!("sb-operator-{}", std::process::id()));
    let dev = start_dev(&dir);
    let operator = std::fs::read_to_string(dir.join("operator-api-key"))
        .expect("dev saved the operator key")
        .trim()
        .to_owned();
    let url = dev.url.as_str();
    let crm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../functions/crm/manifest.json"
    );

    let published = ok(url, &operator, &["manifest", "publish", crm]);
    assert_eq!(published["name"], "crm");
    let library = ok(url, &operator, &["plugins"]);
    assert!(
        library["plugins"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "crm")),
        "{library}"
    );

    let org = ok(
        url,
        &operator,
        &["org", "create", "acme-support", "--name", "Acme Support"],
    );
    let admin = org["key"].as_str().expect("first key").to_owned();

    let enabled = ok(
        url,
        &admin,
        &[
            "org",
            "enable",
            "crm",
            "--config",
            r#"{"autoQualifyLeads": true}"#,
        ],
    );
    assert_eq!(
        (enabled["enabled"].clone(), enabled["version"].clone()),
        (Value::Bool(true), 1.into())
    );
    let profile = ok(
        url,
        &admin,
        &["org", "profile", "--idempotency-ttl-hours", "48"],
    );
    assert_eq!(profile["idempotency_ttl_hours"], 48, "{profile}");
    assert_eq!(
        profile["display_name"], "Acme Support",
        "the rest is kept: {profile}"
    );
    let assigned = ok(
        url,
        &admin,
        &["channel", "assign", "whatsapp", "crm", "--priority", "1"],
    );
    assert_eq!(assigned["plugin_assignments"][0]["plugin"], "crm");

    let key = ok(
        url,
        &admin,
        &[
            "key",
            "create",
            "--name",
            "whatsapp bot",
            "--scopes",
            "agents:read,plugins:call",
            "--channel",
            "whatsapp",
        ],
    );
    assert_eq!(key["channel"], "whatsapp", "{key}");
    let bot = key["key"].as_str().expect("new key").to_owned();
    let agent = ok(
        url,
        &bot,
        &["agent", "preview", "whatsapp", "--format", "openai"],
    );
    // Bound to whatsapp, the key cannot read another channel's agent.
    let (success, _, stderr) = cli(url, &bot, &["agent", "preview", "web"]);
    assert!(
        !success && stderr.contains("bound to the 'whatsapp' channel"),
        "{stderr}"
    );
    let tools = agent["tools"].as_array().expect("openai tools");
    assert!(
        tools.iter().any(|t| t["function"]["name"] == "CreateLead"),
        "{agent}"
    );

    // A credential goes in from a file; reading it back shows metadata only.
    let secret_file = dir.join("crm-api.json");
    std::fs::write(&secret_file, r#"{"token": "OPERATOR-SECRET-77"}"#).expect("write secret file");
    let file = secret_file.to_string_lossy().into_owned();
    let stored = ok(
        url,
        &admin,
        &["credential", "set", "crm-api", "--from-file", &file],
    );
    assert_eq!(stored["reference"], "switchboard/acme-support/crm-api");
    let again = ok(
        url,
        &admin,
        &["credential", "set", "crm-api", "--from-file", &file],
    );
    assert_eq!(
        again["version"], 2,
        "a second set is a versioned update: {again}"
    );
    let shown = ok(url, &admin, &["credential", "show", "crm-api"]);
    assert_eq!(shown["fields"], serde_json::json!(["token"]));
    assert!(!shown.to_string().contains("OPERATOR-SECRET-77"));

    // A Retell connection: the signing key from a file, and the URL to paste into Retell.
    let retell_file = dir.join("retell.json");
    std::fs::write(&retell_file, r#"{"api_key": "RETELL-KEY-55"}"#).expect("write secret file");
    let retell_file = retell_file.to_string_lossy().into_owned();
    ok(
        url,
        &admin,
        &[
            "credential",
            "set",
            "retell-key",
            "--from-file",
            &retell_file,
        ],
    );
    let (success, _, stderr) = cli(
        url,
        &admin,
        &[
            "channel",
            "connect",
            "retell",
            "whatsapp",
            "--credential",
            "crm-api",
        ],
    );
    assert!(
        !success && stderr.contains("422") && stderr.contains("no 'api_key' field"),
        "{stderr}"
    );
    let conn = ok(
        url,
        &admin,
        &[
            "channel",
            "connect",
            "retell",
            "whatsapp",
            "--credential",
            "retell-key",
        ],
    );
    let conn_id = conn["id"].as_str().expect("connection id").to_owned();
    assert_eq!(
        conn["urls"],
        serde_json::json!([format!("{url}/channels/retell/{conn_id}/crm")]),
        "{conn}"
    );
    assert!(!conn.to_string().contains("RETELL-KEY-55"));
    let listed = ok(url, &admin, &["channel", "connections"]);
    assert_eq!(listed["connections"][0]["urls"], conn["urls"], "{listed}");
    ok(url, &admin, &["channel", "disconnect", &conn_id]);
    let listed = ok(url, &admin, &["channel", "connections"]);
    assert_eq!(listed["connections"], serde_json::json!([]), "{listed}");

    // Refusals print the API's message and exit non-zero.
    let (success, _, stderr) = cli(url, &bot, &["org", "disable", "crm"]);
    assert!(
        !success && stderr.contains("403") && stderr.contains("cannot use the admin API"),
        "{stderr}"
    );
    let (success, _, stderr) = cli(url, &admin, &["channel", "assign", "whatsapp", "booking"]);
    assert!(
        !success && stderr.contains("422") && stderr.contains("not enabled"),
        "{stderr}"
    );
    let (success, _, stderr) = cli(
        url,
        &admin,
        &[
            "org",
            "configure",
            "crm",
            "--config",
            r#"{"autoQualifyLeads": "yes"}"#,
        ],
    );
    assert!(
        !success && stderr.contains("/config/autoQualifyLeads"),
        "{stderr}"
    );
    let id = key["id"].as_str().expect("key id");
    ok(url, &admin, &["key", "revoke", id]);
    let listed = ok(url, &admin, &["key", "list"]);
    assert!(!listed.to_string().contains(&bot), "{listed}");
    let (success, _, stderr) = cli(url, "sb_live_not-a-key", &["plugins"]);
    assert!(
        !success && stderr.contains("403") && stderr.contains("refused"),
        "{stderr}"
    );

    // The org's audit log: its admin writes, newest first; a credential's without a hash,
    // refused writes with their status; nothing of the values.
    let log = ok(url, &admin, &["audit", "--limit", "200"]);
    let entries = log["entries"].as_array().expect("entries");
    let routes: Vec<&str> = entries.iter().filter_map(|e| e["route"].as_str()).collect();
    assert!(
        routes.contains(&"PUT /admin/credentials/crm-api"),
        "{routes:?}"
    );
    assert!(
        routes.contains(&"PUT /admin/channels/whatsapp"),
        "{routes:?}"
    );
    let credential = entries
        .iter()
        .find(|e| e["route"] == "PUT /admin/credentials/crm-api")
        .expect("credential write");
    assert!(credential["paramsSha256"].is_null(), "{credential}");
    assert!(!log.to_string().contains("OPERATOR-SECRET-77"));
    let refused = ok(
        url,
        &admin,
        &[
            "audit",
            "--status",
            "4xx",
            "--from",
            "2000-01-01T00:00:00Z",
            "--limit",
            "200",
        ],
    );
    let refused = refused["entries"].as_array().expect("entries");
    assert!(
        !refused.is_empty()
            && refused.iter().all(|e| e["status"]
                .as_u64()
                .is_some_and(|s| (400..500).contains(&s))),
        "{refused:?}"
    );
    let (success, _, stderr) = cli(url, &admin, &["audit", "--status", "teapot"]);
    assert!(!success && stderr.contains("status must be"), "{stderr}");

    drop(dev);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("cannot clean {}: {e}", dir.display());
    }
}
