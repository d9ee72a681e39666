//! Serving the data-conditioned generator ([`hyper_core::data_generator`]): any table,
//! including ones no generator saw, gets a one-hidden-layer MLP from its **training
//! split only** (the support set) and the requirement embedding, in one forward pass.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use candle_core::{Device, Tensor};
use datasets::preprocess::{permutation, Split};
use hyper_core::checkpoint;
use hyper_core::data_generator::{DataConditionedGenerator, DataGeneratorConfig, Support};
use hyper_core::ParamMap;
use target_models::mlp::{Activation, MlpConfig};

/// Checkpoint `kind` written by `cargo xtask pretrain tabular-any`.
pub const ANY_TABLE_CHECKPOINT_KIND: &str = "tabular-any-generator";

/// `checkpoints/tabular-any/generator`.
pub fn default_any_table_checkpoint() -> PathBuf {
    crate::checkpoint_dir("tabular-any").join("generator")
}

pub struct AnyTableGenerator {
    gen: DataConditionedGenerator,
    pub stem: PathBuf,
}

/// A generated model for one table: the MLP weights and the config that runs them.
#[derive(Debug, Clone)]
pub struct AnyTableModel {
    pub params: ParamMap,
    pub mlp: MlpConfig,
    /// Support rows the generator conditioned on (the training split, subsampled above
    /// `max_support`).
    pub support_rows: usize,
    /// How the output layer was made, when [`fitted_readout`] replaced the generated one.
    pub head: Option<serde_json::Value>,
}

/// The most training rows the fitted classification readout reads (round-robin over
/// classes above it).
pub const READOUT_ROWS: usize = 4096;

/// Replaces the generated output layer of `m` by a shrinkage-LDA readout
/// ([`crate::fitted_head`]) over its hidden layer extended by [`crate::basis::extend`]
/// (identity, hinge and `random` random units; `generate` uses
/// [`crate::basis::RANDOM_UNITS`]), fitted on the preprocessed training rows in one
/// pass, shrinkage and prior weight chosen on a fifth of them
/// ([`crate::fitted_head::fit_choosing_inside`]), so the validation split stays an honest
/// check. No gradient step.
pub fn fitted_readout(
    m: AnyTableModel,
    train: &Split,
    n_classes: usize,
    random: usize,
    seed: u64,
) -> Result<AnyTableModel> {
    let (w0, b0) = (m.params.get("mlp.0.weight")?, m.params.get("mlp.0.bias")?);
    let (w, b, units) = crate::basis::extend(w0, b0, train, random, seed)?;
    let d = train.n_features;
    let sample = crate::fitted_head::support_sample(&train.y, n_classes, READOUT_ROWS);
    let sx: Vec<f32> = sample
        .iter()
        .flat_map(|&i| train.row(i).iter().copied())
        .collect();
    let sy: Vec<usize> = sample.iter().map(|&i| train.y[i]).collect();
    let hx = crate::basis::hidden_rows(&sx, d, &w, &b)?;
    let head = crate::fitted_head::fit_choosing_inside(&hx, &sy, n_classes, &train.y)?;
    let mut params = ParamMap::new();
    params.insert("mlp.0.weight", w);
    params.insert("mlp.0.bias", b);
    head.insert_as(&mut params, "mlp.1")?;
    let mut about = head.about("the generated hidden layer and the basis units");
    about["units"] = serde_json::to_value(units)?;
    about["held_out_accuracy"] = head.val_accuracy.into();
    Ok(AnyTableModel {
        params,
        mlp: MlpConfig {
            hidden: vec![units.total()],
            ..m.mlp
        },
        support_rows: m.support_rows,
        head: Some(about),
    })
}

impl AnyTableGenerator {
    /// Loads a checkpoint; serving reads only its `[config.generator]` section.
    pub fn load(stem: &Path, dev: &Device) -> Result<Self> {
        let l = checkpoint::load(stem, ANY_TABLE_CHECKPOINT_KIND, dev).with_context(|| {
            format!(
                "loading the data-conditioned generator {} (run `cargo xtask pretrain tabular-any`)",
                stem.display()
            )
        })?;
        let section = l
            .header
            .config
            .get("generator")
            .cloned()
            .ok_or_else(|| anyhow!("{}: header lacks [config.generator]", stem.display()))?;
        let cfg: DataGeneratorConfig = section
            .try_into()
            .with_context(|| format!("{}: [config.generator]", stem.display()))?;
        let gen = DataConditionedGenerator::new(cfg, 0, dev)?;
        gen.load_state(&l.tensors)?;
        Ok(Self {
            gen,
            stem: stem.to_path_buf(),
        })
    }

