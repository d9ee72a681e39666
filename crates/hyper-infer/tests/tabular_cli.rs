//! `generate` → `eval` / `predict` through the real binary with the committed default
//! checkpoint (checkpoints/tabular/best).

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyper-infer"));
    c.env("RAYON_NUM_THREADS", "1");
    c
}

use test_support::run_command as run;

fn accuracy(out: &str) -> f64 {
    out.split("accuracy ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap()
}

#[test]
fn wine_generate_eval_predict_and_column_mismatch() {
    default_checkpoint_present();
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
    std::fs::write(&feats, &text).unwrap();
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
    assert!(
        p.starts_with("row,prediction,confidence,p_class_0,p_class_1,p_class_2\n0,"),
        "{p}"
    );
    // Each row: its class probabilities sum to 1 and the confidence is the largest.
    for line in p.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let probs: Vec<f64> = f[3..].iter().map(|v| v.parse().unwrap()).collect();
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{line}");
        let conf: f64 = f[2].parse().unwrap();
        assert!(
            (conf - probs.iter().cloned().fold(0.0, f64::max)).abs() < 1e-4,
            "{line}"
        );
    }

    // The same rows with the target column present (one row, one class) predict the same.
    let mut with_target = String::from("target,");
    with_target.push_str(text.lines().next().unwrap());
    with_target.push('\n');
    for l in text.lines().skip(1) {
        with_target.push_str("class_0,");
        with_target.push_str(l);
        with_target.push('\n');
    }
    std::fs::write(&feats, &with_target).unwrap();
    let mut c = bin();
    c.args(["predict", "--data"])
        .arg(&feats)
        .arg("--model")
        .arg(&out)
        .args(["--out", "-"]);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), p);
    assert!(!Path::new("-").exists());

    // A link at --out is refused, not replaced.
    #[cfg(unix)]
    {
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&feats, &link).unwrap();
        let (ok, s) = run(bin()
            .args(["predict", "--dataset", "wine", "--model"])
            .arg(&out)
            .arg("--out")
            .arg(&link));
        assert!(!ok && s.contains("not a regular file"), "{s}");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}

fn default_checkpoint_present() {
    if !hyper_infer::default_checkpoint()
        .with_extension("toml")
        .is_file()
    {
        panic!("checkpoints/tabular/best.* missing: run `cargo xtask pretrain tabular`");
    }
}

