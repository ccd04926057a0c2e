//! Schema migrations and row round trips on the real ClickHouse: ClickHouse 18.16 reads
//! RowBinary by position, so each row type must match its table's columns exactly.

use chrono::{DateTime, Utc};
use evaluator::alerting::AlertEventRow;
use evaluator::store::catalog::CatalogRow;
use evaluator::store::insert_all;
use evaluator::store::rows::{AccountTraitRow, EventRow, MemberRow, UserTraitRow};
use evaluator::store::schema::{MIGRATIONS, migrate};
use std::fmt::Debug;

async fn database() -> (clickhouse::Client, String) {
    let (client, database) = tests::clickhouse_database("cs_store").await.unwrap();
    assert_eq!(
        migrate(&client).await.unwrap(),
        MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>()
    );
    (client, database)
}

async fn round_trip<T>(client: &clickhouse::Client, table: &str, rows: Vec<T>)
where
    T: clickhouse::RowOwned + clickhouse::RowWrite + clickhouse::RowRead + PartialEq + Debug,
{
    insert_all(client, table, &rows).await.unwrap();
    let back: Vec<T> = client
        .query(&format!("SELECT ?fields FROM {table}"))
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(back, rows, "{table}");
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

#[tokio::test]
async fn migrations_are_idempotent_and_recorded() {
    let (client, database) = database().await;
    assert_eq!(
        migrate(&client).await.unwrap(),
        Vec::<u32>::new(),
        "nothing left to apply"
    );
    let recorded: Vec<u32> = client
        .query("SELECT version FROM schema_migrations FINAL ORDER BY version")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(recorded, [1, 2]);
    // A crash after a change but before its ledger entry: applying again must work (the
    // added column is already there).
    client
        .query("DROP TABLE schema_migrations")
        .execute()
        .await
        .unwrap();
    assert_eq!(migrate(&client).await.unwrap(), [1, 2]);
    let columns: Vec<String> = client
        .query("SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'alert_events'")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(&columns[..3], ["tenant", "source", "rule"]);
    client
        .query(&format!("DROP DATABASE {database}"))
        .execute()
        .await
        .unwrap();
}

#[tokio::test]
async fn every_row_type_round_trips() {
    let (client, database) = database().await;
    round_trip(
        &client,
        "events",
        vec![EventRow {
            tenant: "acme".into(),
            source: "web".into(),
            stream_seq: 42,
            message_id: "m1".into(),
            kind: "track".into(),
            name: "checkout_completed".into(),
            user_id: "u1".into(),
            anonymous_id: "a1".into(),
            group_id: "g1".into(),
            session_id: "s1".into(),
            event_time: at(1_767_225_600_000),
            event_time_ms: 1_767_225_600_123,
            received_at: at(1_767_225_601_000),
            properties: r#"{"value":12.5}"#.into(),
            traits: "{}".into(),
            context: r#"{"ip":"203.0.113.0"}"#.into(),
        }],
    )
    .await;
    let trait_row = UserTraitRow {
        tenant: "acme".into(),
        user_id: "u1".into(),
        key: "plan".into(),
        value: "\"pro\"".into(),
        updated_ms: 7,
    };
    round_trip(&client, "user_traits", vec![trait_row]).await;
    let account = AccountTraitRow {
        tenant: "acme".into(),
        group_id: "g1".into(),
        key: "teamSize".into(),
        value: "12".into(),
        updated_ms: 7,
    };
    round_trip(&client, "account_traits", vec![account]).await;
    let member = MemberRow {
        tenant: "acme".into(),
        user_id: "u1".into(),
        group_id: "g1".into(),
        updated_ms: 7,
    };
    round_trip(&client, "account_members", vec![member]).await;

    // The catalog is written to a Null table and read back through its aggregating view.
    let seen = |s: i64| at(1_767_225_600_000 + s * 1000);
    let catalog = |first, last, events| CatalogRow {
        tenant: "acme".into(),
        source: "web".into(),
        event: "checkout_completed".into(),
        property: "value".into(),
        json_type: "number".into(),
        first_seen: seen(first),
        last_seen: seen(last),
        events,
    };
    insert_all(&client, "event_catalog_input", &[catalog(5, 9, 3)])
        .await
        .unwrap();
    insert_all(&client, "event_catalog_input", &[catalog(2, 6, 4)])
        .await
        .unwrap();
    let back: Vec<CatalogRow> = client
        .query("SELECT ?fields FROM event_catalog_view")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(back, [catalog(2, 9, 7)]);

    let alert = AlertEventRow {
        tenant: "acme".into(),
        source: "web".into(),
        rule: "big-spenders".into(),
        group_key: "g1".into(),
        transition_id: "trn_1".into(),
        state: "firing".into(),
        previous_state: "pending".into(),
        value: 5100.0,
        threshold: 5000.0,
        comparator: ">".into(),
        at: at(1_767_225_600_000),
        at_ms: 1_767_225_600_000,
        payload: "{}".into(),
    };
    round_trip(&client, "alert_events", vec![alert]).await;
    client
        .query(&format!("DROP DATABASE {database}"))
        .execute()
        .await
        .unwrap();
}
