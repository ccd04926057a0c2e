//! `evaluator run` configuration: clap flags with environment fallbacks (README,
//! "Configuration").

use crate::store::ClickHouseArgs;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct RunConfig {
    /// File or directory of Source and AlertRule YAML (standalone), or the mounted ConfigMap.
    #[arg(long, env = "CS_CONFIG", default_value = "examples")]
    pub config: PathBuf,

    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    /// NATS server URL.
    #[arg(long, env = "CS_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Stream ingest publishes events to.
    #[arg(long, env = "CS_STREAM", default_value = "EVENTS")]
    pub stream: String,

    /// Stream for messages that cannot be stored (subjects `deadletter.>`).
    #[arg(long, env = "CS_DEAD_LETTER_STREAM", default_value = "DEADLETTER")]
    pub dead_letter_stream: String,

    /// Address of `/healthz`, `/readyz`, `/metrics` and the admin API.
    #[arg(long, env = "CS_EVALUATOR_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,

    /// Bearer token for the admin API (user deletion); the API is off without one.
    #[arg(long, env = "CS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Events per ClickHouse insert.
    #[arg(long, env = "CS_BATCH_ROWS", default_value_t = 10_000)]
    pub batch_rows: usize,

    /// Longest an event waits for its batch to be written.
    #[arg(long, env = "CS_BATCH_INTERVAL", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub batch_interval: Duration,

    /// How long JetStream waits for an ack before redelivering (the delay after a crash).
    #[arg(long, env = "CS_ACK_WAIT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub ack_wait: Duration,

    /// Deliveries of a message that cannot be stored before it is dead-lettered.
    #[arg(long, env = "CS_MAX_DELIVER", default_value_t = 5)]
    pub max_deliver: i64,

    /// Directory of `<namespace>/<secret>/<key>` files holding webhook signing secrets
    /// (mounted Secrets in a cluster); environment variables `CS_SECRET_…` otherwise.
    #[arg(long, env = "CS_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,

    /// How often the rule configuration is re-read (changed rules apply without a restart).
    #[arg(long, env = "CS_RELOAD_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,

    /// Truncate `context.ip` (IPv4 to /24, IPv6 to /48) before storing.
    #[arg(long, env = "CS_TRUNCATE_IP")]
    pub truncate_ip: bool,

    /// How often expired events are deleted per Source retention.
    #[arg(long, env = "CS_RETENTION_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retention_interval: Duration,

    /// In a cluster: write each rule's live alert state into its AlertRule status (the
    /// operator sets this; needs the pod's service account).
    #[arg(long, env = "CS_REPORT_STATUS")]
    pub report_status: bool,

    /// How often alert state is reported to AlertRule statuses (changes only).
    #[arg(long, env = "CS_REPORT_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub report_interval: Duration,

    /// Profiles a Source's rule engine keeps in memory: users, accounts and memberships, each
    /// (least used evicted first; a miss is read from ClickHouse).
    #[arg(long, env = "CS_TRAIT_CACHE_CAPACITY", default_value_t = crate::traits::DEFAULT_CAPACITY)]
    pub trait_cache_capacity: usize,

    /// Log as JSON lines.
    #[arg(long, env = "CS_LOG_JSON")]
    pub log_json: bool,

    /// Log filter, `RUST_LOG` syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}
