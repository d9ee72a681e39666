//! `cargo xtask pretrain backbone|cv` and `cargo xtask reproduce cv` (configs/cv.toml):
//! the frozen ResNet backbone, Algorithm-1 meta-training of its conv-LoRA generator, and
//! the paper's Table 3 at CPU scale.

use std::path::{Path, PathBuf};

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use hyper_train::cv::backbone::pretrain_backbone as train_backbone;
use hyper_train::cv::experiment::CvReport;
use hyper_train::cv::{trainer_from_config, CvConfig};

use crate::pretrain::Args;

/// `configs/cv.toml` (or the `--config` given) loaded, its path and stem.
pub fn load(config: Option<&Path>) -> Result<(CvConfig, PathBuf, String)> {
    let (path, stem) = crate::pretrain::resolve_config(config, "cv");
    Ok((CvConfig::load(&path)?, path, stem))
}

/// `pretrain backbone`: checkpoints in `checkpoints/<stem>-backbone/` (or `--out`), the
/// exported weights at `architecture.backbone_weights`.
pub fn pretrain_backbone(a: Args) -> Result<()> {
    let (mut cfg, _, stem) = load(a.experiment.config.as_deref())?;
    if let Some(e) = a.epochs {
        cfg.backbone_train.epochs = e;
    }
    let out = a.out_dir(&format!("{stem}-backbone"))?;
    let weights = cfg.architecture.backbone_path();
    if let Some((acc, secs)) = train_backbone(cfg, &out, a.resume, a.stop_after)? {
        eprintln!(
            "backbone written to {}: test top-1 {:.4}, top-3 {:.4}, top-5 {:.4}; {secs:.0}s this invocation",
            weights.display(),
            acc.top1,
            acc.top3,
            acc.top5
        );
    }
    Ok(())
}

/// `pretrain cv`: Algorithm-1 meta-training of the conv-LoRA generator into
/// `checkpoints/<stem>/` (or `--out`).
pub fn pretrain(a: Args) -> Result<()> {
    let (mut cfg, _, stem) = load(a.experiment.config.as_deref())?;
    if let Some(m) = a.meta_grad {
        cfg.train.meta_grad = m.into();
    }
    if let Some(s) = a.epochs {
        cfg.train.steps = s;
    }
    let out = a.out_dir(&stem)?;
    train(cfg, &out, a.resume, a.stop_after)
}

/// Meta-trains `cfg`'s generator into `out` (`best`, `last`), continuing from `out/last`
/// when `resume` and it exists: `pretrain cv` and each seed of `reproduce cv --seeds`.
pub fn train(cfg: CvConfig, out: &Path, resume: bool, stop_after: Option<usize>) -> Result<()> {
    let dev = Device::Cpu;
    let t0 = Instant::now();
    let mut tr = trainer_from_config(cfg, &datasets::paths::minilm_dir()?, &dev)?;
    eprintln!(
        "loaded {} domains ({} training images, {} requirements) in {:.1}s; meta-grad = {}",
        tr.data.tasks.len(),
        tr.data.tasks.iter().map(|t| t.train.n).sum::<usize>(),
        tr.data
            .tasks
            .iter()
            .map(|t| t.requirements.len())
            .sum::<usize>(),
        t0.elapsed().as_secs_f64(),
        tr.cfg.train.meta_grad
    );
    crate::nlp::fit_lora(&mut tr, out, resume, stop_after, t0)
}

/// The Table-3 reproduction of `cfg` with the generator checkpoint `ck` (progress lines
/// timed from `t0`): `reproduce cv` and each seed of `reproduce cv --seeds`.
pub fn reproduction(cfg: &CvConfig, ck: &Path, t0: Instant) -> Result<CvReport> {
    use hyper_infer::vision::ImageGenerator;
    use hyper_train::cv::experiment::reproduce_cv;
    use hyper_train::cv::meta::load_tasks;
    use hyper_train::cv::ImageTask;

    let dev = Device::Cpu;
    let gen =
        ImageGenerator::load(ck, &datasets::paths::minilm_dir()?, &dev).with_context(|| {
            format!(
                "loading generator {} (run `cargo xtask pretrain cv` first)",
                ck.display()
            )
        })?;
    let tasks = load_tasks(cfg)?;
    let d = &cfg.data;
    let zs = ImageTask::load(
        d.zero_shot,
        &cfg.architecture.backbone,
        d.train_cap,
        0,
        d.test_cap,
        d.requirements_per_task,
        cfg.train.seed,
    )?;
    let progress = |s: &str| eprintln!("[{:>6.0}s] {s}", t0.elapsed().as_secs_f64());
    reproduce_cv(cfg, &gen, &tasks, &zs, &progress)
}

