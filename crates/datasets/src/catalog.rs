//! Every dataset hyper knows, loaded for real to report its shape (`cargo xtask datasets`).
//! Loading rather than trusting a table means the listing doubles as a smoke test of the
//! loaders on the files actually present.

use std::fmt;

use serde::Serialize;

use crate::paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
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
    Image { height: usize, width: usize },
    /// Text inputs per example: 1 (single sentence) or 2 (sentence pair).
    Text { segments: usize },
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
                Err(e) => Err((pretty, e.to_string())),
            }
        })
        .collect()
}

/// The image sets.
pub fn list_images() -> Vec<Result<DatasetInfo, Unavailable>> {
    let _ = paths::data_dir();
    Vec::new()
}

/// The GLUE tasks.
pub fn list_glue() -> Vec<Result<DatasetInfo, Unavailable>> {
    Vec::new()
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
