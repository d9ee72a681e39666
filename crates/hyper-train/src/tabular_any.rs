//! Meta-training of the data-conditioned tabular generator
//! ([`hyper_core::data_generator`]): episodes from the synthetic prior and augmented
//! views of the meta-training-only real tables ([`datasets::uci::META_TRAIN_ONLY`]),
//! never the ten evaluation sets. Each episode splits a task into a support set (what
//! the generator sees) and a query set (what the generated MLP is scored on); the loss is
//! the query cross-entropy, so the generator learns to emit weights that generalise.
//!
//! Every episode is drawn from a seed derived from `(train.seed, step, slot)`, and the
//! checkpoint holds the optimizer state, so a resumed run continues exactly as an
//! uninterrupted one.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use datasets::preprocess::{split_and_fit, Split, SplitMix64, DEFAULT_SEED};
use datasets::prior::{augment, sample_task, Episode, PriorConfig};
use datasets::{Column, ColumnKind, Table};
use hyper_core::checkpoint;
use hyper_core::data_generator::{forward, DataConditionedGenerator, DataGeneratorConfig, Support};
use hyper_core::layers::cross_entropy;
use hyper_core::optim::{clip_scale, global_norm, Adam, AdamConfig};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use target_models::text_encoder::TextEncoder;

use hyper_infer::any_table::ANY_TABLE_CHECKPOINT_KIND as CHECKPOINT_KIND;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnyTrainConfig {
    pub steps: usize,
    /// Episodes whose losses are averaged per optimizer step.
    pub tasks_per_step: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub support_min: usize,
    pub support_max: usize,
    pub query_rows: usize,
    /// Share of episodes drawn from the real meta-training tables (the rest: the prior).
    pub real_fraction: f64,
    /// Real tables allowed in meta-training (a subset of `META_TRAIN_ONLY`).
    pub real_tables: Vec<String>,
    /// Share of episodes that see no requirement (so the data-only path works too).
    pub requirement_dropout: f64,
    pub max_features: usize,
    pub max_classes: usize,
    pub checkpoint_every: usize,
    pub val_tasks: usize,
    pub seed: u64,
}

impl Default for AnyTrainConfig {
    fn default() -> Self {
        Self {
            steps: 3000,
            tasks_per_step: 8,
            lr: 1e-3,
            weight_decay: 0.0,
            grad_clip: 1.0,
            support_min: 32,
            support_max: 512,
            query_rows: 256,
            real_fraction: 0.25,
            real_tables: datasets::uci::META_TRAIN_ONLY
                .iter()
                .map(|s| s.to_string())
                .collect(),
            requirement_dropout: 0.5,
            max_features: 32,
            max_classes: 10,
            checkpoint_every: 100,
            val_tasks: 48,
            seed: 0,
        }
    }
}

/// `configs/tabular-any.toml`: what a checkpoint needs to be served (`generator`) and how
/// it was trained (`train`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnyTableConfig {
    pub generator: DataGeneratorConfig,
    pub train: AnyTrainConfig,
}

impl AnyTableConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn to_table(&self) -> Result<toml::Table> {
        Ok(toml::Table::try_from(self)?)
    }
}

/// One step's or one validation pass's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnyLog {
    pub step: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub secs: f64,
}

struct RealTable {
    split: Split,
    n_classes: usize,
    requirements: Vec<Vec<f32>>,
}

/// A training episode on the device: support, query, requirement.
pub struct DeviceEpisode {
    pub support_x: Tensor,
    pub support_y: Vec<usize>,
    pub query_x: Tensor,
    pub query_y: Tensor,
    pub n_classes: usize,
    pub requirement: Option<Tensor>,
}

