//! Project automation: `cargo xtask <command>` (aliased in `.cargo/config.toml`).
//! Each subcommand lives in its own module; adding one is a variant here plus its module.

mod any_table;
mod archive;
mod clients;
mod cv;
mod datasets_cmd;
mod fetch;
mod fuzz;
mod lora_seeds;
mod manifest;
mod nlp;
mod pretrain;
mod reproduce;
mod results;
mod seeds;
mod text_any;
mod verify;

use std::process::ExitCode;

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
    /// Meta-train a Parameter Generator (Algorithm 1): `pretrain tabular|tabular-any|nlp`.
    Pretrain(pretrain::Args),
    /// Measure and print a paper table: `reproduce tabular`.
    Reproduce(reproduce::Args),
    /// Property-based fuzzing of every parser: an error or a result, never a panic.
    Fuzz(fuzz::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    hyper_core::runtime::init();
    let result = match Cli::parse().command {
        Command::Fetch(a) => fetch::run(a),
        Command::Datasets(a) => datasets_cmd::run(a),
        Command::Pretrain(a) => pretrain::run(a),
        Command::Reproduce(a) => reproduce::run(a),
        Command::Fuzz(a) => fuzz::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
