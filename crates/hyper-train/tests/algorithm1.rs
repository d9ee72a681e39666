//! Algorithm-1 behaviour on tiny synthetic tasks (no data files, fast).

use candle_core::{DType, Device, Tensor};
use hyper_core::layers::cross_entropy;
use hyper_core::GeneratorConfig;
use hyper_infer::{Pipeline, SplitTensors, TabularArchitecture};
use hyper_train::config::{BaselineConfig, MetaGrad, TrainConfig};
use hyper_train::{MetaTrainer, TabularConfig, TabularTask};
use rand::{rngs::StdRng, Rng, SeedableRng};
use target_models::mlp::{Activation, MlpConfig};
use target_models::TargetModel;
use test_support::{max_abs_diff, max_abs_diff_slices};

fn synthetic(name: &str, n: usize, f: usize, k: usize, seed: u64) -> TabularTask {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let row: Vec<f32> = (0..f).map(|_| rng.random_range(0.0..1.0)).collect();
        let label = ((row[0] * k as f32) as usize).min(k - 1);
        x.extend(row);
        y.push(label);
    }
    let dev = Device::Cpu;
    let d = SplitTensors::from_rows(&x, &y, f, &dev).unwrap();
    TabularTask {
        name: name.into(),
        meta: test_support::tabular_meta(f, k),
        requirements: vec![format!("{name} one"), format!("{name} two")],
        n_local_updates: 1,
        train: d.clone(),
        val: d.clone(),
        test: d,
        load_secs: 0.0,
    }
}

fn tiny_cfg(meta_grad: MetaGrad, epochs: usize) -> TabularConfig {
    TabularConfig {
        datasets: vec![],
        architecture: TabularArchitecture {
            model: MlpConfig {
                hidden: vec![8],
                activation: Activation::Relu,
                dropout: 0.0,
            },
            generator: GeneratorConfig {
                embed_dim: 16,
                hidden_dim: 16,
                latent_dim: 5,
                dropout: 0.0,
                ..Default::default()
            },
            ..Default::default()
        },
        train: TrainConfig {
            epochs,
            batch_size: 16,
            meta_grad,
            n_local_updates: Default::default(),
            ..Default::default()
        },
        baseline: BaselineConfig::default(),
    }
}

fn trainer(meta_grad: MetaGrad, epochs: usize) -> MetaTrainer {
    let dev = Device::Cpu;
    let tasks = vec![synthetic("a", 48, 3, 2, 1), synthetic("b", 40, 4, 3, 2)];
    let mut rng = StdRng::seed_from_u64(7);
    let embs = tasks
        .iter()
        .map(|t| {
            t.requirements
                .iter()
                .map(|_| {
                    let v: Vec<f32> = (0..16).map(|_| rng.random_range(-1.0..1.0)).collect();
                    Tensor::from_vec(v, 16, &dev).unwrap()
                })
                .collect()
        })
        .collect();
    MetaTrainer::new(tiny_cfg(meta_grad, epochs), tasks, embs, &dev).unwrap()
}

fn target_loss(t: &MetaTrainer, xb: &Tensor, yb: &Tensor) -> f64 {
    let p = t.gen.generate_for_task(&t.embs[0][0], "a", false).unwrap();
    cross_entropy(&t.mlp.forward(&p, xb, false).unwrap(), yb)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64
}

