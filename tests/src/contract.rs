//! Contract suites. Each runs unchanged against the embedded store and DynamoDB (moto): if an
//! adapter passes these, the registry and the built-in data adapter behave the same on it.

use std::sync::Arc;

use serde_json::json;
use switchboard::data::BuiltinData;
use switchboard::index::Indexes;
use switchboard::manifest::CompiledManifest;
use switchboard::ports::{
    Condition, DataAdapter, DataError, ItemStore, Key, Op, Precondition, SkRange, StoreError, Write,
};
use switchboard::registry::{
    ApiKeyRecord, Assignment, ChannelConfig, KeyHash, OrgProfile, PluginInstance, Published,
    Registry,
};
use switchboard::{Channel, EntityName, OrgId, PluginName, RecordId};

use crate::unique;

fn org(s: &str) -> OrgId {
    OrgId::parse(unique(s)).unwrap()
}

fn manifest(
    name: &PluginName,
    version: &str,
    description: &str,
) -> switchboard::manifest::Manifest {
    let text = json!({
        "name": name, "version": version, "display_name": "Contract", "description": description,
        "instruction_template": "Hi {{ org.display_name }}",
        "functions": [{"name": "Ping", "description": "ping", "side_effects": false, "parameters": {"type": "object"}}]
    });
    CompiledManifest::from_value(text)
        .unwrap()
        .manifest()
        .clone()
}

fn instance(plugin: &PluginName, enabled: bool) -> PluginInstance {
    PluginInstance {
        plugin: plugin.clone(),
        enabled,
        pinned_version: "1.0.0".into(),
        config: json!({"slots": 30}),
        data_adapter: Default::default(),
    }
}

