//! Algorithm 1 with the BERT target on a tiny checkpoint: every generator tensor gets a
//! non-zero gradient in both meta-grad modes, and an interrupted run resumes exactly.

use candle_core::{Device, Tensor};
use datasets::glue::{GlueTask, Label};
use hyper_core::lora_generator::LoraGeneratorConfig;
use hyper_infer::text::{Encoded, NlpArchitecture, NlpLoraConfig};
use hyper_train::config::{LrSchedule, MetaGrad};
use hyper_train::nlp::{nlp_trainer, NlpConfig, NlpTrainer, TextSet, TextTask};
use target_models::bert::BertModel;
use test_support::bert::tiny_bert;

fn examples(n: usize, seed: u32, regression: bool) -> TextSet {
    let mut ex = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n as u32 {
        let len = 4 + ((i * 7 + seed) % 6) as usize;
        let ids: Vec<u32> = (0..len as u32)
            .map(|k| 1 + (i * 13 + k * 5 + seed) % 49)
            .collect();
        let cls = (ids[1] % 2) as usize;
        ex.push(Encoded {
            types: vec![0; ids.len()],
            ids,
        });
        labels.push(if regression {
            Label::Score(cls as f32 * 4.0 + 0.5)
        } else {
            Label::Class(cls)
        });
    }
    TextSet {
        examples: ex,
        labels,
    }
}

fn task(t: GlueTask, seed: u32) -> TextTask {
    let reg = t.is_regression();
    TextTask {
        task: t,
        train: examples(24, seed, reg),
        val: examples(8, seed + 100, reg),
        dev: examples(8, seed + 200, reg),
        requirements: vec!["a".into(), "b".into()],
        label_texts: t.label_meanings().iter().map(|s| s.to_string()).collect(),
        load_secs: 0.0,
    }
}

fn tiny_cfg(meta_grad: MetaGrad) -> NlpConfig {
    let mut c = NlpConfig {
        architecture: NlpArchitecture {
            lora: NlpLoraConfig {
                r: 2,
                alpha: 4.0,
                dropout: 0.1,
                target_modules: vec!["query".into(), "value".into()],
            },
            generator: LoraGeneratorConfig {
                embed_dim: 8,
                hidden_dim: 16,
                latent_dim: 8,
                slot_dim: 4,
                trunk_dim: 8,
                head_dim: 8,
                ..Default::default()
            },
            max_len: 16,
        },
        ..Default::default()
    };
    c.train.steps = 6;
    c.train.batch_size = 4;
    c.train.checkpoint_every = 3;
    c.train.meta_grad = meta_grad;
    c.train.gen_lr = 1e-2;
    c.train.target_lr = 1e-2;
    c
}

fn trainer(dir: &std::path::Path, meta_grad: MetaGrad) -> NlpTrainer {
    trainer_with(dir, tiny_cfg(meta_grad))
}

fn trainer_with(dir: &std::path::Path, cfg: NlpConfig) -> NlpTrainer {
    let model = tiny_bert(dir, cfg.architecture.lora.lora_config());
    let tasks = vec![task(GlueTask::Sst2, 1), task(GlueTask::Stsb, 2)];
    let emb = |s: f32| -> Vec<Tensor> {
        (0..2)
            .map(|k| {
                Tensor::new(&[s, 1.0, -0.5, k as f32, 0.3, -s, 0.1, 2.0], &Device::Cpu).unwrap()
            })
            .collect()
    };
    let labels = |c: usize| {
        let v: Vec<f32> = (0..c * 8)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
            .collect();
        Tensor::from_vec(v, (c, 8), &Device::Cpu).unwrap()
    };
    nlp_trainer(
        cfg,
        model,
        tasks,
        vec![emb(1.0), emb(-1.0)],
        vec![labels(2), labels(1)],
        &Device::Cpu,
    )
    .unwrap()
}

#[test]
fn every_generator_tensor_gets_a_gradient_through_algorithm_1() {
    for mode in [MetaGrad::Delta, MetaGrad::Direct] {
        let dir = tempfile::tempdir().unwrap();
        let mut tr = trainer(dir.path(), mode);
        // One classification and one regression batch: together they reach every head.
        let runs: Vec<Vec<Option<Tensor>>> = (0..2)
            .map(|ti| {
                let (loss, grads) = tr.meta_gradients(ti, 0, &[0, 1, 2, 3]).unwrap();
                assert!(loss.is_finite(), "{mode}: loss {loss}");
                grads.unwrap()
            })
            .collect();
        let names: Vec<&str> = tr.opt.vars().iter().map(|(n, _)| n.as_str()).collect();
        test_support::assert_grads_nonzero_in_some(&format!("{mode}"), &names, &runs);
    }
}

/// Training-set loss of task `ti`'s generated adapter, without dropout.
fn train_loss(tr: &NlpTrainer, ti: usize) -> f64 {
    let t = &tr.data.tasks[ti];
    hyper_infer::text::predict(
        &tr.data.model,
        &tr.generate(ti, 0).unwrap(),
        &t.train.examples,
        t.task.is_regression(),
        Some(&t.train.labels),
        8,
    )
    .unwrap()
    .loss
    .unwrap()
}

