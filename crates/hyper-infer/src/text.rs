//! The text half of the user path: GLUE-style text (single sentences or pairs) →
//! tokens → a BERT-family target (all-MiniLM-L6-v2 here) with LoRA on query/value and a
//! classification or regression head, whose LoRA factors and head come from one forward
//! pass of the [`LoraGenerator`].
//!
//! Shared by the meta-trainer (`hyper-train::nlp`), the reproduction and the CLI, so all
//! three tokenize, batch, score and generate the same way.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, ensure, Context};
use candle_core::{Device, Tensor, Var, D};
use datasets::glue::{GlueSplit, GlueTask, Label};
use datasets::metrics::Metric;
use hyper_core::checkpoint;
use hyper_core::layers::cross_entropy;
use hyper_core::lora_generator::{LoraGenerator, LoraGeneratorConfig};
use hyper_core::ParamMap;
use llm_prompting::TextSummary;
use serde::{Deserialize, Serialize};
use target_models::bert::BertModel;
use target_models::lora::{LoraConfig, TargetModules};
use target_models::text_encoder::{load_tokenizer, TextEncoder};
use tokenizers::{EncodeInput, Tokenizer, TruncationParams, TruncationStrategy};

/// `kind` of an NLP generator checkpoint header.
pub const NLP_CHECKPOINT_KIND: &str = "nlp-lora-generator";

/// Checkpoint kind of the data-conditioned text generator (`pretrain text-any`).
pub const TEXT_ANY_CHECKPOINT_KIND: &str = "text-any-lora-generator";

/// The Hugging Face id of the base model the adapters are for (what `model.json` and
/// PEFT's `base_model_name_or_path` name).
pub const BASE_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The adapter PEFT would train: rank, alpha, dropout and the adapted modules (BERT
/// naming: `query`/`value` are DistilBERT's `q_lin`/`v_lin`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NlpLoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f32,
    pub target_modules: Vec<String>,
}

impl Default for NlpLoraConfig {
    fn default() -> Self {
        Self {
            r: 8,
            alpha: 16.0,
            dropout: 0.05,
            target_modules: vec!["query".into(), "value".into()],
        }
    }
}

impl NlpLoraConfig {
    pub fn lora_config(&self) -> LoraConfig {
        LoraConfig {
            r: self.r,
            lora_alpha: self.alpha,
            lora_dropout: self.dropout,
            target_modules: TargetModules::list(&self.target_modules),
        }
    }
}

/// What an NLP checkpoint needs to be served: the adapter's shape, the generator's and
/// the tokenization (stored in the checkpoint header as `[config.architecture]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NlpArchitecture {
    pub lora: NlpLoraConfig,
    pub generator: LoraGeneratorConfig,
    /// Tokens per example after truncation (pairs: longest-first).
    pub max_len: usize,
}

impl Default for NlpArchitecture {
    fn default() -> Self {
        Self {
            lora: NlpLoraConfig::default(),
            generator: LoraGeneratorConfig::default(),
            max_len: 128,
        }
    }
}

/// One tokenized example: ids with `[CLS] … [SEP] (… [SEP])`, and BERT's segment ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub types: Vec<u32>,
}

/// A padded batch `[b, longest]` (u32): ids, attention mask, segment ids.
pub struct TextBatch {
    pub ids: Tensor,
    pub mask: Tensor,
    pub types: Tensor,
}

/// MiniLM's WordPiece tokenizer, truncating each example to `max_len` tokens.
pub struct TextTokenizer {
    tok: Tokenizer,
    pub max_len: usize,
}

impl TextTokenizer {
    pub fn load(dir: &Path, max_len: usize) -> anyhow::Result<Self> {
        let mut tok = load_tokenizer(dir)?;
        tok.with_padding(None);
        tok.with_truncation(Some(TruncationParams {
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            ..Default::default()
        }))
        .map_err(|e| anyhow!("setting tokenizer truncation: {e}"))?;
        Ok(Self { tok, max_len })
    }

