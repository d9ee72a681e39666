//! GLUE: the nine tasks read from the official `glue_data/<TASK>/` layout.
//!
//! Rows are split on tabs only: GLUE text contains bare `"` characters (MRPC, SST-2) that
//! a CSV reader with quoting would swallow, so quotes are kept as text, as the official
//! `csv.reader(quotechar=None)` readers do. A UTF-8 BOM (MRPC) is dropped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::metrics::{self, Metric};

/// One of the nine GLUE tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlueTask {
    Cola,
    Sst2,
    Mrpc,
    Stsb,
    Qqp,
    Mnli,
    Qnli,
    Rte,
    Wnli,
}

/// A gold label: a class index into [`GlueTask::label_names`], or an STS-B score in [0, 5].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Label {
    Class(usize),
    Score(f32),
}

impl Label {
    pub fn class(self) -> Option<usize> {
        match self {
            Label::Class(c) => Some(c),
            Label::Score(_) => None,
        }
    }
    pub fn score(self) -> Option<f32> {
        match self {
            Label::Score(s) => Some(s),
            Label::Class(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GlueExample {
    pub text_a: String,
    /// Second sentence for pair tasks; `None` for CoLA and SST-2.
    pub text_b: Option<String>,
    pub label: Label,
}

impl GlueExample {
    /// The example's text as one string: the first sentence, then the second (space-joined).
    pub fn joined_text(&self) -> String {
        match &self.text_b {
            Some(b) => format!("{} {b}", self.text_a),
            None => self.text_a.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GlueSplit {
    pub task: GlueTask,
    /// `train`, `dev`, or for MNLI `dev_matched` / `dev_mismatched`.
    pub split: String,
    pub examples: Vec<GlueExample>,
    /// The file the examples were read from (for MRPC train rebuilt from the raw MSR
    /// corpus: `msr_paraphrase_train.txt`).
    pub source: PathBuf,
}

impl GlueSplit {
    pub fn len(&self) -> usize {
        self.examples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }
    /// Examples per class (empty for STS-B).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.task.num_classes().unwrap_or(0)];
        for ex in &self.examples {
            if let Label::Class(c) = ex.label {
                counts[c] += 1;
            }
        }
        counts
    }
    pub fn labels(&self) -> Vec<Label> {
        self.examples.iter().map(|e| e.label).collect()
    }
}

/// Where the columns of a task live in its TSV files.
enum Layout {
    /// No header; fixed column indices (CoLA).
    Fixed {
        ncols: usize,
        text_a: usize,
        label: usize,
    },
    /// Header row; columns found by name.
    Named {
        text_a: &'static str,
        text_b: Option<&'static str>,
        label: &'static str,
    },
}

/// Official MRPC train size (the shared `train.tsv` copy is one row short).
pub const MRPC_TRAIN_ROWS: usize = 3_668;

impl GlueTask {
    pub const ALL: [GlueTask; 9] = [
        GlueTask::Cola,
        GlueTask::Sst2,
        GlueTask::Mrpc,
        GlueTask::Stsb,
        GlueTask::Qqp,
        GlueTask::Mnli,
        GlueTask::Qnli,
        GlueTask::Rte,
        GlueTask::Wnli,
    ];

    /// Official name, which is also the folder name under `glue_data/`.
    pub fn name(self) -> &'static str {
        match self {
            GlueTask::Cola => "CoLA",
            GlueTask::Sst2 => "SST-2",
            GlueTask::Mrpc => "MRPC",
            GlueTask::Stsb => "STS-B",
            GlueTask::Qqp => "QQP",
            GlueTask::Mnli => "MNLI",
            GlueTask::Qnli => "QNLI",
            GlueTask::Rte => "RTE",
            GlueTask::Wnli => "WNLI",
        }
    }

    /// Case-insensitive; the dash is optional (`sst-2`, `SST2`, `stsb`).
    pub fn from_name(name: &str) -> Result<Self> {
        let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
        let want = norm(name.trim());
        GlueTask::ALL
            .into_iter()
            .find(|t| norm(t.name()) == want)
            .ok_or_else(|| DataError::UnknownDataset {
                name: name.to_string(),
                known: GlueTask::ALL.map(|t| t.name()).join(", "),
            })
    }

    /// Class names in index order, as the reference (HF `glue_processors`) label lists.
    /// Empty for STS-B (regression).
    pub fn label_names(self) -> &'static [&'static str] {
        match self {
            GlueTask::Cola | GlueTask::Sst2 | GlueTask::Mrpc | GlueTask::Qqp | GlueTask::Wnli => {
                &["0", "1"]
            }
            GlueTask::Mnli => &["contradiction", "entailment", "neutral"],
            GlueTask::Qnli | GlueTask::Rte => &["entailment", "not_entailment"],
            GlueTask::Stsb => &[],
        }
    }

    /// What each class means, in index order (GLUE's own definitions of its labels): the
    /// words a requirement may use and a label-conditioned head is built from. For STS-B,
    /// one phrase naming the regression target.
    pub fn label_meanings(self) -> &'static [&'static str] {
        match self {
            GlueTask::Cola => &["unacceptable", "acceptable"],
            GlueTask::Sst2 => &["negative", "positive"],
            GlueTask::Mrpc => &["not equivalent", "equivalent"],
            GlueTask::Qqp => &["not duplicate", "duplicate"],
            GlueTask::Wnli => &["not entailment", "entailment"],
            GlueTask::Mnli => &["contradiction", "entailment", "neutral"],
            GlueTask::Qnli | GlueTask::Rte => &["entailment", "not entailment"],
            GlueTask::Stsb => &["similarity score"],
        }
    }

    /// Number of classes, `None` for the regression task STS-B.
    pub fn num_classes(self) -> Option<usize> {
        match self {
            GlueTask::Stsb => None,
            t => Some(t.label_names().len()),
        }
    }

    pub fn is_regression(self) -> bool {
        self == GlueTask::Stsb
    }

    /// Whether examples are sentence pairs.
    pub fn is_pair(self) -> bool {
        !matches!(self, GlueTask::Cola | GlueTask::Sst2)
    }

    /// Labelled splits (GLUE test files carry no labels).
    pub fn splits(self) -> &'static [&'static str] {
        match self {
            GlueTask::Mnli => &["train", "dev_matched", "dev_mismatched"],
            _ => &["train", "dev"],
        }
    }

    /// The metrics GLUE reports for this task, the first being the headline one.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            GlueTask::Cola => &[Metric::Matthews],
            GlueTask::Mrpc | GlueTask::Qqp => &[Metric::F1, Metric::Accuracy],
            GlueTask::Stsb => &[Metric::Pearson, Metric::Spearman],
            _ => &[Metric::Accuracy],
        }
    }

