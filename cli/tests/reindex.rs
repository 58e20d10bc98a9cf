//! `switchboard data reindex` on a store written before booking declared its indexes.

use std::process::Command;

use serde_json::json;
use switchboard::data::BuiltinData;
use switchboard::index::Indexes;
use switchboard::registry::Registry;
use switchboard::{Condition, DataAdapter, EntityName, OrgId, PluginName};
use switchboard_embedded::Embedded;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("SWITCHBOARD_STORE")
        .output()
        .expect("switchboard runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn old_records_become_findable_and_a_second_run_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("sb-reindex-{}", std::process::id()));
    let db = Embedded::open(&dir.join("switchboard.db")).unwrap();
    let booking = booking::plugin().unwrap();
    Registry::new(db.registry_table())
        .publish_manifest(booking.manifest().manifest())
        .await
        .unwrap();
    let org = OrgId::parse("legacy").unwrap();
    let name = PluginName::parse("booking").unwrap();
    let apts = EntityName::parse("appointments").unwrap();
    let data = BuiltinData::new(db.data_table());
    let before = data.scoped(&org, &name, &Indexes::default());
    for n in 0..30 {
        before
            .create(
                &apts,
                json!({"AptDate": format!("2026-12-{:02}", 10 + n % 3), "PatNum": n % 5}),
            )
            .await
            .unwrap();
    }
    let indexed = data.scoped(&org, &name, &booking.manifest().manifest().indexes);
    let day = [Condition::eq("AptDate", "2026-12-10")];
    assert!(indexed.query(&apts, &day).await.unwrap().is_empty());

    let dir_arg = dir.to_str().unwrap();
    let args = [
        "data",
        "reindex",
        "--org",
        "legacy",
        "--plugin",
        "booking",
        "--data-dir",
        dir_arg,
        "--batch",
        "7",
    ];
    let (code, text) = run(&args);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("30 records, 60 index entries written, 0 stale entries removed"),
        "{text}"
    );
    assert_eq!(indexed.query(&apts, &day).await.unwrap().len(), 10);
    assert_eq!(
        indexed
            .query(&apts, &[Condition::eq("PatNum", 4)])
            .await
            .unwrap()
            .len(),
        6
    );
    let (code, text) = run(&args);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 stale entries removed"), "{text}");

    for (extra, says) in [
        (
            &["--from", "nonsense"][..],
            "not a token this command printed",
        ),
        (
            &["--version", "9.9.9"][..],
            "booking 9.9.9 is not published",
        ),
    ] {
        let mut bad = args.to_vec();
        bad.extend_from_slice(extra);
        let (code, text) = run(&bad);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains(says), "{text}");
    }
    let (code, text) = run(&[
        "data",
        "reindex",
        "--org",
        "legacy",
        "--plugin",
        "nope",
        "--data-dir",
        dir_arg,
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("no manifest of 'nope' is published"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Upgrading crm from 1.3.0 (leads indexed by stored keys and by `email`, `phone` as typed)
/// to the current version (derived keys, since 1.4.0): reindexing finds every old lead by its
/// normalised contact, and `--drop` removes the entries of the indexes 1.4.0 no longer
/// declares, which are copies of the leads nothing would update or delete any more.
#[tokio::test]
async fn crm_1_3_leads_are_found_by_derived_keys_and_retired_entries_dropped() {
    let dir = std::env::temp_dir().join(format!("sb-reindex-crm-{}", std::process::id()));
    let db = Embedded::open(&dir.join("switchboard.db")).unwrap();
    let crm = crm::plugin().unwrap();
    let registry = Registry::new(db.registry_table());
    registry
        .publish_manifest(crm.manifest().manifest())
        .await
        .unwrap();
    let v13: Indexes = serde_json::from_value(
        json!({"leads": ["status", "emailKey", "phoneKey", "email", "phone"]}),
    )
    .unwrap();
    let mut old_manifest = crm.manifest().manifest().clone();
    old_manifest.version = "1.3.0".into();
    old_manifest.indexes = v13.clone();
    registry.publish_manifest(&old_manifest).await.unwrap();
    let org = OrgId::parse("upgraded").unwrap();
    let name = PluginName::parse("crm").unwrap();
    let mut instance = switchboard::registry::PluginInstance {
        plugin: name.clone(),
        enabled: true,
        pinned_version: "1.3.0".into(),
        config: json!({}),
        data_adapter: Default::default(),
    };
    registry.put_instance(&org, &instance, None).await.unwrap();
    let leads = EntityName::parse("leads").unwrap();
    let data = BuiltinData::new(db.data_table());
    let old = data.scoped(&org, &name, &v13);
    for (email, phone) in [
        ("Pat@Example.org", "+1 555-777-1234"),
        ("sam@example.org", "555.777.9999"),
    ] {
        old.create(
            &leads,
            json!({"email": email, "phone": phone, "status": "new",
                   "emailKey": email.to_lowercase()}),
        )
        .await
        .unwrap();
    }
    let table = db.data_table();
    let entries = |field: &str| {
        let (table, pk) = (table.clone(), format!("ORG#{org}#crm#leads~{field}"));
        async move {
            switchboard::ports::query_all(table.as_ref(), &pk)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!((entries("email").await, entries("phone").await), (2, 2));

    let dir_arg = dir.to_str().unwrap();
    let mut args = vec![
        "data",
        "reindex",
        "--org",
        "upgraded",
        "--plugin",
        "crm",
        "--data-dir",
        dir_arg,
    ];
    args.extend(["--drop", "leads~email", "--drop", "leads~phone"]);
    // Still served 1.3.0, which reads them: refused, nothing removed.
    let (code, text) = run(&args);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("pinned to 1.3.0, which still reads leads~email"),
        "{text}"
    );
    assert_eq!((entries("email").await, entries("phone").await), (2, 2));
    instance.pinned_version = "1.5.0".into();
    registry
        .put_instance(&org, &instance, Some(1))
        .await
        .unwrap();
    let (code, text) = run(&args);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("dropped leads~email for upgraded: 2 entries removed"),
        "{text}"
    );
    assert_eq!((entries("email").await, entries("phone").await), (0, 0));
    let new = data.scoped(&org, &name, &crm.manifest().manifest().indexes);
    let by_phone = [Condition::eq("phoneKey", "(555) 777-1234")];
    assert_eq!(new.query(&leads, &by_phone).await.unwrap().len(), 1);
    let (code, text) = run(&args);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("leads~phone for upgraded: 0 entries removed"),
        "{text}"
    );

    for (drop, says) in [
        ("leads~status", "still indexed by status"),
        ("leads", "is not <entity>~<field>"),
    ] {
        let mut bad = args[..8].to_vec();
        bad.extend(["--drop", drop]);
        let (code, text) = run(&bad);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains(says), "{text}");
    }
    assert_eq!(entries("status").await, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
