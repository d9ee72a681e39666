//! One module per subcommand, plus the data-source arguments and loader they share.

pub mod describe;
pub mod eval;
pub mod generate;
pub mod predict;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use datasets::Table;
use hyper_infer::{Backend, BackendOptions};

/// Where the table comes from: the user's CSV or a built-in dataset.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// The user's CSV (header row; the target is the last column unless --target).
    #[arg(long, conflicts_with = "dataset", required_unless_present = "dataset")]
    pub data: Option<PathBuf>,
    /// Target column of --data.
    #[arg(long, requires = "data")]
    pub target: Option<String>,
    /// A built-in tabular dataset instead of --data.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(datasets::uci::BUILTIN))]
    pub dataset: Option<String>,
}

impl DataArgs {
    pub fn load(&self) -> Result<Table> {
        load_table(
            self.data.as_deref(),
            self.target.as_deref(),
            self.dataset.as_deref(),
        )
    }
}

/// Which Requirement/Model Generator backend writes the requirement and metadata.
#[derive(Args, Debug)]
pub struct BackendArgs {
    /// Requirement/Model Generator backend.
    #[arg(long, value_enum, default_value_t = Backend::Profile)]
    pub backend: Backend,
    /// LLM settings [default: configs/llm.toml when present].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// LLM response cache [default: the config's cache_dir, else <data>/cache/llm].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Always ask the LLM, and store nothing.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// GGUF file for --backend local [default: <data>/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf].
    #[arg(long)]
    pub gguf: Option<PathBuf>,
}

impl BackendArgs {
    pub fn options(&self) -> BackendOptions {
        BackendOptions {
            backend: self.backend,
            config: self.config.clone(),
            cache_dir: self.cache_dir.clone(),
            no_cache: self.no_cache,
            gguf: self.gguf.clone(),
        }
    }
}

/// Prints `value` as one pretty JSON object on standard output.
pub fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Loads `data` (with its `target` column, else the last) or else the built-in `dataset`.
pub fn load_table(
    data: Option<&Path>,
    target: Option<&str>,
    dataset: Option<&str>,
) -> Result<Table> {
    if target.is_some() && data.is_none() {
        anyhow::bail!("--target names a column of --data; a built-in --dataset has its own target");
    }
    match (data, dataset) {
        (Some(path), _) => {
            let opts = datasets::user_csv::CsvOptions {
                target: target.map(str::to_owned),
                ..Default::default()
            };
            // Every reading error already starts with the file (and line): no second copy.
            Ok(datasets::user_csv::load_csv(path, &opts)?)
        }
        (None, Some(name)) => datasets::uci::load_builtin(name)
            .with_context(|| format!("loading built-in dataset `{name}`")),
        (None, None) => anyhow::bail!("give --data <file> or --dataset <name>"),
    }
}
