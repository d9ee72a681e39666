//! The text path through the real binary and the committed NLP generator
//! (checkpoints/nlp/best): `generate --glue` / `generate --data --text-column` write a
//! PEFT adapter directory that `eval` and `predict` read back; bad text input gets an
//! error naming the file, line and column.

use std::process::Command;

use candle_core::Device;
use hyper_infer::text::{predict, TextGenerator, TextTokenizer};
use hyper_infer::text_model_dir::TextModelDir;
use target_models::bert::BertModel;
use test_support::run_command as run;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
}

fn write(dir: &std::path::Path, name: &str, body: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

const REVIEWS: &str = "review,sentiment\n\
\"a wonderful, moving film\",good\n\
dull and far too long,bad\n\
the best thing I saw this year,good\n\
a waste of two hours,bad\n\
charming and funny,good\n\
lifeless acting and a silly plot,bad\n";

#[test]
fn glue_task_to_peft_adapter_eval_and_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("wnli");
    let (ok, s) = run(bin()
        .args(["generate", "--glue", "wnli", "--json", "--out"])
        .arg(&out));
    assert!(ok, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["metadata"]["task"], "seq_cls");
    assert_eq!(
        v["labels"],
        serde_json::json!(["not entailment", "entailment"])
    );
    for f in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "model.json",
        "requirement.txt",
    ] {
        assert!(out.join(f).is_file(), "{f} missing: {s}");
    }
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["task_type"], "SEQ_CLS");
    assert_eq!(cfg["target_modules"], serde_json::json!(["query", "value"]));
    assert_eq!(cfg["modules_to_save"], serde_json::json!(["classifier"]));

    let (ok, s) = run(bin()
        .args(["eval", "--glue", "wnli", "--json", "--model"])
        .arg(&out));
    assert!(ok, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["rows"], 71);
    let acc = v["metrics"]["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{v}");

    // A GLUE model refuses another task's labels.
    let (ok, s) = run(bin().args(["eval", "--glue", "sst2", "--model"]).arg(&out));
    assert!(!ok && s.contains("are not SST-2's"), "{s}");

    let csv = write(
        tmp.path(),
        "pairs.csv",
        b"premise,hypothesis\nThe cat sat on the mat.,A cat is sitting.\nIt rained all day.,The sun was out.\n",
    );
    let preds = tmp.path().join("p.csv");
    let (ok, s) = run(bin()
        .args([
            "predict",
            "--text-column",
            "premise",
            "--text-pair-column",
            "hypothesis",
        ])
        .arg("--model")
        .arg(&out)
        .arg("--data")
        .arg(&csv)
        .arg("--out")
        .arg(&preds));
    assert!(ok, "{s}");
    let text = std::fs::read_to_string(&preds).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "row,prediction,confidence,p_not entailment,p_entailment"
    );
    assert_eq!(lines.len(), 3);
    let probs: Vec<f64> = lines[1]
        .split(',')
        .skip(3)
        .map(|x| x.parse().unwrap())
        .collect();
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{text}");
}

