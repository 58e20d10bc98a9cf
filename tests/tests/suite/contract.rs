use switchboard_tests::{contract, embedded_tables, moto_tables};

#[tokio::test]
async fn registry_contract_embedded() {
    contract::registry(embedded_tables().registry).await;
}

#[tokio::test]
async fn registry_contract_dynamodb() {
    contract::registry(moto_tables().await.registry).await;
}

#[tokio::test]
async fn item_store_contract_embedded() {
    contract::item_store(embedded_tables().data).await;
}

#[tokio::test]
async fn item_store_contract_dynamodb() {
    contract::item_store(moto_tables().await.data).await;
}

/// DynamoDB answers a failed condition with the item as it was (the store asks for it),
/// on a create and on a versioned write alike: the rate limiter retries from it.
#[tokio::test]
async fn a_dynamodb_conflict_carries_the_item_it_found() {
    use serde_json::json;
    use switchboard::ports::{Key, Precondition, StoreError};
    let table = moto_tables().await.data;
    let key = Key::new(switchboard_tests::unique("RATE#c"), "gcra");
    let at = 4_102_444_800;
    let v = table
        .put_expiring(&key, &json!({"tat_ns": 7}), Precondition::NotExists, at)
        .await
        .unwrap();
    for pre in [Precondition::NotExists, Precondition::Version(v + 5)] {
        match table
            .put_expiring(&key, &json!({"tat_ns": 9}), pre, at)
            .await
        {
            Err(StoreError::Conflict { current, found, .. }) => {
                assert_eq!(current, Some(v), "{pre:?}");
                assert_eq!(found.as_deref(), Some(&json!({"tat_ns": 7})), "{pre:?}");
            }
            other => panic!("{pre:?} must conflict: {other:?}"),
        }
    }
}

#[tokio::test]
async fn item_store_ranges_embedded() {
    contract::item_store_ranges(embedded_tables().data).await;
}

#[tokio::test]
async fn item_store_ranges_dynamodb() {
    contract::item_store_ranges(moto_tables().await.data).await;
}

#[tokio::test]
async fn indexed_queries_embedded() {
    contract::indexed_queries(embedded_tables().data).await;
}

#[tokio::test]
async fn indexed_queries_dynamodb() {
    contract::indexed_queries(moto_tables().await.data).await;
}

#[tokio::test]
async fn data_adapter_contract_embedded() {
    contract::data_adapter(embedded_tables().data).await;
}

#[tokio::test]
async fn data_adapter_contract_dynamodb() {
    contract::data_adapter(moto_tables().await.data).await;
}

#[tokio::test]
async fn embedded_store_survives_a_restart() {
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-restart"));
    let path = dir.join("switchboard.db");
    let key = switchboard::ports::Key::new("P", "S");
    {
        let db = switchboard_embedded::Embedded::open(&path).unwrap();
        db.data_table()
            .put(
                &key,
                &serde_json::json!({"kept": true}),
                switchboard::ports::Precondition::None,
            )
            .await
            .unwrap();
    }
    let db = switchboard_embedded::Embedded::open(&path).unwrap();
    let item = db.data_table().get(&key).await.unwrap().unwrap();
    assert_eq!(item.data["kept"], true);
    std::fs::remove_dir_all(&dir).unwrap();
}
