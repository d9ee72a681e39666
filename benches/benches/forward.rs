//! CPU forward time of the NLP and CV targets with LoRA attached (PEFT init, B = 0), the
//! path the one-pass generator drives: BERT-MiniLM (real all-MiniLM-L6-v2 weights, batch 8,
//! seq 128) and ResNet-50 (random weights, batch 8, 32×32 and 224×224).
//!
//! `cargo bench -p benches --bench forward -- --warm-up-time 1 --measurement-time 5`

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion};
use target_models::bert::BertModel;
use target_models::lora::{init_params, LoraConfig};
use target_models::resnet::{ResNet, ResNetConfig};

fn bert(c: &mut Criterion) {
    let dev = Device::Cpu;
    let dir = datasets::paths::minilm_dir().unwrap_or_else(|e| panic!("{e}"));
    let model = match BertModel::load(&dir, LoraConfig::bert_default(), &dev) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("skipping BERT bench: {e:#} (run `cargo xtask fetch`)");
            return;
        }
    };
    let vm = VarMap::new();
    let params = init_params(
        &model.param_spec_for(2),
        &VarBuilder::from_varmap(&vm, DType::F32, &dev),
    )
    .unwrap();
    let ids = Tensor::rand(1000f32, 29000., (8, 128), &dev)
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap();
    let mask = Tensor::ones((8, 128), DType::U32, &dev).unwrap();
    let fused = model.clone().with_fused_inference(true);
    let mut g = c.benchmark_group("bert_minilm_b8_s128");
    g.sample_size(10);
    g.bench_function("lora_fused_inference", |b| {
        b.iter(|| {
            fused
                .classify(&params, &ids, Some(&mask), None, false)
                .unwrap()
        })
    });
    g.bench_function("lora_trainable_ops", |b| {
        b.iter(|| {
            model
                .classify(&params, &ids, Some(&mask), None, false)
                .unwrap()
        })
    });
    g.finish();
}

fn resnet(c: &mut Criterion) {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    let model =
        ResNet::from_vb(&vb, ResNetConfig::resnet50(), LoraConfig::resnet_default()).unwrap();
    let params = init_params(&model.param_spec_for(10), &vb.pp("gen")).unwrap();
    let mut g = c.benchmark_group("resnet50_b8");
    g.sample_size(10);
    for hw in [32usize, 224] {
        let x = Tensor::randn(0f32, 1., (8, 3, hw, hw), &dev).unwrap();
        g.bench_function(format!("lora_{hw}x{hw}"), |b| {
            b.iter(|| model.classify(&params, &x, false).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // As in our binaries (hyper_core::runtime): subnormals flushed, freed memory kept.
    config = { hyper_core::runtime::init(); Criterion::default() };
    targets = bert, resnet
}
criterion_main!(benches);
