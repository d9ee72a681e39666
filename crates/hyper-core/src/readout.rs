//! Closed-form classification heads fitted on a support set's features in one pass: the
//! shrinkage LDA readout, `W_c = Σ⁻¹ μ_c`, `b_c = −½ μ_cᵀ Σ⁻¹ μ_c + log π_c`, with the
//! pooled within-class covariance shrunk towards a scaled identity,
//! `Σ = (1 − γ) S + γ (tr S / h) I`. No gradient step; f64 Cholesky on `h × h`.

use anyhow::{ensure, Result};

/// A linear head: `weight` `[classes][h]`, `bias` `[classes]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearHead {
    pub weight: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
}

impl LinearHead {
    /// The highest-scoring class of one feature row.
    pub fn predict(&self, x: &[f32]) -> usize {
        let scores =
            self.weight.iter().zip(&self.bias).map(|(w, b)| {
                w.iter().zip(x).map(|(a, v)| (a * v) as f64).sum::<f64>() + *b as f64
            });
        scores
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, s)| {
                if s > best.1 {
                    (i, s)
                } else {
                    best
                }
            })
            .0
    }

    /// Share of `rows` whose predicted class is their label.
    pub fn accuracy(&self, rows: &[Vec<f32>], labels: &[usize]) -> f64 {
        let ok = rows
            .iter()
            .zip(labels)
            .filter(|(x, &y)| self.predict(x) == y)
            .count();
        ok as f64 / rows.len().max(1) as f64
    }
}

/// The shrinkage-LDA head of `rows` (one feature vector each) with `labels` in
/// `0..classes`, shrinkage `gamma` in `(0, 1]`. A class with no row gets the mean of all
/// rows and a tiny prior, so it is never predicted without evidence.
pub fn lda_head(
    rows: &[Vec<f32>],
    labels: &[usize],
    classes: usize,
    gamma: f64,
) -> Result<LinearHead> {
    ensure!(!rows.is_empty(), "no rows to fit a head on");
    ensure!(
        rows.len() == labels.len(),
        "{} rows but {} labels",
        rows.len(),
        labels.len()
    );
    ensure!(
        gamma > 0.0 && gamma <= 1.0,
        "shrinkage {gamma} is outside (0, 1]"
    );
    let h = rows[0].len();
    let n = rows.len() as f64;
    let mut mu = vec![vec![0f64; h]; classes];
    let mut count = vec![0f64; classes];
    let mut all = vec![0f64; h];
    for (x, &y) in rows.iter().zip(labels) {
        ensure!(y < classes && x.len() == h, "a row or label out of shape");
        count[y] += 1.0;
        for j in 0..h {
            mu[y][j] += x[j] as f64;
            all[j] += x[j] as f64 / n;
        }
    }
    for (m, &c) in mu.iter_mut().zip(&count) {
        if c > 0.0 {
            m.iter_mut().for_each(|v| *v /= c);
        } else {
            m.clone_from(&all);
        }
    }
    let mut s = vec![0f64; h * h];
    for (x, &y) in rows.iter().zip(labels) {
        let d: Vec<f64> = (0..h).map(|j| x[j] as f64 - mu[y][j]).collect();
        for a in 0..h {
            let da = d[a] / n;
            for b in a..h {
                s[a * h + b] += da * d[b];
            }
        }
    }
    let trace = (0..h).map(|a| s[a * h + a]).sum::<f64>() / h as f64;
    let ridge = gamma * trace.max(1e-12);
    for a in 0..h {
        for b in a..h {
            let v = s[a * h + b] * (1.0 - gamma) + if a == b { ridge } else { 0.0 };
            s[a * h + b] = v;
            s[b * h + a] = v;
        }
    }
    let l = cholesky(&s, h)?;
    let mut weight = Vec::with_capacity(classes);
    let mut bias = Vec::with_capacity(classes);
    for (m, &c) in mu.iter().zip(&count) {
        let p = cholesky_solve(&l, h, m);
        let quad: f64 = p.iter().zip(m).map(|(a, b)| a * b).sum();
        let prior = if c > 0.0 { c / n } else { 1e-6 };
        bias.push((-0.5 * quad + prior.ln()) as f32);
        weight.push(p.iter().map(|&v| v as f32).collect());
    }
    Ok(LinearHead { weight, bias })
}

/// The ridge solution `w` of `(G + λ I) w = r` (`G` `h × h` row-major, symmetric positive
/// semi-definite, e.g. a Gram matrix `ZᵀZ / n`; `λ > 0`), by f64 Cholesky.
pub fn ridge_solve(g: &[f64], h: usize, r: &[f64], lambda: f64) -> Result<Vec<f64>> {
    Ok(ridge_solve_many(g, h, &[r], lambda)?.remove(0))
}

/// [`ridge_solve`] for several right-hand sides over one factorisation (the columns of
/// the identity give `(G + λ I)⁻¹`, for leave-one-out leverages).
pub fn ridge_solve_many(g: &[f64], h: usize, rhs: &[&[f64]], lambda: f64) -> Result<Vec<Vec<f64>>> {
    ensure!(
        g.len() == h * h && rhs.iter().all(|r| r.len() == h),
        "ridge: {h}×{h} system with {} values and right-hand sides of {:?}",
        g.len(),
        rhs.iter().map(|r| r.len()).collect::<Vec<_>>()
    );
    ensure!(lambda > 0.0, "ridge: λ must be above 0, got {lambda}");
    let mut a = g.to_vec();
    for i in 0..h {
        a[i * h + i] += lambda;
    }
    let l = cholesky(&a, h)?;
    Ok(rhs.iter().map(|r| cholesky_solve(&l, h, r)).collect())
}

