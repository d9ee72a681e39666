//! `generate` → `eval` / `predict` through the real binary with the committed default
//! checkpoint (checkpoints/tabular/best).

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyper-infer"));
    c.env("RAYON_NUM_THREADS", "1");
    c
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(c: &mut Command) -> (bool, String) {
    let o = c.output().unwrap();
    let s = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), s)
}

fn accuracy(out: &str) -> f64 {
    out.split("accuracy ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap()
}

#[test]
fn wine_generate_eval_predict_and_column_mismatch() {
    if !root().join("checkpoints/tabular/best.toml").is_file() {
        panic!("checkpoints/tabular/best.* missing: run `cargo xtask pretrain tabular`");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wine");
    let (ok, s) = run(bin()
        .args(["generate", "--dataset", "wine", "--out"])
        .arg(&out));
    assert!(ok, "{s}");
    assert!(
        s.contains("requirement: ")
            && s.contains("\"in_dim\":13")
            && s.contains("seen task `wine`"),
        "{s}"
    );
    for f in [
        "model.safetensors",
        "metadata.json",
        "requirement.txt",
        "preprocessor.json",
        "model.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let (ok, s) = run(bin()
        .args(["eval", "--dataset", "wine", "--split", "test", "--model"])
        .arg(&out));
    assert!(ok, "{s}");
    assert!(accuracy(&s) >= 0.9, "{s}");

    // A CSV with a different column set is refused, naming the columns.
    let csv = dir.path().join("iris.csv");
    std::fs::write(&csv, "a,b,label\n1,2,x\n3,4,y\n").unwrap();
    let (ok, s) = run(bin()
        .args(["eval", "--data"])
        .arg(&csv)
        .args(["--target", "label", "--model"])
        .arg(&out));
    assert!(
        !ok && s.contains("column set differs")
            && s.contains("missing: [")
            && s.contains("unexpected: [a, b]"),
        "{s}"
    );

    // predict on the wine CSV without its target column.
    let table = datasets::uci::load_builtin("wine").unwrap();
    let mut text = table
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    for r in table.features.iter().take(5) {
        text.push_str(
            &r.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        text.push('\n');
    }
    let feats = dir.path().join("feats.csv");
    std::fs::write(&feats, text).unwrap();
    let preds = dir.path().join("preds.csv");
    let (ok, s) = run(bin()
        .args(["predict", "--data"])
        .arg(&feats)
        .arg("--model")
        .arg(&out)
        .arg("--out")
        .arg(&preds));
    assert!(ok, "{s}");
    let p = std::fs::read_to_string(&preds).unwrap();
    assert_eq!(p.lines().count(), 6, "{p}");
    assert!(p.starts_with("row,prediction,confidence\n0,"), "{p}");
}
