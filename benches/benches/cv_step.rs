//! Issue 12's training-step figures, a bench target of their own so that timing or
//! profiling them runs nothing else.
//!
//! - `cv_step/{full,lora}`: one training step (forward + backward + AdamW) of the
//!   committed backbone at 32×32, batch 64; with `HYPER_TORCH_PYTHON` set to a Python with
//!   torch + peft, `torch_resnet_step.py` times the same step in PyTorch in the same run.
//! - `conv_backward/{im2col,candle}`: one 3×3 conv's forward + backward at a ResNet
//!   shape, through hyper-core's im2col conv and through candle's `conv2d` (whose CPU
//!   backward is a direct convolution), in the same run.
//!
//! `cargo bench -p benches --bench cv_step -- --warm-up-time 1 --measurement-time 5`

use std::ffi::OsStr;

use benches::cv_config;
use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use hyper_core::optim::{Adam, AdamConfig};
use hyper_train::cv::experiment::{finetune_model, seeded_lora_init};
use target_models::lora::TargetModules;

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
    // As in our binaries (hyper_core::runtime): subnormals flushed, freed memory kept.
    config = { hyper_core::runtime::init(); Criterion::default() };
    targets = training_step, conv_backward
}
criterion_main!(benches);
