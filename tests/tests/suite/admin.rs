//! The admin API over the domain service, on the embedded store and on moto: the plugin
//! library, instances, channels, keys and credentials, with every bad input of issue 5.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::admin::{AdminRequest, AdminService};
use switchboard::auth::{Authorizer, TenantContext};
use switchboard::registry::Registry;
use switchboard::{Channel, OrgId};
use switchboard_tests::{Tables, embedded_tables, moto_tables, unique};

use crate::fixtures::local_secrets;

struct Admin {
    service: Arc<AdminService>,
    registry: Registry,
    org: OrgId,
}

impl Admin {
    fn new(tables: Tables) -> Self {
        let registry = Registry::new(tables.registry);
        Self {
            service: Arc::new(switchboard_tests::admin_service(
                registry.clone(),
                local_secrets(),
            )),
            registry,
            org: OrgId::parse(unique("adm")).unwrap(),
        }
    }

    async fn call(
        &self,
        scopes: &[&str],
        method: &str,
        path: &str,
        if_match: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.service
            .handle(AdminRequest {
                tenant: Some(TenantContext::new(self.org.clone()).with_scopes(scopes)),
                method,
                path,
                if_match,
                body: &body,
                ..Default::default()
            })
            .await
    }

    async fn write(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(
            &[
                "admin:write",
                "plugins:call",
                "agents:read",
                "platform:publish",
                "platform:orgs",
            ],
            method,
            path,
            None,
            body,
        )
        .await
    }
}

fn crm_manifest() -> Value {
    serde_json::from_str(include_str!("../../../functions/crm/manifest.json")).unwrap()
}

/// A crm version of its own per test run, so tests on one moto do not collide.
fn crm_version(version: &str) -> Value {
    let mut m = crm_manifest();
    m["version"] = json!(version);
    m
}

