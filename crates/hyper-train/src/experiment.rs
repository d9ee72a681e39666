//! The tabular reproduction protocol (the paper's Table 2): per dataset, Finetune and
//! LoRA from a seeded random init, ModelGPT (0 epochs, one pass of the pipeline),
//! ModelGPT-F (+`finetune_f_epochs`, lr picked on the validation split), the fixed-lr
//! ablations, and a wrong-requirement control. Every accuracy is on the test split;
//! every method's E2E time starts from the file on disk. `xtask reproduce` formats it.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use datasets::preprocess::split_and_fit;
use hyper_infer::{evaluate, BackendOptions, Metadata, Pipeline, SplitTensors};
use rand::{rngs::StdRng, SeedableRng};
use serde::Serialize;
use target_models::mlp::Mlp;

use crate::baselines::{finetune, finetune_select_lr, lora};
use crate::config::TabularConfig;

/// A built-in table read from disk and split (the first part of every method's E2E).
struct Loaded {
    train: SplitTensors,
    val: SplitTensors,
    test: SplitTensors,
    meta: Metadata,
    table: datasets::Table,
    secs: f64,
}

fn load(name: &str, seed: u64, dev: &Device) -> Result<Loaded> {
    let t = Instant::now();
    let table = datasets::uci::load_builtin(name).with_context(|| format!("loading `{name}`"))?;
    let s = split_and_fit(&table, seed).with_context(|| format!("splitting `{name}`"))?;
    // The baselines only read the dims; ModelGPT's metadata comes from its own backend.
    let meta = Metadata {
        task: "tabular_cls".into(),
        in_dim: Some(s.train.n_features),
        out_dim: table.n_classes(),
        scale: "small".into(),
        arch: "mlp_small".into(),
    };
    Ok(Loaded {
        train: SplitTensors::from_split(&s.train, dev)?,
        val: SplitTensors::from_split(&s.val, dev)?,
        test: SplitTensors::from_split(&s.test, dev)?,
        meta,
        table,
        secs: t.elapsed().as_secs_f64(),
    })
}

/// One method on one dataset.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Outcome {
    /// Test accuracy.
    pub accuracy: f64,
    /// Wall seconds from the file on disk to a usable model.
    pub e2e_secs: f64,
    /// The part of `e2e_secs` spent reading and splitting the data.
    pub data_load_secs: f64,
}

/// One row of the results table: a method's outcome on every dataset.
#[derive(Debug, Clone, Serialize)]
pub struct MethodResult {
    pub method: String,
    pub epochs: usize,
    pub per_dataset: Vec<Outcome>,
    /// Whether the pipeline load (checkpoint + encoder, once) is part of its E2E.
    pub uses_pipeline: bool,
    /// Main rows enter the relative-efficiency comparison; ablations do not set its scale.
    pub main: bool,
}

impl MethodResult {
    fn new(method: impl Into<String>, epochs: usize, uses_pipeline: bool, main: bool) -> Self {
        Self {
            method: method.into(),
            epochs,
            per_dataset: Vec::new(),
            uses_pipeline,
            main,
        }
    }

    pub fn accuracies(&self) -> Vec<f64> {
        self.per_dataset.iter().map(|o| o.accuracy).collect()
    }
}

/// ModelGPT-F's per-dataset lr choice.
#[derive(Debug, Clone, Serialize)]
pub struct LrChoice {
    pub dataset: String,
    /// `(lr, validation accuracy)` per candidate, in config order.
    pub candidates: Vec<(f64, f64)>,
    pub chosen_lr: f64,
}

/// Everything the tabular reproduction measured.
#[derive(Debug, Clone, Serialize)]
pub struct TabularReproduction {
    pub datasets: Vec<String>,
    pub test_rows: Vec<usize>,
    pub majority_rate: Vec<f64>,
    /// LoRA, Finetune, ModelGPT, ModelGPT-F, then one fixed-lr ablation per candidate lr.
    pub methods: Vec<MethodResult>,
    /// Each dataset generated from the next dataset's requirement (its own heads).
    pub wrong_requirement_control: Vec<f64>,
    pub finetune_f_lr: Vec<LrChoice>,
    /// `dataset [heads: task]: requirement` per dataset.
    pub requirements: Vec<String>,
    /// One-time pipeline load (included in ModelGPT's E2E totals).
    pub pipeline_load_secs: f64,
}

