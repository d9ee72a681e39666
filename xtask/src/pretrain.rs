//! `cargo xtask pretrain tabular [--config configs/tabular.toml] [--resume]`: Algorithm-1
//! meta-training of the tabular Parameter Generator, checkpointing every epoch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use hyper_train::config::MetaGrad;
use hyper_train::encoder::TrainableEncoder;
use hyper_train::meta::embed_tasks;
use hyper_train::{MetaTrainer, TabularConfig, TabularTask};

/// Which experiment (`pretrain tabular|nlp|cv`, `reproduce ...`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExperimentName {
    Tabular,
    /// The data-conditioned generator for any table (`pretrain tabular-any`).
    TabularAny,
    /// Every UCI set scored as unseen (`reproduce tabular-unseen`).
    TabularUnseen,
    /// GLUE classification tasks scored as a user's text CSV (`reproduce text-unseen`).
    TextUnseen,
    /// The data-conditioned text generator (`pretrain text-any`).
    TextAny,
    Nlp,
    Cv,
    /// The frozen ResNet backbone the CV generator adapts (`pretrain backbone`).
    Backbone,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MetaGradArg {
    Delta,
    Direct,
}

impl From<MetaGradArg> for MetaGrad {
    fn from(m: MetaGradArg) -> Self {
        match m {
            MetaGradArg::Delta => MetaGrad::Delta,
            MetaGradArg::Direct => MetaGrad::Direct,
        }
    }
}

impl Args {
    /// The checkpoint directory (`--out`, else `checkpoints/<stem>`), refused when it
    /// already holds a run and `--resume` was not given.
    pub fn out_dir(&self, stem: &str) -> Result<PathBuf> {
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| hyper_infer::checkpoint_dir(stem));
        if !self.resume && out.join("last.toml").exists() {
            bail!(
                "{} already holds a run; pass --resume to continue it, or --out <dir> for a new one",
                out.display()
            );
        }
        Ok(out)
    }
}

/// Which experiment to run; shared by `pretrain` and `reproduce`.
#[derive(Debug, clap::Args)]
pub struct Experiment {
    pub name: ExperimentName,
    /// Experiment config (default: configs/tabular.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl Experiment {
    /// Fails with `unsupported` unless the modality is tabular, then pins ops to one
    /// thread and loads the config. Returns the config, its path and its stem.
    pub fn load_tabular(&self, unsupported: &str) -> Result<(TabularConfig, PathBuf, String)> {
        if !matches!(self.name, ExperimentName::Tabular) {
            bail!("{unsupported}");
        }
        single_thread_ops();
        let (cfg_path, stem) = resolve_config(self.config.as_deref(), "tabular");
        let cfg = TabularConfig::load(&cfg_path)?;
        Ok((cfg, cfg_path, stem))
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub experiment: Experiment,
    /// Continue from `<out>/last` instead of starting over.
    #[arg(long)]
    pub resume: bool,
    /// Checkpoint directory (default: checkpoints/<config stem>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override `train.meta_grad` (δ surrogate = paper; direct = ablation).
    #[arg(long, value_enum)]
    pub meta_grad: Option<MetaGradArg>,
    /// Override `train.epochs` (for `tabular-any` and `nlp`: `train.steps`).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// NLP: start the generator from this checkpoint's weights (a fresh optimizer and
    /// step count; the new run's own config applies), e.g. to continue at a lower lr.
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// Stop after this many epochs (`tabular-any`, `nlp`: steps) in this invocation (then
    /// `--resume` continues).
    #[arg(long)]
    pub stop_after: Option<usize>,
}

/// Tiny MLPs: one thread per op is ~15x faster than two (DESIGN.md §10).
pub fn single_thread_ops() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Set before any candle op or rayon pool exists; xtask is single-threaded here.
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

pub fn root() -> PathBuf {
    datasets::paths::workspace_root()
}

/// The `--config` given, else `configs/<experiment>.toml`, and the file's stem (which
/// names the checkpoint directory and the results files).
pub fn resolve_config(config: Option<&Path>, experiment: &str) -> (PathBuf, String) {
    let p = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root().join(format!("configs/{experiment}.toml")));
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| experiment.into());
    (p, stem)
}

