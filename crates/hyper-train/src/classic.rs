//! Per-dataset trained classical learners, the same-run references for unseen tables:
//! logistic regression (`linfa-logistic`, L-BFGS) and gradient-boosted trees (`gbdt`,
//! one booster per class for more than two classes). Both read the preprocessed splits.

use anyhow::{anyhow, Result};
use datasets::preprocess::Split;
use gbdt::config::Config;
use gbdt::decision_tree::{Data, DataVec, ValueType};
use gbdt::gradient_boost::GBDT;
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassicConfig {
    /// L2 strengths the logistic regression tries (picked on the validation split).
    pub lr_alphas: Vec<f64>,
    pub lr_max_iterations: u64,
    pub gbdt_iterations: usize,
    pub gbdt_depth: u32,
    pub gbdt_shrinkage: f32,
    pub gbdt_min_leaf: usize,
}

impl Default for ClassicConfig {
    fn default() -> Self {
        Self {
            lr_alphas: vec![0.01, 0.1, 1.0, 10.0],
            lr_max_iterations: 200,
            gbdt_iterations: 100,
            gbdt_depth: 4,
            gbdt_shrinkage: 0.1,
            gbdt_min_leaf: 5,
        }
    }
}

fn records(s: &Split) -> Result<Array2<f64>> {
    Array2::from_shape_vec(
        (s.n_rows(), s.n_features),
        s.x.iter().map(|&v| v as f64).collect(),
    )
    .map_err(|e| anyhow!("feature matrix: {e}"))
}

fn accuracy(pred: &[usize], y: &[usize]) -> f64 {
    pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len().max(1) as f64
}

/// The most frequent training class, scored on `test`.
pub fn majority(train: &Split, n_classes: usize, test: &Split) -> f64 {
    let mut counts = vec![0usize; n_classes];
    for &y in &train.y {
        counts[y] += 1;
    }
    let best = (0..n_classes)
        .max_by_key(|&c| (counts[c], usize::MAX - c))
        .unwrap_or(0);
    test.y.iter().filter(|&&y| y == best).count() as f64 / test.n_rows().max(1) as f64
}

/// `train`'s per-feature mean and standard deviation (constant columns: 1).
fn standardiser(train: &Split) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (train.n_rows().max(1) as f64, train.n_features);
    let mut mu = vec![0.0; d];
    let mut sd = vec![0.0; d];
    for i in 0..train.n_rows() {
        for (j, &v) in train.row(i).iter().enumerate() {
            mu[j] += v as f64 / n;
        }
    }
    for i in 0..train.n_rows() {
        for (j, &v) in train.row(i).iter().enumerate() {
            sd[j] += (v as f64 - mu[j]).powi(2) / n;
        }
    }
    let sd = sd
        .into_iter()
        .map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 })
        .collect();
    (mu, sd)
}

fn standardised(s: &Split, mu: &[f64], sd: &[f64]) -> Result<Array2<f64>> {
    let mut r = records(s)?;
    for mut row in r.rows_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (*v - mu[j]) / sd[j];
        }
    }
    Ok(r)
}

/// Multinomial logistic regression on standardised features (statistics of `train`),
/// its L2 strength picked from `lr_alphas` by accuracy on `val` (ties → the first);
/// test accuracy.
pub fn logistic_regression(
    train: &Split,
    val: &Split,
    test: &Split,
    cfg: &ClassicConfig,
) -> Result<f64> {
    let (mu, sd) = standardiser(train);
    let [xr, xv, xt] = [train, val, test].map(|s| standardised(s, &mu, &sd));
    fit_logistic(xr?, &train.y, (xv?, &val.y), xt?, &test.y, cfg)
}

/// [`logistic_regression`] on the features as given (TF-IDF rows, already on one scale,
/// whose rare terms standardising would blow up).
pub fn logistic_regression_unscaled(
    train: &Split,
    val: &Split,
    test: &Split,
    cfg: &ClassicConfig,
) -> Result<f64> {
    fit_logistic(
        records(train)?,
        &train.y,
        (records(val)?, &val.y),
        records(test)?,
        &test.y,
        cfg,
    )
}

fn fit_logistic(
    x: Array2<f64>,
    y: &[usize],
    (xv, yv): (Array2<f64>, &[usize]),
    xt: Array2<f64>,
    yt: &[usize],
    cfg: &ClassicConfig,
) -> Result<f64> {
    let ds = Dataset::new(x, Array1::from(y.to_vec()));
    let mut best: Option<(f64, f64)> = None;
    for &alpha in &cfg.lr_alphas {
        let model = MultiLogisticRegression::default()
            .alpha(alpha)
            .max_iterations(cfg.lr_max_iterations)
            .fit(&ds)
            .map_err(|e| anyhow!("logistic regression (alpha {alpha}): {e}"))?;
        let val_acc = accuracy(&model.predict(&xv).to_vec(), yv);
        if best.is_none_or(|(a, _)| val_acc > a) {
            best = Some((val_acc, accuracy(&model.predict(&xt).to_vec(), yt)));
        }
    }
    best.map(|b| b.1)
        .ok_or_else(|| anyhow!("classic.lr_alphas is empty"))
}

fn gbdt_data(s: &Split, positive: Option<usize>) -> DataVec {
    (0..s.n_rows())
        .map(|i| {
            let f: Vec<ValueType> = s.row(i).iter().map(|&v| v as ValueType).collect();
            match positive {
                Some(c) => {
                    let label = if s.y[i] == c { 1.0 } else { -1.0 };
                    Data::new_training_data(f, 1.0, label, None)
                }
                None => Data::new_test_data(f, None),
            }
        })
        .collect()
}

