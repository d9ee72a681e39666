//! Text encoder E for inference: all-MiniLM-L6-v2 (BERT, 384-d) with sentence-transformers'
//! mean pooling and L2 normalisation. No gradients flow here, so candle-transformers' fused
//! BertModel is fine (DESIGN.md §10); requirement embeddings are cached by the callers.
//! A generator meta-trained with `train_encoder = true` stores its tuned encoder weights
//! in its checkpoint under [`ENCODER_PREFIX`]; [`TextEncoder::load_with_weights`] serves
//! them. (The trainable copy used while meta-training lives in `hyper-train`.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

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
    let mut tokenizer = Tokenizer::from_file(asset(dir, "tokenizer.json")?)
        .map_err(|e| anyhow!("loading {}: {e}", dir.join("tokenizer.json").display()))?;
    // The shipped tokenizer.json pads and truncates at 128: set both explicitly.
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

/// sentence-transformers' pooling: mean over real tokens of `hidden` `[n, len, d]`, then
/// L2 normalisation → `[n, d]`. Plain ops only, so gradients pass.
pub fn pool_normalize(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let m = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let sum = hidden.broadcast_mul(&m)?.sum(1)?;
    let cnt = m.sum(1)?.clamp(1e-9, f64::MAX)?;
    let mean = sum.broadcast_div(&cnt)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norm)
}

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
        let cfg_path = asset(dir, "config.json")?;
        let cfg: Config = serde_json::from_str(
            &std::fs::read_to_string(&cfg_path)
                .with_context(|| format!("reading {}", cfg_path.display()))?,
        )
        .with_context(|| format!("parsing {}", cfg_path.display()))?;
        let tokenizer = load_tokenizer(dir)?;
        let (vb, source) = match weights {
            Some(w) => (
                VarBuilder::from_tensors(w, DType::F32, device),
                "the checkpoint's tuned encoder".to_string(),
            ),
            None => {
                let path = asset(dir, "model.safetensors")?;
                // SAFETY: the file is memory-mapped read-only and not modified while we run.
                let vb =
                    unsafe { VarBuilder::from_mmaped_safetensors(&[&path], DType::F32, device) }
                        .with_context(|| format!("mapping {}", path.display()))?;
                (vb, path.display().to_string())
            }
        };
        let model =
            BertModel::load(vb, &cfg).with_context(|| format!("loading BERT from {source}"))?;
        Ok(Self {
            model,
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
        let types = ids.zeros_like()?;
        let h = self.model.forward(&ids, &types, Some(&mask))?; // [n, len, d]
        Ok(pool_normalize(&h, &mask)?)
    }

    /// One embedding as a host vector.
    pub fn embed_one(&self, text: &str) -> anyhow::Result<Vec<f32>> {
        Ok(self.embed(&[text])?.get(0)?.to_vec1::<f32>()?)
    }
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minilm_dir() -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::env::var_os("HYPER_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("data"))
            .join("minilm")
    }

    /// Padding must not change an embedding; similar sentences are closer than unrelated.
    #[test]
    fn padding_invariant_and_semantic() {
        let enc = TextEncoder::load(&minilm_dir(), &Device::Cpu).unwrap();
        let a = "Classify iris flowers into three species from four petal and sepal measurements.";
        let b = "Predict the species of an iris flower from its sepal and petal sizes.";
        let c = "Decide whether a bank client subscribes to a term deposit.";
        let solo = enc.embed_one(a).unwrap();
        let batch = enc
            .embed(&[a, "x", c, b])
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (x, y) in solo.iter().zip(&batch[0]) {
            assert!((x - y).abs() < 1e-4);
        }
        let n: f32 = solo.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-4);
        assert!(cosine(&batch[0], &batch[3]) > cosine(&batch[0], &batch[2]) + 0.1);
    }
}