#[test]
fn meta_training_lowers_the_generated_models_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut tr = trainer(dir.path(), MetaGrad::Delta);
    let before = [train_loss(&tr, 0), train_loss(&tr, 1)];
    for _ in 0..20 {
        tr.train_step().unwrap();
    }
    let after = [train_loss(&tr, 0), train_loss(&tr, 1)];
    assert!(
        after[0] + after[1] < before[0] + before[1],
        "loss {before:?} -> {after:?}"
    );
}

/// Resuming holds for both op paths, and under a per-step lr schedule.
#[test]
fn interrupted_run_resumes_bit_identically() {
    let losses: Vec<f64> = [false, true]
        .map(|fused_ops| {
            let mut cfg = tiny_cfg(MetaGrad::Delta);
            cfg.train.fused_ops = fused_ops;
            cfg.train.gen_lr_schedule = LrSchedule::Cosine;
            resumes_bit_identically(cfg)
        })
        .to_vec();
    // The fused path draws other dropout masks: `fused_ops` reached the model.
    assert_ne!(losses[0], losses[1]);
}

/// Runs `cfg` whole and interrupted + resumed, asserts they match; the last train loss.
fn resumes_bit_identically(cfg: NlpConfig) -> f64 {
    let base = tempfile::tempdir().unwrap();
    let full_dir = tempfile::tempdir().unwrap();
    let mut full = trainer_with(base.path(), cfg.clone());
    full.fit(full_dir.path(), None, false).unwrap();
    let t = &cfg.train;
    let last_lr = t.gen_lr_schedule.lr(t.gen_lr, t.steps - 1, t.steps);
    assert!((full.opt.cfg.lr - last_lr).abs() < 1e-15 && last_lr < t.gen_lr / 9.0);

    let part_dir = tempfile::tempdir().unwrap();
    let mut part = trainer_with(base.path(), cfg.clone());
    part.fit(part_dir.path(), Some(3), false).unwrap();
    assert_eq!(part.step, 3);
    drop(part);
    let mut resumed = trainer_with(base.path(), cfg);
    resumed.resume(&part_dir.path().join("last")).unwrap();
    assert_eq!(resumed.step, 3);
    resumed.fit(part_dir.path(), None, false).unwrap();

    assert_eq!(full.history.len(), 2);
    assert_eq!(full.history.len(), resumed.history.len());
    for (a, b) in full.history.iter().zip(&resumed.history) {
        assert_eq!(a.train_loss, b.train_loss);
        assert_eq!(a.val_loss, b.val_loss);
    }
    for ((n, a), (_, b)) in full.gen.vars().iter().zip(resumed.gen.vars()) {
        let d = (a.as_tensor() - b.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{n} differs by {d} after resuming");
    }
    assert!(part_dir.path().join("best.toml").exists());
    full.history.last().unwrap().train_loss
}

#[test]
fn a_changed_config_refuses_to_resume() {
    let base = tempfile::tempdir().unwrap();
    let d = tempfile::tempdir().unwrap();
    let mut tr = trainer(base.path(), MetaGrad::Delta);
    tr.fit(d.path(), Some(3), false).unwrap();
    let mut other = trainer(base.path(), MetaGrad::Direct);
    let e = other
        .resume(&d.path().join("last"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("train.meta_grad"), "{e}");
}

/// ModelGPT-F in mode `full` starts from exactly the generated model: the adapters
/// merged into a trainable copy of the checkpoint (whose file names lack the `bert.`
/// prefix the adapters carry) and the generated head give the LoRA model's predictions.
#[test]
fn full_finetune_start_equals_the_generated_model() {
    let dir = tempfile::tempdir().unwrap();
    let tr = trainer(dir.path(), MetaGrad::Delta);
    let p = tr.generate(0, 0).unwrap();
    assert!(p.iter().any(|(k, _)| k.contains("lora_B")), "no adapters");
    let t = &tr.data.tasks[0];
    let pred = |m: &BertModel, p: &hyper_core::ParamMap| {
        hyper_infer::text::predict(m, p, &t.dev.examples, false, None, 4)
            .unwrap()
            .probs
    };
    let lora = pred(&tr.data.model, &p);
    let scaling = tr.cfg.architecture.lora.lora_config().scaling();
    let (ft, head, vars) = hyper_train::nlp::experiment::finetune_from_generated(
        dir.path(),
        &p,
        scaling,
        &Device::Cpu,
    )
    .unwrap();
    assert!(head.iter().all(|(k, _)| !k.contains("lora_")));
    assert!(
        vars.iter().any(|(k, _)| k == "classifier.weight"),
        "head not trainable"
    );
    let full = pred(&ft.with_fused_inference(true), &head);
    let diff = test_support::max_abs_diff_slices(&lora.concat(), &full.concat());
    assert!(
        diff < 1e-5,
        "merged start differs from the generated model by {diff}"
    );
    // The merge did something: the unmerged checkpoint with the same head predicts otherwise.
    let (plain, _, _) =
        hyper_train::nlp::experiment::finetune_model(dir.path(), 2, 0, &Device::Cpu).unwrap();
    assert_ne!(full, pred(&plain.with_fused_inference(true), &head));
}
