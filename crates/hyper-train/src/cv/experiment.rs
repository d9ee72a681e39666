//! The CV reproduction (ModelGPT Table 3 at CPU scale), every figure measured in one run
//! on each domain's test split: the majority baseline, LoRA (conv adapters + `fc`) and
//! Finetune (every conv + `fc`, BatchNorm frozen) trained for `baseline.epochs` over the
//! first `baseline.train_cap` training images, ModelGPT (0 epochs: requirement → adapter),
//! ModelGPT-F (+`finetune_f_epochs` from the generated adapter: LoRA training, or in mode
//! `full` the paper's finetuning of every conv with the adapter merged in) and a
//! wrong-requirement control; plus the zero-shot domain, whose adapter comes from a
//! requirement written from its data, against the majority rate, the first trained
//! domain's adapter applied unchanged, and LoRA/Finetune trained on it (the upper bound).
//!
//! E2E seconds count from files on disk: reading, splitting and resizing the domain
//! (`load_secs`) plus training for the trained methods; for ModelGPT, reading the training
//! split, writing the requirement from it, encoding it and one generator pass.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{anyhow, Context};
use candle_core::{DType, Device, Var};
use candle_nn::{VarBuilder, VarMap};
use datasets::images::ImageSet;
use hyper_core::layers::{default_bound, uniform};
use hyper_core::ParamMap;
use hyper_infer::finetune::TrainOptions;
use hyper_infer::text::NamedVars;
use hyper_infer::vision::{self, ImageGenerator, TopK};
use rand::{rngs::StdRng, SeedableRng};
use serde::Serialize;
use target_models::lora::LoraConfig;
use target_models::resnet::ResNet;

use super::config::CvConfig;
use super::task::ImageTask;
use crate::experiment::LrChoice;
use crate::nlp::config::FinetuneFMode;

