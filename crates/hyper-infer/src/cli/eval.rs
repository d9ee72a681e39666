//! `hyper-infer eval`: accuracy of a generated model directory on a table.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::{Args, ValueEnum};
use datasets::preprocess::split_indices;
use hyper_infer::data_split::DataSplit;
use hyper_infer::{evaluate, ModelDir, SplitTensors};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// CSV with the model's feature columns and its target column (text models: its
    /// text column(s) and label column).
    #[arg(long, conflicts_with_all = ["dataset", "glue", "images", "image_set"], required_unless_present_any = ["dataset", "glue", "images", "image_set"])]
    pub data: Option<PathBuf>,
    /// Image models: score on a folder of class sub-folders (the model's classes).
    #[arg(long, conflicts_with_all = ["dataset", "glue", "image_set"])]
    pub images: Option<PathBuf>,
    /// Image models: score on this built-in set's test split (top-1/3/5).
    #[arg(long, value_enum, conflicts_with_all = ["dataset", "glue"])]
    pub image_set: Option<hyper_infer::vision::ImageSetName>,
    /// Text models: score on this GLUE task's dev set with its own metrics.
    #[arg(long, conflicts_with = "dataset")]
    pub glue: Option<String>,
    /// Text models: the column holding the (first) sentence [default: the model's].
    #[arg(long, requires = "data")]
    pub text_column: Option<String>,
    /// Text models: the column holding the second sentence [default: the model's].
    #[arg(long, requires = "data")]
    pub text_pair_column: Option<String>,
    /// Target column of --data [default: the model's target column].
    #[arg(long, requires = "data")]
    pub target: Option<String>,
    /// A built-in tabular dataset instead of --data.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(datasets::uci::BUILTIN))]
    pub dataset: Option<String>,
    /// Rows to score: the seeded 60/10/30 split the model's preprocessing came from, or all.
    #[arg(long, value_enum, default_value_t = SplitArg::All)]
    pub split: SplitArg,
    /// Print one JSON object (accuracy, loss, rows, majority rate) instead of a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub csv: super::CsvArgs,
}

