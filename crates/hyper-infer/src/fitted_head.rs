//! A classifier head fitted in one pass, for a label set no generator saw: shrinkage LDA
//! ([`hyper_core::readout::lda_head`]) on a frozen (or generated-adapter) network's pooled
//! features of at most [`SUPPORT_ROWS`] training rows (round-robin over classes, so every
//! class is kept), with the training split's class prior in the bias; the shrinkage and an
//! extra prior weight are chosen on the validation rows. No gradient step. Text
//! ([`crate::text_head`], the MiniLM `classifier`) and images ([`crate::image_head`], the
//! ResNet `fc`) share it, so both modalities score the same kind of head.

use anyhow::{ensure, Result};
use candle_core::{Device, Tensor};
use hyper_core::readout::{lda_head, LinearHead};
use hyper_core::ParamMap;

/// The most training rows the fitted head reads: above it, a sample keeping every class.
pub const SUPPORT_ROWS: usize = 1024;

/// Shrinkage values the fitted head tries; the validation split picks one.
pub const SHRINKAGE: [f64; 5] = [0.01, 0.05, 0.2, 0.5, 0.9];

/// How many extra times the class prior's log may be added to the fitted head's bias.
pub const PRIOR_BOOST: [f32; 4] = [0.0, 1.0, 2.0, 4.0];

/// A fitted head and the choices made for it.
#[derive(Debug, Clone)]
pub struct FittedHead {
    pub head: LinearHead,
    pub shrinkage: f64,
    pub prior_boost: f32,
    pub support_rows: usize,
    /// The head's accuracy on the validation rows (`None` without any).
    pub val_accuracy: Option<f64>,
}

impl FittedHead {
    /// Writes the head into `params` as the linear layer `prefix` the target reads
    /// (`{prefix}.weight` `[classes, h]`, `{prefix}.bias` `[classes]`).
    pub fn insert_as(&self, params: &mut ParamMap, prefix: &str) -> Result<()> {
        let classes = self.head.bias.len();
        let h = self.head.weight.first().map_or(0, Vec::len);
        let w: Vec<f32> = self.head.weight.iter().flatten().copied().collect();
        params.insert(
            format!("{prefix}.weight"),
            Tensor::from_vec(w, (classes, h), &Device::Cpu)?,
        );
        params.insert(
            format!("{prefix}.bias"),
            Tensor::from_vec(self.head.bias.clone(), classes, &Device::Cpu)?,
        );
        Ok(())
    }

    /// How `model.json` and `generate --json` describe the head; `features` names what
    /// it reads.
    pub fn about(&self, features: &str) -> serde_json::Value {
        serde_json::json!({
            "kind": "fitted",
            "readout": format!("shrinkage LDA on {features}"),
            "support_rows": self.support_rows,
            "shrinkage": self.shrinkage,
            "prior_boost": self.prior_boost,
        })
    }
}

/// A head fitted twice, over the frozen network and over a generated adapter, with the
/// one that scores higher on the validation rows kept (text CSVs and image folders alike).
#[derive(Debug, Clone)]
pub struct AdapterChoice {
    /// The kept parameters (the frozen network's adapter factors are zero), with the
    /// head written in.
    pub params: ParamMap,
    pub head: FittedHead,
    /// Whether the generated adapter was kept.
    pub adapter: bool,
    /// Validation accuracy of the head on the frozen network and with the adapter.
    pub frozen_val: Option<f64>,
    pub adapted_val: Option<f64>,
}

/// Whether the adapter's head beats the frozen network's on the validation rows (ties and
/// no validation rows keep the frozen network).
pub fn keep_adapter(frozen: &FittedHead, adapted: &FittedHead) -> bool {
    adapted.val_accuracy.unwrap_or(0.0) > frozen.val_accuracy.unwrap_or(0.0)
}

impl AdapterChoice {
    /// Keeps the better of `frozen` and `adapted` ([`keep_adapter`]) and writes its head
    /// into its parameters as the linear layer `prefix`.
    pub fn of(
        frozen: (ParamMap, FittedHead),
        adapted: (ParamMap, FittedHead),
        prefix: &str,
    ) -> Result<Self> {
        let keep = keep_adapter(&frozen.1, &adapted.1);
        let (frozen_val, adapted_val) = (frozen.1.val_accuracy, adapted.1.val_accuracy);
        let (mut params, head) = if keep { adapted } else { frozen };
        head.insert_as(&mut params, prefix)?;
        Ok(Self {
            params,
            head,
            adapter: keep,
            frozen_val,
            adapted_val,
        })
    }

    /// How `model.json` and `generate --json` describe the head and the choice: the
    /// head's [`FittedHead::about`], `adapter` (`kept` or `dropped`, as the caller words
    /// it) and both validation accuracies.
    pub fn about(&self, features: &str, kept: &str, dropped: &str) -> serde_json::Value {
        let mut v = self.head.about(features);
        v["adapter"] = if self.adapter { kept } else { dropped }.into();
        v["val_accuracy_frozen"] = self.frozen_val.into();
        v["val_accuracy_adapted"] = self.adapted_val.into();
        v
    }
}