/// Loads every configured dataset as a meta-training task.
pub fn load_tasks(cfg: &TabularConfig, dev: &Device) -> Result<Vec<TabularTask>> {
    cfg.datasets
        .iter()
        .map(|d| {
            let n_local = cfg.train.n_local_updates.get(d).copied().unwrap_or(1);
            TabularTask::load(
                d,
                cfg.train.requirements_per_task,
                n_local,
                cfg.train.seed,
                dev,
            )
        })
        .collect()
}

pub fn run(a: Args) -> Result<()> {
    if a.init.is_some() && !matches!(a.experiment.name, ExperimentName::Nlp) {
        bail!("--init is implemented for `pretrain nlp` only");
    }
    match a.experiment.name {
        ExperimentName::TabularAny => return crate::any_table::pretrain(a),
        ExperimentName::Nlp => return crate::nlp::pretrain(a),
        ExperimentName::TextAny => return crate::text_any::pretrain(a),
        ExperimentName::Backbone => return crate::cv::pretrain_backbone(a),
        ExperimentName::Cv => return crate::cv::pretrain(a),
        _ => {}
    }
    let (mut cfg, _, stem) = a
        .experiment
        .load_tabular("this experiment has no pretraining")?;
    if let Some(m) = a.meta_grad {
        cfg.train.meta_grad = m.into();
    }
    if let Some(e) = a.epochs {
        cfg.train.epochs = e;
    }
    let out = a.out_dir(&stem)?;
    train_tabular(cfg, &out, a.resume, a.stop_after)
}

/// Algorithm-1 meta-training of `cfg` into `out` (`best`, `last`); continues from
/// `out/last` when `resume` and it exists.
pub fn train_tabular(
    cfg: TabularConfig,
    out: &Path,
    resume: bool,
    stop_after: Option<usize>,
) -> Result<()> {
    let (a_resume, a_stop_after) = (resume, stop_after);
    let last = out.join("last");
    let dev = Device::Cpu;
    let t0 = Instant::now();
    let tasks = load_tasks(&cfg, &dev)?;
    let minilm = datasets::paths::minilm_dir()?;
    let encoder = target_models::TextEncoder::load(&minilm, &dev)?;
    let embs = embed_tasks(&encoder, &tasks)?;
    let train_encoder = cfg.architecture.generator.train_encoder;
    eprintln!(
        "loaded {} tasks, {} requirements, encoder in {:.1}s; meta-grad = {}",
        tasks.len(),
        tasks.iter().map(|t| t.requirements.len()).sum::<usize>(),
        t0.elapsed().as_secs_f64(),
        cfg.train.meta_grad
    );
    let mut tr = MetaTrainer::new(cfg, tasks, embs, &dev)?;
    if train_encoder {
        let enc = TrainableEncoder::load(&minilm, &dev)?;
        let n: usize = enc
            .trainable_vars()
            .iter()
            .map(|(_, v)| v.elem_count())
            .sum();
        tr = tr.with_trainable_encoder(enc)?;
        eprintln!(
            "text encoder: trainable (generator.train_encoder = true), {n} parameters; \
             every step re-encodes its requirement, so expect a much slower epoch"
        );
    }
    if a_resume && last.with_extension("toml").exists() {
        tr.resume(&last)
            .with_context(|| format!("resuming from {}", last.display()))?;
        eprintln!("resumed at epoch {} (step {})", tr.epoch, tr.step);
    }
    eprintln!(
        "generator: {} parameters; {} steps per epoch; checkpoints in {}",
        tr.gen.num_params(),
        tr.steps_per_epoch(),
        out.display()
    );
    tr.fit(out, a_stop_after, true)?;
    eprintln!(
        "done: {} epochs, best val loss {:.4} at epoch {}, {:.1}s this invocation",
        tr.epoch,
        tr.best_val_loss,
        tr.best_epoch,
        t0.elapsed().as_secs_f64()
    );
    if let Some(h) = tr.history.iter().find(|h| h.epoch == tr.best_epoch) {
        eprintln!("best epoch: val acc {:.3}", h.val_acc);
    }
    Ok(())
}
