//! The GLUE metrics (accuracy, binary F1, Matthews correlation, Pearson, Spearman) and
//! top-k accuracy for images.
//!
//! Every function checks its inputs: empty or mismatched slices are an error, never a `NaN`.
//! Where a metric is undefined but has a conventional value (MCC and F1 with a zero
//! denominator) we return sklearn's value and say so in the doc comment; where it has none
//! (Pearson/Spearman of a constant vector, which scipy answers with `NaN`) it is an error.

use crate::error::{DataError, Result};

/// A metric by name, as GLUE reports them per task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Accuracy,
    /// Binary F1 with class 1 as the positive class (MRPC, QQP).
    F1,
    /// Matthews correlation coefficient (CoLA).
    Matthews,
    Pearson,
    Spearman,
    /// Top-k accuracy over a score matrix (images).
    TopK(usize),
}

impl Metric {
    /// Short name used in tables and JSON (`acc`, `f1`, `mcc`, `pearson`, `spearman`, `top5`).
    pub fn name(self) -> String {
        match self {
            Metric::Accuracy => "acc".into(),
            Metric::F1 => "f1".into(),
            Metric::Matthews => "mcc".into(),
            Metric::Pearson => "pearson".into(),
            Metric::Spearman => "spearman".into(),
            Metric::TopK(k) => format!("top{k}"),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

fn err(metric: &'static str, msg: impl Into<String>) -> DataError {
    DataError::Metric {
        metric,
        msg: msg.into(),
    }
}

fn check_pair<T>(metric: &'static str, a: &[T], b: &[T]) -> Result<()> {
    if a.len() != b.len() {
        return Err(err(
            metric,
            format!(
                "length mismatch: {} predictions vs {} targets",
                a.len(),
                b.len()
            ),
        ));
    }
    if a.is_empty() {
        return Err(err(metric, "no examples"));
    }
    Ok(())
}

fn check_finite(metric: &'static str, what: &str, x: &[f64]) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(err(metric, format!("{what}[{i}] = {} is not finite", x[i]))),
        None => Ok(()),
    }
}

/// Fraction of positions where `pred == gold`.
pub fn accuracy(pred: &[usize], gold: &[usize]) -> Result<f64> {
    check_pair("accuracy", pred, gold)?;
    let hits = pred.iter().zip(gold).filter(|(p, g)| p == g).count();
    Ok(hits as f64 / pred.len() as f64)
}

/// Binary F1 with class 1 positive: `2·tp / (2·tp + fp + fn)`.
///
/// Labels must be 0 or 1. When there are no positives at all (`tp + fp + fn = 0`) the
/// value is 0.0, as sklearn's `f1_score` with its default `zero_division`.
pub fn f1_binary(pred: &[usize], gold: &[usize]) -> Result<f64> {
    check_pair("f1", pred, gold)?;
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (i, (&p, &g)) in pred.iter().zip(gold).enumerate() {
        if p > 1 || g > 1 {
            return Err(err(
                "f1",
                format!("binary F1 needs labels 0/1; position {i} has prediction {p}, target {g}"),
            ));
        }
        match (p, g) {
            (1, 1) => tp += 1,
            (1, 0) => fp += 1,
            (0, 1) => fn_ += 1,
            _ => {}
        }
    }
    let denom = 2 * tp + fp + fn_;
    Ok(if denom == 0 {
        0.0
    } else {
        2.0 * tp as f64 / denom as f64
    })
}

/// Matthews correlation coefficient, multiclass form (Gorodkin 2004, as sklearn's
/// `matthews_corrcoef`): `(c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²))` with
/// `c` correct, `s` samples, `p_k`/`t_k` predicted/true counts of class k.
///
/// Returns 0.0 when the denominator is 0 (all predictions or all targets one class),
/// as sklearn does.
pub fn matthews_corrcoef(pred: &[usize], gold: &[usize]) -> Result<f64> {
    check_pair("mcc", pred, gold)?;
    // Per class: (predicted count, true count); a map, so label values need not be small.
    let mut counts: std::collections::HashMap<usize, (f64, f64)> = Default::default();
    let mut correct = 0f64;
    for (&p, &g) in pred.iter().zip(gold) {
        counts.entry(p).or_default().0 += 1.0;
        counts.entry(g).or_default().1 += 1.0;
        if p == g {
            correct += 1.0;
        }
    }
    let s = pred.len() as f64;
    let pt: f64 = counts.values().map(|(p, t)| p * t).sum();
    let pp: f64 = counts.values().map(|(p, _)| p * p).sum();
    let tt: f64 = counts.values().map(|(_, t)| t * t).sum();
    let cov_ytyp = correct * s - pt;
    let cov_ypyp = s * s - pp;
    let cov_ytyt = s * s - tt;
    let denom = cov_ypyp * cov_ytyt;
    if denom == 0.0 {
        return Ok(0.0);
    }
    Ok(cov_ytyp / denom.sqrt())
}

/// Pearson correlation. A constant input has no correlation: that is an error here
/// (scipy returns `NaN`).
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64> {
    pearson_named("pearson", x, y)
}

fn pearson_named(metric: &'static str, x: &[f64], y: &[f64]) -> Result<f64> {
    check_pair(metric, x, y)?;
    check_finite(metric, "predictions", x)?;
    check_finite(metric, "targets", y)?;
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        let which = if sxx == 0.0 { "predictions" } else { "targets" };
        return Err(err(
            metric,
            format!("{which} are constant (zero variance): correlation is undefined"),
        ));
    }
    // Clamp rounding drift so a perfect correlation is exactly ±1.
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// R², RMSE and MAE of `pred` against `gold` (sklearn's `r2_score`, root of
/// `mean_squared_error`, `mean_absolute_error`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegressionScores {
    pub r2: f64,
    pub rmse: f64,
    pub mae: f64,
}

/// [`RegressionScores`]. R² = 1 − SS_res / SS_tot; constant targets (SS_tot = 0) are an
/// error, as R² is undefined there (sklearn returns 1.0 or 0.0 by convention).
pub fn regression_scores(pred: &[f64], gold: &[f64]) -> Result<RegressionScores> {
    let metric = "r2";
    check_pair(metric, pred, gold)?;
    check_finite(metric, "predictions", pred)?;
    check_finite(metric, "targets", gold)?;
    let n = gold.len() as f64;
    let mean = gold.iter().sum::<f64>() / n;
    let ss_tot: f64 = gold.iter().map(|y| (y - mean).powi(2)).sum();
    let ss_res: f64 = pred.iter().zip(gold).map(|(p, y)| (p - y).powi(2)).sum();
    if ss_tot == 0.0 {
        return Err(err(
            metric,
            "targets are constant (zero variance): R² is undefined",
        ));
    }
    Ok(RegressionScores {
        r2: 1.0 - ss_res / ss_tot,
        rmse: (ss_res / n).sqrt(),
        mae: pred
            .iter()
            .zip(gold)
            .map(|(p, y)| (p - y).abs())
            .sum::<f64>()
            / n,
    })
}

/// 1-based ranks, ties get the average of the ranks they span (scipy `rankdata` "average").
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) hold ranks i+1..=j+1; their mean is (i+j)/2 + 1.
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman rank correlation: Pearson of the average ranks (ties averaged, as scipy).
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64> {
    check_pair("spearman", x, y)?;
    check_finite("spearman", "predictions", x)?;
    check_finite("spearman", "targets", y)?;
    pearson_named("spearman", &average_ranks(x), &average_ranks(y))
}

