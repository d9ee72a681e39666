//! Meta-training the data-conditioned text generator (`cargo xtask pretrain text-any`):
//! the LoRA generator of the NLP experiment ([`LoraMetaTrainer`], Algorithm 1), conditioned
//! on a task's support set instead of a sentence about it. The task embedding is
//! [`text_head::support_embedding`] of a support sample's frozen-encoder features, and the
//! head's per-class inputs are the class means of those features, so the generator is
//! invariant to row order and equivariant to class order by construction and serves any
//! number of classes.
//!
//! Meta-training tasks are derived from the GLUE training files named in `data.sources`
//! (and only those, so every other text set stays clean for evaluation): each file's own
//! labels (STS-B's score split at 2.5), k-means groups of its sentence embeddings for every
//! k in `data.cluster_ks`, and surface properties (longer than the median, a negation, a
//! question) where the minority class holds at least 15% of the rows.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use datasets::glue::{self, GlueTask, Label};
use hyper_core::lora_generator::LoraGeneratorConfig;
use hyper_core::ParamMap;
use hyper_infer::text::{
    self, pad_batch, Encoded, NlpArchitecture, TextTokenizer, TEXT_ANY_CHECKPOINT_KIND,
};
use hyper_infer::text_head;
use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use target_models::bert::{BertModel, Pooling};
use target_models::lora::seeded_init_params;

use crate::lora_meta::{LoraMetaTrainer, LoraTasks, TrainerConfig};
use crate::nlp::config::NlpTrainConfig;
use crate::nlp::TextSet;

/// Where the derived tasks come from and how each is conditioned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextAnyData {
    /// GLUE training files the tasks are derived from (names as `--glue` takes them).
    pub sources: Vec<String>,
    /// Rows drawn (seeded) from each file.
    pub rows_per_source: usize,
    /// k of the k-means pseudo-label tasks made from each file's sentence embeddings.
    pub cluster_ks: Vec<usize>,
    /// Add the surface-property tasks (length, negation, question).
    pub properties: bool,
    /// Support samples per task, each giving one conditioning the trainer picks from.
    pub conditionings: usize,
    /// Largest support sample; samples range from 16 rows up to it.
    pub support_rows: usize,
    /// Rows of each task held out for validation.
    pub val_rows: usize,
}

