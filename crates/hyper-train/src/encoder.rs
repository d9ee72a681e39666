//! The text encoder E made trainable for meta-training (`generator.train_encoder = true`):
//! target-models' BERT, whose training path uses only ops with a backward (candle's fused
//! LayerNorm/softmax have none, DESIGN.md §10), with every weight a `Var` initialised from
//! all-MiniLM-L6-v2. Tokenizing and pooling are target-models' `text_encoder` functions,
//! shared with the inference encoder, which reads the tuned weights back through
//! `target_models::TextEncoder::load_with_weights`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use hyper_core::{checkpoint, ParamMap};
use target_models::bert::{BertConfig, BertModel};
use target_models::lora::LoraConfig;
use target_models::text_encoder::{load_tokenizer, pool_normalize, tokenize, ENCODER_PREFIX};
use tokenizers::Tokenizer;

pub struct TrainableEncoder {
    model: BertModel,
    varmap: VarMap,
    tokenizer: Tokenizer,
    device: Device,
}

/// Requirements tokenized once: ids and mask `[n, longest]`.
#[derive(Clone)]
pub struct Tokens {
    pub ids: Tensor,
    pub mask: Tensor,
}

impl TrainableEncoder {
    /// `dir` holds `config.json`, `model.safetensors`, `tokenizer.json` (MiniLM layout).
    pub fn load(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        let cfg = BertConfig::load(&dir.join("config.json"))
            .context("loading the text encoder (run `cargo xtask fetch`, or set $HYPER_DATA)")?;
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = BertModel::from_vb(&vb, cfg, LoraConfig::none())?;
        let weights = dir.join("model.safetensors");
        varmap
            .load(&weights)
            .with_context(|| format!("loading encoder weights from {}", weights.display()))?;
        Ok(Self {
            model,
            varmap,
            tokenizer: load_tokenizer(dir)?,
            device: device.clone(),
        })
    }

    /// Token ids/mask of `texts` with the encoder's own tokenizer.
    pub fn tokenize(&self, texts: &[&str]) -> anyhow::Result<Tokens> {
        let (ids, mask) = tokenize(&self.tokenizer, texts, &self.device)?;
        Ok(Tokens { ids, mask })
    }

    /// `[n, d]` L2-normalised mean-pooled embeddings; with `train` the graph reaches every
    /// encoder weight (and dropout is on).
    pub fn embed(&self, tokens: &Tokens, train: bool) -> anyhow::Result<Tensor> {
        let h = self.model.encode(
            &ParamMap::new(),
            &tokens.ids,
            Some(&tokens.mask),
            None,
            train,
        )?;
        Ok(pool_normalize(&h, &tokens.mask)?)
    }

    /// The weights the mean-pooled embedding depends on (the BERT pooler is unused), named
    /// `text_encoder.<Hugging Face name>`, sorted.
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut v: Vec<(String, Var)> = data
            .iter()
            .filter(|(k, _)| !k.starts_with("pooler."))
            .map(|(k, v)| (format!("{ENCODER_PREFIX}{k}"), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Current weights for a checkpoint (detached).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.trainable_vars()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().detach()))
            .collect()
    }

    /// Restores [`TrainableEncoder::state_tensors`]; every weight must be present.
    pub fn load_state(&self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        checkpoint::restore_vars(
            &self.trainable_vars(),
            tensors,
            "encoder",
            "the config has train_encoder = true",
        )
    }
}
