//! Supervised pretraining of the frozen backbone (`cargo xtask pretrain backbone`): the
//! paper adapts an ImageNet ResNet-50, which cannot be had here, and LoRA on a random
//! backbone is meaningless, so the torchvision-layout ResNet is trained on Fashion-MNIST
//! (BatchNorm in training mode), then exported with its running statistics as an f16
//! safetensors that [`target_models::resnet::ResNet::load`] reads like torchvision's.
//!
//! Every `checkpoint_every` steps `last` holds the weights, running statistics and AdamW
//! moments; each step's batch is a function of (seed, epoch, step), so `--resume`
//! continues an interrupted run exactly.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap};
use datasets::images::ImageSet;
use hyper_core::layers::{cross_entropy, default_bound, uniform};
use hyper_core::optim::{Adam, AdamConfig};
use hyper_core::{checkpoint, ParamMap};
use hyper_infer::vision::{self, TopK, BACKBONE_CHECKPOINT_KIND};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};
use target_models::lora::LoraConfig;
use target_models::resnet::ResNet;

use super::config::CvConfig;

/// Whether a state-dict key is a BatchNorm running statistic (updated, never trained).
fn is_running_stat(name: &str) -> bool {
    name.ends_with(".running_mean") || name.ends_with(".running_var")
}

pub struct BackboneTrainer {
    pub cfg: CvConfig,
    model: ResNet,
    head: ParamMap,
    varmap: VarMap,
    opt: Adam,
    train: ImageSet,
    /// Completed steps.
    pub step: usize,
    pub losses: Vec<(usize, f64)>,
}

