//! The `profile` backend: computes the five elements of a User Requirement (task type,
//! data pattern, #classes, #input features, scale) from the data itself and writes the
//! sentence deterministically — no model, no network. Its metadata comes straight from the
//! data, so it always agrees with it.
//!
//! The data pattern describes the *inputs* (column names and kinds, value ranges, missing
//! values, class balance, text length, image size); it never names what the labels mean.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{bail, Result};
use datasets::tabular::{ColumnKind, Table};
use hyper_core::metadata::Metadata;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::generator::{ModelGenerator, RequirementGenerator, TaskInput};

/// Row-count buckets: small < 1,000 ≤ medium < 50,000 ≤ large.
pub const SMALL_MAX_ROWS: usize = 1_000;
pub const MEDIUM_MAX_ROWS: usize = 50_000;

/// The `scale` bucket of a dataset with `n_rows` rows.
pub fn scale_for_rows(n_rows: usize) -> &'static str {
    if n_rows < SMALL_MAX_ROWS {
        "small"
    } else if n_rows < MEDIUM_MAX_ROWS {
        "medium"
    } else {
        "large"
    }
}

pub use datasets::Modality;

/// Summary statistics of one tabular input column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    pub name: String,
    /// `None` for a numeric column, `Some(#levels)` for a categorical one.
    pub levels: Option<usize>,
    /// Min / max / mean of the non-missing values (numeric columns with any value).
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub missing: usize,
}

impl FeatureProfile {
    pub fn is_numeric(&self) -> bool {
        self.levels.is_none()
    }
}

/// A GLUE-like text set, summarised by whoever loaded it (keeps this crate free of the
/// GLUE loader's types).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextSummary {
    pub name: String,
    pub n_examples: usize,
    /// Sentence pairs (MRPC, RTE, …) rather than single sentences (SST-2, CoLA).
    pub pair: bool,
    /// Mean words per example (both sentences together for pairs).
    pub avg_words: f64,
    pub max_words: usize,
    /// Class names, for classification; empty for regression (STS-B).
    pub label_names: Vec<String>,
    /// Examples per class, indexed like `label_names` (may be empty if unknown).
    pub class_counts: Vec<usize>,
}

impl TextSummary {
    /// Mean and max whitespace-separated word counts of `texts`.
    pub fn word_stats<'a>(texts: impl IntoIterator<Item = &'a str>) -> (f64, usize) {
        let (mut n, mut sum, mut max) = (0usize, 0usize, 0usize);
        for t in texts {
            let w = t.split_whitespace().count();
            n += 1;
            sum += w;
            max = max.max(w);
        }
        if n == 0 {
            (0.0, 0)
        } else {
            (sum as f64 / n as f64, max)
        }
    }
}

/// An image set's shape, summarised by whoever loaded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSummary {
    pub name: String,
    pub n_images: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub n_classes: usize,
    /// Images per class (may be empty if unknown).
    pub class_counts: Vec<usize>,
    /// Class names in label order (the head is built from them, so naming them in the
    /// requirement leaks nothing the generator does not already get).
    #[serde(default)]
    pub class_names: Vec<String>,
    /// What the images show, from the user (`--description`) or the set's documentation.
    #[serde(default)]
    pub description: Option<String>,
}

/// Everything the requirement sentence and the metadata are computed from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataProfile {
    pub name: String,
    pub modality: Modality,
    /// A `hyper_core::metadata::TASKS` value.
    pub task: String,
    pub n_rows: usize,
    /// 0 for regression.
    pub n_classes: usize,
    pub class_counts: Vec<usize>,
    /// Tabular input columns, in order (empty for text and images).
    pub features: Vec<FeatureProfile>,
    pub text: Option<TextSummary>,
    pub image: Option<ImageSummary>,
    /// Row-count bucket, see [`scale_for_rows`].
    pub scale: String,
    /// The table itself, kept so [`requirements`] can profile row subsets.
    #[serde(skip)]
    table: Option<Arc<Table>>,
}

