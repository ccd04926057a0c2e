//! Deleting everything stored about one user of one tenant (GDPR erasure): their events
//! (as user or anonymous id), traits and account memberships.

use clickhouse::Client;
use std::time::Duration;

/// What the erasure removed, counted before the mutations ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    pub events: u64,
    pub user_traits: u64,
    pub account_members: u64,
}

pub async fn delete_user(client: &Client, tenant: &str, user_id: &str) -> anyhow::Result<Erasure> {
    // (table, filter, how many times the filter names the user)
    let targets = [
        (
            "events",
            "tenant = ? AND (user_id = ? OR anonymous_id = ?)",
            2,
        ),
        ("user_traits", "tenant = ? AND user_id = ?", 1),
        ("account_members", "tenant = ? AND user_id = ?", 1),
    ];
    let bound = |sql: String, user_binds: usize| {
        (0..user_binds).fold(client.query(&sql).bind(tenant), |query, _| {
            query.bind(user_id)
        })
    };
    let mut counts = [0u64; 3];
    for (i, (table, filter, user_binds)) in targets.iter().enumerate() {
        counts[i] = bound(
            format!("SELECT count() FROM {table} WHERE {filter}"),
            *user_binds,
        )
        .fetch_one()
        .await?;
        if counts[i] > 0 {
            bound(
                format!("ALTER TABLE {table} DELETE WHERE {filter}"),
                *user_binds,
            )
            .execute()
            .await?;
        }
    }
    for (table, _, _) in targets {
        wait_for_mutations(client, table).await?;
    }
    Ok(Erasure {
        events: counts[0],
        user_traits: counts[1],
        account_members: counts[2],
    })
}

/// Mutations run in the background; wait until none is pending on `table`.
pub async fn wait_for_mutations(client: &Client, table: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        let pending: u64 = client
            .query("SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = ? AND is_done = 0")
            .bind(table)
            .fetch_one()
            .await?;
        if pending == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("mutations on {table} did not finish within 60 s")
}
