//! The ten UCI tabular sets of the paper, each read from its real file with its own
//! conventions (header layout, separators, missing-value marks, label quirks).
//!
//! Registry files live under [`paths::data_dir`] (`cargo xtask fetch` puts them there);
//! the four sets no registry ships (and Wine Quality white) are read in place from
//! [`paths::shared_data_dir`].

use std::io::Read;
use std::path::{Path, PathBuf};

use calamine::Reader;

use crate::tabular::{EncodeOptions, KindHint, RawRow, RawTable};
use crate::user_csv::{detect_delimiter, read_records};
use crate::{paths, DataError, Result, Table};

/// Names accepted by [`load_builtin`].
pub const BUILTIN: &[&str] = &[
    "iris",
    "wine",
    "breast_cancer",
    "heart_disease",
    "adult",
    "car_evaluation",
    "wine_quality",
    "dry_bean",
    "rice",
    "bank_marketing",
];

/// Real tables the data-conditioned generator may meta-train on besides the ten (Orange3
/// ships them). They are never evaluation sets, so any other public table stays unseen.
pub const META_TRAIN_ONLY: &[&str] = &["titanic", "zoo", "brown_selected"];

/// Loads one of [`META_TRAIN_ONLY`] (Orange `.tab`, target = Orange's class column).
pub fn load_meta_train_only(name: &str) -> Result<Table> {
    let file = match name {
        "titanic" => "orange/titanic.tab",
        "zoo" => "orange/zoo.tab",
        "brown_selected" => "orange/brown-selected.tab",
        _ => {
            return Err(DataError::UnknownDataset {
                name: name.to_string(),
                known: META_TRAIN_ONLY.join(", "),
            })
        }
    };
    let path = locate(name, Root::Data, file)?;
    load_orange_tab(name, &path)
}

/// Loads one of [`BUILTIN`] from its real file.
pub fn load_builtin(name: &str) -> Result<Table> {
    match name {
        "iris" => iris(),
        "wine" => wine(),
        "breast_cancer" => breast_cancer(),
        "heart_disease" => heart_disease(),
        "adult" => adult(),
        "car_evaluation" => car_evaluation(),
        "wine_quality" => wine_quality(),
        "dry_bean" => dry_bean(),
        "rice" => rice(),
        "bank_marketing" => bank_marketing(),
        _ => Err(DataError::UnknownDataset {
            name: name.to_string(),
            known: BUILTIN.join(", "),
        }),
    }
}

/// Where a file comes from, for the "not available" message.
#[derive(Clone, Copy)]
enum Root {
    /// Fetched by `cargo xtask fetch` into `$HYPER_DATA`.
    Data,
    /// Read in place from `$HYPER_SHARED_DATA`.
    Shared,
}

fn locate(name: &str, root: Root, rel: &str) -> Result<PathBuf> {
    let path = match root {
        Root::Data => paths::data_dir(),
        Root::Shared => paths::shared_data_dir(),
    }
    .join(rel);
    if path.is_file() {
        return Ok(path);
    }
    let reason = match root {
        Root::Data => format!(
            "expected {} (registry data under $HYPER_DATA, default <workspace>/data); \
             run `cargo xtask fetch` to get it",
            path.display()
        ),
        Root::Shared => format!(
            "expected {} (non-registry data read in place from $HYPER_SHARED_DATA, default \
             <workspace>/../shared/data; see its SOURCES.md)",
            path.display()
        ),
    };
    Err(DataError::Unavailable {
        name: name.to_string(),
        reason,
    })
}

/// The file's bytes, gunzipped when the name ends in `.gz`.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    crate::assets::verify_bytes(path, &raw)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Appends the records of a delimited text file to `raw` as its next file; returns the
/// header when `has_header`. Lines starting with `comment` are skipped.
fn read_delimited(
    raw: &mut RawTable,
    path: &Path,
    delimiter: u8,
    has_header: bool,
    comment: Option<u8>,
) -> Result<Option<Vec<String>>> {
    let bytes = read_bytes(path)?;
    let header = read_records(raw, path, &bytes, delimiter, comment, has_header)?;
    if has_header && header.is_none() {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: "file is empty".into(),
        });
    }
    Ok(header.map(|(cells, _)| cells))
}

fn raw_named(name: &str) -> RawTable {
    RawTable {
        name: name.to_string(),
        ..Default::default()
    }
}

fn all(hint: KindHint, n: usize) -> Vec<KindHint> {
    vec![hint; n]
}

// ---------------------------------------------------------------- sklearn CSVs

const IRIS_FEATURES: &[&str] = &[
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
];

