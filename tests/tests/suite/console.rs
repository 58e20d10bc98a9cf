//! The admin console (`/console`) against `dev`: its files and their headers, the admin API
//! routes it uses (`whoami`, channel and credential lists, the dry-run preview), and the
//! dashboard flow in a real browser with axe-core (`tests/clients/console_e2e.py`).

use serde_json::{Value, json};
use switchboard_tests::http::{get_text, header, post, send};

use crate::dev_server::{start, start_with_operator};
use crate::mcp::{installed, run};

#[tokio::test]
async fn the_console_files_need_no_key_and_keep_to_their_own_origin() {
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-console"));
    let (addr, key, task) = start(&dir).await;

    let (status, headers, page) = get_text(addr, "/console").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&headers, "content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert!(page.contains(r#"<script src="/console/app.js" defer></script>"#));
    let (status, headers, script) = get_text(addr, "/console/app.js").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.contains("sessionStorage"));
    let (status, _, css) = get_text(addr, "/console/app.css").await;
    assert_eq!((status, css.is_empty()), (200, false));

    // Nothing else is served there, and nothing there reaches the admin API.
    let (status, _, body) = get_text(addr, "/console/admin/keys").await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = get_text(addr, "/console/../admin/keys").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("the console has /console"), "{body}");
    // And a resource named "console" is the admin API's, not the console's.
    let chan = send(addr, "GET", "/admin/channels/console", Some(&key), b"").await;
    assert_eq!(chan.status, 404, "{}", chan.body);
    assert!(
        chan.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("channel 'console' is not configured"),
        "{}",
        chan.body
    );
    assert_eq!(
        send(addr, "POST", "/console", None, b"{}").await.status,
        404
    );

    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_preview_diffs_a_draft_against_the_saved_agent_and_writes_nothing() {
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-preview"));
    let (addr, key, task) = start(&dir).await;
    let get = |path: &'static str| {
        let key = key.clone();
        async move { send(addr, "GET", path, Some(&key), b"").await }
    };

    let who = get("/admin/whoami").await;
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(who.body["result"]["org"], "demo-dental");
    let channels = get("/admin/channels").await;
    let names: Vec<&str> = channels.body["result"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["channel"].as_str())
        .collect();
    assert!(names.contains(&"twilio") && names.is_sorted(), "{names:?}");
    let saved = get("/admin/channels/twilio").await.body["result"].clone();

    // The demo's twilio channel without crm, and support's config changed in the draft.
    let mut draft = saved.clone();
    let assignments: Vec<Value> = saved["plugin_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["plugin"] != "crm")
        .cloned()
        .collect();
    draft["plugin_assignments"] = json!(assignments);
    draft["instructions"] = json!("Answer briefly.");
    let r = post(
        addr,
        "/admin/channels/twilio/preview",
        Some(&key),
        &json!({"channel": draft}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let diff = &r.body["result"]["diff"];
    let removed: Vec<&str> = diff["tools"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(removed.contains(&"CreateLead"), "{diff}");
    assert_eq!(diff["tools"]["added"], json!([]), "{diff}");
    assert_eq!(diff["instructions"]["changed"], true);
    assert!(
        diff["instructions"]["draft"]
            .as_str()
            .unwrap()
            .contains("Answer briefly."),
        "{diff}"
    );
    assert!(
        r.body["result"]["saved"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "CreateLead")
    );

    // The same draft exported in a format, both agents; an unknown format is refused.
    let r = post(
        addr,
        "/admin/channels/twilio/preview",
        Some(&key),
        &json!({"channel": draft, "format": "anthropic"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let export = &r.body["result"]["export"];
    assert_eq!(export["format"], "anthropic");
    let names = |v: &Value| -> Vec<String> {
        v["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        names(&export["saved"]).contains(&"CreateLead".to_owned()),
        "{export}"
    );
    assert!(
        !names(&export["draft"]).contains(&"CreateLead".to_owned()),
        "{export}"
    );
    let r = post(
        addr,
        "/admin/channels/twilio/preview",
        Some(&key),
        &json!({"format": "soap"}),
    )
    .await;
    assert!((400..500).contains(&r.status), "{}", r.body);

    // A draft instance config changes the instructions it renders; an unchanged draft
    // changes nothing.
    let r = post(
        addr,
        "/admin/channels/twilio/preview",
        Some(&key),
        &json!({"instances": {"crm": {"config": {"autoQualifyLeads": true, "requireManagerApproval": true}}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["result"]["diff"]["instructions"]["changed"], true);
    let r = post(
        addr,
        "/admin/channels/twilio/preview",
        Some(&key),
        &json!({}),
    )
    .await;
    assert_eq!(r.body["result"]["diff"]["instructions"]["changed"], false);
    assert_eq!(
        r.body["result"]["diff"]["tools"],
        json!({"added": [], "removed": [], "changed": []})
    );

    // Bad drafts: 422 with the paths under where the draft put them.
    let r = post(
        addr,
        "/admin/channels/twilio/preview",
        Some(&key),
        &json!({"instances": {"booking": {"config": {"slotMinutes": 7}}}}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body["error"]["details"][0]["path"],
        "/instances/booking/config/slotMinutes"
    );
    let r = post(
        addr,
        "/admin/channels/twilio/preview",
        Some(&key),
        &json!({"channel": {"plugin_assignments": [{"plugin": "payroll", "priority": 1}]}}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body["error"]["details"][0]["path"],
        "/channel/plugin_assignments/0/plugin"
    );
    let r = post(
        addr,
        "/admin/channels/twilio/preview",
        Some(&key),
        &json!({"chanel": {}}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `chanel`")
    );
    // A channel that is not configured, without a draft of it.
    let r = post(addr, "/admin/channels/web2/preview", Some(&key), &json!({})).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("unknown_channel")),
        "{}",
        r.body
    );
    // A new channel's draft: every tool is added.
    let r = post(
        addr,
        "/admin/channels/web2/preview",
        Some(&key),
        &json!({"channel": {"plugin_assignments": [{"plugin": "support", "priority": 1}]}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["result"]["saved"], Value::Null);
    assert!(
        !r.body["result"]["diff"]["tools"]["added"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Nothing was written (nor audited: see the end).
    assert_eq!(get("/admin/channels/twilio").await.body["result"], saved);
    assert_eq!(get("/admin/channels/web2").await.status, 404);
    let crm = get("/admin/instances/crm").await;
    assert_eq!(crm.body["result"]["config"]["autoQualifyLeads"], false);

    // Credentials are listed with their field names, never values.
    let put = send(
        addr,
        "PUT",
        "/admin/credentials/crm-api",
        Some(&key),
        json!({"value": {"api_key": "s3cr3t"}})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.body);
    let list = get("/admin/credentials").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(!list.body.to_string().contains("s3cr3t"));
    assert!(
        list.body["result"]["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "crm-api" && c["fields"] == json!(["api_key"]))
    );
    // The audit log has the credential's write and none of the previews.
    let audit = get("/admin/audit").await.body.to_string();
    assert!(audit.contains("PUT /admin/credentials/crm-api"), "{audit}");
    assert!(!audit.contains("/preview"), "{audit}");

    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The dashboard flow in Debian's chromium, driven by Playwright, with axe-core on each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_flow_works_in_a_real_browser() {
    let python = installed("SWITCHBOARD_CONSOLE_PYTHON");
    let chromium = installed("SWITCHBOARD_CHROMIUM");
    let axe = installed("SWITCHBOARD_AXE");
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-console-e2e"));
    let (addr, _key, operator, task) = start_with_operator(&dir).await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/console_e2e.py");
    let base = format!("http://{addr}");
    let shots_arg = shots.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        run(std::process::Command::new(python)
            .args([script, &base, &operator, &chromium, &axe, &shots_arg]))
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_str(out.trim().lines().last().unwrap_or("")).unwrap();
    let pages = report["pages_checked_with_axe"].as_array().unwrap();
    assert!(pages.len() >= 9, "{report}");
    assert!(
        report["screenshots"].as_array().unwrap().len() >= 10,
        "{report}"
    );
    eprintln!("screenshots in {}", shots.display());

    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    std::fs::remove_dir_all(&dir).unwrap();
}
