//! Issue 11's training-step figure: one MiniLM training step (forward + backward + AdamW)
//! at batch 32 × 128 tokens, `nlp_step/{full,lora}[_fused]`, with the composed ops and
//! with hyper-core's fused ones (`_fused`). With `HYPER_TORCH_PYTHON` set to a Python with
//! torch, the same step in PyTorch is timed in the same run by `benches/torch_step.py`.
//! Its own bench target, so profiling or timing the step runs nothing else.
//! `attention_bmm/{hyper_core,candle}`: one layer's two attention products (`q·kᵀ`,
//! `probs·v`) forward + backward at that shape, through `hyper_core::bmm` and through
//! candle's matmul, in the same run. `attention_probs/{hyper_core,candle}`: attention's
//! scale, padding mask, softmax and dropout forward + backward at that shape, as
//! `hyper_core::attention`'s one op, as the chain the fused path ran before it (hyper-core's
//! fused softmax between candle's scale, mask add and dropout), and as candle's ops.
//!
//! `cargo bench -p benches --bench nlp_step -- --warm-up-time 1 --measurement-time 5`

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion};
use datasets::glue;
use hyper_core::optim::{Adam, AdamConfig};
use hyper_infer::text::{self, TextBatch};
use hyper_train::nlp::experiment::finetune_model;
use target_models::bert::BertModel;
use target_models::lora::init_params;

/// A batch of `b` sequences of `len` tokens (no padding), ids spread over the vocabulary.
fn batch(b: usize, len: usize, dev: &Device) -> TextBatch {
    let ids: Vec<u32> = (0..b * len)
        .map(|i| 1000 + (i as u32 * 7919) % 28000)
        .collect();
    TextBatch {
        ids: Tensor::from_vec(ids, (b, len), dev).unwrap(),
        mask: Tensor::ones((b, len), DType::U32, dev).unwrap(),
        types: Tensor::zeros((b, len), DType::U32, dev).unwrap(),
    }
}

fn training_step(c: &mut Criterion) {
    let dev = Device::Cpu;
    let minilm = datasets::paths::minilm_dir().unwrap_or_else(|e| panic!("{e}"));
    if !minilm.join("model.safetensors").is_file() {
        eprintln!("skipping nlp_step: MiniLM not fetched (cargo xtask fetch)");
        return;
    }
    let b = batch(32, 128, &dev);
    let labels: Vec<glue::Label> = (0..32).map(|i| glue::Label::Class(i % 2)).collect();
    let mut g = c.benchmark_group("nlp_step");
    g.sample_size(10);
    // `_fused`: the same step with hyper-core's fused layer norm, softmax and GELU on the
    // training path (`BertModel::with_fused_training`).
    for (suffix, fused) in [("", false), ("_fused", true)] {
        let (model, head, mut vars) = finetune_model(&minilm, 2, 0, &dev).unwrap();
        let model = model.with_fused_training(fused);
        let (head, hv) = head.to_vars().unwrap();
        vars.extend(hv);
        let mut opt = Adam::new(vars, AdamConfig::adamw(5e-5, 0.01));
        let mut step = || {
            let loss =
                text::loss(&text::logits(&model, &head, &b, true).unwrap(), &labels).unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        };
        g.bench_function(format!("full{suffix}"), |bch| bch.iter(&mut step));
        drop(opt);
        let lora_cfg = hyper_infer::text::NlpLoraConfig::default().lora_config();
        let lora = BertModel::load(&minilm, lora_cfg, &dev)
            .unwrap()
            .with_fused_training(fused);
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let init = init_params(&lora.param_spec_for(2), &vb).unwrap();
        let (params, vars) = init.to_vars().unwrap();
        let mut opt = Adam::new(vars, AdamConfig::adamw(5e-4, 0.01));
        let mut step = || {
            let loss =
                text::loss(&text::logits(&lora, &params, &b, true).unwrap(), &labels).unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        };
        g.bench_function(format!("lora{suffix}"), |bch| bch.iter(&mut step));
    }
    g.finish();
    benches::torch_same_run("torch_step.py", &[minilm.as_os_str()]);
}

fn attention_bmm(c: &mut Criterion) {
    let dev = Device::Cpu;
    // MiniLM at batch 32 × 128 tokens: 12 heads of 32 dims.
    let q = Var::randn(0f32, 1., (32, 12, 128, 32), &dev).unwrap();
    let k = Var::randn(0f32, 1., (32, 12, 128, 32), &dev).unwrap();
    let v = Var::randn(0f32, 1., (32, 12, 128, 32), &dev).unwrap();
    let mut g = c.benchmark_group("attention_bmm");
    g.sample_size(20);
    type Mm = fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>;
    let ours: Mm = hyper_core::bmm::batched_matmul;
    let theirs: Mm = |a, b| a.matmul(b);
    for (name, mm) in [("hyper_core", ours), ("candle", theirs)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let s = mm(q.as_tensor(), &k.as_tensor().t().unwrap()).unwrap();
                let ctx = mm(&s, v.as_tensor()).unwrap();
                ctx.sum_all().unwrap().backward().unwrap()
            })
        });
    }
    g.finish();
}

fn attention_probs(c: &mut Criterion) {
    let dev = Device::Cpu;
    let x = Var::randn(0f32, 1., (32, 12, 128, 128), &dev).unwrap();
    // Padding on the last 16 keys of every other sequence.
    let keep: Vec<f32> = (0..32 * 128)
        .map(|i| {
            if (i / 128) % 2 == 1 && i % 128 >= 112 {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let m = Tensor::from_vec(keep, (32, 1, 1, 128), &dev).unwrap();
    let mask = (m.affine(-1.0, 1.0).unwrap() * f32::MIN as f64).unwrap();
    let scale = 1.0 / 32f64.sqrt();
    let mut g = c.benchmark_group("attention_probs");
    g.sample_size(20);
    g.bench_function("hyper_core", |b| {
        b.iter(|| {
            let p = hyper_core::attention::attention_probs(
                x.as_tensor(),
                scale as f32,
                Some(&mask),
                0.1,
                true,
            )
            .unwrap();
            p.sum_all().unwrap().backward().unwrap()
        })
    });
    // The chain the fused training path ran before (hyper-core's fused softmax), and the
    // composed one of the default path.
    type Softmax = fn(&Tensor) -> candle_core::Result<Tensor>;
    let fused: Softmax = hyper_core::fused::softmax_last_dim;
    let composed: Softmax = |s| candle_nn::ops::softmax(s, candle_core::D::Minus1);
    for (name, softmax) in [("fused_softmax_chain", fused), ("candle", composed)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let s = (x.as_tensor() * scale)
                    .unwrap()
                    .broadcast_add(&mask)
                    .unwrap();
                let p = hyper_core::layers::dropout(&softmax(&s).unwrap(), 0.1, true).unwrap();
                p.sum_all().unwrap().backward().unwrap()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // As in our binaries (hyper_core::runtime): subnormals flushed, freed memory kept.
    config = { hyper_core::runtime::init(); Criterion::default() };
    targets = training_step, attention_bmm, attention_probs
}
criterion_main!(benches);