    /// Tokenizes `a` (and the second sentences `b`, for pairs), one [`Encoded`] each.
    pub fn encode(&self, a: &[&str], b: Option<&[&str]>) -> anyhow::Result<Vec<Encoded>> {
        let inputs: Vec<EncodeInput> = match b {
            None => a.iter().map(|s| EncodeInput::Single((*s).into())).collect(),
            Some(b) => {
                ensure!(
                    a.len() == b.len(),
                    "{} first sentences but {} second sentences",
                    a.len(),
                    b.len()
                );
                a.iter()
                    .zip(b)
                    .map(|(x, y)| EncodeInput::Dual((*x).into(), (*y).into()))
                    .collect()
            }
        };
        let enc = self
            .tok
            .encode_batch(inputs, true)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        Ok(enc
            .iter()
            .map(|e| Encoded {
                ids: e.get_ids().to_vec(),
                types: e.get_type_ids().to_vec(),
            })
            .collect())
    }

    /// Tokenizes a GLUE split's examples.
    pub fn encode_split(&self, split: &GlueSplit) -> anyhow::Result<Vec<Encoded>> {
        let a: Vec<&str> = split.examples.iter().map(|e| e.text_a.as_str()).collect();
        let b: Option<Vec<&str>> = split.task.is_pair().then(|| {
            split
                .examples
                .iter()
                .map(|e| e.text_b.as_deref().unwrap_or(""))
                .collect()
        });
        self.encode(&a, b.as_deref())
            .with_context(|| format!("{}", split.source.display()))
    }
}

/// Pads `items` to the longest with id 0 (BERT's `[PAD]`).
pub fn pad_batch(items: &[&Encoded], dev: &Device) -> anyhow::Result<TextBatch> {
    ensure!(!items.is_empty(), "empty batch");
    let n = items.len();
    let len = items.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    let (mut ids, mut mask, mut types) = (
        vec![0u32; n * len],
        vec![0u32; n * len],
        vec![0u32; n * len],
    );
    for (i, e) in items.iter().enumerate() {
        let o = i * len;
        ids[o..o + e.ids.len()].copy_from_slice(&e.ids);
        types[o..o + e.types.len()].copy_from_slice(&e.types);
        mask[o..o + e.ids.len()].fill(1);
    }
    Ok(TextBatch {
        ids: Tensor::from_vec(ids, (n, len), dev)?,
        mask: Tensor::from_vec(mask, (n, len), dev)?,
        types: Tensor::from_vec(types, (n, len), dev)?,
    })
}

/// Head logits `[b, C]` (regression: `[b, 1]`).
pub fn logits(
    model: &BertModel,
    params: &ParamMap,
    batch: &TextBatch,
    train: bool,
) -> candle_core::Result<Tensor> {
    model.classify(
        params,
        &batch.ids,
        Some(&batch.mask),
        Some(&batch.types),
        train,
    )
}

/// Cross-entropy on class labels, MSE on scores (Hugging Face's `num_labels = 1` rule).
pub fn loss(logits: &Tensor, labels: &[Label]) -> anyhow::Result<Tensor> {
    let dev = logits.device();
    match labels.first() {
        Some(Label::Score(_)) => {
            let y: Vec<f32> = labels
                .iter()
                .map(|l| l.score().ok_or_else(|| anyhow!("mixed labels in a batch")))
                .collect::<anyhow::Result<_>>()?;
            let y = Tensor::from_vec(y, labels.len(), dev)?;
            Ok((logits.squeeze(D::Minus1)? - y)?.sqr()?.mean_all()?)
        }
        Some(Label::Class(_)) => {
            let y: Vec<u32> = labels
                .iter()
                .map(|l| {
                    l.class()
                        .map(|c| c as u32)
                        .ok_or_else(|| anyhow!("mixed labels in a batch"))
                })
                .collect::<anyhow::Result<_>>()?;
            Ok(cross_entropy(
                logits,
                &Tensor::from_vec(y, labels.len(), dev)?,
            )?)
        }
        None => bail!("empty batch"),
    }
}

/// What [`predict`] returns: a prediction per example (input order), class
/// probabilities for classification (empty rows for regression), and the mean loss when
/// gold labels were given.
pub struct Predictions {
    pub labels: Vec<Label>,
    pub probs: Vec<Vec<f32>>,
    pub loss: Option<f64>,
}