    pub fn from_generator(gen: DataConditionedGenerator) -> Self {
        Self {
            gen,
            stem: PathBuf::new(),
        }
    }

    pub fn config(&self) -> &DataGeneratorConfig {
        self.gen.config()
    }

    /// One forward pass: `train` (preprocessed) → MLP weights. Above
    /// `max_support` rows (or `support_cap` when given), a seeded random subset of the
    /// training rows is the support set.
    pub fn generate(
        &self,
        train: &Split,
        n_classes: usize,
        requirement: Option<&[f32]>,
        support_cap: Option<usize>,
        seed: u64,
    ) -> Result<AnyTableModel> {
        let cap = support_cap.unwrap_or(self.config().max_support).max(1);
        let rows = support_rows(&train.y, cap, seed);
        let d = train.n_features;
        let mut x = Vec::with_capacity(rows.len() * d);
        for &i in &rows {
            x.extend_from_slice(train.row(i));
        }
        // Classes with no training row cannot be described by the support set: the
        // generator sees the present classes only, and an absent class gets a zero output
        // row with bias ABSENT_CLASS_BIAS (never predicted).
        let mut present: Vec<usize> = rows.iter().map(|&i| train.y[i]).collect();
        present.sort_unstable();
        present.dedup();
        if let Some(&bad) = present.iter().find(|&&c| c >= n_classes) {
            anyhow::bail!("training label {bad} is not below the class count {n_classes}");
        }
        if present.len() < 2 {
            anyhow::bail!(
                "the training split has {} class(es); a classifier needs at least two",
                present.len()
            );
        }
        let mut compact = vec![usize::MAX; n_classes];
        for (k, &c) in present.iter().enumerate() {
            compact[c] = k;
        }
        let y: Vec<usize> = rows.iter().map(|&i| compact[train.y[i]]).collect();
        let dev = self.gen.device();
        let x = Tensor::from_vec(x, (rows.len(), d), dev)?;
        let req = requirement
            .map(|r| Tensor::from_vec(r.to_vec(), r.len(), dev))
            .transpose()?;
        let g = self.gen.generate(
            &Support {
                x: &x,
                y: &y,
                n_classes: present.len(),
            },
            req.as_ref(),
        )?;
        let mut params = g.params.detached();
        if present.len() < n_classes {
            params = expand_classes(&params, &present, n_classes)?;
        }
        Ok(AnyTableModel {
            params,
            mlp: MlpConfig {
                hidden: vec![g.hidden],
                activation: Activation::Relu,
                dropout: 0.0,
            },
            support_rows: rows.len(),
            head: None,
        })
    }
}

/// Output bias of a class absent from the training split (its probability is ~e⁻³⁰
/// times the others').
pub const ABSENT_CLASS_BIAS: f32 = -30.0;

/// The support rows: all of them up to `cap`; above it, a seeded random subset that keeps
/// at least one row of every class present in the training split.
pub fn support_rows(y: &[usize], cap: usize, seed: u64) -> Vec<usize> {
    let n = y.len();
    if n <= cap {
        return (0..n).collect();
    }
    let perm = permutation(n, seed);
    let mut seen = std::collections::BTreeSet::new();
    let mut first: Vec<usize> = perm
        .iter()
        .copied()
        .filter(|&i| seen.insert(y[i]))
        .collect();
    let taken: std::collections::BTreeSet<usize> = first.iter().copied().collect();
    let room = cap.saturating_sub(first.len());
    first.extend(
        perm.iter()
            .copied()
            .filter(|i| !taken.contains(i))
            .take(room),
    );
    first
}

/// Widens the output layer from the present classes to all `n_classes`.
fn expand_classes(p: &ParamMap, present: &[usize], n_classes: usize) -> Result<ParamMap> {
    let w = p.get("mlp.1.weight")?;
    let b: Vec<f32> = p.get("mlp.1.bias")?.to_vec1()?;
    let h = w.dim(1)?;
    let rows: Vec<Vec<f32>> = w.to_vec2()?;
    let mut wf = vec![0f32; n_classes * h];
    let mut bf = vec![ABSENT_CLASS_BIAS; n_classes];
    for (k, &c) in present.iter().enumerate() {
        wf[c * h..(c + 1) * h].copy_from_slice(&rows[k]);
        bf[c] = b[k];
    }
    let mut out = p.clone();
    out.insert(
        "mlp.1.weight",
        Tensor::from_vec(wf, (n_classes, h), w.device())?,
    );
    out.insert("mlp.1.bias", Tensor::from_vec(bf, n_classes, w.device())?);
    Ok(out)
}
