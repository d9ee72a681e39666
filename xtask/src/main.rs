//! Project automation: `cargo xtask <command>` (aliased in `.cargo/config.toml`).
//! Each subcommand lives in its own module; adding one is a variant here plus its module.

mod archive;
mod clients;
mod datasets_cmd;
mod fetch;
mod manifest;
mod verify;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "hyper project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Download, extract and verify the registry assets listed in assets.toml.
    Fetch(fetch::Args),
    /// List every dataset with its size, features, classes and source.
    Datasets(datasets_cmd::Args),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Fetch(a) => fetch::run(a),
        Command::Datasets(a) => datasets_cmd::run(a),
    }
}
