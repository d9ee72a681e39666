//! The ten UCI loaders on the real fetched / shared files: shapes, class counts, a few
//! known cell values. Each dataset is loaded once, in one test.

use datasets::uci::{load_builtin, BUILTIN};
use datasets::{ColumnKind, DataError, Table};

fn load(name: &str) -> Table {
    load_builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Rows × features × classes as in issue 3's acceptance list.
fn check_shape(t: &Table, rows: usize, features: usize, classes: usize) {
    assert_eq!(t.n_rows(), rows, "{} rows", t.name);
    assert_eq!(t.features.len(), rows, "{} feature rows", t.name);
    assert_eq!(t.n_features(), features, "{} features", t.name);
    assert!(
        t.features.iter().all(|r| r.len() == features),
        "{} ragged",
        t.name
    );
    assert_eq!(t.n_classes(), classes, "{} classes", t.name);
    assert!(t.labels.iter().all(|&l| l < classes));
    let counts = t.class_counts();
    assert!(
        counts.iter().all(|&c| c > 0),
        "{}: a class without rows {counts:?}",
        t.name
    );
}

fn class_count(t: &Table, class: &str) -> usize {
    let i = t
        .class_names
        .iter()
        .position(|c| c == class)
        .unwrap_or_else(|| panic!("{}: no class {class} in {:?}", t.name, t.class_names));
    t.class_counts()[i]
}

fn col(t: &Table, name: &str) -> usize {
    t.columns
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| panic!("{}: no column {name}", t.name))
}

fn level(t: &Table, row: usize, column: &str) -> String {
    let j = col(t, column);
    match &t.columns[j].kind {
        ColumnKind::Categorical { levels } => levels[t.features[row][j] as usize].clone(),
        ColumnKind::Numeric => panic!("{column} is numeric"),
    }
}

#[test]
fn iris() {
    let t = load("iris");
    check_shape(&t, 150, 4, 3);
    assert_eq!(t.class_names, ["setosa", "versicolor", "virginica"]);
    assert_eq!(t.class_counts(), [50, 50, 50]);
    assert_eq!(t.features[0], [5.1, 3.5, 1.4, 0.2]);
    assert_eq!(t.class_names[t.labels[0]], "setosa");
    assert_eq!(t.columns[2].name, "petal length (cm)");
    assert_eq!(t.n_missing(), 0);
}

#[test]
fn wine() {
    let t = load("wine");
    check_shape(&t, 178, 13, 3);
    assert_eq!(t.class_counts(), [59, 71, 48]);
    assert_eq!(t.features[0][0], 14.23);
    assert_eq!(t.features[0][12], 1065.0);
    assert_eq!(t.columns[12].name, "proline");
}

#[test]
fn breast_cancer() {
    let t = load("breast_cancer");
    check_shape(&t, 569, 30, 2);
    assert_eq!(t.class_names, ["malignant", "benign"]);
    assert_eq!(class_count(&t, "malignant"), 212);
    assert_eq!(class_count(&t, "benign"), 357);
    assert_eq!(t.features[0][0], 17.99);
    assert_eq!(t.columns[0].name, "mean radius");
    assert_eq!(t.columns[29].name, "worst fractal dimension");
}

#[test]
fn heart_disease() {
    let t = load("heart_disease");
    check_shape(&t, 303, 13, 2);
    assert_eq!(t.target, "diameter narrowing");
    assert_eq!(t.class_names, ["0", "1"]);
    assert_eq!(t.class_counts(), [164, 139]);
    // Six `?` cells: `major vessels colored` ×4, `thal` ×2.
    assert_eq!(t.n_missing(), 6);
    assert_eq!(t.features[0][col(&t, "age")], 63.0);
    assert_eq!(level(&t, 0, "chest pain"), "typical ang");
    assert_eq!(level(&t, 0, "thal"), "fixed defect");
    // File line 91 (3 header lines, so data row 87) has thal = `?`.
    assert!(t.features[87][col(&t, "thal")].is_nan());
    assert!(t.features[86][col(&t, "thal")].is_finite());
}

#[test]
fn adult() {
    let t = load("adult");
    check_shape(&t, 48_842, 14, 2);
    assert_eq!(t.target, "income");
    // The test file's `<=50K.` labels are merged with the train file's `<=50K`.
    assert_eq!(t.class_names, ["<=50K", ">50K"]);
    assert_eq!(t.class_counts(), [37_155, 11_687]);
    // `?` in workclass (2,799), occupation (2,809), native-country (857).
    for (c, n) in [
        ("workclass", 2799),
        ("occupation", 2809),
        ("native-country", 857),
    ] {
        let j = col(&t, c);
        assert_eq!(
            t.features.iter().filter(|r| r[j].is_nan()).count(),
            n,
            "{c}"
        );
    }
    assert_eq!(t.n_missing(), 2799 + 2809 + 857);
    assert_eq!(t.features[0][col(&t, "age")], 39.0);
    assert_eq!(level(&t, 0, "workclass"), "State-gov");
    assert!(matches!(
        t.columns[col(&t, "fnlwgt")].kind,
        ColumnKind::Numeric
    ));
    // First row of adult.test (after its comment line).
    assert_eq!(t.features[32_561][col(&t, "age")], 25.0);
    assert_eq!(level(&t, 32_561, "education"), "11th");
    assert_eq!(t.class_names[t.labels[32_561]], "<=50K");
}