/// Lower-triangular `L` with `L Lᵀ = A` (`A` symmetric positive definite, row-major).
fn cholesky(a: &[f64], h: usize) -> Result<Vec<f64>> {
    let mut l = vec![0f64; h * h];
    for i in 0..h {
        for j in 0..=i {
            let s = a[i * h + j] - (0..j).map(|k| l[i * h + k] * l[j * h + k]).sum::<f64>();
            if i == j {
                ensure!(s > 0.0, "covariance is not positive definite (pivot {i})");
                l[i * h + i] = s.sqrt();
            } else {
                l[i * h + j] = s / l[j * h + j];
            }
        }
    }
    Ok(l)
}

fn cholesky_solve(l: &[f64], h: usize, b: &[f64]) -> Vec<f64> {
    let mut z = vec![0f64; h];
    for i in 0..h {
        z[i] = (b[i] - (0..i).map(|k| l[i * h + k] * z[k]).sum::<f64>()) / l[i * h + i];
    }
    let mut x = vec![0f64; h];
    for i in (0..h).rev() {
        x[i] = (z[i] - (i + 1..h).map(|k| l[k * h + i] * x[k]).sum::<f64>()) / l[i * h + i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-worked: G = [[2, 1], [1, 2]], r = [4, 4], λ = 1 → [[3, 1], [1, 3]] w = r, w = [1, 1];
    /// λ = 0 is refused.
    #[test]
    fn ridge_solve_matches_the_hand_computation() {
        let w = ridge_solve(&[2.0, 1.0, 1.0, 2.0], 2, &[4.0, 4.0], 1.0).unwrap();
        assert!(
            (w[0] - 1.0).abs() < 1e-12 && (w[1] - 1.0).abs() < 1e-12,
            "{w:?}"
        );
        // A zero column (a dead feature) still solves, with weight 0.
        let w = ridge_solve(&[1.0, 0.0, 0.0, 0.0], 2, &[2.0, 0.0], 1.0).unwrap();
        assert!((w[0] - 1.0).abs() < 1e-12 && w[1] == 0.0, "{w:?}");
        assert!(ridge_solve(&[1.0], 1, &[1.0], 0.0).is_err());
    }

    /// Hand-worked: two 1-D classes {0, 2} and {4, 6}: means 1 and 5, within-class variance
    /// 1 (γ = 1 keeps it: tr S / h = 1). W = (1, 5), b = (−0.5 + ln ½, −12.5 + ln ½); the
    /// boundary sits at 3.
    #[test]
    fn one_dimensional_lda_matches_the_hand_computation() {
        let rows: Vec<Vec<f32>> = [0.0, 2.0, 4.0, 6.0].iter().map(|&v| vec![v]).collect();
        let head = lda_head(&rows, &[0, 0, 1, 1], 2, 1.0).unwrap();
        let half = 0.5f64.ln() as f32;
        assert!((head.weight[0][0] - 1.0).abs() < 1e-6 && (head.weight[1][0] - 5.0).abs() < 1e-6);
        assert!(
            (head.bias[0] - (-0.5 + half)).abs() < 1e-5,
            "{:?}",
            head.bias
        );
        assert!(
            (head.bias[1] - (-12.5 + half)).abs() < 1e-5,
            "{:?}",
            head.bias
        );
        assert_eq!((head.predict(&[2.9]), head.predict(&[3.1])), (0, 1));
        assert_eq!(head.accuracy(&rows, &[0, 0, 1, 1]), 1.0);
    }

    /// Relabelling the classes permutes the head's rows; reordering the rows changes
    /// nothing.
    #[test]
    fn equivariant_over_classes_invariant_over_rows() {
        let rows: Vec<Vec<f32>> = (0..30)
            .map(|i| {
                vec![
                    (i % 3) as f32 + 0.1 * (i as f32).sin(),
                    (i * 7 % 5) as f32 * 0.2,
                ]
            })
            .collect();
        let y: Vec<usize> = (0..30).map(|i| i % 3).collect();
        let a = lda_head(&rows, &y, 3, 0.2).unwrap();
        let perm = [2, 0, 1];
        let y2: Vec<usize> = y.iter().map(|&k| perm[k]).collect();
        let b = lda_head(&rows, &y2, 3, 0.2).unwrap();
        for (k, &pk) in perm.iter().enumerate() {
            assert_eq!(a.weight[k], b.weight[pk]);
        }
        let rev: Vec<Vec<f32>> = rows.iter().rev().cloned().collect();
        let yrev: Vec<usize> = y.iter().rev().cloned().collect();
        let c = lda_head(&rev, &yrev, 3, 0.2).unwrap();
        for (w, v) in a.weight.iter().flatten().zip(c.weight.iter().flatten()) {
            assert!((w - v).abs() < 1e-4, "{w} vs {v}");
        }
    }
}
