//! The NLP reproduction (ModelGPT Table 1 at CPU scale), every figure measured in one
//! run on GLUE dev: per task, the constant (majority / mean) baseline, LoRA and Finetune
//! trained from scratch for `baseline.epochs` over the first `baseline.train_cap`
//! examples of the training pool, ModelGPT (0 epochs: requirement → adapter), ModelGPT-F
//! (+`finetune_f_epochs` from the generated adapter: LoRA training, or in mode `full` the
//! paper's finetuning of every weight with the adapter merged in) and a
//! wrong-requirement control (another task's requirement, this task's labels); plus the
//! zero-shot task scored from a requirement written from its unlabelled dev rows.
//!
//! E2E seconds count from data on disk: reading and tokenizing the task (`load_secs`,
//! which also covers the dev set, so it over-counts a little for every trained method),
//! then training (baselines, ModelGPT-F); for ModelGPT, reading the training split from
//! disk, writing the requirement from it, encoding it and one generator pass (nothing is
//! tokenized).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use datasets::glue::{GlueTask, Label};
use hyper_core::ParamMap;
use hyper_infer::text::{
    self, glue_score, text_requirements, text_summary, train_epochs, NamedVars, TextGenerator,
    TrainOptions,
};
use serde::Serialize;
use target_models::bert::BertModel;
use target_models::lora::{seeded_init_params, LoraConfig};

use super::config::{FinetuneFMode, NlpConfig};
use super::task::{TextSet, TextTask};

/// One method on one task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskOutcome {
    pub task: String,
    /// Metric name → value, in GLUE's order (`mcc`, `f1`/`acc`, `pearson`/`spearman`, `acc`).
    pub metrics: Vec<(String, f64)>,
    /// Mean of `metrics` (GLUE's per-task number).
    pub score: f64,
    pub e2e_secs: f64,
    pub data_load_secs: f64,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct NlpMethod {
    pub method: String,
    pub epochs: usize,
    pub per_task: Vec<TaskOutcome>,
    /// Mean of the per-task scores over the trained tasks.
    pub glue_score: f64,
    pub e2e_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZeroShot {
    pub task: String,
    pub requirement: String,
    pub examples: usize,
    pub majority_rate: f64,
    pub modelgpt: f64,
    /// The adapter generated for `nearest_task`'s own requirement, applied unchanged.
    pub nearest_task: String,
    pub nearest_task_adapter: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NlpReport {
    pub tasks: Vec<String>,
    pub dev_examples: Vec<usize>,
    pub train_examples_per_task: Vec<usize>,
    pub methods: Vec<NlpMethod>,
    pub zero_shot: ZeroShot,
    pub requirements: Vec<String>,
    pub control_requirements: Vec<String>,
    /// Loading the generator checkpoint, MiniLM and the text encoder (counted once in
    /// ModelGPT's E2E).
    pub generator_load_secs: f64,
}

fn outcome(
    task: GlueTask,
    pred: &[Label],
    gold: &[Label],
    e2e: f64,
    load: f64,
) -> anyhow::Result<TaskOutcome> {
    // A constant regression prediction (the mean baseline, or a collapsed head) has no
    // correlation with anything: score it 0, as for MCC, instead of failing the run.
    let constant = task.is_regression() && pred.windows(2).all(|w| w[0].score() == w[1].score());
    let m = if constant {
        task.metrics().iter().map(|&k| (k, 0.0)).collect()
    } else {
        task.evaluate(pred, gold)?
    };
    Ok(TaskOutcome {
        task: task.name().to_string(),
        score: glue_score(&m),
        metrics: m.iter().map(|(k, v)| (k.name(), *v)).collect(),
        e2e_secs: e2e,
        data_load_secs: load,
    })
}

fn dev_outcome(
    model: &BertModel,
    params: &ParamMap,
    t: &TextTask,
    e2e: f64,
) -> anyhow::Result<TaskOutcome> {
    let p = text::predict(
        model,
        params,
        &t.dev.examples,
        t.task.is_regression(),
        None,
        64,
    )?;
    outcome(t.task, &p.labels, &t.dev.labels, e2e, t.load_secs)
}

/// The first `cap` examples of the training pool.
fn capped(set: &TextSet, cap: usize) -> TextSet {
    let n = cap.min(set.len());
    TextSet {
        examples: set.examples[..n].to_vec(),
        labels: set.labels[..n].to_vec(),
    }
}

/// Every MiniLM weight as a trainable var, from the pretrained checkpoint in `minilm`:
/// Finetune's model, before its head.
fn trainable_minilm(
    minilm: &std::path::Path,
    dev: &Device,
) -> anyhow::Result<(BertModel, NamedVars)> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, dev);
    let cfg = target_models::bert::BertConfig::load(&minilm.join("config.json"))?;
    let model = BertModel::from_vb(&vb, cfg, LoraConfig::none())?;
    let weights = minilm.join("model.safetensors");
    let mut vm = vm;
    vm.load(&weights)
        .with_context(|| format!("loading {} into trainable weights", weights.display()))?;
    let data = vm
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("var map lock"))?;
    let vars: NamedVars = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok((model, vars))
}

