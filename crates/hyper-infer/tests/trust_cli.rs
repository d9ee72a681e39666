//! Outputs a user can trust, through the real binary: no command destroys a user file (an
//! input is never an output, a folder the tool did not write is never replaced), every
//! model directory is sealed by a manifest and refuses non-finite weights, `predict` keeps
//! each prediction on its row, and conflicting flags are errors. Each test here failed
//! before its fix.

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::run_command as run;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
}

/// A separable two-feature table of 120 rows (`a,b,y`).
fn table(dir: &Path) -> PathBuf {
    let mut s = String::from("a,b,y\n");
    for i in 0..120u32 {
        let (a, b) = ((i * 37 % 101) as f32 / 100.0, (i * 53 % 97) as f32 / 96.0);
        s.push_str(&format!(
            "{a:.3},{b:.3},{}\n",
            if a + b > 1.0 { "p" } else { "n" }
        ));
    }
    let p = dir.join("data.csv");
    std::fs::write(&p, s).unwrap();
    p
}

fn generate(data: &Path, out: &Path) -> (bool, String) {
    run(bin()
        .arg("generate")
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out))
}

/// `predict --model M --data D --out O`.
fn predict(model: &Path, data: &Path, out: &Path) -> (bool, String) {
    run(bin()
        .arg("predict")
        .arg("--model")
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out))
}

/// Every regular file under `dir` with its bytes, to show a refused command changed nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(snapshot(&p));
        } else {
            v.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    v.sort();
    v
}

#[test]
fn no_command_overwrites_an_input_or_a_foreign_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = table(tmp.path());
    let model = tmp.path().join("m");
    let (ok, s) = generate(&data, &model);
    assert!(ok, "{s}");
    let before = snapshot(tmp.path());

    // 1. predict onto its own input; 2. predict into the model's weights.
    for (out, want) in [
        (data.clone(), "is also an input"),
        (model.join("model.safetensors"), "lies inside the input"),
    ] {
        let (ok, s) = predict(&model, &data, &out);
        assert!(!ok && s.contains(want), "{}: {s}", out.display());
    }
    // 3. generate into the folder holding its data, or into any folder it did not write.
    let (ok, s) = generate(&data, tmp.path());
    assert!(!ok && s.contains("would hold the input"), "{s}");
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("notes.txt"), "keep me").unwrap();
    let (ok, s) = generate(&data, &theirs);
    assert!(!ok && s.contains("has no `manifest.json`"), "{s}");
    // A model directory with a user's file added is no longer the tool's to replace.
    std::fs::write(model.join("notes.txt"), "mine").unwrap();
    let (ok, s) = generate(&data, &model);
    assert!(
        !ok && s.contains("did not write: notes.txt"),
        "model dir with a user file: {s}"
    );
    std::fs::remove_file(model.join("notes.txt")).unwrap();
    // predict onto a user's other file; into another model directory.
    let other = tmp.path().join("other.csv");
    std::fs::write(&other, "x\n1\n").unwrap();
    for (out, want) in [
        (other.clone(), "not a predictions file"),
        (model.join("preds.csv"), "lies inside the input"),
    ] {
        let (ok, s) = predict(&model, &data, &out);
        assert!(!ok && s.contains(want), "{}: {s}", out.display());
    }
    std::fs::remove_file(&other).unwrap();
    std::fs::remove_dir_all(&theirs).unwrap();
    assert_eq!(
        snapshot(tmp.path()),
        before,
        "a refused command changed a file"
    );

    // What the tool wrote it may replace: the model, and an earlier predictions file.
    let (ok, s) = generate(&data, &model);
    assert!(ok, "{s}");
    let preds = tmp.path().join("preds.csv");
    for _ in 0..2 {
        let (ok, s) = predict(&model, &data, &preds);
        assert!(ok, "{s}");
    }
    // Nothing left beside the outputs: no lock, staging or moved-aside directory.
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["data.csv", "m", "preds.csv"]);
}

