//! GLUE on the real shared copies (`$HYPER_SHARED_DATA/glue`): official sizes, class
//! balances and a few known rows.

use datasets::glue::{load, GlueTask, Label};
use datasets::DataError;

fn root() -> std::path::PathBuf {
    GlueTask::default_root()
}

fn sizes(task: GlueTask) -> (usize, usize) {
    let train = load(task, "train", &root()).unwrap();
    let dev = load(task, "dev", &root()).unwrap();
    (train.len(), dev.len())
}

#[test]
fn official_sizes() {
    assert_eq!(sizes(GlueTask::Cola), (8_551, 1_043));
    assert_eq!(sizes(GlueTask::Sst2), (67_349, 872));
    assert_eq!(sizes(GlueTask::Mrpc), (3_668, 408));
    assert_eq!(sizes(GlueTask::Stsb), (5_749, 1_500));
    assert_eq!(sizes(GlueTask::Rte), (2_490, 277));
    assert_eq!(sizes(GlueTask::Wnli), (635, 71));
    assert_eq!(load(GlueTask::Qnli, "dev", &root()).unwrap().len(), 5_463);
}

#[test]
fn class_balances_match_the_official_files() {
    // CoLA: 6,023 of 8,551 train sentences acceptable; 721 of 1,043 dev.
    let cola = load(GlueTask::Cola, "train", &root()).unwrap();
    assert_eq!(cola.class_counts(), vec![2_528, 6_023]);
    let cola_dev = load(GlueTask::Cola, "dev", &root()).unwrap();
    assert_eq!(cola_dev.class_counts(), vec![322, 721]);
    // SST-2 train: 37,569 positive.
    let sst = load(GlueTask::Sst2, "train", &root()).unwrap();
    assert_eq!(sst.class_counts(), vec![29_780, 37_569]);
    // RTE: entailment = 0, not_entailment = 1.
    let rte = load(GlueTask::Rte, "train", &root()).unwrap();
    assert_eq!(rte.class_counts(), vec![1_249, 1_241]);
    let qnli = load(GlueTask::Qnli, "dev", &root()).unwrap();
    assert_eq!(qnli.class_counts(), vec![2_702, 2_761]);
    // MRPC rebuilt train: 2,474 paraphrases (67.4%), dev 279 of 408.
    let mrpc = load(GlueTask::Mrpc, "train", &root()).unwrap();
    assert_eq!(mrpc.class_counts(), vec![1_194, 2_474]);
    let mrpc_dev = load(GlueTask::Mrpc, "dev", &root()).unwrap();
    assert_eq!(mrpc_dev.class_counts(), vec![129, 279]);
}

#[test]
fn known_first_examples() {
    let cola = load(GlueTask::Cola, "train", &root()).unwrap();
    assert_eq!(
        cola.examples[0].text_a,
        "Our friends won't buy this analysis, let alone the next one we propose."
    );
    assert_eq!(cola.examples[0].text_b, None);
    assert_eq!(cola.examples[0].label, Label::Class(1));

    let stsb = load(GlueTask::Stsb, "train", &root()).unwrap();
    assert_eq!(stsb.examples[0].text_a, "A plane is taking off.");
    assert_eq!(
        stsb.examples[0].text_b.as_deref(),
        Some("An air plane is taking off.")
    );
    assert_eq!(stsb.examples[0].label, Label::Score(5.0));

    let qnli = load(GlueTask::Qnli, "dev", &root()).unwrap();
    assert_eq!(
        qnli.examples[0].text_a,
        "What came into force after the new constitution was herald?"
    );
    assert_eq!(qnli.examples[0].label, Label::Class(0));

    // MRPC: BOM stripped from the header, quotes kept as text.
    let mrpc = load(GlueTask::Mrpc, "train", &root()).unwrap();
    assert_eq!(
        mrpc.examples[0].text_a,
        "Amrozi accused his brother , whom he called \" the witness \" , of deliberately distorting his evidence ."
    );
    assert_eq!(mrpc.examples[0].label, Label::Class(1));
    assert!(mrpc.source.ends_with("msr_paraphrase_train.txt"));
    // The row missing from the shared train.tsv is back.
    assert!(mrpc.examples.iter().any(|e| e
        .text_a
        .starts_with("Officials at Brandeis said this was an \" extremely heartrending \"")));

    let sst_dev = load(GlueTask::Sst2, "dev", &root()).unwrap();
    assert_eq!(
        sst_dev.examples[0].text_a,
        "it 's a charming and often affecting journey . "
    );
}

