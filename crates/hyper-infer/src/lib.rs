//! The user path, one forward pass from data to a usable model (DESIGN.md §1):
//!
//! 1. **Requirement Generator** ([`requirement::describe`]): the data (+ the user's
//!    description) → one User Requirement sentence, by the `profile`, `local` or `openai`
//!    backend.
//! 2. **Model Generator** (same call): the sentence + data → validated [`Metadata`]
//!    (`task`, `in_dim`, `out_dim`, `scale`, `arch`).
//! 3. **Target selection** ([`Pipeline::target`]): the metadata's `arch` picks the target
//!    the loaded checkpoint serves ([`TabularArchitecture::serves`]), or a clear error.
//! 4. **Text encoder E** (MiniLM) embeds the sentence; 5. the **Parameter Generator** emits
//!    every weight of the target in one pass ([`Pipeline::weights`]; [`Pipeline::generate`]
//!    runs 1–5 with [`StageTimings`]).
//! 6. **Model directory** ([`ModelDir`]): the weights with the preprocessing fitted on the
//!    training split, written as a unit; `eval` and `predict` read it back ([`eval`]).
//!
//! The meta-trainer (`hyper-train`) depends on this crate, never the reverse: serving
//! needs only a checkpoint's `[config.architecture]` section and its tensors.

pub mod any_table;
pub mod architecture;
pub mod basis;
pub mod data_split;
pub mod eval;
pub mod export;
pub mod finetune;
pub mod fitted_head;
pub mod image_head;
pub mod image_model_dir;
pub mod manifest;
pub mod model_card;
pub mod model_dir;
pub mod outputs;
pub mod pipeline;
pub mod regression;
pub mod requirement;
pub mod text;
pub mod text_any;
pub mod text_head;
pub mod text_model_dir;
pub mod vision;

use std::path::PathBuf;

pub use architecture::{TabularArchitecture, TABULAR_CHECKPOINT_KIND};
pub use eval::{evaluate, SplitTensors};
pub use hyper_core::Metadata;
pub use model_dir::{ModelDir, ModelInfo};
pub use pipeline::{Generated, GeneratedWeights, Pipeline, StageTimings};
pub use requirement::{Backend, BackendOptions, Described};

/// `checkpoints/<experiment>` in the workspace (where `cargo xtask pretrain` writes).
pub fn checkpoint_dir(experiment: &str) -> PathBuf {
    datasets::paths::workspace_root()
        .join("checkpoints")
        .join(experiment)
}

/// The default tabular generator: `checkpoints/tabular/best`.
pub fn default_checkpoint() -> PathBuf {
    checkpoint_dir("tabular").join("best")
}