const WINE_FEATURES: &[&str] = &[
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280/od315_of_diluted_wines",
    "proline",
];

fn breast_cancer_features() -> Vec<String> {
    const BASE: &[&str] = &[
        "radius",
        "texture",
        "perimeter",
        "area",
        "smoothness",
        "compactness",
        "concavity",
        "concave points",
        "symmetry",
        "fractal dimension",
    ];
    let mean = BASE.iter().map(|b| format!("mean {b}"));
    let error = BASE.iter().map(|b| format!("{b} error"));
    let worst = BASE.iter().map(|b| format!("worst {b}"));
    mean.chain(error).chain(worst).collect()
}

fn iris() -> Result<Table> {
    let path = locate("iris", Root::Data, "sklearn/iris.csv")?;
    let names: Vec<String> = IRIS_FEATURES.iter().map(|s| s.to_string()).collect();
    load_sklearn_csv("iris", &path, &names)
}

fn wine() -> Result<Table> {
    let path = locate("wine", Root::Data, "sklearn/wine_data.csv")?;
    let names: Vec<String> = WINE_FEATURES.iter().map(|s| s.to_string()).collect();
    load_sklearn_csv("wine", &path, &names)
}

fn breast_cancer() -> Result<Table> {
    let path = locate("breast_cancer", Root::Data, "sklearn/breast_cancer.csv")?;
    load_sklearn_csv("breast_cancer", &path, &breast_cancer_features())
}

/// sklearn's bundled CSV layout: first line `n_rows,n_features,class names...`, then rows
/// of `n_features` numbers and an integer class index. Feature names are sklearn's.
pub fn load_sklearn_csv(name: &str, path: &Path, feature_names: &[String]) -> Result<Table> {
    let mut raw = raw_named(name);
    let header = read_delimited(&mut raw, path, b',', true, None)?.unwrap_or_default();
    let parse_err = |line: usize, msg: String| DataError::Parse {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let count = |i: usize, what: &str| -> Result<usize> {
        header.get(i).and_then(|c| c.parse().ok()).ok_or_else(|| {
            parse_err(
                1,
                format!("header: expected the {what} count in field {}", i + 1),
            )
        })
    };
    let n_rows = count(0, "row")?;
    let n_features = count(1, "feature")?;
    let class_names: Vec<String> = header[2..].to_vec();
    if n_features != feature_names.len() {
        return Err(parse_err(
            1,
            format!(
                "header says {n_features} features, expected {}",
                feature_names.len()
            ),
        ));
    }
    if raw.rows.len() != n_rows {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: format!("header says {n_rows} rows, file has {}", raw.rows.len()),
        });
    }
    // Replace class indices by names so the shared encoder keeps the header's class order.
    for row in &mut raw.rows {
        if let Some(last) = row.cells.last_mut() {
            let idx: Option<usize> = last.parse().ok();
            match idx.and_then(|i| class_names.get(i)) {
                Some(c) => *last = c.clone(),
                None => {
                    return Err(parse_err(
                        row.line,
                        format!(
                            "class index `{last}` is not in 0..{} (header classes: {})",
                            class_names.len(),
                            class_names.join(", ")
                        ),
                    ))
                }
            }
        }
    }
    raw.header = feature_names.to_vec();
    raw.header.push("target".into());
    raw.encode(&EncodeOptions {
        target: n_features,
        hints: all(KindHint::Numeric, n_features),
        strict_mixed: false,
        class_names: Some(class_names),
    })
}

// ---------------------------------------------------------------- Orange .tab

fn heart_disease() -> Result<Table> {
    let path = locate("heart_disease", Root::Data, "orange/heart_disease.tab")?;
    load_orange_tab("heart_disease", &path)
}

