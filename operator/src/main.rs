//! The CustomerSignal operator binary: `run` the controller, or print the CRDs.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reconcile Sources and AlertRules (in the cluster of the kubeconfig or service account).
    Run(Box<operator::config::RunConfig>),
    /// Print what the operator would apply for a file or directory of Source and AlertRule
    /// YAML, without a cluster (secrets resolve as in standalone mode).
    Render {
        /// File or directory of multi-document YAML.
        #[arg(long, env = "CS_CONFIG", default_value = "examples")]
        config: PathBuf,
        /// Standalone secrets directory (`<namespace>/<name>/<key>` files).
        #[arg(long, env = "CS_SECRETS_DIR")]
        secrets_dir: Option<PathBuf>,
        #[arg(long, env = "CS_OPERATOR_NAMESPACE", default_value = "customersignal")]
        namespace: String,
        #[arg(
            long,
            env = "CS_WRITE_KEYS_SECRET",
            default_value = "customersignal-write-keys"
        )]
        write_keys_secret: String,
        #[command(flatten)]
        evaluator: Box<operator::config::EvaluatorSettings>,
    },
    /// Print the CustomResourceDefinitions as YAML, or write one file each into a directory.
    Crds {
        /// Directory to write `<plural>.<group>.yaml` files into (e.g. `crds`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(config) => run(*config)?,
        Command::Render {
            config,
            secrets_dir,
            namespace,
            write_keys_secret,
            evaluator,
        } => {
            let catalog = model::standalone::Catalog::load(&config);
            for error in &catalog.errors {
                eprintln!("skipped: {error}");
            }
            let secrets = model::secrets::StandaloneSecrets::new(secrets_dir);
            let (text, missing) = operator::render::render(
                &catalog,
                &evaluator,
                &secrets,
                &namespace,
                &write_keys_secret,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            for message in missing {
                eprintln!("left out: {message}");
            }
            print!("{text}");
        }
        Command::Crds { out: None } => {
            for (_, crd) in model::resources::crds() {
                print!("{}", model::resources::crd_yaml(&crd));
            }
        }
        Command::Crds { out: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, crd) in model::resources::crds() {
                let path = dir.join(file);
                std::fs::write(&path, model::resources::crd_yaml(&crd))
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn run(config: operator::config::RunConfig) -> anyhow::Result<()> {
    model::service::init_tracing(config.log_json, &config.log_level);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let client = kube::Client::try_default()
        .await
        .context("cannot configure the Kubernetes client (no kubeconfig or service account)")?;
    operator::run(config, client, listener, operator::shutdown_signal()).await
}
