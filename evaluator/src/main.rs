use clap::{Parser, Subcommand};
use evaluator::config::RunConfig;
use evaluator::store::{ClickHouseArgs, Connect};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "CustomerSignal evaluator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume every configured Source's events into ClickHouse.
    Run(Box<RunConfig>),
    /// Load Sources and AlertRules from a YAML file or directory, print them, and report every
    /// invalid document. Exits 1 when any document is invalid.
    Check {
        /// File or directory of multi-document YAML (the files `kubectl apply` takes).
        #[arg(long, env = "CS_RULES", default_value = "examples")]
        rules: PathBuf,
    },
    /// Run the rules over stored history and print when each would have fired and resolved.
    /// Sends nothing.
    Backtest {
        /// File or directory of Source and AlertRule YAML.
        #[arg(long, env = "CS_RULES")]
        rules: PathBuf,
        /// Start of the simulated period (RFC 3339).
        #[arg(long)]
        from: chrono::DateTime<chrono::Utc>,
        /// End of the simulated period (RFC 3339); default now.
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        clickhouse: ClickHouseArgs,
    },
    /// Erase everything stored about one user of one tenant (GDPR): events, traits, account
    /// memberships.
    DeleteUser {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user_id: String,
        #[command(flatten)]
        clickhouse: ClickHouseArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { rules } => evaluator::check::run(&rules),
        Command::Run(config) => {
            model::service::init_tracing(config.log_json, &config.log_level);
            let result = async {
                let listener = tokio::net::TcpListener::bind(config.listen).await?;
                evaluator::run(*config, listener, model::service::shutdown_signal()).await
            };
            report(result.await)
        }
        Command::Backtest {
            rules,
            from,
            to,
            clickhouse,
        } => {
            let result = async {
                let catalog = model::standalone::Catalog::load(&rules);
                for error in &catalog.errors {
                    eprintln!("warning: {error}");
                }
                let client = clickhouse.connect().await?;
                let to = to.unwrap_or_else(chrono::Utc::now);
                let millis = |d: chrono::DateTime<chrono::Utc>| {
                    u64::try_from(d.timestamp_millis()).unwrap_or(0)
                };
                let findings =
                    evaluator::backtest::run(&client, &catalog, millis(from), millis(to)).await?;
                print!("{}", evaluator::backtest::render(&findings));
                anyhow::Ok(())
            };
            report(result.await)
        }
        Command::DeleteUser {
            tenant,
            user_id,
            clickhouse,
        } => {
            let result = async {
                let client = clickhouse.connect().await?;
                let erasure =
                    evaluator::store::gdpr::delete_user(&client, &tenant, &user_id).await?;
                println!(
                    "{}",
                    serde_json::json!({"tenant": tenant, "userId": user_id, "deleted": erasure})
                );
                anyhow::Ok(())
            };
            report(result.await)
        }
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
