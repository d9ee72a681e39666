//! `cargo xtask pretrain tabular-any` (meta-train the data-conditioned generator on the
//! synthetic prior + meta-training-only tables) and `cargo xtask reproduce
//! tabular-unseen` (the ten UCI sets scored as unseen; `results/tabular-unseen.{json,md}`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use hyper_infer::any_table::{default_any_table_checkpoint, AnyTableGenerator};
use hyper_train::tabular_any::{AnyTableConfig, AnyTrainer};
use hyper_train::unseen::{mean, reproduce_unseen, UnseenConfig, UnseenReport};
use serde::Serialize;
use target_models::TextEncoder;

use crate::pretrain::{root, single_thread_ops};

pub fn pretrain(a: crate::pretrain::Args) -> Result<()> {
    single_thread_ops();
    let (path, _) = crate::pretrain::resolve_config(a.experiment.config.as_deref(), "tabular-any");
    let mut cfg = AnyTableConfig::from_file(&path)?;
    if let Some(e) = a.epochs {
        cfg.train.steps = e;
    }
    let out = a.out_dir("tabular-any")?;
    train(cfg, &out, a.resume, a.stop_after)
}

/// Meta-trains the data-conditioned generator of `cfg` into `out` (`last` every
/// `checkpoint_every` steps, `generator` when all steps ran), continuing from `out/last`
/// when `resume` and it exists: `pretrain tabular-any` and each seed of `reproduce
/// tabular-unseen --seeds`.
fn train(cfg: AnyTableConfig, out: &Path, resume: bool, stop_after: Option<usize>) -> Result<()> {
    let last = out.join("last");
    let dev = Device::Cpu;
    let t0 = Instant::now();
    let encoder = TextEncoder::load(&datasets::paths::minilm_dir()?, &dev)?;
    let mut tr = AnyTrainer::new(cfg, encoder, &dev)?;
    if resume && last.with_extension("toml").exists() {
        tr.resume(&last)
            .with_context(|| format!("resuming from {}", last.display()))?;
        eprintln!("resumed at step {}", tr.step);
    }
    let n_params: usize = tr
        .generator()
        .vars()
        .iter()
        .map(|(_, v)| v.elem_count())
        .sum();
    eprintln!(
        "data-conditioned generator: {n_params} parameters; {} steps × {} episodes; checkpoints in {}",
        tr.cfg.train.steps,
        tr.cfg.train.tasks_per_step,
        out.display()
    );
    tr.fit(out, stop_after, true)?;
    if tr.step >= tr.cfg.train.steps {
        tr.save(&out.join("generator"), false)?;
        eprintln!(
            "done: {} steps; wrote {} (serving weights, no optimizer state)",
            tr.step,
            out.join("generator.safetensors").display()
        );
    }
    if let Some(h) = tr.history.last() {
        eprintln!(
            "last validation (synthetic tasks): loss {:.4}, accuracy {:.3}; {:.1}s this invocation",
            h.val_loss,
            h.val_acc,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct Report<'a> {
    command: String,
    machine: String,
    candle_version: String,
    git_commit: String,
    checkpoint: String,
    config: UnseenConfig,
    averages: Vec<(String, f64)>,
    #[serde(flatten)]
    report: &'a UnseenReport,
}

pub fn reproduce(a: crate::reproduce::Args) -> Result<()> {
    single_thread_ops();
    let cfg = match a.experiment.config.as_ref() {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => UnseenConfig::default(),
    };
    if let Some(n) = a.seeds {
        return reproduce_seeds(cfg, n, a.experiment.config.as_deref());
    }
    let ck = a.checkpoint.unwrap_or_else(default_any_table_checkpoint);
    let dev = Device::Cpu;
    let gen = AnyTableGenerator::load(&ck, &dev)?;
    let encoder = TextEncoder::load(&datasets::paths::minilm_dir()?, &dev)?;
    let machine = crate::reproduce::machine();
    let r = reproduce_unseen(&cfg, &gen, &encoder, &dev, true)?;
    let command = crate::reproduce::command_line(
        "cargo xtask reproduce tabular-unseen",
        a.experiment.config.as_deref(),
    );
    let report = Report {
        command,
        machine,
        candle_version: crate::seeds::candle_version(),
        git_commit: crate::seeds::git_commit(),
        checkpoint: ck.display().to_string(),
        averages: r
            .rows
            .iter()
            .map(|row| (row.method.clone(), row.average()))
            .collect(),
        config: cfg,
        report: &r,
    };
    crate::results::write("tabular-unseen", &report, &markdown(&report))
}

fn markdown(rep: &Report) -> String {
    let r = rep.report;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Tabular, every set unseen: test accuracy (%), mean over split seeds {:?}\n",
        r.seeds
    );
    let _ = writeln!(
        s,
        "Command: `{}`  \nMachine: {}; candle {}; commit {}  \nGenerator: `{}` — one data-conditioned generator \
         meta-trained on the synthetic prior and Orange3's titanic, zoo and brown-selected only; \
         none of the ten sets below was in its meta-training.\n",
        rep.command, rep.machine, rep.candle_version, rep.git_commit, rep.checkpoint
    );
    let _ = write!(s, "| method | #epoch |");
    for d in &r.datasets {
        let _ = write!(s, " {d} |");
    }
    let _ = writeln!(s, " average | mean seconds per set |");
    let _ = write!(s, "|---|---|");
    for _ in &r.datasets {
        let _ = write!(s, "---|");
    }
    let _ = writeln!(s, "---|---|");
    for row in &r.rows {
        let _ = write!(s, "| {} | {} |", row.method, row.epochs);
        for c in &row.per_dataset {
            let _ = write!(s, " {:.1} |", 100.0 * c.mean_accuracy());
        }
        let secs: Vec<f64> = row.per_dataset.iter().map(|c| c.mean_secs()).collect();
        let _ = writeln!(
            s,
            " **{:.1}** | {:.3} |",
            100.0 * row.average(),
            mean(&secs)
        );
    }
    let _ = writeln!(
        s,
        "\nColumn order: largest test-accuracy spread over {} column permutations (any seed), \
         per set: {}.\n",
        rep.config.column_permutations,
        r.column_permutation_spread
            .iter()
            .map(|v| format!("{:.4}", v))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "Seconds: ModelGPT rows = requirement from the training rows (profile backend) + \
         MiniLM encoding + one generator pass; ModelGPT-F adds its finetuning (every lr \
         candidate, chosen on the validation split); baselines = their fit on the same \
         preprocessed training split. Ablation rows time the generator pass only.\n"
    );
    let _ = writeln!(
        s,
        "Requirements (first seed, written from training rows only):\n"
    );
    for q in &r.requirements {
        let _ = writeln!(s, "- {q}");
    }
    s
}

#[derive(Serialize)]
struct SeedsReport<'a> {
    command: String,
    machine: String,
    candle_version: String,
    git_commit: String,
    /// Generator (meta-training) seeds; each row cell is already a mean over `split_seeds`.
    generator_seeds: Vec<u64>,
    split_seeds: Vec<u64>,
    checkpoints: Vec<String>,
    table: &'a crate::seeds::SeedTable,
    comparisons: Vec<crate::seeds::Comparison>,
    wall_secs: f64,
}

