//! The ClickHouse event store: connection, schema migrations, rows, and what is written per
//! batch of consumed events.

pub mod catalog;
pub mod gdpr;
pub mod history;
pub mod privacy;
pub mod retention;
pub mod rows;
pub mod schema;

pub use model::clickhouse_args::{ClickHouseArgs, Validation};

/// Connecting with the shared flags (the operator only passes them on).
pub trait Connect {
    /// A client for ad-hoc queries on the database, before (or without) [`connect`](Self::connect).
    fn query_client(&self) -> clickhouse::Client;
    /// Connects, creates the database if needed, and returns a client bound to it.
    fn connect(&self) -> impl Future<Output = anyhow::Result<clickhouse::Client>> + Send;
}

/// A client without row validation, bound to no database; no I/O.
fn base(args: &ClickHouseArgs) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(&args.clickhouse_url)
        .with_user(&args.clickhouse_user)
        .with_password(&args.clickhouse_password)
        .with_validation(false)
}

impl Connect for ClickHouseArgs {
    fn query_client(&self) -> clickhouse::Client {
        base(self).with_database(&self.clickhouse_database)
    }

    async fn connect(&self) -> anyhow::Result<clickhouse::Client> {
        let base = base(self);
        let validation = match self.clickhouse_validation {
            Validation::On => true,
            Validation::Off => false,
            Validation::Auto => {
                let version: String = base.query("SELECT version()").fetch_one().await?;
                let major: u32 = version
                    .split('.')
                    .next()
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(0);
                major >= 21
            }
        };
        base.query(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            quote_identifier(&self.clickhouse_database)
        ))
        .execute()
        .await?;
        Ok(base
            .with_database(&self.clickhouse_database)
            .with_validation(validation))
    }
}

/// Backquotes an identifier for SQL (database names come from configuration).
pub fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// Writes one batch: events first, then traits, memberships and the catalog. Every write is
/// idempotent under retry (replacing tables) except catalog counts, which are at-least-once.
pub async fn write_batch(
    client: &clickhouse::Client,
    rows: &rows::BatchRows,
    catalog: &[catalog::CatalogRow],
) -> clickhouse::error::Result<()> {
    insert_all(client, "events", &rows.events).await?;
    insert_all(client, "user_traits", &rows.user_traits).await?;
    insert_all(client, "account_traits", &rows.account_traits).await?;
    insert_all(client, "account_members", &rows.members).await?;
    insert_all(client, "event_catalog_input", catalog).await
}

/// One INSERT for all rows (the unit of commit the consumer acks after).
pub async fn insert_all<T>(
    client: &clickhouse::Client,
    table: &str,
    rows: &[T],
) -> clickhouse::error::Result<()>
where
    T: clickhouse::RowOwned + clickhouse::RowWrite,
{
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = client.insert::<T>(table).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}
