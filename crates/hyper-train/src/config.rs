//! The tabular experiment config (`configs/tabular*.toml`): the datasets, the
//! `[architecture]` a checkpoint is served with (`hyper_infer::TabularArchitecture`), the
//! Algorithm-1 hyperparameters and the baselines. Each struct states its defaults once
//! (container-level `#[serde(default)]`), so a config file only states what it changes;
//! unknown keys are errors (typos must not pass silently).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use hyper_infer::TabularArchitecture;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaGrad {
    /// Paper: δ = θ − θ' from one target-optimizer step, backpropagated as θ's gradient.
    Delta,
    /// Ablation: backprop the target loss straight through θ = P(r).
    Direct,
}

impl std::fmt::Display for MetaGrad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetaGrad::Delta => "delta",
            MetaGrad::Direct => "direct",
        })
    }
}

/// How the generator's optimizer applies weight decay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenOptimizer {
    /// AdamW: decay decoupled from the gradient (measured best here, the default).
    #[default]
    Adamw,
    /// PyTorch `Adam`: L2 decay added to the gradient, as the reference code and FLAME
    /// Table 7 use (with `gen_amsgrad = true`).
    Adam,
}

impl GenOptimizer {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Generator learning-rate schedule, applied per epoch (so a resumed run matches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    #[default]
    Constant,
    /// Half-cosine from `gen_lr` at epoch 0 down to `gen_lr / 10` at the last epoch: the
    /// δ steps are noisy, and a decaying lr lets the best-by-validation epoch settle.
    Cosine,
}

impl LrSchedule {
    /// The lr for 0-based `epoch` of `epochs`.
    pub fn lr(self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => {
                let lo = base / 10.0;
                let t = epoch as f64 / (epochs.max(2) - 1) as f64;
                lo + 0.5 * (base - lo) * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub gen_lr: f64,
    /// How the generator lr moves over the epochs (`constant` = the paper).
    pub gen_lr_schedule: LrSchedule,
    pub gen_weight_decay: f64,
    pub target_lr: f64,
    pub target_weight_decay: f64,
    /// Generator global grad-norm clip.
    pub clip_norm: f64,
    /// AMSGrad for the generator's AdamW (keeps the largest second moment, so a step after
    /// a quiet stretch cannot be larger than the gradients seen so far justify). Off = the
    /// paper; not written to headers when off, so older checkpoints compare equal.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gen_amsgrad: bool,
    /// Decoupled (AdamW) or L2 (Adam, the reference's) weight decay for the generator; not
    /// written to headers when AdamW, so older checkpoints compare equal.
    #[serde(skip_serializing_if = "GenOptimizer::is_default")]
    pub gen_optimizer: GenOptimizer,
    /// Distinct requirements per task (meta-training pairs).
    pub requirements_per_task: usize,
    pub meta_grad: MetaGrad,
    pub seed: u64,
    /// Steps 1–4 repeat this many times per batch for the named small tasks.
    pub n_local_updates: BTreeMap<String, usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        let n_local_updates = [
            ("wine", 10),
            ("iris", 10),
            ("heart_disease", 2),
            ("rice", 2),
            ("dry_bean", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            epochs: 80,
            batch_size: 64,
            gen_lr: 1e-3,
            gen_lr_schedule: LrSchedule::Constant,
            gen_weight_decay: 1e-4,
            target_lr: 2e-2,
            target_weight_decay: 1e-4,
            clip_norm: 0.25,
            gen_amsgrad: false,
            gen_optimizer: GenOptimizer::Adamw,
            requirements_per_task: 5,
            meta_grad: MetaGrad::Delta,
            seed: 2024,
            n_local_updates,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub lora_r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f32,
    /// Finetuning epochs for ModelGPT-F.
    pub finetune_f_epochs: usize,
    /// ModelGPT-F's finetuning lr is chosen per dataset from these by validation accuracy
    /// (ties → the smaller lr; see [`crate::baselines::select_lr`]): the baseline lr can
    /// knock a good generated model off its optimum in one epoch. Empty: just `lr`.
    pub finetune_f_lr_candidates: Vec<f64>,
}

impl BaselineConfig {
    /// The lrs ModelGPT-F tries: `finetune_f_lr_candidates`, or `[lr]` when that is empty.
    pub fn f_lr_candidates(&self) -> Vec<f64> {
        if self.finetune_f_lr_candidates.is_empty() {
            vec![self.lr]
        } else {
            self.finetune_f_lr_candidates.clone()
        }
    }
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            lr: 2e-2,
            weight_decay: 0.0,
            batch_size: 64,
            lora_r: 4,
            lora_alpha: 8.0,
            lora_dropout: 0.1,
            finetune_f_epochs: 1,
            finetune_f_lr_candidates: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TabularConfig {
    /// Built-in dataset names (see `datasets::uci::BUILTIN`).
    pub datasets: Vec<String>,
    /// What a checkpoint of this experiment needs to be served (stored in its header).
    pub architecture: TabularArchitecture,
    pub train: TrainConfig,
    pub baseline: BaselineConfig,
}

impl Default for TabularConfig {
    fn default() -> Self {
        Self {
            datasets: datasets::uci::BUILTIN
                .iter()
                .map(|s| s.to_string())
                .collect(),
            architecture: TabularArchitecture::default(),
            train: TrainConfig::default(),
            baseline: BaselineConfig::default(),
        }
    }
}

impl TabularConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let cfg: Self = read_toml(path)?;
        cfg.validate()
            .with_context(|| format!("invalid config {}", path.display()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        for d in &self.datasets {
            if !datasets::uci::BUILTIN.contains(&d.as_str()) {
                anyhow::bail!(
                    "datasets: unknown `{d}`; known: {}",
                    datasets::uci::BUILTIN.join(", ")
                );
            }
        }
        for k in self.train.n_local_updates.keys() {
            if !self.datasets.contains(k) {
                anyhow::bail!("train.n_local_updates: `{k}` is not in `datasets`");
            }
        }
        anyhow::ensure!(
            self.train.batch_size > 0 && self.baseline.batch_size > 0,
            "batch sizes must be positive"
        );
        anyhow::ensure!(
            self.train.requirements_per_task > 0,
            "train.requirements_per_task must be positive"
        );
        for (i, &lr) in self.baseline.f_lr_candidates().iter().enumerate() {
            ensure_positive(&format!("baseline.finetune_f_lr_candidates[{i}]"), lr)?;
        }
        self.architecture.validate()
    }

    /// The config as a TOML table (stored in checkpoint headers and compared on load).
    pub fn to_table(&self) -> anyhow::Result<toml::Table> {
        Ok(toml::Table::try_from(self)?)
    }

    /// The part of the config that fixes the generator's tensors (what a checkpoint must
    /// match to be loadable): the datasets (one set of heads each) and the architecture.
    pub fn architecture_table(&self) -> anyhow::Result<toml::Table> {
        let mut t = self.to_table()?;
        t.remove("train");
        t.remove("baseline");
        Ok(t)
    }
}

/// Config value `key` (a learning rate) must be a positive finite number.
pub(crate) fn ensure_positive(key: &str, v: f64) -> anyhow::Result<()> {
    anyhow::ensure!(
        v.is_finite() && v > 0.0,
        "{key} = {v}: must be a positive finite number"
    );
    Ok(())
}

/// Reads and parses a TOML config file, naming the file in every error.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configs_list_the_f_lr_candidates() {
        for name in ["tabular.toml", "tabular-paper.toml"] {
            let p = datasets::paths::workspace_root().join("configs").join(name);
            let cfg = TabularConfig::load(&p).unwrap();
            assert_eq!(cfg.baseline.f_lr_candidates(), vec![2e-2, 1e-3], "{name}");
        }
    }

    #[test]
    fn cosine_schedule_goes_from_lr_to_a_tenth() {
        let c = LrSchedule::Cosine;
        assert_eq!(c.lr(1e-3, 0, 30), 1e-3);
        assert!((c.lr(1e-3, 29, 30) - 1e-4).abs() < 1e-12);
        assert!((c.lr(1e-3, 1, 3) - 5.5e-4).abs() < 1e-12);
        assert_eq!(LrSchedule::Constant.lr(1e-3, 29, 30), 1e-3);
    }

    #[test]
    fn f_lr_candidates_default_to_lr_and_must_be_positive() {
        let mut cfg = TabularConfig::default();
        assert_eq!(cfg.baseline.f_lr_candidates(), vec![cfg.baseline.lr]);
        cfg.baseline.finetune_f_lr_candidates = vec![1e-3, 0.0];
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("finetune_f_lr_candidates[1]"), "{e}");
    }
}
