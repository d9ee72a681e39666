//! Regression baselines on the seeded 60/10/30 splits that `generate --data X.csv --seed S`
//! and `eval --split test` use, with the same preprocessing (fill + min-max fitted on the
//! training rows): predict-the-training-mean, ridge (standardised, λ on validation) and
//! gradient-boosted trees (squared error); test R² for seeds 0-2. The same-run reference of
//! `scripts/table_regression_quick.sh`. The target is the CSV's last column.
//!
//! `cargo run --release -p xtask --example regression_baselines -- A.csv B.csv`
use std::path::Path;

use anyhow::Result;
use datasets::metrics::regression_scores;
use datasets::preprocess::{split_indices, Preprocessor, Split};
use datasets::user_csv::{load_csv, CsvOptions, TargetTask};
use hyper_train::classic::{gbdt_regression, ridge_regression};

fn main() -> Result<()> {
    for path in std::env::args().skip(1) {
        let t = load_csv(
            Path::new(&path),
            &CsvOptions {
                task: TargetTask::Regression,
                ..Default::default()
            },
        )?;
        let y = t.target_values.clone().unwrap_or_default();
        for seed in 0..3u64 {
            let (tr, va, te) = split_indices(t.n_rows(), seed).unwrap();
            let pre = Preprocessor::fit(&t, &tr)?;
            let split = |idx: &[usize]| -> Result<(Split, Vec<f64>)> {
                Ok((
                    Split {
                        x: pre.transform_table(&t.subset_rows(idx))?,
                        y: vec![0; idx.len()],
                        n_features: t.n_features(),
                    },
                    idx.iter().map(|&i| y[i]).collect(),
                ))
            };
            let ((a, ay), (b, by), (c, cy)) = (split(&tr)?, split(&va)?, split(&te)?);
            let mean = ay.iter().sum::<f64>() / ay.len() as f64;
            let r2 = |p: &[f64]| regression_scores(p, &cy).map(|s| s.r2).unwrap_or(f64::NAN);
            let s = std::time::Instant::now();
            let ridge = r2(&ridge_regression((&a, &ay), (&b, &by), &c)?);
            let ridge_secs = s.elapsed().as_secs_f64();
            let s = std::time::Instant::now();
            let gbdt = r2(&gbdt_regression((&a, &ay), &c, &Default::default()));
            println!(
                "{path}\tseed{seed}\tmean {:.4}\tridge {ridge:.4} ({ridge_secs:.2}s)\tgbdt {gbdt:.4} ({:.2}s)",
                r2(&vec![mean; cy.len()]),
                s.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
