//! The user CSV loader on small fixture files: typing, missing values, names, and every
//! bad input giving a clear error that says what and where.

use std::path::PathBuf;

use datasets::user_csv::{load_csv, CsvOptions};
use datasets::{ColumnKind, DataError, Table};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tabular")
        .join(name)
}

fn load(name: &str) -> datasets::Result<Table> {
    load_csv(&fixture(name), &CsvOptions::default())
}

fn err(name: &str, opts: &CsvOptions) -> (DataError, String) {
    let e = load_csv(&fixture(name), opts).expect_err(name);
    let msg = e.to_string();
    assert!(msg.contains(name), "error should name the file: {msg}");
    (e, msg)
}

fn levels(t: &Table, j: usize) -> Vec<String> {
    match &t.columns[j].kind {
        ColumnKind::Categorical { levels } => levels.clone(),
        k => panic!("column {j} is {k:?}"),
    }
}

#[test]
fn people_csv_types_missing_and_names() {
    let t = load("people.csv").unwrap();
    assert_eq!(t.name, "people");
    assert_eq!(t.n_rows(), 8);
    assert_eq!(t.column_names(), ["age", "city", "income", "smoker"]);
    assert_eq!(t.target, "outcome");
    assert_eq!(t.class_names, ["healthy", "sick"]);
    assert_eq!(t.labels, [0, 1, 0, 0, 1, 1, 0, 0]);
    assert_eq!(t.columns[0].kind, ColumnKind::Numeric);
    assert_eq!(t.columns[2].kind, ColumnKind::Numeric);
    // Case is kept: `Paris` and `paris` are two levels; sorted like LabelEncoder.
    assert_eq!(levels(&t, 1), ["Berlin", "Paris", "Rome", "paris"]);
    assert_eq!(levels(&t, 3), ["no", "yes"]);
    assert_eq!(t.features[0], [34.0, 1.0, 52000.5, 0.0]);
    // `?`, `NA`, empty, `NaN`, `null` are all missing.
    assert!(t.features[1][2].is_nan());
    assert!(t.features[3][0].is_nan());
    assert!(t.features[3][3].is_nan());
    assert!(t.features[5][1].is_nan());
    assert!(t.features[6][2].is_nan());
    assert!(t.features[7][3].is_nan());
    assert_eq!(t.n_missing(), 6);
}

#[test]
fn delimiter_is_detected_and_can_be_forced() {
    let base = load("people.csv").unwrap();
    for name in ["people_semicolon.csv", "people.tsv"] {
        let t = load(name).unwrap();
        assert_eq!(t.column_names(), base.column_names(), "{name}");
        assert_eq!(t.labels, base.labels, "{name}");
        assert_eq!(t.n_missing(), base.n_missing(), "{name}");
    }
    let forced = CsvOptions {
        delimiter: Some(b';'),
        ..Default::default()
    };
    assert_eq!(
        load_csv(&fixture("people_semicolon.csv"), &forced)
            .unwrap()
            .n_features(),
        4
    );
}

#[test]
fn target_by_name() {
    let opts = CsvOptions {
        target: Some("smoker".into()),
        ..Default::default()
    };
    let (e, _) = err("people.csv", &opts);
    // `smoker` has missing cells, and a target must have a label in every row: line 5 is
    // the first (header = line 1).
    assert!(matches!(e, DataError::Parse { line: 5, .. }), "{e}");

    let opts = CsvOptions {
        target: Some("city".into()),
        categorical: vec![],
        ..Default::default()
    };
    let (e, msg) = err("people.csv", &opts);
    assert!(matches!(e, DataError::Parse { line: 7, .. }), "{msg}");

    let t = load_csv(
        &fixture("mixed.csv"),
        &CsvOptions {
            target: Some("label".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(t.class_names, ["a", "b"]);
}

#[test]
fn unknown_target_lists_the_columns() {
    let opts = CsvOptions {
        target: Some("diagnosis".into()),
        ..Default::default()
    };
    let (e, msg) = err("people.csv", &opts);
    assert!(matches!(e, DataError::UnknownColumn { .. }));
    assert!(msg.contains("`diagnosis`"), "{msg}");
    for c in ["age", "city", "income", "smoker", "outcome"] {
        assert!(msg.contains(c), "{msg}");
    }
}

#[test]
fn empty_file() {
    let (e, msg) = err("empty.csv", &CsvOptions::default());
    assert!(matches!(e, DataError::Invalid { .. }));
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn header_only() {
    let (_, msg) = err("header_only.csv", &CsvOptions::default());
    assert!(msg.contains("no data rows"), "{msg}");
}

#[test]
fn ragged_row_names_the_line() {
    let (e, msg) = err("ragged.csv", &CsvOptions::default());
    assert!(matches!(e, DataError::Parse { line: 4, .. }), "{msg}");
    assert!(msg.contains("ragged.csv:4:"), "{msg}");
    assert!(
        msg.contains("expected 3 fields") && msg.contains("got 2"),
        "{msg}"
    );
}

#[test]
fn label_only() {
    let (_, msg) = err("label_only.csv", &CsvOptions::default());
    assert!(
        msg.contains("label-only") && msg.contains("no feature columns"),
        "{msg}"
    );
}

#[test]
fn one_class() {
    let (_, msg) = err("one_class.csv", &CsvOptions::default());
    assert!(msg.contains("single class") && msg.contains("yes"), "{msg}");
}

#[test]
fn missing_target_value_names_the_line() {
    let (e, msg) = err("missing_target.csv", &CsvOptions::default());
    assert!(matches!(e, DataError::Parse { line: 4, .. }), "{msg}");
    assert!(msg.contains("target `label` is missing"), "{msg}");
}

#[test]
fn stray_text_in_a_numeric_column_is_an_error_with_its_line() {
    let (e, msg) = err("typo.csv", &CsvOptions::default());
    assert!(matches!(e, DataError::Parse { line: 8, .. }), "{msg}");
    assert!(msg.contains("`7.O`") && msg.contains("column `x`"), "{msg}");
    // Declared categorical, the same column loads, with the typo as its own level.
    let opts = CsvOptions {
        categorical: vec!["x".into()],
        ..Default::default()
    };
    let t = load_csv(&fixture("typo.csv"), &opts).unwrap();
    let lv = levels(&t, 0);
    assert_eq!(lv.len(), 19);
    // Not all numbers, so sorted as text: 1, 10, 11, ..., 19, 2, 3, ..., 6, 7.O, 8, 9.
    assert_eq!(lv[..3], ["1", "10", "11"]);
    assert_eq!(lv[16], "7.O");
    assert_eq!(t.columns[1].kind, ColumnKind::Numeric);
    // Declaring an unknown column is reported too.
    let opts = CsvOptions {
        categorical: vec!["z".into()],
        ..Default::default()
    };
    let (_, msg) = err("typo.csv", &opts);
    assert!(msg.contains("`z`") && msg.contains("x, y, label"), "{msg}");
}

#[test]
fn half_text_column_is_categorical() {
    // `size` is half numbers, half `small`: a genuine categorical column, not a typo.
    let t = load("mixed.csv").unwrap();
    assert_eq!(levels(&t, 0), ["1", "2", "3", "4", "5", "6", "small"]);
    assert_eq!(t.features[0][0], 6.0);
    assert_eq!(t.features[1][0], 0.0);
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let e = load("does_not_exist.csv").unwrap_err();
    assert!(matches!(e, DataError::Io { .. }));
    assert!(e.to_string().contains("does_not_exist.csv"));
}
