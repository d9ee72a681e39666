//! One module per subcommand, plus the data-source arguments and loader they share.

pub mod describe;
pub mod eval;
pub mod export;
pub mod generate;
pub mod image;
pub mod predict;
pub mod regression;
pub mod text;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use datasets::Table;
use hyper_infer::{Backend, BackendOptions};

/// Where the data comes from: the user's CSV (a table, or texts with --text-column), a
/// built-in tabular dataset, or a GLUE task.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// The user's CSV (header row; the target is the last column unless --target).
    #[arg(long, conflicts_with_all = ["dataset", "glue", "images", "image_set"], required_unless_present_any = ["dataset", "glue", "images", "image_set"])]
    pub data: Option<PathBuf>,
    /// Target column of --data.
    #[arg(long, requires = "data")]
    pub target: Option<String>,
    /// A built-in tabular dataset instead of --data.
    #[arg(long, conflicts_with = "glue", value_parser = clap::builder::PossibleValuesParser::new(datasets::uci::BUILTIN))]
    pub dataset: Option<String>,
    /// A GLUE task (cola, sst2, mrpc, stsb, rte, wnli, qnli, ...) read from the shared GLUE
    /// data: a text model (PEFT adapter for MiniLM) instead of a table model.
    #[arg(long)]
    pub glue: Option<String>,
    /// --data is text: the column holding the (first) sentence.
    #[arg(long, requires = "data")]
    pub text_column: Option<String>,
    /// --data is sentence pairs: the column holding the second sentence.
    #[arg(long, requires = "text_column")]
    pub text_pair_column: Option<String>,
    /// A folder of class sub-folders of images (`<dir>/<class>/*.png|jpg`, any size): an
    /// image model (conv-LoRA adapter for the ResNet backbone, `fc` fitted on the
    /// training split).
    #[arg(long, conflicts_with_all = ["dataset", "glue", "image_set"])]
    pub images: Option<PathBuf>,
    /// A built-in image set (its training split) for an image model.
    #[arg(long, value_enum, conflicts_with_all = ["dataset", "glue"])]
    pub image_set: Option<hyper_infer::vision::ImageSetName>,
    #[command(flatten)]
    pub csv: CsvArgs,
}

/// How to read a user's table (`--data`): what detection cannot know.
#[derive(Args, Debug, Default, Clone)]
pub struct CsvArgs {
    /// Field separator of --data: `,` `;` `|` or `tab` [default: detected from the header line].
    #[arg(long, value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// --data has no header row: its columns are named col1, col2, … (the last is the target
    /// unless --target).
    #[arg(long)]
    pub no_header: bool,
    /// Leave this column of --data out (a row ID, free text); repeat for several. Pass the
    /// same to `eval`/`predict` as to `generate`.
    #[arg(long = "drop-column", value_name = "NAME")]
    pub drop_column: Vec<String>,
    /// Read this column of --data as categorical even if its values look numeric (codes,
    /// zip codes); repeat for several.
    #[arg(long, value_name = "NAME")]
    pub categorical: Vec<String>,
    /// Read the target of --data as classes or as values [default: regression when every
    /// value is a number and more than 20 are distinct, else classification].
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
}

/// `--task`: what the target of a table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskArg {
    Classification,
    Regression,
}

impl TaskArg {
    pub fn target_task(self) -> datasets::user_csv::TargetTask {
        match self {
            Self::Classification => datasets::user_csv::TargetTask::Classification,
            Self::Regression => datasets::user_csv::TargetTask::Regression,
        }
    }
}

impl CsvArgs {
    pub fn options(&self, target: Option<String>) -> datasets::user_csv::CsvOptions {
        datasets::user_csv::CsvOptions {
            target,
            delimiter: self.delimiter,
            no_header: self.no_header,
            drop: self.drop_column.clone(),
            categorical: self.categorical.clone(),
            task: self.task.map_or(Default::default(), TaskArg::target_task),
        }
    }
}

fn parse_delimiter(s: &str) -> std::result::Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        "," | ";" | "|" | " " => Ok(s.as_bytes()[0]),
        _ => Err(format!("`{s}`: use one of `,` `;` `|` `tab`")),
    }
}

impl DataArgs {
    /// Whether this asks for a text model (`--glue`, or `--data` with `--text-column`).
    /// `--images` or `--image-set`, if given.
    pub fn image_source(&self) -> Option<image::ImageSource<'_>> {
        match (&self.images, self.image_set) {
            (Some(p), _) => Some(image::ImageSource::Folder(p)),
            (None, Some(s)) => Some(image::ImageSource::Set(s)),
            _ => None,
        }
    }

    /// Refuses flags that only a CSV reads when the data is images: accepted and ignored,
    /// they would let a user believe they took effect.
    pub fn check_image_flags(&self) -> Result<()> {
        if self.image_source().is_none() {
            return Ok(());
        }
        let csv_only = [
            ("--target", self.target.is_some()),
            ("--text-column", self.text_column.is_some()),
            ("--text-pair-column", self.text_pair_column.is_some()),
            ("--drop-column", !self.csv.drop_column.is_empty()),
            ("--categorical", !self.csv.categorical.is_empty()),
            ("--no-header", self.csv.no_header),
            ("--delimiter", self.csv.delimiter.is_some()),
        ];
        if let Some((flag, _)) = csv_only.iter().find(|(_, given)| *given) {
            anyhow::bail!(
                "{flag} reads a CSV; image folders take their classes from the sub-folder names (drop {flag})"
            );
        }
        Ok(())
    }

    pub fn is_text(&self) -> bool {
        self.glue.is_some() || self.text_column.is_some()
    }

    pub fn load(&self) -> Result<Table> {
        load_table(
            self.data.as_deref(),
            self.target.as_deref(),
            self.dataset.as_deref(),
            &self.csv,
        )
    }
}

