//! Target models whose trainable tensors come in from outside (`ParamMap`): the tabular
//! MLP, the BERT family with injectable LoRA, and ResNet with frozen BatchNorm; plus the
//! requirement text encoder, which runs on the same BERT.
//! Weight names mirror Hugging Face / torchvision state dicts so real checkpoints load 1:1.

pub mod bert;
pub mod lora;
pub mod mlp;
pub mod onnx;
pub mod peft;
pub mod resnet;
pub mod text_encoder;

pub use text_encoder::TextEncoder;

use candle_core::{Result, Tensor};
use hyper_core::{Metadata, ParamMap, ParamSpec};

/// A model whose frozen base lives inside it and whose generated tensors are supplied
/// per call, so the same forward serves generated weights (graph kept) and trainable vars.
pub trait TargetModel {
    /// The tensors this model needs from outside for the task described by `meta`.
    fn param_spec(&self, meta: &Metadata) -> Vec<ParamSpec>;
    /// Forward pass; `train` enables dropout.
    fn forward(&self, params: &ParamMap, x: &Tensor, train: bool) -> Result<Tensor>;
}