/// `reproduce tabular-unseen --seeds N`: N data-conditioned generators (meta-training seeds
/// `train.seed + k` of configs/tabular-any.toml), each scored as in the single run (mean over
/// the split seeds of `cfg`). The first reuses the committed generator when it was trained
/// with that config; the others are meta-trained (resumable) into
/// `checkpoints/tabular-any-seeds/seed-<s>`. Writes results/tabular-unseen-seeds.{json,md}.
fn reproduce_seeds(cfg: UnseenConfig, n: usize, config_arg: Option<&Path>) -> Result<()> {
    use crate::seeds::{read_header, SeedTable};
    let t0 = Instant::now();
    let dev = Device::Cpu;
    let (gen_path, _) = crate::pretrain::resolve_config(None, "tabular-any");
    let gen_cfg = AnyTableConfig::from_file(&gen_path)?;
    let seeds = crate::seeds::seeds_of(gen_cfg.train.seed, n)?;
    let default = AnyTableConfig::default().to_table()?;
    let encoder = TextEncoder::load(&datasets::paths::minilm_dir()?, &dev)?;
    let machine = crate::reproduce::machine();
    let mut table: Option<SeedTable> = None;
    let mut checkpoints = Vec::new();
    for (k, &seed) in seeds.iter().enumerate() {
        let mut c = gen_cfg.clone();
        c.train.seed = seed;
        let want = c.to_table()?;
        let matches = |stem: &Path| -> Result<bool> {
            Ok(read_header(stem)?.is_some_and(|h| {
                crate::lora_seeds::training_diff(&h.config, &want, &default).is_empty()
            }))
        };
        let committed = default_any_table_checkpoint();
        let ck = if k == 0 && matches(&committed)? {
            committed
        } else {
            let dir = root()
                .join("checkpoints/tabular-any-seeds")
                .join(format!("seed-{seed}"));
            let ck = dir.join("generator");
            if read_header(&ck)?.is_none() {
                eprintln!(
                    "generator seed {seed}: meta-training into {}",
                    dir.display()
                );
                train(c.clone(), &dir, true, None)
                    .with_context(|| format!("meta-training generator seed {seed}"))?;
            }
            anyhow::ensure!(
                matches(&ck)?,
                "{} was trained with another config; move it away to meta-train seed {seed} anew",
                ck.display()
            );
            ck
        };
        eprintln!("generator seed {seed}: scoring {}", ck.display());
        let gen = AnyTableGenerator::load(&ck, &dev)?;
        let r = reproduce_unseen(&cfg, &gen, &encoder, &dev, true)?;
        let t = table.get_or_insert_with(|| SeedTable::new(r.datasets.clone()));
        for row in &r.rows {
            let cells = row.per_dataset.iter().map(|c| c.mean_accuracy()).collect();
            t.push(&row.method, cells, row.average());
        }
        checkpoints.push(ck.strip_prefix(root()).unwrap_or(&ck).display().to_string());
        let split_seeds = r.seeds.clone();
        let t = table.as_ref().context("no seed ran")?;
        let comparisons = t.compare_all(&[
            ("ModelGPT (unseen)", "Finetune", "ModelGPT − Finetune"),
            ("ModelGPT-F (unseen)", "Finetune", "ModelGPT-F − Finetune"),
            (
                "ModelGPT (unseen)",
                "Logistic regression",
                "ModelGPT − logistic regression",
            ),
            ("ModelGPT (unseen)", "GBDT", "ModelGPT − GBDT"),
            ("ModelGPT (unseen)", "Majority", "ModelGPT − majority"),
            (
                "ModelGPT (unseen)",
                "Ablation: wrong requirement",
                "ModelGPT − wrong requirement",
            ),
            (
                "ModelGPT (unseen)",
                "Ablation: no requirement",
                "ModelGPT − no requirement",
            ),
        ]);
        let report = SeedsReport {
            command: crate::reproduce::command_line(
                &format!("cargo xtask reproduce tabular-unseen --seeds {n}"),
                config_arg,
            ),
            machine: machine.clone(),
            candle_version: crate::seeds::candle_version(),
            git_commit: crate::seeds::git_commit(),
            generator_seeds: seeds[..=k].to_vec(),
            split_seeds,
            checkpoints: checkpoints.clone(),
            table: t,
            comparisons,
            wall_secs: t0.elapsed().as_secs_f64(),
        };
        crate::results::write("tabular-unseen-seeds", &report, &seeds_markdown(&report, n))?;
        eprintln!("({} of {n} generator seeds)", k + 1);
    }
    Ok(())
}

