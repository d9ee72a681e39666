//! `hyper-infer`: the user-facing binary. One clap subcommand per pipeline step, each in
//! its own module under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "hyper-infer",
    version,
    about = "Data + a sentence → a working model in one pass"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Data (+ optional description) → User Requirement sentence and Metadata JSON.
    Describe(cli::describe::DescribeArgs),
    /// Data (+ description) → a generated model in one forward pass, written to --out.
    Generate(cli::generate::GenerateArgs),
    /// Accuracy of a generated model on a table.
    Eval(cli::eval::EvalArgs),
    /// Per-class probabilities and predictions of a generated model for every row of a CSV.
    Predict(cli::predict::PredictArgs),
    /// A generated model as one standard file (ONNX) for other runtimes.
    Export(cli::export::ExportArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    hyper_core::runtime::init();
    restore_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Describe(args) => cli::describe::run(&args),
        Command::Generate(args) => cli::generate::run(&args),
        Command::Eval(args) => cli::eval::run(&args),
        Command::Predict(args) => cli::predict::run(&args),
        Command::Export(args) => cli::export::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `hyper-infer eval --json | head` must end quietly when the reader goes away, as other
/// command-line tools do, not panic in `println!`: Rust ignores SIGPIPE by default, so it
/// is restored. Outputs are never half-written by it: model directories and `--out` files
/// are staged and renamed, and a killed write is cleaned up by the next run.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any thread is spawned.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
