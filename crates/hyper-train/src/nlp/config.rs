//! `configs/nlp.toml`: the CPU scale of the NLP experiment (ModelGPT Table 1). Each struct
//! states its defaults once (container-level `#[serde(default)]`); unknown keys are errors.

use std::path::Path;

use anyhow::{bail, ensure, Context};
use datasets::glue::GlueTask;
use hyper_infer::text::NlpArchitecture;
use serde::{Deserialize, Serialize};

use crate::config::{LrSchedule, MetaGrad};

/// Which GLUE tasks, and how much of each the CPU budget allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NlpDataConfig {
    /// Meta-training tasks (GLUE names, case and dash insensitive).
    pub tasks: Vec<String>,
    /// Never trained on: its adapter comes from a requirement written from its dev rows.
    pub zero_shot: String,
    /// Training examples per task drawn (seeded) from its train split; the rest is unused.
    pub train_cap: usize,
    /// Training examples per task held out for validation (checkpoint selection). GLUE dev
    /// is the test set here, as in the paper.
    pub val_per_task: usize,
    /// Distinct requirement sentences per task (meta-training pairs).
    pub requirements_per_task: usize,
}

impl Default for NlpDataConfig {
    fn default() -> Self {
        Self {
            tasks: ["cola", "sst2", "mrpc", "stsb", "rte", "wnli"]
                .map(String::from)
                .to_vec(),
            zero_shot: "qnli".into(),
            train_cap: 4000,
            val_per_task: 64,
            requirements_per_task: 5,
        }
    }
}

impl NlpDataConfig {
    pub fn glue_tasks(&self) -> anyhow::Result<Vec<GlueTask>> {
        self.tasks
            .iter()
            .map(|t| GlueTask::from_name(t).with_context(|| format!("data.tasks: `{t}`")))
            .collect()
    }

    pub fn zero_shot_task(&self) -> anyhow::Result<GlueTask> {
        GlueTask::from_name(&self.zero_shot).context("data.zero_shot")
    }
}

/// Algorithm 1 at CPU scale: a fixed number of generator steps, tasks sampled in balanced
/// rounds (every task once per round, shuffled), one batch per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NlpTrainConfig {
    pub steps: usize,
    pub batch_size: usize,
    pub gen_lr: f64,
    /// Per step (so a resumed run matches): `cosine` decays `gen_lr` to a tenth by the
    /// last step, letting the noisy δ steps settle.
    pub gen_lr_schedule: LrSchedule,
    pub gen_weight_decay: f64,
    /// The target optimizer (Adam, amsgrad) whose one step gives δ.
    pub target_lr: f64,
    pub target_weight_decay: f64,
    pub clip_norm: f64,
    pub meta_grad: MetaGrad,
    /// Validate, write `last` (and `best` when validation improved) every this many
    /// steps. The target optimizer's state resets here too (the paper resets it every
    /// task epoch), so a checkpoint holds everything a resumed run needs.
    pub checkpoint_every: usize,
    pub seed: u64,
    /// Train through `hyper_core`'s fused ops (BERT only: `BertModel::with_fused_training`).
    /// Faster, but they sum in another order and draw other dropout masks, so a run with
    /// them is not bit-identical to one without.
    pub fused_ops: bool,
}

impl Default for NlpTrainConfig {
    fn default() -> Self {
        Self {
            steps: 900,
            batch_size: 16,
            gen_lr: 2e-4,
            gen_lr_schedule: LrSchedule::Constant,
            gen_weight_decay: 1e-4,
            target_lr: 1e-4,
            target_weight_decay: 1e-4,
            clip_norm: 0.25,
            meta_grad: MetaGrad::Delta,
            checkpoint_every: 100,
            seed: 2024,
            fused_ops: false,
        }
    }
}

/// The LoRA and Finetune baselines and ModelGPT-F (`reproduce nlp`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NlpBaselineConfig {
    pub epochs: usize,
    /// Training examples per task the baselines see per epoch (the first of the
    /// meta-training pool, so every method reads the same text).
    pub train_cap: usize,
    pub batch_size: usize,
    pub lora_lr: f64,
    pub finetune_lr: f64,
    pub weight_decay: f64,
    /// ModelGPT-F: epochs of training from the generated model.
    pub finetune_f_epochs: usize,
    /// What those epochs train (see [`FinetuneFMode`]).
    pub finetune_f_mode: FinetuneFMode,
    /// ModelGPT-F's lr; unset means `lora_lr` (mode `lora`) or `finetune_lr` (mode
    /// `full`, the paper's "consistent hyperparameter settings"). A generated adapter
    /// already sits near a good solution, so PEFT's lr for training from scratch can
    /// knock it off.
    pub finetune_f_lr: Option<f64>,
    /// CV only: ModelGPT-F trains once per lr here and keeps the one with the best top-1
    /// on the domain's validation images (never the test split; ties → smaller lr), as
    /// the tabular reproduction does; its E2E pays for every candidate. Empty means
    /// `finetune_f_lr` alone.
    pub finetune_f_lr_candidates: Vec<f64>,
    /// CV only: every trained row (LoRA, Finetune, ModelGPT-F and the zero-shot domain's
    /// upper bounds) moves each training image by up to this many pixels per batch, as
    /// `data.augment_shift` does for meta-training, so a generator meta-trained on shifted
    /// batches can be compared with baselines given the same option. 0 = off.
    #[serde(skip_serializing_if = "is_zero")]
    pub augment_shift: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// What ModelGPT-F's epochs train from the generated model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinetuneFMode {
    /// The generated adapter and head, as the LoRA baseline trains (the base frozen).
    #[default]
    Lora,
    /// The paper's ModelGPT-F ("a single epoch of finetuning involving all parameters"):
    /// the adapter merged into the base weights, then every weight Finetune trains plus
    /// the generated head.
    Full,
}

