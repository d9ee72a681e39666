//! Algorithm 1 (DESIGN.md §4) for a LoRA target, text or images: each step picks a task
//! (balanced rounds: every task once per round, in a seeded shuffled order), one of its
//! requirements and a batch; θ = P(r) (LoRA factors + head); one Adam(amsgrad) step of the
//! target on a detached copy gives θ'; δ = θ − θ' is backpropagated into P through the
//! surrogate `Σ_k sum(θ_k ⊙ δ_k)`; P's grad norm is clipped; P steps.
//! `meta_grad = "direct"` (the ablation) backpropagates the target loss through θ.
//!
//! What differs between modalities (the target, how a batch is read and scored) is a
//! [`LoraTasks`]; the schedule, checkpoints and resume are here once.
//!
//! Every `checkpoint_every` steps the generator is validated on held-out training rows,
//! `last` is written (with the optimizer) and `best` when validation loss improved. The
//! target optimizer's state and the dropout RNG restart there, and each step's task,
//! requirement and batch are a function of (seed, step), so a resumed run repeats an
//! uninterrupted one exactly.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use candle_core::{Device, Tensor};
use hyper_core::lora_generator::{LoraGenerator, LoraGeneratorConfig, LoraTarget};
use hyper_core::optim::{clip_scale, global_norm, Adam, AdamConfig, Moments};
use hyper_core::{checkpoint, ParamMap};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use target_models::TextEncoder;

use crate::algorithm1;
use crate::nlp::config::NlpTrainConfig;

/// One validation point of the run (the checkpoint README's curve).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoraLog {
    pub step: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    /// Mean over tasks of the task metric on the validation rows (GLUE score, accuracy).
    pub val_score: f64,
    pub secs: f64,
}

/// The meta-training tasks of one modality, with the target they train.
pub trait LoraTasks {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn name(&self, ti: usize) -> String;
    /// Training rows of task `ti` (batches are drawn from these).
    fn train_len(&self, ti: usize) -> usize;
    /// Target loss on training rows `rows` of task `ti` with the generator's output
    /// `theta` (dropout on when `train`); keeps `theta`'s graph.
    fn loss(
        &self,
        ti: usize,
        theta: &ParamMap,
        rows: &[usize],
        train: bool,
    ) -> anyhow::Result<Tensor>;
    /// (validation loss, validation score) of task `ti` with a detached `theta`.
    fn validate(&self, ti: usize, theta: &ParamMap) -> anyhow::Result<(f64, f64)>;
}

/// What the trainer writes into checkpoint headers and compares on `--resume`.
pub trait TrainerConfig {
    fn train(&self) -> &NlpTrainConfig;
    fn generator(&self) -> &LoraGeneratorConfig;
    fn to_table(&self) -> anyhow::Result<toml::Table>;
}

/// Requirement embeddings `[task][requirement] → [d]` and label-text embeddings
/// `[task] → [C, d]` from the frozen text encoder (computed once).
pub fn embed_requirements(
    encoder: &TextEncoder,
    tasks: &[(String, Vec<String>, Vec<String>)],
) -> anyhow::Result<(Vec<Vec<Tensor>>, Vec<Tensor>)> {
    let mut reqs = Vec::new();
    let mut labels = Vec::new();
    for (name, requirements, label_texts) in tasks {
        let r: Vec<&str> = requirements.iter().map(String::as_str).collect();
        let e = encoder
            .embed(&r)
            .with_context(|| format!("encoding requirements of {name}"))?;
        reqs.push(
            (0..r.len())
                .map(|i| e.get(i))
                .collect::<candle_core::Result<Vec<_>>>()?,
        );
        let l: Vec<&str> = label_texts.iter().map(String::as_str).collect();
        labels.push(encoder.embed(&l)?);
    }
    Ok((reqs, labels))
}

pub struct LoraMetaTrainer<C, T> {
    pub cfg: C,
    pub data: T,
    pub gen: LoraGenerator,
    pub opt: Adam,
    /// Checkpoint kind (`nlp-lora-generator`, `cv-lora-generator`).
    kind: &'static str,
    req_embs: Vec<Vec<Tensor>>,
    label_embs: Vec<Tensor>,
    /// Completed generator steps.
    pub step: usize,
    pub history: Vec<LoraLog>,
    pub best_val_loss: f64,
    pub best_step: usize,
    /// The target optimizer's moments, per task (head shapes differ between tasks).
    target_state: BTreeMap<usize, BTreeMap<String, Moments>>,
}

