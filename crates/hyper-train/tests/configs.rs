//! The committed NLP and CV configs load and validate, the `-budget` configs stay equal
//! to their base but for `[baseline]`, and the ModelGPT-F lr falls back to the LoRA lr.

use std::path::{Path, PathBuf};

use hyper_train::cv::config::CvConfig;
use hyper_train::nlp::config::NlpConfig;

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

#[test]
fn committed_nlp_and_cv_configs_load() {
    for name in [
        "nlp.toml",
        "nlp-budget.toml",
        "nlp-budget-full-f.toml",
        "nlp-two-phase.toml",
        "nlp-two-phase-phase1.toml",
    ] {
        NlpConfig::load(&configs().join(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
    for name in [
        "cv.toml",
        "cv-budget.toml",
        "cv-budget-augmented.toml",
        "cv-noshift.toml",
        "cv-noshift-budget.toml",
        "cv-noshift-budget-full-f.toml",
        "cv-lowres.toml",
        "cv-blocks.toml",
        "cv-blocks-budget.toml",
    ] {
        CvConfig::load(&configs().join(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
}

#[test]
fn modelgpt_f_lr_defaults_to_lora_lr_and_rejects_non_positive() {
    let mut cfg = NlpConfig::default();
    cfg.baseline.lora_lr = 3e-4;
    assert_eq!(cfg.baseline.finetune_f_lr(), 3e-4);
    cfg.baseline.finetune_f_lr = Some(1e-4);
    assert_eq!(cfg.baseline.finetune_f_lr(), 1e-4);
    cfg.validate().unwrap();

    cfg.baseline.finetune_f_lr = Some(0.0);
    let err = format!("{:#}", cfg.validate().unwrap_err());
    assert!(err.contains("baseline.finetune_f_lr"), "{err}");

    let mut cv = CvConfig::default();
    cv.baseline.finetune_f_lr = Some(f64::NAN);
    let err = format!("{:#}", cv.validate().unwrap_err());
    assert!(err.contains("baseline.finetune_f_lr"), "{err}");
}

/// The `-budget` configs score the committed generators with other baselines, so every
/// section but `[baseline]` must stay equal to their base config's.
#[test]
fn budget_configs_differ_from_their_base_only_in_baseline() {
    let nlp = |n: &str| NlpConfig::load(&configs().join(n)).unwrap();
    for name in ["nlp-budget.toml", "nlp-budget-full-f.toml"] {
        let (base, mut budget) = (nlp("nlp.toml"), nlp(name));
        assert_ne!(base.baseline, budget.baseline, "{name}");
        budget.baseline = base.baseline.clone();
        assert_eq!(base, budget, "{name}");
    }

    let cv = |n: &str| CvConfig::load(&configs().join(n)).unwrap();
    for (base, name) in [
        ("cv.toml", "cv-budget.toml"),
        ("cv.toml", "cv-budget-augmented.toml"),
        ("cv-noshift.toml", "cv-noshift-budget.toml"),
        ("cv-noshift.toml", "cv-noshift-budget-full-f.toml"),
        ("cv-blocks.toml", "cv-blocks-budget.toml"),
    ] {
        let (base, mut budget) = (cv(base), cv(name));
        assert_ne!(base.baseline, budget.baseline, "{name}");
        budget.baseline = base.baseline.clone();
        assert_eq!(base, budget, "{name}");
    }
}

/// `cv-blocks` and `cv` are ablations of `cv-noshift`: only where the adapters sit, or
/// whether meta-training batches are shifted, may differ. `cv-budget-augmented` is
/// `cv-budget` with the same shifts for every trained row.
#[test]
fn cv_ablations_differ_from_cv_only_in_their_one_setting() {
    let cv = |n: &str| CvConfig::load(&configs().join(n)).unwrap();
    let base = cv("cv-noshift.toml");
    let mut blocks = cv("cv-blocks.toml");
    assert_ne!(
        base.architecture.lora.target_modules,
        blocks.architecture.lora.target_modules
    );
    blocks.architecture.lora.target_modules = base.architecture.lora.target_modules.clone();
    assert_eq!(base, blocks);
    let mut shift = cv("cv.toml");
    assert_eq!((base.data.augment_shift, shift.data.augment_shift), (0, 2));
    shift.data.augment_shift = 0;
    assert_eq!(base, shift);

    let budget = cv("cv-budget.toml");
    let mut augmented = cv("cv-budget-augmented.toml");
    assert_eq!(
        (
            budget.baseline.augment_shift,
            augmented.baseline.augment_shift
        ),
        (0, budget.data.augment_shift)
    );
    augmented.baseline.augment_shift = 0;
    assert_eq!(budget, augmented);
}

/// Mode `full` trains at Finetune's lr unless told otherwise; lr candidates are checked
/// one by one, and the NLP reproduction, which has no selection, refuses them.
#[test]
fn full_mode_defaults_to_finetune_lr_and_candidates_are_checked() {
    use hyper_train::nlp::config::FinetuneFMode;
    let mut cv = CvConfig::default();
    cv.baseline.finetune_f_mode = FinetuneFMode::Full;
    assert_eq!(cv.baseline.finetune_f_lr(), cv.baseline.finetune_lr);
    assert_eq!(cv.baseline.finetune_f_lrs(), vec![cv.baseline.finetune_lr]);
    cv.baseline.finetune_f_lr_candidates = vec![1e-4, -1.0];
    let err = format!("{:#}", cv.validate().unwrap_err());
    assert!(err.contains("finetune_f_lr_candidates[1]"), "{err}");
    cv.baseline.finetune_f_lr_candidates = vec![1e-4, 2e-4];
    cv.validate().unwrap();
    assert_eq!(cv.baseline.finetune_f_lrs(), vec![1e-4, 2e-4]);

    let mut nlp = NlpConfig::load(&configs().join("nlp.toml")).unwrap();
    nlp.baseline.finetune_f_lr_candidates = vec![1e-4];
    let err = format!("{:#}", nlp.validate().unwrap_err());
    assert!(err.contains("finetune_f_lr_candidates"), "{err}");
}

/// Pixel shifts for the trained rows are an image option: the NLP config names the key,
/// and a CV baseline without shifts serialises as before (old headers and results compare
/// equal).
#[test]
fn baseline_shifts_are_cv_only_and_off_by_default() {
    let mut nlp = NlpConfig::load(&configs().join("nlp.toml")).unwrap();
    nlp.baseline.augment_shift = 2;
    let err = format!("{:#}", nlp.validate().unwrap_err());
    assert!(err.contains("baseline.augment_shift"), "{err}");

    let mut cv = CvConfig::default();
    assert!(!cv.to_table().unwrap()["baseline"]
        .as_table()
        .unwrap()
        .contains_key("augment_shift"));
    cv.baseline.augment_shift = 2;
    cv.validate().unwrap();
    let t = cv.to_table().unwrap();
    assert_eq!(t["baseline"]["augment_shift"].as_integer(), Some(2));
}
