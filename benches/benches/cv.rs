//! Issue 12's speed figures for the CV half.
//!
//! - `cv_generate/<domain>`: the user path for one image domain once its images are read:
//!   write the requirement (profile backend), encode it, one generator pass, and the PEFT
//!   adapter directory on disk. Beside it, Finetune (every conv and `fc`, BatchNorm frozen,
//!   one epoch over the first `FINETUNE_IMAGES` training images, batch 32) is timed once
//!   per domain in the same run and the ratio Finetune ÷ generate printed (the paper's
//!   Table 3 reports 258x; `cargo xtask reproduce cv` gives the E2E ratio).
//!
//! The training step against PyTorch's and the conv comparison are `benches/cv_step.rs`.
//!
//! `cargo bench -p benches --bench cv -- --warm-up-time 1 --measurement-time 5`

use std::time::Instant;

use benches::cv_config;
use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use hyper_infer::image_model_dir::{ImageModelDir, ImageModelInfo, IMAGE_MODEL_FORMAT};
use hyper_infer::vision::{self, ImageGenerator, ImageSetName};
use hyper_train::cv::experiment::finetune_model;

const FINETUNE_IMAGES: usize = 2000;

fn generate_vs_finetune(c: &mut Criterion) {
    let dev = Device::Cpu;
    let cfg = cv_config();
    let ck = hyper_infer::checkpoint_dir("cv").join("best");
    let minilm = datasets::paths::minilm_dir().unwrap_or_else(|e| panic!("{e}"));
    let gen = match ImageGenerator::load(&ck, &minilm, &dev) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipping cv_generate: {e:#}");
            return;
        }
    };
    let out = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("cv_generate");
    g.sample_size(10);
    let mut ratios = Vec::new();
    for set in [ImageSetName::Mnist5k, ImageSetName::FashionMnist] {
        let (train, _) = set.load().unwrap();
        let dir = out.path().join(set.name());
        let generate = || {
            let s = vision::image_summary(&train, set.name(), Some(set.description()));
            let req = vision::image_requirements(&s, 1, 0).unwrap();
            let a = gen.generate(&req[0], &train.class_names).unwrap();
            let info = ImageModelInfo {
                format: IMAGE_MODEL_FORMAT.into(),
                backbone: gen.architecture.backbone.clone(),
                backbone_weights: gen.architecture.backbone_weights.clone(),
                lora: gen.architecture.lora.clone(),
                class_names: train.class_names.clone(),
                image_set: Some(set.name().into()),
                requirement: req[0].clone(),
                generator: ck.display().to_string(),
                split: None,
                resize: hyper_infer::image_model_dir::RESIZE_POLICY.into(),
                head: None,
            };
            ImageModelDir::new(info, &gen.base, a.params)
                .save(&dir)
                .unwrap();
        };
        let t = Instant::now();
        generate();
        let gen_once = t.elapsed().as_secs_f64();
        g.bench_function(set.name(), |b| b.iter(generate));

        let rows: Vec<usize> = (0..FINETUNE_IMAGES.min(train.n)).collect();
        let first =
            vision::prepare(&vision::subset(&train, &rows), &cfg.architecture.backbone).unwrap();
        let t = Instant::now();
        let (model, fc, vars) = finetune_model(&cfg, first.num_classes(), 0, &dev).unwrap();
        let o = hyper_infer::finetune::TrainOptions {
            epochs: 1,
            batch_size: 32,
            lr: cfg.baseline.finetune_lr,
            weight_decay: cfg.baseline.weight_decay,
            seed: 0,
        };
        vision::train_epochs(&model, &fc, vars, &first, &o, "finetune").unwrap();
        ratios.push((set.name(), t.elapsed().as_secs_f64(), gen_once));
    }
    g.finish();
    for (name, ft, gen_once) in ratios {
        eprintln!(
            "{name}: Finetune (1 epoch, {FINETUNE_IMAGES} images) {ft:.1} s vs generate {gen_once:.3} s (first call): {:.0}x",
            ft / gen_once
        );
    }
}

criterion_group! {
    name = benches;
    // As in our binaries (hyper_core::runtime): subnormals flushed, freed memory kept.
    config = { hyper_core::runtime::init(); Criterion::default() };
    targets = generate_vs_finetune
}
criterion_main!(benches);
