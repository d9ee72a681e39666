//! Issue 11's speed figures for the NLP half.
//!
//! - `nlp_generate/<task>`: the user path for one GLUE task once its data is read: write
//!   the requirement (profile backend), encode it, one generator pass, and the PEFT adapter
//!   directory on disk. Beside it, Finetune (every MiniLM weight, one epoch over the first
//!   `FINETUNE_EXAMPLES` training examples, batch 16) is timed once per task in the same
//!   run, and the ratio Finetune ÷ generate is printed (the paper's headline is ≥ 270x;
//!   `cargo xtask reproduce nlp` reports the E2E ratio at its own training budget).
//!
//! The training step against PyTorch's is `benches/nlp_step.rs`.
//!
//! `cargo bench -p benches --bench nlp -- --warm-up-time 1 --measurement-time 5`

use std::time::Instant;

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use datasets::glue::{self, GlueTask};
use hyper_infer::text::{
    glue_label_texts, text_requirements, text_summary, TextGenerator, TextTokenizer, BASE_MODEL_ID,
};
use hyper_infer::text::{train_epochs, TrainOptions};
use hyper_infer::text_model_dir::{TextModelDir, TextModelInfo, TEXT_MODEL_FORMAT};
use hyper_train::nlp::experiment::finetune_model;
use hyper_train::nlp::TextSet;

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
                split: None,
                pooling: Default::default(),
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

criterion_group! {
    name = benches;
    // As in our binaries (hyper_core::runtime): subnormals flushed, freed memory kept.
    config = { hyper_core::runtime::init(); Criterion::default() };
    targets = generate_vs_finetune
}
criterion_main!(benches);