/// Which Requirement/Model Generator backend writes the requirement and metadata.
#[derive(Args, Debug, Clone)]
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

/// The most validation rows (images) the text and image validation checks read: a forward
/// pass of the encoder per row, so a large split is sampled (tables read every row).
pub const VALIDATION_ROWS: usize = 2_000;

/// The check every `generate` with a validation split reports: accuracy on the split's
/// validation rows beside their majority rate, and a warning when the model is not above
/// it (it learned nothing usable).
pub struct Validation {
    pub accuracy: f64,
    pub majority: f64,
    pub rows: usize,
}

impl Validation {
    /// Fewer validation rows than this cannot tell a model from the majority class.
    const MIN_ROWS: usize = 10;

    pub fn warning(&self) -> Option<String> {
        if self.rows < Self::MIN_ROWS {
            return None;
        }
        (self.accuracy <= self.majority).then(|| {
            format!(
                "the generated model's validation accuracy ({:.1}%) is not above the majority rate \
                 of the validation split ({:.1}%, {} rows): it has learned nothing usable from this \
                 data; try --finetune-epochs 5, or a per-dataset trained model",
                100.0 * self.accuracy,
                100.0 * self.majority,
                self.rows
            )
        })
    }

    /// `validation accuracy …` on standard output, the warning on standard error.
    pub fn print(&self) {
        println!(
            "validation accuracy {:.1}% (majority rate {:.1}%, {} rows{})",
            100.0 * self.accuracy,
            100.0 * self.majority,
            self.rows,
            if self.rows < Self::MIN_ROWS {
                ": too few to judge the model by"
            } else {
                ""
            }
        );
        if let Some(w) = self.warning() {
            eprintln!("warning: {w}");
        }
    }

    /// What the model card says of this check, the finetuning and the data.
    pub fn card_notes(
        &self,
        finetune_epochs: usize,
        data: String,
    ) -> hyper_infer::model_card::CardNotes {
        hyper_infer::model_card::CardNotes {
            validation: Some((self.accuracy, self.majority, self.rows)),
            finetune_epochs,
            data: Some(data),
        }
    }

    /// The `--json` keys: `val_accuracy`, `val_majority_rate`, `val_rows`, `warning`.
    pub fn json_into(v: Option<&Self>, out: &mut serde_json::Value) {
        out["val_accuracy"] = v.map(|v| v.accuracy).into();
        out["val_majority_rate"] = v.map(|v| v.majority).into();
        out["val_rows"] = v.map(|v| v.rows).into();
        out["warning"] = v.and_then(Self::warning).into();
    }
}

/// What `eval --json` prints, one shape for every modality (`docs/json/eval.schema.json`).
pub struct EvalReport<'a> {
    pub modality: &'a str,
    pub model: &'a Path,
    pub data: &'a str,
    pub split: eval::SplitArg,
    pub rows: usize,
    /// `accuracy` for every classifier; `top3`/`top5` for images, the GLUE task's own
    /// metrics (`f1`, `mcc`, `pearson`, `spearman`) for GLUE.
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// The headline number: accuracy, or the GLUE task's score.
    pub score: f64,
    pub loss: Option<f64>,
    /// Share of the most common label among the scored rows (classification).
    pub majority_rate: Option<f64>,
}

impl EvalReport<'_> {
    pub fn print_json(&self) -> Result<()> {
        print_json(&serde_json::json!({
            "modality": self.modality,
            "model": self.model,
            "data": self.data,
            "split": self.split,
            "rows": self.rows,
            "metrics": self.metrics,
            "score": self.score,
            "loss": self.loss.filter(|l| l.is_finite()),
            "majority_rate": self.majority_rate,
        }))
    }
}

/// Share of the most common value in `labels` (`None` when empty).
pub fn majority_rate<T: PartialEq>(labels: &[T]) -> Option<f64> {
    let best = labels
        .iter()
        .map(|a| labels.iter().filter(|b| *b == a).count())
        .max()?;
    Some(best as f64 / labels.len() as f64)
}

/// What `predict --json` prints, one shape for every modality
/// (`docs/json/predict.schema.json`): one entry per output row, `null` where a row was not
/// scored.
pub struct PredictReport<'a> {
    pub modality: &'a str,
    pub model: &'a Path,
    pub data: &'a str,
    pub class_names: &'a [String],
    pub predictions: Vec<serde_json::Value>,
    pub probabilities: Vec<Option<&'a [f32]>>,
    /// Image files, in row order (images only).
    pub files: Option<Vec<String>>,
    pub unscored: serde_json::Value,
    pub out: &'a Path,
}

