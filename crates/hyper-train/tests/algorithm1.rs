//! Algorithm-1 behaviour on tiny synthetic tasks (no data files, fast).

use candle_core::{DType, Device, Tensor, Var};
use hyper_core::layers::cross_entropy;
use hyper_core::GeneratorConfig;
use hyper_train::config::{BaselineConfig, MetaGrad, TrainConfig};
use hyper_train::{Data, MetaTrainer, TabularConfig, TabularTask};
use rand::{rngs::StdRng, Rng, SeedableRng};
use target_models::mlp::{Activation, MlpConfig};
use target_models::TargetModel;

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
    let d = Data::from_rows(&x, &y, f, &dev).unwrap();
    TabularTask {
        name: name.into(),
        meta: hyper_core::Metadata {
            task: "tabular_cls".into(),
            in_dim: Some(f),
            out_dim: k,
            scale: "small".into(),
            arch: "mlp_small".into(),
        },
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
    let p = t.gen.generate(&t.embs[0][0], "a", false).unwrap();
    cross_entropy(&t.mlp.forward(&p, xb, false).unwrap(), yb)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64
}

/// The surrogate Σ sum(θ ⊙ δ) has gradient exactly δ w.r.t. θ (PyTorch's
/// `backward(θ, grad_tensors=δ)`).
#[test]
fn surrogate_gradient_equals_delta_exactly() {
    let dev = Device::Cpu;
    let theta = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 4), &dev).unwrap()).unwrap();
    let delta = Tensor::randn(0f32, 1.0, (3, 4), &dev).unwrap();
    let sur = (theta.as_tensor() * &delta).unwrap().sum_all().unwrap();
    let g = sur.backward().unwrap();
    let got = g.get(&theta).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(got, delta.to_vec2::<f32>().unwrap());
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
    let a = t.gen.generate(&emb, "b", false).unwrap();
    let b = r.gen.generate(&emb, "b", false).unwrap();
    for (k, x) in a.iter() {
        let d = (x - b.get(k).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{k}");
    }
    assert_eq!(r.gen_opt.state.len(), t.gen_opt.state.len());
    r.fit(dir.path(), None, false).unwrap();
    assert_eq!(r.epoch, 3);
    assert_eq!(r.step, 3 * r.steps_per_epoch());

    // A checkpoint from another config is refused with the differing key named.
    let mut other = trainer(MetaGrad::Delta, 3);
    other.cfg.model.hidden = vec![9];
    let e = other
        .resume(&dir.path().join("last"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.hidden"), "{e}");
}

#[test]
fn nan_in_data_is_an_error_naming_the_place() {
    let e = Data::from_rows(&[0.0, f32::NAN, 1.0, 2.0], &[0, 1], 2, &Device::Cpu)
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