    /// Default root: `$HYPER_SHARED_DATA/glue`.
    pub fn default_root() -> PathBuf {
        crate::paths::shared_data_dir().join("glue")
    }

    /// Canonical split name (`dev` for MNLI means `dev_matched`), or an error listing the
    /// splits this task has.
    pub fn canonical_split(self, split: &str) -> Result<&'static str> {
        let s = split.trim().to_ascii_lowercase();
        let s = match (self, s.as_str()) {
            (GlueTask::Mnli, "dev") => "dev_matched",
            (_, "validation") => "dev",
            _ => s.as_str(),
        };
        self.splits()
            .iter()
            .copied()
            .find(|x| *x == s)
            .ok_or_else(|| DataError::UnknownDataset {
                name: format!("{}/{split}", self.name()),
                known: self.splits().join(", "),
            })
    }

    /// The file a split is read from: `<root>/<TASK>/<split>.tsv`.
    pub fn split_path(self, split: &str, root: &Path) -> Result<PathBuf> {
        Ok(root
            .join(self.name())
            .join(format!("{}.tsv", self.canonical_split(split)?)))
    }

    fn layout(self) -> Layout {
        match self {
            GlueTask::Cola => Layout::Fixed {
                ncols: 4,
                text_a: 3,
                label: 1,
            },
            GlueTask::Sst2 => Layout::Named {
                text_a: "sentence",
                text_b: None,
                label: "label",
            },
            GlueTask::Mrpc => Layout::Named {
                text_a: "#1 String",
                text_b: Some("#2 String"),
                label: "Quality",
            },
            GlueTask::Stsb => Layout::Named {
                text_a: "sentence1",
                text_b: Some("sentence2"),
                label: "score",
            },
            GlueTask::Qqp => Layout::Named {
                text_a: "question1",
                text_b: Some("question2"),
                label: "is_duplicate",
            },
            GlueTask::Mnli => Layout::Named {
                text_a: "sentence1",
                text_b: Some("sentence2"),
                label: "gold_label",
            },
            GlueTask::Qnli => Layout::Named {
                text_a: "question",
                text_b: Some("sentence"),
                label: "label",
            },
            GlueTask::Rte | GlueTask::Wnli => Layout::Named {
                text_a: "sentence1",
                text_b: Some("sentence2"),
                label: "label",
            },
        }
    }

    /// Parse one label cell.
    fn parse_label(self, cell: &str) -> std::result::Result<Label, String> {
        let cell = cell.trim();
        if self == GlueTask::Stsb {
            let v: f32 = cell
                .parse()
                .map_err(|_| format!("non-numeric score `{cell}` (STS-B scores are 0-5)"))?;
            if !(0.0..=5.0).contains(&v) {
                return Err(format!("score {v} is out of range 0-5"));
            }
            return Ok(Label::Score(v));
        }
        let names = self.label_names();
        if names[0] == "0" {
            let v: i64 = cell
                .parse()
                .map_err(|_| format!("non-numeric label `{cell}` (expected 0 or 1)"))?;
            if !(0..names.len() as i64).contains(&v) {
                return Err(format!("label {v} is out of range (expected 0 or 1)"));
            }
            Ok(Label::Class(v as usize))
        } else {
            names
                .iter()
                .position(|n| *n == cell)
                .map(Label::Class)
                .ok_or_else(|| {
                    format!(
                        "unknown label `{cell}`; expected one of: {}",
                        names.join(", ")
                    )
                })
        }
    }

    /// Score predictions against gold labels with this task's [`metrics`](Self::metrics).
    pub fn evaluate(self, pred: &[Label], gold: &[Label]) -> Result<Vec<(Metric, f64)>> {
        let metric_err = |msg: String| DataError::Metric {
            metric: "glue",
            msg: format!("{}: {msg}", self.name()),
        };
        if self.is_regression() {
            let to_f = |v: &[Label], what: &str| -> Result<Vec<f64>> {
                v.iter()
                    .map(|l| {
                        l.score()
                            .map(f64::from)
                            .ok_or_else(|| metric_err(format!("{what} contain a class label")))
                    })
                    .collect()
            };
            let (p, g) = (to_f(pred, "predictions")?, to_f(gold, "targets")?);
            return Ok(vec![
                (Metric::Pearson, metrics::pearson(&p, &g)?),
                (Metric::Spearman, metrics::spearman(&p, &g)?),
            ]);
        }
        let to_c = |v: &[Label], what: &str| -> Result<Vec<usize>> {
            v.iter()
                .map(|l| {
                    l.class()
                        .ok_or_else(|| metric_err(format!("{what} contain a score")))
                })
                .collect()
        };
        let (p, g) = (to_c(pred, "predictions")?, to_c(gold, "targets")?);
        self.metrics()
            .iter()
            .map(|&m| {
                let v = match m {
                    Metric::Accuracy => metrics::accuracy(&p, &g)?,
                    Metric::F1 => metrics::f1_binary(&p, &g)?,
                    Metric::Matthews => metrics::matthews_corrcoef(&p, &g)?,
                    other => {
                        return Err(metric_err(format!(
                            "{other} is not a classification metric"
                        )))
                    }
                };
                Ok((m, v))
            })
            .collect()
    }
}

