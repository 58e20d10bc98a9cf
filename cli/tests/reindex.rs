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