/// Predictions for every example (eval mode), batched by length so padding stays small;
/// with `gold`, also the mean loss over the examples.
pub fn predict(
    model: &BertModel,
    params: &ParamMap,
    examples: &[Encoded],
    regression: bool,
    gold: Option<&[Label]>,
    batch_size: usize,
) -> anyhow::Result<Predictions> {
    let dev = model_device(params)?;
    if let Some(g) = gold {
        ensure!(
            g.len() == examples.len(),
            "{} gold labels for {} examples",
            g.len(),
            examples.len()
        );
    }
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].ids.len());
    let mut labels = vec![Label::Class(0); examples.len()];
    let mut probs = vec![Vec::new(); examples.len()];
    let mut loss_sum = 0.0;
    for chunk in order.chunks(batch_size.max(1)) {
        let items: Vec<&Encoded> = chunk.iter().map(|&i| &examples[i]).collect();
        let b = pad_batch(&items, &dev)?;
        let out = logits(model, params, &b, false)?;
        if let Some(g) = gold {
            let gl: Vec<Label> = chunk.iter().map(|&i| g[i]).collect();
            loss_sum += loss(&out, &gl)?.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        }
        if regression {
            let v: Vec<f32> = out.squeeze(D::Minus1)?.to_vec1()?;
            for (&i, s) in chunk.iter().zip(v) {
                labels[i] = Label::Score(s);
            }
        } else {
            let p: Vec<Vec<f32>> = candle_nn::ops::softmax_last_dim(&out)?.to_vec2()?;
            for (&i, row) in chunk.iter().zip(p) {
                let c = hyper_core::layers::argmax(&row).0;
                labels[i] = Label::Class(c);
                probs[i] = row;
            }
        }
    }
    Ok(Predictions {
        labels,
        probs,
        loss: gold.map(|_| loss_sum / examples.len().max(1) as f64),
    })
}

fn model_device(params: &ParamMap) -> anyhow::Result<Device> {
    params
        .iter()
        .next()
        .map(|(_, t)| t.device().clone())
        .ok_or_else(|| anyhow!("no parameters"))
}

/// GLUE's headline number for a task: the mean of its metrics (MRPC: F1 and accuracy;
/// STS-B: Pearson and Spearman), as the GLUE leaderboard averages them.
pub fn glue_score(metrics: &[(Metric, f64)]) -> f64 {
    metrics.iter().map(|(_, v)| v).sum::<f64>() / metrics.len().max(1) as f64
}

/// Summary the `profile` backend writes a text requirement from. Class counts only when
/// `with_counts` (a zero-shot task's requirement is written from unlabelled rows).
pub fn text_summary(split: &GlueSplit, with_counts: bool) -> TextSummary {
    let task = split.task;
    let words: Vec<String> = split.examples.iter().map(|e| e.joined_text()).collect();
    let (avg_words, max_words) = TextSummary::word_stats(words.iter().map(String::as_str));
    TextSummary {
        name: task.name().to_string(),
        n_examples: split.len(),
        pair: task.is_pair(),
        avg_words,
        max_words,
        label_names: if task.is_regression() {
            Vec::new()
        } else {
            task.label_meanings()
                .iter()
                .map(|s| s.to_string())
                .collect()
        },
        class_counts: if with_counts {
            split.class_counts()
        } else {
            Vec::new()
        },
    }
}