impl std::fmt::Display for GlueTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GlueTask {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        GlueTask::from_name(s)
    }
}

/// Load one labelled split of a task from `root` (the `glue_data` folder).
///
/// MRPC train is rebuilt from `msr_paraphrase_train.txt` minus the pairs in `dev_ids.tsv`
/// (the official `download_glue_data.py` rule, 3,668 rows) when those raw files exist;
/// otherwise `train.tsv` is read.
pub fn load(task: GlueTask, split: &str, root: &Path) -> Result<GlueSplit> {
    let split = task.canonical_split(split)?;
    if task == GlueTask::Mrpc && split == "train" {
        let dir = root.join(task.name());
        let raw = dir.join("msr_paraphrase_train.txt");
        let ids = dir.join("dev_ids.tsv");
        if raw.is_file() && ids.is_file() {
            return load_mrpc_train_from_raw(&raw, &ids);
        }
        let out = load_file(task, split, &task.split_path(split, root)?)?;
        if out.len() != MRPC_TRAIN_ROWS {
            tracing::warn!(
                "MRPC train: {} and {} not found, read {} ({} rows, official {})",
                raw.display(),
                ids.display(),
                out.source.display(),
                out.len(),
                MRPC_TRAIN_ROWS
            );
        }
        return Ok(out);
    }
    load_file(task, split, &task.split_path(split, root)?)
}