/// Orange's `.tab`: tab-separated; line 1 names, line 2 types (`c`/`continuous`, `d`/
/// `discrete`, or a space-separated value list = discrete), line 3 flags (`class` marks
/// the target, `meta`/`i`/`ignore` columns are dropped); `?` or empty = missing.
/// The target is Orange's own (Heart Disease: binary `diameter narrowing`).
pub fn load_orange_tab(name: &str, path: &Path) -> Result<Table> {
    let bytes = read_bytes(path)?;
    let text = String::from_utf8(bytes).map_err(|e| DataError::Invalid {
        path: path.to_path_buf(),
        msg: format!("not UTF-8: {e}"),
    })?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let mut next = |what: &str| {
        lines.next().ok_or_else(|| DataError::Invalid {
            path: path.to_path_buf(),
            msg: format!("missing the {what} header line"),
        })
    };
    let (_, names) = next("names")?;
    let (_, types) = next("types")?;
    let (_, flags) = next("flags")?;
    let names: Vec<&str> = names.split('\t').map(str::trim).collect();
    let types: Vec<&str> = types.split('\t').collect();
    let flags: Vec<&str> = flags.split('\t').collect();
    let mut target = None;
    let mut keep = Vec::new();
    let mut hints = Vec::new();
    for (j, _) in names.iter().enumerate() {
        let flag = flags.get(j).map_or("", |f| f.trim());
        if flag
            .split_whitespace()
            .any(|f| f == "meta" || f == "i" || f == "ignore" || f == "m")
        {
            continue;
        }
        if flag.split_whitespace().any(|f| f == "class" || f == "c") {
            target = Some(keep.len());
        }
        let ty = types.get(j).map_or("", |t| t.trim());
        hints.push(match ty {
            "c" | "continuous" => KindHint::Numeric,
            "" => KindHint::Auto,
            _ => KindHint::Categorical,
        });
        keep.push(j);
    }
    let target = target.ok_or_else(|| DataError::Parse {
        path: path.to_path_buf(),
        line: 3,
        msg: "no column is flagged `class` (the target)".into(),
    })?;
    let mut raw = raw_named(name);
    raw.paths.push(path.to_path_buf());
    raw.header = keep.iter().map(|&j| names[j].to_string()).collect();
    for (line, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = l.split('\t').collect();
        if cells.len() != names.len() {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line,
                msg: format!(
                    "ragged row: expected {} fields (as the header), got {}",
                    names.len(),
                    cells.len()
                ),
            });
        }
        raw.rows.push(RawRow {
            file: 0,
            line,
            cells: keep.iter().map(|&j| cells[j].trim().to_string()).collect(),
        });
    }
    raw.encode(&EncodeOptions {
        target,
        hints,
        strict_mixed: false,
        class_names: None,
    })
}

// ---------------------------------------------------------------- Adult

const ADULT_COLUMNS: &[&str] = &[
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
];

/// `adult.data` + `adult.test` concatenated (48,842 rows). Fields are `, `-separated (spaces
/// stripped), `?` marks missing, the test file starts with a `|1x3 Cross validator` line
/// and its labels end in `.` (`<=50K.`), which is stripped so both files share two classes.
fn adult() -> Result<Table> {
    let train = locate("adult", Root::Data, "adult/adult.data")?;
    let test = locate("adult", Root::Data, "adult/adult.test")?;
    let mut raw = raw_named("adult");
    read_delimited(&mut raw, &train, b',', false, Some(b'|'))?;
    let n_train = raw.rows.len();
    read_delimited(&mut raw, &test, b',', false, Some(b'|'))?;
    let target = ADULT_COLUMNS.len() - 1;
    for row in &mut raw.rows[n_train..] {
        if let Some(label) = row.cells.get_mut(target) {
            if let Some(stripped) = label.strip_suffix('.') {
                *label = stripped.to_string();
            }
        }
    }
    raw.header = ADULT_COLUMNS.iter().map(|s| s.to_string()).collect();
    raw.encode(&EncodeOptions {
        target,
        hints: Vec::new(),
        strict_mixed: false,
        class_names: None,
    })
}

// ---------------------------------------------------------------- Car Evaluation

const CAR_COLUMNS: &[&str] = &[
    "buying", "maint", "doors", "persons", "lug_boot", "safety", "class",
];

/// `car.data`: no header, six categorical attributes (`doors` has `5more`, `persons` has
/// `more`, so all six are label-encoded), four classes.
fn car_evaluation() -> Result<Table> {
    let path = locate(
        "car_evaluation",
        Root::Shared,
        "uci/car_evaluation/car.data",
    )?;
    let mut raw = raw_named("car_evaluation");
    read_delimited(&mut raw, &path, b',', false, None)?;
    raw.header = CAR_COLUMNS.iter().map(|s| s.to_string()).collect();
    raw.encode(&EncodeOptions {
        target: CAR_COLUMNS.len() - 1,
        hints: all(KindHint::Categorical, CAR_COLUMNS.len()),
        strict_mixed: false,
        class_names: None,
    })
}

// ---------------------------------------------------------------- Wine Quality

