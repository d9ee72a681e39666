//! Meta-training tasks for the data-conditioned tabular generator: a synthetic prior over
//! classification tables, and augmentation of real tables. Both return an [`Episode`]
//! already in the preprocessor's encoding (every column min-max scaled to `[0, 1]`,
//! categorical levels as scaled level indices, missing cells filled with the column
//! mean), so the generator meets the same input distribution at meta-training time as on
//! a user's CSV.
//!
//! ## The synthetic prior (in the spirit of TabPFN's SCM prior, much smaller)
//! - **Shape**: `d` features, log-uniform in `1..=max_features`; classes `C`: 2 with
//!   probability ½, else uniform in `3..=6` (35%) or `7..=max_classes` (15%).
//! - **Mechanism**, one of two per task:
//!   - *random SCM*: `k ∈ 1..=8` latent causes `z ~ N(0, I)`; two random layers
//!     `h₁ = act(A₁z + b₁)`, `h₂ = act(A₂h₁ + b₂)` (act ∈ tanh, relu, sin, identity per
//!     task); features are random nodes of `[z, h₁, h₂]` plus Gaussian noise (noise scale
//!     log-uniform in 0.01–1); the class is the argmax of `C` random linear read-outs of
//!     the nodes plus Gumbel noise (label noise) and per-class offsets (imbalance).
//!   - *class clusters*: class priors from a Dirichlet(α ∈ 0.5–5); each class has 1–3
//!     Gaussian clusters with random centres and random (correlated) covariance.
//! - **Irrelevant columns**: each feature is pure noise with probability 0–30%.
//! - **Skew**: each column is passed through `exp`, `x³` or `sign·log(1+|x|)` with
//!   probability 20%.
//! - **Categorical columns**: each column, with a per-task probability 0–50%, is
//!   quantile-binned into 2–8 levels whose order is shuffled (nominal), then encoded as
//!   the preprocessor encodes a categorical column (level index, min-max scaled).
//! - **Missing values**: with probability 30% a task has missing cells in some columns
//!   (rate 0–20%), filled with the column mean as the preprocessor does.
//!
//! ## Augmentation of a real table
//! Random column subset (1..=d columns) in random order, a random subset of the classes
//! (at least two) with some merged (when the table has three or more), and a row
//! subsample.

use crate::preprocess::{Split, SplitMix64};

/// One meta-training task, row-major `x` (`y.len() × n_features`, values in `[0, 1]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub x: Vec<f32>,
    pub y: Vec<usize>,
    pub n_features: usize,
    pub n_classes: usize,
}

impl Episode {
    pub fn n_rows(&self) -> usize {
        self.y.len()
    }

    /// Rows `idx`, in that order.
    pub fn rows(&self, idx: &[usize]) -> Episode {
        let d = self.n_features;
        let mut x = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            x.extend_from_slice(&self.x[i * d..(i + 1) * d]);
        }
        Episode {
            x,
            y: idx.iter().map(|&i| self.y[i]).collect(),
            n_features: d,
            n_classes: self.n_classes,
        }
    }

    /// Rows per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.n_classes];
        for &y in &self.y {
            c[y] += 1;
        }
        c
    }

    /// Splits into a support set of `n_support` rows and the rest (a query set), after a
    /// seeded shuffle; `None` when a class present in the query has no support row.
    pub fn support_query(
        &self,
        n_support: usize,
        rng: &mut SplitMix64,
    ) -> Option<(Episode, Episode)> {
        let n = self.n_rows();
        if n_support >= n {
            return None;
        }
        let perm = shuffled(n, rng);
        let s = self.rows(&perm[..n_support]);
        let q = self.rows(&perm[n_support..]);
        let sc = s.class_counts();
        if q.y.iter().any(|&y| sc[y] == 0) {
            return None;
        }
        Some((s, q))
    }
}

/// Bounds of the synthetic prior.
#[derive(Debug, Clone, Copy)]
pub struct PriorConfig {
    pub max_features: usize,
    pub max_classes: usize,
}

impl Default for PriorConfig {
    fn default() -> Self {
        Self {
            max_features: 32,
            max_classes: 10,
        }
    }
}

/// Uniform in `[0, 1)`.
fn unif(r: &mut SplitMix64) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Standard normal (Box–Muller).
fn normal(r: &mut SplitMix64) -> f64 {
    let u1 = unif(r).max(1e-300);
    let u2 = unif(r);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn log_uniform(r: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    (lo.ln() + unif(r) * (hi.ln() - lo.ln())).exp()
}

fn shuffled(n: usize, r: &mut SplitMix64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        idx.swap(i, r.below(i + 1));
    }
    idx
}

