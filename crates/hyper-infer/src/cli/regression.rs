//! Table regression: `generate --data` on a numeric target ([`hyper_infer::regression`]),
//! `eval` (R², RMSE, MAE) and `predict` (values) of the models it writes.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use datasets::metrics::{regression_scores, RegressionScores};
use datasets::preprocess::{split_and_fit, split_indices};
use datasets::Table;
use hyper_infer::eval::predict_values;
use hyper_infer::regression::{self, BINS, RIDGE_ROWS};
use hyper_infer::{ModelDir, ModelInfo};
use target_models::mlp::{Activation, MlpConfig};

use super::generate::GenerateArgs;
use super::TaskArg;

/// Why `table`'s target is read as values: the flag, or the rule of
/// [`datasets::user_csv::regression_rule`].
fn rule(table: &Table, values: &[f64], forced: bool) -> String {
    if forced {
        return "--task regression".into();
    }
    let distinct = datasets::tabular::distinct_count(values);
    let why = datasets::user_csv::regression_rule(Some(distinct))
        .unwrap_or_else(|| "read as values".into());
    format!("target `{}`: {why}", table.target)
}

/// The values of `table`'s target (a regression table).
fn values(table: &Table) -> Result<&[f64]> {
    table
        .target_values
        .as_deref()
        .with_context(|| format!("{}: the target was not read as values", table.source))
}