/// Red (fetched, gzipped, `,`-separated) followed by white (shared, `;`-separated): 6,497
/// rows, 11 physico-chemical features, target `quality` (the 7 scores present, 3..9).
fn wine_quality() -> Result<Table> {
    let red = locate(
        "wine_quality",
        Root::Data,
        "wine_quality/winequality-red.csv.gz",
    )?;
    let white = locate(
        "wine_quality",
        Root::Shared,
        "uci/wine_quality/winequality-white.csv",
    )?;
    let mut raw = raw_named("wine_quality");
    let mut headers = Vec::new();
    for path in [&red, &white] {
        let delimiter = detect_delimiter(&read_bytes(path)?);
        headers.push(read_delimited(&mut raw, path, delimiter, true, None)?.unwrap_or_default());
    }
    if headers[0] != headers[1] {
        return Err(DataError::Invalid {
            path: white.clone(),
            msg: format!(
                "header differs from the red wine file's: [{}] vs [{}]",
                headers[1].join(", "),
                headers[0].join(", ")
            ),
        });
    }
    raw.header = headers.swap_remove(0);
    let target = position(&raw.header, "quality", &red)?;
    let n = raw.header.len();
    raw.encode(&EncodeOptions {
        target,
        hints: all(KindHint::Numeric, n),
        strict_mixed: false,
        class_names: None,
    })
}

fn position(header: &[String], name: &str, path: &Path) -> Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| DataError::UnknownColumn {
            path: path.to_path_buf(),
            target: name.to_string(),
            available: header.join(", "),
        })
}

// ---------------------------------------------------------------- Dry Bean

/// Dry Bean's column names as in the official release (`AspectRation` sic).
const DRY_BEAN_COLUMNS: &[&str] = &[
    "Area",
    "Perimeter",
    "MajorAxisLength",
    "MinorAxisLength",
    "AspectRation",
    "Eccentricity",
    "ConvexArea",
    "EquivDiameter",
    "Extent",
    "Solidity",
    "roundness",
    "Compactness",
    "ShapeFactor1",
    "ShapeFactor2",
    "ShapeFactor3",
    "ShapeFactor4",
    "Class",
];

/// `Dry_Bean_Dataset.xlsx`, first sheet: 16 numeric shape features and `Class`. The
/// official file has a header row; the copy in the shared data starts directly with data,
/// so a first row whose first cell is a number is data and the official names are used.
fn dry_bean() -> Result<Table> {
    let path = locate(
        "dry_bean",
        Root::Shared,
        "uci/dry_bean/Dry_Bean_Dataset.xlsx",
    )?;
    load_dry_bean_xlsx(&path)
}

/// Runs a third-party reader with its panics turned into an error naming `path`: calamine
/// 0.38 panics (integer overflow in a cell reference) on some corrupt workbooks when built
/// with overflow checks, found by `cargo xtask fuzz`. The default hook's message is
/// silenced meanwhile; the error says it.
fn without_panics<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    r.unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: format!("the workbook is corrupt: the xlsx reader failed ({why})"),
        })
    })
}

/// The Dry Bean workbook at `path`; a headerless first sheet gets the official column names.
pub fn load_dry_bean_xlsx(path: &Path) -> Result<Table> {
    let path = path.to_path_buf();
    let invalid = |msg: String| DataError::Invalid {
        path: path.clone(),
        msg,
    };
    crate::assets::verify_file(&path)?;
    let range = without_panics(&path, || {
        let mut book = calamine::open_workbook_auto(&path)
            .map_err(|e| invalid(format!("cannot open workbook: {e}")))?;
        book.worksheet_range_at(0)
            .ok_or_else(|| invalid("workbook has no sheets".into()))?
            .map_err(|e| invalid(format!("cannot read the first sheet: {e}")))
    })?;
    let mut raw = raw_named("dry_bean");
    raw.paths.push(path.clone());
    // Spreadsheet rows are reported as "lines" (1-based row numbers as Excel shows them).
    let first_row = range.start().map_or(0, |(r, _)| r as usize);
    for (i, row) in range.rows().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .map(|c| c.to_string().trim().to_string())
            .collect();
        if cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        let line = first_row + i + 1;
        if raw.header.is_empty() && raw.rows.is_empty() {
            if cells[0].parse::<f64>().is_err() {
                raw.header = cells;
                continue;
            }
            raw.header = DRY_BEAN_COLUMNS.iter().map(|s| s.to_string()).collect();
        }
        raw.rows.push(RawRow {
            file: 0,
            line,
            cells,
        });
    }
    let target = position(&raw.header, "Class", &path)?;
    let n = raw.header.len();
    let mut hints = all(KindHint::Numeric, n);
    hints[target] = KindHint::Categorical;
    raw.encode(&EncodeOptions {
        target,
        hints,
        strict_mixed: false,
        class_names: None,
    })
}

// ---------------------------------------------------------------- Rice (ARFF)

