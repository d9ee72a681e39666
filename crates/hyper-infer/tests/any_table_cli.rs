//! `generate --data` on tables no generator saw, through the real binary and the
//! committed data-conditioned checkpoint (checkpoints/tabular-any/generator).

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyper-infer"));
    c.env("RAYON_NUM_THREADS", "1");
    c
}

use test_support::run_command as run;

/// Deterministic uniform numbers in [0, 1) (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `rows` rows of `informative` features shifted by the class, `noise` pure-noise
/// features, classes named `c0..`; `class_of(i)` gives row i's class.
fn write_csv(
    path: &Path,
    rows: usize,
    informative: usize,
    noise: usize,
    class_of: impl Fn(usize) -> usize,
    seed: u64,
) {
    let mut r = Rng(seed);
    let mut s = String::new();
    let names: Vec<String> = (0..informative)
        .map(|j| format!("signal_{j}"))
        .chain((0..noise).map(|j| format!("noise_{j}")))
        .collect();
    s.push_str(&names.join(","));
    s.push_str(",outcome\n");
    for i in 0..rows {
        let c = class_of(i);
        let mut cells: Vec<String> = (0..informative)
            .map(|j| {
                format!(
                    "{:.4}",
                    r.next() + if (c + j).is_multiple_of(3) { 1.2 } else { 0.0 }
                )
            })
            .collect();
        cells.extend((0..noise).map(|_| format!("{:.4}", r.next() * 10.0)));
        cells.push(format!("c{c}"));
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

fn accuracy(out: &str) -> f64 {
    out.split("accuracy ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {out}"))
}

#[test]
fn an_unseen_csv_gets_a_model_that_evals_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("clinic.csv");
    write_csv(&csv, 300, 4, 2, |i| i % 3, 7);
    let out = dir.path().join("model");
    let (ok, s) = run(bin()
        .args(["generate", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{s}");
    assert!(s.contains("generator: data-conditioned"), "{s}");
    assert!(s.contains("MLP 6 → "), "{s}");
    assert!(!s.contains("warning:"), "{s}");
    let (ok, s) = run(bin()
        .args(["eval", "--split", "test", "--data"])
        .arg(&csv)
        .arg("--model")
        .arg(&out));
    assert!(ok, "{s}");
    assert!(accuracy(&s) >= 0.8, "{s}");
    let preds = dir.path().join("preds.csv");
    let (ok, s) = run(bin()
        .args(["predict", "--data"])
        .arg(&csv)
        .arg("--model")
        .arg(&out)
        .arg("--out")
        .arg(&preds));
    assert!(ok, "{s}");
    let text = std::fs::read_to_string(&preds).unwrap();
    assert!(text.lines().next().unwrap().contains("p_c0"), "{text}");
    assert_eq!(text.lines().count(), 301);

    // ModelGPT-F: finetuning epochs on the training split, reported in the JSON.
    let (ok, s) = run(bin()
        .args(["generate", "--json", "--finetune-epochs", "2", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("model_f")));
    assert!(ok, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["finetune_epochs"], 2);
    assert_eq!(v["generator"], "any");
    assert!(v["val_accuracy"].as_f64().unwrap() > v["val_majority_rate"].as_f64().unwrap());
    assert!(v["timings"]["generate"].as_f64().unwrap() < 5.0);
}

#[test]
fn a_model_no_better_than_the_majority_class_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("noise.csv");
    // No informative feature: the labels (85/15) cannot be predicted from the columns.
    write_csv(&csv, 400, 0, 3, |i| usize::from(i % 7 == 0), 3);
    let (ok, s) = run(bin()
        .args(["generate", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("m")));
    assert!(ok, "{s}");
    assert!(
        s.contains("warning: the generated model's validation accuracy")
            && s.contains("majority rate"),
        "{s}"
    );
}

#[test]
fn seen_generator_refuses_finetune_epochs() {
    let (ok, s) = run(bin().args([
        "generate",
        "--dataset",
        "iris",
        "--finetune-epochs",
        "1",
        "--out",
        "/tmp/hyper-never-written",
    ]));
    assert!(!ok && s.contains("--generator any"), "{s}");
    assert!(!Path::new("/tmp/hyper-never-written").exists());
}
