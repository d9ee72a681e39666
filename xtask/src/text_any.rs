//! The text-any experiment. `cargo xtask pretrain text-any [--config F.toml]` meta-trains
//! the data-conditioned text generator (`hyper_train::text_any`) into
//! checkpoints/<config stem>/; `cargo xtask reproduce text-unseen [--config F.toml]` scores
//! GLUE classification tasks as a user's own text CSV (`hyper_train::text_unseen`) and
//! writes results/text-unseen.{json,md}.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use hyper_infer::text::TextGenerator;
use hyper_train::text_unseen::{reproduce_text_unseen, TextUnseenConfig};

pub fn reproduce(a: crate::reproduce::Args) -> Result<()> {
    let cfg: TextUnseenConfig = match a.experiment.config.as_ref() {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => TextUnseenConfig::default(),
    };
    cfg.glue_tasks()?;
    let ck = a
        .checkpoint
        .clone()
        .unwrap_or_else(|| hyper_infer::checkpoint_dir("nlp").join("best"));
    let gen = TextGenerator::load(&ck, &datasets::paths::minilm_dir()?, &Device::Cpu)
        .with_context(|| format!("loading NLP generator {}", ck.display()))?;
    let machine = crate::reproduce::machine();
    let t0 = Instant::now();
    let progress = |s: &str| eprintln!("[{:>6.0}s] {s}", t0.elapsed().as_secs_f64());
    let r = reproduce_text_unseen(&cfg, &gen, &progress)?;
    let command = crate::reproduce::with_checkpoint(
        &crate::reproduce::command_line(
            "cargo xtask reproduce text-unseen",
            a.experiment.config.as_deref(),
        ),
        a.checkpoint.as_deref(),
    );
    let report = serde_json::json!({
        "command": command,
        "machine": machine,
        "candle_version": crate::seeds::candle_version(),
        "git_commit": crate::seeds::git_commit(),
        "checkpoint": ck.display().to_string(),
        "wall_secs": t0.elapsed().as_secs_f64(),
        "checks": r.checks(),
        "report": r,
    });
    let stem = a
        .experiment
        .config
        .as_deref()
        .and_then(|p| p.file_stem())
        .map_or("text-unseen".into(), |s| s.to_string_lossy().into_owned());
    crate::results::write(&stem, &report, &r.markdown(&command, &machine))
}

pub fn pretrain(a: crate::pretrain::Args) -> Result<()> {
    let (path, stem) = crate::pretrain::resolve_config(a.experiment.config.as_deref(), "text-any");
    let mut cfg = hyper_train::text_any::TextAnyConfig::load(&path)?;
    if let Some(m) = a.meta_grad {
        cfg.train.meta_grad = m.into();
    }
    if let Some(s) = a.epochs {
        cfg.train.steps = s;
    }
    let out = a.out_dir(&stem)?;
    let t0 = Instant::now();
    let progress = |s: &str| eprintln!("[{:>6.0}s] {s}", t0.elapsed().as_secs_f64());
    let mut tr = hyper_train::text_any::trainer(cfg, &datasets::paths::minilm_dir()?, &progress)?;
    let names: Vec<String> = tr.data.tasks.iter().map(|t| t.name.clone()).collect();
    eprintln!(
        "{} derived tasks ({} training rows): {}",
        names.len(),
        tr.data.tasks.iter().map(|t| t.train.len()).sum::<usize>(),
        names.join(", ")
    );
    crate::nlp::fit_lora(&mut tr, &out, a.resume, a.stop_after, t0)
}
