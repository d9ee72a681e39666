//! `hyper-infer describe` end to end: the real binary on built-in and user data.

use std::process::Command;

use test_support::openai::{chat, serve};

fn describe(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
        .arg("describe")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn iris_profile() {
    let (ok, out, err) = describe(&["--dataset", "iris"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("User Requirement: This is a task of 3-class, 4-feature and small-scaled tabular classification over 4 numeric features"),
        "{out}"
    );
    assert_eq!(
        lines[1],
        r#"Metadata: {"task":"tabular_cls","in_dim":4,"out_dim":3,"scale":"small","arch":"mlp_small"}"#
    );
}

#[test]
fn json_output_with_variants_for_a_user_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("loans.csv");
    std::fs::write(
        &csv,
        "income,region,approved,age\n52000,north,yes,31\n31000,south,no,45\n78000,north,yes,52\n\
         12000,east,no,23\n45000,south,yes,38\n",
    )
    .unwrap();
    let (ok, out, err) = describe(&[
        "--data",
        csv.to_str().unwrap(),
        "--target",
        "approved",
        "--description",
        "Loan applications.",
        "--variants",
        "3",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["metadata"],
        serde_json::json!({"task": "tabular_cls", "in_dim": 3, "out_dim": 2, "scale": "small", "arch": "mlp_small"})
    );
    let r = v["requirement"].as_str().unwrap();
    assert!(
        r.contains("2-class, 3-feature") && r.contains("2 numeric and 1 categorical"),
        "{r}"
    );
    assert!(
        r.contains("income 12000–78000") && r.contains("region (3 levels)"),
        "{r}"
    );
    assert_eq!(v["variants"].as_array().unwrap().len(), 3);
    assert_eq!(v["variants"][0], v["requirement"]);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let (ok, _, err) = describe(&["--data", empty.to_str().unwrap()]);
    assert!(
        !ok && err.contains("empty.csv") && err.contains("empty"),
        "{err}"
    );

    let missing = dir.path().join("nope.csv");
    let (ok, _, err) = describe(&["--data", missing.to_str().unwrap()]);
    assert!(!ok && err.contains("nope.csv"), "{err}");

    let (ok, _, err) = describe(&["--dataset", "iris", "--description", "   "]);
    assert!(!ok && err.contains("only whitespace"), "{err}");

    let (ok, _, err) = describe(&["--dataset", "mnist"]);
    assert!(!ok && err.contains("iris"), "{err}");

    let (ok, _, err) = describe(&[]);
    assert!(!ok && err.contains("--data"), "{err}");

    let data = test_support::fixtures::tiny_iris_csv();
    let (ok, _, err) = describe(&["--data", data.to_str().unwrap(), "--target", "colour"]);
    assert!(!ok && err.contains("colour"), "{err}");
}

#[test]
fn openai_without_key_fails_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
        .args([
            "describe",
            "--dataset",
            "iris",
            "--backend",
            "openai",
            "--no-cache",
        ])
        .env_remove("HYPER_OPENAI_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env("HYPER_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no API key") && err.contains("HYPER_OPENAI_API_KEY"),
        "{err}"
    );
}

#[test]
fn openai_backend_end_to_end_then_cached() {
    let server = serve(vec![
        chat("This is a task of 3-class, 4-feature and small-scaled tabular classification over petal and sepal sizes."),
        chat("```json\n{\"task\": \"tabular_cls\", \"in_dim\": 4, \"out_dim\": 3, \"scale\": \"small\", \"arch\": \"mlp_small\"}\n```"),
    ]);
    let url = server.base_url.clone();
    let cache = tempfile::tempdir().unwrap();
    let run = |url: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
            .args([
                "describe",
                "--dataset",
                "iris",
                "--backend",
                "openai",
                "--cache-dir",
            ])
            .arg(cache.path())
            .env("HYPER_OPENAI_BASE_URL", url)
            .env("HYPER_OPENAI_API_KEY", "sk-test")
            .env("HYPER_OPENAI_MODEL", "fake")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run(&url);
    assert!(
        first.contains("User Requirement: This is a task of 3-class, 4-feature and small-scaled"),
        "{first}"
    );
    assert!(first.contains(r#"Metadata: {"task":"tabular_cls","in_dim":4,"out_dim":3,"scale":"small","arch":"mlp_small"}"#), "{first}");
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);
    assert_eq!(server.seen().len(), 2);
    // The server has answered its two replies and is gone: only the cache can answer now.
    assert_eq!(run(&url), first);
}
