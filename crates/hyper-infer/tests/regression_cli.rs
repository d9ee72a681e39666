//! Table regression through the real binary with the committed data-conditioned generator:
//! a numeric target with many distinct values is read as values (the rule is stated, and
//! `--task` overrides it), `eval` reports R², RMSE and MAE, `predict` writes values, and
//! the model card's Python loader and the ONNX export reproduce `predict`.

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::run_command as run;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
}

/// 200 rows of `a,colour,b,y` with `y = 3a − 2b + (2 for red) + a² + small noise`; a few
/// missing cells.
fn table(dir: &Path) -> PathBuf {
    let mut s = String::from("a,colour,b,y\n");
    for i in 0..200u32 {
        let a = (i * 37 % 101) as f64 / 10.0;
        let b = (i * 53 % 97) as f64 / 9.7;
        let colour = ["red", "green", "blue"][(i % 3) as usize];
        let noise = ((i * 7919 % 13) as f64 - 6.0) / 20.0;
        let y = 3.0 * a - 2.0 * b + if colour == "red" { 2.0 } else { 0.0 } + 0.1 * a * a + noise;
        let a_cell = if i % 23 == 0 {
            String::new()
        } else {
            format!("{a:.1}")
        };
        s.push_str(&format!("{a_cell},{colour},{b:.2},{y:.3}\n"));
    }
    let p = dir.join("reg.csv");
    std::fs::write(&p, s).unwrap();
    p
}

fn generate(data: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
    run(bin()
        .arg("generate")
        .arg("--data")
        .arg(data)
        .args(extra)
        .arg("--out")
        .arg(out))
}

