//! A data-conditioned Parameter Generator for the tabular MLP: from a table's training
//! rows (the support set) and the requirement embedding it emits, in one forward pass
//! and without any gradient step, the weights of a one-hidden-layer ReLU MLP for **any**
//! number of features and classes (after HyperFast, Bonet et al. 2024, and MotherNet,
//! Müller et al. 2023).
//!
//! Why it generalises to unseen tables: every learned module acts on per-feature or
//! per-(class, feature) statistics and pooled summaries, never on a feature's position
//! or a class's index, so
//! - rows only enter through means over rows (row-order invariant),
//! - feature `j`'s weights depend on feature `j`'s statistics and the pooled context, so
//!   permuting the columns permutes the first layer's columns (the function is unchanged),
//! - class `c`'s hidden units and output row depend on class `c`'s statistics, so
//!   relabelling the classes permutes the output rows.
//!
//! The generated network (`x` is the preprocessor's `[0, 1]` encoding):
//! 1. standardise with the support set's mean/std (folded into the first layer);
//! 2. hidden units = per-feature hinges `relu(±a·z_j + b)` (feature-wise shape, for up to
//!    `max_hinge_features` features, picked by class separation) + `class_units` units
//!    per class (directions from that class's statistics) + `shared_units` units from
//!    the pooled feature descriptors;
//! 3. output layer = linear discriminant analysis in that hidden space, computed from the
//!    support set: `W_c = τ·Σ⁻¹μ_c`, `b_c = −τ/2·μ_cᵀΣ⁻¹μ_c + ln p_c`, with a learned
//!    shrinkage of the pooled within-class covariance Σ and a learned temperature τ. The
//!    inverse is a fixed number of Newton–Schulz iterations (matmuls only), so the whole
//!    generator is differentiable with candle's ops.

use std::collections::HashMap;

use anyhow::{bail, ensure};
use candle_core::{DType, Device, Result as CResult, Tensor, Var};
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::layers::{default_bound, linear, uniform};
use crate::param::{ParamMap, VarStore};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataGeneratorConfig {
    /// Requirement-embedding width (MiniLM: 384).
    pub embed_dim: usize,
    /// Width of every internal token / context vector.
    pub width: usize,
    /// Hidden units per class.
    pub class_units: usize,
    /// Hidden units shared by all classes.
    pub shared_units: usize,
    /// Per-feature hinge units exist for at most this many features (the most
    /// class-separating ones), which bounds the hidden width on wide tables.
    pub max_hinge_features: usize,
    /// Newton–Schulz iterations for the inverse in the LDA output layer.
    pub inverse_iterations: usize,
    /// Support rows the generator conditions on; larger training splits are subsampled
    /// (seeded) by the caller.
    pub max_support: usize,
}

impl Default for DataGeneratorConfig {
    fn default() -> Self {
        Self {
            embed_dim: 384,
            width: 64,
            class_units: 4,
            shared_units: 16,
            max_hinge_features: 64,
            inverse_iterations: 20,
            max_support: 1024,
        }
    }
}

/// A support set on the generator's device: `x` `[n, d]` (preprocessed), labels.
pub struct Support<'a> {
    pub x: &'a Tensor,
    pub y: &'a [usize],
    pub n_classes: usize,
}

/// The generated one-hidden-layer MLP, PyTorch layout (`mlp.0.*` `[H, d]`, `mlp.1.*`
/// `[C, H]`), plus its hidden width.
pub struct GeneratedMlp {
    pub params: ParamMap,
    pub hidden: usize,
}

/// A module's (input width, output width; 0 = `width`) under a config.
type Dims = fn(&DataGeneratorConfig) -> (usize, usize);

/// Two linears with a ReLU between (`{name}.0`, `{name}.2`, as `nn.Sequential`).
const MODULES: &[(&str, Dims)] = &[
    ("class_feature", |_| (4, 0)),
    ("feature", |c| (c.width + 3, 0)),
    ("context", |c| (2 * c.width + 3, 0)),
    ("hinge", |c| (2 * c.width, 4)),
    ("class_dir", |c| (3 * c.width, c.class_units)),
    ("class_bias", |c| (2 * c.width, c.class_units)),
    ("shared_dir", |c| (2 * c.width, c.shared_units)),
    ("shared_bias", |c| (c.width, c.shared_units)),
    ("lda", |c| (c.width, 2)),
];