/// `generate` on a regression table: bins of the training target condition the
/// data-conditioned generator, a ridge readout in its hidden space writes the output.
pub fn generate(args: &GenerateArgs, table: &Table, t_data: f64, dev: &Device) -> Result<()> {
    ensure!(
        args.finetune_epochs == 0,
        "--finetune-epochs is for classifiers; a regression model is generated in one pass (drop --finetune-epochs)"
    );
    ensure!(
        args.source.dataset.is_none(),
        "the built-in datasets are classification tasks"
    );
    let y = values(table)?;
    let n = y.len();
    let (train, val, _) = split_indices(n, args.seed).with_context(|| {
        format!(
            "{}: {n} rows: need at least 3 to split into train, validation and test",
            table.source
        )
    })?;
    let (labels, names) = regression::quantile_bins(y, &train, BINS);
    if names.len() < 2 {
        bail!(
            "{}: the target `{}` is constant in the training split: nothing to regress",
            table.source,
            table.target
        );
    }
    let mut binned = table.clone();
    binned.labels = labels;
    binned.class_names = names;
    binned.target_values = None;
    let mut splits = split_and_fit(&binned, args.seed)
        .with_context(|| format!("preprocessing {}", table.source))?;
    splits.preprocessor.class_names = vec![table.target.clone()];
    // The readout sees inputs within the training range only (see `Preprocessor::clip`).
    splits.clip_to_training_range();
    let super::generate::AnyPrelude {
        ck,
        gen,
        d,
        emb,
        t_load,
        t_encode,
    } = super::generate::any_prelude(args, table, &splits.train_rows, dev)?;
    let t = Instant::now();
    let g = gen.generate(
        &splits.train,
        binned.n_classes(),
        Some(&emb),
        None,
        args.seed,
    )?;
    let f = table.n_features();
    let fit_rows = train.len().min(RIDGE_ROWS);
    let pick = |idx: &[usize]| -> Vec<f64> { idx.iter().map(|&i| y[i]).collect() };
    let val_y = pick(&val);
    let fit_split = datasets::preprocess::Split {
        x: splits.train.x[..fit_rows * f].to_vec(),
        y: splits.train.y[..fit_rows].to_vec(),
        n_features: f,
    };
    let readout = regression::fit_readout(
        &g.params,
        (&fit_split, &pick(&train[..fit_rows])),
        (&splits.val.x, &val_y),
        &rule(table, y, args.source.csv.task == Some(TaskArg::Regression)),
        args.seed,
    )?;
    let t_generate = t.elapsed().as_secs_f64();
    let mlp = MlpConfig {
        hidden: vec![readout.hidden],
        activation: Activation::Relu,
        dropout: 0.0,
    };
    let pred = predict_values(
        &target_models::mlp::Mlp::new(mlp.clone()),
        &readout.params,
        &splits.val.x,
        f,
        dev,
    )?;
    let scores = regression_scores(&pred, &val_y).ok();
    let mean = readout.info.target_mean;
    let mean_r2 = regression_scores(&vec![mean; val_y.len()], &val_y)
        .ok()
        .map(|s| s.r2);
    let info = readout.info.clone();
    let t = Instant::now();
    let dir = ModelDir {
        info: ModelInfo {
            mlp: mlp.clone(),
            dataset: table.name.clone(),
            columns: table.columns.iter().map(|c| c.name.clone()).collect(),
            target: table.target.clone(),
            class_names: vec![table.target.clone()],
            source_task: format!("data-conditioned generator {}", ck.display()),
            similarity: 1.0,
            adapted: Vec::new(),
            seed: args.seed,
            data_rows: Some(n),
            data_fnv64: super::generate::data_fingerprint(args)?,
            regression: Some(info.clone()),
            head: None,
        },
        params: readout.params,
        metadata: d.metadata.clone(),
        requirement: d.requirement.clone(),
        preprocessor: splits.preprocessor,
    };
    dir.save_with_card(
        &args.out,
        &hyper_infer::model_card::CardNotes {
            data: Some(format!("{n} rows of {}", table.source)),
            ..Default::default()
        },
    )?;
    let t_write = t.elapsed().as_secs_f64();
    let stages = [
        ("load + preprocess data", t_data),
        ("load generator + encoder", t_load),
        ("requirement", d.requirement_secs),
        ("metadata", d.metadata_secs),
        ("encode", t_encode),
        ("generate + ridge readout", t_generate),
        ("write model", t_write),
    ];
    if args.json {
        return super::print_json(&serde_json::json!({
            "requirement": d.requirement,
            "metadata": d.metadata,
            "backend": args.backend.backend,
            "generator": "any",
            "task": "regression",
            "regression": info,
            "generated_arch": format!("mlp {}", readout.hidden),
            "support_rows": g.support_rows,
            "validation": scores.map(|s| serde_json::json!({
                "r2": s.r2, "rmse": s.rmse, "mae": s.mae, "rows": val_y.len(),
                "mean_predictor_r2": mean_r2,
            })),
            "timings": super::stage_timings(&stages),
            "out": args.out,
        }));
    }
    println!("requirement: {}", d.requirement);
    println!("metadata: {}", serde_json::to_string(&d.metadata)?);
    println!(
        "task: regression ({}; --task classification reads it as classes)",
        info.rule
    );
    println!(
        "generator: data-conditioned ({}); MLP {f} → {} → 1 from {} training rows in {} quantile bins, ridge readout (λ {}) on {fit_rows} rows",
        ck.display(),
        readout.hidden,
        g.support_rows,
        binned.n_classes(),
        info.lambda
    );
    match scores {
        Some(s) => println!(
            "validation r2 {:.4}  rmse {:.4}  mae {:.4} ({} rows; predicting the training mean: r2 {:.4})",
            s.r2,
            s.rmse,
            s.mae,
            val_y.len(),
            mean_r2.unwrap_or(f64::NAN)
        ),
        None => println!("validation: the validation target is constant; no R² to report"),
    }
    if let (Some(s), Some(m)) = (scores, mean_r2) {
        if s.r2 <= m {
            eprintln!(
                "warning: the model does not beat predicting the training mean on the validation rows (r2 {:.4} vs {:.4})",
                s.r2, m
            );
        }
    }
    super::print_stages(&stages);
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The scores of a regression model on the `rows` of `table` (its target read as values).
pub fn scores(m: &ModelDir, table: &Table, rows: &[usize]) -> Result<RegressionScores> {
    let y = values(table)?;
    let x = m.encode_rows(table)?;
    let f = m.info.columns.len();
    let xs: Vec<f32> = rows
        .iter()
        .flat_map(|&r| x[r * f..(r + 1) * f].iter().copied())
        .collect();
    let pred = predict_values(&m.mlp(), &m.params, &xs, f, &Device::Cpu)?;
    let gold: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
    regression_scores(&pred, &gold)
        .with_context(|| format!("scoring {} rows of {}", rows.len(), table.source))
}

/// `predict` of a regression model: `row,prediction` per record (an unscored record gets
/// an empty prediction), and the JSON report.
pub fn predict(
    m: &ModelDir,
    model: &Path,
    table: &Table,
    x: &[f32],
    rows: &super::RowOrder,
    out: &Path,
    json: bool,
) -> Result<()> {
    let v = predict_values(&m.mlp(), &m.params, x, m.info.columns.len(), &Device::Cpu)?;
    let mut text = String::from("row,prediction\n");
    let mut predictions = Vec::with_capacity(rows.len());
    for (i, slot) in rows.iter().enumerate() {
        match slot {
            Some(r) => {
                text.push_str(&format!("{i},{:.6}\n", v[r]));
                predictions.push(serde_json::Value::from(v[r]));
            }
            None => {
                text.push_str(&format!("{i},\n"));
                predictions.push(serde_json::Value::Null);
            }
        }
    }
    rows.warn_unscored(&table.source);
    super::write_output(out, &text)?;
    if json {
        super::PredictReport {
            modality: "table",
            model,
            data: &table.source,
            class_names: &m.info.class_names,
            predictions,
            probabilities: rows.iter().map(|_| None).collect(),
            files: None,
            unscored: rows.unscored_json(),
            out,
        }
        .print_json()?;
    } else if out.as_os_str() != "-" {
        println!("wrote {} predictions to {}", rows.len(), out.display());
    }
    Ok(())
}
