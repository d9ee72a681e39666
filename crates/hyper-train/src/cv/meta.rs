//! Algorithm 1 for the ResNet target ([`crate::lora_meta`]): image domains as
//! [`LoraTasks`], the generator's output reshaped to conv-LoRA factors and `fc`, validated
//! by top-1 accuracy.

use std::path::Path;

use candle_core::{Device, Tensor};
use hyper_core::lora_generator::LoraGeneratorConfig;
use hyper_core::ParamMap;
use hyper_infer::vision::{self, CV_CHECKPOINT_KIND};
use target_models::resnet::ResNet;
use target_models::TextEncoder;

use super::augment;
use super::config::CvConfig;
use super::task::ImageTask;
use crate::lora_meta::{embed_requirements, LoraMetaTrainer, LoraTasks, TrainerConfig};
use crate::nlp::config::NlpTrainConfig;

/// The frozen backbone (with conv-LoRA slots) and the image domains.
pub struct ImageTasks {
    pub model: ResNet,
    pub tasks: Vec<ImageTask>,
    /// `data.augment_shift`, and the seed its shifts are drawn from with each batch.
    pub augment_shift: usize,
    pub seed: u64,
}

impl LoraTasks for ImageTasks {
    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn name(&self, ti: usize) -> String {
        self.tasks[ti].name().to_string()
    }

    fn train_len(&self, ti: usize) -> usize {
        self.tasks[ti].train.n
    }

    fn loss(
        &self,
        ti: usize,
        theta: &ParamMap,
        rows: &[usize],
        train: bool,
    ) -> anyhow::Result<Tensor> {
        let params = self.model.from_generated(theta)?;
        let set = &self.tasks[ti].train;
        if !train {
            return vision::batch_loss(&self.model, &params, set, rows, false);
        }
        let at = (self.seed, ti);
        augment::training_loss(&self.model, &params, set, rows, self.augment_shift, at)
    }

    fn validate(&self, ti: usize, theta: &ParamMap) -> anyhow::Result<(f64, f64)> {
        let params = self.model.from_generated(theta)?;
        let val = &self.tasks[ti].val;
        let probs = vision::probabilities(&self.model, &params, val, 128)?;
        let nll = probs
            .iter()
            .zip(&val.labels)
            .map(|(p, &y)| -(p[y].max(1e-12) as f64).ln())
            .sum::<f64>()
            / val.n.max(1) as f64;
        Ok((nll, vision::top_k_accuracy(&probs, &val.labels, 1)?))
    }
}

impl TrainerConfig for CvConfig {
    fn train(&self) -> &NlpTrainConfig {
        &self.train
    }
    fn generator(&self) -> &LoraGeneratorConfig {
        &self.architecture.generator
    }
    fn to_table(&self) -> anyhow::Result<toml::Table> {
        CvConfig::to_table(self)
    }
}

pub type CvTrainer = LoraMetaTrainer<CvConfig, ImageTasks>;

/// Every meta-training domain of `cfg`.
pub fn load_tasks(cfg: &CvConfig) -> anyhow::Result<Vec<ImageTask>> {
    cfg.data
        .tasks
        .iter()
        .map(|&s| {
            ImageTask::load(
                s,
                &cfg.architecture.backbone,
                cfg.data.train_cap,
                cfg.data.val_per_task,
                cfg.data.test_cap,
                cfg.data.requirements_per_task,
                cfg.train.seed,
            )
        })
        .collect()
}

/// A fresh trainer for `cfg`: the backbone it names, its domains, and requirement and
/// class-text embeddings from the text encoder in `minilm_dir`.
pub fn trainer_from_config(
    cfg: CvConfig,
    minilm_dir: &Path,
    dev: &Device,
) -> anyhow::Result<CvTrainer> {
    let tasks = load_tasks(&cfg)?;
    let model = cfg.architecture.load_backbone(dev)?;
    let encoder = TextEncoder::load(minilm_dir, dev)?;
    let named: Vec<_> = tasks
        .iter()
        .map(|t| {
            (
                t.name().to_string(),
                t.requirements.clone(),
                t.label_texts.clone(),
            )
        })
        .collect();
    let (reqs, labels) = embed_requirements(&encoder, &named)?;
    let target = model.lora_target();
    let data = ImageTasks {
        model,
        tasks,
        augment_shift: cfg.data.augment_shift,
        seed: cfg.train.seed,
    };
    LoraMetaTrainer::new(cfg, data, target, CV_CHECKPOINT_KIND, reqs, labels, dev)
}
