//! The MCP server (`POST /mcp/{channel}`): the transport's rules and JSON-RPC over real
//! sockets against `dev`; the official clients (the MCP Python SDK, the Inspector's CLI)
//! against `dev`; and the Lambda path, with the real SDK client invoking plugin functions
//! behind a loopback server that speaks Lambda's Invoke API (`switchboard_tests::invoke_api`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use switchboard::PluginName;
use switchboard::agent::builder::AgentBuilder;
use switchboard::auth::TenantContext;
use switchboard::lambda::{EventReply, handle_event};
use switchboard::mcp::{McpRequest, McpService, OriginPolicy};
use switchboard_aws::lambda::LambdaInvoker;
use switchboard_tests::http::{Reply, post, send_with};
use switchboard_tests::invoke_api::{Failure, InvokeApi, serve};
use switchboard_tests::moto_tables;

use crate::dev_server::start;
use crate::fixtures::{booking_service, demo_on, local_secrets};

const JSON_AND_SSE: (&str, &str) = ("Accept", "application/json, text/event-stream");

async fn rpc(
    addr: SocketAddr,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Reply {
    let mut all = vec![JSON_AND_SSE];
    all.extend_from_slice(headers);
    send_with(
        addr,
        "POST",
        path,
        Some(key),
        &all,
        body.to_string().as_bytes(),
    )
    .await
}

fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A key of the demo org, made over the admin API with `scopes`, bound to `channel`.
async fn key(addr: SocketAddr, admin: &str, scopes: &[&str], channel: Option<&str>) -> String {
    let mut body = json!({"name": "mcp test", "scopes": scopes});
    if let Some(c) = channel {
        body["channel"] = json!(c);
    }
    let created = post(addr, "/admin/keys", Some(admin), &body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["result"]["key"].as_str().unwrap().to_owned()
}

/// Every rule of the transport and of JSON-RPC the server keeps, over real sockets.
#[tokio::test]
async fn the_mcp_endpoint_speaks_streamable_http_and_json_rpc() {
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-mcp"));
    let (addr, admin, task) = start(&dir).await;
    let twilio = key(
        addr,
        &admin,
        &["plugins:call", "agents:read"],
        Some("twilio"),
    )
    .await;
    let path = "/mcp/twilio";

    // initialize: the client's revision when served, else the newest; no session issued.
    let init = |version: &str| {
        request(
            1,
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
    };
    let r = rpc(addr, path, &twilio, &[], &init("2025-06-18")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], 1);
    assert_eq!(r.body["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(
        r.body["result"]["capabilities"]["tools"]["listChanged"],
        false
    );
    assert!(
        r.body["result"]["instructions"]
            .as_str()
            .is_some_and(|i| i.contains("Bright Smile Dental")),
        "{}",
        r.body
    );
    assert_eq!(r.header("mcp-session-id"), None, "stateless: no session");
    let r = rpc(addr, path, &twilio, &[], &init("1999-01-01")).await;
    assert_eq!(r.body["result"]["protocolVersion"], "2025-11-25");
    let r = rpc(
        addr,
        path,
        &twilio,
        &[],
        &request(1, "initialize", json!({})),
    )
    .await;
    assert_eq!(r.body["error"]["code"], -32602, "{}", r.body);

    // Notifications and responses are accepted without a body.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let r = rpc(addr, path, &twilio, &[], &note).await;
    assert_eq!((r.status, &r.body), (202, &Value::Null));
    let ping = request(2, "ping", json!({}));
    let r = rpc(
        addr,
        path,
        &twilio,
        &[("MCP-Protocol-Version", "2025-11-25")],
        &ping,
    )
    .await;
    assert_eq!((r.status, &r.body["result"]), (200, &json!({})));
    // A session id (which this server never issues) changes nothing.
    let r = rpc(addr, path, &twilio, &[("Mcp-Session-Id", "s-1")], &ping).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // GET (no stream) and DELETE (no session) are 405, saying what to do.
    for method in ["GET", "DELETE"] {
        let r = send_with(addr, method, path, Some(&twilio), &[JSON_AND_SSE], b"").await;
        assert_eq!(r.status, 405, "{method}: {}", r.body);
        assert_eq!(r.header("allow"), Some("POST"));
        assert_eq!(r.body["error"]["code"], "method_not_allowed");
    }

    // The DNS-rebinding rule: a browser page of another origin is refused; this machine's
    // are served (dev); no Origin at all is served.
    let r = rpc(
        addr,
        path,
        &twilio,
        &[("Origin", "https://evil.example")],
        &ping,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    let r = rpc(
        addr,
        path,
        &twilio,
        &[("Origin", "http://localhost:6274")],
        &ping,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Media types.
    let body = ping.to_string();
    let r = send_with(
        addr,
        "POST",
        path,
        Some(&twilio),
        &[("Content-Type", "text/plain")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let r = send_with(
        addr,
        "POST",
        path,
        Some(&twilio),
        &[("Accept", "text/html")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (406, Some("not_acceptable"))
    );

    // A revision not served: 400 with MCP's code and the served list.
    let r = rpc(
        addr,
        path,
        &twilio,
        &[("MCP-Protocol-Version", "2099-01-01")],
        &ping,
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!(-32022)),
        "{}",
        r.body
    );
    assert_eq!(r.body["id"], 2);
    assert_eq!(r.body["error"]["data"]["supported"][0], "2026-07-28");
    assert_eq!(r.body["error"]["data"]["supported"][1], "2025-11-25");

    // Malformed JSON-RPC.
    let raw =
        |body: &'static [u8]| send_with(addr, "POST", path, Some(&twilio), &[JSON_AND_SSE], body);
    let r = raw(b"{not json").await;
    assert_eq!(
        (r.status, &r.body["error"]["code"], &r.body["id"]),
        (400, &json!(-32700), &Value::Null)
    );
    let r = raw(br#"{"id":1,"method":"ping"}"#).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"], &r.body["id"]),
        (400, &json!(-32600), &json!(1))
    );
    let r = raw(br#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"], &r.body["id"]),
        (400, &json!(-32600), &Value::Null)
    );
    let r = rpc(
        addr,
        path,
        &twilio,
        &[],
        &request(4, "resources/list", json!({})),
    )
    .await;
    assert_eq!((r.status, &r.body["error"]["code"]), (200, &json!(-32601)));

    let r = raw(br#"{"jsonrpc":"2.0","id":1}"#).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!(-32600)),
        "{}",
        r.body
    );
    let r = raw(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).await;
    assert_eq!(r.status, 202, "a response to a server request: {}", r.body);

    // Batches: 2025-03-26's (and a request's without the header), not later revisions'.
    let batch = json!([
        {"jsonrpc": "2.0", "id": "a", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "b", "method": "tools/call", "params": {"name": "SearchPatients", "arguments": {"name": "Rivera"}}},
        {"jsonrpc": "2.0", "id": "c", "method": "initialize", "params": {"protocolVersion": "2025-03-26"}},
        7,
    ]);
    for header in [None, Some("2025-03-26")] {
        let headers: Vec<(&str, &str)> = header
            .map(|h| ("MCP-Protocol-Version", h))
            .into_iter()
            .collect();
        let r = rpc(addr, path, &twilio, &headers, &batch).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let answers = r.body.as_array().cloned().unwrap_or_default();
        assert_eq!(
            answers.len(),
            4,
            "no answer to the notification: {}",
            r.body
        );
        assert_eq!(
            (&answers[0]["id"], &answers[0]["result"]),
            (&json!("a"), &json!({}))
        );
        assert_eq!(answers[1]["result"]["isError"], false, "{}", r.body);
        assert_eq!(
            (&answers[2]["id"], &answers[2]["error"]["code"]),
            (&json!("c"), &json!(-32600))
        );
        assert_eq!(answers[3]["error"]["code"], -32600);
    }
    let r = rpc(
        addr,
        path,
        &twilio,
        &[("MCP-Protocol-Version", "2025-06-18")],
        &batch,
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!(-32600)),
        "{}",
        r.body
    );
    let r = rpc(addr, path, &twilio, &[], &json!([])).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let twice = json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 1, "method": "ping"}]);
    let r = rpc(addr, path, &twilio, &[], &twice).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!(-32600)),
        "{}",
        r.body
    );
    let r = rpc(
        addr,
        path,
        &twilio,
        &[("Idempotency-Key", "has space")],
        &batch,
    )
    .await;
    assert_eq!(r.status, 400, "a key a single request refuses: {}", r.body);
    let notes = json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}]);
    let r = rpc(addr, path, &twilio, &[], &notes).await;
    assert_eq!((r.status, &r.body), (202, &Value::Null));

    // Protocol 2026-07-28: no handshake; each request carries its envelope in params._meta,
    // its revision, method and tool name mirrored in headers.
    let envelope = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}});
    let modern = |id: i64, method: &str, mut params: Value| {
        params["_meta"] = envelope.clone();
        request(id, method, params)
    };
    let headers = |method: &'static str, name: Option<&'static str>| {
        let mut h = vec![
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", method),
        ];
        h.extend(name.map(|n| ("Mcp-Name", n)));
        h
    };
    let r = rpc(
        addr,
        path,
        &twilio,
        &headers("server/discover", None),
        &modern(10, "server/discover", json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let found = &r.body["result"];
    assert_eq!(found["supportedVersions"][0], "2026-07-28", "{}", r.body);
    assert_eq!(
        (&found["resultType"], &found["cacheScope"]),
        (&json!("complete"), &json!("private"))
    );
    assert!(
        found["instructions"]
            .as_str()
            .unwrap_or("")
            .contains("Bright Smile Dental")
    );
    assert_eq!(
        found["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "switchboard"
    );
    let r = rpc(
        addr,
        path,
        &twilio,
        &headers("tools/list", None),
        &modern(11, "tools/list", json!({})),
    )
    .await;
    assert_eq!(
        r.body["result"]["tools"].as_array().map(Vec::len),
        Some(20),
        "{}",
        r.body
    );
    assert_eq!(
        (&r.body["result"]["ttlMs"], &r.body["result"]["resultType"]),
        (&json!(0), &json!("complete"))
    );
    let search = modern(
        12,
        "tools/call",
        json!({"name": "SearchPatients", "arguments": {"name": "Rivera"}}),
    );
    let r = rpc(
        addr,
        path,
        &twilio,
        &headers("tools/call", Some("SearchPatients")),
        &search,
    )
    .await;
    assert_eq!(
        (
            &r.body["result"]["isError"],
            &r.body["result"]["resultType"]
        ),
        (&json!(false), &json!("complete")),
        "{}",
        r.body
    );
    let r = rpc(
        addr,
        path,
        &twilio,
        &headers("tools/call", Some("=?base64?U2VhcmNoUGF0aWVudHM=?=")),
        &search,
    )
    .await;
    assert_eq!(
        r.body["result"]["isError"], false,
        "a base64 header value: {}",
        r.body
    );
    for (h, why) in [
        (headers("tools/call", Some("GetProviders")), "Mcp-Name"),
        (headers("tools/list", Some("SearchPatients")), "Mcp-Method"),
    ] {
        let r = rpc(addr, path, &twilio, &h, &search).await;
        assert_eq!(
            (r.status, &r.body["error"]["code"]),
            (400, &json!(-32020)),
            "{why}: {}",
            r.body
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(why),
            "{}",
            r.body
        );
    }
    let r = rpc(
        addr,
        path,
        &twilio,
        &headers("tools/list", None),
        &request(13, "tools/list", json!({})),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!(-32602)),
        "no envelope: {}",
        r.body
    );
    let mut old = modern(14, "tools/list", json!({}));
    old["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    let r = rpc(addr, path, &twilio, &headers("tools/list", None), &old).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!(-32020)),
        "{}",
        r.body
    );
    for method in ["initialize", "ping"] {
        let r = rpc(
            addr,
            path,
            &twilio,
            &headers(method, None),
            &modern(15, method, json!({})),
        )
        .await;
        assert_eq!(
            (r.status, &r.body["error"]["code"]),
            (404, &json!(-32601)),
            "{method}: {}",
            r.body
        );
    }
    let r = rpc(
        addr,
        path,
        &twilio,
        &headers("tools/call", Some("Nope")),
        &modern(16, "tools/call", json!({"name": "Nope"})),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!(-32602)),
        "{}",
        r.body
    );

    // A 2026-07-28 envelope under a handshake-era header (or none) disagrees with itself.
    for h in [vec![("MCP-Protocol-Version", "2025-11-25")], vec![]] {
        let r = rpc(
            addr,
            path,
            &twilio,
            &h,
            &modern(17, "tools/list", json!({})),
        )
        .await;
        assert_eq!(
            (r.status, &r.body["error"]["code"]),
            (400, &json!(-32020)),
            "{}",
            r.body
        );
    }
    // A routing header sent twice.
    let mut twice = headers("tools/list", None);
    twice.push(("Mcp-Method", "tools/list"));
    let r = rpc(
        addr,
        path,
        &twilio,
        &twice,
        &modern(18, "tools/list", json!({})),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!(-32020)),
        "{}",
        r.body
    );
    // Entries with null ids are each refused, not the batch.
    let nulls = json!([{"jsonrpc": "2.0", "id": null, "method": "ping"}, {"jsonrpc": "2.0", "id": null, "method": "ping"}]);
    let r = rpc(addr, path, &twilio, &[], &nulls).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.as_array().map(Vec::len), Some(2), "{}", r.body);
    assert_eq!(r.body[1]["error"]["code"], -32600);

    // tools/list is the agent builder's MCP export of the channel, tool for tool.
    let listed = rpc(
        addr,
        path,
        &twilio,
        &[],
        &request(5, "tools/list", json!({})),
    )
    .await;
    let exported = send_with(
        addr,
        "GET",
        "/agents/twilio?format=mcp",
        Some(&twilio),
        &[],
        b"",
    )
    .await;
    assert_eq!(exported.status, 200, "{}", exported.body);
    assert_eq!(listed.body["result"]["tools"], exported.body["tools"]);
    assert_eq!(
        listed.body["result"]["tools"].as_array().map(Vec::len),
        Some(20)
    );
    let r = rpc(
        addr,
        path,
        &twilio,
        &[],
        &request(5, "tools/list", json!({"cursor": "x"})),
    )
    .await;
    assert_eq!(r.body["error"]["code"], -32602);

    // tools/call: protocol errors for what is not a call; tool errors for refused calls.
    let call = |name: &str, args: Value| {
        request(6, "tools/call", json!({"name": name, "arguments": args}))
    };
    let r = rpc(addr, path, &twilio, &[], &call("DropTables", json!({}))).await;
    assert_eq!(r.body["error"]["code"], -32602, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Unknown tool")
    );
    let r = rpc(
        addr,
        path,
        &twilio,
        &[],
        &call("SearchPatients", json!(["Rivera"])),
    )
    .await;
    assert_eq!(r.body["error"]["code"], -32602, "{}", r.body);
    let r = rpc(
        addr,
        path,
        &twilio,
        &[],
        &call("SearchPatients", json!({"LName": 7})),
    )
    .await;
    assert_eq!(r.body["result"]["isError"], true, "{}", r.body);
    let text = r.body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("");
    assert!(
        text.contains("/LName"),
        "the details reach the model: {text}"
    );
    assert_eq!(
        r.body["result"]["_meta"]["switchboard/error"]["status"],
        422
    );

    // Idempotency comes from the HTTP request's Idempotency-Key, not from the JSON-RPC id.
    let book = call(
        "CreateAppointment",
        json!({"PatNum": 2, "ProvNum": 1, "AptDateTime": "2027-06-03 09:00"}),
    );
    let keyed = [("Idempotency-Key", "mcp-test-booking-1")];
    let first = rpc(addr, path, &twilio, &keyed, &book).await;
    assert_eq!(first.body["result"]["isError"], false, "{}", first.body);
    let apt = first.body["result"]["structuredContent"]["AptNum"].clone();
    assert!(apt.is_i64(), "{}", first.body);
    let retry = rpc(addr, path, &twilio, &keyed, &book).await;
    assert_eq!(
        retry.body["result"]["structuredContent"]["AptNum"], apt,
        "{}",
        retry.body
    );
    assert_eq!(retry.body["result"]["_meta"]["switchboard/replayed"], true);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    // The same JSON-RPC id without the key is a new call: the slot is taken.
    let again = rpc(addr, path, &twilio, &[], &book).await;
    assert_eq!(again.body["result"]["isError"], true, "{}", again.body);
    assert_eq!(
        again.body["result"]["_meta"]["switchboard/error"]["code"],
        "conflict"
    );

    // Keys: bound to another channel, without the scopes, none at all.
    let web = key(addr, &admin, &["plugins:call", "agents:read"], Some("web")).await;
    let r = rpc(addr, path, &web, &[], &ping).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("/mcp/web")
    );
    let r = rpc(
        addr,
        "/mcp/web",
        &web,
        &[],
        &request(7, "tools/list", json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<&str> = r.body["result"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"CreateAppointment") && !names.contains(&"CreateLead"),
        "{names:?}"
    );
    let reader = key(addr, &admin, &["agents:read"], Some("twilio")).await;
    let r = rpc(addr, path, &reader, &[], &book).await;
    assert_eq!(r.body["result"]["isError"], true, "{}", r.body);
    assert_eq!(
        r.body["result"]["_meta"]["switchboard/error"]["status"],
        403
    );
    let nobody = key(addr, &admin, &["admin:read"], None).await;
    let r = rpc(addr, path, &nobody, &[], &ping).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = send_with(
        addr,
        "POST",
        path,
        None,
        &[JSON_AND_SSE],
        ping.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = rpc(
        addr,
        "/mcp/nowhere",
        &admin,
        &[],
        &request(8, "tools/list", json!({})),
    )
    .await;
    assert_eq!(r.body["error"]["code"], -32000, "{}", r.body);
    assert_eq!(r.body["error"]["data"]["status"], 404);

    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A tool scripts/test installs (pinned) and names in `var`; without it the test fails,
/// saying so.
pub(crate) fn installed(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: scripts/test installs what it names and exports it. Run scripts/test.")
    })
}