impl Default for TextAnyData {
    fn default() -> Self {
        Self {
            sources: ["sst2", "cola", "mrpc", "stsb", "rte", "wnli"]
                .map(String::from)
                .to_vec(),
            rows_per_source: 1500,
            cluster_ks: vec![2, 3, 4, 6, 8, 12, 16, 24, 32, 50],
            properties: true,
            conditionings: 8,
            support_rows: 256,
            val_rows: 24,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextAnyConfig {
    pub data: TextAnyData,
    pub architecture: NlpArchitecture,
    pub train: NlpTrainConfig,
}

impl Default for TextAnyConfig {
    fn default() -> Self {
        Self {
            data: TextAnyData::default(),
            architecture: NlpArchitecture {
                generator: LoraGeneratorConfig {
                    center_labels: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            train: NlpTrainConfig::default(),
        }
    }
}

impl TextAnyConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn sources(&self) -> Result<Vec<GlueTask>> {
        self.data
            .sources
            .iter()
            .map(|s| GlueTask::from_name(s).with_context(|| format!("data.sources: `{s}`")))
            .collect()
    }
}

impl TrainerConfig for TextAnyConfig {
    fn train(&self) -> &NlpTrainConfig {
        &self.train
    }
    fn generator(&self) -> &LoraGeneratorConfig {
        &self.architecture.generator
    }
    fn to_table(&self) -> Result<toml::Table> {
        Ok(toml::Table::try_from(self)?)
    }
}

/// One derived classification task.
pub struct DerivedTask {
    pub name: String,
    pub classes: usize,
    pub train: TextSet,
    pub val: TextSet,
}

/// The frozen base (mean pooling, the fitted head's features) and the derived tasks.
pub struct TextAnyTasks {
    pub model: BertModel,
    pub tasks: Vec<DerivedTask>,
}

impl LoraTasks for TextAnyTasks {
    fn len(&self) -> usize {
        self.tasks.len()
    }
    fn name(&self, ti: usize) -> String {
        self.tasks[ti].name.clone()
    }
    fn train_len(&self, ti: usize) -> usize {
        self.tasks[ti].train.len()
    }
    fn loss(&self, ti: usize, theta: &ParamMap, rows: &[usize], train: bool) -> Result<Tensor> {
        let t = &self.tasks[ti].train;
        let items: Vec<&Encoded> = rows.iter().map(|&i| &t.examples[i]).collect();
        let labels: Vec<Label> = rows.iter().map(|&i| t.labels[i]).collect();
        let batch = pad_batch(&items, &Device::Cpu)?;
        text::loss(&text::logits(&self.model, theta, &batch, train)?, &labels)
    }
    fn validate(&self, ti: usize, theta: &ParamMap) -> Result<(f64, f64)> {
        let v = &self.tasks[ti].val;
        let p = text::predict(&self.model, theta, &v.examples, false, Some(&v.labels), 32)?;
        let ok = p
            .labels
            .iter()
            .zip(&v.labels)
            .filter(|(a, b)| a == b)
            .count();
        Ok((
            p.loss.unwrap_or(f64::NAN),
            ok as f64 / v.len().max(1) as f64,
        ))
    }
}

/// A source file's rows: tokenized, their frozen features, and what properties read.
struct Source {
    name: String,
    examples: Vec<Encoded>,
    labels: Vec<Label>,
    texts: Vec<String>,
    features: Vec<Vec<f32>>,
}

fn load_source(
    task: GlueTask,
    cfg: &TextAnyData,
    tok: &TextTokenizer,
    base: &BertModel,
    zero: &ParamMap,
) -> Result<Source> {
    let mut split = glue::load(task, "train", &GlueTask::default_root())
        .with_context(|| format!("loading {task} train"))?;
    let mut order: Vec<usize> = (0..split.examples.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(hyper_core::io::fnv1a64(
        task.name().as_bytes(),
    )));
    order.truncate(cfg.rows_per_source);
    split.examples = order.iter().map(|&i| split.examples[i].clone()).collect();
    let examples = tok.encode_split(&split)?;
    let features = text_head::features(base, zero, &examples)?;
    Ok(Source {
        name: task.name().into(),
        labels: split.labels(),
        texts: split.examples.iter().map(|e| e.joined_text()).collect(),
        examples,
        features: text_head::normalised(&features),
    })
}

/// K-means groups of `f` (linfa, seeded): one label per row.
fn clusters(f: &[Vec<f32>], k: usize) -> Result<Vec<usize>> {
    let x = Array2::from_shape_vec(
        (f.len(), f[0].len()),
        f.iter().flatten().map(|&v| v as f64).collect(),
    )?;
    let ds = DatasetBase::from(x);
    let model = KMeans::params(k)
        .max_n_iterations(50)
        .fit(&ds)
        .map_err(|e| anyhow::anyhow!("k-means (k = {k}): {e}"))?;
    Ok(model.predict(ds.records()).to_vec())
}

/// A surface property of a row (by index), with its name.
type Property<'a> = (&'static str, Box<dyn Fn(usize) -> bool + 'a>);

/// Every labelling of `s` the config asks for, as (name, labels, classes).
fn labellings(s: &Source, cfg: &TextAnyData) -> Result<Vec<(String, Vec<usize>, usize)>> {
    let mut out = Vec::new();
    let own: Vec<usize> = s
        .labels
        .iter()
        .map(|l| match l {
            Label::Class(c) => *c,
            Label::Score(v) => usize::from(*v >= 2.5),
        })
        .collect();
    let classes = own.iter().max().map_or(1, |m| m + 1);
    out.push((format!("{}:labels", s.name), own, classes));
    for &k in &cfg.cluster_ks {
        if k < s.features.len() / 8 {
            out.push((
                format!("{}:kmeans{k}", s.name),
                clusters(&s.features, k)?,
                k,
            ));
        }
    }
    if cfg.properties {
        let mut lens: Vec<usize> = s.examples.iter().map(|e| e.ids.len()).collect();
        lens.sort_unstable();
        let median = lens[lens.len() / 2];
        let props: [Property; 3] = [
            ("long", Box::new(|i| s.examples[i].ids.len() > median)),
            (
                "negation",
                Box::new(|i| {
                    let t = s.texts[i].to_lowercase();
                    t.contains("n't") || t.split_whitespace().any(|w| w == "not" || w == "no")
                }),
            ),
            ("question", Box::new(|i| s.texts[i].contains('?'))),
        ];
        for (name, p) in props {
            let y: Vec<usize> = (0..s.texts.len()).map(|i| usize::from(p(i))).collect();
            let share = y.iter().sum::<usize>() as f64 / y.len() as f64;
            if (0.15..=0.85).contains(&share) {
                out.push((format!("{}:{name}", s.name), y, 2));
            }
        }
    }
    Ok(out)
}

/// Support samples of a task's training rows: sizes from 16 doubling up to `max`, rows
/// round-robin over classes of a seeded shuffle.
fn support_samples(y: &[usize], classes: usize, cfg: &TextAnyData, seed: u64) -> Vec<Vec<usize>> {
    let mut sizes = vec![16usize];
    while *sizes.last().unwrap() * 2 <= cfg.support_rows {
        sizes.push(sizes.last().unwrap() * 2);
    }
    (0..cfg.conditionings)
        .map(|m| {
            let mut order: Vec<usize> = (0..y.len()).collect();
            order.shuffle(&mut StdRng::seed_from_u64(seed ^ ((m as u64 + 1) << 16)));
            let oy: Vec<usize> = order.iter().map(|&i| y[i]).collect();
            text_head::support_sample(&oy, classes, sizes[m % sizes.len()])
                .into_iter()
                .map(|i| order[i])
                .collect()
        })
        .collect()
}

/// The derived tasks with their conditionings: per task, support embeddings (one per
/// support sample) and the class means of its training rows.
pub type Conditioned = (Vec<DerivedTask>, Vec<Vec<Tensor>>, Vec<Tensor>);

/// Builds every derived task of `cfg` from the frozen `base` (LoRA slots at zero).
pub fn derived_tasks(
    cfg: &TextAnyConfig,
    tok: &TextTokenizer,
    base: &BertModel,
    progress: &dyn Fn(&str),
) -> Result<Conditioned> {
    let dev = Device::Cpu;
    let zero = seeded_init_params(&base.param_spec_for(2), 0, &dev)?;
    let (mut tasks, mut embs, mut means) = (Vec::new(), Vec::new(), Vec::new());
    for source in cfg.sources()? {
        progress(&format!(
            "{source}: encoding {} rows",
            cfg.data.rows_per_source
        ));
        let s = load_source(source, &cfg.data, tok, base, &zero)?;
        for (name, y, classes) in labellings(&s, &cfg.data)? {
            let n_val = cfg.data.val_rows.min(y.len() / 5);
            let set = |ix: std::ops::Range<usize>| TextSet {
                examples: s.examples[ix.clone()].to_vec(),
                labels: y[ix].iter().map(|&c| Label::Class(c)).collect(),
            };
            let (val, train) = (set(0..n_val), set(n_val..y.len()));
            let ty = &y[n_val..];
            let tf = &s.features[n_val..];
            let seed = hyper_core::io::fnv1a64(name.as_bytes());
            let mut e = Vec::new();
            for sample in support_samples(ty, classes, &cfg.data, seed) {
                let f: Vec<Vec<f32>> = sample.iter().map(|&i| tf[i].clone()).collect();
                let l: Vec<usize> = sample.iter().map(|&i| ty[i]).collect();
                let emb = text_head::support_embedding(&f, &l, classes);
                e.push(Tensor::from_vec(emb, f[0].len(), &dev)?);
            }
            let cm = text_head::class_means(tf, ty, classes);
            let h = cm[0].len();
            means.push(Tensor::from_vec(
                cm.into_iter().flatten().collect(),
                (classes, h),
                &dev,
            )?);
            embs.push(e);
            tasks.push(DerivedTask {
                name,
                classes,
                train,
                val,
            });
        }
    }
    Ok((tasks, embs, means))
}

pub type TextAnyTrainer = LoraMetaTrainer<TextAnyConfig, TextAnyTasks>;

/// A fresh trainer for `cfg` on MiniLM (`minilm_dir`).
pub fn trainer(
    cfg: TextAnyConfig,
    minilm_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<TextAnyTrainer> {
    let dev = Device::Cpu;
    let tok = TextTokenizer::load(minilm_dir, cfg.architecture.max_len)?;
    let base = BertModel::load(minilm_dir, cfg.architecture.lora.lora_config(), &dev)?
        .with_fused_inference(true)
        .with_pooling(Pooling::Mean);
    let (tasks, embs, means) = derived_tasks(&cfg, &tok, &base, progress)?;
    let target = base.lora_target();
    let model = base.with_fused_training(cfg.train.fused_ops);
    LoraMetaTrainer::new(
        cfg,
        TextAnyTasks { model, tasks },
        target,
        TEXT_ANY_CHECKPOINT_KIND,
        embs,
        means,
        &dev,
    )
}
