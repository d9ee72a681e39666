//! One module per subcommand, plus the data-source arguments and loader they share.

pub mod describe;
pub mod eval;
pub mod generate;
pub mod predict;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use datasets::Table;

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

/// Loads `data` (with its `target` column, else the last) or else the built-in `dataset`.
pub fn load_table(
    data: Option<&Path>,
    target: Option<&str>,
    dataset: Option<&str>,
) -> Result<Table> {
    match (data, dataset) {
        (Some(path), _) => {
            let opts = datasets::user_csv::CsvOptions {
                target: target.map(str::to_owned),
                ..Default::default()
            };
            datasets::user_csv::load_csv(path, &opts)
                .with_context(|| format!("loading data {}", path.display()))
        }
        (None, Some(name)) => datasets::uci::load_builtin(name)
            .with_context(|| format!("loading built-in dataset `{name}`")),
        (None, None) => anyhow::bail!("give --data <file> or --dataset <name>"),
    }
}
