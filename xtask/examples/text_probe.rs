//! The frozen-encoder probe on text CSVs (`text`, `label` columns), on the seeded 60/10/30
//! splits that `generate --seed S` and `eval --split test` use: logistic regression (L2
//! picked on the validation rows) on all-MiniLM-L6-v2's sentence embeddings of the whole
//! training split; test accuracy for seeds 0-2. The same-run reference of
//! `scripts/text_unseen_quick.sh`.
//!
//! `cargo run --release -p xtask --example text_probe -- A.csv B.csv`
use anyhow::Result;
use candle_core::Device;
use datasets::preprocess::{split_indices, Split};
use datasets::text_csv::{load_text_csv, TextCsvOptions};

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let enc =
        target_models::text_encoder::TextEncoder::load(&datasets::paths::minilm_dir()?, &dev)?;
    for path in &args {
        let d = load_text_csv(
            std::path::Path::new(path),
            &TextCsvOptions {
                text_column: "text".into(),
                pair_column: None,
                target: Some("label".into()),
                delimiter: None,
            },
        )?;
        let (_, y) = d.classes().unwrap();
        let texts: Vec<&str> = d.text_a.iter().map(String::as_str).collect();
        let mut f: Vec<Vec<f32>> = Vec::new();
        for c in texts.chunks(64) {
            f.extend(enc.embed(c)?.to_vec2::<f32>()?);
        }
        for seed in 0..3u64 {
            let (tr, va, te) = split_indices(d.len(), seed).unwrap();
            let mk = |idx: &[usize]| Split {
                x: idx.iter().flat_map(|&i| f[i].clone()).collect(),
                y: idx.iter().map(|&i| y[i]).collect(),
                n_features: f[0].len(),
            };
            let t = std::time::Instant::now();
            let lr = hyper_train::classic::logistic_regression(
                &mk(&tr),
                &mk(&va),
                &mk(&te),
                &Default::default(),
            )?;
            println!(
                "{path}\tseed{seed}\tprobe {lr:.4}\tfit {:.1}s\ttrain rows {}",
                t.elapsed().as_secs_f64(),
                tr.len()
            );
        }
    }
    Ok(())
}