/// Load a split from an explicit TSV file in the task's official format.
pub fn load_file(task: GlueTask, split: &str, path: &Path) -> Result<GlueSplit> {
    let text = read_text(task, split, path)?;
    let examples = parse_rows(task, path, &text)?;
    Ok(GlueSplit {
        task,
        split: split.to_string(),
        examples,
        source: path.to_path_buf(),
    })
}

/// MRPC train = every pair of the MSR training corpus not listed in `dev_ids.tsv`.
pub fn load_mrpc_train_from_raw(raw: &Path, dev_ids: &Path) -> Result<GlueSplit> {
    let task = GlueTask::Mrpc;
    let ids_text = read_text(task, "train", dev_ids)?;
    let mut dev: HashSet<(String, String)> = HashSet::new();
    for (i, line) in ids_text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split('\t').collect();
        if cells.len() != 2 {
            return Err(DataError::Parse {
                path: dev_ids.to_path_buf(),
                line: i + 1,
                msg: format!(
                    "expected 2 tab-separated ids, found {} columns",
                    cells.len()
                ),
            });
        }
        dev.insert((cells[0].trim().to_string(), cells[1].trim().to_string()));
    }
    let text = read_text(task, "train", raw)?;
    let rows = split_rows(raw, &text)?;
    let Some((header, body)) = rows.split_first() else {
        return Err(empty_file(raw));
    };
    let find = |name: &str| find_column(raw, header, name);
    let (ia, ib, il) = (find("#1 String")?, find("#2 String")?, find("Quality")?);
    let (i1, i2) = (find("#1 ID")?, find("#2 ID")?);
    let mut examples = Vec::with_capacity(body.len());
    let mut seen_dev = 0;
    for (line, cells) in body {
        check_width(raw, *line, cells, header.1.len())?;
        if dev.contains(&(cells[i1].trim().to_string(), cells[i2].trim().to_string())) {
            seen_dev += 1;
            continue;
        }
        let label = task
            .parse_label(cells[il])
            .map_err(|msg| DataError::Parse {
                path: raw.to_path_buf(),
                line: *line,
                msg,
            })?;
        examples.push(GlueExample {
            text_a: cells[ia].to_string(),
            text_b: Some(cells[ib].to_string()),
            label,
        });
    }
    if seen_dev != dev.len() {
        tracing::warn!(
            "{}: {} of the {} dev pairs in {} were not found in the training corpus",
            raw.display(),
            dev.len() - seen_dev,
            dev.len(),
            dev_ids.display()
        );
    }
    Ok(GlueSplit {
        task,
        split: "train".into(),
        examples,
        source: raw.to_path_buf(),
    })
}

