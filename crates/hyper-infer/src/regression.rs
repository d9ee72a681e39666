//! Regression on any table in one forward pass. The data-conditioned table generator
//! ([`crate::any_table`]) was meta-trained on classes, so a numeric target is shown to it
//! as [`BINS`] quantile bins of the training split's values; its generated hidden layer,
//! extended by [`crate::basis`] (identity units, so the linear part of the target is never
//! lost, hinges and [`RANDOM_UNITS`] random units), is then read out by ridge regression,
//! in closed form, on the standardised training target, the ridge strength chosen by the
//! leave-one-out error of training rows plus the validation error (as the LDA head is
//! chosen for classes). The readout and the target's scale are folded into the MLP's
//! output layer, so the model directory holds a plain `in → hidden → 1` MLP whose output
//! is the predicted value itself. No gradient step.

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use datasets::preprocess::Split;
use hyper_core::readout::ridge_solve_many;
use hyper_core::ParamMap;
use serde::{Deserialize, Serialize};

/// Quantile bins of the training target that the generator sees as classes.
pub const BINS: usize = 8;

/// Random units of the regression readout's hidden layer ([`crate::basis`]).
pub const RANDOM_UNITS: usize = 256;

/// The most training rows the ridge readout is fitted on (the first of the training
/// split, which is a seeded permutation).
pub const RIDGE_ROWS: usize = 8_000;

/// The largest leverage a training row may have under a candidate λ.
pub const MAX_LEVERAGE: f64 = 0.99;

/// Training rows whose exact leave-one-out residuals help choose λ: a small table's
/// validation split (18 rows for 178) alone picks it by chance.
pub const LOO_ROWS: usize = 1_000;

/// Ridge strengths tried (on the Gram matrix divided by the rows); the leave-one-out
/// error of at most [`LOO_ROWS`] training rows plus the validation error picks one.
pub const LAMBDAS: [f64; 8] = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0];

/// What `model.json` records of a regression model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionInfo {
    /// Why the target was read as values (the rule, or `--task regression`).
    pub rule: String,
    /// The training split's target mean and standard deviation (the readout was fitted
    /// on the standardised target; the output layer already maps back to this scale).
    pub target_mean: f64,
    pub target_std: f64,
    pub bins: usize,
    pub lambda: f64,
    /// The readout's hidden units ([`crate::basis`]).
    pub units: crate::basis::BasisInfo,
}

/// Bins `values` by the quantiles of the training rows `train`: the label of each row
/// (`0..k`) and a name per bin. Equal quantiles merge, so `k` may be below `bins`.
pub fn quantile_bins(values: &[f64], train: &[usize], bins: usize) -> (Vec<usize>, Vec<String>) {
    let mut t: Vec<f64> = train.iter().map(|&i| values[i]).collect();
    t.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..bins)
        .filter_map(|k| t.get(k * t.len() / bins).copied())
        .collect();
    edges.dedup();
    if let Some(&lo) = t.first() {
        edges.retain(|&e| e > lo);
    }
    let labels = values
        .iter()
        .map(|v| edges.partition_point(|e| e <= v))
        .collect();
    let names = (0..=edges.len())
        .map(
            |k| match (k.checked_sub(1).map(|j| edges[j]), edges.get(k)) {
                (None, Some(hi)) => format!("below {hi}"),
                (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
                (Some(lo), None) => format!("{lo} and above"),
                (None, None) => "all".to_string(),
            },
        )
        .collect();
    (labels, names)
}

/// A fitted readout: the regression MLP's parameters and what was chosen.
#[derive(Debug, Clone)]
pub struct Readout {
    /// `mlp.0.*` (the generated units, then the basis units) and `mlp.1.*` `[1, h]`.
    pub params: ParamMap,
    pub hidden: usize,
    pub info: RegressionInfo,
    /// R² of the chosen readout on the validation rows.
    pub val_r2: f64,
}

