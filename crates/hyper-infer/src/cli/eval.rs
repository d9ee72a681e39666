//! `hyper-infer eval`: accuracy of a generated model directory on a table.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::{Args, ValueEnum};
use datasets::preprocess::split_indices;
use hyper_train::meta::evaluate;
use hyper_train::{Data, ModelDir};
use target_models::mlp::Mlp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    All,
    Train,
    Val,
    Test,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A directory written by `hyper-infer generate`.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, conflicts_with = "dataset", required_unless_present = "dataset")]
    pub data: Option<PathBuf>,
    /// Target column of --data [default: the model's target column].
    #[arg(long, requires = "data")]
    pub target: Option<String>,
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(datasets::uci::BUILTIN))]
    pub dataset: Option<String>,
    /// Rows to score: the seeded 60/10/30 split the model's preprocessing came from, or all.
    #[arg(long, value_enum, default_value_t = SplitArg::All)]
    pub split: SplitArg,
}

/// Loads the model dir and the table, checks the columns, and encodes the rows.
pub fn prepare(
    model: &std::path::Path,
    table: &datasets::Table,
    dev: &Device,
) -> Result<(ModelDir, Vec<f32>)> {
    let m = ModelDir::load(model, dev)?;
    m.check_columns(table)?;
    let x = m
        .preprocessor
        .transform_table(table)
        .with_context(|| format!("encoding {} with the model's preprocessing", table.source))?;
    Ok((m, x))
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let dev = Device::Cpu;
    let m0 = ModelDir::load(&args.model, &dev)?;
    let target = args
        .target
        .clone()
        .or_else(|| args.data.as_ref().map(|_| m0.info.target.clone()));
    let table = super::load_table(
        args.data.as_deref(),
        target.as_deref(),
        args.dataset.as_deref(),
    )?;
    let (m, x) = prepare(&args.model, &table, &dev)?;
    let y = m
        .preprocessor
        .encode_labels(&table)
        .with_context(|| format!("labels of {}", table.source))?;
    let f = m.info.columns.len();
    let rows: Vec<usize> = match args.split {
        SplitArg::All => (0..y.len()).collect(),
        s => {
            let Some((tr, va, te)) = split_indices(y.len(), m.info.seed) else {
                bail!(
                    "{}: too few rows ({}) for a 60/10/30 split",
                    table.source,
                    y.len()
                );
            };
            match s {
                SplitArg::Train => tr,
                SplitArg::Val => va,
                _ => te,
            }
        }
    };
    let xs: Vec<f32> = rows
        .iter()
        .flat_map(|&r| x[r * f..(r + 1) * f].iter().copied())
        .collect();
    let ys: Vec<usize> = rows.iter().map(|&r| y[r]).collect();
    let data = Data::from_rows(&xs, &ys, f, &dev)?;
    let mlp = Mlp::new(m.info.mlp.clone());
    let (loss, acc) = evaluate(&mlp, &m.params, &data)?;
    println!(
        "accuracy {:.4} ({} of {} rows, split {:?}), loss {:.4}, majority rate {:.4}",
        acc,
        (acc * data.len() as f64).round() as usize,
        data.len(),
        args.split,
        loss,
        data.majority_rate()
    );
    Ok(())
}
