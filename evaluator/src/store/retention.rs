//! Retention per Source: events older than the Source's `retentionDays` are deleted.
//!
//! Partitions (months) hold every tenant's and Source's events, so dropping a partition would
//! apply one retention to all of them; a mutation scoped to (tenant, source) is exact. It runs
//! only when there is something to delete.

use super::gdpr::wait_for_mutations;
use chrono::{DateTime, Utc};
use clickhouse::Client;

pub async fn apply(
    client: &Client,
    tenant: &str,
    source: &str,
    retention_days: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let cutoff = now - chrono::Duration::days(i64::from(retention_days));
    let cutoff = u32::try_from(cutoff.timestamp().max(0)).unwrap_or(0);
    let filter = "tenant = ? AND source = ? AND event_time < toDateTime(?)";
    let expired: u64 = client
        .query(&format!("SELECT count() FROM events WHERE {filter}"))
        .bind(tenant)
        .bind(source)
        .bind(cutoff)
        .fetch_one()
        .await?;
    if expired > 0 {
        client
            .query(&format!("ALTER TABLE events DELETE WHERE {filter}"))
            .bind(tenant)
            .bind(source)
            .bind(cutoff)
            .execute()
            .await?;
        wait_for_mutations(client, "events").await?;
        tracing::info!(
            tenant,
            source,
            expired,
            retention_days,
            "expired events deleted"
        );
    }
    Ok(expired)
}
