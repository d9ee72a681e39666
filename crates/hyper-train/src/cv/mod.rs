//! The CV experiment (ModelGPT Table 3 at CPU scale): the backbone this project pretrains
//! and freezes, Algorithm-1 meta-training of the conv-LoRA generator on image domains,
//! and the LoRA/Finetune baselines it is compared with.

pub mod augment;
pub mod backbone;
pub mod config;
pub mod experiment;
pub mod meta;
pub mod task;

pub use config::CvConfig;
pub use meta::{trainer_from_config, CvTrainer, ImageTasks};
pub use task::ImageTask;
