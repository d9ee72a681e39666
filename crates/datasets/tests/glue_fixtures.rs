//! GLUE loaders on tiny hand-written files in the official `glue_data/<TASK>/` layout
//! (`tests/fixtures/glue/`), for every task incl. MNLI, QQP and QNLI train, plus every
//! kind of bad input.

use std::path::{Path, PathBuf};

use datasets::glue::{load, load_file, GlueTask, Label};
use datasets::metrics::Metric;
use datasets::DataError;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/glue")
}

#[test]
fn every_task_and_split_loads() {
    // (task, split, rows, first label)
    let want: &[(GlueTask, &str, usize, Label)] = &[
        (GlueTask::Cola, "train", 4, Label::Class(1)),
        (GlueTask::Cola, "dev", 3, Label::Class(1)),
        (GlueTask::Sst2, "train", 4, Label::Class(0)),
        (GlueTask::Sst2, "dev", 3, Label::Class(1)),
        (GlueTask::Mrpc, "train", 3, Label::Class(1)),
        (GlueTask::Mrpc, "dev", 2, Label::Class(0)),
        (GlueTask::Stsb, "train", 5, Label::Score(5.0)),
        (GlueTask::Stsb, "dev", 4, Label::Score(5.0)),
        (GlueTask::Qqp, "train", 4, Label::Class(0)),
        (GlueTask::Qqp, "dev", 3, Label::Class(0)),
        (GlueTask::Mnli, "train", 4, Label::Class(2)),
        (GlueTask::Mnli, "dev_matched", 3, Label::Class(2)),
        (GlueTask::Mnli, "dev_mismatched", 2, Label::Class(0)),
        (GlueTask::Qnli, "train", 3, Label::Class(1)),
        (GlueTask::Qnli, "dev", 2, Label::Class(0)),
        (GlueTask::Rte, "train", 3, Label::Class(1)),
        (GlueTask::Rte, "dev", 2, Label::Class(1)),
        (GlueTask::Wnli, "train", 4, Label::Class(1)),
        (GlueTask::Wnli, "dev", 2, Label::Class(0)),
    ];
    for &(task, split, rows, first) in want {
        let s = load(task, split, &fixtures()).unwrap_or_else(|e| panic!("{task} {split}: {e}"));
        assert_eq!(s.len(), rows, "{task} {split}");
        assert_eq!(s.examples[0].label, first, "{task} {split}");
        assert_eq!(s.task, task);
        assert_eq!(s.split, split);
        for ex in &s.examples {
            assert_eq!(ex.text_b.is_some(), task.is_pair(), "{task} {split}");
            assert!(!ex.text_a.is_empty());
        }
    }
    // Every split each task declares is covered above.
    let covered: usize = GlueTask::ALL.iter().map(|t| t.splits().len()).sum();
    assert_eq!(covered, want.len());
}

#[test]
fn columns_are_the_right_ones() {
    let mnli = load(GlueTask::Mnli, "dev_matched", &fixtures()).unwrap();
    // Third row: annotators split 2/3, gold_label (the last column) is `neutral`, not label1.
    assert_eq!(mnli.examples[2].label, Label::Class(2));
    assert_eq!(
        mnli.examples[2].text_a,
        "uh i don't know i i have mixed emotions about him"
    );
    assert_eq!(
        mnli.examples[2].text_b.as_deref(),
        Some("I like him for the most part, but would still enjoy seeing someone beat him.")
    );
    assert_eq!(mnli.class_counts(), vec![1, 0, 2]);

    let qqp = load(GlueTask::Qqp, "train", &fixtures()).unwrap();
    assert_eq!(
        qqp.examples[1].text_a,
        "How do I control my horny emotions?"
    );
    assert_eq!(
        qqp.examples[1].text_b.as_deref(),
        Some("How do you control your horniness?")
    );
    assert_eq!(qqp.class_counts(), vec![2, 2]);

    let qnli = load(GlueTask::Qnli, "train", &fixtures()).unwrap();
    assert_eq!(
        qnli.examples[0].text_a,
        "When did the third Digimon series begin?"
    );
    assert_eq!(qnli.class_counts(), vec![1, 2]);

    let stsb = load(GlueTask::Stsb, "train", &fixtures()).unwrap();
    let scores: Vec<f32> = stsb
        .examples
        .iter()
        .map(|e| e.label.score().unwrap())
        .collect();
    assert_eq!(scores, vec![5.0, 3.8, 3.8, 2.6, 4.25]);

    // CoLA: quotes inside text are kept verbatim.
    let cola = load(GlueTask::Cola, "dev", &fixtures()).unwrap();
    assert_eq!(cola.examples[2].text_a, "He said \"hello\" twice.");
    assert_eq!(cola.class_counts(), vec![1, 2]);
}

#[test]
fn mnli_dev_means_matched() {
    let a = load(GlueTask::Mnli, "dev", &fixtures()).unwrap();
    assert_eq!(a.split, "dev_matched");
    assert_eq!(a.len(), 3);
}