impl DataProfile {
    /// Profiles a tabular classification table; errors on an empty or inconsistent table.
    pub fn from_table(table: &Table) -> Result<Self> {
        Self::from_arc(Arc::new(table.clone()))
    }

    /// As [`DataProfile::from_table`], sharing the table instead of copying it.
    pub fn from_arc(table: Arc<Table>) -> Result<Self> {
        table.check_labelled()?;
        let rows: Vec<usize> = (0..table.n_rows()).collect();
        let mut p = profile_rows(&table, &rows);
        p.table = Some(table);
        Ok(p)
    }

    /// Profiles a text set (`seq_cls`, or `seq_reg` when it has no label names).
    pub fn from_text(s: &TextSummary) -> Result<Self> {
        if s.n_examples == 0 {
            bail!("text set `{}` has no examples", s.name);
        }
        if s.label_names.len() == 1 {
            bail!(
                "text set `{}` has a single class `{}`; classification needs at least two",
                s.name,
                s.label_names[0]
            );
        }
        let regression = s.label_names.is_empty();
        Ok(Self {
            name: s.name.clone(),
            modality: Modality::Text,
            task: if regression { "seq_reg" } else { "seq_cls" }.into(),
            n_rows: s.n_examples,
            n_classes: s.label_names.len(),
            class_counts: s.class_counts.clone(),
            features: Vec::new(),
            text: Some(s.clone()),
            image: None,
            scale: scale_for_rows(s.n_examples).into(),
            table: None,
        })
    }

    /// Profiles an image classification set.
    pub fn from_image(s: &ImageSummary) -> Result<Self> {
        if s.n_images == 0 {
            bail!("image set `{}` has no images", s.name);
        }
        if s.n_classes < 2 {
            bail!(
                "image set `{}` has {} class(es); classification needs at least two",
                s.name,
                s.n_classes
            );
        }
        if s.height == 0 || s.width == 0 || s.channels == 0 {
            bail!(
                "image set `{}` has an empty image shape {}x{}x{}",
                s.name,
                s.channels,
                s.height,
                s.width
            );
        }
        Ok(Self {
            name: s.name.clone(),
            modality: Modality::Image,
            task: "img_cls".into(),
            n_rows: s.n_images,
            n_classes: s.n_classes,
            class_counts: s.class_counts.clone(),
            features: Vec::new(),
            text: None,
            image: Some(s.clone()),
            scale: scale_for_rows(s.n_images).into(),
            table: None,
        })
    }