fn predictions(model: &Path, data: &Path, out: &Path) -> Vec<f64> {
    let (ok, s) = run(bin()
        .args(["predict", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out));
    assert!(ok, "{s}");
    let text = std::fs::read_to_string(out).unwrap();
    assert!(text.starts_with("row,prediction\n"), "{text}");
    text.lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_numeric_target_gets_a_regressor_scored_by_r2() {
    let tmp = tempfile::tempdir().unwrap();
    let data = table(tmp.path());
    let model = tmp.path().join("m");
    let (ok, s) = generate(&data, &model, &["--seed", "3"]);
    assert!(ok, "{s}");
    assert!(
        s.contains("task: regression (target `y`: every value is a number"),
        "{s}"
    );
    assert!(
        s.contains("tabular regression") && s.contains("validation r2"),
        "{s}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(info["regression"]["bins"], 8, "{info}");
    let pre: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("preprocessor.json")).unwrap())
            .unwrap();
    assert_eq!(pre["clip"], true);
    let (ok, s) = run(bin()
        .args(["eval", "--split", "test", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data));
    assert!(ok, "{s}");
    let r2: f64 = s
        .strip_prefix("r2 ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no r2 in {s}"));
    assert!(r2 > 0.9, "{s}");
    assert!(s.contains("(60 rows, split Test)"), "{s}");
    let (ok, s) = run(bin()
        .args(["eval", "--json", "--split", "test", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data));
    assert!(ok, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let schema = |name: &str| -> serde_json::Value {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/json")
            .join(format!("{name}.schema.json"));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let bad = test_support::json_schema::violations(&schema("eval"), &v);
    assert!(bad.is_empty(), "{bad:?}\n{s}");
    assert_eq!(v["score"], v["metrics"]["r2"], "{v}");
    assert!(v["metrics"]["rmse"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["metrics"]["mae"].as_f64().unwrap() > 0.0, "{v}");
    // predict writes one value per row (and its --json the documented shape); the card's
    // plain-Python loader gives the same.
    let ours = predictions(&model, &data, &tmp.path().join("p.csv"));
    assert_eq!(ours.len(), 200);
    let (ok, s) = run(bin()
        .args(["predict", "--json", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("p2.csv")));
    assert!(ok, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let bad = test_support::json_schema::violations(&schema("predict"), &v);
    assert!(bad.is_empty(), "{bad:?}\n{s}");
    assert_eq!(v["class_names"], serde_json::json!(["y"]), "{v}");
    assert!(
        (v["predictions"][0].as_f64().unwrap() - ours[0]).abs() < 1e-5,
        "{v}"
    );
    let card = std::fs::read_to_string(model.join("README.md")).unwrap();
    assert!(card.contains("Table regressor"), "{card}");
    let code = card
        .split("```python\n")
        .nth(1)
        .and_then(|c| c.split("```").next())
        .expect("a python block in the card");
    let script = tmp.path().join("load.py");
    std::fs::write(&script, code).unwrap();
    let Ok(o) = Command::new("python3")
        .arg(&script)
        .arg(&data)
        .env("MODEL", &model)
        .output()
    else {
        println!("skipped: the card's loader needs python3");
        return;
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs: Vec<f64> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(theirs.len(), 200);
    for (a, b) in ours.iter().zip(&theirs) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn task_flag_overrides_the_rule_and_bad_targets_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = table(tmp.path());
    // Read as classes, the same target is refused with the reason.
    let (ok, s) = generate(&data, &tmp.path().join("c"), &["--task", "classification"]);
    assert!(!ok && s.contains("looks like a regression target"), "{s}");
    // A 5-grade integer target is classes by default and values with --task regression.
    let mut grades = String::from("a,b,grade\n");
    for i in 0..150u32 {
        let (a, b) = ((i * 37 % 101) as f32 / 10.0, (i * 53 % 97) as f32);
        grades.push_str(&format!("{a},{b},{}\n", (a as u32 + i % 2) % 5 + 1));
    }
    let g = tmp.path().join("grades.csv");
    std::fs::write(&g, grades).unwrap();
    let (ok, s) = generate(&g, &tmp.path().join("g1"), &[]);
    assert!(ok && s.contains("5-class"), "{s}");
    let (ok, s) = generate(&g, &tmp.path().join("g2"), &["--task", "regression"]);
    assert!(
        ok && s.contains("task: regression (--task regression;"),
        "{s}"
    );
    // eval reads the target as the model does; a contradicting --task is an error.
    let (ok, s) = run(bin()
        .args(["eval", "--task", "classification", "--model"])
        .arg(tmp.path().join("g2"))
        .arg("--data")
        .arg(&g));
    assert!(!ok && s.contains("does not match the model"), "{s}");
    // A word in a regression target names its line.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "a,y\n1,2.5\n2,n/a?\n3,4.5\n").unwrap();
    let (ok, s) = generate(&bad, &tmp.path().join("b"), &["--task", "regression"]);
    assert!(
        !ok && s.contains("bad.csv:3") && s.contains("needs a finite number"),
        "{s}"
    );
    // A constant target has nothing to regress.
    let flat = tmp.path().join("flat.csv");
    let rows: String = (0..30).map(|i| format!("{i}.5,{}\n", 7)).collect();
    std::fs::write(&flat, format!("a,y\n{rows}")).unwrap();
    let (ok, s) = generate(&flat, &tmp.path().join("f"), &["--task", "regression"]);
    assert!(!ok && s.contains("constant"), "{s}");
}

/// The ONNX export of a regression model outputs `value` and, where onnxruntime is
/// installed, reproduces `predict` (the clamp to the training range included).
#[test]
fn a_regression_model_exports_to_onnx() {
    let tmp = tempfile::tempdir().unwrap();
    let data = table(tmp.path());
    let model = tmp.path().join("m");
    let (ok, s) = generate(&data, &model, &[]);
    assert!(ok, "{s}");
    let onnx = tmp.path().join("m.onnx");
    let (ok, s) = run(bin()
        .args(["export", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(&onnx));
    assert!(ok, "{s}");
    if !test_support::onnxruntime_available() {
        return;
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python/onnx_table_check.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(&model)
        .arg(&onnx)
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs: Vec<f64> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let ours = predictions(&model, &data, &tmp.path().join("p.csv"));
    assert_eq!(theirs.len(), ours.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
}