/// `n_local_updates = k` gives each batch k generator steps (Algorithm 1's inner loop),
/// and the clip norm bounds what reaches the generator optimizer. (The δ surrogate's own
/// gradient is checked against hand-computed Adam steps in `algorithm1.rs`'s unit tests.)
#[test]
fn local_updates_repeat_each_batch_and_clipping_bounds_the_generator_step() {
    let mut t = trainer(MetaGrad::Delta, 1);
    let base = t.steps_per_epoch();
    let batches_a =
        (t.tasks[0].train.len().div_ceil(t.cfg.train.batch_size) * t.embs[0].len()) as u64;
    t.tasks[0].n_local_updates = 3;
    assert_eq!(t.steps_per_epoch(), base + 2 * batches_a);
    t.train_epoch(None).unwrap();
    assert_eq!(t.step, t.steps_per_epoch());

    // The generator's first AdamW step stores m = (1 − β1)·scale·g: its global norm is
    // 0.1·min(‖g‖, clip_norm).
    let idx: Vec<u32> = (0..16).collect();
    let mut raw = trainer(MetaGrad::Delta, 1);
    let (xb, yb) = raw.tasks[0].train.batch(&idx).unwrap();
    let (_, g) = raw.meta_gradients(0, 0, &xb, &yb).unwrap();
    let norm = hyper_core::optim::global_norm(&g.unwrap()).unwrap();
    let clip = norm / 10.0;
    let mut c = trainer(MetaGrad::Delta, 1);
    c.cfg.train.clip_norm = clip;
    c.step(0, 0, &xb, &yb).unwrap();
    let m_norm = c
        .gen_opt
        .state
        .values()
        .flat_map(|s| s.m.iter())
        .map(|x| (*x as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        (m_norm - 0.1 * clip).abs() < 1e-4 * clip,
        "‖m‖ = {m_norm}, want 0.1 × clip {clip} (unclipped ‖g‖ = {norm})"
    );
}

/// One Algorithm-1 step (δ and direct) lowers the target loss on the same batch.
#[test]
fn one_step_lowers_target_loss() {
    for mg in [MetaGrad::Delta, MetaGrad::Direct] {
        let mut t = trainer(mg, 1);
        let idx: Vec<u32> = (0..16).collect();
        let (xb, yb) = t.tasks[0].train.batch(&idx).unwrap();
        let before = target_loss(&t, &xb, &yb);
        for _ in 0..3 {
            t.step(0, 0, &xb, &yb).unwrap();
        }
        let after = target_loss(&t, &xb, &yb);
        assert!(after < before, "{mg}: {before} -> {after}");
        assert_eq!(t.step, 3);
    }
}

/// Meta-training fits both tasks above chance; an interrupted run resumes at the saved
/// epoch/step and ends bit-identical to... at least consistent with its checkpoint.
#[test]
fn fit_learns_and_interrupted_run_resumes_at_saved_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(MetaGrad::Delta, 3);
    let (l0, _) = t.validate().unwrap();
    t.fit(dir.path(), Some(2), false).unwrap();
    assert_eq!(t.epoch, 2);
    let steps_after_two = t.step;
    assert_eq!(steps_after_two, 2 * t.steps_per_epoch());
    let (l2, _) = t.validate().unwrap();
    assert!(l2 < l0, "val loss {l0} -> {l2}");
    assert!(
        dir.path().join("last.safetensors").is_file() && dir.path().join("best.toml").is_file()
    );

    // "Crash", then resume into a fresh trainer.
    let mut r = trainer(MetaGrad::Delta, 3);
    r.resume(&dir.path().join("last")).unwrap();
    assert_eq!((r.epoch, r.step, r.history.len()), (2, steps_after_two, 2));
    let emb = t.embs[1][0].clone();
    let a = t.gen.generate_for_task(&emb, "b", false).unwrap();
    let b = r.gen.generate_for_task(&emb, "b", false).unwrap();
    for (k, x) in a.iter() {
        assert_eq!(max_abs_diff(x, b.get(k).unwrap()), 0.0, "{k}");
    }
    assert_eq!(r.gen_opt.state.len(), t.gen_opt.state.len());
    r.fit(dir.path(), None, false).unwrap();
    assert_eq!(r.epoch, 3);
    assert_eq!(r.step, 3 * r.steps_per_epoch());

    // A checkpoint from another config is refused with the differing key named.
    let mut other = trainer(MetaGrad::Delta, 3);
    other.cfg.architecture.model.hidden = vec![9];
    let e = other
        .resume(&dir.path().join("last"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.hidden"), "{e}");
}

#[test]
fn nan_in_data_is_an_error_naming_the_place() {
    let e = SplitTensors::from_rows(&[0.0, f32::NAN, 1.0, 2.0], &[0, 1], 2, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 0, feature 1"), "{e}");
    let _ = DType::F32;
}

/// A non-finite loss stops training with an error naming the epoch, task and step.
#[test]
fn non_finite_loss_names_task_epoch_and_step() {
    let mut t = trainer(MetaGrad::Delta, 1);
    let n = t.tasks[1].train.len();
    let f = t.tasks[1].meta.in_dim.unwrap();
    t.tasks[1].train.x = Tensor::full(f32::INFINITY, (n, f), &Device::Cpu).unwrap();
    let e = t.train_epoch(None).unwrap_err().to_string();
    assert!(
        e.contains("at epoch 1, task `b`") && e.contains("generator step"),
        "{e}"
    );
}

/// Every var in `gen_opt` whose name does not contain `skip` has a finite, non-zero
/// gradient (the failure names every var that lacks one).
fn assert_every_var_has_a_gradient(
    t: &MetaTrainer,
    grads: &[Option<Tensor>],
    skip: Option<&str>,
    what: &str,
) {
    assert_eq!(grads.len(), t.gen_opt.vars().len());
    let checked = t
        .gen_opt
        .vars()
        .iter()
        .zip(grads)
        .filter(|((name, _), _)| !skip.is_some_and(|s| name.contains(s)))
        .map(|((name, _), g)| (name.as_str(), g.as_ref()));
    test_support::assert_grads_nonzero(what, checked);
}

/// Through the whole Algorithm-1 path (δ surrogate and direct), every generator tensor
/// gets a non-zero gradient.
#[test]
fn every_generator_tensor_gets_a_gradient_through_algorithm1() {
    for mg in [MetaGrad::Delta, MetaGrad::Direct] {
        let mut t = trainer(mg, 1);
        let idx: Vec<u32> = (0..16).collect();
        for ti in 0..2 {
            let (xb, yb) = t.tasks[ti].train.batch(&idx).unwrap();
            t.reset_target();
            let (_, grads) = t.meta_gradients(ti, 0, &xb, &yb).unwrap();
            // This batch cannot reach the other task's own heads; everything else must.
            let other = format!(".{}.", if ti == 0 { "b" } else { "a" });
            assert_every_var_has_a_gradient(&t, &grads.unwrap(), Some(&other), &format!("{mg}"));
        }
    }
}

/// With `generator.train_encoder = true` (real all-MiniLM-L6-v2 weights): every encoder
/// weight and every generator tensor gets a non-zero gradient in both meta-grad modes;
/// steps move the encoder; a checkpoint restores it bit-exactly and the inference engine
/// serves the tuned encoder, not the stock one.
#[test]
fn trainable_encoder_gets_gradients_and_round_trips() {
    use hyper_train::encoder::TrainableEncoder;
    let dev = Device::Cpu;
    let minilm = test_support::minilm_dir();
    let stock = target_models::TextEncoder::load(&minilm, &dev).unwrap();
    let mut cfg = tiny_cfg(MetaGrad::Delta, 1);
    cfg.architecture.generator.embed_dim = stock.dim;
    cfg.architecture.generator.train_encoder = true;
    let tasks = || {
        let mut task = synthetic("a", 32, 3, 2, 1);
        task.requirements = vec![
            "Classify rows into two classes from three numeric features.".into(),
            "A small binary tabular task.".into(),
        ];
        vec![task]
    };
    let embs = hyper_train::meta::embed_tasks(&stock, &tasks()).unwrap();
    let enc = TrainableEncoder::load(&minilm, &dev).unwrap();
    let n_enc = enc.trainable_vars().len();
    // MiniLM: 5 embedding tensors + 16 per layer × 6 (the pooler is not trained).
    assert_eq!(n_enc, 5 + 16 * 6);
    let mut t = MetaTrainer::new(cfg.clone(), tasks(), embs.clone(), &dev)
        .unwrap()
        .with_trainable_encoder(enc)
        .unwrap();
    assert!(t.encoder_trainable());
    assert_eq!(t.gen_opt.vars().len(), t.gen.trainable_vars().len() + n_enc);
    // The eval-mode trainable encoder reproduces the stock (fused) one.
    assert!(max_abs_diff(&t.embs[0][0], &embs[0][0]) < 1e-4);
    let idx: Vec<u32> = (0..16).collect();
    let (xb, yb) = t.tasks[0].train.batch(&idx).unwrap();
    for mg in [MetaGrad::Delta, MetaGrad::Direct] {
        t.cfg.train.meta_grad = mg;
        let (_, grads) = t.meta_gradients(0, 1, &xb, &yb).unwrap();
        assert_every_var_has_a_gradient(&t, &grads.unwrap(), None, &format!("{mg}"));
    }
    let word = |t: &MetaTrainer| {
        t.gen_opt
            .vars()
            .iter()
            .find(|(n, _)| n == "text_encoder.embeddings.LayerNorm.weight")
            .unwrap()
            .1
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap()
    };
    let before = word(&t);
    t.cfg.train.meta_grad = MetaGrad::Delta;
    t.step(0, 0, &xb, &yb).unwrap();
    assert_ne!(before, word(&t), "a meta step must move the encoder");

    let dir = tempfile::tempdir().unwrap();
    t.fit(dir.path(), Some(1), false).unwrap();
    let enc2 = TrainableEncoder::load(&minilm, &dev).unwrap();
    let mut r = MetaTrainer::new(cfg, tasks(), embs, &dev)
        .unwrap()
        .with_trainable_encoder(enc2)
        .unwrap();
    r.resume(&dir.path().join("last")).unwrap();
    assert_eq!(
        word(&r),
        word(&t),
        "resume restores the tuned encoder bit-exactly"
    );

    let engine = Pipeline::load(&dir.path().join("last"), &minilm, &dev).unwrap();
    let req = t.tasks[0].requirements[0].clone();
    let served = engine.encoder().embed_one(&req).unwrap();
    let tuned = t.embs[0][0].to_vec1::<f32>().unwrap();
    let orig = stock.embed_one(&req).unwrap();
    assert!(
        max_abs_diff_slices(&served, &tuned) < 1e-4,
        "engine must serve the tuned encoder"
    );
    assert!(
        max_abs_diff_slices(&served, &orig) > 1e-6,
        "tuned encoder should differ from stock"
    );
}

/// A config that asks for a trainable encoder is refused without one, and a checkpoint
/// whose header claims a tuned encoder it does not hold is a clear error at load time.
#[test]
fn encoder_flag_and_checkpoint_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(MetaGrad::Delta, 1);
    t.cfg.architecture.generator.train_encoder = true;
    let e = t.fit(dir.path(), None, false).unwrap_err().to_string();
    assert!(
        e.contains("train_encoder = true but the trainer lacks"),
        "{e}"
    );

    t.cfg.architecture.generator.train_encoder = false;
    t.fit(dir.path(), None, false).unwrap();
    let header = dir.path().join("best.toml");
    let text = std::fs::read_to_string(&header).unwrap();
    assert!(text.contains("train_encoder = false"));
    std::fs::write(
        &header,
        text.replace("train_encoder = false", "train_encoder = true"),
    )
    .unwrap();
    let minilm = test_support::minilm_dir();
    let e = Pipeline::load(&dir.path().join("best"), &minilm, &Device::Cpu)
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.contains("holds no `text_encoder.*` tensors"), "{e}");
}
