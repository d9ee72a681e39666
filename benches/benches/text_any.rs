//! The text-any timing bar: generating a model for a text task the generator never saw,
//! from a 1,000-row support set (SST-2 training rows read as a user's CSV would be).
//!
//! - `text_any/fit_head_1000`: the fitted head ([`hyper_infer::text_head::fit`]) from the
//!   support rows' encoder features and 300 validation rows': the generation step once the
//!   rows are encoded.
//! - `text_any/encode_and_fit_1000`: the same plus encoding those 1,300 rows with the frozen
//!   encoder, the whole per-task cost.
//!
//! Beside them, timed once in the same run and printed: the frozen-encoder probe
//! (logistic regression, L2 picked on the validation rows) on the same features, and one
//! epoch of LoRA finetuning on 256 of the rows.
//!
//! `cargo bench -p benches --bench text_any -- --warm-up-time 1 --measurement-time 5`

use std::time::Instant;

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use datasets::glue::{self, GlueTask, Label};
use datasets::preprocess::Split;
use hyper_infer::text::{train_epochs, TextGenerator, TrainOptions};
use hyper_infer::text_head;
use target_models::bert::Pooling;
use target_models::lora::seeded_init_params;

const SUPPORT: usize = 1000;
const VAL: usize = 300;

fn text_any(c: &mut Criterion) {
    let dev = Device::Cpu;
    let ck = hyper_infer::checkpoint_dir("nlp").join("best");
    let load = || -> anyhow::Result<TextGenerator> {
        TextGenerator::load(&ck, &datasets::paths::minilm_dir()?, &dev)
    };
    let gen = match load() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipping text_any: {e:#}");
            return;
        }
    };
    let Ok(mut split) = glue::load(GlueTask::Sst2, "train", &GlueTask::default_root()) else {
        eprintln!("skipping text_any: GLUE SST-2 not found");
        return;
    };
    split.examples.truncate(SUPPORT + VAL);
    let minilm = datasets::paths::minilm_dir().unwrap();
    let tok = hyper_infer::text::TextTokenizer::load(&minilm, text_head::MAX_TOKENS).unwrap();
    let enc = tok.encode_split(&split).unwrap();
    let y: Vec<usize> = split.labels().iter().map(|l| l.class().unwrap()).collect();
    let base = gen.base.clone().with_pooling(Pooling::Mean);
    let zero = seeded_init_params(&base.param_spec_for(2), 0, &dev).unwrap();
    let fit = |f: &[Vec<f32>]| {
        let (x, v) = f.split_at(SUPPORT);
        let (ys, yv) = y.split_at(SUPPORT);
        text_head::fit(x, ys, 2, ys, Some((v, yv))).unwrap()
    };
    let f = text_head::features(&base, &zero, &enc).unwrap();
    let mut g = c.benchmark_group("text_any");
    g.sample_size(10);
    g.bench_function("fit_head_1000", |b| b.iter(|| fit(&f)));
    g.bench_function("encode_and_fit_1000", |b| {
        b.iter(|| fit(&text_head::features(&base, &zero, &enc).unwrap()))
    });
    g.finish();

    let t = Instant::now();
    let as_split = |r: std::ops::Range<usize>| Split {
        x: f[r.clone()].iter().flatten().copied().collect(),
        y: y[r].to_vec(),
        n_features: f[0].len(),
    };
    let (tr, va) = (as_split(0..SUPPORT), as_split(SUPPORT..SUPPORT + VAL));
    hyper_train::classic::logistic_regression(&tr, &va, &va, &Default::default()).unwrap();
    eprintln!(
        "text_any: frozen-encoder probe fit on the same features: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let (pm, vars) = zero.to_vars().unwrap();
    let labels: Vec<Label> = y[..256].iter().map(|&c| Label::Class(c)).collect();
    let opts = TrainOptions {
        epochs: 1,
        batch_size: 16,
        lr: 1e-3,
        weight_decay: 0.01,
        seed: 0,
    };
    let t = Instant::now();
    train_epochs(&base, &pm, vars, &enc[..256], &labels, &opts, "LoRA").unwrap();
    eprintln!(
        "text_any: LoRA finetune, 1 epoch on 256 rows: {:.2} s",
        t.elapsed().as_secs_f64()
    );
}

criterion_group!(benches, text_any);
criterion_main!(benches);