    pub fn n_features(&self) -> usize {
        self.features.len()
    }
    pub fn n_numeric(&self) -> usize {
        self.features.iter().filter(|f| f.is_numeric()).count()
    }
    pub fn n_categorical(&self) -> usize {
        self.n_features() - self.n_numeric()
    }
    /// Output width: #classes, or 1 for regression.
    pub fn out_dim(&self) -> usize {
        self.n_classes.max(1)
    }
    /// The architecture this data calls for.
    pub fn arch(&self) -> &'static str {
        match self.modality {
            Modality::Tabular => match self.scale.as_str() {
                "small" => "mlp_small",
                "medium" => "mlp_base",
                _ => "mlp_large",
            },
            Modality::Text => "distilbert-base-uncased",
            Modality::Image => "resnet50",
        }
    }
    /// The metadata the data implies (validated).
    pub fn metadata(&self) -> Result<Metadata> {
        let m = Metadata {
            task: self.task.clone(),
            in_dim: (self.modality == Modality::Tabular).then_some(self.n_features()),
            out_dim: self.out_dim(),
            scale: self.scale.clone(),
            arch: self.arch().into(),
        };
        m.validate().map_err(anyhow::Error::msg)?;
        Ok(m)
    }

    /// Checks an LLM's metadata against what the data says (task, #classes, #features,
    /// scale); the error names the field and the value the data implies.
    pub fn check_metadata(&self, m: &Metadata) -> std::result::Result<(), String> {
        if m.task != self.task {
            return Err(format!(
                "field `task` is `{}` but the data is a {} task (`{}`)",
                m.task,
                task_phrase(self),
                self.task
            ));
        }
        if m.out_dim != self.out_dim() {
            return Err(format!(
                "field `out_dim` is {} but the data has {}",
                m.out_dim,
                if self.n_classes == 0 {
                    "one regression target (out_dim 1)".to_string()
                } else {
                    format!("{} classes", self.n_classes)
                }
            ));
        }
        if self.modality == Modality::Tabular && m.in_dim != Some(self.n_features()) {
            return Err(format!(
                "field `in_dim` is {} but the data has {} input features",
                m.in_dim.map_or("missing".to_string(), |d| d.to_string()),
                self.n_features()
            ));
        }
        if m.scale != self.scale {
            return Err(format!(
                "field `scale` is `{}` but the data has {} rows, which is `{}` (small < 1,000 ≤ medium < 50,000 ≤ large)",
                m.scale, self.n_rows, self.scale
            ));
        }
        Ok(())
    }

    /// Checks that an LLM's requirement sentence states this data's numbers: `N-class`
    /// (classification), `N-feature` (tabular) and the scale word. The error lists every
    /// missing element, in the form the prompt asks for.
    pub fn check_requirement(&self, sentence: &str) -> std::result::Result<(), String> {
        let s = sentence.to_lowercase();
        let has = |forms: &[String]| forms.iter().any(|f| s.contains(f.as_str()));
        let mut missing = Vec::new();
        let task = task_phrase(self);
        if !s.contains(task) {
            missing.push(format!("the task type as `{task}`"));
        }
        if self.n_classes > 0 {
            let k = self.n_classes;
            if !has(&[format!("{k}-class"), format!("{k} class")]) {
                missing.push(format!("the number of classes as `{k}-class`"));
            }
        }
        if self.modality == Modality::Tabular {
            let f = self.n_features();
            if !has(&[
                format!("{f}-feature"),
                format!("{f} feature"),
                format!("{f} input feature"),
            ]) {
                missing.push(format!("the number of input features as `{f}-feature`"));
            }
        }
        if !s.contains(self.scale.as_str()) {
            missing.push(format!("the scale as `{}-scaled`", self.scale));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("the requirement must state {}", missing.join(", ")))
        }
    }

    /// One line of facts for LLM prompts (the numbers a small model cannot count itself).
    pub fn facts(&self) -> String {
        let classes = if self.n_classes == 0 {
            "regression (one continuous target)".to_string()
        } else {
            format!("{} classes", self.n_classes)
        };
        let inputs = match self.modality {
            Modality::Tabular => format!(
                "{} input features ({})",
                self.n_features(),
                kinds_phrase(self)
            ),
            Modality::Text => text_inputs_phrase(self),
            Modality::Image => image_inputs_phrase(self),
        };
        format!(
            "task type: {}; {}; {}; {} rows, so scale is {}.",
            task_phrase(self),
            classes,
            inputs,
            self.n_rows,
            self.scale
        )
    }
}

/// Profile of the rows `rows` of a checked table. #classes, #features and scale always come
/// from the whole table (they are the task's metadata); ranges, missing values and class
/// balance from the rows.
fn profile_rows(t: &Table, rows: &[usize]) -> DataProfile {
    let regression = t.target_values.is_some();
    let mut class_counts = vec![0usize; if regression { 0 } else { t.n_classes() }];
    for &r in rows.iter().filter(|_| !regression) {
        class_counts[t.labels[r]] += 1;
    }
    let features = t
        .columns
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let vals: Vec<f64> = rows
                .iter()
                .map(|&r| t.features[r][j])
                .filter(|v| !v.is_nan())
                .collect();
            let missing = rows.len() - vals.len();
            let levels = match &c.kind {
                ColumnKind::Numeric => None,
                ColumnKind::Categorical { levels } => Some(levels.len()),
            };
            let (min, max, mean) = if levels.is_none() && !vals.is_empty() {
                let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
                let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                (Some(min), Some(max), Some(mean))
            } else {
                (None, None, None)
            };
            FeatureProfile {
                name: c.name.clone(),
                levels,
                min,
                max,
                mean,
                missing,
            }
        })
        .collect();
    DataProfile {
        name: t.name.clone(),
        modality: Modality::Tabular,
        task: if regression {
            "tabular_reg"
        } else {
            "tabular_cls"
        }
        .into(),
        n_rows: t.n_rows(),
        n_classes: if regression { 0 } else { t.n_classes() },
        class_counts,
        features,
        text: None,
        image: None,
        scale: scale_for_rows(t.n_rows()).into(),
        table: None,
    }
}