/// Runs `cmd` to success; its standard output.
pub(crate) fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The official MCP Python SDK and the MCP Inspector's CLI, against `dev`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_mcp_clients_work_against_dev() {
    let python = installed("SWITCHBOARD_MCP_PYTHON");
    let inspector = installed("SWITCHBOARD_MCP_INSPECTOR");
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-mcp-clients"));
    let (addr, admin, task) = start(&dir).await;
    let twilio = key(
        addr,
        &admin,
        &["plugins:call", "agents:read"],
        Some("twilio"),
    )
    .await;
    let base = format!("http://{addr}");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/mcp_python_sdk.py");

    // The SDK's default connect (2026-07-28 after its probe) and the handshake, on days of
    // their own; the Inspector's default (the handshake) and its 2026-07-28 mode.
    let python = |mode: &'static str, day: &'static str| {
        let (python, base, key) = (python.clone(), base.clone(), twilio.clone());
        tokio::task::spawn_blocking(move || {
            run(std::process::Command::new(python).args([script, &base, &key, day, mode]))
        })
    };
    // Each Inspector run goes through a proxy of its own that keeps what it sent, so the era
    // it spoke is seen on the wire.
    let (legacy_proxy, legacy_sent) = recording_proxy(addr).await;
    let (modern_proxy, modern_sent) = recording_proxy(addr).await;
    let inspector = |era: &'static str, via: SocketAddr| {
        let (inspector, url, key, home) = (
            inspector.clone(),
            format!("http://{via}/mcp/twilio"),
            twilio.clone(),
            dir.clone(),
        );
        tokio::task::spawn_blocking(move || {
            run(std::process::Command::new(inspector)
                .args([
                    "--cli",
                    &url,
                    "--transport",
                    "http",
                    "--method",
                    "tools/list",
                    "--protocol-era",
                    era,
                ])
                .args(["--header", &format!("Authorization: Bearer {key}")])
                // Its catalog file goes to HOME; keep it out of the user's.
                .env("HOME", &home))
        })
    };
    let runs = (
        python("auto", "2027-06-02"),
        python("legacy", "2027-06-09"),
        inspector("legacy", legacy_proxy),
        inspector("modern", modern_proxy),
    );
    let (auto, legacy, cli_legacy, cli_modern) = (
        runs.0.await.unwrap(),
        runs.1.await.unwrap(),
        runs.2.await.unwrap(),
        runs.3.await.unwrap(),
    );
    let ours = rpc(
        addr,
        "/mcp/twilio",
        &twilio,
        &[],
        &request(1, "tools/list", json!({})),
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    };
    for (out, version) in [(&auto, "2026-07-28"), (&legacy, "2025-11-25")] {
        eprintln!("{out}");
        let steps: Vec<Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let step = |name: &str| {
            steps
                .iter()
                .find(|s| s["step"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no step {name}: {out}"))
        };
        assert_eq!(step("connect")["protocolVersion"], version);
        assert_eq!(step("tools/list")["tools"], 20);
        assert_eq!(step("CreateAppointment again")["isError"], true);
        assert!(step("done").is_object());
    }
    let sent = |log: &Arc<std::sync::Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&log.lock().unwrap()).to_ascii_lowercase()
    };
    let (legacy_wire, modern_wire) = (sent(&legacy_sent), sent(&modern_sent));
    assert!(
        legacy_wire.contains("\"method\":\"initialize\"")
            && !legacy_wire.contains("mcp-method: server/discover"),
        "the Inspector's default is the handshake: {legacy_wire}"
    );
    assert!(
        modern_wire.contains("mcp-method: server/discover")
            && modern_wire.contains("mcp-protocol-version: 2026-07-28")
            && !modern_wire.contains("\"method\":\"initialize\""),
        "--protocol-era modern speaks 2026-07-28: {modern_wire}"
    );
    for out in [&cli_legacy, &cli_modern] {
        let listed: Value = serde_json::from_str(out)
            .unwrap_or_else(|e| panic!("inspector output is not JSON ({e}): {out}"));
        assert_eq!(
            names(&listed["tools"]),
            names(&ours.body["result"]["tools"])
        );
        assert_eq!(names(&listed["tools"]).len(), 20);
    }

    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A TCP proxy to `upstream` on a free loopback port; returns its address and every byte