#[test]
fn car_evaluation() {
    let t = load("car_evaluation");
    check_shape(&t, 1_728, 6, 4);
    for (c, n) in [("unacc", 1210), ("acc", 384), ("good", 69), ("vgood", 65)] {
        assert_eq!(class_count(&t, c), n, "{c}");
    }
    assert!(t
        .columns
        .iter()
        .all(|c| matches!(c.kind, ColumnKind::Categorical { .. })));
    assert_eq!(level(&t, 0, "buying"), "vhigh");
    // `doors` levels sorted numerically where possible: 2, 3, 4, 5more.
    match &t.columns[col(&t, "doors")].kind {
        ColumnKind::Categorical { levels } => assert_eq!(levels, &["2", "3", "4", "5more"]),
        k => panic!("{k:?}"),
    }
}

#[test]
fn wine_quality() {
    let t = load("wine_quality");
    check_shape(&t, 6_497, 11, 7);
    assert_eq!(t.target, "quality");
    assert_eq!(t.class_names, ["3", "4", "5", "6", "7", "8", "9"]);
    assert_eq!(t.class_counts(), [30, 216, 2138, 2836, 1079, 193, 5]);
    assert_eq!(t.columns[0].name, "fixed acidity");
    // First red row, then the first white row at 1,599.
    assert_eq!(t.features[0][0], 7.4);
    assert_eq!(t.features[1_599][0], 7.0);
    assert_eq!(t.features[1_599][3], 20.7);
}

#[test]
fn dry_bean() {
    let t = load("dry_bean");
    check_shape(&t, 13_611, 16, 7);
    assert_eq!(
        t.class_names,
        ["BARBUNYA", "BOMBAY", "CALI", "DERMASON", "HOROZ", "SEKER", "SIRA"]
    );
    // Counts from the dataset's documentation (shared SOURCES.md / UCI page).
    assert_eq!(
        t.class_counts(),
        [1_322, 522, 1_630, 3_546, 1_928, 2_027, 2_636]
    );
    // First cells of sheet row 1 (a SEKER bean).
    assert_eq!(t.features[0][0], 28_395.0);
    assert_eq!(t.features[0][1], 610.291);
    assert_eq!(t.class_names[t.labels[0]], "SEKER");
    assert_eq!(t.columns[0].name, "Area");
    assert!(t.columns.iter().all(|c| c.kind == ColumnKind::Numeric));
    assert_eq!(t.n_missing(), 0);
}

#[test]
fn rice() {
    let t = load("rice");
    check_shape(&t, 3_810, 7, 2);
    assert_eq!(t.class_names, ["Cammeo", "Osmancik"]);
    assert_eq!(t.class_counts(), [1_630, 2_180]);
    assert_eq!(t.features[0][0], 15_231.0);
    assert_eq!(t.features[0][1], 525.578_979_492_187_5);
}

#[test]
fn bank_marketing() {
    let t = load("bank_marketing");
    check_shape(&t, 4_521, 16, 2);
    assert_eq!(t.target, "y");
    assert_eq!(t.class_names, ["no", "yes"]);
    assert_eq!(t.class_counts(), [4_000, 521]);
    assert_eq!(t.features[0][col(&t, "age")], 30.0);
    assert_eq!(level(&t, 0, "job"), "unemployed");
    assert!(matches!(
        t.columns[col(&t, "balance")].kind,
        ColumnKind::Numeric
    ));
}

#[test]
fn unknown_builtin_lists_the_known_ones() {
    let e = load_builtin("mnist").unwrap_err();
    assert!(matches!(e, DataError::UnknownDataset { .. }));
    let msg = e.to_string();
    for name in BUILTIN {
        assert!(msg.contains(name), "{msg}");
    }
}

/// `cargo xtask fuzz` found that one flipped bit in Dry Bean's sheet makes calamine panic
/// (integer overflow in a cell reference) where overflow checks are on; with them off (our
/// dev profile, as in release builds) the same bytes give calamine's own parse error. Either
/// way the loader returns an error naming the file, never a panic.
#[test]
fn a_workbook_that_made_the_xlsx_reader_panic_is_an_error() {
    let real = datasets::paths::shared_data_dir().join("uci/dry_bean/Dry_Bean_Dataset.xlsx");
    let mut b = std::fs::read(&real).unwrap_or_else(|e| panic!("{}: {e}", real.display()));
    b[2_297_592] ^= 1 << 2;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bean.xlsx");
    std::fs::write(&p, &b).unwrap();
    let e = datasets::uci::load_dry_bean_xlsx(&p)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bean.xlsx")
            && (e.contains("workbook is corrupt") || e.contains("cannot read the first sheet")),
        "{e}"
    );
}
