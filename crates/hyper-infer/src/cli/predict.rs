//! `hyper-infer predict`: per-class probabilities and the predicted class of a generated
//! model for every row of a CSV (or a built-in dataset).

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use hyper_infer::eval::predict_proba;
use hyper_infer::ModelDir;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A directory written by `hyper-infer generate`.
    #[arg(long)]
    pub model: PathBuf,
    /// CSV with the model's feature columns (a target column, if present, is ignored);
    /// `-` reads standard input. For a text model: its text column(s).
    #[arg(long, conflicts_with_all = ["dataset", "images"], required_unless_present_any = ["dataset", "images"])]
    pub data: Option<PathBuf>,
    /// Image models: a folder of images (.png/.jpg directly in it) to label.
    #[arg(long, conflicts_with = "dataset")]
    pub images: Option<PathBuf>,
    /// Text models: the column holding the (first) sentence [default: the model's].
    #[arg(long, requires = "data")]
    pub text_column: Option<String>,
    /// Text models: the column holding the second sentence [default: the model's].
    #[arg(long, requires = "data")]
    pub text_pair_column: Option<String>,
    /// A built-in tabular dataset instead of --data.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(datasets::uci::BUILTIN))]
    pub dataset: Option<String>,
    /// Where to write the predictions CSV (`row,prediction,confidence,p_<class>...`);
    /// `-` writes to standard output.
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object (rows, predictions, probabilities) on standard output too.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub csv: super::CsvArgs,
}

pub fn run(args: &PredictArgs) -> Result<()> {
    if args.json && args.out.as_os_str() == "-" {
        anyhow::bail!(
            "--json and --out - would both write to standard output: give --out a file for the predictions CSV"
        );
    }
    let inputs: Vec<&std::path::Path> = [
        Some(args.model.as_path()),
        args.data.as_deref(),
        args.images.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    hyper_infer::outputs::check_predictions_out(&args.out, &inputs)?;
    if hyper_infer::image_model_dir::ImageModelDir::is_image_model(&args.model) {
        let images = args
            .images
            .as_deref()
            .context("an image model predicts from --images <folder>")?;
        let n = super::image::predict(&args.model, images, &args.out, args.json)?;
        if args.out.as_os_str() != "-" && !args.json {
            println!("wrote {n} predictions to {}", args.out.display());
        }
        return Ok(());
    }
    if hyper_infer::text_model_dir::TextModelDir::is_text_model(&args.model) {
        let data = args
            .data
            .as_deref()
            .context("a text model predicts from --data <csv>")?;
        let n = super::text::predict_csv(
            &args.model,
            data,
            args.text_column.as_deref(),
            args.text_pair_column.as_deref(),
            &args.out,
            args.json,
        )?;
        if args.out.as_os_str() != "-" && !args.json {
            println!("wrote {n} predictions to {}", args.out.display());
        }
        return Ok(());
    }
    let dev = Device::Cpu;
    let m = ModelDir::load(&args.model, &dev)?;
    let (table, lines, unscored) = match (&args.data, &args.dataset) {
        (Some(path), _) => {
            let opts = args.csv.options(Some(m.info.target.clone()));
            let f = datasets::user_csv::load_features(path, &opts)
                .with_context(|| format!("loading {}", path.display()))?;
            (f.table, Some(f.lines), f.unscored)
        }
        (None, Some(name)) => (
            datasets::uci::load_builtin(name)
                .with_context(|| format!("loading built-in dataset `{name}`"))?,
            None,
            Vec::new(),
        ),
        (None, None) => anyhow::bail!("give --data <file> or --dataset <name>"),
    };
    let x = m.encode_rows(&table)?;
    let f = m.info.columns.len();
    if m.info.regression.is_some() {
        let rows = super::RowOrder::new(lines, &unscored, x.len() / f.max(1));
        return super::regression::predict(
            &m,
            &args.model,
            &table,
            &x,
            &rows,
            &args.out,
            args.json,
        );
    }
    let probs = predict_proba(&m.mlp(), &m.params, &x, f, &dev)?;
    let names = &m.info.class_names;
    let mut out = String::from("row,prediction,confidence");
    for c in names {
        out.push(',');
        out.push_str(&super::csv_field(&format!("p_{c}")));
    }
    out.push('\n');
    let rows = super::RowOrder::new(lines, &unscored, probs.len());
    let mut predictions = Vec::with_capacity(rows.len());
    for (i, slot) in rows.iter().enumerate() {
        let Some(r) = slot else {
            out.push_str(&format!("{i},,{}\n", ",".repeat(names.len())));
            predictions.push(None);
            continue;
        };
        let p = &probs[r];
        let (k, c) = hyper_core::layers::argmax(p);
        let name = &names[k];
        out.push_str(&format!("{i},{},{c:.4}", super::csv_field(name)));
        for v in p {
            out.push_str(&format!(",{v:.6}"));
        }
        out.push('\n');
        predictions.push(Some(name.clone()));
    }
    rows.warn_unscored(&table.source);
    super::write_output(&args.out, &out)?;
    if args.json {
        super::PredictReport {
            modality: "table",
            model: &args.model,
            data: &table.source,
            class_names: names,
            predictions: predictions
                .into_iter()
                .map(serde_json::Value::from)
                .collect(),
            probabilities: rows
                .iter()
                .map(|r| r.map(|r| probs[r].as_slice()))
                .collect(),
            files: None,
            unscored: rows.unscored_json(),
            out: &args.out,
        }
        .print_json()?;
    } else if args.out.as_os_str() != "-" {
        println!("wrote {} predictions to {}", rows.len(), args.out.display());
    }
    Ok(())
}
