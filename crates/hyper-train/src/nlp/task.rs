//! A GLUE task as the NLP meta-trainer and the reproduction see it: tokenized once, a
//! seeded training pool (capped) and validation slice carved from GLUE train, GLUE dev
//! whole (the test set, as in the paper), the requirement sentences and the label texts
//! the head is generated from.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use datasets::glue::{self, GlueTask, Label};
use hyper_infer::text::{
    glue_label_texts, text_requirements, text_summary, Encoded, TextTokenizer,
};
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};

/// Tokenized examples with their gold labels.
#[derive(Debug, Clone, Default)]
pub struct TextSet {
    pub examples: Vec<Encoded>,
    pub labels: Vec<Label>,
}

impl TextSet {
    pub fn len(&self) -> usize {
        self.examples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }
    fn subset(&self, idx: &[usize]) -> Self {
        Self {
            examples: idx.iter().map(|&i| self.examples[i].clone()).collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
        }
    }
    /// The majority class (classification) or the mean score (regression) of these
    /// labels, as a constant prediction.
    pub fn constant_prediction(&self) -> Label {
        match self.labels.first() {
            Some(Label::Score(_)) => {
                let s: f64 = self
                    .labels
                    .iter()
                    .filter_map(|l| l.score())
                    .map(f64::from)
                    .sum();
                Label::Score((s / self.len() as f64) as f32)
            }
            _ => {
                let mut counts = vec![0usize; 16];
                for c in self.labels.iter().filter_map(|l| l.class()) {
                    if c >= counts.len() {
                        counts.resize(c + 1, 0);
                    }
                    counts[c] += 1;
                }
                let best = counts
                    .iter()
                    .enumerate()
                    .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
                    .map_or(0, |(i, _)| i);
                Label::Class(best)
            }
        }
    }
}

pub struct TextTask {
    pub task: GlueTask,
    /// The training pool (≤ `train_cap` examples, seeded shuffle of GLUE train).
    pub train: TextSet,
    pub val: TextSet,
    pub dev: TextSet,
    pub requirements: Vec<String>,
    pub label_texts: Vec<String>,
    /// Seconds to read and tokenize train and dev (part of every E2E time).
    pub load_secs: f64,
}

impl TextTask {
    pub fn name(&self) -> &'static str {
        self.task.name()
    }

    /// Loads `task` from `root` (the `glue_data` layout). With `train_cap == 0` no train
    /// split is read (the zero-shot task has none here); its requirements are then
    /// written from dev rows without their labels.
    pub fn load(
        task: GlueTask,
        root: &Path,
        tokenizer: &TextTokenizer,
        train_cap: usize,
        val_per_task: usize,
        n_requirements: usize,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let dev_split =
            glue::load(task, "dev", root).with_context(|| format!("loading {task} dev"))?;
        let dev = TextSet {
            examples: tokenizer.encode_split(&dev_split)?,
            labels: dev_split.labels(),
        };
        let (train, val, requirements) = if train_cap == 0 {
            let reqs = text_requirements(&text_summary(&dev_split, false), n_requirements, seed)?;
            (TextSet::default(), TextSet::default(), reqs)
        } else {
            let split =
                glue::load(task, "train", root).with_context(|| format!("loading {task} train"))?;
            let mut idx: Vec<usize> = (0..split.len()).collect();
            idx.shuffle(&mut StdRng::seed_from_u64(seed ^ task_salt(task)));
            let n_val = val_per_task.min(split.len() / 5);
            let n_train = train_cap.min(split.len() - n_val);
            let used: Vec<usize> = idx[..n_val + n_train].to_vec();
            let sub = glue::GlueSplit {
                task,
                split: split.split.clone(),
                examples: used.iter().map(|&i| split.examples[i].clone()).collect(),
                source: split.source.clone(),
            };
            let all = TextSet {
                examples: tokenizer.encode_split(&sub)?,
                labels: sub.labels(),
            };
            let val_idx: Vec<usize> = (0..n_val).collect();
            let train_idx: Vec<usize> = (n_val..n_val + n_train).collect();
            let reqs = text_requirements(&text_summary(&split, true), n_requirements, seed)?;
            (all.subset(&train_idx), all.subset(&val_idx), reqs)
        };
        Ok(Self {
            task,
            train,
            val,
            dev,
            requirements,
            label_texts: glue_label_texts(task),
            load_secs: t0.elapsed().as_secs_f64(),
        })
    }
}

/// A per-task constant mixed into the shuffle seed, so tasks get unrelated orders.
fn task_salt(task: GlueTask) -> u64 {
    hyper_core::io::fnv1a64(task.name().as_bytes())
}