/// The requirement sentence a synthetic task of `d` features and `c` classes gets: the
/// `profile` backend's sentence for a canonical table of that shape (generic column and
/// class names, as synthetic data has no names).
fn synthetic_requirement(d: usize, c: usize) -> Result<String> {
    let t = Table {
        name: "table".into(),
        columns: (1..=d)
            .map(|j| Column {
                name: format!("feature {j}"),
                kind: ColumnKind::Numeric,
            })
            .collect(),
        features: (0..2 * c).map(|i| vec![(i % 2) as f64; d]).collect(),
        target: "class".into(),
        class_names: (1..=c).map(|k| format!("class {k}")).collect(),
        labels: (0..2 * c).map(|i| i / 2).collect(),
        source: "synthetic prior".into(),
        target_values: None,
    };
    let (reqs, _) = crate::task::requirements_for(&t, 1, DEFAULT_SEED)?;
    Ok(reqs[0].clone())
}

pub struct AnyTrainer {
    pub cfg: AnyTableConfig,
    gen: DataConditionedGenerator,
    opt: Adam,
    encoder: TextEncoder,
    real: Vec<RealTable>,
    synthetic_requirements: HashMap<(usize, usize), Vec<f32>>,
    pub step: usize,
    pub history: Vec<AnyLog>,
}

impl AnyTrainer {
    pub fn new(cfg: AnyTableConfig, encoder: TextEncoder, dev: &Device) -> Result<Self> {
        let gen = DataConditionedGenerator::new(cfg.generator.clone(), cfg.train.seed, dev)?;
        let opt = Adam::new(
            gen.vars().to_vec(),
            AdamConfig::adam(cfg.train.lr, cfg.train.weight_decay, false),
        );
        let mut real = Vec::new();
        for name in &cfg.train.real_tables {
            if !datasets::uci::META_TRAIN_ONLY.contains(&name.as_str()) {
                bail!(
                    "train.real_tables: `{name}` is not a meta-training-only table (allowed: {}); \
                     the ten evaluation sets must stay unseen",
                    datasets::uci::META_TRAIN_ONLY.join(", ")
                );
            }
            let table = datasets::uci::load_meta_train_only(name)
                .with_context(|| format!("loading meta-training table `{name}`"))?;
            let s = split_and_fit(&table, DEFAULT_SEED)?;
            let mut split = s.train.clone();
            for part in [&s.val, &s.test] {
                split.x.extend_from_slice(&part.x);
                split.y.extend_from_slice(&part.y);
            }
            let (reqs, _) = crate::task::requirements_for(&table, 4, DEFAULT_SEED)?;
            let requirements = reqs
                .iter()
                .map(|r| encoder.embed_one(r))
                .collect::<Result<_>>()?;
            real.push(RealTable {
                split,
                n_classes: table.n_classes(),
                requirements,
            });
        }
        Ok(Self {
            cfg,
            gen,
            opt,
            encoder,
            real,
            synthetic_requirements: HashMap::new(),
            step: 0,
            history: Vec::new(),
        })
    }

    pub fn generator(&self) -> &DataConditionedGenerator {
        &self.gen
    }

    fn prior(&self) -> PriorConfig {
        PriorConfig {
            max_features: self.cfg.train.max_features,
            max_classes: self.cfg.train.max_classes,
        }
    }

