//! The NLP experiment (ModelGPT Table 1 at CPU scale): GLUE tasks, Algorithm-1
//! meta-training of the LoRA generator for a BERT-family target, and the LoRA/Finetune
//! baselines it is compared with.

pub mod config;
pub mod experiment;
pub mod meta;
pub mod task;

pub use config::NlpConfig;
pub use meta::{embed_tasks, nlp_trainer, NlpLog, NlpTasks, NlpTrainer};
pub use task::{TextSet, TextTask};

use std::path::Path;

use candle_core::Device;
use hyper_infer::text::TextTokenizer;
use target_models::bert::BertModel;

/// Every meta-training task of `cfg`, from the `glue_data` layout at `glue_root`.
pub fn load_tasks(
    cfg: &NlpConfig,
    tokenizer: &TextTokenizer,
    glue_root: &Path,
) -> anyhow::Result<Vec<TextTask>> {
    cfg.data
        .glue_tasks()?
        .into_iter()
        .map(|t| {
            TextTask::load(
                t,
                glue_root,
                tokenizer,
                cfg.data.train_cap,
                cfg.data.val_per_task,
                cfg.data.requirements_per_task,
                cfg.train.seed,
            )
        })
        .collect()
}

/// A fresh trainer for `cfg` on MiniLM (`minilm_dir`: base model, tokenizer, text
/// encoder) and the GLUE tasks under `glue_root`.
pub fn trainer_from_config(
    cfg: NlpConfig,
    minilm_dir: &Path,
    glue_root: &Path,
    dev: &Device,
) -> anyhow::Result<NlpTrainer> {
    let tokenizer = TextTokenizer::load(minilm_dir, cfg.architecture.max_len)?;
    let tasks = load_tasks(&cfg, &tokenizer, glue_root)?;
    let encoder = target_models::TextEncoder::load(minilm_dir, dev)?;
    let (reqs, labels) = embed_tasks(&encoder, &tasks)?;
    let model = BertModel::load(minilm_dir, cfg.architecture.lora.lora_config(), dev)?
        .with_fused_inference(true);
    nlp_trainer(cfg, model, tasks, reqs, labels, dev)
}