/// The registry over one table.
pub async fn registry(table: Arc<dyn ItemStore>) {
    let reg = Registry::new(table.clone());
    let acme = org("acme");
    let other = org("other");
    let booking = PluginName::parse(unique("booking")).unwrap();

    // Instances: create-only, then optimistic-lock updates.
    assert_eq!(reg.get_instance(&acme, &booking).await.unwrap(), None);
    assert_eq!(
        reg.put_instance(&acme, &instance(&booking, true), None)
            .await
            .unwrap(),
        1
    );
    let again = reg
        .put_instance(&acme, &instance(&booking, true), None)
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    assert_eq!(
        reg.put_instance(&acme, &instance(&booking, false), Some(1))
            .await
            .unwrap(),
        2
    );
    let stale = reg
        .put_instance(&acme, &instance(&booking, true), Some(1))
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict {
                current: Some(2),
                ..
            })
        ),
        "a stale write must conflict and report the current version: {stale:?}"
    );
    let got = reg.get_instance(&acme, &booking).await.unwrap().unwrap();
    assert_eq!(got.version, 2);
    assert!(!got.value.enabled, "the lost update must not have landed");
    assert_eq!(got.value.config, json!({"slots": 30}));

    // Manifests: immutable versions.
    let m1 = manifest(&booking, "1.0.0", "first");
    assert_eq!(reg.publish_manifest(&m1).await.unwrap(), Published::Created);
    assert_eq!(
        reg.publish_manifest(&m1).await.unwrap(),
        Published::Unchanged
    );
    let changed = reg
        .publish_manifest(&manifest(&booking, "1.0.0", "changed"))
        .await;
    assert!(
        matches!(changed, Err(StoreError::Conflict { .. })),
        "{changed:?}"
    );
    reg.publish_manifest(&manifest(&booking, "1.1.0", "second"))
        .await
        .unwrap();
    assert_eq!(
        reg.get_manifest(&booking, "1.0.0").await.unwrap(),
        Some(m1.clone())
    );
    assert_eq!(reg.get_manifest(&booking, "9.9.9").await.unwrap(), None);
    reg.publish_manifest(&manifest(&booking, "1.10.0", "third"))
        .await
        .unwrap();
    assert_eq!(
        reg.manifest_versions(&booking).await.unwrap(),
        vec!["1.0.0", "1.1.0", "1.10.0"],
        "semantic-version order"
    );
    let library = reg.library().await.unwrap();
    let listed = library.iter().find(|e| e.name == booking).unwrap();
    assert_eq!(listed.versions, vec!["1.0.0", "1.1.0", "1.10.0"]);

    // A library entry written before it listed versions still answers, and a publish
    // (new or repeated) rewrites it with the list.
    let legacy = PluginName::parse(unique("legacy")).unwrap();
    for v in ["1.0.0", "1.2.0"] {
        let m = manifest(&legacy, v, "legacy");
        let data = serde_json::to_value(&m).unwrap();
        table
            .put(
                &Key::new(format!("PLUGIN#{legacy}"), format!("V#{v}")),
                &data,
                Precondition::NotExists,
            )
            .await
            .unwrap();
    }
    let catalog = Key::new("PLUGINS", legacy.as_str());
    table
        .put(&catalog, &json!({"name": legacy}), Precondition::NotExists)
        .await
        .unwrap();
    assert_eq!(
        reg.manifest_versions(&legacy).await.unwrap(),
        vec!["1.0.0", "1.2.0"]
    );
    assert_eq!(
        reg.publish_manifest(&manifest(&legacy, "1.0.0", "legacy"))
            .await
            .unwrap(),
        Published::Unchanged
    );
    let entry = table.get(&catalog).await.unwrap().unwrap();
    assert_eq!(entry.data["versions"], json!(["1.0.0", "1.2.0"]), "healed");
    assert_eq!(
        reg.publish_manifest(&manifest(&legacy, "1.1.0", "legacy"))
            .await
            .unwrap(),
        Published::Created
    );
    assert_eq!(
        reg.manifest_versions(&legacy).await.unwrap(),
        vec!["1.0.0", "1.1.0", "1.2.0"]
    );

    // A manifest written without its entry listing it (a publisher stopped between the two
    // writes, before they were one transaction): a repeat publish lists it, a different
    // content is a conflict, not an endless retry.
    let orphan = manifest(&legacy, "1.5.0", "orphan");
    table
        .put(
            &Key::new(format!("PLUGIN#{legacy}"), "V#1.5.0"),
            &serde_json::to_value(&orphan).unwrap(),
            Precondition::NotExists,
        )
        .await
        .unwrap();
    let changed = reg
        .publish_manifest(&manifest(&legacy, "1.5.0", "other"))
        .await;
    assert!(
        matches!(changed, Err(StoreError::Conflict { .. })),
        "{changed:?}"
    );
    assert_eq!(
        reg.publish_manifest(&orphan).await.unwrap(),
        Published::Unchanged
    );
    assert_eq!(
        reg.manifest_versions(&legacy).await.unwrap(),
        vec!["1.0.0", "1.1.0", "1.2.0", "1.5.0"]
    );

    // Concurrent publishes of one plugin's versions all land in its library entry.
    let racing = PluginName::parse(unique("racing")).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for minor in 0..4 {
        let (reg, m) = (reg.clone(), manifest(&racing, &format!("1.{minor}.0"), "r"));
        tasks.spawn(async move { reg.publish_manifest(&m).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap(), Published::Created);
    }
    assert_eq!(
        reg.manifest_versions(&racing).await.unwrap(),
        vec!["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    );
    let batch = reg
        .get_manifests(&[
            (booking.clone(), "1.0.0".into()),
            (booking.clone(), "1.1.0".into()),
            (booking.clone(), "1.0.0".into()),
            (booking.clone(), "2.0.0".into()),
        ])
        .await
        .unwrap();
    assert_eq!(
        batch.len(),
        2,
        "duplicates collapse and missing versions are absent"
    );

    // Profiles and channels.
    let profile = OrgProfile {
        display_name: "Acme Dental".into(),
        timezone: "Europe/Dublin".into(),
        locale: "en-IE".into(),
        idempotency_ttl_hours: Some(48),
        audit_retention_days: Some(30),
        rate_limit_per_second: Some(250),
        extra: Default::default(),
    };
    assert_eq!(reg.put_profile(&acme, &profile, None).await.unwrap(), 1);
    assert_eq!(
        reg.get_profile(&acme).await.unwrap().unwrap().value,
        profile
    );
    let twilio = Channel::parse("twilio").unwrap();
    let chan = ChannelConfig {
        locale: None,
        instructions: None,
        plugin_assignments: vec![Assignment {
            plugin: booking.clone(),
            enabled: true,
            priority: 1,
            data_adapter: None,
        }],
    };
    assert_eq!(
        reg.put_channel(&acme, &twilio, &chan, None).await.unwrap(),
        1
    );
    let stale = reg.put_channel(&acme, &twilio, &chan, Some(7)).await;
    assert!(matches!(&stale, Err(e) if e.status() == 409), "{stale:?}");
    let mut twice = chan.clone();
    twice
        .plugin_assignments
        .push(chan.plugin_assignments[0].clone());
    let dup = reg.put_channel(&acme, &twilio, &twice, Some(1)).await;
    assert!(matches!(&dup, Err(e) if e.status() == 422), "{dup:?}");
    assert_eq!(
        reg.get_channel(&acme, &twilio)
            .await
            .unwrap()
            .unwrap()
            .value,
        chan
    );

    // A channel write conditioned on the instances it assigns, as read: an instance changed
    // in between (say, disabled) refuses it, naming the plugin, and nothing is written.
    let checked = org("checked");
    let v1 = reg
        .put_instance(&checked, &instance(&booking, true), None)
        .await
        .unwrap();
    let v2 = reg
        .put_instance(&checked, &instance(&booking, false), Some(v1))
        .await
        .unwrap();
    let raced = reg
        .put_channel_checked(&checked, &twilio, &chan, None, &[(booking.clone(), v1)])
        .await;
    assert!(
        matches!(&raced, Err(e) if e.status() == 409 && e.to_string().contains(booking.as_str())),
        "{raced:?}"
    );
    assert_eq!(reg.get_channel(&checked, &twilio).await.unwrap(), None);
    let saved = reg
        .put_channel_checked(&checked, &twilio, &chan, None, &[(booking.clone(), v2)])
        .await;
    assert_eq!(saved.unwrap(), 1);
    let stale_channel = reg
        .put_channel_checked(&checked, &twilio, &chan, None, &[(booking.clone(), v2)])
        .await;
    assert!(
        matches!(&stale_channel, Err(e) if e.status() == 409),
        "{stale_channel:?}"
    );
    assert_eq!(
        reg.put_channel_checked(&checked, &twilio, &chan, Some(1), &[(booking.clone(), v2)])
            .await
            .unwrap(),
        2
    );

    // The org snapshot holds exactly this org's items.
    reg.put_instance(&other, &instance(&booking, true), None)
        .await
        .unwrap();
    let snap = reg.org_snapshot(&acme).await.unwrap();
    assert_eq!(
        snap.profile.map(|p| p.value.display_name),
        Some("Acme Dental".into())
    );
    assert_eq!(snap.instances.len(), 1);
    assert!(!snap.instances[0].value.enabled);
    assert_eq!(snap.channels.len(), 1);
    assert_eq!(snap.channels[0].0, twilio);
    let other_snap = reg.org_snapshot(&other).await.unwrap();
    assert!(other_snap.profile.is_none() && other_snap.channels.is_empty());
    assert_eq!(other_snap.instances.len(), 1);

    // API keys: stored by hash only, create-only.
    let secret = unique("sb_test");
    let hash = KeyHash::of(&secret);
    let rec = ApiKeyRecord {
        org: acme.clone(),
        scopes: vec!["plugins:call".into()],
        created: 1_790_000_000,
        revoked: false,
        name: Some("ci".into()),
        channel: Some(twilio.clone()),
        rate_limit_per_second: None,
    };
    reg.create_api_key(&hash, &rec).await.unwrap();
    let listed = reg.list_api_keys(&acme).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .find(|k| k.id == hash.id())
            .and_then(|k| k.channel.as_ref()),
        Some(&twilio),
        "the binding is stored with the key's listing"
    );
    assert!(matches!(
        reg.create_api_key(&hash, &rec).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(reg.get_api_key(&hash).await.unwrap(), Some(rec));
    assert_eq!(reg.get_api_key(&KeyHash::of("nope")).await.unwrap(), None);
    let raw = table
        .get(&Key::new(format!("KEY#{}", hash.as_str()), "KEY"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !raw.data.to_string().contains(&secret),
        "the key itself is never stored"
    );
}

/// The item store's primitives, below the registry.
pub async fn item_store(table: Arc<dyn ItemStore>) {
    let pk = unique("PK");
    // An expiring item is versioned and conditional like any other.
    let expiring = Key::new(unique("IDEM#t"), "IDEM");
    let later = 4_102_444_800; // 2100-01-01
    let v = table
        .put_expiring(&expiring, &json!({"n": 1}), Precondition::NotExists, later)
        .await
        .unwrap();
    assert_eq!(v, 1);
    assert!(matches!(
        table
            .put_expiring(&expiring, &json!({"n": 2}), Precondition::NotExists, later)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let v = table
        .put_expiring(&expiring, &json!({"n": 2}), Precondition::Version(1), later)
        .await
        .unwrap();
    assert_eq!(v, 2);
    let got = table.get(&expiring).await.unwrap().unwrap();
    assert_eq!((got.data, got.version), (json!({"n": 2}), 2));
    // A stale write reports what it found, where the backend answers with it.
    match table
        .put_expiring(&expiring, &json!({"n": 3}), Precondition::Version(1), later)
        .await
    {
        Err(StoreError::Conflict { current, found, .. }) => {
            assert_eq!(current, Some(2));
            if let Some(found) = found {
                assert_eq!(*found, json!({"n": 2}));
            }
        }
        other => panic!("a stale write must conflict: {other:?}"),
    }
    // Pagination in sort-key order.
    for sk in ["c", "a", "e", "b", "d"] {
        table
            .put(&Key::new(&pk, sk), &json!({"sk": sk}), Precondition::None)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = table.query(&pk, after.as_deref(), Some(2)).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|i| i.key.sk.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, vec!["a", "b", "c", "d", "e"]);

    // Versions and preconditions.
    let k = Key::new(&pk, "v");
    assert_eq!(
        table
            .put(&k, &json!({"n": 1}), Precondition::NotExists)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        table
            .put(&k, &json!({"n": 2}), Precondition::Exists)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        table
            .put(&k, &json!({"n": 3}), Precondition::Version(2))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        table
            .put(&k, &json!({"n": 4}), Precondition::None)
            .await
            .unwrap(),
        4
    );
    let missing = Key::new(&pk, "missing");
    assert!(matches!(
        table.put(&missing, &json!({}), Precondition::Exists).await,
        Err(StoreError::Conflict { .. })
    ));
    let item = table.get(&k).await.unwrap().unwrap();
    assert_eq!((item.version, item.data), (4, json!({"n": 4})));

    // Nested JSON survives a round trip.
    let nested = json!({"s": "x", "i": -3, "f": 1.5, "b": true, "z": null, "a": [1, "two", {"x": []}], "o": {"k": {}}});
    table
        .put(&Key::new(&pk, "nested"), &nested, Precondition::None)
        .await
        .unwrap();
    assert_eq!(
        table
            .get(&Key::new(&pk, "nested"))
            .await
            .unwrap()
            .unwrap()
            .data,
        nested
    );

    // Deletes.
    assert!(matches!(
        table.delete(&k, Precondition::Version(1)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(table.delete(&k, Precondition::Version(4)).await.unwrap());
    assert!(!table.delete(&k, Precondition::None).await.unwrap());

    // Transactions are all-or-nothing.
    let t1 = Key::new(&pk, "t1");
    let t2 = Key::new(&pk, "a"); // exists
    let res = table
        .transact_put(&[
            (t1.clone(), json!({"t": 1}), Precondition::NotExists),
            (t2, json!({"t": 2}), Precondition::NotExists),
        ])
        .await;
    assert!(matches!(res, Err(StoreError::Conflict { .. })), "{res:?}");
    assert_eq!(
        table.get(&t1).await.unwrap(),
        None,
        "a failed transaction writes nothing"
    );

    // Puts and deletes in one transaction: a failed delete precondition undoes the put.
    let keep = Key::new(&pk, "keep");
    let gone = Key::new(&pk, "gone");
    table
        .put(&keep, &json!({"k": 1}), Precondition::NotExists)
        .await
        .unwrap();
    let res = table
        .transact_write(&[
            Write::Put {
                key: &gone,
                data: &json!({"g": 1}),
                pre: Precondition::NotExists,
            },
            Write::Delete {
                key: &keep,
                pre: Precondition::Version(7),
            },
        ])
        .await;
    assert!(
        matches!(&res, Err(StoreError::Conflict { key, .. }) if *key == keep.to_string()),
        "{res:?}"
    );
    assert_eq!(table.get(&gone).await.unwrap(), None, "the put was undone");
    assert!(
        table.get(&keep).await.unwrap().is_some(),
        "the delete did not happen"
    );
    table
        .transact_write(&[
            Write::Put {
                key: &gone,
                data: &json!({"g": 1}),
                pre: Precondition::NotExists,
            },
            Write::Delete {
                key: &keep,
                pre: Precondition::Version(1),
            },
        ])
        .await
        .unwrap();
    assert_eq!(table.get(&keep).await.unwrap(), None);
    assert!(table.get(&gone).await.unwrap().is_some());
    // A delete that must find its item, and the same item twice, are refused.
    let res = table
        .transact_write(&[Write::Delete {
            key: &keep,
            pre: Precondition::Exists,
        }])
        .await;
    assert!(matches!(res, Err(StoreError::Conflict { .. })), "{res:?}");
    let res = table
        .transact_write(&[
            Write::Delete {
                key: &gone,
                pre: Precondition::None,
            },
            Write::Delete {
                key: &gone,
                pre: Precondition::None,
            },
        ])
        .await;
    assert!(matches!(res, Err(StoreError::Internal(_))), "{res:?}");
    assert!(
        table.get(&gone).await.unwrap().is_some(),
        "nothing of it happened"
    );

    // Counters.
    let c = Key::new(unique("SEQ"), "patients");
    assert_eq!(table.increment(&c).await.unwrap(), 1);
    assert_eq!(table.increment(&c).await.unwrap(), 2);

    // Batch reads beyond one DynamoDB request (100 keys).
    let bpk = unique("BATCH");
    let puts: Vec<_> = (0..100)
        .map(|i| {
            (
                Key::new(&bpk, format!("{i:03}")),
                json!({"i": i}),
                Precondition::NotExists,
            )
        })
        .collect();
    table.transact_put(&puts).await.unwrap();
    table
        .put(
            &Key::new(&bpk, "100"),
            &json!({"i": 100}),
            Precondition::None,
        )
        .await
        .unwrap();
    let mut keys: Vec<Key> = (0..101)
        .map(|i| Key::new(&bpk, format!("{i:03}")))
        .collect();
    keys[100] = Key::new(&bpk, "100");
    keys.push(Key::new(&bpk, "absent"));
    assert_eq!(table.batch_get(&keys).await.unwrap().len(), 101);
}

fn entity(s: &str) -> EntityName {
    EntityName::parse(s).unwrap()
}

fn id(s: &str) -> RecordId {
    RecordId::parse(s).unwrap()
}

fn patient_indexes() -> Indexes {
    serde_json::from_value(json!({"patients": ["age", "FName"]})).unwrap()
}

/// The built-in data adapter over one table.
pub async fn data_adapter(table: Arc<dyn ItemStore>) {
    let data = BuiltinData::new(table);
    let acme = org("acme");
    let plugin = PluginName::parse("booking").unwrap();
    let a = data.scoped(&acme, &plugin, &patient_indexes());
    let patients = entity("patients");

    // Allocated and explicit ids.
    let p1 = a
        .create(&patients, json!({"FName": "Ada", "age": 36}))
        .await
        .unwrap();
    let p2 = a
        .create(&patients, json!({"FName": "Bo", "age": 41}))
        .await
        .unwrap();
    assert_eq!(
        (p1["id"].clone(), p2["id"].clone()),
        (json!("1"), json!("2"))
    );
    a.create(&patients, json!({"id": "x9", "FName": "Cy", "age": 29}))
        .await
        .unwrap();
    let dup = a.create(&patients, json!({"id": "x9"})).await;
    assert!(matches!(dup, Err(DataError::Conflict { .. })), "{dup:?}");
    let bad = a.create(&patients, json!([1, 2])).await;
    assert!(matches!(bad, Err(DataError::Invalid(_))), "{bad:?}");

    // Read, update, delete.
    assert_eq!(
        a.get(&patients, &id("1")).await.unwrap().unwrap()["FName"],
        "Ada"
    );
    assert_eq!(a.get(&patients, &id("404")).await.unwrap(), None);
    let up = a
        .update(&patients, &id("1"), json!({"age": 37, "id": "hijack"}))
        .await
        .unwrap();
    assert_eq!(
        (up["age"].clone(), up["id"].clone(), up["FName"].clone()),
        (json!(37), json!("1"), json!("Ada"))
    );
    assert!(matches!(
        a.update(&patients, &id("404"), json!({})).await,
        Err(DataError::NotFound { .. })
    ));

    // Conditional writes act only on what the caller read.
    let guarded = a
        .update_where(
            &patients,
            &id("2"),
            json!({"age": 42}),
            &[Condition::eq("age", 41)],
        )
        .await
        .unwrap();
    assert_eq!(guarded["age"], 42);
    let stale = a
        .update_where(
            &patients,
            &id("2"),
            json!({"age": 99}),
            &[Condition::eq("age", 41)],
        )
        .await;
    assert!(
        matches!(stale, Err(DataError::Conflict { .. })),
        "{stale:?}"
    );
    let kept = a
        .delete_where(
            &patients,
            &id("2"),
            &[Condition::eq("FName", "Someone else")],
        )
        .await;
    assert!(matches!(kept, Err(DataError::Conflict { .. })), "{kept:?}");
    assert_eq!(
        a.get(&patients, &id("2")).await.unwrap().unwrap()["age"],
        42
    );
    a.update(&patients, &id("2"), json!({"age": 41}))
        .await
        .unwrap();
    assert!(
        !a.delete_where(&patients, &id("404"), &[Condition::eq("age", 1)])
            .await
            .unwrap()
    );

    // Query.
    let older = a
        .query(&patients, &[Condition::new("age", Op::Gte, 37)])
        .await
        .unwrap();
    assert_eq!(older.len(), 2);
    let named = a
        .query(
            &patients,
            &[
                Condition::new("FName", Op::BeginsWith, "C"),
                Condition::eq("age", 29),
            ],
        )
        .await
        .unwrap();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["id"], "x9");

    // Pagination.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = a.list(&patients, 2, cursor.as_deref()).await.unwrap();
        all.extend(page.items);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let ids: Vec<&str> = all.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, vec!["1", "2", "x9"]);
    let bad_cursor = a.list(&patients, 2, Some(&"é".repeat(600))).await;
    assert!(
        matches!(bad_cursor, Err(DataError::Invalid(_))),
        "{bad_cursor:?}"
    );

    // Batches are atomic.
    let claims = entity("slot_claims");
    let made = a
        .batch_create(
            &claims,
            vec![json!({"id": "p1-600"}), json!({"id": "o1-600"})],
        )
        .await
        .unwrap();
    assert_eq!(made.len(), 2);
    let clash = a
        .batch_create(
            &claims,
            vec![json!({"id": "p2-600"}), json!({"id": "o1-600"})],
        )
        .await;
    assert!(
        matches!(clash, Err(DataError::Conflict { .. })),
        "{clash:?}"
    );
    assert_eq!(
        a.get(&claims, &id("p2-600")).await.unwrap(),
        None,
        "nothing of a failed batch lands"
    );
    let updated = a
        .batch_update(
            &patients,
            vec![
                (id("1"), json!({"vip": true})),
                (id("2"), json!({"vip": false})),
            ],
        )
        .await
        .unwrap();
    assert_eq!(updated.len(), 2);
    let missing = a
        .batch_update(
            &patients,
            vec![(id("1"), json!({"vip": 1})), (id("nope"), json!({}))],
        )
        .await;
    assert!(
        matches!(missing, Err(DataError::NotFound { .. })),
        "{missing:?}"
    );
    let twice = a
        .batch_update(
            &patients,
            vec![(id("1"), json!({"vip": 2})), (id("1"), json!({"vip": 3}))],
        )
        .await;
    assert!(matches!(twice, Err(DataError::Invalid(_))), "{twice:?}");
    assert_eq!(
        a.get(&patients, &id("1")).await.unwrap().unwrap()["vip"],
        true
    );

    // Schema and entities.
    let schema = a.get_schema(&patients).await.unwrap();
    assert_eq!(schema["properties"]["age"]["type"], "number");
    let mut entities: Vec<String> = a
        .list_entities()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    entities.sort();
    assert_eq!(entities, vec!["patients", "slot_claims"]);

    assert!(a.delete(&patients, &id("x9")).await.unwrap());
    assert!(!a.delete(&patients, &id("x9")).await.unwrap());

    tenant_isolation(&data, &acme, &plugin).await;
}

/// Another tenant, or another plugin of the same tenant, sees none of these rows.
async fn tenant_isolation(data: &BuiltinData, acme: &OrgId, plugin: &PluginName) {
    let patients = entity("patients");
    let other = data.scoped(&org("other"), plugin, &patient_indexes());
    assert_eq!(other.get(&patients, &id("1")).await.unwrap(), None);
    assert!(
        other
            .list(&patients, 100, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        other
            .query(&patients, &[Condition::new("age", Op::Gte, 0)])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(other.list_entities().await.unwrap().is_empty());
    assert!(matches!(
        other
            .update(&patients, &id("1"), json!({"FName": "Mallory"}))
            .await,
        Err(DataError::NotFound { .. })
    ));
    assert!(!other.delete(&patients, &id("2")).await.unwrap());
    // Its own sequence starts at 1 and does not collide with acme's "1".
    let own = other
        .create(&patients, json!({"FName": "Eve"}))
        .await
        .unwrap();
    assert_eq!(own["id"], "1");
    let crm = data.scoped(acme, &PluginName::parse("crm").unwrap(), &patient_indexes());
    assert_eq!(crm.get(&patients, &id("1")).await.unwrap(), None);

    let acme_view = data.scoped(acme, plugin, &patient_indexes());
    assert_eq!(
        acme_view.get(&patients, &id("1")).await.unwrap().unwrap()["FName"],
        "Ada"
    );
}

/// `query_range` reads only its keys; `Write::Check` holds a transaction to a version.
pub async fn item_store_ranges(table: Arc<dyn ItemStore>) {
    let pk = unique("RANGE");
    for sk in ["a", "b\u{1}1", "b\u{1}2", "ba\u{1}3", "c\u{1}4", "d"] {
        table
            .put(&Key::new(&pk, sk), &json!({"sk": sk}), Precondition::None)
            .await
            .unwrap();
    }
    let sks = |p: &switchboard::ports::Page<switchboard::ports::Item>| -> Vec<String> {
        p.items.iter().map(|i| i.key.sk.clone()).collect()
    };
    let between = SkRange::Between("b".into(), "b\u{2}".into());
    let page = table.query_range(&pk, &between, None, None).await.unwrap();
    assert_eq!(sks(&page), ["b\u{1}1", "b\u{1}2"]);
    let first = table
        .query_range(&pk, &between, None, Some(1))
        .await
        .unwrap();
    assert_eq!(sks(&first), ["b\u{1}1"]);
    let next = first.next.expect("a second page");
    let second = table
        .query_range(&pk, &between, Some(&next), Some(1))
        .await
        .unwrap();
    assert_eq!(sks(&second), ["b\u{1}2"]);
    // DynamoDB may hand out a cursor at the end of a full page; what follows it is empty.
    if let Some(next) = second.next {
        let last = table
            .query_range(&pk, &between, Some(&next), Some(1))
            .await
            .unwrap();
        assert!(last.items.is_empty() && last.next.is_none(), "{last:?}");
    }
    let prefix = SkRange::Prefix("b".into());
    let page = table.query_range(&pk, &prefix, None, None).await.unwrap();
    assert_eq!(sks(&page), ["b\u{1}1", "b\u{1}2", "ba\u{1}3"]);
    let inclusive = SkRange::Between("a".into(), "d".into());
    assert_eq!(
        table
            .query_range(&pk, &inclusive, None, None)
            .await
            .unwrap()
            .items
            .len(),
        6
    );

    let checked = Key::new(&pk, "a");
    let target = Key::new(&pk, "written");
    let data = json!({"x": 1});
    let stale = table
        .transact_write(&[
            Write::Check {
                key: &checked,
                pre: Precondition::Version(9),
            },
            Write::Put {
                key: &target,
                data: &data,
                pre: Precondition::None,
            },
        ])
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert_eq!(table.get(&target).await.unwrap(), None);
    table
        .transact_write(&[
            Write::Check {
                key: &checked,
                pre: Precondition::Version(1),
            },
            Write::Put {
                key: &target,
                data: &data,
                pre: Precondition::None,
            },
        ])
        .await
        .unwrap();
    assert_eq!(table.get(&target).await.unwrap().unwrap().data, data);
}

fn appointment_indexes() -> Indexes {
    serde_json::from_value(json!({"appointments": ["AptDate", "PatNum"]})).unwrap()
}

fn apt(n: usize, date: &str, pat: i64) -> serde_json::Value {
    json!({"id": format!("{n}"), "AptDate": date, "PatNum": pat, "AptStatus": "Scheduled"})
}

/// All index entries of one field, straight from the table.
async fn entries(table: &dyn ItemStore, org: &OrgId, field: &str) -> Vec<(String, String)> {
    let pk = format!("ORG#{org}#booking#appointments~{field}");
    switchboard::ports::query_all(table, &pk)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.key.sk, i.data["id"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// Declared indexes over the built-in adapter: exact, range and prefix lookups, pages,
/// entries kept with their records through every write, races, tenants, and reindexing.
pub async fn indexed_queries(table: Arc<dyn ItemStore>) {
    let data = BuiltinData::new(table.clone());
    let acme = org("acme");
    let booking = PluginName::parse("booking").unwrap();
    let a = data.scoped(&acme, &booking, &appointment_indexes());
    let apts = entity("appointments");
    let days = ["2026-12-14", "2026-12-15", "2026-12-16"];
    let mut batch = vec![];
    for n in 0..30 {
        batch.push(apt(n, days[n % 3], (n % 4) as i64));
    }
    a.batch_create(&apts, batch).await.unwrap();

    let ids = |rs: &[serde_json::Value]| -> Vec<String> {
        let mut v: Vec<String> = rs
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort_by_key(|s| s.parse::<u32>().unwrap());
        v
    };
    let day = a
        .query(&apts, &[Condition::eq("AptDate", "2026-12-15")])
        .await
        .unwrap();
    assert_eq!(day.len(), 10);
    assert!(day.iter().all(|r| r["AptDate"] == "2026-12-15"));
    let one = a
        .query(
            &apts,
            &[
                Condition::eq("AptDate", "2026-12-15"),
                Condition::eq("PatNum", 1),
            ],
        )
        .await
        .unwrap();
    assert_eq!(ids(&one), ["1", "13", "25"]);
    let range = a
        .query(
            &apts,
            &[
                Condition::new("AptDate", Op::Gt, "2026-12-14"),
                Condition::new("AptDate", Op::Lte, "2026-12-16"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(range.len(), 20);
    let prefix = a
        .query(
            &apts,
            &[Condition::new("AptDate", Op::BeginsWith, "2026-12-1")],
        )
        .await
        .unwrap();
    assert_eq!(prefix.len(), 30);
    let numeric = a
        .query(&apts, &[Condition::new("PatNum", Op::Gte, 3)])
        .await
        .unwrap();
    assert_eq!(numeric.len(), 7);
    assert!(
        a.query(&apts, &[Condition::eq("AptDate", "2026-12-17")])
            .await
            .unwrap()
            .is_empty()
    );

    // Pages of 4 read the 10 records of a day once each.
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = a
            .query_page(
                &apts,
                &[Condition::eq("AptDate", "2026-12-15")],
                4,
                cursor.as_deref(),
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 4);
        seen.extend(page.items);
        pages += 1;
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (10, 3));
    assert_eq!(ids(&seen), ids(&day));
    // A cursor from another query, or none of ours, is refused.
    let other_day = a
        .query_page(&apts, &[Condition::eq("AptDate", "2026-12-14")], 4, None)
        .await
        .unwrap()
        .next
        .unwrap();
    for bad in [other_day.as_str(), "not-a-cursor!", "QQ"] {
        let r = a
            .query_page(
                &apts,
                &[Condition::eq("AptDate", "2026-12-15")],
                4,
                Some(bad),
            )
            .await;
        assert!(matches!(r, Err(DataError::Invalid(_))), "{bad}: {r:?}");
    }

    // A query no declared index answers is refused, not run as a scan.
    for filter in [
        vec![],
        vec![Condition::eq("AptStatus", "Scheduled")],
        vec![Condition::new("AptDate", Op::Ne, "2026-12-15")],
    ] {
        let r = a.query(&apts, &filter).await;
        assert!(
            matches!(r, Err(DataError::Undeclared(_))),
            "{filter:?}: {r:?}"
        );
        let e: switchboard::Error = r.unwrap_err().into();
        assert_eq!(e.status(), 500);
    }

    // Entries follow their record through update, conditional update, batch and delete.
    a.update(
        &apts,
        &id("1"),
        json!({"AptDate": "2026-12-20", "Note": "moved"}),
    )
    .await
    .unwrap();
    let moved = a
        .query(&apts, &[Condition::eq("AptDate", "2026-12-20")])
        .await
        .unwrap();
    assert_eq!(ids(&moved), ["1"]);
    assert_eq!(
        moved[0]["Note"], "moved",
        "the entry carries the record as written"
    );
    assert_eq!(
        a.query(&apts, &[Condition::eq("AptDate", "2026-12-15")])
            .await
            .unwrap()
            .len(),
        9
    );
    a.update(&apts, &id("4"), json!({"PatNum": null}))
        .await
        .unwrap();
    let stale = a
        .update_where(
            &apts,
            &id("4"),
            json!({"AptDate": "2026-12-21"}),
            &[Condition::eq("PatNum", 0)],
        )
        .await;
    assert!(
        matches!(stale, Err(DataError::Conflict { .. })),
        "{stale:?}"
    );
    a.batch_update(
        &apts,
        vec![
            (id("2"), json!({"PatNum": 40})),
            (id("5"), json!({"PatNum": 40})),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&a
            .query(&apts, &[Condition::eq("PatNum", 40)])
            .await
            .unwrap()),
        ["2", "5"]
    );
    assert!(a.delete(&apts, &id("2")).await.unwrap());
    assert!(
        !a.delete_where(&apts, &id("2"), &[Condition::eq("PatNum", 40)])
            .await
            .unwrap()
    );
    assert_eq!(
        ids(&a
            .query(&apts, &[Condition::eq("PatNum", 40)])
            .await
            .unwrap()),
        ["5"]
    );
    // Exactly one entry per record and indexed value, each naming its record.
    let by_date = entries(table.as_ref(), &acme, "AptDate").await;
    assert_eq!(by_date.len(), 29);
    let by_patient = entries(table.as_ref(), &acme, "PatNum").await;
    assert_eq!(
        by_patient.len(),
        28,
        "record 4 has no PatNum, record 2 is gone"
    );
    assert!(
        by_date
            .iter()
            .all(|(sk, id)| sk.ends_with(&format!("\u{1}{id}")))
    );

    // Zero is zero however it is written, and a value past DynamoDB's 1024-byte sort key is
    // keyed by its prefix and still found exactly.
    let negative_zero: serde_json::Value = serde_json::from_str("-0.0").unwrap();
    a.create(
        &apts,
        json!({"id": "z", "AptDate": "2027-01-01", "PatNum": negative_zero}),
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&a
            .query(
                &apts,
                &[
                    Condition::eq("PatNum", 0),
                    Condition::eq("AptDate", "2027-01-01")
                ]
            )
            .await
            .unwrap()),
        ["z"]
    );
    let long = "L".repeat(2000);
    for (n, v) in [("70", format!("{long}a")), ("71", format!("{long}b"))] {
        a.create(&apts, json!({"id": n, "AptDate": v, "PatNum": 70}))
            .await
            .unwrap();
    }
    assert_eq!(
        ids(&a
            .query(&apts, &[Condition::eq("AptDate", format!("{long}b"))])
            .await
            .unwrap()),
        ["71"]
    );
    // A batch update that moves indexed values of many records would not fit: refused whole.
    let moves: Vec<_> = (0..30)
        .filter(|n| ![1, 2, 4].contains(n))
        .map(|n| {
            (
                id(&n.to_string()),
                json!({"AptDate": "2027-02-02", "PatNum": 99}),
            )
        })
        .collect();
    let r = a.batch_update(&apts, moves).await;
    assert!(
        matches!(&r, Err(DataError::Invalid(m)) if m.contains("at most 100")),
        "{r:?}"
    );
    assert!(
        a.query(&apts, &[Condition::eq("PatNum", 99)])
            .await
            .unwrap()
            .is_empty()
    );
    for n in ["z", "70", "71"] {
        assert!(a.delete(&apts, &id(n)).await.unwrap());
    }

    // A batch that would overflow one transaction with its entries is refused whole.
    let big: Vec<_> = (100..140).map(|n| apt(n, "2026-12-30", 1)).collect();
    let r = a.batch_create(&apts, big).await;
    assert!(
        matches!(&r, Err(DataError::Invalid(m)) if m.contains("at most 33")),
        "{r:?}"
    );

    // Eight concurrent creates of one record: one lands, with exactly one set of entries.
    let racers = (0..8).map(|i| {
        let a = data.scoped(&acme, &booking, &appointment_indexes());
        let apts = apts.clone();
        tokio::spawn(async move {
            a.create(
                &apts,
                json!({"id": "race", "AptDate": "2026-12-31", "PatNum": i}),
            )
            .await
        })
    });
    let results = futures_join(racers).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .filter(|r| matches!(r, Err(DataError::Conflict { .. })))
        .count();
    assert_eq!((won, lost), (1, 7), "{results:?}");
    let race_entries: Vec<_> = entries(table.as_ref(), &acme, "PatNum")
        .await
        .into_iter()
        .filter(|(_, id)| id == "race")
        .collect();
    assert_eq!(race_entries.len(), 1, "{race_entries:?}");
    // Eight concurrent updates of it: each one that lands leaves one entry, the last one's.
    let updates = (0..8).map(|i| {
        let a = data.scoped(&acme, &booking, &appointment_indexes());
        let apts = apts.clone();
        tokio::spawn(async move {
            a.update(&apts, &id("race"), json!({"PatNum": 100 + i}))
                .await
        })
    });
    futures_join(updates).await;
    let stored = a.get(&apts, &id("race")).await.unwrap().unwrap();
    let race_entries: Vec<_> = entries(table.as_ref(), &acme, "PatNum")
        .await
        .into_iter()
        .filter(|(_, id)| id == "race")
        .collect();
    assert_eq!(race_entries.len(), 1, "{race_entries:?}");
    let found = a
        .query(&apts, &[Condition::eq("PatNum", stored["PatNum"].clone())])
        .await
        .unwrap();
    assert_eq!(ids(&found), ["race"]);

    // Another tenant's index entries are out of reach, and its own are separate.
    let other = data.scoped(&org("other"), &booking, &appointment_indexes());
    assert!(
        other
            .query(&apts, &[Condition::eq("AptDate", "2026-12-15")])
            .await
            .unwrap()
            .is_empty()
    );
    other.create(&apts, apt(1, "2026-12-15", 1)).await.unwrap();
    assert_eq!(
        other
            .query(&apts, &[Condition::eq("AptDate", "2026-12-15")])
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        a.query(&apts, &[Condition::eq("AptDate", "2026-12-15")])
            .await
            .unwrap()
            .len(),
        9
    );
    let cross = a
        .query_page(
            &apts,
            &[Condition::eq("AptDate", "2026-12-15")],
            100,
            Some(&other_day),
        )
        .await;
    assert!(matches!(cross, Err(DataError::Invalid(_))), "{cross:?}");

    let foreign = switchboard::data::ReindexCursor {
        entity: 0,
        field: 9,
        after: None,
        partition: String::new(),
    };
    let r = a.reindex(Some(foreign), 10).await;
    assert!(matches!(r, Err(DataError::Invalid(_))), "{r:?}");

    reindexing(&data, table.as_ref()).await;
    derived_keys(&data, table.as_ref()).await;
}

fn ticket_indexes() -> Indexes {
    serde_json::from_value(json!({"tickets": [
        "status",
        {"name": "contactPhone", "from": "/contact/phone", "normalize": "digits", "last": 10},
        {"name": "contactEmail", "from": "/contact/email", "normalize": "lowercase"},
    ]}))
    .unwrap()
}

/// Keys derived from a nested contact: tickets stored before the keys were declared are
/// found once reindexed, entries hold the normalised value and follow changes, a query's
/// value is normalised as the record's is, and another tenant's same number stays theirs.
async fn derived_keys(data: &BuiltinData, table: &dyn ItemStore) {
    let desk = org("desk");
    let support = PluginName::parse("support").unwrap();
    let tickets = entity("tickets");
    let plain = data.scoped(&desk, &support, &Indexes::default());
    let contacts = [
        json!({"phone": "+1 (555) 010-2000"}),
        json!({"phone": "555.010.2000", "email": " Ana@Example.COM "}),
        json!({"phone": "555-010-9999"}),
        json!({"email": "ana@example.com"}),
        json!({"phone": 5550102000u64}),
        json!({"phone": "n/a"}),
    ];
    for (n, contact) in contacts.iter().enumerate() {
        plain
            .create(
                &tickets,
                json!({"id": format!("{}", n + 1), "status": "open", "contact": contact}),
            )
            .await
            .unwrap();
    }
    let desk_other = org("desk-other");
    data.scoped(&desk_other, &support, &ticket_indexes())
        .create(
            &tickets,
            json!({"id": "1", "status": "open", "contact": {"phone": "5550102000"}}),
        )
        .await
        .unwrap();

    let t = data.scoped(&desk, &support, &ticket_indexes());
    let ids = |rs: Vec<serde_json::Value>| -> Vec<String> {
        let mut v: Vec<String> = rs
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let caller = [
        Condition::eq("contactPhone", "(555) 010 2000"),
        Condition::eq("status", "open"),
    ];
    // Written before the keys existed: not found until reindexed.
    assert!(t.query(&tickets, &caller).await.unwrap().is_empty());
    let mut at = None;
    loop {
        let step = t.reindex(at, 4).await.unwrap();
        at = step.next;
        if at.is_none() {
            break;
        }
    }
    // Not 5: its phone is a number, not a string; not 6: no digits.
    assert_eq!(ids(t.query(&tickets, &caller).await.unwrap()), ["1", "2"]);
    let by_mail = [Condition::eq("contactEmail", "ANA@example.com\n")];
    assert_eq!(ids(t.query(&tickets, &by_mail).await.unwrap()), ["2", "4"]);
    let pk = format!("ORG#{desk}#support#tickets~contactPhone");
    let sks: Vec<String> = switchboard::ports::query_all(table, &pk)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key.sk)
        .collect();
    assert_eq!(
        sks,
        [
            "s5550102000\u{1}1",
            "s5550102000\u{1}2",
            "s5550109999\u{1}3"
        ]
    );

    // A change of number moves the entry in the record's own write.
    t.update(
        &tickets,
        &id("1"),
        json!({"contact": {"phone": "+44 20 7946 0000"}}),
    )
    .await
    .unwrap();
    assert_eq!(ids(t.query(&tickets, &caller).await.unwrap()), ["2"]);
    let uk = [Condition::eq("contactPhone", "02079460000")];
    assert_eq!(ids(t.query(&tickets, &uk).await.unwrap()), ["1"]);
    // A conditional write's expectation on a key is normalised the same way.
    t.update_where(
        &tickets,
        &id("2"),
        json!({"status": "pending"}),
        &[Condition::eq("contactEmail", "ana@EXAMPLE.com")],
    )
    .await
    .unwrap();
    let r = t
        .update_where(
            &tickets,
            &id("2"),
            json!({"status": "closed"}),
            &[Condition::eq("contactEmail", "bob@example.com")],
        )
        .await;
    assert!(matches!(r, Err(DataError::Conflict { .. })), "{r:?}");
    assert!(t.query(&tickets, &caller).await.unwrap().is_empty());
    // Only ever the tenant's own entries.
    let theirs = data.scoped(&desk_other, &support, &ticket_indexes());
    assert_eq!(ids(theirs.query(&tickets, &caller).await.unwrap()), ["1"]);
}

fn org_b() -> OrgId {
    org("legacy-b")
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = vec![];
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}

/// Records written before their indexes were declared become findable; entries left stale
/// (record changed or deleted by a writer that kept no index) are removed; a second run
/// changes nothing; a run resumed from a printed cursor finishes the job.
async fn reindexing(data: &BuiltinData, table: &dyn ItemStore) {
    let org = org("legacy");
    let booking = PluginName::parse("booking").unwrap();
    let apts = entity("appointments");
    let plain = data.scoped(&org, &booking, &Indexes::default());
    for n in 0..25 {
        plain
            .create(&apts, apt(n, ["2026-12-15", "2026-12-16"][n % 2], 7))
            .await
            .unwrap();
    }
    let indexed = data.scoped(&org, &booking, &appointment_indexes());
    let day = [Condition::eq("AptDate", "2026-12-15")];
    assert!(indexed.query(&apts, &day).await.unwrap().is_empty());

    let run = |from: Option<switchboard::data::ReindexCursor>, steps: usize| {
        let indexed = data.scoped(&org, &booking, &appointment_indexes());
        async move {
            let mut at = from;
            let mut total = switchboard::data::ReindexStep::default();
            for _ in 0..steps {
                let step = indexed.reindex(at.clone(), 10).await.unwrap();
                total.records += step.records;
                total.written += step.written;
                total.removed += step.removed;
                at = step.next.clone();
                if at.is_none() {
                    break;
                }
            }
            (total, at)
        }
    };
    // Two steps, then "interrupted": resume from the token it would print.
    let (first, at) = run(None, 2).await;
    assert_eq!(first.records, 20);
    let token = at.expect("more to do").token();
    let resumed = switchboard::data::ReindexCursor::parse(&token).unwrap();
    // Only for the organization (and plugin, and manifest) it came from.
    let elsewhere = data.scoped(&org_b(), &booking, &appointment_indexes());
    let r = elsewhere.reindex(Some(resumed.clone()), 10).await;
    assert!(matches!(r, Err(DataError::Invalid(_))), "{r:?}");
    let (rest, at) = run(Some(resumed), 100).await;
    assert!(at.is_none());
    assert_eq!(first.records + rest.records, 25);
    assert_eq!(first.written + rest.written, 50);
    assert_eq!(indexed.query(&apts, &day).await.unwrap().len(), 13);

    // Changed and deleted behind the index's back: the next run repairs both.
    plain
        .update(&apts, &id("0"), json!({"AptDate": "2026-12-17"}))
        .await
        .unwrap();
    plain.delete(&apts, &id("2")).await.unwrap();
    // Until then the index still answers with what it last saw.
    assert_eq!(indexed.query(&apts, &day).await.unwrap().len(), 13);
    let (repair, _) = run(None, 100).await;
    // Record 0's old date entry, and both entries of record 2.
    assert_eq!(repair.removed, 3, "{repair:?}");
    assert_eq!(indexed.query(&apts, &day).await.unwrap().len(), 11);
    assert_eq!(
        indexed
            .query(&apts, &[Condition::eq("AptDate", "2026-12-17")])
            .await
            .unwrap()
            .len(),
        1
    );
    let (again, _) = run(None, 100).await;
    assert_eq!(again.removed, 0);
    assert_eq!(entries(table, &org, "AptDate").await.len(), 24);
}