#[derive(Clone, Copy)]
enum Act {
    Tanh,
    Relu,
    Sin,
    Identity,
}

impl Act {
    fn apply(self, v: f64) -> f64 {
        match self {
            Act::Tanh => v.tanh(),
            Act::Relu => v.max(0.0),
            Act::Sin => v.sin(),
            Act::Identity => v,
        }
    }
}

/// Random `[out × inp]` matrix scaled by `1/√inp`.
fn random_matrix(r: &mut SplitMix64, out: usize, inp: usize) -> Vec<f64> {
    let s = 1.0 / (inp as f64).sqrt();
    (0..out * inp).map(|_| normal(r) * s * 1.5).collect()
}

fn matvec(a: &[f64], v: &[f64], out: usize) -> Vec<f64> {
    let inp = v.len();
    (0..out)
        .map(|o| {
            a[o * inp..(o + 1) * inp]
                .iter()
                .zip(v)
                .map(|(x, y)| x * y)
                .sum()
        })
        .collect()
}

/// Draws the number of classes.
fn draw_classes(r: &mut SplitMix64, max_classes: usize) -> usize {
    let u = unif(r);
    let max_classes = max_classes.max(2);
    if u < 0.5 || max_classes == 2 {
        2
    } else if u < 0.85 || max_classes < 7 {
        3 + r.below(max_classes.min(6) - 2)
    } else {
        7 + r.below(max_classes - 6)
    }
}

