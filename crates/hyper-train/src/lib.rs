//! Meta-training (Algorithm 1), task–requirement pairs, the Finetune/LoRA baselines,
//! evaluation, checkpoints/resume, and the one-pass generation engine for tabular data.

pub mod baselines;
pub mod config;
pub mod encoder;
pub mod engine;
pub mod meta;
pub mod task;

pub use config::{MetaGrad, TabularConfig};
pub use engine::{Engine, Generated, ModelDir, ModelInfo};
pub use meta::MetaTrainer;
pub use task::{Data, TabularTask};