/// `SepalLengthCm` → `sepal length cm`, `mean_radius` → `mean radius`.
pub fn humanize(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.chars() {
        let c2 = if c == '_' || c == '-' || c == '.' {
            ' '
        } else {
            c
        };
        if let Some(p) = prev {
            if c2.is_uppercase() && (p.is_lowercase() || p.is_ascii_digit()) {
                out.push(' ');
            }
        }
        if !(c2 == ' ' && out.ends_with(' ')) {
            out.extend(c2.to_lowercase());
        }
        prev = Some(c2);
    }
    out.trim().to_string()
}

/// Numbers as a person writes them: integers plainly, else ~3 significant digits.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "?".into();
    }
    if v == v.round() && v.abs() < 1e9 {
        return format!("{}", v as i64);
    }
    let a = v.abs();
    if a >= 1e9 {
        // Beyond a billion, digits past the third say nothing (1e308 would print 309).
        return format!("{v:.2e}");
    }
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else if a >= 0.001 {
        3 + (-a.log10()).floor() as usize
    } else {
        return format!("{v:.2e}");
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn task_phrase(p: &DataProfile) -> &'static str {
    match p.task.as_str() {
        "tabular_cls" => "tabular classification",
        "tabular_reg" => "tabular regression",
        "seq_cls" => "text classification",
        "seq_reg" => "text regression",
        "img_cls" => "image classification",
        _ => "sequence-to-sequence generation",
    }
}

fn kinds_phrase(p: &DataProfile) -> String {
    match (p.n_numeric(), p.n_categorical()) {
        (n, 0) => format!("{n} numeric"),
        (0, c) => format!("{c} categorical"),
        (n, c) => format!("{n} numeric and {c} categorical"),
    }
}

fn feature_phrase(f: &FeatureProfile) -> String {
    let name = humanize(&f.name);
    match (f.levels, f.min, f.max) {
        (Some(l), _, _) => format!("{name} ({l} levels)"),
        // An en dash after a minus sign reads badly ("-3313–71188"): spell it out then.
        (None, Some(lo), Some(hi)) if lo < 0.0 => {
            format!("{name} {} to {}", fmt_num(lo), fmt_num(hi))
        }
        (None, Some(lo), Some(hi)) => format!("{name} {}–{}", fmt_num(lo), fmt_num(hi)),
        _ => format!("{name} (all missing)"),
    }
}

/// Up to `max` features starting at `offset` (wrapping), plus "and N more".
fn feature_list(p: &DataProfile, offset: usize, max: usize) -> String {
    let n = p.features.len();
    let shown: Vec<String> = (0..n.min(max))
        .map(|i| feature_phrase(&p.features[(offset + i) % n]))
        .collect();
    let mut s = shown.join(", ");
    if n > max {
        s.push_str(&format!(" and {} more", n - max));
    }
    s
}

fn balance_phrase(counts: &[usize]) -> String {
    let total: usize = counts.iter().sum();
    let (Some(&max), Some(&min)) = (counts.iter().max(), counts.iter().min()) else {
        return "an unknown class balance".into();
    };
    if total == 0 {
        return "an unknown class balance".into();
    }
    if min > 0 && (max as f64) / (min as f64) <= 1.5 {
        "roughly balanced classes".into()
    } else {
        format!(
            "imbalanced classes (the largest holds {:.0}% of rows)",
            100.0 * max as f64 / total as f64
        )
    }
}