/// One synthetic task of `n_rows` rows (see the module doc for how it is drawn). The
/// labels are relabelled to `0..C'` over the classes that occur, so `n_classes` may come
/// out below the drawn count; `None` when fewer than two classes occur.
pub fn sample_task(n_rows: usize, cfg: &PriorConfig, seed: u64) -> Option<Episode> {
    let r = &mut SplitMix64::new(seed);
    let d = log_uniform(r, 1.0, cfg.max_features as f64 + 1.0).floor() as usize;
    let d = d.clamp(1, cfg.max_features);
    let c = draw_classes(r, cfg.max_classes);
    let mut cols = vec![vec![0f64; n_rows]; d];
    let mut y = vec![0usize; n_rows];
    if unif(r) < 0.6 {
        let k = 1 + r.below(8);
        let h = 4 + r.below(13);
        let acts = [Act::Tanh, Act::Relu, Act::Sin, Act::Identity];
        let act = acts[r.below(4)];
        let a1 = random_matrix(r, h, k);
        let a2 = random_matrix(r, h, h);
        let b1: Vec<f64> = (0..h).map(|_| normal(r) * 0.5).collect();
        let b2: Vec<f64> = (0..h).map(|_| normal(r) * 0.5).collect();
        let n_nodes = k + 2 * h;
        let feat_node: Vec<usize> = (0..d).map(|_| r.below(n_nodes)).collect();
        let noise = log_uniform(r, 0.01, 1.0);
        let readout = random_matrix(r, c, n_nodes);
        let offsets: Vec<f64> = (0..c).map(|_| normal(r) * unif(r) * 1.5).collect();
        let label_noise = log_uniform(r, 0.01, 0.5);
        for i in 0..n_rows {
            let z: Vec<f64> = (0..k).map(|_| normal(r)).collect();
            let h1: Vec<f64> = matvec(&a1, &z, h)
                .iter()
                .zip(&b1)
                .map(|(v, b)| act.apply(v + b))
                .collect();
            let h2: Vec<f64> = matvec(&a2, &h1, h)
                .iter()
                .zip(&b2)
                .map(|(v, b)| act.apply(v + b))
                .collect();
            let nodes: Vec<f64> = z.iter().chain(&h1).chain(&h2).copied().collect();
            for (j, &node) in feat_node.iter().enumerate() {
                cols[j][i] = nodes[node] + noise * normal(r);
            }
            let scores = matvec(&readout, &nodes, c);
            let mut best = (f64::NEG_INFINITY, 0);
            for (cl, s) in scores.iter().enumerate() {
                let gumbel = -(-unif(r).max(1e-12).ln()).ln();
                let v = s + offsets[cl] + label_noise * gumbel;
                if v > best.0 {
                    best = (v, cl);
                }
            }
            y[i] = best.1;
        }
    } else {
        let alpha = 0.5 + unif(r) * 4.5;
        // Dirichlet via normalised Gamma(alpha) draws (Marsaglia–Tsang for alpha ≥ 1,
        // boosted for alpha < 1).
        let prior: Vec<f64> = {
            let g: Vec<f64> = (0..c).map(|_| gamma(r, alpha)).collect();
            let s: f64 = g.iter().sum();
            g.iter().map(|v| v / s).collect()
        };
        let spread = log_uniform(r, 0.3, 3.0);
        let clusters: Vec<Vec<(Vec<f64>, Vec<f64>)>> = (0..c)
            .map(|_| {
                (0..1 + r.below(3))
                    .map(|_| {
                        let centre: Vec<f64> = (0..d).map(|_| normal(r) * spread).collect();
                        (centre, random_matrix(r, d, d))
                    })
                    .collect()
            })
            .collect();
        for i in 0..n_rows {
            let u = unif(r);
            let mut acc = 0.0;
            let mut cl = c - 1;
            for (k, p) in prior.iter().enumerate() {
                acc += p;
                if u < acc {
                    cl = k;
                    break;
                }
            }
            let (centre, l) = &clusters[cl][r.below(clusters[cl].len())];
            let e: Vec<f64> = (0..d).map(|_| normal(r)).collect();
            let v = matvec(l, &e, d);
            for j in 0..d {
                cols[j][i] = centre[j] + v[j];
            }
            y[i] = cl;
        }
    }
    let p_noise = unif(r) * 0.3;
    let p_cat = unif(r) * 0.5;
    let missing_rate = if unif(r) < 0.3 { unif(r) * 0.2 } else { 0.0 };
    for col in cols.iter_mut() {
        if unif(r) < p_noise {
            for v in col.iter_mut() {
                *v = normal(r);
            }
        }
        if unif(r) < 0.2 {
            let f: fn(f64) -> f64 = match r.below(3) {
                0 => |v: f64| v.clamp(-20.0, 20.0).exp(),
                1 => |v: f64| v * v * v,
                _ => |v: f64| v.signum() * v.abs().ln_1p(),
            };
            col.iter_mut().for_each(|v| *v = f(*v));
        }
        if unif(r) < p_cat {
            categorise(col, 2 + r.below(7), r);
        }
        min_max(col);
        if missing_rate > 0.0 && unif(r) < 0.5 {
            let missing: Vec<bool> = (0..n_rows).map(|_| unif(r) < missing_rate).collect();
            let kept: Vec<f64> = col
                .iter()
                .zip(&missing)
                .filter(|(_, m)| !**m)
                .map(|(v, _)| *v)
                .collect();
            let fill = if kept.is_empty() {
                0.0
            } else {
                kept.iter().sum::<f64>() / kept.len() as f64
            };
            for (v, m) in col.iter_mut().zip(&missing) {
                if *m {
                    *v = fill;
                }
            }
        }
    }
    let x: Vec<f32> = (0..n_rows)
        .flat_map(|i| cols.iter().map(move |c| c[i] as f32))
        .collect();
    relabel(x, y, d)
}