/// `cargo xtask reproduce cv [--config F] [--checkpoint STEM]`: results/cv.{json,md}.
pub fn reproduce(a: crate::reproduce::Args) -> Result<()> {
    use hyper_infer::vision::CV_CHECKPOINT_KIND;

    let (cfg, path, stem) = load(a.experiment.config.as_deref())?;
    if let Some(n) = a.seeds {
        let args = crate::lora_seeds::SeedsArgs {
            stem: &stem,
            n,
            config_arg: a.experiment.config.as_deref(),
            checkpoint: a.checkpoint.as_deref(),
        };
        return crate::lora_seeds::run_cv(cfg, &args);
    }
    let command =
        crate::reproduce::with_checkpoint("cargo xtask reproduce cv", a.checkpoint.as_deref());
    let ck = a
        .checkpoint
        .unwrap_or_else(|| hyper_infer::checkpoint_dir(&stem).join("best"));
    let dev = Device::Cpu;
    let load_avg = crate::reproduce::machine();
    let t0 = Instant::now();
    let r = reproduction(&cfg, &ck, t0)?;
    let header = hyper_core::checkpoint::load(&ck, CV_CHECKPOINT_KIND, &dev)?.header;
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
    report.insert(
        "architecture".into(),
        serde_json::to_value(&cfg.architecture)?,
    );
    report.insert("report".into(), serde_json::to_value(&r)?);
    let report = serde_json::Value::Object(report);
    let md = markdown(&report, &r, &cfg);
    crate::results::write(&stem, &report, &md)
}

