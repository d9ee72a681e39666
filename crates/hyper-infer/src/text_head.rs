//! The fitted text head: [`crate::fitted_head`] on the mean of MiniLM's token hidden
//! states, written into the target's `classifier`, and the support-set embedding the
//! data-conditioned text generator reads.
//!
//! `generate --data` calls it on the features of its adapted encoder; `reproduce
//! text-unseen` on precomputed features, so both score the same head.

use anyhow::Result;
use candle_core::Device;
use hyper_core::ParamMap;
use target_models::bert::BertModel;

pub use crate::fitted_head::{
    class_means, fit, normalised, support_sample, FittedHead, SUPPORT_ROWS,
};
use crate::text::{pad_batch, Encoded};

/// What the text head reads, as `model.json` states it.
pub const FEATURES: &str = "the mean of the tokens' hidden states";

/// The linear layer of a MiniLM classifier the head is written into.
pub const CLASSIFIER: &str = "classifier";

/// Writes `head` into a MiniLM's [`CLASSIFIER`].
pub fn insert(head: &FittedHead, params: &mut ParamMap) -> Result<()> {
    head.insert_as(params, CLASSIFIER)
}

/// The tokens a fitted head's encoder reads: all-MiniLM-L6-v2's sentence length
/// ([`target_models::text_encoder::MAX_TOKENS`]), so long texts keep what a sentence
/// embedding of them keeps. Rows are padded to their batch's longest, so short texts cost
/// no more.
pub const MAX_TOKENS: usize = target_models::text_encoder::MAX_TOKENS;

/// The task embedding the data-conditioned text generator reads: where the support set
/// sits (the mean of its class means) plus which directions tell its classes apart (the
/// spread of the class means per feature), each at unit length, summed and normalised.
/// A function of class means only, so invariant to row order and class order.
pub fn support_embedding(f: &[Vec<f32>], y: &[usize], classes: usize) -> Vec<f32> {
    let means = class_means(f, y, classes);
    let h = means.first().map_or(0, Vec::len);
    let k = means.len().max(1) as f32;
    let centre: Vec<f32> = (0..h)
        .map(|j| means.iter().map(|m| m[j]).sum::<f32>() / k)
        .collect();
    let spread: Vec<f32> = (0..h)
        .map(|j| {
            (means
                .iter()
                .map(|m| (m[j] - centre[j]).powi(2))
                .sum::<f32>()
                / k)
                .sqrt()
        })
        .collect();
    let unit = |v: &[f32]| normalised(&[v.to_vec()]).remove(0);
    let sum: Vec<f32> = unit(&centre)
        .iter()
        .zip(unit(&spread))
        .map(|(a, b)| a + b)
        .collect();
    unit(&sum)
}

/// The pooled features `base` gives `examples` under `params` (its pooling: the fitted
/// head reads [`target_models::bert::Pooling::Mean`]), in input order, 64 rows a batch.
pub fn features(
    base: &BertModel,
    params: &ParamMap,
    examples: &[Encoded],
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(64) {
        let items: Vec<&Encoded> = chunk.iter().collect();
        let b = pad_batch(&items, &Device::Cpu)?;
        out.extend(
            base.pooled(params, &b.ids, Some(&b.mask), Some(&b.types))?
                .to_vec2::<f32>()?,
        );
    }
    Ok(out)
}
