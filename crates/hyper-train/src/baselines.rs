//! Baselines of the paper's Table 2: Finetune (all weights from a random init, Adam) and
//! LoRA (r, alpha, dropout on every MLP linear over a frozen random init). ModelGPT-F is
//! [`finetune`] started from generated weights, its lr picked on the validation split by
//! [`finetune_select_lr`].

use std::time::Instant;

use anyhow::bail;
use hyper_core::layers::cross_entropy;
use hyper_core::optim::{Adam, AdamConfig};
use hyper_core::ParamMap;
use target_models::mlp::Mlp;

use crate::config::BaselineConfig;
use hyper_infer::finetune::{run_epochs, FinetuneOptions};
use hyper_infer::SplitTensors;

/// Trains every MLP weight from `init` for `epochs` epochs (Adam); returns the weights.
pub fn finetune(
    mlp: &Mlp,
    init: &ParamMap,
    data: &SplitTensors,
    cfg: &BaselineConfig,
    epochs: usize,
    seed: u64,
) -> anyhow::Result<ParamMap> {
    hyper_infer::finetune::finetune(
        mlp,
        init,
        data,
        &FinetuneOptions {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            batch_size: cfg.batch_size,
            epochs,
        },
        seed,
    )
}

/// LoRA on every linear over the frozen `base`; returns the trained LoRA factors.
pub fn lora(
    mlp: &Mlp,
    base: &ParamMap,
    lora_init: &ParamMap,
    data: &SplitTensors,
    cfg: &BaselineConfig,
    seed: u64,
) -> anyhow::Result<ParamMap> {
    let (pm, vars) = lora_init.to_vars()?;
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
    Ok(pm.detached())
}

/// Index of the candidate `(lr, validation accuracy)` to keep: the highest validation
/// accuracy, ties going to the smaller lr (the gentler change to the starting weights).
/// `None` for no candidates.
pub fn select_lr(trials: &[(f64, f64)]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &(lr, acc)) in trials.iter().enumerate() {
        best = match best {
            Some(b) => {
                let (blr, bacc) = trials[b];
                if acc > bacc || (acc == bacc && lr < blr) {
                    Some(i)
                } else {
                    Some(b)
                }
            }
            None => Some(i),
        };
    }
    best
}

/// One candidate of [`finetune_select_lr`].
pub struct LrTrial {
    pub lr: f64,
    pub val_acc: f64,
    /// Finetuning plus the validation evaluation, seconds.
    pub secs: f64,
    pub params: ParamMap,
}

/// Finetunes from `init` once per lr in `cfg.f_lr_candidates()` and scores each on `val`;
/// returns the index [`select_lr`] picks and every trial. Test data plays no part.
pub fn finetune_select_lr(
    mlp: &Mlp,
    init: &ParamMap,
    train: &SplitTensors,
    val: &SplitTensors,
    cfg: &BaselineConfig,
    epochs: usize,
    seed: u64,
) -> anyhow::Result<(usize, Vec<LrTrial>)> {
    let mut trials = Vec::new();
    for lr in cfg.f_lr_candidates() {
        let t = Instant::now();
        let c = BaselineConfig { lr, ..cfg.clone() };
        let params = finetune(mlp, init, train, &c, epochs, seed)?;
        let val_acc = hyper_infer::evaluate(mlp, &params, val)?.1;
        trials.push(LrTrial {
            lr,
            val_acc,
            secs: t.elapsed().as_secs_f64(),
            params,
        });
    }
    let pairs: Vec<(f64, f64)> = trials.iter().map(|t| (t.lr, t.val_acc)).collect();
    let Some(best) = select_lr(&pairs) else {
        bail!("no finetuning lr candidates");
    };
    Ok((best, trials))
}

#[cfg(test)]
mod tests {
    use super::select_lr;

    #[test]
    fn select_lr_takes_best_validation_accuracy() {
        assert_eq!(select_lr(&[(2e-2, 0.80), (1e-3, 0.95)]), Some(1));
        assert_eq!(select_lr(&[(2e-2, 0.96), (1e-3, 0.95)]), Some(0));
        assert_eq!(select_lr(&[(1e-1, 0.5), (2e-2, 0.9), (1e-3, 0.7)]), Some(1));
        assert_eq!(select_lr(&[]), None);
        assert_eq!(select_lr(&[(2e-2, 0.0)]), Some(0));
    }

    #[test]
    fn select_lr_tie_goes_to_smaller_lr_in_any_order() {
        assert_eq!(select_lr(&[(2e-2, 0.9), (1e-3, 0.9)]), Some(1));
        assert_eq!(select_lr(&[(1e-3, 0.9), (2e-2, 0.9)]), Some(0));
        assert_eq!(
            select_lr(&[(1e-1, 0.9), (5e-3, 0.9), (2e-2, 0.9), (1e-2, 0.8)]),
            Some(1)
        );
    }
}
