//! Every file under `tests/fixtures/bad/` through the real binary: a clear error naming
//! what is wrong (the fragment in `expected.tsv`), exit code 1, never a panic (101) or a
//! silently misread table.

use std::path::Path;
use std::process::Command;

#[test]
fn every_bad_file_is_a_clear_error_with_exit_code_1() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let table = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut listed = Vec::new();
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (file, fragment) = line.split_once('\t').expect("file<TAB>fragment");
        listed.push(file.to_string());
        let o = Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
            .args(["describe", "--data"])
            .arg(dir.join(file))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{file}: {err}");
        assert!(
            err.contains(fragment),
            "{file}: want `{fragment}` in: {err}"
        );
        // The file is named, once (no "loading data X: X: ..." repetition).
        assert_eq!(err.matches(file).count(), 1, "{file}: named once in: {err}");
        assert!(
            err.len() < 600,
            "{file}: error too long ({} bytes): {err}",
            err.len()
        );
    }
    // Every fixture has its expectation.
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.tsv")
        .collect();
    files.sort();
    listed.sort();
    assert_eq!(files, listed);
}

/// Files that used to be misread are now read as their authors meant.
#[test]
fn decimal_commas_and_pipes_are_read_as_numbers_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("dc.csv", "a;b;y\n1,5;2,0;x\n3,1;4,2;z\n5,5;6,1;x\n"),
        ("pipe.csv", "a|b|y\n1.5|2|x\n3.1|4|z\n5.5|6|x\n"),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
            .args(["describe", "--json", "--data"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let r = v["requirement"].as_str().unwrap();
        assert!(
            r.contains("2 numeric features") && r.contains("a 1.5–5.5"),
            "{name}: {r}"
        );
    }
}

#[test]
fn a_missing_file_says_so_once_and_target_needs_data() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["describe", "--data", "/nonexistent/x.csv"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let (code, err) = run(&["describe", "--dataset", "iris", "--target", "x"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--target names a column of --data"), "{err}");
}

/// What detection cannot know, the user can say: `--no-header`, `--drop-column`,
/// `--categorical`, `--delimiter` turn refused files into tables (and the errors name them).
#[test]
fn csv_flags_read_what_detection_refuses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let describe = |args: &[&str], file: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
            .args(["describe", "--json"])
            .args(args)
            .arg("--data")
            .arg(file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.code(), o.stdout, err)
    };
    let requirement = |out: &[u8]| {
        let v: serde_json::Value = serde_json::from_slice(out).unwrap();
        v["requirement"].as_str().unwrap().to_string()
    };

    let (code, _, err) = describe(&[], &dir.join("headerless.csv"));
    assert!(code == Some(1) && err.contains("--no-header"), "{err}");
    let (code, out, err) = describe(&["--no-header"], &dir.join("headerless.csv"));
    assert_eq!(code, Some(0), "{err}");
    let r = requirement(&out);
    assert!(
        r.contains("4 numeric features") && r.contains("col1"),
        "{r}"
    );

    let (code, _, err) = describe(&[], &dir.join("id_column.csv"));
    assert!(code == Some(1) && err.contains("--drop-column id"), "{err}");
    let (code, out, err) = describe(&["--drop-column", "id"], &dir.join("id_column.csv"));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        requirement(&out).contains("1 numeric feature"),
        "{}",
        requirement(&out)
    );
    let (code, _, err) = describe(&["--drop-column", "nope"], &dir.join("id_column.csv"));
    assert!(
        code == Some(1) && err.contains("`nope` is not a column") && err.contains("id, a, y"),
        "{err}"
    );

    let (code, _, err) = describe(&[], &dir.join("stray_text.csv"));
    assert!(code == Some(1) && err.contains("--categorical b"), "{err}");
    let (code, _, err) = describe(&["--categorical", "b"], &dir.join("stray_text.csv"));
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = describe(&["--categorical", "zz"], &dir.join("stray_text.csv"));
    assert!(
        code == Some(1) && err.contains("--categorical `zz` is not a column"),
        "{err}"
    );

    // A `;` file read with a forced `,` is one column per row: the error points at --delimiter.
    let tmp = tempfile::tempdir().unwrap();
    let semi = tmp.path().join("semi.csv");
    std::fs::write(&semi, "a;b;y\n1;2;x\n3;4;z\n5;6;x\n").unwrap();
    let (code, out, err) = describe(&["--delimiter", ";"], &semi);
    assert_eq!(code, Some(0), "{err}");
    assert!(requirement(&out).contains("2 numeric features"));
    let (code, _, err) = describe(&["--delimiter", "tab"], &semi);
    assert_eq!(code, Some(1), "{err}");
    let (code, _, err) = describe(&["--delimiter", "x"], &semi);
    assert!(code == Some(2) && err.contains("use one of"), "{err}");
}
