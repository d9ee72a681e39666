//! `configs/cv.toml`: the CPU scale of the CV experiment (ModelGPT Table 3). Each struct
//! states its defaults once (container-level `#[serde(default)]`); unknown keys are errors.

use std::path::Path;

use anyhow::{bail, ensure, Context};
use hyper_infer::vision::{CvArchitecture, ImageSetName};
use serde::{Deserialize, Serialize};

use crate::nlp::config::{NlpBaselineConfig, NlpTrainConfig};

/// Supervised pretraining of the backbone (`cargo xtask pretrain backbone`): the
/// ImageNet-pretrained ResNet the paper starts from is not obtainable here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackboneTrainConfig {
    pub dataset: ImageSetName,
    /// Training images used (the first of a seeded shuffle); 0 = all.
    pub train_images: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak AdamW lr, decayed by a cosine to 0 over the run.
    pub lr: f64,
    pub weight_decay: f64,
    /// BatchNorm running-statistics momentum (PyTorch's 0.1).
    pub bn_momentum: f64,
    /// Write `last` (resumable) every this many steps.
    pub checkpoint_every: usize,
    pub seed: u64,
}

impl Default for BackboneTrainConfig {
    fn default() -> Self {
        Self {
            dataset: ImageSetName::FashionMnist,
            train_images: 0,
            epochs: 2,
            batch_size: 128,
            lr: 2e-3,
            weight_decay: 5e-4,
            bn_momentum: 0.1,
            checkpoint_every: 50,
            seed: 7,
        }
    }
}

/// Which image sets, and how much of each the CPU budget allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CvDataConfig {
    /// Meta-training domains.
    pub tasks: Vec<ImageSetName>,
    /// Never trained on: its adapter comes from a requirement written from its data.
    pub zero_shot: ImageSetName,
    /// Training images per task (the first of its training split); the rest is unused.
    pub train_cap: usize,
    /// Training images per task held out for validation (checkpoint selection).
    pub val_per_task: usize,
    /// Test images scored per task (the first of its test split; 0 = all).
    pub test_cap: usize,
    pub requirements_per_task: usize,
    /// Meta-training batches move each image by up to this many pixels in each direction
    /// ([`super::augment`]); 0 = off (the committed `checkpoints/cv` generator).
    pub augment_shift: usize,
}

impl Default for CvDataConfig {
    fn default() -> Self {
        Self {
            tasks: vec![ImageSetName::Mnist5k, ImageSetName::FashionMnist],
            zero_shot: ImageSetName::Digits,
            train_cap: 4000,
            val_per_task: 128,
            test_cap: 0,
            requirements_per_task: 5,
            augment_shift: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CvConfig {
    pub data: CvDataConfig,
    /// What a checkpoint needs to be served (backbone, LoRA shape, generator).
    pub architecture: CvArchitecture,
    pub backbone_train: BackboneTrainConfig,
    /// Algorithm 1 (the same schedule as NLP's: steps, tasks in balanced rounds).
    pub train: NlpTrainConfig,
    pub baseline: NlpBaselineConfig,
}

impl CvConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let cfg: Self = crate::config::read_toml(path)?;
        cfg.validate()
            .with_context(|| format!("invalid config {}", path.display()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(!self.data.tasks.is_empty(), "data.tasks is empty");
        if self.data.tasks.contains(&self.data.zero_shot) {
            bail!(
                "data.zero_shot `{}` is also a meta-training task",
                self.data.zero_shot.name()
            );
        }
        self.architecture.backbone.resnet()?;
        ensure!(
            !self.train.fused_ops,
            "train.fused_ops: the ResNet target has no fused training path (BERT only)"
        );
        ensure!(
            self.architecture.backbone.image_size >= 8,
            "architecture.backbone.image_size must be at least 8"
        );
        ensure!(
            self.architecture.lora.r > 0,
            "architecture.lora.r must be positive"
        );
        ensure!(
            self.train.batch_size > 0 && self.backbone_train.batch_size > 0,
            "batch sizes must be positive"
        );
        self.baseline.validate()?;
        ensure!(
            self.data.train_cap > 0 && self.data.requirements_per_task > 0,
            "data.train_cap and data.requirements_per_task must be positive"
        );
        Ok(())
    }

    pub fn to_table(&self) -> anyhow::Result<toml::Table> {
        Ok(toml::Table::try_from(self)?)
    }
}
