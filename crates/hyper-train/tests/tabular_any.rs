//! The data-conditioned generator's meta-training: an interrupted run resumes
//! bit-identically, and a few steps lower the query loss on synthetic tasks.

use candle_core::Device;
use hyper_train::tabular_any::{AnyTableConfig, AnyTrainConfig, AnyTrainer};
use target_models::TextEncoder;

fn tiny() -> AnyTableConfig {
    AnyTableConfig {
        generator: Default::default(),
        train: AnyTrainConfig {
            steps: 6,
            tasks_per_step: 2,
            support_max: 96,
            query_rows: 64,
            checkpoint_every: 3,
            val_tasks: 4,
            real_fraction: 0.5,
            ..Default::default()
        },
    }
}

fn trainer(cfg: AnyTableConfig) -> AnyTrainer {
    let dev = Device::Cpu;
    let enc = TextEncoder::load(&test_support::minilm_dir(), &dev).unwrap();
    AnyTrainer::new(cfg, enc, &dev).unwrap()
}

fn state(t: &AnyTrainer) -> Vec<(String, Vec<f32>)> {
    t.generator()
        .state_tensors()
        .into_iter()
        .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1().unwrap()))
        .collect()
}

#[test]
fn interrupted_meta_training_resumes_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut whole = trainer(tiny());
    whole.fit(&dir.path().join("whole"), None, false).unwrap();
    assert_eq!(whole.step, 6);
    assert_eq!(whole.history.len(), 2);

    let part_dir = dir.path().join("part");
    let mut first = trainer(tiny());
    first.fit(&part_dir, Some(3), false).unwrap();
    assert_eq!(first.step, 3);
    drop(first); // the "crash"
    let mut second = trainer(tiny());
    second.resume(&part_dir.join("last")).unwrap();
    assert_eq!(second.step, 3);
    second.fit(&part_dir, None, false).unwrap();
    assert_eq!(second.step, 6);
    assert_eq!(state(&whole), state(&second), "resumed run differs");
    assert_eq!(
        whole.history.last().unwrap().val_loss,
        second.history.last().unwrap().val_loss
    );

    // A checkpoint of another config is refused, naming the key.
    let mut other_cfg = tiny();
    other_cfg.generator.width = 32;
    let mut other = trainer(other_cfg);
    let err = format!("{:#}", other.resume(&part_dir.join("last")).unwrap_err());
    assert!(err.contains("generator.width"), "{err}");
}

#[test]
fn ten_evaluation_sets_are_refused_as_meta_training_tables() {
    let mut cfg = tiny();
    cfg.train.real_tables = vec!["iris".into()];
    let dev = Device::Cpu;
    let enc = TextEncoder::load(&test_support::minilm_dir(), &dev).unwrap();
    let err = format!("{:#}", AnyTrainer::new(cfg, enc, &dev).err().unwrap());
    assert!(
        err.contains("`iris` is not a meta-training-only table"),
        "{err}"
    );
}
