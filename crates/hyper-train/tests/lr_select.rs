//! ModelGPT-F's lr is chosen on the validation split: the same trained candidates, scored
//! on a validation set and on its label-flipped copy, flip the choice.

use candle_core::Device;
use hyper_infer::SplitTensors;
use hyper_train::baselines::finetune_select_lr;
use hyper_train::config::BaselineConfig;
use rand::{rngs::StdRng, Rng, SeedableRng};
use target_models::mlp::{Activation, Mlp, MlpConfig};

/// Two features in [0, 1), label = x0 > 0.5; with `flip` the labels are inverted.
fn data(n: usize, seed: u64, flip: bool) -> SplitTensors {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let a: f32 = rng.random_range(0.0..1.0);
        let b: f32 = rng.random_range(0.0..1.0);
        x.extend([a, b]);
        y.push(usize::from((a > 0.5) != flip));
    }
    SplitTensors::from_rows(&x, &y, 2, &Device::Cpu).unwrap()
}

#[test]
fn lr_is_picked_by_validation_accuracy() {
    let dev = Device::Cpu;
    let mlp = Mlp::new(MlpConfig {
        hidden: vec![8],
        activation: Activation::Relu,
        dropout: 0.0,
    });
    let meta = test_support::tabular_meta(2, 2);
    let init = mlp
        .init_params(&meta, &mut StdRng::seed_from_u64(3), &dev)
        .unwrap();
    let cfg = BaselineConfig {
        batch_size: 16,
        // 1e-9 leaves the random init as it is; 5e-2 learns the rule.
        finetune_f_lr_candidates: vec![1e-9, 5e-2],
        ..Default::default()
    };
    let train = data(256, 1, false);
    let (val, val_flipped) = (data(100, 2, false), data(100, 2, true));

    let (best, trials) = finetune_select_lr(&mlp, &init, &train, &val, &cfg, 10, 0).unwrap();
    assert_eq!(trials.len(), 2);
    assert_eq!((trials[0].lr, trials[1].lr), (1e-9, 5e-2));
    assert!(trials[1].val_acc > 0.9, "learned: {}", trials[1].val_acc);
    assert!(trials[1].val_acc > trials[0].val_acc);
    assert_eq!(best, 1);

    let (best_f, trials_f) =
        finetune_select_lr(&mlp, &init, &train, &val_flipped, &cfg, 10, 0).unwrap();
    for (t, tf) in trials.iter().zip(&trials_f) {
        // Two classes: each prediction is right on exactly one of the two label sets.
        assert!(
            (t.val_acc + tf.val_acc - 1.0).abs() < 1e-9,
            "{} + {}",
            t.val_acc,
            tf.val_acc
        );
    }
    assert_eq!(best_f, 0);
}
