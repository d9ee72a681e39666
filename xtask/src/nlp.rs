//! `cargo xtask pretrain nlp [--config configs/nlp.toml] [--resume]`: Algorithm-1
//! meta-training of the LoRA generator for MiniLM on six GLUE tasks.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use hyper_train::nlp::experiment::NlpReport;
use hyper_train::nlp::{trainer_from_config, NlpConfig};

use crate::pretrain::Args;

pub fn pretrain(a: Args) -> Result<()> {
    let (path, stem) = crate::pretrain::resolve_config(a.experiment.config.as_deref(), "nlp");
    let mut cfg = NlpConfig::load(&path)?;
    if let Some(m) = a.meta_grad {
        cfg.train.meta_grad = m.into();
    }
    if let Some(s) = a.epochs {
        cfg.train.steps = s;
    }
    let out = a.out_dir(&stem)?;
    train(cfg, &out, a.init.as_deref(), a.resume, a.stop_after)
}

/// Meta-trains `cfg`'s generator into `out` (`best`, `last`), its weights first taken
/// from the checkpoint `init` when given, continuing from `out/last` when `resume` and
/// it exists: `pretrain nlp` and each seed of `reproduce nlp --seeds`.
pub fn train(
    cfg: NlpConfig,
    out: &Path,
    init: Option<&Path>,
    resume: bool,
    stop_after: Option<usize>,
) -> Result<()> {
    let dev = Device::Cpu;
    let t0 = Instant::now();
    let glue_root = datasets::glue::GlueTask::default_root();
    let mut tr = trainer_from_config(cfg, &datasets::paths::minilm_dir()?, &glue_root, &dev)?;
    eprintln!(
        "loaded {} tasks ({} training examples, {} requirements) in {:.1}s; meta-grad = {}",
        tr.data.tasks.len(),
        tr.data.tasks.iter().map(|t| t.train.len()).sum::<usize>(),
        tr.data
            .tasks
            .iter()
            .map(|t| t.requirements.len())
            .sum::<usize>(),
        t0.elapsed().as_secs_f64(),
        tr.cfg.train.meta_grad
    );
    if let Some(init) = init {
        let l = hyper_core::checkpoint::load(init, hyper_infer::text::NLP_CHECKPOINT_KIND, &dev)?;
        tr.gen
            .load_state(&l.tensors)
            .with_context(|| format!("initialising the generator from {}", init.display()))?;
        eprintln!("generator initialised from {}", init.display());
    }
    fit_lora(&mut tr, out, resume, stop_after, t0)
}