/// Rows `x` (`n × d`, row-major) through `w` `[h, d]`, `b` `[h]` and ReLU, as f64 rows.
fn hidden_rows(x: &[f32], d: usize, w: &Tensor, b: &Tensor) -> Result<Vec<Vec<f64>>> {
    Ok(crate::basis::hidden_rows(x, d, w, b)?
        .into_iter()
        .map(|r| r.into_iter().map(f64::from).collect())
        .collect())
}

/// Fits the readout over the generated hidden layer `generated` (`mlp.0.weight|bias`),
/// extended by [`crate::basis::extend`] (knots from `train`, random units from `seed`), on
/// the preprocessed training rows `(train.x, train_y)`, choosing λ with `(val_x, val_y)`.
/// `rule` says why the target is a regression target.
pub fn fit_readout(
    generated: &ParamMap,
    (train, train_y): (&Split, &[f64]),
    (val_x, val_y): (&[f32], &[f64]),
    rule: &str,
    seed: u64,
) -> Result<Readout> {
    let d = train.n_features;
    let train_x = &train.x[..];
    ensure!(
        train_y.len() >= 2 && !val_y.is_empty(),
        "regression needs at least 2 training rows and 1 validation row ({} and {})",
        train_y.len(),
        val_y.len()
    );
    let (w0, b0) = (generated.get("mlp.0.weight")?, generated.get("mlp.0.bias")?);
    let (w, b, units) = crate::basis::extend(w0, b0, train, RANDOM_UNITS, seed)?;
    let h = w.dim(0)?;
    let rows = hidden_rows(train_x, d, &w, &b)?;
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..h)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    // One scale for every unit (their root-mean-square spread), not one per unit: a unit
    // active on a handful of training rows has a tiny spread, and dividing by it lets one
    // test row that activates it strongly swing the prediction (measured: R² −2.1 on a
    // wine split). Dead units (no spread) stay out.
    let spread: Vec<f64> = (0..h)
        .map(|j| (rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt())
        .collect();
    let live: Vec<f64> = spread.iter().copied().filter(|&v| v > 1e-12).collect();
    let common = (live.iter().map(|v| v * v).sum::<f64>() / live.len().max(1) as f64).sqrt();
    let sd: Vec<f64> = spread
        .iter()
        .map(|&v| if v > 1e-12 { common } else { 0.0 })
        .collect();
    let z = |r: &[f64]| -> Vec<f64> {
        (0..h)
            .map(|j| {
                if sd[j] > 1e-12 {
                    (r[j] - mean[j]) / sd[j]
                } else {
                    0.0
                }
            })
            .collect()
    };
    let y_mean = train_y.iter().sum::<f64>() / n;
    let y_sd = (train_y.iter().map(|y| (y - y_mean).powi(2)).sum::<f64>() / n).sqrt();
    if y_sd.is_nan() || y_sd <= 0.0 {
        bail!("the target is constant in the training split ({y_mean}): nothing to regress");
    }
    // The standardised training rows, row-major: the Gram matrix and the leave-one-out
    // residuals of every λ read them.
    let zt: Vec<f64> = rows.iter().flat_map(|r| z(r)).collect();
    let zm = Tensor::from_slice(&zt, (rows.len(), h), &Device::Cpu)?;
    let gram: Vec<f64> = (zm.t()?.matmul(&zm)? / n)?.flatten_all()?.to_vec1()?;
    let yz = Tensor::from_vec(
        train_y
            .iter()
            .map(|y| (y - y_mean) / y_sd)
            .collect::<Vec<_>>(),
        (rows.len(), 1),
        &Device::Cpu,
    )?;
    let rhs: Vec<f64> = (zm.t()?.matmul(&yz)? / n)?.flatten_all()?.to_vec1()?;
    let val_z: Vec<Vec<f64>> = hidden_rows(val_x, d, &w, &b)?
        .iter()
        .map(|r| z(r))
        .collect();
    let loo_rows = rows.len().min(LOO_ROWS);
    let unit: Vec<Vec<f64>> = (0..h)
        .map(|i| (0..h).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    let ys: Vec<f64> = yz.flatten_all()?.to_vec1()?;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut rhs_all: Vec<&[f64]> = vec![&rhs];
    rhs_all.extend(unit.iter().map(Vec::as_slice));
    let mut best: Option<(f64, f64, Vec<f64>, f64)> = None;
    for lambda in LAMBDAS {
        let mut sol = ridge_solve_many(&gram, h, &rhs_all, lambda)
            .with_context(|| format!("ridge readout at λ = {lambda}"))?;
        let coef = sol.remove(0);
        let inv = sol;
        // Exact leave-one-out residuals of the standardised target: e / (1 − h_ii), with
        // the leverage h_ii = z_iᵀ (ZᵀZ / n + λ I)⁻¹ z_i / n. A λ under which some
        // training row has a leverage near 1 all but interpolates the training rows (more
        // units than rows): its residuals are rounding noise, so it is not a candidate
        // (the largest λ always is).
        let mut sse = 0.0;
        let mut interpolates = false;
        for (i, zi) in zt.chunks_exact(h).take(loo_rows).enumerate() {
            let lev = zi
                .iter()
                .enumerate()
                .map(|(a, &v)| v * dot(&inv[a], zi))
                .sum::<f64>()
                / n;
            interpolates |= lev > MAX_LEVERAGE;
            sse += ((ys[i] - dot(zi, &coef)) / (1.0 - lev).max(1e-6)).powi(2);
        }
        if interpolates && lambda < LAMBDAS[LAMBDAS.len() - 1] {
            continue;
        }
        let pred: Vec<f64> = val_z
            .iter()
            .map(|r| y_mean + y_sd * dot(r, &coef))
            .collect();
        sse += pred
            .iter()
            .zip(val_y)
            .map(|(p, y)| ((p - y) / y_sd).powi(2))
            .sum::<f64>();
        let score = -sse / (loo_rows + val_y.len()) as f64;
        // Ties go to the larger λ (the smoother readout).
        if best.as_ref().is_none_or(|(s, _, _, _)| score >= *s) {
            best = Some((score, lambda, coef, r2_or_mse(&pred, val_y)));
        }
    }
    let (_, lambda, coef, val_r2) = best.expect("at least one λ");
    // Fold the standardisation and the target's scale into the output layer:
    // ŷ = ȳ + s_y Σ c_j (h_j − μ_j) / σ_j.
    let out_w: Vec<f32> = (0..h)
        .map(|j| {
            if sd[j] > 1e-12 {
                (y_sd * coef[j] / sd[j]) as f32
            } else {
                0.0
            }
        })
        .collect();
    let out_b = y_mean - (0..h).map(|j| out_w[j] as f64 * mean[j]).sum::<f64>();
    let mut params = ParamMap::new();
    params.insert("mlp.0.weight", w);
    params.insert("mlp.0.bias", b);
    params.insert(
        "mlp.1.weight",
        Tensor::from_vec(out_w, (1, h), &Device::Cpu)?,
    );
    params.insert(
        "mlp.1.bias",
        Tensor::from_vec(vec![out_b as f32], 1, &Device::Cpu)?,
    );
    Ok(Readout {
        params,
        hidden: h,
        info: RegressionInfo {
            rule: rule.to_string(),
            target_mean: y_mean,
            target_std: y_sd,
            bins: BINS,
            lambda,
            units,
        },
        val_r2,
    })
}

/// R² of `pred` on `gold`; when `gold` is constant (a tiny validation split), minus the
/// mean squared error, so the choice still prefers the closer readout.
fn r2_or_mse(pred: &[f64], gold: &[f64]) -> f64 {
    match datasets::metrics::regression_scores(pred, gold) {
        Ok(s) => s.r2,
        Err(_) => {
            -pred
                .iter()
                .zip(gold)
                .map(|(p, y)| (p - y).powi(2))
                .sum::<f64>()
                / gold.len().max(1) as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    #[test]
    fn quantile_bins_split_the_training_rows_evenly() {
        let values: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let train: Vec<usize> = (0..100).collect();
        let (labels, names) = quantile_bins(&values, &train, 4);
        assert_eq!(names, ["below 25", "25 to 50", "50 to 75", "75 and above"]);
        for k in 0..4 {
            assert_eq!(labels.iter().filter(|&&l| l == k).count(), 25);
        }
        // Ties merge bins: a target with two values gets two bins.
        let two: Vec<f64> = (0..10).map(|i| (i % 2) as f64).collect();
        let (labels, names) = quantile_bins(&two, &(0..10).collect::<Vec<_>>(), 8);
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(labels, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    }

    /// A linear target is recovered through the identity units, whatever the generated
    /// hidden layer is; scaling the target scales the predictions.
    #[test]
    fn readout_recovers_a_linear_target_and_is_scale_equivariant() {
        let d = 3;
        let mut g = ParamMap::new();
        let w: Vec<f32> = (0..4 * d)
            .map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.3)
            .collect();
        g.insert(
            "mlp.0.weight",
            Tensor::from_vec(w, (4, d), &Device::Cpu).unwrap(),
        );
        g.insert(
            "mlp.0.bias",
            Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
        );
        let row = |i: usize| -> Vec<f32> {
            (0..d)
                .map(|j| (((i * 13 + j * 29) % 97) as f32) / 97.0)
                .collect()
        };
        let target = |x: &[f32]| 3.0 * x[0] as f64 - 2.0 * x[1] as f64 + 0.5 * x[2] as f64 + 1.0;
        let (tx, vx): (Vec<Vec<f32>>, Vec<Vec<f32>>) =
            ((0..80).map(row).collect(), (80..100).map(row).collect());
        let ty: Vec<f64> = tx.iter().map(|x| target(x)).collect();
        let vy: Vec<f64> = vx.iter().map(|x| target(x)).collect();
        let flat = |v: &[Vec<f32>]| v.iter().flatten().copied().collect::<Vec<f32>>();
        let (ftx, fvx) = (flat(&tx), flat(&vx));
        let train = Split {
            x: ftx.clone(),
            y: vec![0; ty.len()],
            n_features: d,
        };
        let r = fit_readout(&g, (&train, &ty), (&fvx, &vy), "test", 0).unwrap();
        assert_eq!(r.info.units.identity, 2 * d);
        assert_eq!(r.hidden, r.info.units.total());
        assert!(r.val_r2 > 0.999, "R² {}", r.val_r2);
        let predict = |p: &ParamMap, x: &[f32]| -> Vec<f32> {
            let xt = Tensor::from_vec(x.to_vec(), (x.len() / d, d), &Device::Cpu).unwrap();
            let h = xt
                .matmul(&p.get("mlp.0.weight").unwrap().t().unwrap())
                .unwrap()
                .broadcast_add(p.get("mlp.0.bias").unwrap())
                .unwrap()
                .relu()
                .unwrap();
            h.matmul(&p.get("mlp.1.weight").unwrap().t().unwrap())
                .unwrap()
                .broadcast_add(p.get("mlp.1.bias").unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let ty10: Vec<f64> = ty.iter().map(|y| 10.0 * y).collect();
        let vy10: Vec<f64> = vy.iter().map(|y| 10.0 * y).collect();
        let r10 = fit_readout(&g, (&train, &ty10), (&fvx, &vy10), "test", 0).unwrap();
        assert_eq!(r10.info.lambda, r.info.lambda);
        for (a, b) in predict(&r.params, &fvx)
            .iter()
            .zip(predict(&r10.params, &fvx))
        {
            assert!((10.0 * a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
        }
        // A constant target is an error naming it.
        let flat_y = vec![2.0; ty.len()];
        let e = fit_readout(&g, (&train, &flat_y), (&fvx, &vy), "test", 0).unwrap_err();
        assert!(e.to_string().contains("constant"), "{e}");
    }
}