fn rice() -> Result<Table> {
    let path = locate(
        "rice",
        Root::Shared,
        "uci/rice_cammeo_osmancik/Rice_Cammeo_Osmancik.arff",
    )?;
    load_arff("rice", &path)
}

/// A dense ARFF file: `@ATTRIBUTE name type` lines (numeric/real/integer, or a `{a, b}`
/// nominal list), then `@DATA` rows; `%` starts a comment. The last attribute is the
/// target, its classes in declared order.
pub fn load_arff(name: &str, path: &Path) -> Result<Table> {
    let bytes = read_bytes(path)?;
    let text = String::from_utf8(bytes).map_err(|e| DataError::Invalid {
        path: path.to_path_buf(),
        msg: format!("not UTF-8: {e}"),
    })?;
    let perr = |line: usize, msg: String| DataError::Parse {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut raw = raw_named(name);
    raw.paths.push(path.to_path_buf());
    let mut hints = Vec::new();
    let mut nominal: Vec<Option<Vec<String>>> = Vec::new();
    let mut in_data = false;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let l = line.trim();
        if l.is_empty() || l.starts_with('%') {
            continue;
        }
        if in_data {
            let cells: Vec<String> = split_arff_row(l);
            raw.rows.push(RawRow {
                file: 0,
                line: line_no,
                cells,
            });
            continue;
        }
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("@data") {
            in_data = true;
        } else if lower.starts_with("@attribute") {
            let rest = l["@attribute".len()..].trim();
            let (attr, ty) = split_arff_attribute(rest)
                .ok_or_else(|| perr(line_no, format!("cannot parse attribute `{l}`")))?;
            raw.header.push(attr);
            if let Some(list) = ty.strip_prefix('{') {
                let list = list
                    .trim_end()
                    .strip_suffix('}')
                    .ok_or_else(|| perr(line_no, format!("unterminated nominal list in `{l}`")))?;
                hints.push(KindHint::Categorical);
                nominal.push(Some(
                    split_arff_row(list)
                        .into_iter()
                        .filter(|v| !v.is_empty())
                        .collect(),
                ));
            } else {
                let t = ty.to_ascii_lowercase();
                if ["numeric", "real", "integer"].contains(&t.as_str()) {
                    hints.push(KindHint::Numeric);
                    nominal.push(None);
                } else {
                    return Err(perr(line_no, format!("unsupported attribute type `{ty}`")));
                }
            }
        }
    }
    if raw.header.is_empty() {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: "no @ATTRIBUTE lines".into(),
        });
    }
    let target = raw.header.len() - 1;
    raw.encode(&EncodeOptions {
        target,
        hints,
        strict_mixed: false,
        class_names: nominal.pop().flatten(),
    })
}

/// `name type` where the name may be quoted and the separator is spaces or tabs.
fn split_arff_attribute(rest: &str) -> Option<(String, String)> {
    if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let end = rest[1..].find(q)? + 1;
        return Some((rest[1..end].to_string(), rest[end + 1..].trim().to_string()));
    }
    let split = rest.find(char::is_whitespace)?;
    Some((rest[..split].to_string(), rest[split..].trim().to_string()))
}

/// Comma-separated values with optional single or double quotes.
fn split_arff_row(l: &str) -> Vec<String> {
    l.split(',')
        .map(|v| {
            let v = v.trim();
            v.strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                .unwrap_or(v)
                .to_string()
        })
        .collect()
}

// ---------------------------------------------------------------- Bank Marketing

/// `bank.csv` (the official 10% sample): `;`-separated, quoted, 16 features, target `y`.
fn bank_marketing() -> Result<Table> {
    let path = locate(
        "bank_marketing",
        Root::Shared,
        "uci/bank_marketing/bank.csv",
    )?;
    let mut raw = raw_named("bank_marketing");
    raw.header = read_delimited(&mut raw, &path, b';', true, None)?.unwrap_or_default();
    let target = position(&raw.header, "y", &path)?;
    raw.encode(&EncodeOptions {
        target,
        hints: Vec::new(),
        strict_mixed: false,
        class_names: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panicking reader becomes an error naming the file and the panic's message.
    #[test]
    fn a_reader_panic_becomes_an_error_naming_the_file() {
        let p = Path::new("/data/book.xlsx");
        let e = without_panics::<()>(p, || panic!("attempt to multiply with overflow"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("book.xlsx")
                && e.contains("workbook is corrupt")
                && e.contains("attempt to multiply with overflow"),
            "{e}"
        );
        assert_eq!(without_panics(p, || Ok(7)).unwrap(), 7);
    }
}