#[test]
fn a_killed_write_is_cleaned_or_restored_by_the_next_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = table(tmp.path());
    let model = tmp.path().join("m");
    let (ok, s) = generate(&data, &model);
    assert!(ok, "{s}");
    // A run killed after moving the model aside and before putting the new one in place,
    // and another killed while staging.
    std::fs::rename(&model, tmp.path().join(".m.old-4242")).unwrap();
    std::fs::create_dir(tmp.path().join(".m.staging-x1")).unwrap();
    std::fs::write(tmp.path().join(".m.staging-x1/model.json"), "{").unwrap();
    std::fs::write(tmp.path().join(".m.lock"), "").unwrap();
    let preds = tmp.path().join("p.csv");
    // The next write restores the moved-aside model first, then replaces it.
    let (ok, s) = generate(&data, &model);
    assert!(ok, "{s}");
    let (ok, s) = predict(&model, &data, &preds);
    assert!(ok, "{s}");
    let left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn predict_keeps_every_prediction_on_its_row() {
    let tmp = tempfile::tempdir().unwrap();
    let data = table(tmp.path());
    let model = tmp.path().join("m");
    let (ok, s) = generate(&data, &model);
    assert!(ok, "{s}");
    // Row 1 has every cell empty, row 2 every feature missing: both unscored, in place.
    let rows = tmp.path().join("rows.csv");
    std::fs::write(&rows, "a,b\n0.95,0.95\n,\n?,NA\n0.05,0.05\n").unwrap();
    let preds = tmp.path().join("p.csv");
    let (ok, s) = predict(&model, &rows, &preds);
    assert!(ok, "{s}");
    assert!(
        s.contains("2 of 4 rows not scored")
            && s.contains("row 2 (line 4: every feature is missing)"),
        "{s}"
    );
    let p = std::fs::read_to_string(&preds).unwrap();
    let lines: Vec<&str> = p.lines().collect();
    assert_eq!(lines.len(), 5, "{p}");
    assert!(lines[1].starts_with("0,p,"), "{p}");
    assert_eq!(lines[2], "1,,,,");
    assert_eq!(lines[3], "2,,,,");
    assert!(lines[4].starts_with("3,n,"), "{p}");
    // --json and a CSV on standard output would mix: refused.
    let (ok, s) = run(bin()
        .arg("predict")
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(&rows)
        .args(["--out", "-", "--json"]));
    assert!(!ok && s.contains("both write to standard output"), "{s}");
}

#[test]
fn a_dropped_target_is_an_error_not_another_target() {
    let tmp = tempfile::tempdir().unwrap();
    let data = table(tmp.path());
    for extra in [
        &["--drop-column", "y"][..],
        &["--target", "y", "--drop-column", "y"],
    ] {
        let (ok, s) = run(bin()
            .arg("generate")
            .args(extra)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(tmp.path().join("m")));
        assert!(
            !ok && s.contains("--drop-column `y`: it is the"),
            "{extra:?}: {s}"
        );
    }
    assert!(!tmp.path().join("m").exists());
}

#[test]
fn a_corrupt_model_directory_is_refused_whatever_the_modality() {
    let tmp = tempfile::tempdir().unwrap();
    let data = table(tmp.path());
    let model = tmp.path().join("m");
    let (ok, s) = generate(&data, &model);
    assert!(ok, "{s}");
    // A missing model.json is named as such (it says what kind of model this is).
    let json = std::fs::read(model.join("model.json")).unwrap();
    std::fs::remove_file(model.join("model.json")).unwrap();
    let (ok, s) = run(bin()
        .arg("eval")
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(&data));
    assert!(!ok && s.contains("`model.json` is missing"), "{s}");
    std::fs::write(model.join("model.json"), json).unwrap();
    // A flipped byte in the weights.
    let w = model.join("model.safetensors");
    let mut b = std::fs::read(&w).unwrap();
    let n = b.len();
    b[n - 3] ^= 0x40;
    std::fs::write(&w, b).unwrap();
    let (ok, s) = run(bin()
        .arg("eval")
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(&data));
    assert!(!ok && s.contains("is corrupt or from another run"), "{s}");
}

