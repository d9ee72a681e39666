//! The data-conditioned text generator at serving time: a text task's support set (its
//! training rows through the frozen encoder) → LoRA factors for every query/value module
//! and a head, in one pass, for any label set (`hyper_train::text_any` meta-trains it).
//!
//! [`fit`] is what `generate --data` runs for a text classifier: the fitted head
//! ([`crate::text_head`]) on the frozen encoder and on the encoder with the generated
//! adapter; the validation rows choose between them (ties keep the frozen encoder), so an
//! adapter that does not help a user's task is dropped, and the choice is recorded.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use hyper_core::checkpoint;
use hyper_core::lora_generator::LoraGenerator;
use hyper_core::ParamMap;
use target_models::bert::{BertModel, Pooling};
use target_models::lora::seeded_init_params;

use crate::fitted_head::AdapterChoice;
use crate::text::{Encoded, NlpArchitecture, TEXT_ANY_CHECKPOINT_KIND};
use crate::text_head::{self, FittedHead};

/// `checkpoints/text-any/best`.
pub fn default_checkpoint() -> PathBuf {
    crate::checkpoint_dir("text-any").join("best")
}

/// A loaded data-conditioned generator with the base it adapts (mean pooling).
pub struct TextAnyGenerator {
    pub architecture: NlpArchitecture,
    pub checkpoint: PathBuf,
    pub generator: LoraGenerator,
    pub base: BertModel,
    /// The GLUE training files its meta-training tasks came from (`[config.data] sources`).
    pub sources: Vec<String>,
}

impl TextAnyGenerator {
    /// Loads `stem.{safetensors,toml}` (kind [`TEXT_ANY_CHECKPOINT_KIND`]) and MiniLM from
    /// `minilm_dir`.
    pub fn load(stem: &Path, minilm_dir: &Path, dev: &Device) -> Result<Self> {
        let l = checkpoint::load(stem, TEXT_ANY_CHECKPOINT_KIND, dev)?;
        let architecture: NlpArchitecture =
            crate::architecture::architecture_from_header(&l.header, stem)?;
        let base = BertModel::load(minilm_dir, architecture.lora.lora_config(), dev)?
            .with_fused_inference(true)
            .with_pooling(Pooling::Mean);
        let generator =
            LoraGenerator::new(architecture.generator.clone(), base.lora_target(), 0, dev)?;
        generator
            .load_state(&l.tensors)
            .with_context(|| format!("loading {}", stem.display()))?;
        let sources = l
            .header
            .config
            .get("data")
            .and_then(|d| d.get("sources"))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            architecture,
            sources,
            checkpoint: stem.to_path_buf(),
            generator,
            base,
        })
    }

    /// The base's parameters with every LoRA factor at zero (the frozen encoder) and a
    /// head slot for `classes`.
    pub fn frozen_params(&self, classes: usize) -> Result<ParamMap> {
        Ok(seeded_init_params(
            &self.base.param_spec_for(classes),
            0,
            &Device::Cpu,
        )?)
    }

    /// LoRA factors and a generated head from the support rows' frozen features `frozen`
    /// (as [`text_head::features`] gives them under [`Self::frozen_params`]) and labels.
    pub fn generate(&self, frozen: &[Vec<f32>], y: &[usize], classes: usize) -> Result<ParamMap> {
        let f = text_head::normalised(frozen);
        let h = f.first().map_or(0, Vec::len);
        let dev = Device::Cpu;
        let emb = Tensor::from_vec(text_head::support_embedding(&f, y, classes), h, &dev)?;
        let means: Vec<f32> = text_head::class_means(&f, y, classes)
            .into_iter()
            .flatten()
            .collect();
        let means = Tensor::from_vec(means, (classes, h), &dev)?;
        Ok(self.generator.generate(&emb, &means, false)?.detached())
    }
}

/// The generated adapter for a support set whose frozen features are `fx`, and the fitted
/// head over the features it gives (support and validation rows re-encoded).
pub fn adapt(
    gen: &TextAnyGenerator,
    fx: &[Vec<f32>],
    support: &[Encoded],
    sy: &[usize],
    classes: usize,
    train_labels: &[usize],
    val: (&[Encoded], &[usize]),
) -> Result<(ParamMap, FittedHead)> {
    let adapted = gen.generate(fx, sy, classes)?;
    let ax = text_head::features(&gen.base, &adapted, support)?;
    let av = text_head::features(&gen.base, &adapted, val.0)?;
    let head = text_head::fit(&ax, sy, classes, train_labels, Some((&av, val.1)))?;
    Ok((adapted, head))
}

/// The fitted head on the frozen encoder and on the generated adapter, the better on the
/// validation rows kept. `support`/`sy` are the support sample (at most
/// [`text_head::SUPPORT_ROWS`]), `train_labels` the whole training split's labels, `val`
/// the validation rows.
pub fn fit(
    gen: &TextAnyGenerator,
    support: &[Encoded],
    sy: &[usize],
    classes: usize,
    train_labels: &[usize],
    val: (&[Encoded], &[usize]),
) -> Result<AdapterChoice> {
    let frozen = gen.frozen_params(classes)?;
    let fx = text_head::features(&gen.base, &frozen, support)?;
    let fv = text_head::features(&gen.base, &frozen, val.0)?;
    let frozen_head = text_head::fit(&fx, sy, classes, train_labels, Some((&fv, val.1)))?;
    let adapted = adapt(gen, &fx, support, sy, classes, train_labels, val)?;
    AdapterChoice::of((frozen, frozen_head), adapted, text_head::CLASSIFIER)
}
