//! How to reach ClickHouse (feature `service`): the flags the evaluator connects with and the
//! operator passes on to the evaluators it runs, defined once.

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Validation {
    /// On for ClickHouse 21+, off for older servers (18.16 lacks what validation needs).
    Auto,
    On,
    Off,
}

/// How to reach ClickHouse; shared by every subcommand that touches the store.
#[derive(Debug, Clone, PartialEq, Args)]
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

impl Validation {
    /// The flag value, as `--clickhouse-validation` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::On => "on",
            Self::Off => "off",
        }
    }
}
