//! Baselines for image folders on the seeded 60/10/30 splits that `generate --images DIR
//! --seed S` and `eval --split test` use: logistic regression on raw pixels (the images as
//! loaded, in [0, 1]) and on the frozen backbone's pooled features (the CV checkpoint's
//! backbone, L2 picked on the validation images); test accuracy for seeds 0-2. The same-run
//! reference of `scripts/image_unseen_quick.sh`.
//!
//! `cargo run --release -p xtask --example image_probe -- DIR...`
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use datasets::images::{load_class_folders, ImageSet};
use datasets::preprocess::{split_indices, Split};
use hyper_infer::vision::{self, ImageGenerator};
use hyper_train::classic::{logistic_regression, logistic_regression_unscaled};

fn split_of(x: &[Vec<f32>], y: &[usize], idx: &[usize]) -> Split {
    Split {
        x: idx.iter().flat_map(|&i| x[i].clone()).collect(),
        y: idx.iter().map(|&i| y[i]).collect(),
        n_features: x[0].len(),
    }
}

fn rows(set: &ImageSet) -> Vec<Vec<f32>> {
    (0..set.n).map(|i| set.image(i).to_vec()).collect()
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let ck = hyper_infer::checkpoint_dir("cv").join("best");
    let gen = ImageGenerator::load(&ck, &datasets::paths::minilm_dir()?, &dev)?;
    for dir in std::env::args().skip(1) {
        let set = load_class_folders(Path::new(&dir), None)?;
        let frozen =
            hyper_infer::image_head::without_adapter(&gen.generate("", &set.class_names)?.params)?;
        let t = Instant::now();
        let prepared = vision::prepare(&set, &gen.architecture.backbone)?;
        let feats = hyper_infer::image_head::features(&gen.base, &frozen, &prepared)?;
        let feat_secs = t.elapsed().as_secs_f64();
        let pixels = rows(&set);
        for seed in 0..3u64 {
            let (tr, va, te) = split_indices(set.n, seed).unwrap();
            let cfg = Default::default();
            let t = Instant::now();
            let [a, b, c] = [&tr, &va, &te].map(|i| split_of(&pixels, &set.labels, i));
            let pix = logistic_regression_unscaled(&a, &b, &c, &cfg)?;
            let pix_secs = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let [a, b, c] = [&tr, &va, &te].map(|i| split_of(&feats, &set.labels, i));
            let probe = logistic_regression(&a, &b, &c, &cfg)?;
            println!(
                "{dir}\tseed{seed}\tpixel-lr {pix:.4} ({pix_secs:.1}s)\tbackbone-probe {probe:.4} ({:.1}s + features {feat_secs:.1}s for all {} images)\ttrain {}",
                t.elapsed().as_secs_f64(),
                set.n,
                tr.len()
            );
        }
    }
    Ok(())
}
