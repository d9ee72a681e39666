//! Finetuning a generated (or any) MLP on a training split: ModelGPT-F's extra epochs
//! (`generate --finetune-epochs`) and the trainer's Finetune/LoRA baselines share this loop.

use anyhow::bail;
use candle_core::{Tensor, Var};
use hyper_core::layers::cross_entropy;
use hyper_core::optim::{Adam, AdamConfig};
use hyper_core::ParamMap;
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};
use target_models::mlp::Mlp;
use target_models::TargetModel;

use crate::SplitTensors;

/// Adam (L2 weight decay) over mini-batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinetuneOptions {
    pub lr: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub epochs: usize,
}

impl Default for FinetuneOptions {
    /// Gentle defaults for starting from generated weights (lr 1e-3, batch 64): the
    /// baselines' from-scratch lr (2e-2) can knock a good generated model off its optimum.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            weight_decay: 0.0,
            batch_size: 64,
            epochs: 5,
        }
    }
}

/// Seeded shuffled mini-batch epochs of `loss_fn`; a non-finite loss is an error naming
/// the epoch and batch.
pub fn run_epochs(
    data: &SplitTensors,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    opt: &mut Adam,
    mut loss_fn: impl FnMut(&Tensor, &Tensor) -> anyhow::Result<Tensor>,
    what: &str,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    hyper_core::layers::seed_dropout(seed);
    let mut idx: Vec<u32> = (0..data.len() as u32).collect();
    for epoch in 0..epochs {
        idx.shuffle(&mut rng);
        for (bi, chunk) in idx.chunks(batch_size).enumerate() {
            let (xb, yb) = data.batch(chunk)?;
            let loss = loss_fn(&xb, &yb)?;
            let v = loss.to_scalar::<f32>()?;
            if !v.is_finite() {
                bail!("{what}: loss is {v} at epoch {}, batch {bi}", epoch + 1);
            }
            opt.step(&loss.backward()?)?;
        }
    }
    Ok(())
}

/// Trains every weight of `mlp` from `init` (cross-entropy, Adam); returns the weights.
pub fn finetune(
    mlp: &Mlp,
    init: &ParamMap,
    data: &SplitTensors,
    o: &FinetuneOptions,
    seed: u64,
) -> anyhow::Result<ParamMap> {
    let (pm, vars) = init.to_vars()?;
    let mut opt = Adam::new(vars, AdamConfig::adam(o.lr, o.weight_decay, false));
    run_epochs(
        data,
        o.epochs,
        o.batch_size,
        seed,
        &mut opt,
        |x, y| Ok(cross_entropy(&mlp.forward(&pm, x, true)?, y)?),
        "finetune",
    )?;
    Ok(pm.detached())
}

/// How [`train_batches`] trains: AdamW over seeded, shuffled batches.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
}

/// `o.epochs` seeded, shuffled passes over `n` examples: `batch_loss(rows)` gives a
/// batch's loss, AdamW steps `vars` (the tensors that loss reads). Errors on a non-finite
/// loss, naming `what` and the step. Returns the mean training loss of each epoch. The
/// text and image LoRA/Finetune baselines and ModelGPT-F share this loop.
pub fn train_batches(
    n: usize,
    vars: Vec<(String, Var)>,
    o: &TrainOptions,
    what: &str,
    mut batch_loss: impl FnMut(&[usize]) -> anyhow::Result<Tensor>,
) -> anyhow::Result<Vec<f64>> {
    let mut opt = Adam::new(vars, AdamConfig::adamw(o.lr, o.weight_decay));
    let mut rng = StdRng::seed_from_u64(o.seed);
    hyper_core::layers::seed_dropout(o.seed);
    let mut step = 0usize;
    let mut means = Vec::with_capacity(o.epochs);
    for _ in 0..o.epochs {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let (mut sum, mut seen) = (0.0, 0usize);
        for chunk in order.chunks(o.batch_size.max(1)) {
            let l = batch_loss(chunk)?;
            let v = l.to_scalar::<f32>()?;
            step += 1;
            if !v.is_finite() {
                bail!("{what}: training loss is {v} at step {step}");
            }
            opt.step(&l.backward()?)?;
            sum += v as f64 * chunk.len() as f64;
            seen += chunk.len();
        }
        means.push(sum / seen.max(1) as f64);
    }
    Ok(means)
}
