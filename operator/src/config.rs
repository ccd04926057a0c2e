//! The operator's command line: flags with environment fallbacks, every default documented in
//! the README. The evaluator settings are passed through to the Deployments it renders.

use clap::Args;
use model::clickhouse_args::ClickHouseArgs;
use std::net::SocketAddr;

#[derive(Debug, Clone, Args)]
pub struct RunConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "CS_OPERATOR_LISTEN", default_value = "127.0.0.1:9091")]
    pub listen: SocketAddr,
    /// Namespace the operator runs in: home of its Lease and of the write-keys Secret.
    #[arg(long, env = "CS_OPERATOR_NAMESPACE", default_value = "customersignal")]
    pub namespace: String,
    /// Leader-election identity; the pod name in a cluster (default: the host name).
    #[arg(long, env = "CS_POD_NAME")]
    pub pod_name: Option<String>,
    /// Lease that elects the one active replica.
    #[arg(long, env = "CS_LEASE_NAME", default_value = "customersignal-operator")]
    pub lease_name: String,
    /// Namespaces to watch, comma-separated; empty watches every namespace.
    #[arg(long, env = "CS_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
    /// Secret (in the operator's namespace) that ingest mounts: one `<ns>.<source>.json` key file
    /// per Source.
    #[arg(
        long,
        env = "CS_WRITE_KEYS_SECRET",
        default_value = "customersignal-write-keys"
    )]
    pub write_keys_secret: String,
    #[command(flatten)]
    pub evaluator: EvaluatorSettings,
    /// Log as JSON lines.
    #[arg(long, env = "CS_LOG_JSON")]
    pub log_json: bool,
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}

/// What every evaluator Deployment gets: its image and how to reach NATS and ClickHouse.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct EvaluatorSettings {
    /// Evaluator container image.
    #[arg(
        long,
        env = "CS_EVALUATOR_IMAGE",
        default_value = concat!("customersignal/evaluator:", env!("CARGO_PKG_VERSION"))
    )]
    pub evaluator_image: String,
    #[arg(
        long,
        env = "CS_EVALUATOR_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    pub evaluator_image_pull_policy: String,
    /// NATS URL, for the evaluators and for deleting a removed Source's consumer.
    #[arg(long, env = "CS_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// JetStream stream holding the events.
    #[arg(long, env = "CS_STREAM", default_value = "EVENTS")]
    pub stream: String,
    /// Passed to evaluators; the password through each evaluator's Secret (pods can't read
    /// Secrets of other namespaces).
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
}
