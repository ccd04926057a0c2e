//! The ClickHouse event store: connection, schema migrations, rows, and what is written per
//! batch of consumed events.

pub mod catalog;
pub mod gdpr;
pub mod history;
pub mod privacy;
pub mod retention;
pub mod rows;
pub mod schema;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Validation {
    /// On for ClickHouse 21+, off for older servers (18.16 lacks what validation needs).
    Auto,
    On,
    Off,
}

/// How to reach ClickHouse; shared by every subcommand that touches the store.
#[derive(Debug, Clone, Args)]
pub struct ClickHouseArgs {
    /// ClickHouse HTTP URL.
    #[arg(
        long,
        env = "CS_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    pub clickhouse_url: String,
    /// Database holding CustomerSignal's tables (created if missing).
    #[arg(long, env = "CS_CLICKHOUSE_DATABASE", default_value = "customersignal")]
    pub clickhouse_database: String,
    #[arg(long, env = "CS_CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,
    #[arg(
        long,
        env = "CS_CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub clickhouse_password: String,
    /// Row-type validation by the clickhouse crate.
    #[arg(
        long,
        env = "CS_CLICKHOUSE_VALIDATION",
        value_enum,
        default_value = "auto"
    )]
    pub clickhouse_validation: Validation,
}

impl ClickHouseArgs {
    /// A client without row validation, bound to no database; no I/O.
    fn base(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.clickhouse_url)
            .with_user(&self.clickhouse_user)
            .with_password(&self.clickhouse_password)
            .with_validation(false)
    }

    /// A client for ad-hoc queries on the database, before (or without) [`connect`](Self::connect).
    pub fn query_client(&self) -> clickhouse::Client {
        self.base().with_database(&self.clickhouse_database)
    }

    /// Connects, creates the database if needed, and returns a client bound to it.
    pub async fn connect(&self) -> anyhow::Result<clickhouse::Client> {
        let base = self.base();
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