pub struct DataConditionedGenerator {
    cfg: DataGeneratorConfig,
    store: VarStore,
    device: Device,
}

fn sigmoid(x: &Tensor) -> CResult<Tensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

fn softplus(x: &Tensor) -> CResult<Tensor> {
    (x.exp()? + 1.0)?.log()
}

/// `sign(v)·ln(1 + |v|)`: keeps heavy-tailed statistics in a small range.
fn signed_log(x: &Tensor) -> CResult<Tensor> {
    x.sign()?.mul(&(x.abs()? + 1.0)?.log()?)
}

impl DataConditionedGenerator {
    /// A freshly initialised generator (PyTorch-default init for first layers; output
    /// layers at 0.1× so a fresh generator starts near plain LDA on `relu(±z)`).
    pub fn new(cfg: DataGeneratorConfig, seed: u64, device: &Device) -> anyhow::Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut vars = Vec::new();
        let mut push = |name: String, shape: &[usize], bound: f64| -> anyhow::Result<()> {
            let t = uniform(&mut rng, shape, bound, device)?;
            vars.push((name, Var::from_tensor(&t)?));
            Ok(())
        };
        for (name, dims) in MODULES {
            let (inp, out) = dims(&cfg);
            let out = if out == 0 { cfg.width } else { out };
            let w = cfg.width;
            push(format!("{name}.0.weight"), &[w, inp], default_bound(inp))?;
            push(format!("{name}.0.bias"), &[w], default_bound(inp))?;
            push(
                format!("{name}.2.weight"),
                &[out, w],
                0.1 * default_bound(w),
            )?;
            push(format!("{name}.2.bias"), &[out], 0.0)?;
        }
        push(
            "requirement.weight".into(),
            &[cfg.width, cfg.embed_dim],
            default_bound(cfg.embed_dim),
        )?;
        push("requirement.bias".into(), &[cfg.width], 0.0)?;
        Ok(Self {
            cfg,
            store: VarStore::new(vars, "data-conditioned generator"),
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &DataGeneratorConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trainable tensors, by name.
    pub fn vars(&self) -> &[(String, Var)] {
        self.store.vars()
    }

    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.store.state_tensors()
    }

    pub fn load_state(&self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        self.store.load_state(tensors)
    }

    fn p(&self, name: &str) -> CResult<&Tensor> {
        self.store.get(name)
    }

    fn module(&self, name: &str, x: &Tensor) -> CResult<Tensor> {
        let h = linear(
            x,
            self.p(&format!("{name}.0.weight"))?,
            Some(self.p(&format!("{name}.0.bias"))?),
        )?
        .relu()?;
        linear(
            &h,
            self.p(&format!("{name}.2.weight"))?,
            Some(self.p(&format!("{name}.2.bias"))?),
        )
    }

    /// Generates the MLP for `support`, conditioned on `requirement` (`[embed_dim]`; `None`
    /// = no requirement, the data-only ablation).
    pub fn generate(
        &self,
        support: &Support,
        requirement: Option<&Tensor>,
    ) -> anyhow::Result<GeneratedMlp> {
        let (n, d) = support.x.dims2()?;
        let c = support.n_classes;
        ensure!(d >= 1, "the table has no feature column");
        ensure!(c >= 2, "a classifier needs at least two classes, got {c}");
        ensure!(
            support.y.len() == n,
            "support set: {} labels for {n} rows",
            support.y.len()
        );
        let mut counts = vec![0usize; c];
        for &y in support.y {
            ensure!(y < c, "support label {y} is not below the class count {c}");
            counts[y] += 1;
        }
        if let Some(empty) = counts.iter().position(|&k| k == 0) {
            bail!("class {empty} has no row in the support (training) set");
        }
        let dev = &self.device;
        let w = self.cfg.width;
        let x = support.x.to_dtype(DType::F32)?;
        // One-hot labels and class sizes.
        let mut onehot = vec![0f32; n * c];
        for (i, &y) in support.y.iter().enumerate() {
            onehot[i * c + y] = 1.0;
        }
        let yoh = Tensor::from_vec(onehot, (n, c), dev)?;
        let nc = Tensor::from_vec(counts.iter().map(|&k| k as f32).collect(), (c, 1), dev)?;
        let log_prior = Tensor::from_vec(
            counts.iter().map(|&k| (k as f32 / n as f32).ln()).collect(),
            c,
            dev,
        )?;

        // 1. Standardisation statistics of the support set.
        let mu = x.mean_keepdim(0)?;
        let xc = x.broadcast_sub(&mu)?;
        let sd = (xc.sqr()?.mean_keepdim(0)? + 1e-6)?.sqrt()?;
        let z = xc.broadcast_div(&sd)?;

        // 2. Per-(class, feature) tokens, pooled over classes into feature descriptors.
        let m = yoh.t()?.matmul(&z)?.broadcast_div(&nc)?; // [C, d]
        let e2 = yoh.t()?.matmul(&z.sqr()?)?.broadcast_div(&nc)?;
        let s = ((e2 - m.sqr()?)?.relu()? + 1e-4)?.sqrt()?;
        let lp = (log_prior.clone() + (c as f64).ln())?
            .unsqueeze(1)?
            .broadcast_as((c, d))?;
        let u = Tensor::stack(&[&m, &s.log()?, &lp, &m.sqr()?], 2)?; // [C, d, 4]
        let t = self.module("class_feature", &u)?; // [C, d, w]
        let skew = signed_log(&z.powf(3.0)?.mean(0)?)?;
        let kurt = (z.sqr()?.sqr()?.mean(0)? + 1.0)?.log()?;
        let mabs = z.abs()?.mean(0)?;
        let fstats = Tensor::stack(&[&skew, &kurt, &mabs], 1)?; // [d, 3]
        let f = self.module("feature", &Tensor::cat(&[&t.mean(0)?, &fstats], 1)?)?; // [d, w]

        // 3. Context: pooled features, sizes, requirement.
        let sizes = Tensor::from_vec(
            vec![
                (n as f32).ln() / 5.0,
                (d as f32).ln() / 5.0,
                (c as f32).ln() / 5.0,
            ],
            (1, 3),
            dev,
        )?;
        let req = match requirement {
            Some(e) => e.to_dtype(DType::F32)?.reshape((1, self.cfg.embed_dim))?,
            None => Tensor::zeros((1, self.cfg.embed_dim), DType::F32, dev)?,
        };
        let r = linear(
            &req,
            self.p("requirement.weight")?,
            Some(self.p("requirement.bias")?),
        )?;
        let g = self.module(
            "context",
            &Tensor::cat(&[&f.mean_keepdim(0)?, &sizes, &r], 1)?,
        )?; // [1, w]
        let fg = Tensor::cat(&[&f, &g.broadcast_as((d, w))?], 1)?; // [d, 2w]

        // 4. Hidden units. (a) per-feature hinges on the most class-separating features.
        let separation: Vec<f32> = {
            let p = (log_prior.exp()?.unsqueeze(1)?.broadcast_as((c, d))? * m.sqr()?)?;
            p.sum(0)?.to_vec1()?
        };
        let k = d.min(self.cfg.max_hinge_features);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| separation[b].total_cmp(&separation[a]).then(a.cmp(&b)));
        let mut sel: Vec<u32> = order[..k].iter().map(|&j| j as u32).collect();
        sel.sort_unstable();
        let sel = Tensor::from_vec(sel, k, dev)?;
        let hinge = self.module("hinge", &fg)?.index_select(&sel, 0)?; // [k, 4]
        let eye = Tensor::eye(d, DType::F32, dev)?.index_select(&sel, 0)?; // [k, d]
        let col = |i: usize| hinge.narrow(1, i, 1);
        let w_pos = eye.broadcast_mul(&col(0)?.exp()?)?;
        let w_neg = eye.broadcast_mul(&col(2)?.exp()?.neg()?)?;
        let b_hinge = Tensor::cat(&[&col(1)?.squeeze(1)?, &col(3)?.squeeze(1)?], 0)?;
        // (b) class units: directions from the class's own (class, feature) tokens.
        let ru = self.cfg.class_units;
        let tg = Tensor::cat(
            &[
                &t,
                &f.unsqueeze(0)?.broadcast_as((c, d, w))?,
                &g.unsqueeze(0)?.broadcast_as((c, d, w))?,
            ],
            2,
        )?;
        let v = self.module("class_dir", &tg)?; // [C, d, R]
        let v = v.broadcast_div(&(v.sqr()?.sum_keepdim(1)? + 1e-6)?.sqrt()?)?;
        let w_class = v.transpose(1, 2)?.contiguous()?.reshape((c * ru, d))?;
        let b_class = self
            .module(
                "class_bias",
                &Tensor::cat(&[&t.mean(1)?, &g.broadcast_as((c, w))?], 1)?,
            )?
            .reshape(c * ru)?;
        // (c) shared units from the pooled feature descriptors.
        let vs = self.module("shared_dir", &fg)?; // [d, R0]
        let vs = vs.broadcast_div(&(vs.sqr()?.sum_keepdim(0)? + 1e-6)?.sqrt()?)?;
        let b_shared = self.module("shared_bias", &g)?.squeeze(0)?;
        let w1z = Tensor::cat(&[&w_pos, &w_neg, &w_class, &vs.t()?], 0)?; // [H, d]
        let b1 = Tensor::cat(&[&b_hinge, &b_class, &b_shared], 0)?; // [H]
        let hidden = w1z.dim(0)?;

        // 5. LDA output layer in the hidden space of the support set.
        let hs = linear(&z, &w1z, Some(&b1))?.relu()?; // [n, H]
        let mh = yoh.t()?.matmul(&hs)?.broadcast_div(&nc)?; // [C, H]
        let hc = (hs - yoh.matmul(&mh)?)?;
        let sigma = (hc.t()?.matmul(&hc)? / n as f64)?;
        let eye_h = Tensor::eye(hidden, DType::F32, dev)?;
        let trace = (sigma.clone() * &eye_h)?.sum_all()?;
        let lda = self.module("lda", &g)?; // [1, 2]
        let gamma = ((sigmoid(&(lda.narrow(1, 0, 1)? - 2.2)?)? * 0.99)? + 0.01)?; // [1, 1]
        let tau = softplus(&(lda.narrow(1, 1, 1)? + 0.5413)?)?;
        // The floor keeps the inverse bounded when most hidden units are dead on the support.
        let ridge = ((trace.reshape((1, 1))? / hidden as f64)? + 1e-3)?;
        let a =
            (sigma.broadcast_mul(&(1.0 - &gamma)?)? + eye_h.broadcast_mul(&(gamma * ridge)?)?)?;
        let inv = newton_schulz_inverse(&a, &eye_h, self.cfg.inverse_iterations)?;
        let p = mh.matmul(&inv)?; // [C, H]
        let w2 = p.broadcast_mul(&tau)?;
        let quad = (p * &mh)?.sum(1)?; // [C]
        let b2 = (log_prior - (quad.broadcast_mul(&tau.squeeze(0)?)? * 0.5)?)?;

        // 6. Fold the standardisation into the first layer: z = (x − μ)/σ.
        let w1 = w1z.broadcast_div(&sd)?;
        let shift = w1.matmul(&mu.t()?)?.squeeze(1)?;
        let b1 = (b1 - shift)?;
        let mut params = ParamMap::new();
        params.insert("mlp.0.weight", w1);
        params.insert("mlp.0.bias", b1);
        params.insert("mlp.1.weight", w2);
        params.insert("mlp.1.bias", b2);
        Ok(GeneratedMlp { params, hidden })
    }
}

