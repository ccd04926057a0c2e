//! The CustomerSignal operator. For now it generates the CRDs; the controller that reconciles
//! Sources and AlertRules into evaluator Deployments builds on the same types.

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
    /// Print the CustomResourceDefinitions as YAML, or write one file each into a directory.
    Crds {
        /// Directory to write `<plural>.<group>.yaml` files into (e.g. `crds`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
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