/// `n` distinct requirement sentences for a text set, from the deterministic `profile`
/// backend.
pub fn text_requirements(
    summary: &TextSummary,
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<String>> {
    let profile = llm_prompting::DataProfile::from_text(summary)
        .with_context(|| format!("profiling text set `{}`", summary.name))?;
    crate::requirement::profile_requirements(&profile, n, seed)
}

/// The strings a GLUE task's head rows are generated from.
pub fn glue_label_texts(task: GlueTask) -> Vec<String> {
    task.label_meanings()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A loaded NLP generator: text encoder E, the LoRA generator and the frozen base model
/// the adapters are for.
pub struct TextGenerator {
    pub architecture: NlpArchitecture,
    pub checkpoint: PathBuf,
    pub generator: LoraGenerator,
    pub encoder: TextEncoder,
    pub base: BertModel,
    pub tokenizer: TextTokenizer,
    pub load_secs: f64,
}

/// One generated adapter and head, with the time each stage took.
pub struct GeneratedAdapter {
    pub params: ParamMap,
    pub encode_secs: f64,
    pub generate_secs: f64,
}

impl TextGenerator {
    /// Loads `stem.{safetensors,toml}` (kind [`NLP_CHECKPOINT_KIND`]) and MiniLM from
    /// `minilm_dir` (base model, tokenizer and text encoder).
    pub fn load(stem: &Path, minilm_dir: &Path, dev: &Device) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let l = checkpoint::load(stem, NLP_CHECKPOINT_KIND, dev)?;
        let architecture: NlpArchitecture =
            crate::architecture::architecture_from_header(&l.header, stem)?;
        let base = BertModel::load(minilm_dir, architecture.lora.lora_config(), dev)?
            .with_fused_inference(true);
        let generator =
            LoraGenerator::new(architecture.generator.clone(), base.lora_target(), 0, dev)?;
        generator
            .load_state(&l.tensors)
            .with_context(|| format!("loading {}", stem.display()))?;
        let encoder = TextEncoder::load(minilm_dir, dev)?;
        let tokenizer = TextTokenizer::load(minilm_dir, architecture.max_len)?;
        Ok(Self {
            architecture,
            checkpoint: stem.to_path_buf(),
            generator,
            encoder,
            base,
            tokenizer,
            load_secs: t0.elapsed().as_secs_f64(),
        })
    }

    /// The adapter and head for `requirement`, one head row per entry of `label_texts`.
    pub fn generate(
        &self,
        requirement: &str,
        label_texts: &[String],
    ) -> anyhow::Result<GeneratedAdapter> {
        GeneratedAdapter::from_generator(&self.encoder, &self.generator, requirement, label_texts)
    }
}

impl GeneratedAdapter {
    /// Encodes `requirement` and `label_texts` with `encoder`, then one pass of `generator`
    /// (eval mode, detached): the generator's own layout, timed per stage.
    pub fn from_generator(
        encoder: &TextEncoder,
        generator: &LoraGenerator,
        requirement: &str,
        label_texts: &[String],
    ) -> anyhow::Result<Self> {
        ensure!(!label_texts.is_empty(), "no labels to build a head for");
        let t0 = Instant::now();
        let emb = encoder.embed(&[requirement])?.get(0)?;
        let refs: Vec<&str> = label_texts.iter().map(String::as_str).collect();
        let labels = encoder.embed(&refs)?;
        let encode_secs = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let params = generator.generate(&emb, &labels, false)?.detached();
        Ok(Self {
            params,
            encode_secs,
            generate_secs: t1.elapsed().as_secs_f64(),
        })
    }
}

pub use crate::finetune::TrainOptions;

/// `o.epochs` passes over (`examples`, `labels`) through [`crate::finetune::train_batches`];
/// returns the mean training loss of each epoch. ModelGPT-F (`generate --finetune-epochs`)
/// and the reproduction's baselines both train with this.
pub fn train_epochs(
    model: &BertModel,
    params: &ParamMap,
    vars: Vec<(String, Var)>,
    examples: &[Encoded],
    labels: &[Label],
    o: &TrainOptions,
    what: &str,
) -> anyhow::Result<Vec<f64>> {
    ensure!(
        examples.len() == labels.len(),
        "{what}: {} examples but {} labels",
        examples.len(),
        labels.len()
    );
    let dev = model_device(params)?;
    crate::finetune::train_batches(examples.len(), vars, o, what, |chunk| {
        let items: Vec<&Encoded> = chunk.iter().map(|&i| &examples[i]).collect();
        let batch_labels: Vec<Label> = chunk.iter().map(|&i| labels[i]).collect();
        let b = pad_batch(&items, &dev)?;
        loss(&logits(model, params, &b, true)?, &batch_labels)
    })
}

/// Named trainable variables, in the order an optimizer gets them.
pub type NamedVars = Vec<(String, Var)>;