#[test]
fn generate_json_reports_stages_and_safetensors_carries_the_architecture() {
    default_checkpoint_present();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("iris");
    let o = bin()
        .args(["generate", "--dataset", "iris", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["metadata"]["arch"], "mlp_small");
    assert_eq!(v["backend"], "profile");
    assert_eq!(v["heads"]["task"], "iris");
    for k in ["requirement", "metadata", "encode", "generate", "write"] {
        assert!(v["timings"][k].as_f64().unwrap() >= 0.0, "{k}: {v}");
    }
    // The weights file alone says how to rebuild the model.
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let arch: serde_json::Value = serde_json::from_str(
        header["__metadata__"]["hyper.architecture"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            arch["target"].as_str(),
            arch["in_dim"].as_u64(),
            arch["out_dim"].as_u64()
        ),
        (Some("mlp"), Some(4), Some(3))
    );
    assert_eq!(arch["hidden"], serde_json::json!([32, 32]));
    assert_eq!(header["mlp.0.weight"]["shape"], serde_json::json!([32, 4]));

    let o = bin()
        .args([
            "eval",
            "--dataset",
            "iris",
            "--split",
            "test",
            "--json",
            "--model",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["rows"], 45);
    assert!(e["metrics"]["accuracy"].as_f64().unwrap() > e["majority_rate"].as_f64().unwrap());
    assert_eq!(e["score"], e["metrics"]["accuracy"]);
    assert_eq!(e["modality"], "table");
}

#[test]
fn a_metadata_arch_the_checkpoint_does_not_serve_is_refused_naming_both() {
    default_checkpoint_present();
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("small-only");
    let src = hyper_infer::default_checkpoint();
    std::fs::copy(
        src.with_extension("safetensors"),
        stem.with_extension("safetensors"),
    )
    .unwrap();
    let header = std::fs::read_to_string(src.with_extension("toml")).unwrap();
    let narrowed = header.replace(
        "serves = [\"mlp_small\", \"mlp_base\", \"mlp_large\"]",
        "serves = [\"mlp_small\"]",
    );
    assert_ne!(header, narrowed);
    std::fs::write(stem.with_extension("toml"), narrowed).unwrap();
    // Iris (150 rows) asks for mlp_small: served.
    let (ok, s) = run(bin()
        .args(["generate", "--dataset", "iris", "--checkpoint"])
        .arg(&stem)
        .arg("--out")
        .arg(dir.path().join("iris")));
    assert!(ok, "{s}");
    // Rice (3,810 rows) asks for mlp_base: refused, naming both.
    let (ok, s) = run(bin()
        .args(["generate", "--dataset", "rice", "--checkpoint"])
        .arg(&stem)
        .arg("--out")
        .arg(dir.path().join("rice")));
    assert!(
        !ok && s.contains("`mlp_base`") && s.contains("`mlp_small`"),
        "{s}"
    );
    assert!(!dir.path().join("rice").exists());
}

#[test]
fn a_flipped_byte_or_a_concurrent_writer_never_yields_a_silently_wrong_model() {
    default_checkpoint_present();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    // Two writers into one --out: both succeed, one after the other, and what is left is
    // one whole model.
    let spawn = || {
        bin()
            .args(["generate", "--dataset", "iris", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "m" && !n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (ok, s) = run(bin()
        .args(["eval", "--dataset", "iris", "--model"])
        .arg(&out));
    assert!(ok, "{s}");

    // One flipped byte in the weights: refused, naming the file.
    let w = out.join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let i = bytes.len() - 3;
    bytes[i] ^= 0x40;
    std::fs::write(&w, &bytes).unwrap();
    let (ok, s) = run(bin()
        .args(["eval", "--dataset", "iris", "--model"])
        .arg(&out));
    assert!(
        !ok && s.contains("model.safetensors is corrupt or from another run"),
        "{s}"
    );

    // A directory without its manifest (not written by generate) is refused too.
    std::fs::write(&w, {
        bytes[i] ^= 0x40;
        &bytes
    })
    .unwrap();
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    let (ok, s) = run(bin()
        .args(["predict", "--dataset", "iris", "--out", "-", "--model"])
        .arg(&out));
    assert!(!ok && s.contains("`manifest.json` is missing"), "{s}");
}

#[test]
fn a_missing_encoder_asks_for_fetch_not_for_pretraining() {
    default_checkpoint_present();
    let dir = tempfile::tempdir().unwrap();
    let (ok, s) = run(bin()
        .env("HYPER_DATA", dir.path())
        .args(["generate", "--dataset", "iris", "--out"])
        .arg(dir.path().join("m")));
    assert!(!ok, "{s}");
    assert!(
        s.contains("cargo xtask fetch") && !s.contains("pretrain"),
        "{s}"
    );
}

#[test]
fn a_bit_flipped_encoder_is_refused_with_the_fetch_fix() {
    default_checkpoint_present();
    let real = datasets::paths::data_dir();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sklearn")).unwrap();
    std::fs::copy(
        real.join("sklearn/iris.csv"),
        dir.path().join("sklearn/iris.csv"),
    )
    .unwrap();
    let minilm = dir.path().join("minilm");
    std::fs::create_dir_all(&minilm).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(real.join("minilm").join(f), minilm.join(f)).unwrap();
    }
    let mut w = std::fs::read(real.join("minilm/model.safetensors")).unwrap();
    let i = w.len() - 1000;
    w[i] ^= 0x01;
    std::fs::write(minilm.join("model.safetensors"), &w).unwrap();

    let (ok, s) = run(bin()
        .env("HYPER_DATA", dir.path())
        .args(["generate", "--dataset", "iris", "--out"])
        .arg(dir.path().join("m")));
    assert!(!ok, "{s}");
    assert!(
        s.contains("minilm/model.safetensors")
            && s.contains("does not match assets.toml")
            && s.contains("cargo xtask fetch --force"),
        "{s}"
    );
    assert!(
        !dir.path().join("m").exists(),
        "no model directory on failure"
    );
}