fn markdown(j: &serde_json::Value, r: &CvReport, cfg: &CvConfig) -> String {
    let mut out = crate::results::markdown_header("CV", j);
    let finetune_e2e = r
        .methods
        .iter()
        .find(|m| m.method == "Finetune")
        .map_or(f64::NAN, |m| m.e2e_secs);
    let pct = |v: f64| format!("{:.1}", 100.0 * v);
    let heads: Vec<String> = r
        .domains
        .iter()
        .map(|d| format!("{d} Acc / @3 / @5"))
        .collect();
    out.push_str(&format!(
        "| Method | {} | Avg top-1 | #Epoch | E2E (s) | Relative efficiency |\n|---|{}---|---|---|---|\n",
        heads.join(" | "),
        "---|".repeat(heads.len())
    ));
    for m in &r.methods {
        let cells: Vec<String> = m
            .per_domain
            .iter()
            .map(|o| {
                format!(
                    "{} / {} / {}",
                    pct(o.acc.top1),
                    pct(o.acc.top3),
                    pct(o.acc.top5)
                )
            })
            .collect();
        out.push_str(&crate::results::method_row(
            &m.method,
            &cells,
            pct(m.avg_top1),
            m.epochs,
            m.e2e_secs,
            finetune_e2e,
        ));
    }
    let z = &r.zero_shot;
    let k = |t: &hyper_infer::vision::TopK| {
        format!("{} / {} / {}", pct(t.top1), pct(t.top3), pct(t.top5))
    };
    let mut adapter_rows = String::new();
    if z.trained_adapters.is_empty() {
        adapter_rows = format!(
            "| {}'s adapter applied unchanged | {} | |\n",
            z.nearest_domain,
            k(&z.nearest_adapter)
        );
    }
    for (d, acc) in &z.trained_adapters {
        adapter_rows.push_str(&format!(
            "| {d}'s adapter applied unchanged | {} | |\n",
            k(acc)
        ));
    }
    out.push_str(&format!(
        "\n**Zero-shot {} ({} test images; the generator never saw its images), Acc / @3 / @5:**\n\n| Adapter | Acc / @3 / @5 | E2E (s) |\n|---|---|---|\n| ModelGPT (requirement written from {}'s data) | {} | {:.1} |\n{}| Majority | {} | |\n| LoRA trained on {} (upper bound) | {} | {:.1} |\n| Finetune trained on {} (upper bound) | {} | {:.1} |\n\n",
        z.domain,
        z.test_images,
        z.domain,
        k(&z.modelgpt),
        z.modelgpt_secs,
        adapter_rows,
        k(&z.majority),
        z.domain,
        k(&z.lora_on_domain),
        z.lora_on_domain_secs,
        z.domain,
        k(&z.finetune_on_domain),
        z.finetune_on_domain_secs,
    ));
    let a = &cfg.architecture;
    let b = &cfg.baseline;
    out.push_str(&format!(
        "- Scale (CPU, smaller than the paper, an analogue of its Office-31 experiment): backbone {} at width {} (torchvision: 64) and {}×{} input, pretrained by this project on Fashion-MNIST (`cargo xtask pretrain backbone`; no ImageNet ResNet-50 is obtainable here) and frozen with its BatchNorm statistics. Domains: {} (trained), {} (zero-shot) in place of Amazon/DSLR/Webcam. LoRA r={} alpha={} on `{:?}`.\n",
        a.backbone.arch,
        a.backbone.width,
        a.backbone.image_size,
        a.backbone.image_size,
        r.domains.join(", "),
        r.zero_shot.domain,
        a.lora.r,
        a.lora.alpha,
        a.lora.target_modules,
    ));
    out.push_str(&format!(
        "- LoRA and Finetune: {} epoch(s) over the first {} training images per domain ({}), batch {}, AdamW lr {} (LoRA) / {} (Finetune: every conv and `fc`, BatchNorm frozen); ModelGPT-F: {} epoch(s) of {} at {}. Test splits: {} images.\n",
        b.epochs,
        b.train_cap,
        r.train_images_per_domain.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
        b.batch_size,
        b.lora_lr,
        b.finetune_lr,
        b.finetune_f_epochs,
        b.finetune_f_mode.describe(),
        finetune_f_lr_text(cfg, r),
        r.test_images.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
    ));
    out.push_str(&format!(
        "- Generator: meta-trained with Algorithm 1 for {} steps of batch {} over ≤{} training images per domain (`cargo xtask pretrain cv`).\n",
        cfg.train.steps, cfg.train.batch_size, cfg.data.train_cap
    ));
    out.push_str(&format!(
        "- E2E: seconds from the domain's files on disk to a usable model, summed over the domains. Trained methods: reading, splitting and resizing the domain + training. ModelGPT: reading the training split, writing the requirement from it, encoding it and one generator pass, plus one generator load ({:.2} s) for the table. Relative efficiency = Finetune E2E ÷ method E2E.\n",
        r.generator_load_secs
    ));
    out.push_str("- Control: each domain gets the other domain's requirement (its own class names), 0 epochs. Majority: the training split's class frequencies as the prediction.\n\nRequirements used:\n\n");
    for (t, q) in r.domains.iter().zip(&r.requirements) {
        out.push_str(&format!("- {t}: {q}\n"));
    }
    out.push_str(&format!("- {} (zero-shot): {}\n", z.domain, z.requirement));
    out
}

/// ModelGPT-F's lr as the notes state it: the one value, or the candidates and what the
/// validation split picked per domain.
fn finetune_f_lr_text(cfg: &CvConfig, r: &CvReport) -> String {
    let b = &cfg.baseline;
    if b.finetune_f_lr_candidates.is_empty() {
        return format!("lr {}", b.finetune_f_lr());
    }
    let picks: Vec<String> = r
        .finetune_f_lr
        .iter()
        .map(|c| {
            let vals: Vec<String> = c
                .candidates
                .iter()
                .map(|(lr, v)| format!("{lr}: {:.1}", v * 100.0))
                .collect();
            format!(
                "{} {} (validation top-1 {})",
                c.dataset,
                c.chosen_lr,
                vals.join(", ")
            )
        })
        .collect();
    format!(
        "the lr of {:?} with the best top-1 on the domain's {} held-out training images (ties → smaller lr; its E2E pays for every candidate): {}",
        b.finetune_f_lr_candidates,
        cfg.data.val_per_task,
        picks.join("; ")
    )
}