fn missing_phrase(p: &DataProfile) -> String {
    let cols = p.features.iter().filter(|f| f.missing > 0).count();
    let cells: usize = p.features.iter().map(|f| f.missing).sum();
    let values = if cells == 1 { "value" } else { "values" };
    match cols {
        0 => String::new(),
        1 => format!(", and {cells} missing {values} in one column"),
        _ => format!(", and {cells} missing {values} across {cols} columns"),
    }
}

fn text_inputs_phrase(p: &DataProfile) -> String {
    let Some(t) = &p.text else {
        return "text inputs".into();
    };
    let unit = if t.pair {
        "sentence pairs"
    } else {
        "single sentences"
    };
    format!(
        "{unit} averaging {} words (longest {})",
        fmt_num((t.avg_words * 10.0).round() / 10.0),
        t.max_words
    )
}

fn image_inputs_phrase(p: &DataProfile) -> String {
    let Some(i) = &p.image else {
        return "images".into();
    };
    let colour = match i.channels {
        1 => "grayscale".to_string(),
        3 => "RGB".to_string(),
        c => format!("{c}-channel"),
    };
    let what = match &i.description {
        Some(d) if !d.trim().is_empty() => format!(" of {}", d.trim()),
        _ => String::new(),
    };
    let names = if i.class_names.is_empty() {
        String::new()
    } else {
        let shown: Vec<&str> = i.class_names.iter().take(10).map(String::as_str).collect();
        let more = if i.class_names.len() > shown.len() {
            ", …"
        } else {
            ""
        };
        format!(" (classes: {}{more})", shown.join(", "))
    };
    format!("{}×{} {colour} images{what}{names}", i.height, i.width)
}

/// Number of phrasing templates per modality.
pub const N_TEMPLATES: usize = 5;

/// Writes the requirement sentence for `p` with phrasing `template` (mod [`N_TEMPLATES`])
/// and the feature list starting at `offset`.
pub fn render(p: &DataProfile, template: usize, offset: usize) -> String {
    let k = p.n_classes;
    let scale = &p.scale;
    let balance = balance_phrase(&p.class_counts);
    match p.modality {
        Modality::Tabular => {
            let f = p.n_features();
            let kinds = kinds_phrase(p);
            let list = feature_list(p, offset, 6);
            let missing = missing_phrase(p);
            if k == 0 {
                return match template % N_TEMPLATES {
                    0 => format!("This is a task of {f}-feature and {scale}-scaled tabular regression predicting one continuous target from {kinds} features ({list}){missing}."),
                    1 => format!("A {scale}-scale tabular regression problem with {f} input features, {kinds}, such as {list}, and one continuous target{missing}."),
                    2 => format!("Tabular regression of one continuous target from {f} input features at {scale} scale, where the {kinds} columns include {list}{missing}."),
                    3 => format!("A {scale}-scale tabular regression task: predict one number for each row from {f} input features ({kinds}: {list}){missing}."),
                    _ => format!("{f}-feature tabular regression at {scale} scale: rows of {kinds} values ({list}) and one continuous target{missing}."),
                };
            }
            match template % N_TEMPLATES {
                0 => format!("This is a task of {k}-class, {f}-feature and {scale}-scaled tabular classification over {kinds} features ({list}), with {balance}{missing}."),
                1 => format!("A {scale}-scale tabular classification problem with {k} classes and {f} input features, {kinds}, such as {list}; the rows show {balance}{missing}."),
                2 => format!("Tabular classification into {k} classes from {f} input features at {scale} scale, where the {kinds} columns include {list}, with {balance}{missing}."),
                3 => format!("A {scale}-scale tabular classification task: predict one of {k} classes for each row from {f} input features ({kinds}: {list}), given {balance}{missing}."),
                _ => format!("{k}-class tabular classification with {f} input features and {scale} scale: rows of {kinds} values ({list}) with {balance}{missing}."),
            }
        }
        Modality::Text => {
            let inputs = text_inputs_phrase(p);
            let head = if k == 0 {
                format!("{scale}-scaled text regression predicting one continuous score")
            } else {
                format!("{k}-class and {scale}-scaled text classification")
            };
            let tail = if k == 0 {
                String::new()
            } else {
                format!(", with {balance}")
            };
            match template % N_TEMPLATES {
                0 => format!("This is a task of {head} over {inputs}{tail}."),
                1 => format!("A {head} problem whose inputs are {inputs}{tail}."),
                2 => format!("Given {inputs}, this is {head}{tail}."),
                3 => format!(
                    "The data calls for {head}: each example is one of many {inputs}{tail}."
                ),
                _ => format!("{head} of {} {inputs}{tail}.", p.n_rows),
            }
        }
        Modality::Image => {
            let inputs = image_inputs_phrase(p);
            let head = format!("{k}-class and {scale}-scaled image classification");
            match template % N_TEMPLATES {
                0 => format!("This is a task of {head} over {inputs}, with {balance}."),
                1 => format!("A {head} problem on {inputs} showing {balance}."),
                2 => format!("Given {inputs}, this is {head} with {balance}."),
                3 => format!(
                    "The data calls for {head}: {} {inputs} with {balance}.",
                    p.n_rows
                ),
                _ => format!("{head} of {inputs}, {balance}."),
            }
        }
    }
}