#[test]
fn user_text_csv_generates_and_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write(tmp.path(), "reviews.csv", REVIEWS.as_bytes());
    let out = tmp.path().join("m");
    // No --text-column: `review` is the one free-text column, and generate says so.
    let (ok, s) = run(bin()
        .args(["generate", "--target", "sentiment", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{s}");
    assert!(s.contains("labels: bad, good"), "{s}");
    assert!(s.contains("`review` is the free-text column"), "{s}");
    let (ok, s) = run(bin()
        .arg("eval")
        .arg("--model")
        .arg(&out)
        .arg("--data")
        .arg(&data)
        .arg("--json"));
    assert!(ok, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["rows"], 6);
    // Predict from standard output, columns taken from model.json.
    let (ok, s) = run(bin()
        .arg("predict")
        .arg("--model")
        .arg(&out)
        .arg("--data")
        .arg(&data)
        .args(["--out", "-"]));
    assert!(ok, "{s}");
    assert_eq!(s.lines().count(), 7, "{s}");
    assert!(
        s.starts_with("row,prediction,confidence,p_bad,p_good"),
        "{s}"
    );
}

/// `generate --data` reads only the training and validation rows of its seeded split:
/// two CSVs that differ only in the test rows (other texts, flipped labels) give the same
/// adapter and head to the byte, and the same validation accuracy.
#[test]
fn no_test_row_reaches_generate() {
    let words = ["bright", "gloomy", "warm", "cold", "sunny", "grey"];
    let (_, _, test) = datasets::preprocess::split_indices(30, 7).unwrap();
    let csv = |poison: bool| -> String {
        let mut s = String::from("text,label\n");
        for i in 0..30 {
            let good = i % 2 == 0;
            let w = words[(i * 5) % words.len()];
            let row = if poison && test.contains(&i) {
                format!(
                    "zzz poison row {i} {w},{}\n",
                    if good { "bad" } else { "good" }
                )
            } else {
                let tone = if good { "a lovely day" } else { "an awful day" };
                format!(
                    "{tone} and {w} number {i},{}\n",
                    if good { "good" } else { "bad" }
                )
            };
            s += &row;
        }
        s
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for poison in [false, true] {
        let data = write(
            tmp.path(),
            &format!("d{poison}.csv"),
            csv(poison).as_bytes(),
        );
        let out = tmp.path().join(format!("m{poison}"));
        let (ok, s) = run(bin()
            .args([
                "generate",
                "--target",
                "label",
                "--text-column",
                "text",
                "--seed",
                "7",
            ])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .arg("--json"));
        assert!(ok, "{s}");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let weights = std::fs::read(out.join("adapter_model.safetensors")).unwrap();
        seen.push((weights, v["requirement"].clone(), v["val_accuracy"].clone()));
    }
    assert!(seen[0].0 == seen[1].0, "the adapter or head saw a test row");
    assert_eq!(seen[0].1, seen[1].1, "the requirement saw a test row");
    assert_eq!(seen[0].2, seen[1].2);
}

/// ModelGPT-F for text: `--finetune-epochs` trains the generated adapter and head on the
/// user's rows; the loss on those rows falls, and the written adapter is the trained one.
#[test]
fn finetune_epochs_train_the_generated_text_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write(tmp.path(), "reviews.csv", REVIEWS.as_bytes());
    let gen = |out: &std::path::Path, extra: &[&str]| {
        let (ok, s) = run(bin()
            .args(["generate", "--json", "--text-column", "review"])
            .args(["--target", "sentiment", "--text-head", "generated"])
            .args(extra)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(out));
        assert!(ok, "{s}");
        serde_json::from_str::<serde_json::Value>(&s).unwrap()
    };
    let (plain, tuned) = (tmp.path().join("plain"), tmp.path().join("tuned"));
    assert!(gen(&plain, &[])["finetune"].is_null());
    // Six rows: the training split holds 3 (60/10/30), of which --finetune-rows takes 2.
    let v = gen(&tuned, &["--finetune-epochs", "5", "--finetune-rows", "2"]);
    let f = &v["finetune"];
    assert_eq!(
        (f["epochs"].as_u64(), f["rows"].as_u64()),
        (Some(5), Some(2)),
        "{v}"
    );
    let (before, after) = (
        f["loss_before"].as_f64().unwrap(),
        f["loss_after"].as_f64().unwrap(),
    );
    assert!(after < before, "loss {before} -> {after}");
    assert!(v["timings"]["finetune"].as_f64().unwrap() > 0.0, "{v}");
    let a = std::fs::read(plain.join("adapter_model.safetensors")).unwrap();
    let b = std::fs::read(tuned.join("adapter_model.safetensors")).unwrap();
    assert_ne!(a, b, "the finetuned adapter was written");
}

#[test]
fn bad_text_input_names_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    let cases: [(&str, &[u8], &[&str], &str); 5] = [
        (
            "missing.csv",
            REVIEWS.as_bytes(),
            &["--text-column", "text", "--target", "sentiment"],
            "text column `text` not found",
        ),
        (
            "target.csv",
            REVIEWS.as_bytes(),
            &["--text-column", "review", "--target", "label"],
            "target column `label` not found",
        ),
        (
            "empty.csv",
            b"review,sentiment\ngood film,good\n  ,bad\n",
            &["--text-column", "review", "--target", "sentiment"],
            ":3: text column `review` is empty",
        ),
        (
            "one.csv",
            b"review,sentiment\ngood film,good\nnice,good\n",
            &["--text-column", "review", "--target", "sentiment"],
            "single value `good`",
        ),
        (
            "latin1.csv",
            b"review,sentiment\ncaf\xe9 au lait,good\nbad,bad\n",
            &["--text-column", "review", "--target", "sentiment"],
            "latin1.csv",
        ),
    ];
    for (name, body, args, want) in cases {
        let p = write(tmp.path(), name, body);
        let (ok, s) = run(bin()
            .arg("generate")
            .args(args)
            .arg("--data")
            .arg(&p)
            .arg("--out")
            .arg(&out));
        assert!(!ok, "{name}: {s}");
        assert!(s.contains(want), "{name}: want `{want}` in: {s}");
        assert!(!s.contains("panicked"), "{name}: {s}");
        assert!(!out.exists(), "{name}: a model was written");
    }
}

#[test]
fn peft_export_then_import_gives_identical_logits() {
    let dev = Device::Cpu;
    let minilm = datasets::paths::minilm_dir().unwrap_or_else(|e| panic!("{e}"));
    let gen = TextGenerator::load(
        &hyper_infer::checkpoint_dir("nlp").join("best"),
        &minilm,
        &dev,
    )
    .unwrap();
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let g = gen
        .generate("Classify the sentiment of short movie reviews.", &labels)
        .unwrap();
    let tok = TextTokenizer::load(&minilm, 64).unwrap();
    let ex = tok
        .encode(
            &["a gorgeous, witty film", "it never comes alive", "fine"],
            None,
        )
        .unwrap();
    let ours = predict(&gen.base, &g.params, &ex, false, None, 8).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let info = hyper_infer::text_model_dir::TextModelInfo {
        format: hyper_infer::text_model_dir::TEXT_MODEL_FORMAT.into(),
        base_model: hyper_infer::text::BASE_MODEL_ID.into(),
        task: "seq_cls".into(),
        label_names: labels,
        glue_task: None,
        text_column: Some("text".into()),
        text_pair_column: None,
        target: None,
        max_len: 64,
        requirement: "r".into(),
        generator: "g".into(),
        split: None,
        pooling: Default::default(),
    };
    TextModelDir::new(info, &gen.base, g.params.clone())
        .save(tmp.path())
        .unwrap();
    let back = TextModelDir::load(tmp.path(), &dev).unwrap();
    let base = BertModel::load(&minilm, back.adapter.lora_config(), &dev)
        .unwrap()
        .with_fused_inference(true);
    let theirs = predict(&base, &back.params, &ex, false, None, 8).unwrap();
    assert_eq!(ours.probs, theirs.probs);
    assert_eq!(ours.labels, theirs.labels);
    // Truncating the adapter file is caught with its path.
    let w = tmp.path().join("adapter_model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = TextModelDir::load(tmp.path(), &dev)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("adapter_model.safetensors"), "{e}");
}

/// Needs Python with torch, transformers and peft: set `HYPER_PEFT_PYTHON` to its
/// interpreter and run with `--ignored`. Loads a generated MiniLM adapter with
/// `PeftModel.from_pretrained` on the Hugging Face base and compares logits with ours.
#[test]
#[ignore]
fn python_peft_loads_a_generated_minilm_adapter() {
    let python = std::env::var("HYPER_PEFT_PYTHON").unwrap_or_else(|_| "python3".into());
    let dev = Device::Cpu;
    let minilm = datasets::paths::minilm_dir().unwrap_or_else(|e| panic!("{e}"));
    let gen = TextGenerator::load(
        &hyper_infer::checkpoint_dir("nlp").join("best"),
        &minilm,
        &dev,
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sst2");
    let (ok, s) = run(bin()
        .args(["generate", "--glue", "sst2", "--out"])
        .arg(&out));
    assert!(ok, "{s}");
    let m = TextModelDir::load(&out, &dev).unwrap();
    let tok = TextTokenizer::load(&minilm, 128).unwrap();
    let ex = tok
        .encode(
            &[
                "a gorgeous, witty, seductive movie.",
                "the film is strictly routine.",
            ],
            None,
        )
        .unwrap();
    let len = ex.iter().map(|e| e.ids.len()).max().unwrap();
    let rows: Vec<Vec<u32>> = ex
        .iter()
        .map(|e| {
            let mut v = e.ids.clone();
            v.resize(len, 0);
            v
        })
        .collect();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target-models/tests/fixtures/peft_check.py");
    let o = Command::new(&python)
        .arg(&script)
        .arg(&minilm)
        .arg(&out)
        .arg(serde_json::to_string(&rows).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["unexpected"], serde_json::json!([]), "{v}");
    assert_eq!(v["missing"], serde_json::json!([]), "{v}");
    assert_eq!(v["n_lora"], 12);
    let theirs: Vec<Vec<f32>> = serde_json::from_value(v["logits"].clone()).unwrap();
    let batch = hyper_infer::text::pad_batch(&ex.iter().collect::<Vec<_>>(), &dev).unwrap();
    let ours = hyper_infer::text::logits(&gen.base, &m.params, &batch, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let d = ours
        .iter()
        .flatten()
        .zip(theirs.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("peft logits {theirs:?}\nours {ours:?}\nmax |diff| {d}");
    assert!(d <= 1e-4, "logits differ by {d}");
}

/// The text model card's Python snippet, run as written (torch, transformers and peft
/// needed: set `HYPER_PEFT_PYTHON` to that interpreter and run with `--ignored`), gives
/// `predict`'s probabilities to 1e-5, with the base model read from `data/minilm`.
#[test]
#[ignore]
fn the_text_model_card_snippet_matches_predict() {
    let python = std::env::var("HYPER_PEFT_PYTHON").unwrap_or_else(|_| "python3".into());
    let tmp = tempfile::tempdir().unwrap();
    let data = write(tmp.path(), "reviews.csv", REVIEWS.as_bytes());
    let out = tmp.path().join("m");
    let (ok, s) = run(bin()
        .args([
            "generate",
            "--text-column",
            "review",
            "--target",
            "sentiment",
            "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{s}");
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    let code = card
        .split("```python\n")
        .nth(1)
        .and_then(|c| c.split("```").next())
        .unwrap();
    let script = tmp.path().join("load.py");
    std::fs::write(&script, code).unwrap();
    let texts = ["a gorgeous, witty film", "it never comes alive"];
    let o = Command::new(&python)
        .arg(&script)
        .args(texts)
        .env("MODEL", &out)
        .env("BASE", datasets::paths::minilm_dir().unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs = String::from_utf8(o.stdout).unwrap();
    let rows = write(
        tmp.path(),
        "rows.csv",
        format!("review\n\"{}\"\n{}\n", texts[0], texts[1]).as_bytes(),
    );
    let (ok, ours) = run(bin()
        .arg("predict")
        .arg("--model")
        .arg(&out)
        .arg("--data")
        .arg(&rows)
        .args(["--out", "-"]));
    assert!(ok, "{ours}");
    let mut worst = 0f64;
    for (o, t) in ours.lines().skip(1).zip(theirs.lines()) {
        let o: Vec<f64> = o.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
        let t: Vec<f64> = t.split(' ').skip(1).map(|v| v.parse().unwrap()).collect();
        for (a, b) in o.iter().zip(&t) {
            worst = worst.max((a - b).abs());
        }
    }
    assert_eq!(theirs.lines().count(), 2, "{theirs}");
    assert!(worst <= 1e-5, "largest probability difference {worst}");
}

/// The committed data-conditioned generator loads; a copy with one flipped byte or a cut
/// header is refused with an error naming the file, never used.
#[test]
fn a_damaged_text_any_checkpoint_is_refused_by_name() {
    use hyper_infer::text_any::{default_checkpoint, TextAnyGenerator};
    let minilm = datasets::paths::minilm_dir().unwrap();
    let stem = default_checkpoint();
    let g = TextAnyGenerator::load(&stem, &minilm, &Device::Cpu).unwrap();
    assert_eq!(g.sources, ["sst2", "mrpc", "stsb"]);
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("best");
    for ext in ["safetensors", "toml"] {
        std::fs::copy(stem.with_extension(ext), copy.with_extension(ext)).unwrap();
    }
    let mut w = std::fs::read(copy.with_extension("safetensors")).unwrap();
    let n = w.len();
    w[n - 10] ^= 0x40;
    std::fs::write(copy.with_extension("safetensors"), &w).unwrap();
    let e = format!(
        "{:#}",
        TextAnyGenerator::load(&copy, &minilm, &Device::Cpu)
            .err()
            .unwrap()
    );
    assert!(e.contains(&copy.display().to_string()), "{e}");
    std::fs::write(copy.with_extension("toml"), "format_version = 1\nkind = ").unwrap();
    let e = format!(
        "{:#}",
        TextAnyGenerator::load(&copy, &minilm, &Device::Cpu)
            .err()
            .unwrap()
    );
    assert!(
        e.contains("best.toml") || e.contains(&copy.display().to_string()),
        "{e}"
    );
}
