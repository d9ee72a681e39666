//! Issue 11's speed figures for the NLP half.
//!
//! - `nlp_generate/<task>`: the user path for one GLUE task once its data is read: write
//!   the requirement (profile backend), encode it, one generator pass, and the PEFT adapter
//!   directory on disk. Beside it, Finetune (every MiniLM weight, one epoch over the first
//!   `FINETUNE_EXAMPLES` training examples, batch 16) is timed once per task in the same
//!   run, and the ratio Finetune ÷ generate is printed (the paper's headline is ≥ 270x;
//!   `cargo xtask reproduce nlp` reports the E2E ratio at its own training budget).
//! - `nlp_step/{full,lora}[_fused]`: one MiniLM training step (forward + backward +
//!   AdamW) at batch 32 × 128 tokens, with the composed ops and with hyper-core's fused
//!   ones (`_fused`); with `HYPER_TORCH_PYTHON` set to a Python with torch, the
//!   same step in PyTorch is timed in the same run by `benches/torch_step.py` and the
//!   ratio printed.
//!
//! `cargo bench -p benches --bench nlp -- --warm-up-time 1 --measurement-time 5`

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion};
use datasets::glue::{self, GlueTask};
use hyper_core::optim::{Adam, AdamConfig};
use hyper_infer::text::{
    self, glue_label_texts, text_requirements, text_summary, TextBatch, TextGenerator,
    TextTokenizer, BASE_MODEL_ID,
};
use hyper_infer::text::{train_epochs, TrainOptions};
use hyper_infer::text_model_dir::{TextModelDir, TextModelInfo, TEXT_MODEL_FORMAT};
use hyper_train::nlp::experiment::finetune_model;
use hyper_train::nlp::TextSet;
use target_models::bert::BertModel;
use target_models::lora::init_params;

const FINETUNE_EXAMPLES: usize = 256;
const TASKS: [GlueTask; 6] = [
    GlueTask::Cola,
    GlueTask::Sst2,
    GlueTask::Mrpc,
    GlueTask::Stsb,
    GlueTask::Rte,
    GlueTask::Wnli,
];

fn generate_vs_finetune(c: &mut Criterion) {
    let dev = Device::Cpu;
    let minilm = datasets::paths::minilm_dir().unwrap_or_else(|e| panic!("{e}"));
    let ck = hyper_infer::checkpoint_dir("nlp").join("best");
    let gen = match TextGenerator::load(&ck, &minilm, &dev) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipping nlp_generate: {e:#}");
            return;
        }
    };
    let tok = TextTokenizer::load(&minilm, gen.architecture.max_len).unwrap();
    let root = GlueTask::default_root();
    let out = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("nlp_generate");
    g.sample_size(10);
    let mut ratios = Vec::new();
    for task in TASKS {
        let Ok(split) = glue::load(task, "train", &root) else {
            eprintln!(
                "skipping {task}: GLUE data not found under {}",
                root.display()
            );
            continue;
        };
        let labels = glue_label_texts(task);
        let dir = out.path().join(task.name());
        let generate = || {
            let req = text_requirements(&text_summary(&split, true), 1, 0).unwrap();
            let a = gen.generate(&req[0], &labels).unwrap();
            let info = TextModelInfo {
                format: TEXT_MODEL_FORMAT.into(),
                base_model: BASE_MODEL_ID.into(),
                task: if task.is_regression() {
                    "seq_reg"
                } else {
                    "seq_cls"
                }
                .into(),
                label_names: labels.clone(),
                glue_task: Some(task.name().into()),
                text_column: None,
                text_pair_column: None,
                target: None,
                max_len: gen.architecture.max_len,
                requirement: req[0].clone(),
                generator: ck.display().to_string(),
            };
            TextModelDir::new(info, &gen.base, a.params)
                .save(&dir)
                .unwrap();
        };
        let t = Instant::now();
        generate();
        let gen_once = t.elapsed().as_secs_f64();
        g.bench_function(task.name(), |b| b.iter(generate));

        let first = glue::GlueSplit {
            task,
            split: split.split.clone(),
            examples: split.examples[..FINETUNE_EXAMPLES.min(split.len())].to_vec(),
            source: split.source.clone(),
        };
        let set = TextSet {
            examples: tok.encode_split(&first).unwrap(),
            labels: first.labels(),
        };
        let t = Instant::now();
        let (model, head, mut vars) = finetune_model(&minilm, labels.len(), 0, &dev).unwrap();
        let (head, hv) = head.to_vars().unwrap();
        vars.extend(hv);
        train_epochs(
            &model,
            &head,
            vars,
            &set.examples,
            &set.labels,
            &TrainOptions {
                epochs: 1,
                batch_size: 16,
                lr: 5e-5,
                weight_decay: 0.01,
                seed: 0,
            },
            "finetune",
        )
        .unwrap();
        let ft = t.elapsed().as_secs_f64();
        ratios.push((task, ft, gen_once));
    }
    g.finish();
    for (task, ft, gen_once) in ratios {
        eprintln!(
            "{task}: Finetune (1 epoch, {FINETUNE_EXAMPLES} examples) {ft:.1} s vs generate {gen_once:.3} s (first call): {:.0}x",
            ft / gen_once
        );
    }
}

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

criterion_group! {
    name = benches;
    // As in our binaries: subnormals flushed (hyper_core::denormals).
    config = { hyper_core::denormals::init(); Criterion::default() };
    targets = generate_vs_finetune, training_step
}
criterion_main!(benches);