/// Runs the protocol on `cfg.datasets` with `pipeline`; `progress` prints a line per set.
pub fn reproduce_tabular(
    cfg: &TabularConfig,
    pipeline: &Pipeline,
    pipeline_load_secs: f64,
    dev: &Device,
    progress: bool,
) -> Result<TabularReproduction> {
    let seed = cfg.train.seed;
    let b = &cfg.baseline;
    let mlp = Mlp::new(cfg.architecture.model.clone());
    let backend = BackendOptions::default();
    let names = cfg.datasets.clone();
    let lr_cands = b.f_lr_candidates();
    let mut lora_row = MethodResult::new("LoRA", b.epochs, false, true);
    let mut ft_row = MethodResult::new("Finetune", b.epochs, false, true);
    let mut gen_row = MethodResult::new("ModelGPT", 0, true, true);
    let mut genf_row = MethodResult::new("ModelGPT-F", b.finetune_f_epochs, true, true);
    let mut fixed_rows: Vec<MethodResult> = lr_cands
        .iter()
        .map(|&lr| {
            let paper = if lr == b.lr {
                ", the paper's protocol"
            } else {
                ""
            };
            MethodResult::new(
                format!("Ablation: ModelGPT-F at fixed lr {lr}{paper}"),
                b.finetune_f_epochs,
                true,
                false,
            )
        })
        .collect();
    let mut out = TabularReproduction {
        datasets: names.clone(),
        test_rows: vec![],
        majority_rate: vec![],
        methods: vec![],
        wrong_requirement_control: vec![],
        finetune_f_lr: vec![],
        requirements: vec![],
        pipeline_load_secs,
    };
    let mut sentences = Vec::new();
    for name in &names {
        let table =
            datasets::uci::load_builtin(name).with_context(|| format!("loading `{name}`"))?;
        let input = llm_prompting::TaskInput::from_table(&table, None)?;
        sentences.push(hyper_infer::requirement::describe(&input, &backend)?.requirement);
    }
    for (i, name) in names.iter().enumerate() {
        // Finetune: random init, all weights, `baseline.epochs`.
        let t = Instant::now();
        let d = load(name, seed, dev)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let init = mlp.init_params(&d.meta, &mut rng, dev)?;
        let p = finetune(&mlp, &init, &d.train, b, b.epochs, seed)?;
        ft_row.per_dataset.push(Outcome {
            e2e_secs: t.elapsed().as_secs_f64(),
            accuracy: evaluate(&mlp, &p, &d.test)?.1,
            data_load_secs: d.secs,
        });
        out.majority_rate.push(d.test.majority_rate());
        out.test_rows.push(d.test.len());

        // LoRA over a frozen random init.
        let t = Instant::now();
        let d = load(name, seed, dev)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let base = mlp.init_params(&d.meta, &mut rng, dev)?;
        let l0 = mlp.init_lora(&d.meta, b.lora_r, &mut rng, dev)?;
        let l = lora(&mlp, &base, &l0, &d.train, b, seed)?;
        let secs = t.elapsed().as_secs_f64();
        let scale = b.lora_alpha / b.lora_r as f64;
        let logits = mlp.forward_lora(&base, &l, &d.test.x, scale, b.lora_dropout, false)?;
        lora_row.per_dataset.push(Outcome {
            accuracy: hyper_core::layers::accuracy(&logits, &d.test.labels)?,
            e2e_secs: secs,
            data_load_secs: d.secs,
        });

        // ModelGPT: requirement + metadata (profile) → encode → generate; 0 epochs.
        let t = Instant::now();
        let d = load(name, seed, dev)?;
        let g = pipeline.generate(&d.table, None, Some(name), &backend)?;
        let gen_secs = t.elapsed().as_secs_f64();
        gen_row.per_dataset.push(Outcome {
            accuracy: evaluate(&mlp, &g.params, &d.test)?.1,
            e2e_secs: gen_secs,
            data_load_secs: d.secs,
        });
        out.requirements.push(format!(
            "{name} [heads: {}]: {}",
            g.heads.task, g.requirement
        ));

        // ModelGPT-F: the generated weights + `finetune_f_epochs` of finetuning, once per
        // candidate lr; the validation split picks one. E2E pays for every candidate.
        let (best, trials) = finetune_select_lr(
            &mlp,
            &g.params,
            &d.train,
            &d.val,
            b,
            b.finetune_f_epochs,
            seed,
        )?;
        genf_row.per_dataset.push(Outcome {
            accuracy: evaluate(&mlp, &trials[best].params, &d.test)?.1,
            e2e_secs: gen_secs + trials.iter().map(|t| t.secs).sum::<f64>(),
            data_load_secs: d.secs,
        });
        for (row, tr) in fixed_rows.iter_mut().zip(&trials) {
            row.per_dataset.push(Outcome {
                accuracy: evaluate(&mlp, &tr.params, &d.test)?.1,
                e2e_secs: gen_secs + tr.secs,
                data_load_secs: d.secs,
            });
        }
        out.finetune_f_lr.push(LrChoice {
            dataset: name.clone(),
            candidates: trials.iter().map(|t| (t.lr, t.val_acc)).collect(),
            chosen_lr: trials[best].lr,
        });

        // Control: another task's requirement, this task's heads.
        let wrong = &sentences[(i + 1) % names.len()];
        let pc = pipeline.weights(wrong, &g.metadata, Some(name))?.params;
        out.wrong_requirement_control
            .push(evaluate(&mlp, &pc, &d.test)?.1);
        if progress {
            eprintln!(
                "{name}: ft {:.3} lora {:.3} gen {:.3} gen-F {:.3} (lr {}) ctrl {:.3} majority {:.3}",
                ft_row.per_dataset[i].accuracy,
                lora_row.per_dataset[i].accuracy,
                gen_row.per_dataset[i].accuracy,
                genf_row.per_dataset[i].accuracy,
                trials[best].lr,
                out.wrong_requirement_control[i],
                out.majority_rate[i]
            );
        }
    }
    out.methods = vec![lora_row, ft_row, gen_row, genf_row];
    if lr_cands.len() > 1 {
        out.methods.extend(fixed_rows);
    }
    Ok(out)
}