    /// The episode for `seed` (`None` if the draw is unusable: one class, or a query class
    /// absent from the support set; the caller redraws).
    fn episode(&mut self, seed: u64, allow_real: bool) -> Result<Option<DeviceEpisode>> {
        let t = self.cfg.train.clone();
        let r = &mut SplitMix64::new(seed);
        let unit = |r: &mut SplitMix64| (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let n_support = t.support_min + r.below(t.support_max - t.support_min + 1);
        let use_real = allow_real && !self.real.is_empty() && unit(r) < t.real_fraction;
        let (ep, req): (Option<Episode>, Option<Vec<f32>>) = if use_real {
            let k = r.below(self.real.len());
            let rt = &self.real[k];
            let ep = augment(
                &rt.split,
                rt.n_classes,
                n_support + t.query_rows,
                self.cfg.generator.max_hinge_features,
                r.next_u64(),
            );
            let req = rt.requirements[r.below(rt.requirements.len())].clone();
            (ep, Some(req))
        } else {
            let ep = sample_task(n_support + t.query_rows, &self.prior(), r.next_u64());
            (ep, None)
        };
        let Some(ep) = ep else { return Ok(None) };
        if ep.n_rows() < 8 {
            return Ok(None);
        }
        let n_support = n_support.min(ep.n_rows() * 2 / 3);
        let Some((s, q)) = ep.support_query(n_support, r) else {
            return Ok(None);
        };
        let req = if unit(r) < t.requirement_dropout {
            None
        } else {
            match req {
                Some(v) => Some(v),
                None => Some(self.synthetic_embedding(ep.n_features, ep.n_classes)?),
            }
        };
        let dev = self.gen.device().clone();
        let to = |e: &Episode| Tensor::from_vec(e.x.clone(), (e.n_rows(), e.n_features), &dev);
        Ok(Some(DeviceEpisode {
            support_x: to(&s)?,
            support_y: s.y.clone(),
            query_x: to(&q)?,
            query_y: Tensor::from_vec(q.y.iter().map(|&v| v as u32).collect(), q.n_rows(), &dev)?,
            n_classes: ep.n_classes,
            requirement: req
                .map(|v| Tensor::from_vec(v, self.cfg.generator.embed_dim, &dev))
                .transpose()?,
        }))
    }

    fn synthetic_embedding(&mut self, d: usize, c: usize) -> Result<Vec<f32>> {
        if let Some(v) = self.synthetic_requirements.get(&(d, c)) {
            return Ok(v.clone());
        }
        let v = self.encoder.embed_one(&synthetic_requirement(d, c)?)?;
        self.synthetic_requirements.insert((d, c), v.clone());
        Ok(v)
    }

    /// The first usable episode from `base`, `base + 1`, ...
    fn draw(&mut self, base: u64, allow_real: bool) -> Result<DeviceEpisode> {
        for k in 0..1000u64 {
            if let Some(e) = self.episode(base.wrapping_add(k.wrapping_mul(0x9E37)), allow_real)? {
                return Ok(e);
            }
        }
        bail!("no usable episode in 1000 draws from seed {base} (check the prior bounds)")
    }

    /// Query loss and accuracy of the generated model for one episode.
    pub fn episode_loss(&self, e: &DeviceEpisode) -> Result<(Tensor, f64)> {
        let g = self.gen.generate(
            &Support {
                x: &e.support_x,
                y: &e.support_y,
                n_classes: e.n_classes,
            },
            e.requirement.as_ref(),
        )?;
        let logits = forward(&g.params, &e.query_x)?;
        let loss = cross_entropy(&logits, &e.query_y)?;
        let yq: Vec<u32> = e.query_y.to_vec1()?;
        let pred: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        let acc = pred.iter().zip(&yq).filter(|(a, b)| a == b).count() as f64 / yq.len() as f64;
        Ok((loss, acc))
    }

    /// One optimizer step over `tasks_per_step` episodes; returns the mean loss.
    pub fn train_step(&mut self) -> Result<f64> {
        let t = self.cfg.train.clone();
        let mut total: Option<Tensor> = None;
        for slot in 0..t.tasks_per_step {
            let seed = t
                .seed
                .wrapping_mul(0x1_0000_0001)
                .wrapping_add((self.step as u64) << 16)
                .wrapping_add(slot as u64);
            let e = self.draw(seed, true)?;
            let (loss, _) = self.episode_loss(&e)?;
            total = Some(match total {
                Some(s) => (s + loss)?,
                None => loss,
            });
        }
        let loss = (total.expect("tasks_per_step ≥ 1") / t.tasks_per_step as f64)?;
        let v = loss.to_scalar::<f32>()? as f64;
        if !v.is_finite() {
            bail!("meta-training loss is {v} at step {}", self.step + 1);
        }
        let grads = loss.backward()?;
        let gs: Vec<Option<Tensor>> = self
            .gen
            .vars()
            .iter()
            .map(|(_, var)| grads.get(var).cloned())
            .collect();
        let scale = clip_scale(global_norm(&gs)?, t.grad_clip);
        self.opt.step_grads(&gs, scale)?;
        self.step += 1;
        Ok(v)
    }

    /// Mean query loss and accuracy over the fixed synthetic validation tasks.
    pub fn validate(&mut self) -> Result<(f64, f64)> {
        let n = self.cfg.train.val_tasks.max(1);
        let (mut l, mut a) = (0.0, 0.0);
        for k in 0..n {
            let e = self.draw((1u64 << 48) + (k as u64) * 7919, false)?;
            let (loss, acc) = self.episode_loss(&e)?;
            l += loss.to_scalar::<f32>()? as f64;
            a += acc;
        }
        Ok((l / n as f64, a / n as f64))
    }

    fn header_state(&self) -> toml::Table {
        let mut s = toml::Table::new();
        s.insert("step".into(), (self.step as i64).into());
        s.insert(
            "history".into(),
            toml::Value::try_from(&self.history).unwrap_or(toml::Value::Array(vec![])),
        );
        s
    }

    /// `stem.{safetensors,toml}`; with the optimizer state for `--resume`.
    pub fn save(&self, stem: &Path, with_optimizer: bool) -> Result<()> {
        let mut tensors = self.gen.state_tensors();
        if with_optimizer {
            tensors.extend(self.opt.state_tensors("optim.")?);
        }
        checkpoint::save(
            stem,
            CHECKPOINT_KIND,
            self.cfg.to_table()?,
            self.header_state(),
            &tensors,
        )
    }

    /// Continues from a checkpoint written by [`AnyTrainer::save`] with the optimizer.
    pub fn resume(&mut self, stem: &Path) -> Result<()> {
        let l = checkpoint::load(stem, CHECKPOINT_KIND, self.gen.device())?;
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
        self.step = l
            .header
            .state
            .get("step")
            .and_then(|v| v.as_integer())
            .unwrap_or(0) as usize;
        self.history = l
            .header
            .state
            .get("history")
            .cloned()
            .map(|h| h.try_into())
            .transpose()
            .context("checkpoint history")?
            .unwrap_or_default();
        Ok(())
    }

    /// Trains to `train.steps` (or `stop_after` more steps), validating and writing
    /// `dir/last` every `checkpoint_every` steps and at the end.
    pub fn fit(&mut self, dir: &Path, stop_after: Option<usize>, progress: bool) -> Result<()> {
        let total = self.cfg.train.steps;
        let until = stop_after.map_or(total, |s| (self.step + s).min(total));
        let pb = if progress {
            let pb = ProgressBar::new(total as u64);
            pb.set_style(
                ProgressStyle::with_template(
                    "tabular-any [{bar:30}] {pos}/{len} steps {elapsed} eta {eta} {msg}",
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            pb.set_position(self.step as u64);
            Some(pb)
        } else {
            None
        };
        let mut t0 = Instant::now();
        let mut acc_loss = 0.0;
        let mut n_loss = 0usize;
        while self.step < until {
            acc_loss += self.train_step()?;
            n_loss += 1;
            if let Some(pb) = &pb {
                pb.set_position(self.step as u64);
            }
            let every = self.cfg.train.checkpoint_every.max(1);
            if self.step.is_multiple_of(every) || self.step == until {
                let (val_loss, val_acc) = self.validate()?;
                let log = AnyLog {
                    step: self.step,
                    train_loss: acc_loss / n_loss.max(1) as f64,
                    val_loss,
                    val_acc,
                    secs: t0.elapsed().as_secs_f64(),
                };
                t0 = Instant::now();
                acc_loss = 0.0;
                n_loss = 0;
                if let Some(pb) = &pb {
                    pb.set_message(format!(
                        "loss {:.4} val_loss {:.4} val_acc {:.3}",
                        log.train_loss, log.val_loss, log.val_acc
                    ));
                }
                tracing::info!(?log, "tabular-any checkpoint");
                self.history.push(log);
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                self.save(&dir.join("last"), true)?;
            }
        }
        if let Some(pb) = pb {
            pb.finish();
        }
        Ok(())
    }
}
