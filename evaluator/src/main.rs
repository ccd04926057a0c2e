//! The CustomerSignal evaluator. `check` validates standalone rule and source YAML (what a
//! GitOps pipeline runs before `kubectl apply`); the consumer, store and alerting build on it.

mod check;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load Sources and AlertRules from a YAML file or directory, print them, and report every
    /// invalid document. Exits 1 when any document is invalid.
    Check {
        /// File or directory of multi-document YAML (the files `kubectl apply` takes).
        #[arg(long, env = "CS_RULES", default_value = "examples")]
        rules: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { rules } => check::run(&rules),
    }
}
