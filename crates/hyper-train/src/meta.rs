//! Algorithm 1 (DESIGN.md §4): for each epoch, for each shuffled task–requirement pair,
//! for each batch (× `n_local_updates`): θ = P(r); one Adam(amsgrad) step of the target
//! on a detached copy gives θ'; δ = θ − θ' is backpropagated into P through the surrogate
//! `Σ_k sum(θ_k ⊙ δ_k)`; clip P's grad norm; step P. The target optimizer's state resets
//! at every task epoch (pair); the best checkpoint by validation loss is kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use candle_core::{Device, Tensor};
use hyper_core::layers::cross_entropy;
use hyper_core::optim::{clip_scale, global_norm, Adam, AdamConfig, Moments};
use hyper_core::{checkpoint, ParamGenerator, TaskSpec};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};
use target_models::mlp::Mlp;
use target_models::{TargetModel, TextEncoder};

use crate::algorithm1;
use crate::config::{GenOptimizer, TabularConfig};
use crate::encoder::{Tokens, TrainableEncoder};
use crate::task::TabularTask;
use hyper_infer::{evaluate, TABULAR_CHECKPOINT_KIND as CHECKPOINT_KIND};

/// Requirement embeddings `[d]` per task, per requirement (encoder frozen: computed once).
pub fn embed_tasks(
    encoder: &TextEncoder,
    tasks: &[TabularTask],
) -> anyhow::Result<Vec<Vec<Tensor>>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        let refs: Vec<&str> = t.requirements.iter().map(String::as_str).collect();
        let e = encoder
            .embed(&refs)
            .with_context(|| format!("encoding requirements of `{}`", t.name))?;
        out.push(
            (0..refs.len())
                .map(|i| e.get(i))
                .collect::<candle_core::Result<Vec<_>>>()?,
        );
    }
    Ok(out)
}

/// Mean of a task's requirement embeddings, L2-normalised.
fn anchor(embs: &[Tensor]) -> anyhow::Result<Vec<f32>> {
    let m = Tensor::stack(embs, 0)?.mean(0)?;
    let n = m.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?.max(1e-12);
    Ok((m / n as f64)?.to_vec1::<f32>()?)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub secs: f64,
}

pub struct MetaTrainer {
    pub cfg: TabularConfig,
    pub mlp: Mlp,
    pub gen: ParamGenerator,
    pub gen_opt: Adam,
    pub tasks: Vec<TabularTask>,
    pub embs: Vec<Vec<Tensor>>,
    /// Completed epochs.
    pub epoch: usize,
    /// Completed generator steps.
    pub step: u64,
    pub best_val_loss: f64,
    pub best_epoch: usize,
    pub history: Vec<EpochLog>,
    target_state: BTreeMap<String, Moments>,
    /// With `generator.train_encoder`: the trainable E and each task's tokenized
    /// requirements; `embs` then holds eval-mode embeddings refreshed every epoch.
    encoder: Option<(TrainableEncoder, Vec<Tokens>)>,
}

pub fn task_specs(mlp: &Mlp, tasks: &[TabularTask]) -> Vec<TaskSpec> {
    tasks
        .iter()
        .map(|t| TaskSpec {
            name: t.name.clone(),
            specs: mlp.param_spec(&t.meta),
        })
        .collect()
}

impl MetaTrainer {
    /// A fresh generator for `tasks` with embeddings `embs` (from [`embed_tasks`]).
    pub fn new(
        cfg: TabularConfig,
        tasks: Vec<TabularTask>,
        embs: Vec<Vec<Tensor>>,
        dev: &Device,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(tasks.len() == embs.len(), "one embedding list per task");
        hyper_core::layers::seed_dropout(cfg.train.seed);
        let mlp = Mlp::new(cfg.architecture.model.clone());
        let mut gen = ParamGenerator::new(
            cfg.architecture.generator.clone(),
            task_specs(&mlp, &tasks),
            cfg.train.seed,
            dev,
        )?;
        for (t, e) in tasks.iter().zip(&embs) {
            gen.set_anchor(&t.name, anchor(e)?);
        }
        let (lr, wd) = (cfg.train.gen_lr, cfg.train.gen_weight_decay);
        let gen_opt = Adam::new(
            gen.trainable_vars(),
            AdamConfig {
                amsgrad: cfg.train.gen_amsgrad,
                ..match cfg.train.gen_optimizer {
                    GenOptimizer::Adamw => AdamConfig::adamw(lr, wd),
                    GenOptimizer::Adam => AdamConfig::adam(lr, wd, false),
                }
            },
        );
        Ok(Self {
            cfg,
            mlp,
            gen,
            gen_opt,
            tasks,
            embs,
            epoch: 0,
            step: 0,
            best_val_loss: f64::INFINITY,
            best_epoch: 0,
            history: Vec::new(),
            target_state: BTreeMap::new(),
            encoder: None,
        })
    }