/// Finetune: [`trainable_minilm`] plus a fresh Hugging Face-initialised head drawn from
/// `seed`; returns the model, the head and every base var (the caller makes the head
/// trainable).
pub fn finetune_model(
    minilm: &std::path::Path,
    num_labels: usize,
    seed: u64,
    dev: &Device,
) -> anyhow::Result<(BertModel, ParamMap, NamedVars)> {
    let (model, vars) = trainable_minilm(minilm, dev)?;
    let head = seeded_init_params(&model.param_spec_for(num_labels), seed, dev)?;
    Ok((model, head, vars))
}

/// ModelGPT-F in mode `full`: [`trainable_minilm`] with the generated adapters merged
/// into its weights (`scaling` = alpha / r) and the generated head made trainable;
/// returns the model, the head and every trainable var (base and head).
pub fn finetune_from_generated(
    minilm: &std::path::Path,
    generated: &ParamMap,
    scaling: f64,
    dev: &Device,
) -> anyhow::Result<(BertModel, ParamMap, NamedVars)> {
    let (model, mut vars) = trainable_minilm(minilm, dev)?;
    let head = target_models::lora::merge_into_vars(generated, &vars, scaling)?;
    let (head, head_vars) = head.to_vars()?;
    vars.extend(head_vars);
    Ok((model, head, vars))
}

fn num_outputs(t: &TextTask) -> usize {
    t.label_texts.len()
}