impl BackboneTrainer {
    /// A fresh backbone (kaiming-normal convs, identity BatchNorm, PyTorch-init `fc`) for
    /// `train` (a prepared set).
    pub fn new(cfg: CvConfig, train: ImageSet, dev: &Device) -> anyhow::Result<Self> {
        let rcfg = cfg.architecture.backbone.resnet()?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, dev);
        let model = ResNet::from_vb(&vb, rcfg.clone(), LoraConfig::none())?;
        let fd = rcfg.feature_dim();
        let c = train.num_classes();
        let bound = default_bound(fd);
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let mut head = ParamMap::new();
        head.insert("fc.weight", vb.get_with_hints((c, fd), "fc.weight", init)?);
        head.insert("fc.bias", vb.get_with_hints(c, "fc.bias", init)?);
        // candle's random init draws from an unseeded RNG; redraw from the config's seed
        // (kaiming-normal's variance as a uniform for convs, PyTorch's `fc` bound), so a
        // run is a function of its config.
        let mut rng = StdRng::seed_from_u64(cfg.backbone_train.seed);
        for (name, var) in sorted_vars(&varmap)? {
            let dims = var.dims().to_vec();
            let bound = match dims.as_slice() {
                [cout, _, kh, kw] => (3.0 * 2.0 / (cout * kh * kw) as f64).sqrt(),
                _ if name.starts_with("fc.") => bound,
                _ => continue,
            };
            var.set(&uniform(&mut rng, &dims, bound, dev)?)?;
        }
        let vars: Vec<(String, Var)> = sorted_vars(&varmap)?
            .into_iter()
            .filter(|(k, _)| !is_running_stat(k))
            .collect();
        let opt = Adam::new(
            vars,
            AdamConfig::adamw(cfg.backbone_train.lr, cfg.backbone_train.weight_decay),
        );
        Ok(Self {
            cfg,
            model,
            head,
            varmap,
            opt,
            train,
            step: 0,
            losses: Vec::new(),
        })
    }

    pub fn steps_per_epoch(&self) -> usize {
        (self.train.n / self.cfg.backbone_train.batch_size).max(1)
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.cfg.backbone_train.epochs
    }

    /// Rows of 0-based step `step`: epoch `e`'s seeded permutation, sliced.
    fn rows(&self, step: usize) -> Vec<usize> {
        let spe = self.steps_per_epoch();
        let (e, s) = (step / spe, step % spe);
        let mut order: Vec<usize> = (0..self.train.n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            self.cfg.backbone_train.seed.wrapping_mul(1_000_003) + e as u64,
        ));
        let b = self.cfg.backbone_train.batch_size.min(self.train.n);
        order[s * b..(s + 1) * b].to_vec()
    }

    /// One AdamW step at the cosine-scheduled lr, then the running statistics' update.
    pub fn train_step(&mut self) -> anyhow::Result<f64> {
        let t = &self.cfg.backbone_train;
        let total = self.total_steps().max(1) as f64;
        self.opt.cfg.lr =
            t.lr * 0.5 * (1.0 + (std::f64::consts::PI * self.step as f64 / total).cos());
        let rows = self.rows(self.step);
        let dev = self.head.get("fc.weight")?.device().clone();
        let x = vision::to_tensor(&self.train, &rows, &dev)?;
        let y = vision::label_tensor(&self.train, &rows, &dev)?;
        let (logits, stats) = self.model.classify_batch_norm(&self.head, &x)?;
        let loss = cross_entropy(&logits, &y)?;
        let v = loss.to_scalar::<f32>()? as f64;
        if !v.is_finite() {
            bail!("backbone training loss is {v} at step {}", self.step + 1);
        }
        self.opt.step(&loss.backward()?)?;
        let m = t.bn_momentum;
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| anyhow!("var map lock"))?;
        for s in stats {
            for (suffix, batch) in [("running_mean", &s.mean), ("running_var", &s.var)] {
                let key = format!("{}.{suffix}", s.name);
                let var = data
                    .get(&key)
                    .ok_or_else(|| anyhow!("no BatchNorm statistic `{key}`"))?;
                var.set(&((var.as_tensor() * (1.0 - m))? + (batch * m)?)?)?;
            }
        }
        self.step += 1;
        Ok(v)
    }

    fn config_table(&self) -> anyhow::Result<toml::Table> {
        let mut t = toml::Table::new();
        t.insert(
            "architecture".into(),
            toml::Value::try_from(&self.cfg.architecture.backbone)?,
        );
        t.insert(
            "backbone_train".into(),
            toml::Value::try_from(&self.cfg.backbone_train)?,
        );
        Ok(t)
    }

    /// `stem.{safetensors,toml}`: weights, running statistics and optimizer moments.
    pub fn save(&self, stem: &Path) -> anyhow::Result<()> {
        let mut tensors: Vec<(String, Tensor)> = sorted_vars(&self.varmap)?
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().clone()))
            .collect();
        tensors.extend(self.opt.state_tensors("optim.")?);
        let mut state = toml::Table::new();
        state.insert("step".into(), (self.step as i64).into());
        state.insert("losses".into(), toml::Value::try_from(&self.losses)?);
        checkpoint::save(
            stem,
            BACKBONE_CHECKPOINT_KIND,
            self.config_table()?,
            state,
            &tensors,
        )
    }

    /// Continues from [`BackboneTrainer::save`]'s checkpoint.
    pub fn resume(&mut self, stem: &Path) -> anyhow::Result<()> {
        let dev = self.head.get("fc.weight")?.device().clone();
        let l = checkpoint::load(stem, BACKBONE_CHECKPOINT_KIND, &dev)?;
        let diff = checkpoint::config_diff(&l.header.config, &self.config_table()?);
        if !diff.is_empty() {
            bail!(
                "{} was trained with another config; differing keys: {}",
                stem.display(),
                diff.join(", ")
            );
        }
        for (k, v) in sorted_vars(&self.varmap)? {
            let t = l
                .tensors
                .get(&k)
                .ok_or_else(|| anyhow!("{}: tensor `{k}` is missing", stem.display()))?;
            v.set(t)
                .with_context(|| format!("{}: tensor `{k}`", stem.display()))?;
        }
        self.opt.load_state("optim.", &l.tensors)?;
        let st = &l.header.state;
        self.step = st.get("step").and_then(|v| v.as_integer()).unwrap_or(0) as usize;
        self.losses = st
            .get("losses")
            .cloned()
            .map(|h| h.try_into())
            .transpose()
            .with_context(|| format!("{}: checkpoint losses", stem.display()))?
            .unwrap_or_default();
        Ok(())
    }

    /// Trains to the configured epochs (or `stop_after` more steps), writing `dir/last`
    /// every `checkpoint_every` steps and at the end.
    pub fn fit(
        &mut self,
        dir: &Path,
        stop_after: Option<usize>,
        progress: bool,
    ) -> anyhow::Result<()> {
        let total = self.total_steps();
        let until = stop_after.map_or(total, |s| (self.step + s).min(total));
        let pb = if progress {
            let pb = ProgressBar::new(total as u64);
            pb.set_style(
                ProgressStyle::with_template(
                    "backbone [{bar:30}] {pos}/{len} steps {elapsed} eta {eta} {msg}",
                )
                .map_err(|e| anyhow!("{e}"))?,
            );
            pb.set_position(self.step as u64);
            Some(pb)
        } else {
            None
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let every = self.cfg.backbone_train.checkpoint_every.max(1);
        let (mut acc, mut n) = (0.0, 0usize);
        while self.step < until {
            acc += self.train_step()?;
            n += 1;
            if let Some(pb) = &pb {
                pb.set_position(self.step as u64);
            }
            if self.step.is_multiple_of(every) || self.step == until {
                let mean = acc / n.max(1) as f64;
                self.losses.push((self.step, mean));
                (acc, n) = (0.0, 0);
                if let Some(pb) = &pb {
                    pb.set_message(format!("loss {mean:.4}"));
                }
                tracing::info!(step = self.step, loss = mean, "backbone checkpoint");
                self.save(&dir.join("last"))?;
            }
        }
        if let Some(pb) = pb {
            pb.finish();
        }
        Ok(())
    }

    /// The backbone and `fc` as torchvision names an f16 safetensors at `path`
    /// (atomically), running statistics included.
    pub fn export(&self, path: &Path) -> anyhow::Result<()> {
        let tensors: Vec<(String, Tensor)> = sorted_vars(&self.varmap)?
            .into_iter()
            .map(|(k, v)| Ok((k, v.as_tensor().to_dtype(DType::F16)?)))
            .collect::<candle_core::Result<_>>()?;
        let bytes = safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), None)?;
        hyper_core::io::atomic_write(path, &bytes)
    }
}

