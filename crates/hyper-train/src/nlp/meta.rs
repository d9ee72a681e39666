//! Algorithm 1 for the BERT target ([`crate::lora_meta`]): GLUE tasks as [`LoraTasks`],
//! batches padded per step, validated by the task's GLUE score.

use candle_core::{Device, Tensor};
use hyper_core::lora_generator::LoraGeneratorConfig;
use hyper_core::ParamMap;
use hyper_infer::text::{self, glue_score, pad_batch, Encoded, NLP_CHECKPOINT_KIND};
use target_models::bert::BertModel;
use target_models::TextEncoder;

use super::config::{NlpConfig, NlpTrainConfig};
use super::task::TextTask;
use crate::lora_meta::{embed_requirements, LoraMetaTrainer, LoraTasks, TrainerConfig};

pub use crate::lora_meta::LoraLog as NlpLog;

/// The frozen base (with LoRA slots; its fused ops serve validation) and the GLUE tasks.
pub struct NlpTasks {
    pub model: BertModel,
    pub tasks: Vec<TextTask>,
}

impl LoraTasks for NlpTasks {
    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn name(&self, ti: usize) -> String {
        self.tasks[ti].name().to_string()
    }

    fn train_len(&self, ti: usize) -> usize {
        self.tasks[ti].train.len()
    }

    fn loss(
        &self,
        ti: usize,
        theta: &ParamMap,
        rows: &[usize],
        train: bool,
    ) -> anyhow::Result<Tensor> {
        let task = &self.tasks[ti];
        let dev = theta
            .iter()
            .next()
            .map(|(_, t)| t.device().clone())
            .unwrap_or(Device::Cpu);
        let items: Vec<&Encoded> = rows.iter().map(|&i| &task.train.examples[i]).collect();
        let labels: Vec<_> = rows.iter().map(|&i| task.train.labels[i]).collect();
        let batch = pad_batch(&items, &dev)?;
        text::loss(&text::logits(&self.model, theta, &batch, train)?, &labels)
    }

    fn validate(&self, ti: usize, theta: &ParamMap) -> anyhow::Result<(f64, f64)> {
        let t = &self.tasks[ti];
        let p = text::predict(
            &self.model,
            theta,
            &t.val.examples,
            t.task.is_regression(),
            Some(&t.val.labels),
            32,
        )?;
        Ok((
            p.loss.unwrap_or(f64::NAN),
            glue_score(&t.task.evaluate(&p.labels, &t.val.labels)?),
        ))
    }
}

impl TrainerConfig for NlpConfig {
    fn train(&self) -> &NlpTrainConfig {
        &self.train
    }
    fn generator(&self) -> &LoraGeneratorConfig {
        &self.architecture.generator
    }
    fn to_table(&self) -> anyhow::Result<toml::Table> {
        NlpConfig::to_table(self)
    }
}

pub type NlpTrainer = LoraMetaTrainer<NlpConfig, NlpTasks>;

/// Requirement embeddings `[task][requirement] → [d]` and label-text embeddings
/// `[task] → [C, d]` from the frozen text encoder (computed once).
pub fn embed_tasks(
    encoder: &TextEncoder,
    tasks: &[TextTask],
) -> anyhow::Result<(Vec<Vec<Tensor>>, Vec<Tensor>)> {
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
    embed_requirements(encoder, &named)
}

/// A fresh NLP trainer: `model` is the frozen base with LoRA slots; `req_embs` and
/// `label_embs` come from [`embed_tasks`].
pub fn nlp_trainer(
    cfg: NlpConfig,
    model: BertModel,
    tasks: Vec<TextTask>,
    req_embs: Vec<Vec<Tensor>>,
    label_embs: Vec<Tensor>,
    dev: &Device,
) -> anyhow::Result<NlpTrainer> {
    let target = model.lora_target();
    let model = model.with_fused_training(cfg.train.fused_ops);
    LoraMetaTrainer::new(
        cfg,
        NlpTasks { model, tasks },
        target,
        NLP_CHECKPOINT_KIND,
        req_embs,
        label_embs,
        dev,
    )
}
