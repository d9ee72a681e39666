//! The unseen-table protocol (`cargo xtask reproduce tabular-unseen`): every one of the
//! ten UCI sets scored by a data-conditioned generator whose meta-training never included
//! any of them (one generator, trained on the synthetic prior and the
//! meta-training-only tables), over several split seeds, beside same-run baselines on
//! the same splits. Only the training split reaches the generator and the requirement.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use datasets::preprocess::{split_and_fit, Split, Splits};
use hyper_core::Metadata;
use hyper_infer::any_table::{fitted_readout, AnyTableGenerator};
use hyper_infer::basis::RANDOM_UNITS;
use hyper_infer::{evaluate, SplitTensors};
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use target_models::mlp::{Mlp, MlpConfig};
use target_models::text_encoder::TextEncoder;

use crate::baselines::{finetune, finetune_select_lr};
use crate::classic::{gbdt, logistic_regression, majority, ClassicConfig};
use crate::config::BaselineConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnseenConfig {
    pub datasets: Vec<String>,
    pub seeds: Vec<u64>,
    /// Support-set sizes of the ablation rows.
    pub support_sizes: Vec<usize>,
    /// Column permutations whose accuracy spread is reported.
    pub column_permutations: usize,
    /// Finetune (from a random init) and ModelGPT-F (from the generated weights).
    pub baseline: BaselineConfig,
    /// The MLP the Finetune row trains (the generated one has its own width).
    pub finetune_model: MlpConfig,
    pub classic: ClassicConfig,
}

impl Default for UnseenConfig {
    fn default() -> Self {
        Self {
            datasets: crate::TabularConfig::default().datasets,
            seeds: vec![2024, 1, 2],
            support_sizes: vec![64, 256, 1024],
            column_permutations: 5,
            // ModelGPT-F picks its lr on the validation split, as in the tabular
            // reproduction: the from-scratch lr (2e-2) undoes generated weights.
            baseline: BaselineConfig {
                finetune_f_epochs: 5,
                finetune_f_lr_candidates: vec![1e-3, 3e-3, 1e-2],
                ..BaselineConfig::default()
            },
            finetune_model: MlpConfig::default(),
            classic: ClassicConfig::default(),
        }
    }
}

/// One method on one dataset: test accuracy and seconds per seed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cell {
    pub accuracy: Vec<f64>,
    pub secs: Vec<f64>,
}

impl Cell {
    pub fn mean_accuracy(&self) -> f64 {
        mean(&self.accuracy)
    }
    pub fn mean_secs(&self) -> f64 {
        mean(&self.secs)
    }
}

pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub method: String,
    pub epochs: usize,
    pub per_dataset: Vec<Cell>,
}