fn empty_file(path: &Path) -> DataError {
    DataError::Invalid {
        path: path.to_path_buf(),
        msg: "file is empty".into(),
    }
}

fn read_text(task: GlueTask, split: &str, path: &Path) -> Result<String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path.parent().unwrap_or(Path::new("."));
            return Err(DataError::Unavailable {
                name: format!("GLUE {} {split}", task.name()),
                reason: format!(
                    "expected file {} not found; download GLUE (download_glue_data.py) and put \
                     the {} folder of glue_data at {} so this file exists",
                    path.display(),
                    task.name(),
                    dir.display()
                ),
            });
        }
        Err(source) => {
            return Err(DataError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    crate::assets::verify_bytes(path, &bytes)?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(DataError::Parse {
                path: path.to_path_buf(),
                line,
                msg: format!("invalid UTF-8 at byte {at}"),
            })
        }
    }
}

type Row<'a> = (usize, Vec<&'a str>);

/// Non-empty lines split on tabs, with 1-based line numbers; BOM and `\r` dropped.
fn split_rows<'a>(path: &Path, text: &'a str) -> Result<Vec<Row<'a>>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            // A blank last line is a trailing newline; one inside the file is a broken row.
            if text.lines().skip(i + 1).any(|l| !l.trim().is_empty()) {
                return Err(DataError::Parse {
                    path: path.to_path_buf(),
                    line: i + 1,
                    msg: "empty line".into(),
                });
            }
            continue;
        }
        rows.push((i + 1, line.split('\t').collect()));
    }
    Ok(rows)
}

fn find_column(path: &Path, header: &Row<'_>, name: &str) -> Result<usize> {
    header
        .1
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| DataError::UnknownColumn {
            path: path.to_path_buf(),
            target: name.to_string(),
            available: header.1.join(", "),
        })
}

fn check_width(path: &Path, line: usize, cells: &[&str], want: usize) -> Result<()> {
    if cells.len() != want {
        return Err(DataError::Parse {
            path: path.to_path_buf(),
            line,
            msg: format!(
                "expected {want} tab-separated columns, found {}",
                cells.len()
            ),
        });
    }
    Ok(())
}

fn parse_rows(task: GlueTask, path: &Path, text: &str) -> Result<Vec<GlueExample>> {
    let rows = split_rows(path, text)?;
    if rows.is_empty() {
        return Err(empty_file(path));
    }
    let (ncols, ia, ib, il, body): (usize, usize, Option<usize>, usize, &[Row<'_>]) =
        match task.layout() {
            Layout::Fixed {
                ncols,
                text_a,
                label,
            } => (ncols, text_a, None, label, &rows[..]),
            Layout::Named {
                text_a,
                text_b,
                label,
            } => {
                let header = &rows[0];
                let ia = find_column(path, header, text_a)?;
                let ib = text_b.map(|b| find_column(path, header, b)).transpose()?;
                let il = find_column(path, header, label)?;
                (header.1.len(), ia, ib, il, &rows[1..])
            }
        };
    let mut examples = Vec::with_capacity(body.len());
    for (line, cells) in body {
        check_width(path, *line, cells, ncols)?;
        let label = task
            .parse_label(cells[il])
            .map_err(|msg| DataError::Parse {
                path: path.to_path_buf(),
                line: *line,
                msg,
            })?;
        examples.push(GlueExample {
            text_a: cells[ia].to_string(),
            text_b: ib.map(|b| cells[b].to_string()),
            label,
        });
    }
    Ok(examples)
}