/// Up to `n` distinct requirement sentences for meta-training pairs (FLAME uses ~5 per
/// task). The first is the full-data sentence ([`ProfileBackend`]'s answer); the others
/// profile random row subsets (50–90% of rows, so ranges and balance differ) when the
/// table is at hand, and rotate phrasings and the listed features. Deterministic in `seed`.
/// Fewer than `n` come back only when the profile cannot produce more distinct sentences.
pub fn requirements(profile: &DataProfile, n: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    let mut seen = HashSet::new();
    for attempt in 0..n.saturating_mul(20) {
        if out.len() == n {
            break;
        }
        let view = match (&profile.table, attempt) {
            (Some(t), a) if a > 0 && t.n_rows() >= 2 => {
                let frac = rng.random_range(0.5..0.9);
                let m = ((t.n_rows() as f64 * frac).round() as usize).clamp(1, t.n_rows());
                let mut rows = rand::seq::index::sample(&mut rng, t.n_rows(), m).into_vec();
                rows.sort_unstable();
                profile_rows(t, &rows)
            }
            _ => profile.clone(),
        };
        let offset = if profile.features.len() > 6 {
            attempt * 3
        } else {
            0
        };
        let s = render(&view, attempt, offset);
        if seen.insert(s.clone()) {
            out.push(s);
        }
    }
    out
}

/// The offline, deterministic backend (default).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProfileBackend;

impl RequirementGenerator for ProfileBackend {
    fn requirement(&self, input: &TaskInput) -> Result<String> {
        Ok(render(&input.profile, 0, 0))
    }
}