/// The rows of `n` that `split` names: all of them, or one part of the model's recorded
/// split. Data other than the model's own (by fingerprint) gets its split drawn afresh,
/// which may put training rows in `test`: said on standard error, never silent.
pub fn split_rows(
    split: SplitArg,
    recorded: Option<&DataSplit>,
    fingerprint: &str,
    n: usize,
    source: &str,
) -> Result<Vec<usize>> {
    if split == SplitArg::All {
        return Ok((0..n).collect());
    }
    let Some(rec) = recorded else {
        bail!(
            "{source}: the model records no split of its data (a built-in set has its own test split, or the model predates recorded splits): score it with --split all"
        );
    };
    if rec.fnv64 != fingerprint || rec.rows != n {
        eprintln!(
            "warning: {source} is not the data the model was generated from ({n} rows here, {} there): its {split:?} split is drawn afresh and may hold rows the model was trained on",
            rec.rows
        );
    }
    let Some((train, val, test)) = split_indices(n, rec.seed) else {
        bail!("{source}: too few rows ({n}) for a 60/10/30 split");
    };
    Ok(match split {
        SplitArg::Train => train,
        SplitArg::Val => val,
        _ => test,
    })
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if hyper_infer::image_model_dir::ImageModelDir::is_image_model(&args.model) {
        use super::image::ImageSource;
        let source = match (&args.images, args.image_set) {
            (Some(p), _) => ImageSource::Folder(p),
            (None, Some(s)) => ImageSource::Set(s),
            _ => bail!(
                "{} is an image model; score it with --images <dir> or --image-set <name>",
                args.model.display()
            ),
        };
        if let Some(flag) = [
            ("--target", args.target.is_some()),
            ("--text-column", args.text_column.is_some()),
            ("--text-pair-column", args.text_pair_column.is_some()),
        ]
        .iter()
        .find(|(_, given)| *given)
        .map(|(f, _)| f)
        {
            bail!("{flag} reads a CSV; an image model is scored on class folders (drop {flag})");
        }
        return super::image::eval(&args.model, source, args.split, args.json);
    }
    if args.images.is_some() || args.image_set.is_some() {
        bail!(
            "{} is not an image model; --images/--image-set score image models",
            args.model.display()
        );
    }
    if hyper_infer::text_model_dir::TextModelDir::is_text_model(&args.model) {
        return super::text::eval(args);
    }
    if args.glue.is_some() {
        bail!(
            "{} is a table model; --glue scores text models",
            args.model.display()
        );
    }
    let dev = Device::Cpu;
    let m = ModelDir::load(&args.model, &dev)?;
    let target = args
        .target
        .clone()
        .or_else(|| args.data.as_ref().map(|_| m.info.target.clone()));
    // The target is read as the model reads it: values for a regressor, classes else.
    let task = if m.info.regression.is_some() {
        super::TaskArg::Regression
    } else {
        super::TaskArg::Classification
    };
    if let Some(t) = args.csv.task.filter(|&t| t != task) {
        bail!(
            "--task {t:?} does not match the model in {}, a {task:?} model (drop --task)",
            args.model.display()
        );
    }
    let csv = super::CsvArgs {
        task: Some(task),
        ..args.csv.clone()
    };
    let table = super::load_table(
        args.data.as_deref(),
        target.as_deref(),
        args.dataset.as_deref(),
        &csv,
    )?;
    let fingerprint = match (&args.data, &args.dataset) {
        (Some(p), _) => hyper_infer::data_split::file_fingerprint(p)?,
        (None, Some(name)) => format!("built-in {name}"),
        (None, None) => String::new(),
    };
    let recorded = DataSplit {
        seed: m.info.seed,
        rows: m.info.data_rows.unwrap_or(table.n_rows()),
        fnv64: m
            .info
            .data_fnv64
            .clone()
            .unwrap_or_else(|| fingerprint.clone()),
    };
    let rows = split_rows(
        args.split,
        Some(&recorded),
        &fingerprint,
        table.n_rows(),
        &table.source,
    )?;
    // One JSON shape for both kinds of table model.
    let report = |rows: usize, metrics: &[(&str, f64)], loss: Option<f64>, majority| {
        super::EvalReport {
            modality: "table",
            model: &args.model,
            data: &table.source,
            split: args.split,
            rows,
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            score: metrics[0].1,
            loss,
            majority_rate: majority,
        }
        .print_json()
    };
    if m.info.regression.is_some() {
        let s = super::regression::scores(&m, &table, &rows)?;
        if args.json {
            let metrics = [("r2", s.r2), ("rmse", s.rmse), ("mae", s.mae)];
            return report(rows.len(), &metrics, None, None);
        }
        println!(
            "r2 {:.4}  rmse {:.4}  mae {:.4}  ({} rows, split {:?})",
            s.r2,
            s.rmse,
            s.mae,
            rows.len(),
            args.split
        );
        return Ok(());
    }
    let x = m.encode_rows(&table)?;
    let y = m
        .preprocessor
        .encode_labels(&table)
        .with_context(|| format!("labels of {}", table.source))?;
    let f = m.info.columns.len();
    let xs: Vec<f32> = rows
        .iter()
        .flat_map(|&r| x[r * f..(r + 1) * f].iter().copied())
        .collect();
    let ys: Vec<usize> = rows.iter().map(|&r| y[r]).collect();
    let data = SplitTensors::from_rows(&xs, &ys, f, &dev)?;
    let (loss, acc) = evaluate(&m.mlp(), &m.params, &data)?;
    let correct = (acc * data.len() as f64).round() as usize;
    if args.json {
        let metrics = [("accuracy", acc)];
        return report(data.len(), &metrics, Some(loss), Some(data.majority_rate()));
    }
    println!(
        "accuracy {:.4} ({} of {} rows, split {:?}), loss {:.4}, majority rate {:.4}",
        acc,
        correct,
        data.len(),
        args.split,
        loss,
        data.majority_rate()
    );
    Ok(())
}