/// Runs the whole protocol. `gen` is the loaded generator (its base model serves
/// ModelGPT); `minilm` the base model's directory (for Finetune's trainable copy).
pub fn reproduce_nlp(
    cfg: &NlpConfig,
    gen: &TextGenerator,
    tasks: &[TextTask],
    zero_shot: &TextTask,
    minilm: &std::path::Path,
    progress: &dyn Fn(&str),
) -> anyhow::Result<NlpReport> {
    let dev = gen.generator.device().clone();
    let b = &cfg.baseline;
    let seed = cfg.train.seed;
    let n_req = cfg.data.requirements_per_task;
    let mut rows: BTreeMap<&str, Vec<TaskOutcome>> = BTreeMap::new();
    let mut requirements = Vec::new();
    let mut control_requirements = Vec::new();
    let lora_model = &gen.base;
    for (ti, t) in tasks.iter().enumerate() {
        let train = capped(&t.train, b.train_cap);
        let c = t.train.constant_prediction();
        let pred = vec![c; t.dev.len()];
        rows.entry("Majority / mean").or_default().push(outcome(
            t.task,
            &pred,
            &t.dev.labels,
            t.load_secs,
            t.load_secs,
        )?);

        progress(&format!("{}: LoRA", t.name()));
        let t0 = Instant::now();
        // Seeded per task (candle's RNG cannot be): the baselines repeat run to run.
        let task_seed = seed ^ (0x5EED_0000 + ti as u64);
        let init = seeded_init_params(&lora_model.param_spec_for(num_outputs(t)), task_seed, &dev)?;
        let (pm, vars) = init.to_vars()?;
        train_epochs(
            lora_model,
            &pm,
            vars,
            &train.examples,
            &train.labels,
            &TrainOptions {
                epochs: b.epochs,
                batch_size: b.batch_size,
                lr: b.lora_lr,
                weight_decay: b.weight_decay,
                seed,
            },
            &format!("{} LoRA", t.name(),),
        )?;
        let secs = t0.elapsed().as_secs_f64() + t.load_secs;
        rows.entry("LoRA")
            .or_default()
            .push(dev_outcome(lora_model, &pm, t, secs)?);

        progress(&format!("{}: Finetune", t.name()));
        let t0 = Instant::now();
        let (ft, head, mut vars) = finetune_model(minilm, num_outputs(t), task_seed, &dev)?;
        let (head, hv) = head.to_vars()?;
        vars.extend(hv);
        train_epochs(
            &ft,
            &head,
            vars,
            &train.examples,
            &train.labels,
            &TrainOptions {
                epochs: b.epochs,
                batch_size: b.batch_size,
                lr: b.finetune_lr,
                weight_decay: b.weight_decay,
                seed,
            },
            &format!("{} Finetune", t.name(),),
        )?;
        let secs = t0.elapsed().as_secs_f64() + t.load_secs;
        let ft = ft.with_fused_inference(true);
        rows.entry("Finetune")
            .or_default()
            .push(dev_outcome(&ft, &head, t, secs)?);
        drop(ft);

        progress(&format!("{}: ModelGPT", t.name()));
        let t0 = Instant::now();
        // The user path: the requirement is written from the task's data, then generated.
        let split =
            datasets::glue::load(t.task, "train", &datasets::glue::GlueTask::default_root())?;
        let req = text_requirements(&text_summary(&split, true), n_req, seed)?
            .into_iter()
            .next()
            .unwrap_or_default();
        let g = gen.generate(&req, &t.label_texts)?;
        // Reading the task from disk is inside the timed block; nothing is tokenized.
        let mg_secs = t0.elapsed().as_secs_f64();
        rows.entry("ModelGPT")
            .or_default()
            .push(dev_outcome(lora_model, &g.params, t, mg_secs)?);
        requirements.push(req);

        progress(&format!("{}: ModelGPT-F", t.name()));
        let t0 = Instant::now();
        let (merged, pm, vars) = match b.finetune_f_mode {
            FinetuneFMode::Lora => {
                let (pm, vars) = g.params.to_vars()?;
                (None, pm, vars)
            }
            FinetuneFMode::Full => {
                let scaling = cfg.architecture.lora.lora_config().scaling();
                let (ft, head, vars) = finetune_from_generated(minilm, &g.params, scaling, &dev)?;
                (Some(ft), head, vars)
            }
        };
        let m = merged.as_ref().unwrap_or(lora_model);
        train_epochs(
            m,
            &pm,
            vars,
            &train.examples,
            &train.labels,
            &TrainOptions {
                epochs: b.finetune_f_epochs,
                batch_size: b.batch_size,
                lr: b.finetune_f_lr(),
                weight_decay: b.weight_decay,
                seed,
            },
            &format!("{} ModelGPT-F", t.name(),),
        )?;
        // + tokenizing the training examples (counted, like the baselines', in `load_secs`).
        let secs = mg_secs + t.load_secs + t0.elapsed().as_secs_f64();
        let outcome = match merged {
            Some(ft) => dev_outcome(&ft.with_fused_inference(true), &pm, t, secs)?,
            None => dev_outcome(lora_model, &pm, t, secs)?,
        };
        rows.entry("ModelGPT-F").or_default().push(outcome);

        progress(&format!("{}: control", t.name()));
        let other = &tasks[(ti + 1) % tasks.len()];
        let wrong = other.requirements[0].clone();
        let t0 = Instant::now();
        let g = gen.generate(&wrong, &t.label_texts)?;
        let secs = t0.elapsed().as_secs_f64() + t.load_secs;
        rows.entry("Control (wrong requirement)")
            .or_default()
            .push(dev_outcome(lora_model, &g.params, t, secs)?);
        control_requirements.push(wrong);
    }

    progress(&format!("{}: zero-shot", zero_shot.name()));
    let zs_req = zero_shot.requirements[0].clone();
    let g = gen.generate(&zs_req, &zero_shot.label_texts)?;
    let zs = dev_outcome(lora_model, &g.params, zero_shot, 0.0)?;
    // The trained task whose label texts match (RTE for QNLI), else the first.
    let near = tasks
        .iter()
        .find(|t| t.label_texts == zero_shot.label_texts)
        .unwrap_or(&tasks[0]);
    let gn = gen.generate(&near.requirements[0], &zero_shot.label_texts)?;
    let zn = dev_outcome(lora_model, &gn.params, zero_shot, 0.0)?;
    // The majority rate is the largest class share of dev (no train split exists here).
    let majority = zero_shot.dev.constant_prediction();
    let majority_rate = zero_shot
        .dev
        .labels
        .iter()
        .filter(|&&l| l == majority)
        .count() as f64
        / zero_shot.dev.len().max(1) as f64;

    let order = [
        "LoRA",
        "Finetune",
        "ModelGPT",
        "ModelGPT-F",
        "Control (wrong requirement)",
        "Majority / mean",
    ];
    let methods = crate::report::method_rows(
        &mut rows,
        &order,
        (b.epochs, b.finetune_f_epochs),
        gen.load_secs,
        |o| o.score,
        |o| o.e2e_secs,
    )
    .into_iter()
    .map(|r| NlpMethod {
        method: r.method,
        epochs: r.epochs,
        per_task: r.outcomes,
        glue_score: r.mean_score,
        e2e_secs: r.e2e_secs,
    })
    .collect();
    Ok(NlpReport {
        tasks: tasks.iter().map(|t| t.name().to_string()).collect(),
        dev_examples: tasks.iter().map(|t| t.dev.len()).collect(),
        train_examples_per_task: tasks
            .iter()
            .map(|t| t.train.len().min(b.train_cap))
            .collect(),
        methods,
        zero_shot: ZeroShot {
            task: zero_shot.name().to_string(),
            requirement: zs_req,
            examples: zero_shot.dev.len(),
            majority_rate,
            modelgpt: zs.score,
            nearest_task: near.name().to_string(),
            nearest_task_adapter: zn.score,
        },
        requirements,
        control_requirements,
        generator_load_secs: gen.load_secs,
    })
}