impl ModelGenerator for ProfileBackend {
    /// Metadata from the data, not from the sentence: the data is the ground truth.
    fn metadata(&self, _requirement: &str, input: &TaskInput) -> Result<Metadata> {
        input.profile.metadata()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use datasets::tabular::Column;

    /// 4 numeric columns, 3 classes, 6 rows; hand-checkable stats.
    pub(crate) fn tiny() -> Table {
        let col = |n: &str| Column {
            name: n.into(),
            kind: ColumnKind::Numeric,
        };
        Table {
            name: "tiny".into(),
            columns: vec![
                col("SepalLengthCm"),
                col("sepal_width"),
                col("petal length"),
                col("w"),
            ],
            features: vec![
                vec![5.1, 3.5, 1.4, 0.2],
                vec![4.9, 3.0, 1.4, 0.2],
                vec![7.0, 3.2, 4.7, 1.4],
                vec![6.4, 3.2, 4.5, 1.5],
                vec![6.3, 3.3, 6.0, 2.5],
                vec![5.8, f64::NAN, 5.1, 1.9],
            ],
            target: "species".into(),
            class_names: vec!["a".into(), "b".into(), "c".into()],
            labels: vec![0, 0, 1, 1, 2, 2],
            source: "tiny.csv".into(),
            target_values: None,
        }
    }

    #[test]
    fn scale_buckets() {
        assert_eq!(scale_for_rows(999), "small");
        assert_eq!(scale_for_rows(1_000), "medium");
        assert_eq!(scale_for_rows(49_999), "medium");
        assert_eq!(scale_for_rows(50_000), "large");
    }

    #[test]
    fn table_profile_numbers() {
        let p = DataProfile::from_table(&tiny()).unwrap();
        assert_eq!((p.n_rows, p.n_classes, p.n_features()), (6, 3, 4));
        assert_eq!((p.n_numeric(), p.n_categorical()), (4, 0));
        assert_eq!(p.class_counts, vec![2, 2, 2]);
        let f0 = &p.features[0];
        assert_eq!((f0.min, f0.max), (Some(4.9), Some(7.0)));
        assert!((f0.mean.unwrap() - 35.5 / 6.0).abs() < 1e-12);
        assert_eq!(p.features[1].missing, 1);
        assert_eq!(p.features[1].min, Some(3.0));
        let m = p.metadata().unwrap();
        assert_eq!(
            (
                m.task.as_str(),
                m.in_dim,
                m.out_dim,
                m.scale.as_str(),
                m.arch.as_str()
            ),
            ("tabular_cls", Some(4), 3, "small", "mlp_small")
        );
        let s = render(&p, 0, 0);
        assert_eq!(
            s,
            "This is a task of 3-class, 4-feature and small-scaled tabular classification over 4 numeric features \
             (sepal length cm 4.9–7, sepal width 3–3.5, petal length 1.4–6, w 0.2–2.5), with roughly balanced \
             classes, and 1 missing value in one column."
        );
        // Labels' names never appear.
        assert!(!s.contains("species"));
    }

    #[test]
    fn bad_tables_are_errors() {
        let mut t = tiny();
        t.features.clear();
        t.labels.clear();
        assert!(DataProfile::from_table(&t)
            .unwrap_err()
            .to_string()
            .contains("no rows"));
        let mut t = tiny();
        t.labels[3] = 7;
        let e = DataProfile::from_table(&t).unwrap_err().to_string();
        assert!(e.contains("row 4 has label index 7"), "{e}");
        let mut t = tiny();
        t.class_names.truncate(1);
        t.labels = vec![0; 6];
        assert!(DataProfile::from_table(&t)
            .unwrap_err()
            .to_string()
            .contains("at least two"));
    }

    #[test]
    fn requirements_are_distinct_and_deterministic() {
        let p = DataProfile::from_table(&tiny()).unwrap();
        let a = requirements(&p, 5, 7);
        assert_eq!(a.len(), 5);
        assert_eq!(a, requirements(&p, 5, 7));
        assert_eq!(a[0], render(&p, 0, 0));
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 5);
        for s in &a {
            assert!(s.to_lowercase().contains("tabular classification"), "{s}");
            assert!(
                s.contains('3') && s.contains('4') && s.contains("small"),
                "{s}"
            );
        }
        assert_ne!(a[1..], requirements(&p, 5, 8)[1..]);
    }