/// Text: a flipped adapter byte is refused on load (it used to give `loss NaN`, exit 0);
/// the label column cannot also be the text column.
#[test]
fn text_model_directories_are_sealed_and_roles_distinct() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("reviews.csv");
    std::fs::write(
        &data,
        "review,sentiment\ngreat film,good\nawful plot,bad\nloved it,good\nboring mess,bad\n",
    )
    .unwrap();
    let out = tmp.path().join("t");
    let (ok, s) = run(bin()
        .args(["generate", "--text-column", "review", "--target", "review"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(
        !ok && s.contains("--text-column and --target both name column `review`"),
        "{s}"
    );
    let (ok, s) = run(bin()
        .args([
            "generate",
            "--text-column",
            "review",
            "--target",
            "sentiment",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{s}");
    for f in [
        "manifest.json",
        "README.md",
        "tokenizer.json",
        "tokenizer_config.json",
        "labels.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let labels: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("labels.json")).unwrap()).unwrap();
    assert_eq!(labels["id2label"]["0"], "bad");
    let w = out.join("adapter_model.safetensors");
    let mut b = std::fs::read(&w).unwrap();
    let n = b.len();
    b[n - 2] ^= 0x7f;
    std::fs::write(&w, b).unwrap();
    let (ok, s) = run(bin()
        .arg("eval")
        .arg("--model")
        .arg(&out)
        .arg("--data")
        .arg(&data));
    assert!(!ok && s.contains("is corrupt or from another run"), "{s}");
    // An empty text keeps its row, unscored, in predict.
    let (ok, s) = run(bin()
        .args([
            "generate",
            "--text-column",
            "review",
            "--target",
            "sentiment",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{s}");
    let rows = tmp.path().join("rows.csv");
    std::fs::write(&rows, "review\nsuperb\n\"\"\nterrible\n").unwrap();
    let (ok, s) = run(bin()
        .arg("predict")
        .arg("--model")
        .arg(&out)
        .arg("--data")
        .arg(&rows)
        .args(["--out", "-"]));
    assert!(ok, "{s}");
    let lines: Vec<&str> = s.lines().filter(|l| !l.starts_with("warning")).collect();
    assert_eq!(lines[2], "1,,,,", "{s}");
    assert!(lines[3].starts_with("2,"), "{s}");
}

/// Images: `--out` inside (or equal to) the image folder is refused before any work; a
/// non-finite learning rate is refused (it used to write NaN weights with exit 0).
#[test]
fn image_outputs_never_land_in_the_image_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let imgs = tmp.path().join("imgs");
    for c in ["a", "b"] {
        std::fs::create_dir_all(imgs.join(c)).unwrap();
        for k in 0..3u8 {
            image::GrayImage::from_pixel(28, 28, image::Luma([k * 40]))
                .save(imgs.join(c).join(format!("{k}.png")))
                .unwrap();
        }
    }
    let before = snapshot(&imgs);
    for out in [imgs.clone(), imgs.join("model")] {
        let (ok, s) = run(bin()
            .arg("generate")
            .arg("--images")
            .arg(&imgs)
            .arg("--out")
            .arg(&out));
        assert!(!ok && s.contains("refusing"), "{}: {s}", out.display());
    }
    assert_eq!(snapshot(&imgs), before);
    let (ok, s) = run(bin()
        .args(["generate", "--finetune-epochs", "1", "--finetune-lr", "inf"])
        .arg("--images")
        .arg(&imgs)
        .arg("--out")
        .arg(tmp.path().join("m")));
    assert!(!ok && s.contains("--finetune-lr inf"), "{s}");
    // CSV-only flags with images are refused, not ignored.
    let (ok, s) = run(bin()
        .args(["generate", "--target", "y", "--images"])
        .arg(&imgs)
        .arg("--out")
        .arg(tmp.path().join("m")));
    assert!(!ok && s.contains("--target reads a CSV"), "{s}");

    // A folder's split is recorded: --split test scores its 30%, not every image.
    let m = tmp.path().join("m");
    let (ok, s) = run(bin()
        .arg("generate")
        .arg("--images")
        .arg(&imgs)
        .arg("--out")
        .arg(&m));
    assert!(ok, "{s}");
    let (ok, s) = run(bin()
        .args(["eval", "--json", "--split", "test", "--model"])
        .arg(&m)
        .arg("--images")
        .arg(&imgs));
    assert!(ok, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["rows"], 2, "30% of 6 images: {s}");
    // A nested folder inside a class folder is an error, not skipped.
    std::fs::create_dir(imgs.join("a/more")).unwrap();
    let (ok, s) = run(bin()
        .arg("generate")
        .arg("--images")
        .arg(&imgs)
        .arg("--out")
        .arg(tmp.path().join("m2")));
    assert!(!ok && s.contains("nested folders are not read"), "{s}");
}

/// Text: `eval --split test` scores the rows the model was not generated or finetuned on,
/// and another file gets a warning that its split is redrawn; GLUE and built-in image sets
/// refuse a split they cannot honour.
#[test]
fn text_splits_are_recorded_and_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = String::from("review,sentiment\n");
    for i in 0..40 {
        let (t, l) = if i % 2 == 0 {
            ("a lovely warm film", "good")
        } else {
            ("a dull tired mess", "bad")
        };
        csv.push_str(&format!("{t} {i},{l}\n"));
    }
    let data = tmp.path().join("r.csv");
    std::fs::write(&data, &csv).unwrap();
    let out = tmp.path().join("t");
    let (ok, s) = run(bin()
        .args([
            "generate",
            "--json",
            "--text-column",
            "review",
            "--target",
            "sentiment",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{s}");
    // The validation check tables have: 10% of 40 rows, beside their majority rate.
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["val_rows"], 4, "{s}");
    assert!(
        v["val_accuracy"].is_number() && v["val_majority_rate"].is_number(),
        "{s}"
    );
    let eval = |data: &Path, split: &str| {
        run(bin()
            .args(["eval", "--json", "--split", split, "--model"])
            .arg(&out)
            .arg("--data")
            .arg(data))
    };
    let (ok, s) = eval(&data, "test");
    assert!(ok && !s.contains("warning"), "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["rows"], 12, "30% of 40 rows: {s}");
    let (ok, s) = eval(&data, "all");
    assert!(ok, "{s}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&s).unwrap()["rows"],
        40
    );
    // Another file: scored, with a warning that its split is drawn afresh.
    let other = tmp.path().join("other.csv");
    std::fs::write(&other, csv.replace("film 0", "film zero")).unwrap();
    let (ok, s) = eval(&other, "test");
    assert!(ok && s.contains("is drawn afresh"), "{s}");
    let (ok, s) = run(bin()
        .args(["eval", "--split", "test", "--glue", "sst2", "--model"])
        .arg(&out));
    assert!(!ok && s.contains("--split applies to --data"), "{s}");
}

/// `eval`, `predict` and `describe --json` print one documented shape for tables, text and
/// images (`docs/json/*.schema.json`).
#[test]
fn json_output_has_one_documented_shape_across_modalities() {
    let schema = |name: &str| -> serde_json::Value {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/json")
            .join(format!("{name}.schema.json"));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (eval_s, predict_s, describe_s) = (schema("eval"), schema("predict"), schema("describe"));
    let tmp = tempfile::tempdir().unwrap();
    let table = table(tmp.path());
    let texts = tmp.path().join("texts.csv");
    let mut csv = String::from("review,sentiment\n");
    for i in 0..20 {
        csv.push_str(&format!(
            "{} {i},{}\n",
            ["fine film", "poor film"][i % 2],
            ["good", "bad"][i % 2]
        ));
    }
    std::fs::write(&texts, csv).unwrap();
    let imgs = tmp.path().join("imgs");
    for c in ["a", "b"] {
        std::fs::create_dir_all(imgs.join(c)).unwrap();
        for k in 0..4u8 {
            image::GrayImage::from_pixel(28, 28, image::Luma([k * 30 + 5]))
                .save(imgs.join(c).join(format!("{k}.png")))
                .unwrap();
        }
    }
    let text_args = ["--text-column", "review", "--target", "sentiment"];
    let cases: [(&str, Vec<String>, Vec<String>); 3] = [
        (
            "table",
            vec!["--data".into(), table.display().to_string()],
            vec!["--data".into(), table.display().to_string()],
        ),
        (
            "text",
            [
                &["--data".to_string(), texts.display().to_string()][..],
                &text_args.map(String::from),
            ]
            .concat(),
            vec!["--data".into(), texts.display().to_string()],
        ),
        (
            "image",
            vec!["--images".into(), imgs.display().to_string()],
            vec!["--images".into(), imgs.join("a").display().to_string()],
        ),
    ];
    for (modality, source, predict_from) in cases {
        let model = tmp.path().join(modality);
        let check = |schema: &serde_json::Value, what: &str, s: &str| {
            let v: serde_json::Value =
                serde_json::from_str(s).unwrap_or_else(|e| panic!("{modality} {what}: {e}: {s}"));
            let bad = test_support::json_schema::violations(schema, &v);
            assert!(bad.is_empty(), "{modality} {what}: {bad:?}\n{s}");
            assert_eq!(v["modality"], modality, "{s}");
        };
        let (ok, s) = run(bin().args(["describe", "--json"]).args(&source));
        assert!(ok, "{s}");
        check(&describe_s, "describe", &s);
        let (ok, s) = run(bin().arg("generate").args(&source).arg("--out").arg(&model));
        assert!(ok, "{s}");
        let score_on: Vec<String> = if modality == "text" {
            source[..2].to_vec()
        } else {
            source.clone()
        };
        let (ok, s) = run(bin()
            .args(["eval", "--json", "--split", "test", "--model"])
            .arg(&model)
            .args(&score_on));
        assert!(ok, "{s}");
        check(&eval_s, "eval", &s);
        let (ok, s) = run(bin()
            .args(["predict", "--json", "--model"])
            .arg(&model)
            .args(&predict_from)
            .arg("--out")
            .arg(tmp.path().join(format!("{modality}.csv"))));
        assert!(ok, "{s}");
        check(&predict_s, "predict", &s);
    }
}

/// Every model directory carries a model card; a table model's card holds a loader in plain
/// Python (standard library only) that reproduces `predict` to 1e-5, categorical and
/// missing cells included.
#[test]
fn the_model_card_loads_a_table_model_outside_the_tool() {
    let Ok(py) = Command::new("python3").arg("--version").output() else {
        println!("skipped: python3 is not installed");
        return;
    };
    assert!(py.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = String::from("a,colour,b,y\n");
    for i in 0..150u32 {
        let (a, b) = ((i * 37 % 101) as f32 / 10.0, (i * 53 % 97) as f32);
        let colour = ["red", "green", "blue"][(i % 3) as usize];
        let a_cell = if i % 17 == 0 {
            "?".to_string()
        } else {
            format!("{a:.1}")
        };
        let y = if a + (i % 3) as f32 * 2.0 > 6.0 {
            "hi"
        } else {
            "lo"
        };
        csv.push_str(&format!("{a_cell},{colour},{b},{y}\n"));
    }
    let data = tmp.path().join("d.csv");
    std::fs::write(&data, &csv).unwrap();
    let model = tmp.path().join("m");
    let (ok, s) = generate(&data, &model);
    assert!(ok, "{s}");
    let card = std::fs::read_to_string(model.join("README.md")).unwrap();
    assert!(
        card.contains("Validation accuracy:") && card.contains("hi, lo"),
        "{card}"
    );
    let code = card
        .split("```python\n")
        .nth(1)
        .and_then(|c| c.split("```").next())
        .expect("a python block in the card");
    let script = tmp.path().join("load.py");
    std::fs::write(&script, code).unwrap();
    let o = Command::new("python3")
        .arg(&script)
        .arg(&data)
        .env("MODEL", &model)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs = String::from_utf8(o.stdout).unwrap();
    let preds = tmp.path().join("p.csv");
    let (ok, s) = predict(&model, &data, &preds);
    assert!(ok, "{s}");
    let ours = std::fs::read_to_string(&preds).unwrap();
    let ours: Vec<&str> = ours.lines().skip(1).collect();
    let theirs: Vec<&str> = theirs.lines().collect();
    assert_eq!(ours.len(), 150);
    assert_eq!(theirs.len(), 150);
    let mut worst = 0f64;
    for (o, t) in ours.iter().zip(&theirs) {
        let o: Vec<&str> = o.split(',').collect();
        let t: Vec<&str> = t.split(' ').collect();
        assert_eq!(o[1], t[0], "{o:?} vs {t:?}");
        for (a, b) in o[3..].iter().zip(&t[1..]) {
            let d = (a.parse::<f64>().unwrap() - b.parse::<f64>().unwrap()).abs();
            worst = worst.max(d);
        }
    }
    assert!(worst <= 1e-5, "largest probability difference {worst}");
    // Text and image directories carry a card too (their loaders need torch; see the card).
    for m in ["README.md", "manifest.json"] {
        assert!(model.join(m).is_file(), "{m}");
    }
}

/// Tables are bounded, with errors that give the bound.
#[test]
fn table_size_limits_are_errors_naming_the_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let wide = tmp.path().join("wide.csv");
    let n = datasets::user_csv::MAX_COLUMNS + 1;
    let header: Vec<String> = (0..n).map(|j| format!("c{j}")).collect();
    let row: Vec<&str> = (0..n).map(|j| if j % 2 == 0 { "1" } else { "0" }).collect();
    std::fs::write(
        &wide,
        format!(
            "{}\n{}\n{}\n",
            header.join(","),
            row.join(","),
            row.join(",")
        ),
    )
    .unwrap();
    let (ok, s) = run(bin().arg("describe").arg("--data").arg(&wide));
    assert!(!ok && s.contains("at most 10000 are supported"), "{s}");
}

/// `export --format onnx` writes a file that onnxruntime (from PyPI) runs to `predict`'s
/// probabilities (5e-4: the graph computes in f32, `predict` in f64, and a fitted readout
/// sums about a thousand cancelling terms), categorical and missing cells included.
/// Skipped, with the reason printed, where python3 lacks onnxruntime or numpy.
#[test]
fn an_exported_onnx_table_model_matches_predict_in_onnxruntime() {
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = String::from("a,colour,b,y\n");
    for i in 0..90u32 {
        let a = (i * 37 % 101) as f32 / 10.0;
        let colour = ["red", "green", "blue"][(i % 3) as usize];
        let a_cell = if i % 11 == 0 {
            String::new()
        } else {
            format!("{a:.1}")
        };
        let y = ["lo", "mid", "hi"][((a as u32 + i % 3) % 3) as usize];
        csv.push_str(&format!("{a_cell},{colour},{},{y}\n", i % 7));
    }
    let data = tmp.path().join("d.csv");
    std::fs::write(&data, &csv).unwrap();
    let model = tmp.path().join("m");
    let (ok, s) = generate(&data, &model);
    assert!(ok, "{s}");
    let onnx = tmp.path().join("m.onnx");
    // Into the model directory: refused; then written, and written again over itself.
    let (ok, s) = run(bin()
        .args(["export", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(model.join("m.onnx")));
    assert!(!ok && s.contains("lies inside the input"), "{s}");
    for _ in 0..2 {
        let (ok, s) = run(bin()
            .args(["export", "--model"])
            .arg(&model)
            .arg("--out")
            .arg(&onnx));
        assert!(ok, "{s}");
    }
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
    let theirs = String::from_utf8(o.stdout).unwrap();
    let preds = tmp.path().join("p.csv");
    let (ok, s) = predict(&model, &data, &preds);
    assert!(ok, "{s}");
    let ours = std::fs::read_to_string(&preds).unwrap();
    let mut worst = 0f64;
    let mut n = 0;
    for (o, t) in ours.lines().skip(1).zip(theirs.lines()) {
        let o: Vec<f64> = o.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
        let t: Vec<f64> = t.split(' ').map(|v| v.parse().unwrap()).collect();
        assert_eq!(o.len(), 3);
        for (a, b) in o.iter().zip(&t) {
            worst = worst.max((a - b).abs());
        }
        n += 1;
    }
    assert_eq!(n, 90);
    assert!(worst <= 5e-4, "largest probability difference {worst}");
}

/// An image model directory is self-contained (its backbone inside, one resize policy
/// recorded), and its ONNX export runs in onnxruntime to `predict`'s probabilities (1e-5).
/// The onnxruntime part is skipped, with the reason printed, where python3 lacks it.
#[test]
fn an_image_model_is_self_contained_and_its_onnx_export_matches_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let imgs = tmp.path().join("imgs");
    let size = 32u32;
    let pixel = |c: u32, k: u32, x: u32, y: u32| -> u8 {
        (((x * (3 + c) + y * (5 + k) + 17 * k) % 97) * 2 + 40 * c) as u8
    };
    for c in 0..2u32 {
        std::fs::create_dir_all(imgs.join(format!("c{c}"))).unwrap();
        for k in 0..5u32 {
            image::GrayImage::from_fn(size, size, |x, y| image::Luma([pixel(c, k, x, y)]))
                .save(imgs.join(format!("c{c}/{k}.png")))
                .unwrap();
        }
    }
    let model = tmp.path().join("m");
    let (ok, s) = run(bin()
        .arg("generate")
        .arg("--images")
        .arg(&imgs)
        .arg("--out")
        .arg(&model));
    assert!(ok, "{s}");
    assert!(model.join("backbone.safetensors").is_file());
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(info["backbone_weights"], "backbone.safetensors");
    assert!(
        info["resize"].as_str().unwrap().contains("bilinear"),
        "{info}"
    );
    // The directory works moved elsewhere: nothing points back into the checkout.
    let moved = tmp.path().join("moved");
    std::fs::rename(&model, &moved).unwrap();
    let preds = tmp.path().join("p.csv");
    let (ok, s) = run(bin()
        .args(["predict", "--model"])
        .arg(&moved)
        .arg("--images")
        .arg(imgs.join("c1"))
        .arg("--out")
        .arg(&preds));
    assert!(ok, "{s}");
    let onnx = tmp.path().join("m.onnx");
    let (ok, s) = run(bin()
        .args(["export", "--model"])
        .arg(&moved)
        .arg("--out")
        .arg(&onnx));
    assert!(ok, "{s}");
    if !test_support::onnxruntime_available() {
        return;
    }
    // The same five images as raw RGB floats, in predict's (sorted file) order.
    let mut raw = Vec::new();
    for k in 0..5u32 {
        for _ in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    raw.extend((pixel(1, k, x, y) as f32 / 255.0).to_le_bytes());
                }
            }
        }
    }
    let raw_path = tmp.path().join("images.f32");
    std::fs::write(&raw_path, raw).unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python/onnx_image_check.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(&onnx)
        .arg(&raw_path)
        .args(["5", &size.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs = String::from_utf8(o.stdout).unwrap();
    let ours = std::fs::read_to_string(&preds).unwrap();
    let mut worst = 0f64;
    for (o, t) in ours.lines().skip(1).zip(theirs.lines()) {
        let o: Vec<f64> = o.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
        let t: Vec<f64> = t.split(' ').map(|v| v.parse().unwrap()).collect();
        assert_eq!(o.len(), 2);
        for (a, b) in o.iter().zip(&t) {
            worst = worst.max((a - b).abs());
        }
    }
    assert_eq!(theirs.lines().count(), 5);
    assert!(worst <= 1e-5, "largest probability difference {worst}");
}

/// Number labels no longer make a text model near chance: the default fitted head reads the
/// training rows, not the label names. Ten short reviews per class, labels `0`/`1`.
#[test]
fn a_fitted_text_head_learns_number_labels_from_the_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let good = [
        "a wonderful film",
        "loved every minute",
        "brilliant and moving",
        "a joy to watch",
        "superb acting",
    ];
    let bad = [
        "a dull mess",
        "boring and far too long",
        "i hated it",
        "a waste of time",
        "awful writing",
    ];
    let mut csv = String::from("review,label\n");
    for i in 0..60 {
        let (t, l) = if i % 2 == 0 {
            (good[i / 2 % 5], 1)
        } else {
            (bad[i / 2 % 5], 0)
        };
        csv.push_str(&format!("{t},{l}\n"));
    }
    let data = tmp.path().join("r.csv");
    std::fs::write(&data, csv).unwrap();
    let out = tmp.path().join("m");
    let (ok, s) = run(bin()
        .args([
            "generate",
            "--json",
            "--text-column",
            "review",
            "--target",
            "label",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["head"]["kind"], "fitted", "{s}");
    let (ok, s) = run(bin()
        .args(["eval", "--json", "--split", "test", "--model"])
        .arg(&out)
        .arg("--data")
        .arg(&data));
    assert!(ok, "{s}");
    let e: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert!(e["score"].as_f64().unwrap() >= 0.9, "{s}");
    // --text-head is refused for tables instead of being ignored.
    let (ok, s) = run(bin()
        .args(["generate", "--text-head", "fitted", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("t")));
    assert!(
        !ok && s.contains("--text-head applies to text models"),
        "{s}"
    );
}