/// Marsaglia–Tsang Gamma(alpha, 1).
fn gamma(r: &mut SplitMix64, alpha: f64) -> f64 {
    if alpha < 1.0 {
        return gamma(r, alpha + 1.0) * unif(r).max(1e-300).powf(1.0 / alpha);
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(r);
        let v = (1.0 + c * x).powi(3);
        if v > 0.0 && unif(r).max(1e-300).ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Quantile-bins a column into `levels` levels in shuffled (nominal) order: the values
/// become level indices, as the preprocessor encodes a categorical column.
fn categorise(col: &mut [f64], levels: usize, r: &mut SplitMix64) {
    let mut sorted: Vec<f64> = col.to_vec();
    sorted.sort_by(f64::total_cmp);
    let cuts: Vec<f64> = (1..levels)
        .map(|k| sorted[k * sorted.len() / levels])
        .collect();
    let order = shuffled(levels, r);
    for v in col.iter_mut() {
        let bin = cuts.iter().filter(|&&c| *v >= c).count();
        *v = order[bin] as f64;
    }
}

fn min_max(col: &mut [f64]) {
    let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = hi - lo;
    for v in col.iter_mut() {
        *v = if range > 0.0 && range.is_finite() {
            (*v - lo) / range
        } else {
            0.0
        };
    }
}

/// Maps the labels that occur onto `0..C'`, keeping their order.
fn relabel(x: Vec<f32>, y: Vec<usize>, d: usize) -> Option<Episode> {
    let max = y.iter().copied().max()?;
    let mut map = vec![usize::MAX; max + 1];
    let mut next = 0;
    for &v in &y {
        if map[v] == usize::MAX {
            map[v] = 0;
        }
    }
    for m in map.iter_mut() {
        if *m != usize::MAX {
            *m = next;
            next += 1;
        }
    }
    if next < 2 {
        return None;
    }
    Some(Episode {
        x,
        y: y.iter().map(|&v| map[v]).collect(),
        n_features: d,
        n_classes: next,
    })
}

/// An augmented view of a real, preprocessed table (see the module doc): at most
/// `max_rows` rows and `max_features` columns. `None` when fewer than two classes remain.
pub fn augment(
    base: &Split,
    n_classes: usize,
    max_rows: usize,
    max_features: usize,
    seed: u64,
) -> Option<Episode> {
    let r = &mut SplitMix64::new(seed);
    let d = base.n_features;
    let keep = (1 + r.below(d)).min(max_features);
    let cols: Vec<usize> = shuffled(d, r).into_iter().take(keep).collect();
    // Class map: keep a random subset (≥ 2 classes), optionally merging some.
    let mut class_map: Vec<Option<usize>> = vec![None; n_classes];
    let order = shuffled(n_classes, r);
    let n_keep = if n_classes > 2 && unif(r) < 0.5 {
        2 + r.below(n_classes - 1)
    } else {
        n_classes
    };
    let n_groups = if n_keep > 2 && unif(r) < 0.3 {
        2 + r.below(n_keep - 2)
    } else {
        n_keep
    };
    for (k, &cl) in order.iter().take(n_keep).enumerate() {
        class_map[cl] = Some(if k < n_groups { k } else { r.below(n_groups) });
    }
    let rows: Vec<usize> = shuffled(base.n_rows(), r)
        .into_iter()
        .filter(|&i| class_map[base.y[i]].is_some())
        .take(max_rows)
        .collect();
    let mut x = Vec::with_capacity(rows.len() * keep);
    for &i in &rows {
        let row = base.row(i);
        x.extend(cols.iter().map(|&j| row[j]));
    }
    let y = rows.iter().filter_map(|&i| class_map[base.y[i]]).collect();
    relabel(x, y, keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prior_tasks_are_in_range_and_seeded() {
        let cfg = PriorConfig::default();
        let mut shapes = Vec::new();
        for seed in 0..60 {
            let Some(e) = sample_task(200, &cfg, seed) else {
                continue;
            };
            assert_eq!(e.x.len(), 200 * e.n_features);
            assert!(e.x.iter().all(|v| (0.0..=1.0).contains(v)), "seed {seed}");
            assert!(e.y.iter().all(|&y| y < e.n_classes));
            let counts = e.class_counts();
            assert!(
                counts.iter().all(|&c| c > 0),
                "relabelled to occurring classes"
            );
            assert!((1..=32).contains(&e.n_features));
            shapes.push((e.n_features, e.n_classes));
        }
        assert!(
            shapes.len() >= 50,
            "most draws give a task: {}",
            shapes.len()
        );
        assert!(shapes.iter().any(|s| s.1 > 2) && shapes.iter().any(|s| s.1 == 2));
        assert!(shapes.iter().any(|s| s.0 > 8) && shapes.iter().any(|s| s.0 <= 3));
        assert_eq!(sample_task(50, &cfg, 7), sample_task(50, &cfg, 7));
    }

    #[test]
    fn augment_keeps_columns_and_labels_consistent() {
        let base = Split {
            x: (0..40).map(|v| v as f32 / 40.0).collect(),
            y: (0..10).map(|i| i % 5).collect(),
            n_features: 4,
        };
        for seed in 0..20 {
            let e = augment(&base, 5, 8, 3, seed).unwrap();
            assert!(e.n_features <= 3 && e.n_rows() <= 8);
            assert!((2..=5).contains(&e.n_classes));
            // Every value comes from the base table's row with the same class group.
            for i in 0..e.n_rows() {
                let v = e.x[i * e.n_features];
                let base_row = (v * 40.0).round() as usize / 4;
                assert!(base_row < 10);
            }
        }
    }
}