#[test]
fn mrpc_train_is_rebuilt_from_raw_files() {
    // 5 raw pairs minus the 2 listed in dev_ids.tsv = 3, while train.tsv has only 2.
    let s = load(GlueTask::Mrpc, "train", &fixtures()).unwrap();
    assert_eq!(s.len(), 3);
    assert!(s.source.ends_with("MRPC/msr_paraphrase_train.txt"));
    assert_eq!(
        s.examples.iter().map(|e| e.label).collect::<Vec<_>>(),
        vec![Label::Class(1), Label::Class(1), Label::Class(0)]
    );
    assert!(s.examples[0]
        .text_a
        .starts_with("Amrozi accused his brother , whom he called \" the witness \""));
}

#[test]
fn mrpc_train_falls_back_to_train_tsv() {
    let dir = tempfile::tempdir().unwrap();
    let mrpc = dir.path().join("MRPC");
    std::fs::create_dir(&mrpc).unwrap();
    std::fs::copy(fixtures().join("MRPC/train.tsv"), mrpc.join("train.tsv")).unwrap();
    let s = load(GlueTask::Mrpc, "train", dir.path()).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s.source, mrpc.join("train.tsv"));
}

#[test]
fn task_names() {
    assert_eq!(GlueTask::from_name("sst-2").unwrap(), GlueTask::Sst2);
    assert_eq!(GlueTask::from_name("SST2").unwrap(), GlueTask::Sst2);
    assert_eq!(GlueTask::from_name("sts-b").unwrap(), GlueTask::Stsb);
    assert_eq!(GlueTask::from_name("cola").unwrap(), GlueTask::Cola);
    assert_eq!("mnli".parse::<GlueTask>().unwrap(), GlueTask::Mnli);
    for t in GlueTask::ALL {
        assert_eq!(GlueTask::from_name(t.name()).unwrap(), t);
    }
    let err = GlueTask::from_name("squad").unwrap_err().to_string();
    for t in GlueTask::ALL {
        assert!(err.contains(t.name()), "{err}");
    }
    assert_eq!(GlueTask::ALL.len(), 9);
}

#[test]
fn task_metadata() {
    assert_eq!(GlueTask::Mnli.num_classes(), Some(3));
    assert_eq!(GlueTask::Stsb.num_classes(), None);
    assert!(GlueTask::Stsb.is_regression());
    assert_eq!(GlueTask::Cola.metrics(), &[Metric::Matthews]);
    assert_eq!(GlueTask::Mrpc.metrics(), &[Metric::F1, Metric::Accuracy]);
    assert_eq!(GlueTask::Qqp.metrics(), &[Metric::F1, Metric::Accuracy]);
    assert_eq!(
        GlueTask::Stsb.metrics(),
        &[Metric::Pearson, Metric::Spearman]
    );
    assert_eq!(GlueTask::Rte.metrics(), &[Metric::Accuracy]);
    let e = load(GlueTask::Rte, "test", &fixtures())
        .unwrap_err()
        .to_string();
    assert!(e.contains("train, dev"), "{e}");
}

#[test]
fn evaluate_uses_the_task_metrics() {
    use Label::Class as C;
    // pred 1,1,0,0 vs gold 1,0,0,1: tp=1 fp=1 fn=1 -> F1 = 2/(2+1+1) = 0.5; acc = 2/4.
    let r = GlueTask::Mrpc
        .evaluate(&[C(1), C(1), C(0), C(0)], &[C(1), C(0), C(0), C(1)])
        .unwrap();
    assert_eq!(r, vec![(Metric::F1, 0.5), (Metric::Accuracy, 0.5)]);
    // Perfect CoLA predictions: MCC 1.
    let r = GlueTask::Cola
        .evaluate(&[C(1), C(0)], &[C(1), C(0)])
        .unwrap();
    assert_eq!(r, vec![(Metric::Matthews, 1.0)]);
    // STS-B: y = 2x is a perfect linear and rank correlation.
    let s = |v: &[f32]| v.iter().map(|&x| Label::Score(x)).collect::<Vec<_>>();
    let r = GlueTask::Stsb
        .evaluate(&s(&[1.0, 2.0, 2.5]), &s(&[2.0, 4.0, 5.0]))
        .unwrap();
    assert_eq!(r[0].0, Metric::Pearson);
    assert_eq!(r[1].0, Metric::Spearman);
    assert!(
        (r[0].1 - 1.0).abs() < 1e-12 && (r[1].1 - 1.0).abs() < 1e-12,
        "{r:?}"
    );
    assert!(GlueTask::Stsb.evaluate(&[C(1)], &s(&[1.0])).is_err());
    assert!(GlueTask::Rte.evaluate(&[C(1)], &[]).is_err());
}

/// Write `content` as `<tmp>/<TASK>/<file>` and load that split.
fn load_bad(task: GlueTask, split: &str, content: &str) -> (DataError, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = task.split_path(split, dir.path()).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    let err = load(task, split, dir.path()).unwrap_err();
    (err, path)
}