/// Indices into `labels` of the support sample: every row when there are at most `cap`,
/// else the first rows of each class in turn (round-robin), so every class is kept.
pub fn support_sample(labels: &[usize], classes: usize, cap: usize) -> Vec<usize> {
    if labels.len() <= cap {
        return (0..labels.len()).collect();
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &c) in labels.iter().enumerate() {
        if c < classes {
            by_class[c].push(i);
        }
    }
    let mut out = Vec::with_capacity(cap);
    for k in 0.. {
        let before = out.len();
        out.extend(by_class.iter().filter_map(|rows| rows.get(k)));
        if out.len() == before || out.len() >= cap {
            break;
        }
    }
    out.truncate(cap);
    out
}

/// Each class's log share of `labels` (a class with none: log 1e-6).
fn log_prior(labels: &[usize], classes: usize) -> Vec<f32> {
    let mut counts = vec![0f64; classes];
    labels.iter().for_each(|&c| counts[c] += 1.0);
    let n = counts.iter().sum::<f64>().max(1.0);
    counts
        .iter()
        .map(|&c| (c.max(1e-6) / n).ln() as f32)
        .collect()
}

/// Fits the head on the support rows `x`/`y`. `train_labels` are the whole training
/// split's labels (the prior the bias carries, since the support sample may be balanced);
/// `val` the validation rows that choose shrinkage and prior weight (0.5 and none without).
pub fn fit(
    x: &[Vec<f32>],
    y: &[usize],
    classes: usize,
    train_labels: &[usize],
    val: Option<(&[Vec<f32>], &[usize])>,
) -> Result<FittedHead> {
    ensure!(
        classes >= 2,
        "a classifier needs two classes, got {classes}"
    );
    let val = val.filter(|(vx, _)| !vx.is_empty());
    let data_prior = log_prior(train_labels, classes);
    let sample_prior = log_prior(y, classes);
    let mut best: Option<FittedHead> = None;
    for gamma in SHRINKAGE {
        if val.is_none() && gamma != 0.5 {
            continue;
        }
        let lda = lda_head(x, y, classes, gamma)?;
        for boost in PRIOR_BOOST.into_iter().rev() {
            if val.is_none() && boost != 0.0 {
                continue;
            }
            let head = with_prior(&lda, &data_prior, &sample_prior, boost);
            let score = val.map(|(vx, vy)| head.accuracy(vx, vy));
            // Ties go to the later candidate: more shrinkage, less prior boost.
            if best
                .as_ref()
                .is_none_or(|b| score.unwrap_or(0.0) >= b.val_accuracy.unwrap_or(0.0))
            {
                best = Some(FittedHead {
                    head,
                    shrinkage: gamma,
                    prior_boost: boost,
                    support_rows: x.len(),
                    val_accuracy: score,
                });
            }
        }
    }
    Ok(best.expect("at least one shrinkage tried"))
}

/// `lda` with the bias moved from the sample's prior to the data's, plus `boost` times it.
fn with_prior(
    lda: &LinearHead,
    data_prior: &[f32],
    sample_prior: &[f32],
    boost: f32,
) -> LinearHead {
    let mut head = lda.clone();
    for ((b, d), s) in head.bias.iter_mut().zip(data_prior).zip(sample_prior) {
        *b += d - s + boost * d;
    }
    head
}

/// [`fit`] with its choices made on a fifth of the support rows (every fifth row) and
/// the head then refitted on all of them with those choices: for callers whose
/// validation rows must stay untouched, so the validation score they report is not
/// the maximum over the candidates. `val_accuracy` is the held-out fifth's.
pub fn fit_choosing_inside(
    x: &[Vec<f32>],
    y: &[usize],
    classes: usize,
    train_labels: &[usize],
) -> Result<FittedHead> {
    let (mut fx, mut fy, mut cx, mut cy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (r, &c)) in x.iter().zip(y).enumerate() {
        if i % 5 == 4 {
            cx.push(r.clone());
            cy.push(c);
        } else {
            fx.push(r.clone());
            fy.push(c);
        }
    }
    let choice = fit(&fx, &fy, classes, train_labels, Some((&cx, &cy)))?;
    let lda = lda_head(x, y, classes, choice.shrinkage)?;
    let head = with_prior(
        &lda,
        &log_prior(train_labels, classes),
        &log_prior(y, classes),
        choice.prior_boost,
    );
    Ok(FittedHead {
        head,
        support_rows: x.len(),
        ..choice
    })
}

/// The L2-normalised rows of `f` (a sentence embedding's scale).
pub fn normalised(f: &[Vec<f32>]) -> Vec<Vec<f32>> {
    f.iter()
        .map(|r| {
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            r.iter().map(|v| v / n).collect()
        })
        .collect()
}