    #[test]
    fn text_and_image_profiles() {
        let (avg, max) = TextSummary::word_stats(["a b c", "d e", "f g h i"]);
        assert_eq!((avg, max), (3.0, 4));
        let t = TextSummary {
            name: "sst2".into(),
            n_examples: 67_349,
            pair: false,
            avg_words: 9.41,
            max_words: 52,
            label_names: vec!["negative".into(), "positive".into()],
            class_counts: vec![29_780, 37_569],
        };
        let p = DataProfile::from_text(&t).unwrap();
        let m = p.metadata().unwrap();
        assert_eq!(
            (m.task.as_str(), m.in_dim, m.out_dim, m.scale.as_str()),
            ("seq_cls", None, 2, "large")
        );
        assert_eq!(m.arch, "distilbert-base-uncased");
        let s = render(&p, 0, 0);
        assert_eq!(s, "This is a task of 2-class and large-scaled text classification over single sentences averaging 9.4 words (longest 52), with roughly balanced classes.");
        assert!(!s.contains("positive"));
        let reg = DataProfile::from_text(&TextSummary {
            label_names: vec![],
            class_counts: vec![],
            pair: true,
            n_examples: 5_749,
            ..t
        })
        .unwrap();
        assert_eq!((reg.task.as_str(), reg.out_dim()), ("seq_reg", 1));
        assert_eq!(requirements(&reg, 5, 1).len(), 5);
        let i = ImageSummary {
            name: "mnist".into(),
            n_images: 5_000,
            height: 28,
            width: 28,
            channels: 1,
            n_classes: 10,
            class_counts: vec![500; 10],
            class_names: (0..10).map(|d| d.to_string()).collect(),
            description: Some("handwritten digits".into()),
        };
        let p = DataProfile::from_image(&i).unwrap();
        assert_eq!(p.metadata().unwrap().arch, "resnet50");
        assert_eq!(
            render(&p, 0, 0),
            "This is a task of 10-class and medium-scaled image classification over 28×28 \
             grayscale images of handwritten digits (classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), \
             with roughly balanced classes."
        );
        let plain = ImageSummary {
            class_names: vec![],
            description: None,
            ..i.clone()
        };
        assert!(render(&DataProfile::from_image(&plain).unwrap(), 0, 0)
            .contains("28×28 grayscale images, with"));
        assert!(DataProfile::from_image(&ImageSummary { n_images: 0, ..i }).is_err());
    }

    #[test]
    fn number_and_name_formatting() {
        assert_eq!(fmt_num(7.0), "7");
        assert_eq!(fmt_num(4.35), "4.35");
        assert_eq!(fmt_num(0.0123456), "0.0123");
        assert_eq!(fmt_num(1234.56), "1235");
        assert_eq!(fmt_num(-2.5), "-2.5");
        assert_eq!(fmt_num(1e308), "1.00e308");
        assert_eq!(fmt_num(-1.5e12), "-1.50e12");
        assert_eq!(fmt_num(999_999_999.0), "999999999");
        assert_eq!(humanize("SepalLengthCm"), "sepal length cm");
        assert_eq!(humanize("mean_radius"), "mean radius");
        assert_eq!(humanize("capital-gain"), "capital gain");
    }

    #[test]
    fn requirement_check_lists_missing_elements() {
        let p = DataProfile::from_table(&tiny()).unwrap();
        for t in 0..N_TEMPLATES {
            assert_eq!(
                p.check_requirement(&render(&p, t, 0)),
                Ok(()),
                "template {t}"
            );
        }
        let e = p
            .check_requirement("This is a task of 15-class and small-scaled image classification.")
            .unwrap_err();
        assert_eq!(
            e,
            "the requirement must state the task type as `tabular classification`, the number of classes \
             as `3-class`, the number of input features as `4-feature`"
        );
        assert!(p
            .check_requirement("A 3 class Tabular Classification, 4 input features, Small.")
            .is_ok());
    }

    #[test]
    fn metadata_check_names_fields() {
        let p = DataProfile::from_table(&tiny()).unwrap();
        let good = p.metadata().unwrap();
        assert!(p.check_metadata(&good).is_ok());
        let e = p
            .check_metadata(&Metadata {
                in_dim: Some(5),
                ..good.clone()
            })
            .unwrap_err();
        assert!(
            e.contains("`in_dim` is 5 but the data has 4 input features"),
            "{e}"
        );
        let e = p
            .check_metadata(&Metadata {
                out_dim: 2,
                ..good.clone()
            })
            .unwrap_err();
        assert!(
            e.contains("`out_dim` is 2 but the data has 3 classes"),
            "{e}"
        );
        let e = p
            .check_metadata(&Metadata {
                scale: "large".into(),
                ..good
            })
            .unwrap_err();
        assert!(e.contains("`scale`"), "{e}");
    }
}