/// Top-k accuracy from a row-major `n × n_classes` score matrix.
///
/// The target counts as hit when fewer than `k` classes rank above it; ties are broken
/// in favour of the lower class index (a stable descending sort), so the result is
/// deterministic. `k >= n_classes` is always 1.0.
pub fn top_k_accuracy(scores: &[f32], n_classes: usize, gold: &[usize], k: usize) -> Result<f64> {
    const M: &str = "top-k accuracy";
    if k == 0 {
        return Err(err(M, "k must be at least 1"));
    }
    if n_classes == 0 {
        return Err(err(M, "n_classes must be at least 1"));
    }
    if gold.is_empty() {
        return Err(err(M, "no examples"));
    }
    if scores.len() != gold.len() * n_classes {
        return Err(err(
            M,
            format!(
                "score matrix has {} values, expected {} targets × {} classes = {}",
                scores.len(),
                gold.len(),
                n_classes,
                gold.len() * n_classes
            ),
        ));
    }
    let mut hits = 0usize;
    for (i, (row, &g)) in scores.chunks_exact(n_classes).zip(gold).enumerate() {
        if g >= n_classes {
            return Err(err(
                M,
                format!("target {g} at row {i} is out of range for {n_classes} classes"),
            ));
        }
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(err(
                M,
                format!("score[{i}][{j}] = {} is not finite", row[j]),
            ));
        }
        let sg = row[g];
        let above = row
            .iter()
            .enumerate()
            .filter(|&(j, &s)| s > sg || (s == sg && j < g))
            .count();
        if above < k {
            hits += 1;
        }
    }
    Ok(hits as f64 / gold.len() as f64)
}
