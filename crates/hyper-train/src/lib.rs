//! Meta-training (Algorithm 1), task–requirement pairs, the Finetune/LoRA baselines,
//! evaluation, checkpoints/resume for tabular data.
//! Serving the trained generator is `hyper-infer`'s job (this crate depends on it).

pub mod algorithm1;
pub mod baselines;
pub mod classic;
pub mod config;
pub mod cv;
pub mod encoder;
pub mod experiment;
pub mod lora_meta;
pub mod meta;
pub mod nlp;
pub mod report;
pub mod tabular_any;
pub mod task;
pub mod text_any;
pub mod text_unseen;
pub mod unseen;

pub use config::{MetaGrad, TabularConfig};
pub use meta::MetaTrainer;
pub use task::TabularTask;