fn assert_parse_err(err: DataError, path: &Path, line: usize, needle: &str) {
    match &err {
        DataError::Parse {
            path: p,
            line: l,
            msg,
        } => {
            assert_eq!(p, path);
            assert_eq!(*l, line, "{err}");
            assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
        }
        other => panic!("expected a Parse error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:{line}:", path.display())),
        "{text}"
    );
}

#[test]
fn wrong_column_count_names_file_and_line() {
    let (e, p) = load_bad(
        GlueTask::Cola,
        "train",
        "gj04\t1\t\tFine sentence.\ngj04\t0\tBroken row with three columns.\n",
    );
    assert_parse_err(e, &p, 2, "expected 4 tab-separated columns, found 3");

    let (e, p) = load_bad(
        GlueTask::Rte,
        "dev",
        "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tentailment\textra\n",
    );
    assert_parse_err(e, &p, 3, "found 5");
}

#[test]
fn bad_labels_name_file_and_line() {
    let (e, p) = load_bad(
        GlueTask::Sst2,
        "train",
        "sentence\tlabel\ngood\t1\nbad\tneg\n",
    );
    assert_parse_err(e, &p, 3, "non-numeric label `neg`");

    let (e, p) = load_bad(GlueTask::Sst2, "dev", "sentence\tlabel\ngood\t2\n");
    assert_parse_err(e, &p, 2, "out of range");

    let (e, p) = load_bad(
        GlueTask::Rte,
        "train",
        "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tcontradiction\n",
    );
    assert_parse_err(e, &p, 2, "expected one of: entailment, not_entailment");

    let sh =
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
    let (e, p) = load_bad(
        GlueTask::Stsb,
        "dev",
        &format!("{sh}0\tg\tf\ty\t0\tn\tn\ta\tb\t5.5\n"),
    );
    assert_parse_err(e, &p, 2, "out of range 0-5");
    let (e, p) = load_bad(
        GlueTask::Stsb,
        "dev",
        &format!("{sh}0\tg\tf\ty\t0\tn\tn\ta\tb\t4.0\n1\tg\tf\ty\t0\tn\tn\ta\tb\thigh\n"),
    );
    assert_parse_err(e, &p, 3, "non-numeric score");
}

#[test]
fn crlf_and_bom_are_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.tsv");
    std::fs::write(
        &path,
        "\u{feff}sentence\tlabel\r\nfine \" quoted\t1\r\nbad\t0\r\n",
    )
    .unwrap();
    let s = load_file(GlueTask::Sst2, "train", &path).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s.examples[0].text_a, "fine \" quoted");
    assert_eq!(s.examples[1].label, Label::Class(0));
}

#[test]
fn blank_line_inside_file_is_an_error() {
    let (e, p) = load_bad(
        GlueTask::Sst2,
        "train",
        "sentence\tlabel\ngood\t1\n\nbad\t0\n",
    );
    assert_parse_err(e, &p, 3, "empty line");
}

#[test]
fn missing_header_column_lists_available() {
    let (e, _) = load_bad(
        GlueTask::Qnli,
        "dev",
        "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n",
    );
    match e {
        DataError::UnknownColumn {
            target, available, ..
        } => {
            assert_eq!(target, "question");
            assert_eq!(available, "index, sentence1, sentence2, label");
        }
        other => panic!("expected UnknownColumn, got {other:?}"),
    }
}

#[test]
fn empty_and_non_utf8_files() {
    let (e, p) = load_bad(GlueTask::Wnli, "train", "");
    assert!(matches!(e, DataError::Invalid { .. }), "{e:?}");
    assert!(e.to_string().contains(&p.display().to_string()));
    assert!(e.to_string().contains("empty"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.tsv");
    std::fs::write(&path, b"sentence\tlabel\nok\t1\nbad \xff\t0\n").unwrap();
    let e = load_file(GlueTask::Sst2, "dev", &path).unwrap_err();
    assert_parse_err(e, &path, 3, "invalid UTF-8");
}

#[test]
fn missing_file_is_unavailable_with_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(GlueTask::Wnli, "dev", dir.path()).unwrap_err();
    let want = dir.path().join("WNLI/dev.tsv").display().to_string();
    assert!(matches!(e, DataError::Unavailable { .. }));
    assert!(e.to_string().contains(&want), "{e}");
}

#[test]
fn mrpc_dev_ids_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let mrpc = dir.path().join("MRPC");
    std::fs::create_dir(&mrpc).unwrap();
    std::fs::copy(
        fixtures().join("MRPC/msr_paraphrase_train.txt"),
        mrpc.join("msr_paraphrase_train.txt"),
    )
    .unwrap();
    std::fs::write(mrpc.join("dev_ids.tsv"), "1\t2\n3\n").unwrap();
    let e = load(GlueTask::Mrpc, "train", dir.path()).unwrap_err();
    assert_parse_err(
        e,
        &mrpc.join("dev_ids.tsv"),
        2,
        "expected 2 tab-separated ids",
    );
}