/// One method on one domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainOutcome {
    pub domain: String,
    pub acc: TopK,
    pub e2e_secs: f64,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct CvMethod {
    pub method: String,
    pub epochs: usize,
    pub per_domain: Vec<DomainOutcome>,
    /// Mean top-1 over the trained domains.
    pub avg_top1: f64,
    pub e2e_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CvZeroShot {
    pub domain: String,
    pub requirement: String,
    pub test_images: usize,
    pub majority: TopK,
    pub modelgpt: TopK,
    pub modelgpt_secs: f64,
    /// The adapter generated for `nearest_domain`'s own requirement, applied unchanged.
    pub nearest_domain: String,
    pub nearest_adapter: TopK,
    /// Every trained domain with the same classes, its adapter applied unchanged (the
    /// first is `nearest_*`).
    pub trained_adapters: Vec<(String, TopK)>,
    /// Trained on the zero-shot domain's own training split (the upper bound).
    pub lora_on_domain: TopK,
    pub lora_on_domain_secs: f64,
    pub finetune_on_domain: TopK,
    pub finetune_on_domain_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CvReport {
    pub domains: Vec<String>,
    pub test_images: Vec<usize>,
    pub train_images_per_domain: Vec<usize>,
    pub methods: Vec<CvMethod>,
    pub zero_shot: CvZeroShot,
    pub requirements: Vec<String>,
    pub control_requirements: Vec<String>,
    /// ModelGPT-F's lr per domain (`(lr, validation top-1)` per candidate; one candidate
    /// is not validated).
    pub finetune_f_lr: Vec<LrChoice>,
    /// Loading the generator checkpoint, the backbone and the text encoder (counted once
    /// in ModelGPT's E2E).
    pub generator_load_secs: f64,
}

/// Constant prediction: the training split's class frequencies as probabilities.
fn majority(train: &ImageSet, test: &ImageSet) -> anyhow::Result<TopK> {
    let counts = train.class_counts();
    let total = counts.iter().sum::<usize>().max(1) as f32;
    let p: Vec<f32> = counts.iter().map(|&c| c as f32 / total).collect();
    TopK::of(&vec![p; test.n], &test.labels)
}

/// The first `cap` images.
pub fn capped(set: &ImageSet, cap: usize) -> ImageSet {
    let rows: Vec<usize> = (0..cap.min(set.n)).collect();
    vision::subset(set, &rows)
}

/// PEFT's LoRA start (A uniform ±1/√fan_in, B zero) and PyTorch's `Linear` init for `fc`,
/// drawn from `seed` so a run is a function of its config.
pub fn seeded_lora_init(
    model: &ResNet,
    classes: usize,
    seed: u64,
    dev: &Device,
) -> anyhow::Result<ParamMap> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut p = ParamMap::new();
    for s in model.param_spec_for(classes) {
        let bound = if s.name.ends_with("lora_A.weight") {
            default_bound(s.shape[1..].iter().product())
        } else if s.name == "fc.weight" {
            default_bound(s.shape[1])
        } else {
            0.0
        };
        p.insert(s.name.clone(), uniform(&mut rng, &s.shape, bound, dev)?);
    }
    Ok(p)
}

/// The backbone file's convs as trainable vars (BatchNorm frozen with the file's
/// statistics): Finetune's model, before its head.
fn finetune_backbone(cfg: &CvConfig, dev: &Device) -> anyhow::Result<(ResNet, NamedVars)> {
    let path = cfg.architecture.backbone_path();
    let file = candle_core::safetensors::load(&path, dev)
        .with_context(|| format!("reading {}", path.display()))?;
    let vm = VarMap::new();
    let mut vars = Vec::new();
    {
        let mut data = vm.data().lock().map_err(|_| anyhow!("var map lock"))?;
        for (k, t) in &file {
            let v = Var::from_tensor(&t.to_dtype(DType::F32)?)?;
            if t.rank() == 4 {
                vars.push((k.clone(), v.clone()));
            }
            data.insert(k.clone(), v);
        }
    }
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let vb = VarBuilder::from_varmap(&vm, DType::F32, dev);
    let model = ResNet::from_vb(&vb, cfg.architecture.backbone.resnet()?, LoraConfig::none())?;
    Ok((model, vars))
}

/// Finetune: [`finetune_backbone`] and a fresh `fc`; returns the model, `fc`, and every
/// trainable var.
pub fn finetune_model(
    cfg: &CvConfig,
    classes: usize,
    seed: u64,
    dev: &Device,
) -> anyhow::Result<(ResNet, ParamMap, NamedVars)> {
    let (model, mut vars) = finetune_backbone(cfg, dev)?;
    let init = seeded_lora_init(&model, classes, seed, dev)?;
    let (fc, fc_vars) = init.to_vars()?;
    vars.extend(fc_vars);
    Ok((model, fc, vars))
}

/// ModelGPT-F in mode `full`: [`finetune_backbone`] with the generated adapters merged
/// into its convs and the generated `fc`; returns what [`finetune_model`] does.
pub fn finetune_from_generated(
    cfg: &CvConfig,
    generated: &ParamMap,
    dev: &Device,
) -> anyhow::Result<(ResNet, ParamMap, NamedVars)> {
    let (model, mut vars) = finetune_backbone(cfg, dev)?;
    let scaling = cfg.architecture.lora.lora_config().scaling();
    let head = target_models::lora::merge_into_vars(generated, &vars, scaling)?;
    let (fc, fc_vars) = head.to_vars()?;
    vars.extend(fc_vars);
    Ok((model, fc, vars))
}

/// `vision::train_epochs` through [`super::augment::training_loss`]: each batch moved by
/// up to `baseline.augment_shift` pixels per image (a function of the batch, as in
/// meta-training; 0 = the plain loss).
fn train_epochs(
    cfg: &CvConfig,
    model: &ResNet,
    params: &ParamMap,
    vars: Vec<(String, Var)>,
    set: &ImageSet,
    o: &TrainOptions,
    what: &str,
) -> anyhow::Result<Vec<f64>> {
    let (shift, at) = (cfg.baseline.augment_shift, (cfg.train.seed, 0));
    hyper_infer::finetune::train_batches(set.n, vars, o, what, |rows| {
        super::augment::training_loss(model, params, set, rows, shift, at)
    })
}

fn options(cfg: &CvConfig, epochs: usize, lr: f64) -> TrainOptions {
    let b = &cfg.baseline;
    TrainOptions {
        epochs,
        batch_size: b.batch_size,
        lr,
        weight_decay: b.weight_decay,
        seed: cfg.train.seed,
    }
}

/// LoRA from PEFT's start on `train`; returns the trained params and the seconds spent.
pub fn train_lora(
    cfg: &CvConfig,
    model: &ResNet,
    train: &ImageSet,
    what: &str,
) -> anyhow::Result<(ParamMap, f64)> {
    let t0 = Instant::now();
    let dev = Device::Cpu;
    let init = seeded_lora_init(model, train.num_classes(), cfg.train.seed, &dev)?;
    let (pm, vars) = init.to_vars()?;
    let b = &cfg.baseline;
    train_epochs(
        cfg,
        model,
        &pm,
        vars,
        train,
        &options(cfg, b.epochs, b.lora_lr),
        what,
    )?;
    Ok((pm, t0.elapsed().as_secs_f64()))
}

/// Finetune on `train`, scored on `test`; returns the scores and the seconds spent.
fn train_finetune(
    cfg: &CvConfig,
    train: &ImageSet,
    test: &ImageSet,
    what: &str,
) -> anyhow::Result<(TopK, f64)> {
    let t0 = Instant::now();
    let (ft, fc, vars) = finetune_model(cfg, train.num_classes(), cfg.train.seed, &Device::Cpu)?;
    let b = &cfg.baseline;
    train_epochs(
        cfg,
        &ft,
        &fc,
        vars,
        train,
        &options(cfg, b.epochs, b.finetune_lr),
        what,
    )?;
    let secs = t0.elapsed().as_secs_f64();
    Ok((vision::evaluate(&ft, &fc, test)?, secs))
}

/// ModelGPT-F: `finetune_f_epochs` from the generated `params` (`finetune_f_mode`:
/// the adapter and `fc` on the shared backbone, or every conv with the adapter merged in
/// plus `fc`) once per lr of `finetune_f_lrs()`; the top-1 on `val` picks one (ties →
/// smaller lr), scored on `test`. Returns the scores, the seconds spent on every
/// candidate, and the choice.
fn train_from_generated(
    cfg: &CvConfig,
    model: &ResNet,
    params: &ParamMap,
    t: &ImageTask,
    train: &ImageSet,
) -> anyhow::Result<(TopK, f64, LrChoice)> {
    let t0 = Instant::now();
    let b = &cfg.baseline;
    let lrs = b.finetune_f_lrs();
    let mut trials = Vec::new();
    let mut best: Option<(f64, TopK)> = None;
    let mut test_secs = 0.0;
    for &lr in &lrs {
        let what = format!("{} ModelGPT-F (lr {lr})", t.name());
        let (merged, pm, vars) = match b.finetune_f_mode {
            FinetuneFMode::Lora => {
                let (pm, vars) = params.to_vars()?;
                (None, pm, vars)
            }
            FinetuneFMode::Full => {
                let (ft, fc, vars) = finetune_from_generated(cfg, params, &Device::Cpu)?;
                (Some(ft), fc, vars)
            }
        };
        let m = merged.as_ref().unwrap_or(model);
        train_epochs(
            cfg,
            m,
            &pm,
            vars,
            train,
            &options(cfg, b.finetune_f_epochs, lr),
            &what,
        )?;
        // One candidate needs no validation pass (and pays for none).
        let val = if lrs.len() > 1 {
            vision::evaluate(m, &pm, &t.val)?.top1
        } else {
            f64::NAN
        };
        trials.push((lr, val));
        if lrs.len() == 1 || crate::baselines::select_lr(&trials) == Some(trials.len() - 1) {
            let te = Instant::now();
            best = Some((lr, vision::evaluate(m, &pm, &t.test)?));
            test_secs += te.elapsed().as_secs_f64();
        }
    }
    // Scoring on the test split is not part of the user's time.
    let secs = t0.elapsed().as_secs_f64() - test_secs;
    let (chosen_lr, acc) = best.ok_or_else(|| anyhow!("no ModelGPT-F lr to try"))?;
    let choice = LrChoice {
        dataset: t.name().to_string(),
        candidates: trials,
        chosen_lr,
    };
    Ok((acc, secs, choice))
}

/// Runs the whole protocol with the loaded generator (its backbone serves every LoRA
/// method).
pub fn reproduce_cv(
    cfg: &CvConfig,
    gen: &ImageGenerator,
    tasks: &[ImageTask],
    zero_shot: &ImageTask,
    progress: &dyn Fn(&str),
) -> anyhow::Result<CvReport> {
    let b = &cfg.baseline;
    let n_req = cfg.data.requirements_per_task;
    let seed = cfg.train.seed;
    let model = &gen.base;
    let mut rows: BTreeMap<&str, Vec<DomainOutcome>> = BTreeMap::new();
    let mut push = |m: &'static str, t: &ImageTask, acc: TopK, secs: f64| {
        rows.entry(m).or_default().push(DomainOutcome {
            domain: t.name().to_string(),
            acc,
            e2e_secs: secs,
        });
    };
    let mut requirements = Vec::new();
    let mut control_requirements = Vec::new();
    let mut finetune_f_lr = Vec::new();
    // The user path: requirement from the training split as read from disk, then one pass.
    let modelgpt = |t: &ImageTask| -> anyhow::Result<(ParamMap, String, f64)> {
        let t0 = Instant::now();
        let (train_raw, _) = t.set.load()?;
        let summary = vision::image_summary(&train_raw, t.name(), Some(t.set.description()));
        let req = vision::image_requirements(&summary, n_req, seed)?
            .into_iter()
            .next()
            .unwrap_or_default();
        let g = gen.generate(&req, &t.class_names)?;
        Ok((g.params, req, t0.elapsed().as_secs_f64()))
    };
    for (ti, t) in tasks.iter().enumerate() {
        let train = capped(&t.train, b.train_cap);
        push("Majority", t, majority(&t.train, &t.test)?, t.load_secs);

        progress(&format!("{}: LoRA", t.name()));
        let (pm, secs) = train_lora(cfg, model, &train, &format!("{} LoRA", t.name()))?;
        push(
            "LoRA",
            t,
            vision::evaluate(model, &pm, &t.test)?,
            secs + t.load_secs,
        );

        progress(&format!("{}: Finetune", t.name()));
        let (acc, secs) = train_finetune(cfg, &train, &t.test, &format!("{} Finetune", t.name()))?;
        push("Finetune", t, acc, secs + t.load_secs);

        progress(&format!("{}: ModelGPT", t.name()));
        let (params, req, mg_secs) = modelgpt(t)?;
        push(
            "ModelGPT",
            t,
            vision::evaluate(model, &params, &t.test)?,
            mg_secs,
        );
        requirements.push(req);

        progress(&format!("{}: ModelGPT-F", t.name()));
        let (acc, secs, choice) = train_from_generated(cfg, model, &params, t, &train)?;
        push("ModelGPT-F", t, acc, mg_secs + t.load_secs + secs);
        finetune_f_lr.push(choice);

        progress(&format!("{}: control", t.name()));
        let other = &tasks[(ti + 1) % tasks.len()];
        let wrong = other.requirements[0].clone();
        let t0 = Instant::now();
        let g = gen.generate(&wrong, &t.class_names)?;
        let secs = t0.elapsed().as_secs_f64() + t.load_secs;
        push(
            "Control (wrong requirement)",
            t,
            vision::evaluate(model, &g.params, &t.test)?,
            secs,
        );
        control_requirements.push(wrong);
    }

    let z = zero_shot;
    progress(&format!("{}: zero-shot", z.name()));
    let (params, zs_req, zs_secs) = modelgpt(z)?;
    let zs = vision::evaluate(model, &params, &z.test)?;
    // Every trained domain with the zero-shot domain's classes, its own adapter applied
    // unchanged; the first (else the first domain) is the headline comparison.
    let adapter_on_z = |t: &ImageTask| -> anyhow::Result<TopK> {
        let g = gen.generate(&t.requirements[0], &z.class_names)?;
        vision::evaluate(model, &g.params, &z.test)
    };
    let same_classes: Vec<&ImageTask> = tasks
        .iter()
        .filter(|t| t.class_names == z.class_names)
        .collect();
    let near = same_classes.first().copied().unwrap_or(&tasks[0]);
    let trained_adapters = same_classes
        .iter()
        .map(|t| Ok((t.name().to_string(), adapter_on_z(t)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let zn = match trained_adapters.first() {
        Some((_, acc)) => *acc,
        None => adapter_on_z(near)?,
    };
    progress(&format!(
        "{}: LoRA and Finetune on its own images",
        z.name()
    ));
    let ztrain = capped(&z.train, b.train_cap);
    let (pm, lora_secs) = train_lora(cfg, model, &ztrain, &format!("{} LoRA", z.name()))?;
    let z_lora = vision::evaluate(model, &pm, &z.test)?;
    let (z_ft, ft_secs) = train_finetune(cfg, &ztrain, &z.test, &format!("{} Finetune", z.name()))?;

    let order = [
        "LoRA",
        "Finetune",
        "ModelGPT",
        "ModelGPT-F",
        "Control (wrong requirement)",
        "Majority",
    ];
    let methods = crate::report::method_rows(
        &mut rows,
        &order,
        (b.epochs, b.finetune_f_epochs),
        gen.load_secs,
        |o| o.acc.top1,
        |o| o.e2e_secs,
    )
    .into_iter()
    .map(|r| CvMethod {
        method: r.method,
        epochs: r.epochs,
        per_domain: r.outcomes,
        avg_top1: r.mean_score,
        e2e_secs: r.e2e_secs,
    })
    .collect();
    Ok(CvReport {
        domains: tasks.iter().map(|t| t.name().to_string()).collect(),
        test_images: tasks.iter().map(|t| t.test.n).collect(),
        train_images_per_domain: tasks.iter().map(|t| t.train.n.min(b.train_cap)).collect(),
        methods,
        zero_shot: CvZeroShot {
            domain: z.name().to_string(),
            requirement: zs_req,
            test_images: z.test.n,
            majority: majority(&z.train, &z.test)?,
            modelgpt: zs,
            modelgpt_secs: zs_secs,
            nearest_domain: near.name().to_string(),
            nearest_adapter: zn,
            trained_adapters,
            lora_on_domain: z_lora,
            lora_on_domain_secs: lora_secs + z.load_secs,
            finetune_on_domain: z_ft,
            finetune_on_domain_secs: ft_secs + z.load_secs,
        },
        requirements,
        control_requirements,
        finetune_f_lr,
        generator_load_secs: gen.load_secs,
    })
}