/// Each class's mean row of `f` (a class without rows: the mean of all rows).
pub fn class_means(f: &[Vec<f32>], y: &[usize], classes: usize) -> Vec<Vec<f32>> {
    let h = f.first().map_or(0, Vec::len);
    let mut sum = vec![vec![0f64; h]; classes + 1];
    let mut count = vec![0f64; classes + 1];
    for (x, &c) in f.iter().zip(y) {
        for slot in [c.min(classes), classes] {
            count[slot] += 1.0;
            sum[slot]
                .iter_mut()
                .zip(x)
                .for_each(|(s, &v)| *s += v as f64);
        }
    }
    (0..classes)
        .map(|c| {
            let k = if count[c] > 0.0 { c } else { classes };
            let n = count[k].max(1.0);
            sum[k].iter().map(|&s| (s / n) as f32).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three classes of 4-d features around distinct centres, `n` rows each, with a
    /// deterministic spread.
    fn blobs(n: usize) -> (Vec<Vec<f32>>, Vec<usize>) {
        let centres = [
            [2.0, 0.0, 0.0, 1.0],
            [0.0, 2.0, 0.0, -1.0],
            [0.0, 0.0, 2.0, 0.5],
        ];
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            for (c, m) in centres.iter().enumerate() {
                let t = (i * 7 + c * 3) as f32;
                x.push(
                    m.iter()
                        .enumerate()
                        .map(|(j, v)| v + 0.6 * ((t + j as f32) * 1.3).sin())
                        .collect(),
                );
                y.push(c);
            }
        }
        (x, y)
    }

    #[test]
    fn support_sample_keeps_every_class_round_robin() {
        let labels = [0, 0, 0, 0, 0, 0, 1, 2, 0, 1];
        assert_eq!(support_sample(&labels, 3, 10), (0..10).collect::<Vec<_>>());
        // Round 0 takes each class's first row, round 1 the second: 0, 6, 7, 1, 9.
        assert_eq!(support_sample(&labels, 3, 5), vec![0, 6, 7, 1, 9]);
    }

    #[test]
    fn head_does_not_depend_on_row_order() {
        let (x, y) = blobs(12);
        let (vx, vy) = blobs(3);
        let a = fit(&x, &y, 3, &y, Some((&vx, &vy))).unwrap();
        let order: Vec<usize> = (0..x.len()).rev().collect();
        let px: Vec<Vec<f32>> = order.iter().map(|&i| x[i].clone()).collect();
        let py: Vec<usize> = order.iter().map(|&i| y[i]).collect();
        let b = fit(&px, &py, 3, &py, Some((&vx, &vy))).unwrap();
        assert_eq!((a.shrinkage, a.prior_boost), (b.shrinkage, b.prior_boost));
        for (wa, wb) in a
            .head
            .weight
            .iter()
            .flatten()
            .zip(b.head.weight.iter().flatten())
        {
            assert!((wa - wb).abs() < 1e-5, "{wa} vs {wb}");
        }
        for (ba, bb) in a.head.bias.iter().zip(&b.head.bias) {
            assert!((ba - bb).abs() < 1e-5, "{ba} vs {bb}");
        }
        assert!(a.val_accuracy.unwrap() > 0.9, "{:?}", a.val_accuracy);
    }

    #[test]
    fn relabelling_the_classes_permutes_the_head_rows() {
        let (x, y) = blobs(10);
        let perm = [2, 0, 1]; // old class c is new class perm[c]
        let py: Vec<usize> = y.iter().map(|&c| perm[c]).collect();
        let a = fit(&x, &y, 3, &y, None).unwrap();
        let b = fit(&x, &py, 3, &py, None).unwrap();
        for (c, &pc) in perm.iter().enumerate() {
            for (wa, wb) in a.head.weight[c].iter().zip(&b.head.weight[pc]) {
                assert!((wa - wb).abs() < 1e-5, "class {c}: {wa} vs {wb}");
            }
            assert!((a.head.bias[c] - b.head.bias[pc]).abs() < 1e-5);
        }
    }

    #[test]
    fn bias_carries_the_training_prior_not_the_sample_prior() {
        let (x, y) = blobs(8);
        // The training split is 80% class 0; the support sample is balanced.
        let mut train = vec![0usize; 80];
        train.extend([1; 10]);
        train.extend([2; 10]);
        let balanced = fit(&x, &y, 3, &y, None).unwrap();
        let skewed = fit(&x, &y, 3, &train, None).unwrap();
        let shift: Vec<f32> = (0..3)
            .map(|c| skewed.head.bias[c] - balanced.head.bias[c])
            .collect();
        // ln(0.8 / (1/3)) and ln(0.1 / (1/3)).
        assert!((shift[0] - 0.875_47).abs() < 1e-4, "{shift:?}");
        assert!((shift[1] + 1.203_97).abs() < 1e-4, "{shift:?}");
        assert!((shift[2] + 1.203_97).abs() < 1e-4, "{shift:?}");
    }
}