impl Row {
    fn new(method: &str, epochs: usize, n: usize) -> Self {
        Self {
            method: method.into(),
            epochs,
            per_dataset: vec![Cell::default(); n],
        }
    }
    /// Average over datasets of the per-dataset mean accuracy.
    pub fn average(&self) -> f64 {
        mean(
            &self
                .per_dataset
                .iter()
                .map(Cell::mean_accuracy)
                .collect::<Vec<_>>(),
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UnseenReport {
    pub datasets: Vec<String>,
    pub seeds: Vec<u64>,
    pub majority_rate: Vec<f64>,
    pub rows: Vec<Row>,
    /// Per dataset: max − min test accuracy over the column permutations (all seeds).
    pub column_permutation_spread: Vec<f64>,
    /// Per dataset, first seed: the requirement the generator got.
    pub requirements: Vec<String>,
    pub generator_checkpoint: String,
}

/// The requirement for a table, written from its **training rows only** (the `profile`
/// backend), and its embedding.
pub fn train_only_requirement(
    table: &datasets::Table,
    train_rows: &[usize],
    encoder: &TextEncoder,
    seed: u64,
) -> Result<(String, Vec<f32>)> {
    let sub = table.subset_rows(train_rows);
    let (reqs, _) = crate::task::requirements_for(&sub, 1, seed)?;
    let e = encoder.embed_one(&reqs[0])?;
    Ok((reqs[0].clone(), e))
}

fn permute_columns(s: &Split, perm: &[usize]) -> Split {
    let mut x = Vec::with_capacity(s.x.len());
    for i in 0..s.n_rows() {
        let row = s.row(i);
        x.extend(perm.iter().map(|&j| row[j]));
    }
    Split {
        x,
        y: s.y.clone(),
        n_features: s.n_features,
    }
}

struct Prepared {
    splits: Splits,
    n_classes: usize,
    requirement: String,
    embedding: Vec<f32>,
    requirement_secs: f64,
}

pub fn reproduce_unseen(
    cfg: &UnseenConfig,
    gen: &AnyTableGenerator,
    encoder: &TextEncoder,
    dev: &Device,
    progress: bool,
) -> Result<UnseenReport> {
    let names = &cfg.datasets;
    let n = names.len();
    let b = &cfg.baseline;
    let mut rows = vec![
        Row::new("Majority", 0, n),
        Row::new("Logistic regression", 0, n),
        Row::new("GBDT", 0, n),
        Row::new("Finetune", b.epochs, n),
        Row::new("ModelGPT (unseen)", 0, n),
        Row::new("ModelGPT-F (unseen)", b.finetune_f_epochs, n),
        Row::new("Ablation: no requirement", 0, n),
        Row::new("Ablation: wrong requirement", 0, n),
    ];
    for &s in &cfg.support_sizes {
        rows.push(Row::new(&format!("Ablation: support {s}"), 0, n));
    }
    let generated_row = rows.len();
    rows.push(Row::new("Ablation: generated output layer", 0, n));
    let mut report = UnseenReport {
        datasets: names.clone(),
        seeds: cfg.seeds.clone(),
        majority_rate: vec![0.0; n],
        rows: vec![],
        column_permutation_spread: vec![0.0; n],
        requirements: vec![String::new(); n],
        generator_checkpoint: gen.stem.display().to_string(),
    };
    let ft_mlp = Mlp::new(cfg.finetune_model.clone());
    for &seed in &cfg.seeds {
        // Requirements first: the wrong-requirement control borrows another set's.
        let mut prepared = Vec::new();
        for name in names {
            let table =
                datasets::uci::load_builtin(name).with_context(|| format!("loading `{name}`"))?;
            let splits = split_and_fit(&table, seed)?;
            let t = Instant::now();
            let (requirement, embedding) =
                train_only_requirement(&table, &splits.train_rows, encoder, seed)?;
            prepared.push(Prepared {
                splits,
                n_classes: table.n_classes(),
                requirement,
                embedding,
                requirement_secs: t.elapsed().as_secs_f64(),
            });
        }
        for (i, name) in names.iter().enumerate() {
            let p = &prepared[i];
            let (train, val, test) = (&p.splits.train, &p.splits.val, &p.splits.test);
            let c = p.n_classes;
            let test_t = SplitTensors::from_split(test, dev)?;
            let mut push = |row: usize, acc: f64, secs: f64| {
                rows[row].per_dataset[i].accuracy.push(acc);
                rows[row].per_dataset[i].secs.push(secs);
            };
            let timed = |f: &mut dyn FnMut() -> Result<f64>| -> Result<(f64, f64)> {
                let t = Instant::now();
                let a = f()?;
                Ok((a, t.elapsed().as_secs_f64()))
            };
            let (a, s) = timed(&mut || Ok(majority(train, c, test)))?;
            push(0, a, s);
            let (a, s) = timed(&mut || logistic_regression(train, val, test, &cfg.classic))?;
            push(1, a, s);
            let (a, s) = timed(&mut || gbdt(train, c, test, &cfg.classic))?;
            push(2, a, s);
            let meta = Metadata {
                task: "tabular_cls".into(),
                in_dim: Some(train.n_features),
                out_dim: c,
                scale: "small".into(),
                arch: "mlp_small".into(),
            };
            let train_t = SplitTensors::from_split(train, dev)?;
            let val_t = SplitTensors::from_split(val, dev)?;
            let (a, s) = timed(&mut || {
                let mut rng = StdRng::seed_from_u64(seed);
                let init = ft_mlp.init_params(&meta, &mut rng, dev)?;
                let w = finetune(&ft_mlp, &init, &train_t, b, b.epochs, seed)?;
                Ok(evaluate(&ft_mlp, &w, &test_t)?.1)
            })?;
            push(3, a, s);

            // ModelGPT: requirement (train rows) + one generator pass + the fitted readout
            // (what `generate --data` does).
            let t = Instant::now();
            let raw = gen.generate(train, c, Some(&p.embedding), None, seed)?;
            let raw_acc = evaluate(&Mlp::new(raw.mlp.clone()), &raw.params, &test_t)?.1;
            let raw_secs = t.elapsed().as_secs_f64();
            let g = fitted_readout(raw, train, c, RANDOM_UNITS, seed)?;
            let gen_secs = t.elapsed().as_secs_f64() + p.requirement_secs;
            push(generated_row, raw_acc, raw_secs);
            let mlp = Mlp::new(g.mlp.clone());
            let acc = evaluate(&mlp, &g.params, &test_t)?.1;
            push(4, acc, gen_secs);
            let (best, trials) = finetune_select_lr(
                &mlp,
                &g.params,
                &train_t,
                &val_t,
                b,
                b.finetune_f_epochs,
                seed,
            )?;
            push(
                5,
                evaluate(&mlp, &trials[best].params, &test_t)?.1,
                gen_secs + trials.iter().map(|t| t.secs).sum::<f64>(),
            );
            // One generator pass on `tr`, scored on `te` (the ablations below).
            let score = |tr: &Split,
                         te: &SplitTensors,
                         req: Option<&[f32]>,
                         cap: Option<usize>|
             -> Result<f64> {
                let g = fitted_readout(
                    gen.generate(tr, c, req, cap, seed)?,
                    tr,
                    c,
                    RANDOM_UNITS,
                    seed,
                )?;
                Ok(evaluate(&Mlp::new(g.mlp), &g.params, te)?.1)
            };
            let (a, s) = timed(&mut || score(train, &test_t, None, None))?;
            push(6, a, s);
            let wrong = &prepared[(i + 1) % n].embedding;
            let (a, s) = timed(&mut || score(train, &test_t, Some(wrong), None))?;
            push(7, a, s);
            for (k, &size) in cfg.support_sizes.iter().enumerate() {
                let (a, s) = timed(&mut || score(train, &test_t, Some(&p.embedding), Some(size)))?;
                push(8 + k, a, s);
            }
            // Column order: generate on permuted columns, score on equally permuted test.
            let mut accs = vec![acc];
            for k in 0..cfg.column_permutations {
                let perm = datasets::preprocess::permutation(
                    train.n_features,
                    seed ^ ((k as u64 + 1) * 0x51),
                );
                let te = SplitTensors::from_split(&permute_columns(test, &perm), dev)?;
                accs.push(score(
                    &permute_columns(train, &perm),
                    &te,
                    Some(&p.embedding),
                    None,
                )?);
            }
            let spread = accs.iter().cloned().fold(f64::MIN, f64::max)
                - accs.iter().cloned().fold(f64::MAX, f64::min);
            report.column_permutation_spread[i] = report.column_permutation_spread[i].max(spread);
            if seed == cfg.seeds[0] {
                report.requirements[i] = format!("{name}: {}", p.requirement);
            }
            report.majority_rate[i] += test_t.majority_rate() / cfg.seeds.len() as f64;
            if progress {
                eprintln!(
                    "seed {seed} {name}: majority {:.3} logreg {:.3} gbdt {:.3} finetune {:.3} \
                     gen {:.3} gen-F {:.3} no-req {:.3} wrong-req {:.3} (gen {:.0} ms, H={})",
                    rows[0].per_dataset[i].accuracy.last().unwrap_or(&0.0),
                    rows[1].per_dataset[i].accuracy.last().unwrap_or(&0.0),
                    rows[2].per_dataset[i].accuracy.last().unwrap_or(&0.0),
                    rows[3].per_dataset[i].accuracy.last().unwrap_or(&0.0),
                    acc,
                    rows[5].per_dataset[i].accuracy.last().unwrap_or(&0.0),
                    rows[6].per_dataset[i].accuracy.last().unwrap_or(&0.0),
                    rows[7].per_dataset[i].accuracy.last().unwrap_or(&0.0),
                    gen_secs * 1e3,
                    g.mlp.hidden[0],
                );
            }
        }
    }
    report.rows = rows;
    Ok(report)
}