impl<C: TrainerConfig, T: LoraTasks> LoraMetaTrainer<C, T> {
    /// `target` is what the generator emits for; `req_embs`/`label_embs` come from
    /// [`embed_requirements`] (one list per task of `data`).
    pub fn new(
        cfg: C,
        data: T,
        target: LoraTarget,
        kind: &'static str,
        req_embs: Vec<Vec<Tensor>>,
        label_embs: Vec<Tensor>,
        dev: &Device,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            data.len() == req_embs.len() && data.len() == label_embs.len(),
            "one embedding list per task"
        );
        for ti in 0..data.len() {
            anyhow::ensure!(
                data.train_len(ti) > 0,
                "{} has no training examples to meta-train on",
                data.name(ti)
            );
        }
        let t = cfg.train();
        let gen = LoraGenerator::new(cfg.generator().clone(), target, t.seed, dev)?;
        let opt = Adam::new(
            gen.vars().to_vec(),
            AdamConfig::adamw(t.gen_lr, t.gen_weight_decay),
        );
        hyper_core::layers::seed_dropout(t.seed);
        Ok(Self {
            cfg,
            data,
            gen,
            opt,
            kind,
            req_embs,
            label_embs,
            step: 0,
            history: Vec::new(),
            best_val_loss: f64::INFINITY,
            best_step: 0,
            target_state: BTreeMap::new(),
        })
    }

    /// Task, requirement and batch rows of 0-based step `step`.
    pub fn pick(&self, step: usize) -> (usize, usize, Vec<usize>) {
        let seed = self.cfg.train().seed;
        let n = self.data.len();
        let round = step / n;
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            seed.wrapping_mul(0x9E37_79B9).wrapping_add(round as u64),
        ));
        let ti = order[step % n];
        let mut rng = StdRng::seed_from_u64(seed ^ ((step as u64 + 1) << 20));
        let ri = rng.random_range(0..self.req_embs[ti].len());
        let pool = self.data.train_len(ti);
        let b = self.cfg.train().batch_size.min(pool);
        let idx = rand::seq::index::sample(&mut rng, pool, b).into_vec();
        (ti, ri, idx)
    }

    /// Steps 1–3 of Algorithm 1: the target loss before the target step and the gradient
    /// of every generator var (`None` where the graph does not reach it); `None` grads
    /// when the loss is not finite.
    pub fn meta_gradients(
        &mut self,
        ti: usize,
        ri: usize,
        idx: &[usize],
    ) -> anyhow::Result<(f64, Option<Vec<Option<Tensor>>>)> {
        let theta = self
            .gen
            .generate(&self.req_embs[ti][ri], &self.label_embs[ti], true)?;
        let t = self.cfg.train();
        let target_cfg = algorithm1::target_optimizer(t.target_lr, t.target_weight_decay);
        let data = &self.data;
        let mut state = self.target_state.remove(&ti).unwrap_or_default();
        let (loss_v, grads) =
            algorithm1::meta_gradients(t.meta_grad, &theta, &target_cfg, &mut state, |pm| {
                data.loss(ti, pm, idx, true)
            })?;
        self.target_state.insert(ti, state);
        Ok((
            loss_v,
            grads.map(|g| algorithm1::grads_for(self.opt.vars(), &g)),
        ))
    }

    /// One generator step (Algorithm 1, steps 1–4); returns the target loss.
    pub fn train_step(&mut self) -> anyhow::Result<f64> {
        let (ti, ri, idx) = self.pick(self.step);
        let (loss, grads) = self.meta_gradients(ti, ri, &idx)?;
        let Some(grads) = grads else {
            bail!(
                "target loss is {loss} at step {} ({}); the generator was not updated",
                self.step + 1,
                self.data.name(ti)
            );
        };
        let norm = global_norm(&grads)?;
        if !norm.is_finite() {
            bail!(
                "generator gradient norm is {norm} at step {}",
                self.step + 1
            );
        }
        let t = self.cfg.train();
        self.opt.cfg.lr = t.gen_lr_schedule.lr(t.gen_lr, self.step, t.steps);
        self.opt.step_grads(&grads, clip_scale(norm, t.clip_norm))?;
        self.step += 1;
        Ok(loss)
    }

    /// The generator's output for requirement `ri` of task `ti` (eval mode, detached).
    pub fn generate(&self, ti: usize, ri: usize) -> anyhow::Result<ParamMap> {
        Ok(self
            .gen
            .generate(&self.req_embs[ti][ri], &self.label_embs[ti], false)?
            .detached())
    }

    /// Mean over tasks of (validation loss, validation score), each task's adapter
    /// generated from its first requirement.
    pub fn validate(&self) -> anyhow::Result<(f64, f64)> {
        let (mut l, mut s) = (0.0, 0.0);
        for ti in 0..self.data.len() {
            let (vl, vs) = self.data.validate(ti, &self.generate(ti, 0)?)?;
            l += vl;
            s += vs;
        }
        let n = self.data.len().max(1) as f64;
        Ok((l / n, s / n))
    }

    fn header_state(&self) -> anyhow::Result<toml::Table> {
        let mut s = toml::Table::new();
        s.insert("step".into(), (self.step as i64).into());
        s.insert("best_step".into(), (self.best_step as i64).into());
        s.insert("best_val_loss".into(), self.best_val_loss.into());
        s.insert(
            "meta_grad".into(),
            self.cfg.train().meta_grad.to_string().into(),
        );
        s.insert("history".into(), toml::Value::try_from(&self.history)?);
        Ok(s)
    }

    /// `stem.{safetensors,toml}`; with the optimizer state for `--resume`.
    pub fn save(&self, stem: &Path, with_optimizer: bool) -> anyhow::Result<()> {
        let mut tensors = self.gen.state_tensors();
        if with_optimizer {
            tensors.extend(self.opt.state_tensors("optim.")?);
        }
        checkpoint::save(
            stem,
            self.kind,
            self.cfg.to_table()?,
            self.header_state()?,
            &tensors,
        )
    }

    /// Continues from a checkpoint written by [`LoraMetaTrainer::save`] with the optimizer.
    pub fn resume(&mut self, stem: &Path) -> anyhow::Result<()> {
        let l = checkpoint::load(stem, self.kind, self.gen.device())?;
        let diff = checkpoint::config_diff(&l.header.config, &self.cfg.to_table()?);
        if !diff.is_empty() {
            bail!(
                "{} was trained with another config; differing keys: {}",
                stem.display(),
                diff.join(", ")
            );
        }
        self.gen.load_state(&l.tensors)?;
        self.opt.load_state("optim.", &l.tensors)?;
        let st = &l.header.state;
        let int = |k: &str| st.get(k).and_then(|v| v.as_integer()).unwrap_or(0) as usize;
        self.step = int("step");
        self.best_step = int("best_step");
        self.best_val_loss = st
            .get("best_val_loss")
            .and_then(|v| v.as_float())
            .unwrap_or(f64::INFINITY);
        self.history = st
            .get("history")
            .cloned()
            .map(|h| h.try_into())
            .transpose()
            .with_context(|| format!("{}: checkpoint history", stem.display()))?
            .unwrap_or_default();
        self.restart_segment();
        Ok(())
    }

    /// What restarts at every checkpoint boundary: the target optimizer state and the
    /// dropout RNG (seeded from the step).
    fn restart_segment(&mut self) {
        self.target_state.clear();
        hyper_core::layers::seed_dropout(self.cfg.train().seed.wrapping_add(self.step as u64));
    }

    /// Trains to `train.steps` (or `stop_after` more steps), writing `dir/last` every
    /// `checkpoint_every` steps and `dir/best` when validation loss improves.
    pub fn fit(
        &mut self,
        dir: &Path,
        stop_after: Option<usize>,
        progress: bool,
    ) -> anyhow::Result<()> {
        let total = self.cfg.train().steps;
        let until = stop_after.map_or(total, |s| (self.step + s).min(total));
        let pb = if progress {
            let pb = ProgressBar::new(total as u64);
            pb.set_style(
                ProgressStyle::with_template(&format!(
                    "{} [{{bar:30}}] {{pos}}/{{len}} steps {{elapsed}} eta {{eta}} {{msg}}",
                    self.kind
                ))
                .map_err(|e| anyhow!("{e}"))?,
            );
            pb.set_position(self.step as u64);
            Some(pb)
        } else {
            None
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut t0 = Instant::now();
        let (mut acc, mut n) = (0.0, 0usize);
        while self.step < until {
            acc += self.train_step()?;
            n += 1;
            if let Some(pb) = &pb {
                pb.set_position(self.step as u64);
            }
            let every = self.cfg.train().checkpoint_every.max(1);
            if self.step.is_multiple_of(every) || self.step == total {
                let (val_loss, val_score) = self.validate()?;
                let log = LoraLog {
                    step: self.step,
                    train_loss: acc / n.max(1) as f64,
                    val_loss,
                    val_score,
                    secs: t0.elapsed().as_secs_f64(),
                };
                t0 = Instant::now();
                (acc, n) = (0.0, 0);
                if let Some(pb) = &pb {
                    pb.set_message(format!(
                        "loss {:.4} val_loss {:.4} val_score {:.3}",
                        log.train_loss, log.val_loss, log.val_score
                    ));
                }
                tracing::info!(?log, kind = self.kind, "checkpoint");
                self.history.push(log);
                if val_loss < self.best_val_loss {
                    self.best_val_loss = val_loss;
                    self.best_step = self.step;
                    self.save(&dir.join("best"), false)?;
                }
                self.save(&dir.join("last"), true)?;
                self.restart_segment();
            }
        }
        if let Some(pb) = pb {
            pb.finish();
        }
        let every = self.cfg.train().checkpoint_every.max(1);
        if self.step < total && !self.step.is_multiple_of(every) {
            // Checkpoints sit on segment boundaries (the target optimizer restarts there),
            // so a stop between them keeps only the last boundary.
            eprintln!(
                "stopped at step {} between checkpoints; `--resume` continues from step {}",
                self.step,
                self.step / every * every
            );
        }
        Ok(())
    }
}