#[test]
fn stsb_dev_scores_in_range_with_known_mean() {
    let dev = load(GlueTask::Stsb, "dev", &root()).unwrap();
    let scores: Vec<f64> = dev
        .examples
        .iter()
        .map(|e| e.label.score().unwrap() as f64)
        .collect();
    assert!(scores.iter().all(|s| (0.0..=5.0).contains(s)));
    // Sum of the 1,500 dev scores is 3,545.86 (awk over the file).
    let sum: f64 = scores.iter().sum();
    assert!((sum - 3_545.86).abs() < 0.01, "sum {sum}");
}

#[test]
fn missing_tasks_say_where_to_put_the_files() {
    for (task, split, file) in [
        (GlueTask::Mnli, "train", "MNLI/train.tsv"),
        (GlueTask::Mnli, "dev_mismatched", "MNLI/dev_mismatched.tsv"),
        (GlueTask::Qqp, "train", "QQP/train.tsv"),
        (GlueTask::Qnli, "train", "QNLI/train.tsv"),
    ] {
        match load(task, split, &root()) {
            Err(DataError::Unavailable { name, reason }) => {
                assert!(name.contains(task.name()), "{name}");
                let want = root().join(file);
                assert!(
                    reason.contains(&want.display().to_string()),
                    "reason should name {}: {reason}",
                    want.display()
                );
                assert!(reason.contains("download_glue_data.py"), "{reason}");
            }
            other => panic!("{task} {split}: expected Unavailable, got {other:?}"),
        }
    }
}

/// Why "≥ the majority rate on WNLI" asks a model not to learn from WNLI's training set:
/// GLUE built its dev rows from the training rows' premises with the other candidate
/// referent, so the label flips. 65 of the 71 dev rows share their premise with training
/// rows; 77 of the 96 (dev, train) pairs that share one have opposite labels; predicting a
/// dev row by the majority label of the training rows with its premise scores 5 of 65.
#[test]
fn wnli_dev_premises_come_from_train_with_flipped_labels() {
    use std::collections::HashMap;
    let train = load(GlueTask::Wnli, "train", &root()).unwrap();
    let dev = load(GlueTask::Wnli, "dev", &root()).unwrap();
    let mut by_premise: HashMap<&str, Vec<Label>> = HashMap::new();
    for e in &train.examples {
        by_premise.entry(&e.text_a).or_default().push(e.label);
    }
    let (mut shared, mut same, mut opposite, mut memorised_right) = (0, 0, 0, 0);
    for e in &dev.examples {
        let Some(labels) = by_premise.get(e.text_a.as_str()) else {
            continue;
        };
        shared += 1;
        same += labels.iter().filter(|&&l| l == e.label).count();
        opposite += labels.iter().filter(|&&l| l != e.label).count();
        let ones = labels.iter().filter(|&&l| l == Label::Class(1)).count();
        // Ties go to class 0, the training split's majority (323 of 635).
        let guess = Label::Class(usize::from(2 * ones > labels.len()));
        memorised_right += usize::from(guess == e.label);
    }
    assert_eq!((shared, same, opposite), (65, 19, 77));
    assert_eq!(
        memorised_right, 5,
        "the memorising predictor: 5 of 65 (7.7%)"
    );
}