fn seeds_markdown(r: &SeedsReport, n: usize) -> String {
    let t = r.table;
    let mut s = String::new();
    let done = r.generator_seeds.len();
    let _ = writeln!(
        s,
        "# Tabular, every set unseen, over {done} generator seeds (`{}`)\n\n{}Test accuracy \
         (%), mean ± sample sd over n = {done} meta-training seeds {:?} of the data-conditioned \
         generator; each cell is first the mean over split seeds {:?} (so the split seeds' \
         spread is not in the ±). The baselines do not depend on the generator, so their sd \
         is 0. Machine: {}; candle {}; commit {}; {:.0} s wall.\n",
        r.command,
        match done < n {
            true => format!("**Partial: {done} of the {n} seeds asked for.** "),
            false => String::new(),
        },
        r.generator_seeds,
        r.split_seeds,
        r.machine,
        r.candle_version,
        r.git_commit,
        r.wall_secs
    );
    s.push_str(&t.markdown(Some("Average")));
    let _ = writeln!(
        s,
        "\nPaired differences of the averages (points), per generator seed and mean ± sd; \
         per-dataset columns are the mean paired difference:\n"
    );
    s.push_str(&t.comparisons_markdown(&r.comparisons));
    let _ = writeln!(s, "\nGenerators: {}", r.checkpoints.join(", "));
    s
}
