//! Versioned, idempotent schema migrations, recorded in `schema_migrations`.
//!
//! SQL here runs on ClickHouse 18.16 and on modern ClickHouse alike: no DateTime64 (event
//! times are `DateTime` plus `UInt64` milliseconds), no JSON/Map types (JSON text in `String`
//! columns, read with `visitParamExtract*`), no TTL (retention by mutation), no LowCardinality.

use clickhouse::Client;

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    /// Columns added to existing tables, `(table, column, definition)`: skipped when present,
    /// since ClickHouse 18.16 has no `ADD COLUMN IF NOT EXISTS` and a crash may come between
    /// the change and the ledger entry.
    pub add_columns: &'static [(&'static str, &'static str, &'static str)],
    pub statements: &'static [&'static str],
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events, traits, catalog, alert history",
        add_columns: &[],
        statements: &[
            // One row per event. Redelivery after a crash can insert an event twice: identical
            // sort keys collapse in merges (ReplacingMergeTree), and `FINAL` collapses them at
            // query time, so `SELECT count() FROM events FINAL` counts each event once.
            "CREATE TABLE IF NOT EXISTS events (
            tenant String, source String, stream_seq UInt64, message_id String,
            kind String, name String, user_id String, anonymous_id String, group_id String,
            session_id String, event_time DateTime, event_time_ms UInt64, received_at DateTime,
            properties String, traits String, context String
        ) ENGINE = ReplacingMergeTree(stream_seq)
        PARTITION BY toYYYYMM(event_time)
        ORDER BY (tenant, source, name, event_time, message_id)",
            // Latest value of each identify trait per user: one row per (user, trait) version.
            "CREATE TABLE IF NOT EXISTS user_traits (
            tenant String, user_id String, key String, value String, updated_ms UInt64
        ) ENGINE = ReplacingMergeTree(updated_ms) ORDER BY (tenant, user_id, key)",
            "CREATE TABLE IF NOT EXISTS account_traits (
            tenant String, group_id String, key String, value String, updated_ms UInt64
        ) ENGINE = ReplacingMergeTree(updated_ms) ORDER BY (tenant, group_id, key)",
            // Which accounts a user joined (group calls): a track event without a groupId counts
            // for its user's latest account.
            "CREATE TABLE IF NOT EXISTS account_members (
            tenant String, user_id String, group_id String, updated_ms UInt64
        ) ENGINE = ReplacingMergeTree(updated_ms) ORDER BY (tenant, user_id, group_id)",
            // The catalog: the evaluator writes one pre-aggregated row per (event, property,
            // type) and batch into a Null table; the view folds them into aggregate states.
            "CREATE TABLE IF NOT EXISTS event_catalog (
            tenant String, source String, event String, property String, json_type String,
            first_seen AggregateFunction(min, DateTime),
            last_seen AggregateFunction(max, DateTime),
            events AggregateFunction(sum, UInt64)
        ) ENGINE = AggregatingMergeTree() ORDER BY (tenant, source, event, property, json_type)",
            "CREATE TABLE IF NOT EXISTS event_catalog_input (
            tenant String, source String, event String, property String, json_type String,
            first_seen DateTime, last_seen DateTime, events UInt64
        ) ENGINE = Null",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS event_catalog_mv TO event_catalog AS
            SELECT tenant, source, event, property, json_type,
                   minState(first_seen) AS first_seen, maxState(last_seen) AS last_seen,
                   sumState(events) AS events
            FROM event_catalog_input
            GROUP BY tenant, source, event, property, json_type",
            "CREATE VIEW IF NOT EXISTS event_catalog_view AS
            SELECT tenant, source, event, property, json_type,
                   minMerge(first_seen) AS first_seen, maxMerge(last_seen) AS last_seen,
                   sumMerge(events) AS events
            FROM event_catalog
            GROUP BY tenant, source, event, property, json_type",
            // Alert transitions, written by rule evaluation; what Grafana shows as history.
            "CREATE TABLE IF NOT EXISTS alert_events (
            tenant String, rule String, group_key String, transition_id String,
            state String, previous_state String, value Float64, threshold Float64,
            comparator String, at DateTime, at_ms UInt64, payload String
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMM(at)
        ORDER BY (tenant, rule, at, transition_id)",
        ],
    },
    Migration {
        version: 2,
        name: "alert history per source",
        // So dashboards filter alerts by source as they do events; older rows say ''.
        add_columns: &[("alert_events", "source", "String DEFAULT '' AFTER tenant")],
        statements: &[],
    },
];

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32, name String, applied_at DateTime
) ENGINE = ReplacingMergeTree() ORDER BY version";

/// Applies every migration not yet recorded. Statements are idempotent, so two evaluators
/// starting at once (or a crash between a statement and the record) do no harm.
pub async fn migrate(client: &Client) -> anyhow::Result<Vec<u32>> {
    client.query(LEDGER).execute().await?;
    let applied: Vec<u32> = client
        .query("SELECT DISTINCT version FROM schema_migrations")
        .fetch_all()
        .await?;
    let mut newly = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        for (table, column, definition) in migration.add_columns {
            let present: u64 = client
                .query("SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = ? AND name = ?")
                .bind(*table)
                .bind(*column)
                .fetch_one()
                .await?;
            if present == 0 {
                client
                    .query(&format!(
                        "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                    ))
                    .execute()
                    .await?;
            }
        }
        for statement in migration.statements {
            client.query(statement).execute().await?;
        }
        client
            .query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())")
            .bind(migration.version)
            .bind(migration.name)
            .execute()
            .await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "schema migration applied"
        );
        newly.push(migration.version);
    }
    Ok(newly)
}