impl FinetuneFMode {
    /// How the table names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Lora => "LoRA training from the generated adapter",
            Self::Full => {
                "full finetuning (every weight Finetune trains, plus the generated head) from the generated adapter merged into the base"
            }
        }
    }
}

impl NlpBaselineConfig {
    /// The lr ModelGPT-F trains at.
    pub fn finetune_f_lr(&self) -> f64 {
        self.finetune_f_lr.unwrap_or(match self.finetune_f_mode {
            FinetuneFMode::Lora => self.lora_lr,
            FinetuneFMode::Full => self.finetune_lr,
        })
    }

    /// The lrs ModelGPT-F tries: `finetune_f_lr_candidates`, or `[finetune_f_lr]`.
    pub fn finetune_f_lrs(&self) -> Vec<f64> {
        if self.finetune_f_lr_candidates.is_empty() {
            vec![self.finetune_f_lr()]
        } else {
            self.finetune_f_lr_candidates.clone()
        }
    }

    /// Checks shared by the NLP and CV configs.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(self.batch_size > 0, "baseline.batch_size must be positive");
        for (key, lr) in [
            ("lora_lr", self.lora_lr),
            ("finetune_lr", self.finetune_lr),
            ("finetune_f_lr", self.finetune_f_lr()),
        ] {
            crate::config::ensure_positive(&format!("baseline.{key}"), lr)?;
        }
        for (i, &lr) in self.finetune_f_lr_candidates.iter().enumerate() {
            crate::config::ensure_positive(&format!("baseline.finetune_f_lr_candidates[{i}]"), lr)?;
        }
        Ok(())
    }
}

impl Default for NlpBaselineConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            train_cap: 1000,
            batch_size: 16,
            lora_lr: 5e-4,
            finetune_lr: 5e-5,
            weight_decay: 0.01,
            finetune_f_epochs: 1,
            finetune_f_mode: FinetuneFMode::Lora,
            finetune_f_lr: None,
            finetune_f_lr_candidates: Vec::new(),
            augment_shift: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NlpConfig {
    pub data: NlpDataConfig,
    /// What a checkpoint needs to be served (LoRA shape, generator, tokenization).
    pub architecture: NlpArchitecture,
    pub train: NlpTrainConfig,
    pub baseline: NlpBaselineConfig,
}

impl NlpConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let cfg: Self = crate::config::read_toml(path)?;
        cfg.validate()
            .with_context(|| format!("invalid config {}", path.display()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let tasks = self.data.glue_tasks()?;
        ensure!(!tasks.is_empty(), "data.tasks is empty");
        let zs = self.data.zero_shot_task()?;
        if tasks.contains(&zs) {
            bail!("data.zero_shot `{zs}` is also a meta-training task");
        }
        ensure!(
            self.architecture.max_len >= 8,
            "architecture.max_len must be at least 8"
        );
        ensure!(
            self.data.train_cap > 0 && self.data.requirements_per_task > 0,
            "data.train_cap and data.requirements_per_task must be positive"
        );
        ensure!(
            self.train.batch_size > 0,
            "train.batch_size must be positive"
        );
        self.baseline.validate()?;
        ensure!(
            self.baseline.finetune_f_lr_candidates.is_empty(),
            "baseline.finetune_f_lr_candidates: the NLP reproduction trains ModelGPT-F at \
             finetune_f_lr only (validation-picked lrs are CV and tabular only)"
        );
        ensure!(
            self.baseline.augment_shift == 0,
            "baseline.augment_shift: pixel shifts are for images (CV configs only)"
        );
        ensure!(
            self.architecture.lora.r > 0,
            "architecture.lora.r must be positive"
        );
        ensure!(
            !self.architecture.lora.target_modules.is_empty(),
            "architecture.lora.target_modules is empty"
        );
        Ok(())
    }

    pub fn to_table(&self) -> anyhow::Result<toml::Table> {
        Ok(toml::Table::try_from(self)?)
    }
}
