//! Issue 12's speed figures for the CV half.
//!
//! - `cv_generate/<domain>`: the user path for one image domain once its images are read:
//!   write the requirement (profile backend), encode it, one generator pass, and the PEFT
//!   adapter directory on disk. Beside it, Finetune (every conv and `fc`, BatchNorm frozen,
//!   one epoch over the first `FINETUNE_IMAGES` training images, batch 32) is timed once
//!   per domain in the same run and the ratio Finetune ÷ generate printed (the paper's
//!   Table 3 reports 258x; `cargo xtask reproduce cv` gives the E2E ratio).
//! - `cv_step/{full,lora}`: one training step (forward + backward + AdamW) of the
//!   committed backbone at 32×32, batch 64; with `HYPER_TORCH_PYTHON` set to a Python with
//!   torch + peft, `torch_resnet_step.py` times the same step in PyTorch in the same run.
//! - `conv_backward/{im2col,candle}`: one 3×3 conv's forward + backward at a ResNet
//!   shape, through hyper-core's im2col conv and through candle's `conv2d` (whose CPU
//!   backward is a direct convolution), in the same run.
//!
//! `cargo bench -p benches --bench cv -- --warm-up-time 1 --measurement-time 5`

use std::ffi::OsStr;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use hyper_core::optim::{Adam, AdamConfig};
use hyper_infer::image_model_dir::{ImageModelDir, ImageModelInfo, IMAGE_MODEL_FORMAT};
use hyper_infer::vision::{self, ImageGenerator, ImageSetName};
use hyper_train::cv::experiment::{finetune_model, seeded_lora_init};
use hyper_train::cv::CvConfig;
use target_models::lora::TargetModules;

const FINETUNE_IMAGES: usize = 2000;

fn cv_config() -> CvConfig {
    CvConfig::load(&datasets::paths::workspace_root().join("configs/cv.toml"))
        .unwrap_or_else(|e| panic!("{e:#}"))
}

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

fn training_step(c: &mut Criterion) {
    let dev = Device::Cpu;
    let cfg = cv_config();
    if !cfg.architecture.backbone_path().exists() {
        eprintln!("skipping cv_step: no backbone (run `cargo xtask pretrain backbone`)");
        return;
    }
    let x = Tensor::randn(0f32, 1., (64, 3, 32, 32), &dev).unwrap();
    let y = Tensor::from_vec((0..64u32).map(|i| i % 10).collect(), 64, &dev).unwrap();
    let mut g = c.benchmark_group("cv_step");
    g.sample_size(10);
    let (full, fc, vars) = finetune_model(&cfg, 10, 0, &dev).unwrap();
    let mut opt = Adam::new(vars, AdamConfig::adamw(1e-4, 0.0));
    g.bench_function("full", |b| {
        b.iter(|| {
            let l = hyper_core::layers::cross_entropy(&full.classify(&fc, &x, true).unwrap(), &y)
                .unwrap();
            opt.step(&l.backward().unwrap()).unwrap();
        })
    });
    let lora = cfg.architecture.load_backbone(&dev).unwrap();
    let (pm, vars) = seeded_lora_init(&lora, 10, 0, &dev)
        .unwrap()
        .to_vars()
        .unwrap();
    let mut opt = Adam::new(vars, AdamConfig::adamw(1e-3, 0.0));
    g.bench_function("lora", |b| {
        b.iter(|| {
            let l = hyper_core::layers::cross_entropy(&lora.classify(&pm, &x, true).unwrap(), &y)
                .unwrap();
            opt.step(&l.backward().unwrap()).unwrap();
        })
    });
    g.finish();
    // The backbone and LoRA shape go to PyTorch from the same config, so the two steps
    // cannot drift apart.
    let (arch, lora) = (&cfg.architecture.backbone, &cfg.architecture.lora);
    let targets = match &lora.target_modules {
        TargetModules::Regex(re) => re.clone(),
        TargetModules::List(names) => names.join(","),
    };
    let (width, r, alpha) = (
        arch.width.to_string(),
        lora.r.to_string(),
        lora.alpha.to_string(),
    );
    benches::torch_same_run(
        "torch_resnet_step.py",
        &[
            cfg.architecture.backbone_path().as_os_str(),
            OsStr::new(&width),
            OsStr::new(&arch.arch),
            OsStr::new(&r),
            OsStr::new(&alpha),
            OsStr::new(&targets),
        ],
    );
}

fn conv_backward(c: &mut Criterion) {
    let dev = Device::Cpu;
    // layer2 of a width-32 ResNet-18 at 32×32 input, batch 64: 64→64 channels on 4×4.
    let x = Var::randn(0f32, 1., (64, 64, 4, 4), &dev).unwrap();
    let w = Var::randn(0f32, 0.1, (64, 64, 3, 3), &dev).unwrap();
    let mut g = c.benchmark_group("conv_backward");
    g.sample_size(20);
    g.bench_function("im2col", |b| {
        b.iter(|| {
            let y = hyper_core::layers::conv2d(x.as_tensor(), w.as_tensor(), 1, 1).unwrap();
            y.sum_all().unwrap().backward().unwrap()
        })
    });
    g.bench_function("candle", |b| {
        b.iter(|| {
            let y = x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1).unwrap();
            y.sum_all().unwrap().backward().unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // As in our binaries: subnormals flushed (hyper_core::denormals).
    config = { hyper_core::denormals::init(); Criterion::default() };
    targets = generate_vs_finetune, training_step, conv_backward
}
criterion_main!(benches);
