//! Text encoder E for inference: all-MiniLM-L6-v2 (BERT, 384-d) with sentence-transformers'
//! mean pooling and L2 normalisation, on this crate's [`BertModel`] prepared for inference
//! (fused ops, transposed weights; no gradients flow here, DESIGN.md §10). One BERT serves
//! both this frozen encoder and the trainable copy in `hyper-train`, which reuses
//! [`load_tokenizer`], [`tokenize`] and [`pool_normalize`] so both see the same tokens and
//! pooling.
//! A generator meta-trained with `train_encoder = true` stores its tuned encoder weights in
//! its checkpoint under [`ENCODER_PREFIX`]; [`TextEncoder::load_with_weights`] serves them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use hyper_core::ParamMap;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::bert::{mean_pool, BertConfig, BertModel, Flavor};
use crate::lora::LoraConfig;

/// Longest requirement we encode; the sentences are one line, well under this.
pub const MAX_TOKENS: usize = 256;

/// Checkpoint key prefix of a meta-trained encoder's weights (Hugging Face names follow).
pub const ENCODER_PREFIX: &str = "text_encoder.";

/// `dir/name`, or an error saying how to get it.
fn asset(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(anyhow!(
            "text encoder file {} is missing (run `cargo xtask fetch`, or set $HYPER_DATA)",
            p.display()
        ))
    }
}

/// `dir/tokenizer.json`, padding to the batch's longest and truncating at [`MAX_TOKENS`].
pub fn load_tokenizer(dir: &Path) -> anyhow::Result<Tokenizer> {
    let path = asset(dir, "tokenizer.json")?;
    let mut tokenizer =
        Tokenizer::from_file(&path).map_err(|e| anyhow!("loading {}: {e}", path.display()))?;
    // The shipped tokenizer.json pads every sequence to 128 and truncates there: override
    // both, so a single sentence runs unpadded.
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..Default::default()
    }));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(|e| anyhow!("setting tokenizer truncation: {e}"))?;
    Ok(tokenizer)
}

/// Token ids and attention mask, both `[n, longest]` u32.
pub fn tokenize(
    tokenizer: &Tokenizer,
    texts: &[&str],
    device: &Device,
) -> anyhow::Result<(Tensor, Tensor)> {
    let enc = tokenizer
        .encode_batch(texts.to_vec(), true)
        .map_err(|e| anyhow!("tokenizing requirements: {e}"))?;
    let n = enc.len();
    let len = enc.first().map_or(0, |e| e.get_ids().len());
    let mut ids = Vec::with_capacity(n * len);
    let mut mask = Vec::with_capacity(n * len);
    for e in &enc {
        ids.extend_from_slice(e.get_ids());
        mask.extend_from_slice(e.get_attention_mask());
    }
    Ok((
        Tensor::from_vec(ids, (n, len), device)?,
        Tensor::from_vec(mask, (n, len), device)?,
    ))
}

/// sentence-transformers' pooling: [`mean_pool`] of `hidden` `[n, len, d]` over real
/// tokens, then L2 normalisation → `[n, d]`. Plain ops only, so gradients pass.
pub fn pool_normalize(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mean = mean_pool(hidden, mask)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norm)
}

/// The frozen sentence encoder: tokenizer + fused-inference BERT + pooling.
pub struct TextEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pub dim: usize,
}

impl TextEncoder {
    /// Loads `model.safetensors`, `config.json`, `tokenizer.json` from `dir`.
    pub fn load(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        Self::load_with_weights(dir, None, device)
    }

    /// Like [`TextEncoder::load`], but with `weights` (Hugging Face names, e.g. a
    /// checkpoint's [`ENCODER_PREFIX`] tensors with the prefix stripped) instead of
    /// `dir/model.safetensors` when given; config and tokenizer still come from `dir`.
    pub fn load_with_weights(
        dir: &Path,
        weights: Option<HashMap<String, Tensor>>,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let cfg = BertConfig::load(&asset(dir, "config.json")?)?;
        if cfg.flavor != Flavor::Bert {
            anyhow::bail!(
                "{}: the text encoder must be a BERT model (all-MiniLM-L6-v2)",
                dir.join("config.json").display()
            );
        }
        let tokenizer = load_tokenizer(dir)?;
        let model = match weights {
            Some(mut w) => {
                // A tuned checkpoint leaves out the BERT pooler (mean pooling never reads
                // it), which the model still allocates: stand in zeros.
                let h = cfg.hidden_size;
                for (name, shape) in [
                    ("pooler.dense.weight", vec![h, h]),
                    ("pooler.dense.bias", vec![h]),
                ] {
                    let prefixed = format!("bert.{name}");
                    if !w.contains_key(name) && !w.contains_key(&prefixed) {
                        w.insert(name.to_string(), Tensor::zeros(shape, DType::F32, device)?);
                    }
                }
                let vb = VarBuilder::from_tensors(w, DType::F32, device);
                BertModel::from_vb(&vb, cfg.clone(), LoraConfig::none())
                    .context("loading BERT from the checkpoint's tuned encoder")?
            }
            None => {
                asset(dir, "model.safetensors")?;
                BertModel::load(dir, LoraConfig::none(), device)?
            }
        };
        Ok(Self {
            model: model.for_inference()?,
            tokenizer,
            device: device.clone(),
            dim: cfg.hidden_size,
        })
    }

    /// `[n, dim]` L2-normalised mean-pooled embeddings.
    pub fn embed(&self, texts: &[&str]) -> anyhow::Result<Tensor> {
        if texts.is_empty() {
            return Ok(Tensor::zeros((0, self.dim), DType::F32, &self.device)?);
        }
        let (ids, mask) = tokenize(&self.tokenizer, texts, &self.device)?;
        // One sentence has no padding: skip the additive attention mask.
        let attn = (texts.len() > 1).then_some(&mask);
        let h = self
            .model
            .encode(&ParamMap::new(), &ids, attn, None, false)?; // [n, len, d]
        Ok(pool_normalize(&h, &mask)?)
    }

    /// One embedding as a host vector.
    pub fn embed_one(&self, text: &str) -> anyhow::Result<Vec<f32>> {
        Ok(self.embed(&[text])?.get(0)?.to_vec1::<f32>()?)
    }
}