/// clients sent through it.
async fn recording_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<std::sync::Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = sent.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = async {
                    let mut buf = [0u8; 8192];
                    while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    if let Err(e) = server_write.shutdown().await {
                        eprintln!("proxy: {e}");
                    }
                };
                let down = async {
                    if let Err(e) = tokio::io::copy(&mut server_read, &mut client_write).await {
                        eprintln!("proxy: {e}");
                    }
                    if let Err(e) = client_write.shutdown().await {
                        eprintln!("proxy: {e}");
                    }
                };
                tokio::join!(up, down);
            });
        }
    });
    (addr, sent)
}

/// The Lambda path: the MCP service with the AWS SDK's Lambda client, the registry and data
/// on moto, the booking function behind the loopback Invoke API.
#[tokio::test]
async fn tool_calls_invoke_the_plugin_function_through_the_lambda_api() {
    // An org of its own: the demo org on the shared moto tables is the events test's.
    let suffix = switchboard_tests::unique("mcp");
    let tables = moto_tables().await;
    let audit = Arc::new(switchboard::audit::AuditLog::new(tables.data.clone()));
    let demo = demo_on(tables, Some(&suffix), None, local_secrets()).await;
    let booking = Arc::new(booking_service(&demo.platform));
    let api = InvokeApi::failing(
        HashMap::from([("sb-BookingFunction-1".to_owned(), booking)]),
        HashMap::from([
            ("sb-CrmFunction-crashing".to_owned(), Failure::FunctionError),
            ("sb-SupportFunction-busy".to_owned(), Failure::Throttled),
            ("sb-BookingFunction-slow".to_owned(), Failure::TimedOut),
        ]),
    );
    let (endpoint, server) = serve(api.clone()).await;
    let client = switchboard_tests::lambda_client(&endpoint).await;
    let functions = HashMap::from([
        (
            PluginName::parse("booking").unwrap(),
            "sb-BookingFunction-1".to_owned(),
        ),
        (
            PluginName::parse("crm").unwrap(),
            "sb-CrmFunction-crashing".to_owned(),
        ),
        (
            PluginName::parse("support").unwrap(),
            "sb-SupportFunction-busy".to_owned(),
        ),
    ]);
    let mcp = McpService::new(
        AgentBuilder::new(
            demo.platform.registry.clone(),
            std::time::Duration::from_secs(30),
        ),
        Arc::new(LambdaInvoker::new(client, functions)),
        OriginPolicy::default(),
    )
    .with_audit(
        audit.clone(),
        demo.platform.registry.clone(),
        std::time::Duration::from_secs(30),
    );
    let tenant = TenantContext::new(demo.org.clone()).with_scopes(&["plugins:call", "agents:read"]);
    let headers = {
        let mut h = http::HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("idempotency-key", "invoke-test-1".parse().unwrap());
        h
    };
    let call = |name: &str, args: Value| {
        request(9, "tools/call", json!({"name": name, "arguments": args}))
    };
    let ask = |body: Value, rid: &'static str| {
        let (tenant, headers, mcp) = (tenant.clone(), headers.clone(), &mcp);
        async move {
            let body = body.to_string();
            let resp = mcp
                .handle(McpRequest {
                    method: &http::Method::POST,
                    channel: "twilio",
                    tenant: Some(tenant),
                    headers: &headers,
                    body: body.as_bytes(),
                    request_id: rid,
                })
                .await;
            assert_eq!(resp.status, 200, "{:?}", resp.body);
            resp.body.unwrap()
        }
    };

    let book = call(
        "CreateAppointment",
        json!({"PatNum": 1, "ProvNum": 1, "AptDateTime": "2027-06-04 14:00"}),
    );
    let first = ask(book.clone(), "req-invoke-1").await;
    assert_eq!(first["result"]["isError"], false, "{first}");
    assert_eq!(
        first["result"]["structuredContent"]["AptDateTime"],
        "2027-06-04 14:00:00"
    );
    // The event carried the verified tenant on the route's channel, the key and the request id.
    let (name, event) = api.received.lock().unwrap()[0].clone();
    assert_eq!(name, "sb-BookingFunction-1");
    assert_eq!(event["kind"], "switchboard.tool-call/1");
    assert_eq!(event["tenant"]["org"], demo.org.as_str());
    assert_eq!(event["tenant"]["channel"], "twilio");
    assert_eq!(event["function"], "CreateAppointment");
    assert_eq!(event["idempotencyKey"], "invoke-test-1");
    assert_eq!(event["requestId"], "req-invoke-1");
    // The retry with the same key is replayed by the plugin's own idempotency.
    let retry = ask(book, "req-invoke-2").await;
    assert_eq!(
        retry["result"]["_meta"]["switchboard/replayed"], true,
        "{retry}"
    );
    assert_eq!(
        retry["result"]["structuredContent"],
        first["result"]["structuredContent"]
    );
    // A function that crashes: JSON-RPC's internal error, no detail of AWS's.
    let lead = ask(
        call("CreateLead", json!({"name": "Ann", "phone": "+15550100"})),
        "req-invoke-3",
    )
    .await;
    assert_eq!(lead["error"]["code"], -32603, "{lead}");
    assert_eq!(lead["error"]["message"], "internal error");
    // A throttled function: an outage the model reports, naming the plugin, not the function.
    let busy = ask(
        call("ListTickets", json!({"status": "open"})),
        "req-invoke-4",
    )
    .await;
    assert_eq!(busy["result"]["isError"], true, "{busy}");
    let text = busy["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("support plugin is at its concurrency limit"),
        "{text}"
    );
    assert!(!busy.to_string().contains("sb-SupportFunction"), "{busy}");
    assert_eq!(busy["result"]["_meta"]["switchboard/error"]["status"], 503);
    // Calls refused before a plugin function ran: an unknown tool, arguments that are not
    // an object, no tool named.
    let unknown_tool = ask(call("DropTables", json!({})), "req-invoke-5").await;
    assert_eq!(unknown_tool["error"]["code"], -32602, "{unknown_tool}");
    let bad_args = ask(call("ListTickets", json!("open")), "req-invoke-6").await;
    assert_eq!(bad_args["error"]["code"], -32602, "{bad_args}");
    // The same refusal code of the same key right after -6 is not recorded again (-7); a
    // second later it is (-8).
    for rid in ["req-invoke-7", "req-invoke-8"] {
        if rid == "req-invoke-8" {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        let nameless = ask(request(9, "tools/call", json!({"arguments": {}})), rid).await;
        assert_eq!(nameless["error"]["code"], -32602, "{nameless}");
    }
    // Each refusal this server made is in the org's audit log, route mcp; the calls the
    // plugin function ran (req-invoke-1 and -2) are that function's to record, not these.
    let now = std::time::SystemTime::now();
    let q = switchboard::audit::AuditQuery::parse(&[], now).unwrap();
    let page = audit.query(&demo.org, &q, now).await.unwrap();
    let mut seen: Vec<String> = page
        .entries
        .iter()
        .filter(|e| e.route == "mcp")
        .map(|e| {
            let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let (code, plugin, function) = (o(&e.error_code), o(&e.plugin), o(&e.function));
            format!("{} {} {code} {plugin} {function}", e.request_id, e.status)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "req-invoke-3 500 internal crm CreateLead",
            "req-invoke-4 503 dependency_unavailable support ListTickets",
            "req-invoke-5 404 unknown_tool - DropTables",
            "req-invoke-6 400 invalid_request - ListTickets",
            "req-invoke-8 400 invalid_request - -",
        ]
    );
    assert!(
        page.entries
            .iter()
            .filter(|e| e.route == "mcp")
            .all(|e| e.channel.as_deref() == Some("twilio")
                && e.idempotency_key.as_deref() == Some("invoke-test-1")),
        "{:?}",
        page.entries
    );
    // A function that runs out of its own time: an outage too, with the retry advice.
    let slow = LambdaInvoker::new(
        switchboard_tests::lambda_client(&endpoint).await,
        HashMap::from([(
            PluginName::parse("booking").unwrap(),
            "sb-BookingFunction-slow".to_owned(),
        )]),
    );
    let first: switchboard::pipeline::ToolCallEvent =
        serde_json::from_value(api.received.lock().unwrap()[0].1.clone()).unwrap();
    let late = switchboard::ports::ToolInvoker::invoke(&slow, &first)
        .await
        .unwrap_err();
    assert!(
        matches!(late, switchboard::Error::UpstreamTimeout(ref m) if m.contains("same Idempotency-Key") && !m.contains("sb-")),
        "{late:?}"
    );
    // A function that is not deployed at all: internal.
    let unknown = LambdaInvoker::new(
        switchboard_tests::lambda_client(&endpoint).await,
        HashMap::from([(PluginName::parse("booking").unwrap(), "sb-gone".to_owned())]),
    );
    let event = api.received.lock().unwrap()[0].1.clone();
    let event: switchboard::pipeline::ToolCallEvent = serde_json::from_value(event).unwrap();
    let gone = switchboard::ports::ToolInvoker::invoke(&unknown, &event)
        .await
        .unwrap_err();
    assert!(
        matches!(gone, switchboard::Error::Internal(ref m) if m.contains("ResourceNotFoundException")),
        "{gone:?}"
    );
    // The plugin function refuses an event of an unknown kind, and fails one of no kind.
    let mut unknown_kind = api.received.lock().unwrap()[0].1.clone();
    unknown_kind["kind"] = json!("switchboard.tool-call/2");
    let booking_fn = api.function("sb-BookingFunction-1").unwrap().clone();
    let reply = handle_event(&booking_fn, unknown_kind, lambda_http::Context::default())
        .await
        .unwrap();
    let EventReply::ToolCall(out) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        (out.status, out.body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let garbage = handle_event(
        &booking_fn,
        json!({"hello": "world"}),
        lambda_http::Context::default(),
    )
    .await;
    assert!(
        garbage.is_err(),
        "an event of no known kind is the invocation's error"
    );

    server.abort();
}
