//! Baselines of the paper's Table 2: Finetune (all weights from a random init, Adam) and
//! LoRA (r, alpha, dropout on every MLP linear over a frozen random init). ModelGPT-F is
//! [`finetune`] started from generated weights.

use anyhow::bail;
use candle_core::{Tensor, Var};
use hyper_core::layers::cross_entropy;
use hyper_core::optim::{Adam, AdamConfig};
use hyper_core::ParamMap;
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};
use target_models::mlp::Mlp;
use target_models::TargetModel;

use crate::config::BaselineConfig;
use crate::task::Data;

fn to_vars(p: &ParamMap) -> anyhow::Result<(Vec<(String, Var)>, ParamMap)> {
    let mut vars = Vec::new();
    let mut pm = ParamMap::new();
    for (k, t) in p.iter() {
        let v = Var::from_tensor(&t.detach())?;
        pm.insert(k.clone(), v.as_tensor().clone());
        vars.push((k.clone(), v));
    }
    Ok((vars, pm))
}

fn run_epochs(
    data: &Data,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    opt: &mut Adam,
    mut loss_fn: impl FnMut(&Tensor, &Tensor) -> anyhow::Result<Tensor>,
    what: &str,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
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

/// Trains every MLP weight from `init` for `epochs` epochs (Adam); returns the weights.
pub fn finetune(
    mlp: &Mlp,
    init: &ParamMap,
    data: &Data,
    cfg: &BaselineConfig,
    epochs: usize,
    seed: u64,
) -> anyhow::Result<ParamMap> {
    let (vars, pm) = to_vars(init)?;
    let mut opt = Adam::new(vars, AdamConfig::adam(cfg.lr, cfg.weight_decay, false));
    run_epochs(
        data,
        epochs,
        cfg.batch_size,
        seed,
        &mut opt,
        |x, y| Ok(cross_entropy(&mlp.forward(&pm, x, true)?, y)?),
        "finetune",
    )?;
    Ok(crate::meta::detach(&pm))
}

/// LoRA on every linear over the frozen `base`; returns the trained LoRA factors.
pub fn lora(
    mlp: &Mlp,
    base: &ParamMap,
    lora_init: &ParamMap,
    data: &Data,
    cfg: &BaselineConfig,
    seed: u64,
) -> anyhow::Result<ParamMap> {
    let (vars, pm) = to_vars(lora_init)?;
    let mut opt = Adam::new(vars, AdamConfig::adam(cfg.lr, cfg.weight_decay, false));
    let scale = cfg.lora_alpha / cfg.lora_r as f64;
    run_epochs(
        data,
        cfg.epochs,
        cfg.batch_size,
        seed,
        &mut opt,
        |x, y| {
            Ok(cross_entropy(
                &mlp.forward_lora(base, &pm, x, scale, cfg.lora_dropout, true)?,
                y,
            )?)
        },
        "lora",
    )?;
    Ok(crate::meta::detach(&pm))
}