impl PredictReport<'_> {
    pub fn print_json(&self) -> Result<()> {
        let mut v = serde_json::json!({
            "modality": self.modality,
            "model": self.model,
            "data": self.data,
            "rows": self.predictions.len(),
            "class_names": self.class_names,
            "predictions": self.predictions,
            "probabilities": self.probabilities,
            "unscored": self.unscored,
            "out": self.out,
        });
        if let Some(f) = &self.files {
            v["files"] = serde_json::json!(f);
        }
        print_json(&v)
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
    csv: &CsvArgs,
) -> Result<Table> {
    if target.is_some() && data.is_none() {
        anyhow::bail!("--target names a column of --data; a built-in --dataset has its own target");
    }
    match (data, dataset) {
        (Some(path), _) => {
            let opts = csv.options(target.map(str::to_owned));
            // Every reading error already starts with the file (and line): no second copy.
            Ok(datasets::user_csv::load_csv(path, &opts)?)
        }
        (None, Some(name)) => datasets::uci::load_builtin(name)
            .with_context(|| format!("loading built-in dataset `{name}`")),
        (None, None) => anyhow::bail!("give --data <file> or --dataset <name>"),
    }
}

/// The output rows of `predict` in file order: each the index of a scored row, or `None`
/// for a record left unscored (with its reason), so no prediction moves to another row.
pub struct RowOrder {
    slots: Vec<Option<usize>>,
    /// (output row, file line, reason) of each unscored record.
    unscored: Vec<(usize, usize, String)>,
}

impl RowOrder {
    /// `lines`: the file line of each of the `n` scored rows (`None`: rows `0..n`, nothing
    /// unscored); `unscored`: (line, reason) of the records left out.
    pub fn new(lines: Option<Vec<usize>>, unscored: &[(usize, String)], n: usize) -> Self {
        let lines = lines.unwrap_or_else(|| (0..n).collect());
        let mut events: Vec<(usize, Option<usize>, Option<&str>)> = lines
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, Some(i), None))
            .chain(
                unscored
                    .iter()
                    .map(|(l, why)| (*l, None, Some(why.as_str()))),
            )
            .collect();
        events.sort_by_key(|e| e.0);
        let mut order = Self {
            slots: Vec::with_capacity(events.len()),
            unscored: Vec::new(),
        };
        for (row, (line, slot, why)) in events.into_iter().enumerate() {
            if let Some(why) = why {
                order.unscored.push((row, line, why.to_string()));
            }
            order.slots.push(slot);
        }
        order
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.slots.iter().copied()
    }

    /// One warning on standard error naming the unscored records, if any.
    pub fn warn_unscored(&self, source: &str) {
        if self.unscored.is_empty() {
            return;
        }
        let shown: Vec<String> = self
            .unscored
            .iter()
            .take(5)
            .map(|(row, line, why)| format!("row {row} (line {line}: {why})"))
            .collect();
        eprintln!(
            "warning: {source}: {} of {} rows not scored (empty prediction): {}{}",
            self.unscored.len(),
            self.len(),
            shown.join(", "),
            if self.unscored.len() > 5 { ", …" } else { "" }
        );
    }

    /// `[{"row", "line", "reason"}]` for `--json`.
    pub fn unscored_json(&self) -> serde_json::Value {
        self.unscored
            .iter()
            .map(|(row, line, why)| serde_json::json!({"row": row, "line": line, "reason": why}))
            .collect()
    }
}

/// Quotes a CSV field when it holds a comma, a quote or a newline.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `text` to `out` atomically, or to standard output for `-`. `predict` has checked
/// `out` first ([`hyper_infer::outputs::check_predictions_out`]); a link, pipe, device or
/// directory that appeared since is still refused, not replaced.
pub fn write_output(out: &Path, text: &str) -> Result<()> {
    if out.as_os_str() == "-" {
        use std::io::Write;
        return std::io::stdout()
            .write_all(text.as_bytes())
            .context("writing to standard output");
    }
    if let Ok(meta) = std::fs::symlink_metadata(out) {
        anyhow::ensure!(
            meta.file_type().is_file(),
            "{} exists and is not a regular file (a link, a pipe, a device or a directory): refusing to replace it; give another --out, or `-` for standard output",
            out.display()
        );
    }
    hyper_core::io::atomic_write(out, text.as_bytes())
}

/// Seconds per pipeline stage as JSON keys (`load generator + encoder` →
/// `load_generator_encoder`).
pub fn stage_timings(stages: &[(&str, f64)]) -> serde_json::Map<String, serde_json::Value> {
    stages
        .iter()
        .map(|(k, v)| (k.replace(' ', "_").replace("_+_", "_"), (*v).into()))
        .collect()
}

/// The `time per stage (s):` block of `generate`'s text output.
pub fn print_stages(stages: &[(&str, f64)]) {
    println!("time per stage (s):");
    for (stage, s) in stages {
        println!("  {stage:<26}{s:.4}");
    }
}