async fn library_instances_channels_and_keys(tables: Tables) {
    let a = Admin::new(tables);
    let v1 = format!(
        "1.{}.0",
        unique("")
            .trim_start_matches('-')
            .replace('-', "")
            .chars()
            .take(9)
            .collect::<String>()
    );

    // Publishing: created, then a no-op, then a conflict for different content.
    let (s, b) = a.write("POST", "/admin/plugins", crm_version(&v1)).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = a.write("POST", "/admin/plugins", crm_version(&v1)).await;
    assert_eq!((s, &b["result"]["created"]), (200, &json!(false)), "{b}");
    let mut changed = crm_version(&v1);
    changed["description"] = json!("something else");
    let (s, b) = a.write("POST", "/admin/plugins", changed).await;
    assert_eq!(s, 409, "{b}");
    // Publishing needs the operator scope.
    let (s, b) = a
        .call(
            &["admin:write"],
            "POST",
            "/admin/plugins",
            None,
            crm_version("9.9.9"),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{b}"
    );

    let (s, b) = a
        .call(&["admin:read"], "GET", "/admin/plugins", None, Value::Null)
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["result"]["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "crm"),
        "{b}"
    );
    let (s, b) = a
        .call(
            &["admin:read"],
            "GET",
            &format!("/admin/plugins/crm/versions/{v1}"),
            None,
            Value::Null,
        )
        .await;
    assert_eq!((s, &b["result"]["version"]), (200, &json!(v1)), "{b}");
    // A version that is no version is the caller's mistake (DynamoDB refuses over-long keys).
    let long = "1".repeat(1100);
    let (s, b) = a
        .call(
            &["admin:read"],
            "GET",
            &format!("/admin/plugins/crm/versions/{long}"),
            None,
            Value::Null,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{b}"
    );

    // Enabling with a config that fails the schema: 422 with details, nothing written.
    let (s, b) = a
        .write(
            "PUT",
            "/admin/instances/crm",
            json!({"pinned_version": v1, "config": {"autoQualifyLeads": "yes"}}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(
        b["error"]["details"][0]["path"], "/config/autoQualifyLeads",
        "{b}"
    );
    // The message points at the detail; it does not repeat the detail's text.
    let detail = b["error"]["details"][0]["message"].as_str().unwrap();
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with("at /autoQualifyLeads") && !message.contains(detail),
        "{b}"
    );
    assert!(
        a.registry
            .get_instance(&a.org, &"crm".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );

    let (s, b) = a
        .write(
            "PUT",
            "/admin/instances/crm",
            json!({"pinned_version": v1, "config": {"autoQualifyLeads": true}}),
        )
        .await;
    assert_eq!((s, &b["result"]["version"]), (201, &json!(1)), "{b}");
    // A write without the version, or with a stale one, is 409 with the current version.
    let (s, b) = a
        .write("PUT", "/admin/instances/crm", json!({"enabled": false}))
        .await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 1"),
        "{b}"
    );
    let (s, _) = a
        .call(
            &["admin:write"],
            "PUT",
            "/admin/instances/crm",
            Some("\"1\""),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = a
        .call(
            &["admin:write"],
            "PUT",
            "/admin/instances/crm",
            Some("1"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("current version is 2"),
        "{b}"
    );

    // An upgrade whose config_schema the current config fails: 422 naming the field.
    let v2 = format!("{v1}-strict");
    let mut strict = crm_version(&v2);
    strict["config_schema"]["properties"]["autoQualifyLeads"] =
        json!({"type": "boolean", "const": false});
    assert_eq!(a.write("POST", "/admin/plugins", strict).await.0, 201);
    let (s, b) = a
        .write(
            "PUT",
            "/admin/instances/crm",
            json!({"pinned_version": v2, "version": 2}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(
        b["error"]["details"][0]["path"], "/config/autoQualifyLeads",
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/autoQualifyLeads"),
        "{b}"
    );

    // Invalid data adapter configs are refused when written.
    let (s, b) = a
        .write(
            "PUT",
            "/admin/instances/crm",
            json!({"data_adapter": {"type": "rest"}, "version": 2}),
        )
        .await;
    assert_eq!(s, 422, "{b}");

    // Channels: an assignment of a plugin the org has not enabled is 422.
    let (s, b) = a
        .write(
            "PUT",
            "/admin/channels/whatsapp",
            json!({"plugin_assignments": [{"plugin": "booking", "priority": 1}]}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(
        b["error"]["details"][0]["path"],
        "/plugin_assignments/0/plugin"
    );
    let (s, b) = a
        .write(
            "PUT",
            "/admin/channels/whatsapp",
            json!({"plugin_assignments": [{"plugin": "crm", "priority": 1}]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // Keys: shown once, listed without secrets, scopes bounded by the creator's, revocable.
    let (s, b) = a
        .call(
            &["admin:write"],
            "POST",
            "/admin/keys",
            None,
            json!({"name": "bot", "scopes": ["plugins:call"]}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{b}"
    );
    let (s, b) = a
        .write(
            "POST",
            "/admin/keys",
            json!({"name": "bot", "scopes": ["plugins:call"]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let key = b["result"]["key"].as_str().unwrap().to_owned();
    let id = b["result"]["id"].as_str().unwrap().to_owned();
    let (_, listed) = a
        .call(&["admin:read"], "GET", "/admin/keys", None, Value::Null)
        .await;
    assert!(!listed.to_string().contains(&key), "{listed}");
    assert_eq!(listed["result"]["keys"][0]["id"], id.as_str());
    let authorizer = Authorizer::new(a.registry.clone(), Duration::ZERO);
    let ctx = authorizer
        .authenticate(Some(&format!("Bearer {key}")))
        .await
        .unwrap();
    assert_eq!(
        (ctx.org, ctx.scopes),
        (a.org.clone(), vec!["plugins:call".to_owned()])
    );
    let (s, b) = a
        .write("DELETE", &format!("/admin/keys/{id}"), Value::Null)
        .await;
    assert_eq!((s, &b["result"]["revoked"]), (200, &json!(true)), "{b}");
    let e = authorizer
        .authenticate(Some(&format!("Bearer {key}")))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401);
    // A key bound to a channel: only to a configured one, only with call and read scopes,
    // bound in the authorizer's context; and it cannot use the admin API at all.
    let key_on = |channel: &str, scopes: Value| {
        a.write(
            "POST",
            "/admin/keys",
            json!({"name": "line", "scopes": scopes, "channel": channel}),
        )
    };
    for (channel, scopes, path, needle) in [
        ("Web!", json!(["plugins:call"]), "/channel", "is invalid"),
        (
            "retell",
            json!(["plugins:call"]),
            "/channel",
            "not configured",
        ),
        (
            "whatsapp",
            json!(["plugins:call", "admin:write"]),
            "/scopes/1",
            "only plugins:call and agents:read",
        ),
    ] {
        let (s, b) = key_on(channel, scopes).await;
        assert_eq!(
            (s, &b["error"]["details"][0]["path"]),
            (422, &json!(path)),
            "{b}"
        );
        assert!(b.to_string().contains(needle), "{b}");
    }
    let (s, b) = key_on("whatsapp", json!(["plugins:call", "agents:read"])).await;
    assert_eq!(
        (s, &b["result"]["channel"]),
        (201, &json!("whatsapp")),
        "{b}"
    );
    let bound_key = b["result"]["key"].as_str().unwrap().to_owned();
    let ctx = authorizer
        .authenticate(Some(&format!("Bearer {bound_key}")))
        .await
        .unwrap();
    assert_eq!(ctx.channel.as_ref().map(Channel::as_str), Some("whatsapp"));
    assert_eq!(ctx.key_id.as_deref(), b["result"]["id"].as_str());
    let (s, b) = a
        .service
        .handle(AdminRequest {
            tenant: Some(
                TenantContext::new(a.org.clone())
                    .with_scopes(&["admin:write", "admin:read"])
                    .on_channel(Channel::parse("whatsapp").unwrap()),
            ),
            method: "GET",
            path: "/admin/keys",
            if_match: None,
            body: b"",
            ..Default::default()
        })
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{b}"
    );
    assert!(b.to_string().contains("cannot use the admin API"), "{b}");

    // The profile: a patch with its version; the replay window within bounds.
    let (s, b) = a
        .write(
            "PUT",
            "/admin/profile",
            json!({"display_name": "Acme", "idempotency_ttl_hours": 48}),
        )
        .await;
    assert_eq!(
        (s, &b["result"]["idempotency_ttl_hours"]),
        (201, &json!(48)),
        "{b}"
    );
    assert_eq!(
        (&b["result"]["timezone"], &b["result"]["locale"]),
        (&json!("UTC"), &json!("en-US")),
        "a new profile gets the defaults: {b}"
    );
    let v = b["result"]["version"].as_u64().unwrap();
    for (patch, path) in [
        (
            json!({"idempotency_ttl_hours": 0, "version": v}),
            "/idempotency_ttl_hours",
        ),
        (
            json!({"idempotency_ttl_hours": 169, "version": v}),
            "/idempotency_ttl_hours",
        ),
        (
            json!({"timezone": "Mars/Olympus", "version": v}),
            "/timezone",
        ),
        (json!({"locale": "Spanish", "version": v}), "/locale"),
    ] {
        let (s, b) = a.write("PUT", "/admin/profile", patch).await;
        assert_eq!(
            (s, &b["error"]["details"][0]["path"]),
            (422, &json!(path)),
            "{b}"
        );
    }
    let (s, b) = a
        .write("PUT", "/admin/profile", json!({"idempotency_ttl_hours": 2}))
        .await;
    assert_eq!(s, 409, "an update names its version: {b}");
    let (s, b) = a
        .write(
            "PUT",
            "/admin/profile",
            json!({"idempotency_ttl_hours": null, "version": v}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["result"].get("idempotency_ttl_hours").is_none(),
        "reset: {b}"
    );
    assert_eq!(b["result"]["display_name"], "Acme", "the rest is kept: {b}");
    let (s, b) = a
        .call(&["admin:read"], "GET", "/admin/profile", None, Value::Null)
        .await;
    assert_eq!((s, &b["result"]["version"]), (200, &json!(v + 1)), "{b}");

    // Another org cannot revoke it (or even see it).
    let other = Admin {
        org: OrgId::parse(unique("adm")).unwrap(),
        service: a.service.clone(),
        registry: a.registry.clone(),
    };
    assert_eq!(
        other
            .write("DELETE", &format!("/admin/keys/{id}"), Value::Null)
            .await
            .0,
        404
    );

    // Credentials: the value goes to the secret store; the registry keeps a reference.
    let (s, b) = a
        .write(
            "PUT",
            "/admin/credentials/crm-api",
            json!({"value": {"token": "TOPSECRET-991"}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(!b.to_string().contains("TOPSECRET-991"), "{b}");
    assert_eq!(
        b["result"]["reference"],
        format!("switchboard/{}/crm-api", a.org)
    );
    let (_, meta) = a
        .call(
            &["admin:read"],
            "GET",
            "/admin/credentials/crm-api",
            None,
            Value::Null,
        )
        .await;
    assert_eq!(meta["result"]["fields"], json!(["token"]), "{meta}");
    let items =
        switchboard::ports::query_all(a.registry.table().as_ref(), &format!("ORG#{}", a.org))
            .await
            .unwrap();
    assert!(!format!("{items:?}").contains("TOPSECRET-991"));
    // Rotating it is a versioned write like any other.
    let rotate = json!({"value": {"token": "TOPSECRET-992"}});
    let (s, b) = a
        .write("PUT", "/admin/credentials/crm-api", rotate.clone())
        .await;
    assert_eq!(s, 409, "{b}");
    let mut versioned = rotate;
    versioned["version"] = json!(1);
    let (s, b) = a
        .write("PUT", "/admin/credentials/crm-api", versioned)
        .await;
    assert_eq!((s, &b["result"]["version"]), (200, &json!(2)), "{b}");
    // A malformed body never quotes what it got: it may be the secret.
    for bad in [
        json!({"value": "TOPSECRET-993"}),
        json!({"value": {"t": "TOPSECRET-993"}, "x": 1}),
        json!("TOPSECRET-993"),
    ] {
        let (s, b) = a.write("PUT", "/admin/credentials/other", bad).await;
        assert_eq!(s, 422, "{b}");
        assert!(!b.to_string().contains("TOPSECRET-993"), "{b}");
    }

    // An instance on an external adapter whose credential is gone can still be disabled
    // (the adapter is re-checked only when it changes or the instance is switched on).
    let rest = json!({"type": "rest", "base_url": "https://api.example.com", "entities": {"leads": "/leads"},
                      "credential": format!("switchboard/{}/crm-api", a.org), "auth": {"bearer": "token"}});
    let (s, b) = a
        .write(
            "PUT",
            "/admin/instances/crm",
            json!({"data_adapter": rest, "version": 2}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let gone = Admin {
        org: a.org.clone(),
        service: Arc::new(switchboard_tests::admin_service(
            a.registry.clone(),
            local_secrets(),
        )),
        registry: a.registry.clone(),
    };
    let (s, b) = gone
        .write(
            "PUT",
            "/admin/instances/crm",
            json!({"enabled": false, "version": 3}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = gone
        .write(
            "PUT",
            "/admin/instances/crm",
            json!({"enabled": true, "version": 4}),
        )
        .await;
    assert_eq!(s, 422, "switching it back on checks the credential: {b}");

    // Missing scope, oversize body, bad JSON, unknown route.
    let (s, _) = a
        .call(
            &["plugins:call"],
            "GET",
            "/admin/instances",
            None,
            Value::Null,
        )
        .await;
    assert_eq!(s, 403);
    let huge = json!({"value": {"blob": "x".repeat(300 * 1024)}});
    assert_eq!(a.write("PUT", "/admin/credentials/big", huge).await.0, 413);
    let (s, _) = a
        .service
        .handle(AdminRequest {
            tenant: Some(TenantContext::new(a.org.clone()).with_scopes(&["admin:write"])),
            method: "PUT",
            path: "/admin/instances/crm",
            if_match: None,
            body: b"{not json",
            ..Default::default()
        })
        .await;
    assert_eq!(s, 400);
    assert_eq!(a.write("GET", "/admin/nothing", Value::Null).await.0, 404);
    let (s, _) = a
        .service
        .handle(AdminRequest {
            tenant: None,
            method: "GET",
            path: "/admin/instances",
            if_match: None,
            body: b"",
            ..Default::default()
        })
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn admin_api_on_embedded() {
    library_instances_channels_and_keys(embedded_tables()).await;
}

#[tokio::test]
async fn admin_api_on_dynamodb() {
    library_instances_channels_and_keys(moto_tables().await).await;
}

#[tokio::test]
async fn an_invalid_manifest_gets_every_problem() {
    let a = Admin::new(embedded_tables());
    let mut m = crm_manifest();
    m["name"] = json!("bad name!");
    m.as_object_mut().unwrap().remove("description");
    let (s, b) = a.write("POST", "/admin/plugins", m).await;
    assert_eq!(s, 422, "{b}");
    let paths: Vec<&str> = b["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"/name") && paths.contains(&"/description"),
        "{b}"
    );
}

/// 20 writers race on one instance at moto, each re-reading and retrying on 409 until its
/// write lands. Every write either succeeds on a fresh version or gets 409, so the final
/// version is exactly 1 + 20: no update was lost or applied on a stale read.
#[tokio::test]
async fn twenty_concurrent_writers_lose_no_update() {
    let a = Arc::new(Admin::new(moto_tables().await));
    let v = format!("2.{}.0", std::process::id());
    let (s, b) = a.write("POST", "/admin/plugins", crm_version(&v)).await;
    assert!(s == 201 || s == 200, "{b}");
    let (s, b) = a
        .write("PUT", "/admin/instances/crm", json!({"pinned_version": v}))
        .await;
    assert_eq!(s, 201, "{b}");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let a = a.clone();
        tasks.spawn(async move {
            let mut conflicts = 0;
            loop {
                let (_, cur) = a
                    .call(
                        &["admin:read"],
                        "GET",
                        "/admin/instances/crm",
                        None,
                        Value::Null,
                    )
                    .await;
                let version = cur["result"]["version"].as_u64().expect("version");
                let (s, b) = a
                    .call(
                        &["admin:write"],
                        "PUT",
                        "/admin/instances/crm",
                        None,
                        json!({"config": {"autoQualifyLeads": i % 2 == 0}, "version": version}),
                    )
                    .await;
                match s {
                    200 => return (b["result"]["version"].as_u64().expect("version"), conflicts),
                    409 => conflicts += 1,
                    other => panic!("{other}: {b}"),
                }
            }
        });
    }
    let mut landed = Vec::new();
    let mut conflicts = 0;
    while let Some(r) = tasks.join_next().await {
        let (version, c) = r.unwrap();
        landed.push(version);
        conflicts += c;
    }
    landed.sort_unstable();
    // Each success produced a distinct next version: 2..=21.
    assert_eq!(landed, (2..=21).collect::<Vec<u64>>());
    assert!(conflicts > 0, "the writers never raced");
    let inst = a
        .registry
        .get_instance(&a.org, &"crm".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inst.version, 21);
}

/// `POST /admin/orgs`: the profile and first key together; an org that already has any item
/// (a key, no profile) is not "created" again; scopes must be well-formed tenant scopes.
#[tokio::test]
async fn creating_organizations() {
    let a = Admin::new(embedded_tables());
    let org = unique("neworg");
    let (s, b) = a
        .write(
            "POST",
            "/admin/orgs",
            json!({"org": org, "display_name": "New"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(
        b["result"]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("sb_live_"))
    );
    let (s, _) = a
        .write(
            "POST",
            "/admin/orgs",
            json!({"org": org, "display_name": "Again"}),
        )
        .await;
    assert_eq!(s, 409);

    // The caller's own org has keys but no profile: it exists all the same.
    let key = a
        .write("POST", "/admin/keys", json!({"scopes": ["admin:read"]}))
        .await;
    assert_eq!(key.0, 201, "{}", key.1);
    let (s, b) = a
        .write(
            "POST",
            "/admin/orgs",
            json!({"org": a.org, "display_name": "Takeover", "scopes": ["admin:write"]}),
        )
        .await;
    assert_eq!(s, 409, "{b}");

    for (scopes, pointer) in [
        (json!([]), "/scopes"),
        (json!(["admin:wrtie", "nonsense"]), "/scopes/1"),
        (json!(["platform:publish"]), "/scopes/0"),
    ] {
        let (s, b) = a
            .write(
                "POST",
                "/admin/orgs",
                json!({"org": unique("o"), "display_name": "X", "scopes": scopes}),
            )
            .await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["error"]["details"][0]["path"], pointer, "{b}");
    }
}
