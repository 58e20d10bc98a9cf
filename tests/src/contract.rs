//! Contract suites. Each runs unchanged against the embedded store and DynamoDB (moto): if an
//! adapter passes these, the registry and the built-in data adapter behave the same on it.

use std::sync::Arc;

use serde_json::json;
use switchboard::data::BuiltinData;
use switchboard::manifest::CompiledManifest;
use switchboard::ports::{
    Condition, DataAdapter, DataError, ItemStore, Key, Op, Precondition, StoreError, Write,
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
        extra: Default::default(),
    };
    assert_eq!(reg.put_profile(&acme, &profile, None).await.unwrap(), 1);
    assert_eq!(
        reg.get_profile(&acme).await.unwrap().unwrap().value,
        profile
    );
    let twilio = Channel::parse("twilio").unwrap();
    let chan = ChannelConfig {
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

/// The built-in data adapter over one table.
pub async fn data_adapter(table: Arc<dyn ItemStore>) {
    let data = BuiltinData::new(table);
    let acme = org("acme");
    let plugin = PluginName::parse("booking").unwrap();
    let a = data.scoped(&acme, &plugin);
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
    let other = data.scoped(&org("other"), plugin);
    assert_eq!(other.get(&patients, &id("1")).await.unwrap(), None);
    assert!(
        other
            .list(&patients, 100, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(other.query(&patients, &[]).await.unwrap().is_empty());
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
    let crm = data.scoped(acme, &PluginName::parse("crm").unwrap());
    assert_eq!(crm.get(&patients, &id("1")).await.unwrap(), None);

    let acme_view = data.scoped(acme, plugin);
    assert_eq!(
        acme_view.get(&patients, &id("1")).await.unwrap().unwrap()["FName"],
        "Ada"
    );
}
