//! Ingest's configuration: clap flags, each with an environment fallback and a default
//! (README, "Configuration").

use clap::Parser;
use model::intake::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(name = "ingest", version, about = "CustomerSignal event intake")]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "CS_INGEST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// NATS server URL.
    #[arg(long, env = "CS_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// JetStream stream holding all events (subjects `events.>`).
    #[arg(long, env = "CS_STREAM", default_value = "EVENTS")]
    pub stream: String,

    /// How long the stream keeps events (the evaluator stores them in ClickHouse long before).
    #[arg(long, env = "CS_STREAM_MAX_AGE", default_value = "7d", value_parser = humantime::parse_duration)]
    pub stream_max_age: Duration,

    /// Most bytes the stream keeps; -1 for no limit.
    #[arg(long, env = "CS_STREAM_MAX_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub stream_max_bytes: i64,

    /// Window in which a repeated `Nats-Msg-Id` (tenant/source/messageId) is a duplicate.
    #[arg(long, env = "CS_DUPLICATE_WINDOW", default_value = "2m", value_parser = humantime::parse_duration)]
    pub duplicate_window: Duration,

    /// Stream replicas (1 for a single NATS server).
    #[arg(long, env = "CS_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,

    /// Write-key file (JSON, see model::keyring), or a directory of them: the operator's
    /// write-keys Secret mounted as a volume. Re-read on change.
    #[arg(long, env = "CS_KEYS_FILE", conflicts_with = "sources")]
    pub keys_file: Option<PathBuf>,

    /// Standalone: file or directory of Source YAML whose write keys are accepted.
    #[arg(long, env = "CS_SOURCES")]
    pub sources: Option<PathBuf>,

    /// Standalone: directory of `<namespace>/<secret>/<key>` files the Sources' write keys
    /// reference (environment variables `CS_SECRET_…` otherwise).
    #[arg(long, env = "CS_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,

    /// How often keys and tracking plans are re-read.
    #[arg(long, env = "CS_RELOAD_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,

    /// Requests per second each write key may make (sustained).
    #[arg(long, env = "CS_RATE_LIMIT_RPS", default_value_t = 200)]
    pub rate_limit_rps: u32,

    /// Requests a write key may make in a burst above the sustained rate.
    #[arg(long, env = "CS_RATE_LIMIT_BURST", default_value_t = 400)]
    pub rate_limit_burst: u32,

    /// Events published but not yet acked, over all requests; past it requests get 503.
    #[arg(long, env = "CS_MAX_INFLIGHT_EVENTS", default_value_t = 20_000)]
    pub max_inflight_events: usize,

    /// How long to wait for JetStream's acks before answering 503.
    #[arg(long, env = "CS_PUBLISH_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub publish_timeout: Duration,

    /// Largest request body after decompression, in bytes.
    #[arg(long, env = "CS_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,

    /// Largest single event, in bytes.
    #[arg(long, env = "CS_MAX_EVENT_BYTES", default_value_t = Limits::default().max_event_bytes)]
    pub max_event_bytes: usize,

    /// Most events in one batch.
    #[arg(long, env = "CS_MAX_BATCH_LEN", default_value_t = Limits::default().max_batch_len)]
    pub max_batch_len: usize,

    /// Log as JSON lines.
    #[arg(long, env = "CS_LOG_JSON")]
    pub log_json: bool,

    /// Log filter, `RUST_LOG` syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}

impl Config {
    pub fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: self.max_body_bytes,
            max_event_bytes: self.max_event_bytes,
            max_batch_len: self.max_batch_len,
            ..Limits::default()
        }
    }
}