fn sorted_vars(vm: &VarMap) -> anyhow::Result<Vec<(String, Var)>> {
    let data = vm.data().lock().map_err(|_| anyhow!("var map lock"))?;
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

/// The exported backbone read back as a frozen model (BatchNorm in eval mode) with its
/// `fc`, scored on a prepared test set: the accuracy the checkpoint README reports.
pub fn evaluate_exported(
    path: &Path,
    cfg: &CvConfig,
    test: &ImageSet,
    dev: &Device,
) -> anyhow::Result<TopK> {
    let model = ResNet::load(
        path,
        cfg.architecture.backbone.resnet()?,
        LoraConfig::none(),
        dev,
    )?;
    let head = load_fc(path, dev)?;
    vision::evaluate(&model, &head, test)
}

/// `fc.weight`/`fc.bias` of a backbone file (f32).
pub fn load_fc(path: &Path, dev: &Device) -> anyhow::Result<ParamMap> {
    let all = candle_core::safetensors::load(path, dev)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut head = ParamMap::new();
    for k in ["fc.weight", "fc.bias"] {
        let t = all
            .get(k)
            .ok_or_else(|| anyhow!("{}: no `{k}`", path.display()))?;
        head.insert(k, t.to_dtype(DType::F32)?);
    }
    Ok(head)
}

/// Runs `backbone_train` from `cfg`: loads and prepares the data, trains (resuming from
/// `out/last` when asked), exports `cfg.architecture.backbone_weights` and scores it.
pub fn pretrain_backbone(
    cfg: CvConfig,
    out: &Path,
    resume: bool,
    stop_after: Option<usize>,
) -> anyhow::Result<Option<(TopK, f64)>> {
    let dev = Device::Cpu;
    let t0 = Instant::now();
    let (train, test) = cfg.backbone_train.dataset.load()?;
    let mut train = vision::prepare(&train, &cfg.architecture.backbone)?;
    let cap = cfg.backbone_train.train_images;
    if cap > 0 && cap < train.n {
        let mut rows: Vec<usize> = (0..train.n).collect();
        rows.shuffle(&mut StdRng::seed_from_u64(cfg.backbone_train.seed));
        train = vision::subset(&train, &rows[..cap]);
    }
    let test = vision::prepare(&test, &cfg.architecture.backbone)?;
    let mut tr = BackboneTrainer::new(cfg, train, &dev)?;
    let last = out.join("last");
    if resume && last.with_extension("toml").exists() {
        tr.resume(&last)
            .with_context(|| format!("resuming from {}", last.display()))?;
        eprintln!("resumed at step {}", tr.step);
    }
    eprintln!(
        "backbone {} (width {}): {} training images, {} steps of batch {}",
        tr.cfg.architecture.backbone.arch,
        tr.cfg.architecture.backbone.width,
        tr.train.n,
        tr.total_steps(),
        tr.cfg.backbone_train.batch_size
    );
    tr.fit(out, stop_after, true)?;
    if tr.step < tr.total_steps() {
        eprintln!(
            "stopped at step {} of {}; `--resume` continues",
            tr.step,
            tr.total_steps()
        );
        return Ok(None);
    }
    let path = tr.cfg.architecture.backbone_path();
    tr.export(&path)?;
    let acc = evaluate_exported(&path, &tr.cfg, &test, &dev)?;
    Ok(Some((acc, t0.elapsed().as_secs_f64())))
}