/// The `gbdt` crate's settings for `features` inputs and `loss`, from `cfg`.
fn gbdt_config(features: usize, loss: &str, cfg: &ClassicConfig) -> Config {
    let mut conf = Config::new();
    conf.set_feature_size(features);
    conf.set_max_depth(cfg.gbdt_depth);
    conf.set_iterations(cfg.gbdt_iterations);
    conf.set_shrinkage(cfg.gbdt_shrinkage as ValueType);
    conf.set_loss(loss);
    conf.set_min_leaf_size(cfg.gbdt_min_leaf);
    conf.set_data_sample_ratio(1.0);
    conf.set_feature_sample_ratio(1.0);
    conf.set_training_optimization_level(2);
    conf
}

/// Gradient-boosted trees (log-likelihood loss; one-vs-rest above two classes); test
/// accuracy.
pub fn gbdt(train: &Split, n_classes: usize, test: &Split, cfg: &ClassicConfig) -> Result<f64> {
    let conf = gbdt_config(train.n_features, "LogLikelyhood", cfg);
    let test_dv = gbdt_data(test, None);
    let positives: Vec<usize> = if n_classes == 2 {
        vec![1]
    } else {
        (0..n_classes).collect()
    };
    let mut scores = vec![vec![0 as ValueType; positives.len()]; test.n_rows()];
    for (k, &c) in positives.iter().enumerate() {
        let mut dv = gbdt_data(train, Some(c));
        let mut model = GBDT::new(&conf);
        model.fit(&mut dv);
        for (i, p) in model.predict(&test_dv).into_iter().enumerate() {
            scores[i][k] = p;
        }
    }
    let pred: Vec<usize> = scores
        .iter()
        .map(|s| {
            if n_classes == 2 {
                usize::from(s[0] >= 0.5)
            } else {
                (0..s.len())
                    .max_by(|&a, &b| s[a].total_cmp(&s[b]))
                    .unwrap_or(0)
            }
        })
        .collect();
    Ok(accuracy(&pred, &test.y))
}

/// Ridge regression on standardised features (statistics of `train`), closed form, its
/// strength picked from [`hyper_infer::regression::LAMBDAS`] by R² on `val`; test
/// predictions. `*_y` are the targets of each split's rows (`Split::y` holds classes).
pub fn ridge_regression(
    (train, train_y): (&Split, &[f64]),
    (val, val_y): (&Split, &[f64]),
    test: &Split,
) -> Result<Vec<f64>> {
    let (mu, sd) = standardiser(train);
    let z = |s: &Split| -> Vec<Vec<f64>> {
        (0..s.n_rows())
            .map(|i| {
                s.row(i)
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| (v as f64 - mu[j]) / sd[j])
                    .collect()
            })
            .collect()
    };
    let (zt, zv, zs) = (z(train), z(val), z(test));
    let h = train.n_features;
    let n = zt.len() as f64;
    let y_mean = train_y.iter().sum::<f64>() / n;
    let mut gram = vec![0f64; h * h];
    let mut rhs = vec![0f64; h];
    for (r, y) in zt.iter().zip(train_y) {
        for a in 0..h {
            rhs[a] += r[a] * (y - y_mean) / n;
            for b in 0..h {
                gram[a * h + b] += r[a] * r[b] / n;
            }
        }
    }
    let predict = |rows: &[Vec<f64>], w: &[f64]| -> Vec<f64> {
        rows.iter()
            .map(|r| y_mean + r.iter().zip(w).map(|(a, b)| a * b).sum::<f64>())
            .collect()
    };
    let mut best: Option<(f64, Vec<f64>)> = None;
    for lambda in hyper_infer::regression::LAMBDAS {
        let w = hyper_core::readout::ridge_solve(&gram, h, &rhs, lambda)?;
        let r2 = datasets::metrics::regression_scores(&predict(&zv, &w), val_y)
            .map(|s| s.r2)
            .unwrap_or(f64::NEG_INFINITY);
        if best.as_ref().is_none_or(|(s, _)| r2 >= *s) {
            best = Some((r2, w));
        }
    }
    let (_, w) = best.ok_or_else(|| anyhow!("no ridge strength to try"))?;
    Ok(predict(&zs, &w))
}

/// Gradient-boosted regression trees (squared error), the same settings as [`gbdt`];
/// test predictions.
pub fn gbdt_regression(
    (train, train_y): (&Split, &[f64]),
    test: &Split,
    cfg: &ClassicConfig,
) -> Vec<f64> {
    let conf = gbdt_config(train.n_features, "SquaredError", cfg);
    let mut dv: DataVec = (0..train.n_rows())
        .map(|i| {
            let f: Vec<ValueType> = train.row(i).iter().map(|&v| v as ValueType).collect();
            Data::new_training_data(f, 1.0, train_y[i] as ValueType, None)
        })
        .collect();
    let mut model = GBDT::new(&conf);
    model.fit(&mut dv);
    model
        .predict(&gbdt_data(test, None))
        .into_iter()
        .map(|v| v as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two well separated classes on feature 0 (feature 1 is noise-free constant 0.5).
    fn easy(n: usize) -> Split {
        let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let x = y
            .iter()
            .enumerate()
            .flat_map(|(i, &c)| [c as f32 * 0.6 + (i % 7) as f32 * 0.05, 0.5])
            .collect();
        Split {
            x,
            y,
            n_features: 2,
        }
    }

    #[test]
    fn classic_learners_fit_a_separable_table() {
        let (train, test) = (easy(60), easy(20));
        let cfg = ClassicConfig::default();
        assert_eq!(majority(&train, 2, &test), 0.5);
        assert!(logistic_regression(&train, &test, &test, &cfg).unwrap() >= 0.95);
        assert!(gbdt(&train, 2, &test, &cfg).unwrap() >= 0.95);
    }
}