/// `A⁻¹` for symmetric positive definite `A` by Newton–Schulz (`X ← X(2I − AX)`, from
/// `X₀ = I/‖A‖_F`, which converges because `A/‖A‖_F` has its eigenvalues in `(0, 1]`).
fn newton_schulz_inverse(a: &Tensor, eye: &Tensor, iterations: usize) -> CResult<Tensor> {
    let norm = a.sqr()?.sum_all()?.sqrt()?.reshape((1, 1))?;
    let mut x = eye.broadcast_div(&norm)?;
    let two_i = (eye * 2.0)?;
    for _ in 0..iterations {
        x = x.matmul(&(&two_i - a.matmul(&x)?)?)?;
    }
    Ok(x)
}

/// Logits of a generated one-hidden-layer MLP (`relu` hidden), for meta-training losses.
pub fn forward(params: &ParamMap, x: &Tensor) -> CResult<Tensor> {
    let h = linear(
        x,
        params.get("mlp.0.weight")?,
        Some(params.get("mlp.0.bias")?),
    )?
    .relu()?;
    linear(
        &h,
        params.get("mlp.1.weight")?,
        Some(params.get("mlp.1.bias")?),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize, d: usize, c: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        use rand::Rng;
        let mut rng = StdRng::seed_from_u64(seed);
        let y: Vec<usize> = (0..n).map(|i| i % c).collect();
        let x = (0..n * d)
            .map(|i| {
                let (row, j) = (i / d, i % d);
                let shift = if j % 2 == 0 { y[row] as f32 * 0.3 } else { 0.0 };
                (rng.random::<f32>() * 0.5 + shift) / 2.0
            })
            .collect();
        (x, y)
    }

    fn probs(
        g: &DataConditionedGenerator,
        x: &[f32],
        y: &[usize],
        d: usize,
        c: usize,
        q: &Tensor,
        req: Option<&Tensor>,
    ) -> Vec<Vec<f32>> {
        let n = y.len();
        let xt = Tensor::from_vec(x.to_vec(), (n, d), &Device::Cpu).unwrap();
        let out = g
            .generate(
                &Support {
                    x: &xt,
                    y,
                    n_classes: c,
                },
                req,
            )
            .unwrap();
        candle_nn::ops::softmax(&forward(&out.params, q).unwrap(), 1)
            .unwrap()
            .to_vec2()
            .unwrap()
    }

    fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    }

    /// Rows enter only through means: shuffling the support set leaves every generated
    /// tensor unchanged (to float rounding).
    #[test]
    fn generated_weights_do_not_depend_on_row_order() {
        let dev = Device::Cpu;
        let g = DataConditionedGenerator::new(DataGeneratorConfig::default(), 2, &dev).unwrap();
        let (n, d, c) = (80, 6, 3);
        let (x, y) = table(n, d, c, 5);
        let mut perm: Vec<usize> = (0..n).collect();
        perm.reverse();
        perm.swap(3, 40);
        let xp: Vec<f32> = perm
            .iter()
            .flat_map(|&i| x[i * d..(i + 1) * d].to_vec())
            .collect();
        let yp: Vec<usize> = perm.iter().map(|&i| y[i]).collect();
        let gen = |x: Vec<f32>, y: &[usize]| {
            let xt = Tensor::from_vec(x, (n, d), &dev).unwrap();
            g.generate(
                &Support {
                    x: &xt,
                    y,
                    n_classes: c,
                },
                None,
            )
            .unwrap()
            .params
        };
        let (a, b) = (gen(x, &y), gen(xp, &yp));
        for (name, t) in a.iter() {
            let diff = test_support::max_abs_diff(t, b.get(name).unwrap());
            let scale = test_support::max_abs_diff(t, &t.zeros_like().unwrap());
            assert!(
                diff <= 1e-5 * scale.max(1.0),
                "{name}: {diff} (scale {scale})"
            );
        }
    }

    /// Relabelling the classes permutes the output rows: the probability of class π(c)
    /// after relabelling equals that of class c before (and the output biases permute).
    #[test]
    fn relabelling_classes_permutes_the_outputs() {
        let dev = Device::Cpu;
        let g = DataConditionedGenerator::new(DataGeneratorConfig::default(), 3, &dev).unwrap();
        let (n, d, c) = (90, 5, 3);
        let (x, y) = table(n, d, c, 7);
        let pi = [2usize, 0, 1];
        let yr: Vec<usize> = y.iter().map(|&k| pi[k]).collect();
        let q = Tensor::from_vec(x[..20 * d].to_vec(), (20, d), &dev).unwrap();
        let a = probs(&g, &x, &y, d, c, &q, None);
        let b = probs(&g, &x, &yr, d, c, &q, None);
        let b_back: Vec<Vec<f32>> = b
            .iter()
            .map(|row| (0..c).map(|k| row[pi[k]]).collect())
            .collect();
        assert!(max_diff(&a, &b_back) < 1e-5, "{}", max_diff(&a, &b_back));
        assert!(max_diff(&a, &b) > 1e-2, "the outputs really moved");
    }

    /// Column order is irrelevant: generating on permuted columns and predicting on
    /// equally permuted rows gives the same probabilities.
    #[test]
    fn column_order_does_not_change_predictions() {
        let dev = Device::Cpu;
        let g = DataConditionedGenerator::new(DataGeneratorConfig::default(), 4, &dev).unwrap();
        let (n, d, c) = (70, 7, 2);
        let (x, y) = table(n, d, c, 9);
        let perm = [3usize, 6, 0, 5, 1, 4, 2];
        let xp: Vec<f32> = (0..n)
            .flat_map(|i| perm.iter().map(move |&j| (i, j)))
            .map(|(i, j)| x[i * d + j])
            .collect();
        let q = Tensor::from_vec(x[..15 * d].to_vec(), (15, d), &dev).unwrap();
        let qp = Tensor::from_vec(xp[..15 * d].to_vec(), (15, d), &dev).unwrap();
        let req = Tensor::ones(384, DType::F32, &dev).unwrap();
        let a = probs(&g, &x, &y, d, c, &q, Some(&req));
        let b = probs(&g, &xp, &y, d, c, &qp, Some(&req));
        assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
    }

    /// Every generator tensor gets a non-zero gradient from a query loss (DESIGN.md §10:
    /// no op on this path may silently cut the graph).
    #[test]
    fn gradients_reach_every_generator_tensor() {
        let dev = Device::Cpu;
        let g = DataConditionedGenerator::new(DataGeneratorConfig::default(), 5, &dev).unwrap();
        let (n, d, c) = (60, 4, 3);
        let (x, y) = table(n, d, c, 11);
        let xt = Tensor::from_vec(x, (n, d), &dev).unwrap();
        let req = Tensor::from_vec(
            (0..384).map(|i| (i as f32 * 0.37).sin()).collect(),
            384,
            &dev,
        )
        .unwrap();
        let out = g
            .generate(
                &Support {
                    x: &xt,
                    y: &y,
                    n_classes: c,
                },
                Some(&req),
            )
            .unwrap();
        let labels = Tensor::from_vec(y.iter().map(|&v| v as u32).collect(), n, &dev).unwrap();
        let loss =
            crate::layers::cross_entropy(&forward(&out.params, &xt).unwrap(), &labels).unwrap();
        test_support::assert_all_grads_nonzero("data-conditioned generator", &loss, g.vars())
            .unwrap();
    }

    #[test]
    fn newton_schulz_inverts_an_spd_matrix() {
        let dev = Device::Cpu;
        let a = Tensor::new(&[[4f32, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]], &dev).unwrap();
        let eye = Tensor::eye(3, DType::F32, &dev).unwrap();
        let inv = newton_schulz_inverse(&a, &eye, 20).unwrap();
        let prod: Vec<Vec<f32>> = a.matmul(&inv).unwrap().to_vec2().unwrap();
        for (i, row) in prod.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-5, "({i},{j}) = {v}");
            }
        }
    }

    #[test]
    fn generated_shapes_follow_the_table() {
        let dev = Device::Cpu;
        let g = DataConditionedGenerator::new(DataGeneratorConfig::default(), 1, &dev).unwrap();
        for (d, c) in [(1, 2), (5, 3), (9, 20)] {
            let (x, y) = table(60, d, c, 3);
            let x = Tensor::from_vec(x, (60, d), &dev).unwrap();
            let out = g
                .generate(
                    &Support {
                        x: &x,
                        y: &y,
                        n_classes: c,
                    },
                    None,
                )
                .unwrap();
            let h = 2 * d + 4 * c + 16;
            assert_eq!(out.hidden, h);
            assert_eq!(out.params.get("mlp.0.weight").unwrap().dims(), &[h, d]);
            assert_eq!(out.params.get("mlp.1.weight").unwrap().dims(), &[c, h]);
            assert_eq!(out.params.get("mlp.1.bias").unwrap().dims(), &[c]);
        }
    }
}
