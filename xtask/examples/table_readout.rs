//! The fitted classification readout's ablation on the ten UCI sets as unseen (seeds 2024,
//! 1, 2, as `reproduce tabular-unseen`): the generated output layer, then the LDA readout
//! of `hyper_infer::any_table::fitted_readout` (what `generate --data` does) over the
//! generated units and the basis units (`hyper_infer::basis`) with 0, 256 and 1,024
//! random units; GBDT and logistic regression on the same splits. Test accuracy, mean over
//! the seeds.
//!
//! `cargo run --release -p xtask --example table_readout`
use anyhow::Result;
use candle_core::Device;
use datasets::preprocess::split_and_fit;
use hyper_infer::any_table::{default_any_table_checkpoint, fitted_readout, AnyTableGenerator};
use hyper_infer::{evaluate, SplitTensors};
use hyper_train::classic::{gbdt, logistic_regression};
use target_models::mlp::Mlp;

const RANDOM: [usize; 3] = [0, 256, 1024];

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let gen = AnyTableGenerator::load(&default_any_table_checkpoint(), &dev)?;
    let enc = target_models::TextEncoder::load(&datasets::paths::minilm_dir()?, &dev)?;
    let names = hyper_train::TabularConfig::default().datasets;
    let cols = [
        "generated",
        "random 0",
        "random 256",
        "random 1024",
        "gbdt",
        "logreg",
    ];
    println!("{:<16} {}", "", cols.join("  "));
    let mut tot = [0f64; 6];
    for name in &names {
        let table = datasets::uci::load_builtin(name)?;
        let mut acc = [0f64; 6];
        for seed in [2024u64, 1, 2] {
            let s = split_and_fit(&table, seed)?;
            let c = table.n_classes();
            let (_, emb) =
                hyper_train::unseen::train_only_requirement(&table, &s.train_rows, &enc, seed)?;
            let g = gen.generate(&s.train, c, Some(&emb), None, seed)?;
            let test_t = SplitTensors::from_split(&s.test, &dev)?;
            let mut row = vec![evaluate(&Mlp::new(g.mlp.clone()), &g.params, &test_t)?.1];
            for r in RANDOM {
                let f = fitted_readout(g.clone(), &s.train, c, r, seed)?;
                row.push(evaluate(&Mlp::new(f.mlp), &f.params, &test_t)?.1);
            }
            row.push(gbdt(&s.train, c, &s.test, &Default::default())?);
            row.push(logistic_regression(
                &s.train,
                &s.val,
                &s.test,
                &Default::default(),
            )?);
            for (k, v) in row.iter().enumerate() {
                acc[k] += v / 3.0;
            }
        }
        let cells: Vec<String> = acc.iter().map(|v| format!("{:.3}", v)).collect();
        println!("{name:<16} {}", cells.join("  "));
        for k in 0..6 {
            tot[k] += acc[k] / names.len() as f64;
        }
    }
    let cells: Vec<String> = tot.iter().map(|v| format!("{:.3}", v)).collect();
    println!("{:<16} {}", "average", cells.join("  "));
    Ok(())
}