    /// Meta-trains `enc` together with the generator (`generator.train_encoder = true`):
    /// its weights join the generator's optimizer (and grad-norm clip) and checkpoints.
    pub fn with_trainable_encoder(mut self, enc: TrainableEncoder) -> anyhow::Result<Self> {
        anyhow::ensure!(
            self.cfg.architecture.generator.train_encoder,
            "a trainable encoder needs `generator.train_encoder = true` in the config"
        );
        let tokens = self
            .tasks
            .iter()
            .map(|t| {
                let refs: Vec<&str> = t.requirements.iter().map(String::as_str).collect();
                enc.tokenize(&refs)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut vars = self.gen.trainable_vars();
        vars.extend(enc.trainable_vars());
        self.gen_opt = Adam::new(vars, self.gen_opt.cfg.clone());
        self.encoder = Some((enc, tokens));
        self.refresh_embeddings()?;
        Ok(self)
    }

    /// Whether the encoder is being meta-trained.
    pub fn encoder_trainable(&self) -> bool {
        self.encoder.is_some()
    }

    /// Re-encodes every requirement (eval mode) and resets the task anchors; a no-op with
    /// a frozen encoder, whose embeddings never change.
    fn refresh_embeddings(&mut self) -> anyhow::Result<()> {
        let Some((enc, tokens)) = &self.encoder else {
            return Ok(());
        };
        for (ti, tok) in tokens.iter().enumerate() {
            let e = enc.embed(tok, false)?.detach();
            self.embs[ti] = (0..e.dim(0)?)
                .map(|i| e.get(i))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let name = self.tasks[ti].name.clone();
            self.gen.set_anchor(&name, anchor(&self.embs[ti])?);
        }
        Ok(())
    }

    /// Requirement `ri` of task `ti` as the generator's input: cached, or re-encoded with
    /// the graph into a trainable encoder.
    fn embedding(&self, ti: usize, ri: usize) -> anyhow::Result<Tensor> {
        match &self.encoder {
            None => Ok(self.embs[ti][ri].clone()),
            Some((enc, tokens)) => {
                let t = &tokens[ti];
                let one = Tokens {
                    ids: t.ids.narrow(0, ri, 1)?,
                    mask: t.mask.narrow(0, ri, 1)?,
                };
                Ok(enc.embed(&one, true)?.get(0)?)
            }
        }
    }

    fn target_cfg(&self) -> AdamConfig {
        algorithm1::target_optimizer(self.cfg.train.target_lr, self.cfg.train.target_weight_decay)
    }

    /// Steps 1–3 of Algorithm 1 on one batch: the target loss before the target step and
    /// the gradient of every var in `gen_opt` (generator, plus the encoder when trainable;
    /// `None` where the graph does not reach a var). `None` grads when the loss is not
    /// finite. Advances the target optimizer state (δ mode).
    pub fn meta_gradients(
        &mut self,
        ti: usize,
        ri: usize,
        xb: &Tensor,
        yb: &Tensor,
    ) -> anyhow::Result<(f64, Option<Vec<Option<Tensor>>>)> {
        let name = self.tasks[ti].name.clone();
        let emb = self.embedding(ti, ri)?;
        let theta = self.gen.generate_for_task(&emb, &name, true)?;
        let mlp = &self.mlp;
        let (loss_v, grads) = algorithm1::meta_gradients(
            self.cfg.train.meta_grad,
            &theta,
            &self.target_cfg(),
            &mut self.target_state,
            |pm| Ok(cross_entropy(&mlp.forward(pm, xb, true)?, yb)?),
        )?;
        Ok((
            loss_v,
            grads.map(|g| algorithm1::grads_for(self.gen_opt.vars(), &g)),
        ))
    }

    /// Steps 1–4 of Algorithm 1 on one batch; returns the target loss before the step.
    /// The target optimizer state persists across calls until [`MetaTrainer::reset_target`].
    pub fn step(&mut self, ti: usize, ri: usize, xb: &Tensor, yb: &Tensor) -> anyhow::Result<f64> {
        let (loss_v, grads) = self.meta_gradients(ti, ri, xb, yb)?;
        let Some(grads) = grads else {
            return Ok(loss_v);
        };
        // 4. clip P's global grad norm, step P.
        let norm = global_norm(&grads)?;
        if !norm.is_finite() {
            bail!("generator gradient norm is {norm}");
        }
        self.gen_opt
            .step_grads(&grads, clip_scale(norm, self.cfg.train.clip_norm))?;
        self.step += 1;
        Ok(loss_v)
    }

    /// Target optimizer state reset (start of each task epoch).
    pub fn reset_target(&mut self) {
        self.target_state.clear();
    }

    /// Mean validation (loss, acc) over tasks, each averaged over its requirements.
    pub fn validate(&self) -> anyhow::Result<(f64, f64)> {
        let (mut l, mut a) = (0.0, 0.0);
        for (ti, t) in self.tasks.iter().enumerate() {
            let (mut tl, mut ta) = (0.0, 0.0);
            for e in &self.embs[ti] {
                let p = self.gen.generate_for_task(e, &t.name, false)?;
                let (x, y) = evaluate(&self.mlp, &p, &t.val)?;
                tl += x;
                ta += y;
            }
            let n = self.embs[ti].len() as f64;
            l += tl / n;
            a += ta / n;
        }
        let n = self.tasks.len() as f64;
        Ok((l / n, a / n))
    }

    /// Steps in one epoch (for progress bars).
    pub fn steps_per_epoch(&self) -> u64 {
        let bs = self.cfg.train.batch_size;
        self.tasks
            .iter()
            .zip(&self.embs)
            .map(|(t, e)| (t.train.len().div_ceil(bs) * t.n_local_updates * e.len()) as u64)
            .sum()
    }

    /// One epoch of Algorithm 1; returns the mean training loss.
    pub fn train_epoch(&mut self, pb: Option<&ProgressBar>) -> anyhow::Result<f64> {
        let epoch = self.epoch;
        // Re-seeded per epoch so a resumed run shuffles exactly like an uninterrupted one.
        let mut rng = StdRng::seed_from_u64(
            self.cfg
                .train
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(epoch as u64),
        );
        let mut pairs: Vec<(usize, usize)> = (0..self.tasks.len())
            .flat_map(|ti| (0..self.embs[ti].len()).map(move |ri| (ti, ri)))
            .collect();
        pairs.shuffle(&mut rng);
        let bs = self.cfg.train.batch_size;
        let tc = &self.cfg.train;
        self.gen_opt.cfg.lr = tc.gen_lr_schedule.lr(tc.gen_lr, epoch, tc.epochs);
        let (mut sum, mut n) = (0.0, 0usize);
        for (ti, ri) in pairs {
            self.reset_target();
            let mut idx: Vec<u32> = (0..self.tasks[ti].train.len() as u32).collect();
            idx.shuffle(&mut rng);
            for (bi, chunk) in idx.chunks(bs).enumerate() {
                let (xb, yb) = self.tasks[ti].train.batch(chunk)?;
                for _ in 0..self.tasks[ti].n_local_updates {
                    let step = self.step;
                    let l = self.step(ti, ri, &xb, &yb).with_context(|| {
                        format!(
                            "at epoch {}, task `{}` (requirement {ri}), batch {bi}, generator step {step}",
                            epoch + 1,
                            self.tasks[ti].name
                        )
                    })?;
                    if !l.is_finite() {
                        bail!(
                            "loss is {l} at epoch {}, task `{}` (requirement {ri}), batch {bi}, generator step {}",
                            epoch + 1,
                            self.tasks[ti].name,
                            self.step
                        );
                    }
                    sum += l;
                    n += 1;
                    if let Some(pb) = pb {
                        pb.inc(1);
                    }
                }
            }
        }
        Ok(sum / n.max(1) as f64)
    }

    fn header_state(&self) -> toml::Table {
        let mut s = toml::Table::new();
        s.insert("epoch".into(), (self.epoch as i64).into());
        s.insert("step".into(), (self.step as i64).into());
        s.insert("best_val_loss".into(), self.best_val_loss.into());
        s.insert("best_epoch".into(), (self.best_epoch as i64).into());
        // Where the generator's dropout mask stream stands, so `--resume` continues it.
        s.insert(
            "dropout_draws".into(),
            (hyper_core::layers::dropout_draws() as i64).into(),
        );
        s.insert(
            "meta_grad".into(),
            self.cfg.train.meta_grad.to_string().into(),
        );
        let hist: Vec<toml::Value> = self
            .history
            .iter()
            .map(|h| {
                let mut t = toml::Table::new();
                t.insert("epoch".into(), (h.epoch as i64).into());
                t.insert("train_loss".into(), h.train_loss.into());
                t.insert("val_loss".into(), h.val_loss.into());
                t.insert("val_acc".into(), h.val_acc.into());
                t.insert("secs".into(), h.secs.into());
                toml::Value::Table(t)
            })
            .collect();
        s.insert("history".into(), toml::Value::Array(hist));
        if let Ok(tasks) = toml::Value::try_from(&self.gen.tasks) {
            s.insert("tasks".into(), tasks);
        }
        s
    }

    /// Writes `stem.{safetensors,toml}`: generator tensors, anchors, optimizer state.
    pub fn save(&self, stem: &Path, with_optimizer: bool) -> anyhow::Result<()> {
        let mut tensors = self.gen.state_tensors()?;
        if let Some((enc, _)) = &self.encoder {
            tensors.extend(enc.state_tensors());
        }
        if with_optimizer {
            tensors.extend(self.gen_opt.state_tensors("optim.")?);
        }
        checkpoint::save(
            stem,
            CHECKPOINT_KIND,
            self.cfg.to_table()?,
            self.header_state(),
            &tensors,
        )
    }

    /// Restores a checkpoint written by [`MetaTrainer::save`] into this trainer; the
    /// architecture part of the config (datasets, model, generator) must match.
    pub fn resume(&mut self, stem: &Path) -> anyhow::Result<()> {
        let l = checkpoint::load(stem, CHECKPOINT_KIND, self.gen.device())?;
        check_architecture(&l.header.config, &self.cfg, stem)?;
        self.gen.load_state(&l.tensors)?;
        if let Some((enc, _)) = &self.encoder {
            enc.load_state(&l.tensors)?;
        }
        self.refresh_embeddings()?;
        self.gen_opt.load_state("optim.", &l.tensors)?;
        let s = &l.header.state;
        let int = |k: &str| s.get(k).and_then(|v| v.as_integer()).unwrap_or(0);
        self.epoch = int("epoch") as usize;
        self.step = int("step") as u64;
        self.best_epoch = int("best_epoch") as usize;
        hyper_core::layers::seed_dropout_at(self.cfg.train.seed, int("dropout_draws") as u64);
        self.best_val_loss = s
            .get("best_val_loss")
            .and_then(|v| v.as_float())
            .unwrap_or(f64::INFINITY);
        self.history = s
            .get("history")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|h| {
                        let t = h.as_table()?;
                        Some(EpochLog {
                            epoch: t.get("epoch")?.as_integer()? as usize,
                            train_loss: t.get("train_loss")?.as_float()?,
                            val_loss: t.get("val_loss")?.as_float()?,
                            val_acc: t.get("val_acc")?.as_float()?,
                            secs: t.get("secs")?.as_float()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(())
    }

    /// Runs epochs until `cfg.train.epochs` (or `stop_after` more epochs), checkpointing
    /// `dir/last` every epoch and `dir/best` on a new best validation loss.
    pub fn fit(
        &mut self,
        dir: &Path,
        stop_after: Option<usize>,
        progress: bool,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.cfg.architecture.generator.train_encoder == self.encoder.is_some(),
            "generator.train_encoder = {} but the trainer {} a trainable encoder \
             (see MetaTrainer::with_trainable_encoder)",
            self.cfg.architecture.generator.train_encoder,
            if self.encoder.is_some() {
                "has"
            } else {
                "lacks"
            }
        );
        let total = self.cfg.train.epochs;
        let mut done = 0;
        while self.epoch < total && stop_after.is_none_or(|s| done < s) {
            let t0 = Instant::now();
            let pb = if progress {
                let pb = ProgressBar::new(self.steps_per_epoch());
                pb.set_style(
                    ProgressStyle::with_template(
                        "epoch {prefix} [{bar:30}] {pos}/{len} {elapsed} eta {eta} {msg}",
                    )
                    .map_err(|e| anyhow!("{e}"))?,
                );
                pb.set_prefix(format!("{}/{}", self.epoch + 1, total));
                if let Some(h) = self.history.last() {
                    pb.set_message(format!(
                        "prev loss {:.4} val_loss {:.4} val_acc {:.3}",
                        h.train_loss, h.val_loss, h.val_acc
                    ));
                }
                Some(pb)
            } else {
                None
            };
            let train_loss = self.train_epoch(pb.as_ref())?;
            self.refresh_embeddings()?;
            let (val_loss, val_acc) = self.validate()?;
            if !val_loss.is_finite() {
                bail!(
                    "validation loss is {val_loss} after epoch {}",
                    self.epoch + 1
                );
            }
            self.epoch += 1;
            done += 1;
            let log = EpochLog {
                epoch: self.epoch,
                train_loss,
                val_loss,
                val_acc,
                secs: t0.elapsed().as_secs_f64(),
            };
            if let Some(pb) = pb {
                pb.finish_with_message(format!(
                    "loss {train_loss:.4} val_loss {val_loss:.4} val_acc {val_acc:.3}"
                ));
            }
            tracing::info!(?log, meta_grad = %self.cfg.train.meta_grad, "epoch done");
            self.history.push(log);
            if val_loss < self.best_val_loss {
                self.best_val_loss = val_loss;
                self.best_epoch = self.epoch;
                self.save(&dir.join("best"), false)?;
            }
            self.save(&dir.join("last"), true)?;
        }
        Ok(())
    }
}

/// Errors naming every differing key when `stored` (a checkpoint's config) does not
/// describe the same generator as `cfg`.
pub fn check_architecture(
    stored: &toml::Table,
    cfg: &TabularConfig,
    stem: &Path,
) -> anyhow::Result<()> {
    let stored_cfg: TabularConfig = toml::Value::Table(stored.clone())
        .try_into()
        .with_context(|| format!("{}: checkpoint config does not parse", stem.display()))?;
    let diff = checkpoint::config_diff(
        &stored_cfg.architecture_table()?,
        &cfg.architecture_table()?,
    );
    if !diff.is_empty() {
        bail!(
            "{} was trained with another config; differing keys (checkpoint vs requested): {}",
            stem.display(),
            diff.join("; ")
        );
    }
    Ok(())
}

/// The config a checkpoint was trained with, after checking that its architecture part
/// matches `cfg` (the header alone is read: reproduction reports the checkpoint's own
/// training settings, e.g. its meta-gradient mode).
pub fn checkpoint_config(stem: &Path, cfg: &TabularConfig) -> anyhow::Result<TabularConfig> {
    let (_, header_path) = checkpoint::paths(stem);
    let text = std::fs::read_to_string(&header_path)
        .with_context(|| format!("reading checkpoint header {}", header_path.display()))?;
    let header: checkpoint::CheckpointHeader = toml::from_str(&text)
        .with_context(|| format!("parsing checkpoint header {}", header_path.display()))?;
    check_architecture(&header.config, cfg, stem)?;
    Ok(toml::Value::Table(header.config).try_into()?)
}