/// Resumes `tr` from `out/last` when asked, trains it (Algorithm 1) and reports: the
/// shared tail of `pretrain nlp` and `pretrain cv`.
pub fn fit_lora<C, T>(
    tr: &mut hyper_train::lora_meta::LoraMetaTrainer<C, T>,
    out: &std::path::Path,
    resume: bool,
    stop_after: Option<usize>,
    t0: Instant,
) -> Result<()>
where
    C: hyper_train::lora_meta::TrainerConfig,
    T: hyper_train::lora_meta::LoraTasks,
{
    let last = out.join("last");
    if resume && last.with_extension("toml").exists() {
        tr.resume(&last)
            .with_context(|| format!("resuming from {}", last.display()))?;
        eprintln!("resumed at step {}", tr.step);
    }
    eprintln!(
        "generator: {} parameters for {} adapted modules; {} steps of batch {}; checkpoints in {}",
        tr.gen.num_params(),
        tr.gen.target().slots.len(),
        tr.cfg.train().steps,
        tr.cfg.train().batch_size,
        out.display()
    );
    tr.fit(out, stop_after, true)?;
    eprintln!(
        "done: step {}, best val loss {:.4} at step {}, {:.1}s this invocation",
        tr.step,
        tr.best_val_loss,
        tr.best_step,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cargo xtask reproduce nlp [--config F] [--checkpoint STEM]`: results/nlp.{json,md}.
pub fn reproduce(a: crate::reproduce::Args) -> Result<()> {
    let (path, stem) = crate::pretrain::resolve_config(a.experiment.config.as_deref(), "nlp");
    let cfg = NlpConfig::load(&path)?;
    if let Some(n) = a.seeds {
        let args = crate::lora_seeds::SeedsArgs {
            stem: &stem,
            n,
            config_arg: a.experiment.config.as_deref(),
            checkpoint: a.checkpoint.as_deref(),
        };
        return crate::lora_seeds::run_nlp(cfg, &path, &args);
    }
    let command =
        crate::reproduce::with_checkpoint("cargo xtask reproduce nlp", a.checkpoint.as_deref());
    let ck = a
        .checkpoint
        .unwrap_or_else(|| hyper_infer::checkpoint_dir(&stem).join("best"));
    let dev = Device::Cpu;
    let load_avg = crate::reproduce::machine();
    let t0 = Instant::now();
    let r = reproduction(&cfg, &ck, t0)?;
    let header =
        hyper_core::checkpoint::load(&ck, hyper_infer::text::NLP_CHECKPOINT_KIND, &dev)?.header;
    let mut report = crate::results::provenance(
        &command,
        a.experiment.config.as_deref(),
        &path,
        &ck,
        &header,
        load_avg,
        t0.elapsed().as_secs_f64(),
    );
    report.insert("baseline".into(), serde_json::to_value(&cfg.baseline)?);
    report.insert("report".into(), serde_json::to_value(&r)?);
    let report = serde_json::Value::Object(report);
    let md = markdown(&report, &r, &cfg);
    crate::results::write(&stem, &report, &md)
}

/// The Table-1 reproduction of `cfg` with the generator checkpoint `ck` (progress lines
/// timed from `t0`): `reproduce nlp` and each seed of `reproduce nlp --seeds`.
pub fn reproduction(cfg: &NlpConfig, ck: &Path, t0: Instant) -> Result<NlpReport> {
    use hyper_infer::text::{TextGenerator, TextTokenizer};
    use hyper_train::nlp::experiment::reproduce_nlp;
    use hyper_train::nlp::{load_tasks, TextTask};

    let dev = Device::Cpu;
    let minilm = datasets::paths::minilm_dir()?;
    let gen = TextGenerator::load(ck, &minilm, &dev).with_context(|| {
        format!(
            "loading generator {} (run `cargo xtask pretrain nlp` first)",
            ck.display()
        )
    })?;
    let tokenizer = TextTokenizer::load(&minilm, gen.architecture.max_len)?;
    let glue_root = datasets::glue::GlueTask::default_root();
    let tasks = load_tasks(cfg, &tokenizer, &glue_root)?;
    let zs = TextTask::load(
        cfg.data.zero_shot_task()?,
        &glue_root,
        &tokenizer,
        0,
        0,
        cfg.data.requirements_per_task,
        cfg.train.seed,
    )?;
    let progress = |s: &str| eprintln!("[{:>6.0}s] {s}", t0.elapsed().as_secs_f64());
    reproduce_nlp(cfg, &gen, &tasks, &zs, &minilm, &progress)
}

fn markdown(j: &serde_json::Value, r: &NlpReport, cfg: &NlpConfig) -> String {
    let mut out = crate::results::markdown_header("NLP", j);
    let finetune_e2e = r
        .methods
        .iter()
        .find(|m| m.method == "Finetune")
        .map_or(f64::NAN, |m| m.e2e_secs);
    let heads: Vec<String> = r
        .methods
        .first()
        .map(|m| {
            m.per_task
                .iter()
                .map(|o| {
                    let names: Vec<String> = o.metrics.iter().map(|(k, _)| k.clone()).collect();
                    format!("{} ({})", o.task, names.join("/"))
                })
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&format!(
        "| Method | {} | GLUE score | #Epoch | E2E (s) | Relative efficiency |\n|---|{}---|---|---|---|\n",
        heads.join(" | "),
        "---|".repeat(heads.len())
    ));
    let pct = |v: f64| format!("{:.1}", 100.0 * v);
    for m in &r.methods {
        let cells: Vec<String> = m
            .per_task
            .iter()
            .map(|o| {
                o.metrics
                    .iter()
                    .map(|(_, v)| pct(*v))
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        out.push_str(&crate::results::method_row(
            &m.method,
            &cells,
            pct(m.glue_score),
            m.epochs,
            m.e2e_secs,
            finetune_e2e,
        ));
    }
    let z = &r.zero_shot;
    out.push_str(&format!(
        "\n**Zero-shot {} ({} dev examples, never trained on):** ModelGPT {} acc, {}'s adapter {} acc, majority rate {}.\n\n",
        z.task,
        z.examples,
        pct(z.modelgpt),
        z.nearest_task,
        pct(z.nearest_task_adapter),
        pct(z.majority_rate)
    ));
    let b = &cfg.baseline;
    out.push_str(&format!(
        "- Scale (CPU, smaller than the paper): target all-MiniLM-L6-v2 (6 layers, 384 wide; the paper uses DistilBERT), LoRA r={} alpha={} on query/value, max {} tokens per example. LoRA and Finetune: {} epoch(s) over the first {} training examples per task ({}), batch {}, AdamW lr {} (LoRA) / {} (Finetune), trained from PEFT's / the pretrained init; ModelGPT-F: {} epoch(s) of {} at lr {}. GLUE dev is scored whole.\n",
        cfg.architecture.lora.r,
        cfg.architecture.lora.alpha,
        cfg.architecture.max_len,
        b.epochs,
        b.train_cap,
        r.train_examples_per_task.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
        b.batch_size,
        b.lora_lr,
        b.finetune_lr,
        b.finetune_f_epochs,
        b.finetune_f_mode.describe(),
        b.finetune_f_lr(),
    ));
    out.push_str(&format!(
        "- Generator: meta-trained with Algorithm 1 for {} steps of batch {} over ≤{} examples per task (`cargo xtask pretrain nlp`).\n",
        cfg.train.steps, cfg.train.batch_size, cfg.data.train_cap
    ));
    out.push_str("- GLUE score: mean over the trained tasks of each task's metrics averaged (MRPC: F1 and accuracy; STS-B: Pearson and Spearman). Metrics ×100.\n");
    out.push_str(&format!(
        "- E2E: seconds from the task's files on disk to a usable model, summed over the tasks. LoRA, Finetune and ModelGPT-F: reading and tokenizing the task (train pool and dev) + training. ModelGPT: reading the training split, writing the requirement from it, encoding it and one generator pass (nothing is tokenized), plus one generator load ({:.2} s) for the table. Relative efficiency = Finetune E2E ÷ method E2E.\n",
        r.generator_load_secs
    ));
    out.push_str("- Control: each task gets the next task's requirement (its own label names), 0 epochs. Majority / mean: the training pool's majority class (STS-B: mean score), whose MCC and correlations are 0 by definition.\n");
    out.push_str(&format!("\nZero-shot requirement (written from {} dev rows, labels unused): {}\n\nRequirements used:\n\n", z.task, z.requirement));
    for (t, q) in r.tasks.iter().zip(&r.requirements) {
        out.push_str(&format!("- {t}: {q}\n"));
    }
    out
}
