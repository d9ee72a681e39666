//! A user's own CSV: header row, target column by name (default: the last), numeric vs
//! categorical detection, missing values, and the column and class names kept (a
//! generated model is conditioned on them).

use std::path::Path;

use crate::tabular::{EncodeOptions, KindHint, RawRow, RawTable};
use crate::{DataError, Result, Table};

/// How to read a user CSV. Build it with `CsvOptions { target: Some(..), ..Default::default() }`.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// Target column name; `None` = the last column.
    pub target: Option<String>,
    /// Field separator; `None` = detected from the header line among `,` `;` and tab.
    pub delimiter: Option<u8>,
    /// Columns to treat as categorical even if their values look numeric (or are mostly
    /// numeric with a few stray strings, which is otherwise an error).
    pub categorical: Vec<String>,
    /// The file has no header row: the columns are named `col1`…`colN` (the last is the
    /// target unless `target` names another).
    pub no_header: bool,
    /// Columns left out right after reading (a row ID, free text), by name.
    pub drop: Vec<String>,
    /// Classes or values: `Auto` applies [`regression_rule`].
    pub task: TargetTask,
}

/// How a table's target is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TargetTask {
    /// [`regression_rule`] decides.
    #[default]
    Auto,
    Classification,
    Regression,
}

/// A numeric target with more distinct values than this is read as a regression target
/// under [`TargetTask::Auto`]: 20 covers every class count of the ten UCI sets and
/// ordinal grades such as wine quality (6-7 values), while counts and measurements have
/// far more.
pub const REGRESSION_MIN_DISTINCT: usize = 20;

/// Why a target is a regression target under [`TargetTask::Auto`] (`None`: it is read as
/// classes): every value a finite number, more than [`REGRESSION_MIN_DISTINCT`] distinct.
pub fn regression_rule(numeric_distinct: Option<usize>) -> Option<String> {
    let d = numeric_distinct?;
    (d > REGRESSION_MIN_DISTINCT).then(|| {
        format!(
            "every value is a number and {d} are distinct (more than {REGRESSION_MIN_DISTINCT})"
        )
    })
}

/// Reads a CSV with a header row into a [`Table`].
///
/// Typing: a column is numeric when every non-missing value parses as a number, else
/// categorical (levels sorted, as sklearn's `LabelEncoder`). A column that is ≥ 90%
/// numbers with a few other strings is reported as an error at the first stray value,
/// since that is almost always a typo; list it in [`CsvOptions::categorical`] if it is
/// really categorical. Missing cells: empty, `?`, `NA`, `NaN`, `null` (any case).
/// Class names are the target's distinct values, sorted (numerically if all are numbers).
/// A numeric target with many distinct values ([`regression_rule`], or
/// [`CsvOptions::task`]) is read as values instead ([`Table::target_values`]).
pub fn load_csv(path: &Path, opts: &CsvOptions) -> Result<Table> {
    let raw = read_raw(path, opts)?;
    check_size(&raw, path)?;
    let target =
        match &opts.target {
            None => raw.header.len() - 1,
            Some(name) => raw.header.iter().position(|h| h == name).ok_or_else(|| {
                DataError::UnknownColumn {
                    path: path.to_path_buf(),
                    target: name.clone(),
                    available: raw.header.join(", "),
                }
            })?,
        };
    let enc = encode_options(&raw, opts, target);
    let regression = match opts.task {
        TargetTask::Classification => false,
        TargetTask::Regression => true,
        TargetTask::Auto => regression_rule(raw.numeric_distinct(target)).is_some(),
    };
    if regression {
        return raw.encode_regression(&enc);
    }
    let table = raw.encode(&enc)?;
    if table.class_names.len() > MAX_CLASSES {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: format!(
                "target `{}` has {} distinct values; at most {MAX_CLASSES} classes are supported \
                 (an ID column is not a target: name the target with --target)",
                table.target,
                table.class_names.len()
            ),
        });
    }
    Ok(table)
}

/// The most columns, rows and cells a table may have. Measured on this project's 2-core
/// machine: `generate` on 300 rows × 10,000 columns took 2.9 s and 0.75 GB, on 1,000,000
/// rows × 3 columns 2.2 s and 0.43 GB; the bounds keep every table within a few GB.
pub const MAX_COLUMNS: usize = 10_000;
pub const MAX_ROWS: usize = 2_000_000;
pub const MAX_CELLS: usize = 20_000_000;

fn check_size(raw: &RawTable, path: &Path) -> Result<()> {
    let (rows, cols) = (raw.rows.len(), raw.header.len());
    let msg = if cols > MAX_COLUMNS {
        format!("{cols} columns; at most {MAX_COLUMNS} are supported (drop some with --drop-column, or reduce them first)")
    } else if rows > MAX_ROWS {
        format!("{rows} rows; at most {MAX_ROWS} are supported (sample the rows first)")
    } else if rows.saturating_mul(cols) > MAX_CELLS {
        format!("{rows} rows × {cols} columns; at most {MAX_CELLS} cells are supported (sample the rows first)")
    } else {
        return Ok(());
    };
    Err(DataError::Invalid {
        path: path.to_path_buf(),
        msg,
    })
}

/// The most classes a table's target may have: beyond it a target is almost always a
/// measurement or an ID, and the generator's per-class work grows without bound (a
/// 10,000-class table once grew past 10 GB).
pub const MAX_CLASSES: usize = 100;

/// Reads the rows of a CSV for prediction: every column is a feature except `opts.target`
/// when the file has it (its cells are not read, so a target column with any values or
/// none is fine). `-` reads standard input, once. Errors name the file and line.
///
/// Rows stay attached to their place in the file: [`Features::lines`] gives each table row's
/// line, and records that cannot be scored (every cell empty, or every feature missing) are
/// left out of the table and listed in [`Features::unscored`] with the reason.
pub fn load_features(path: &Path, opts: &CsvOptions) -> Result<Features> {
    let mut raw = read_raw(path, opts)?;
    check_size(&raw, path)?;
    let skip = opts
        .target
        .as_ref()
        .and_then(|t| raw.header.iter().position(|h| h == t));
    let mut unscored: Vec<(usize, String)> = raw
        .blank_lines
        .iter()
        .map(|&l| (l, "every cell is empty".to_string()))
        .collect();
    raw.rows.retain(|r| {
        let all_missing = r
            .cells
            .iter()
            .enumerate()
            .filter(|(j, _)| Some(*j) != skip)
            .all(|(_, c)| crate::tabular::is_missing(c));
        if all_missing {
            unscored.push((r.line, "every feature is missing".into()));
        }
        !all_missing
    });
    unscored.sort();
    if raw.rows.is_empty() && !unscored.is_empty() {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: format!(
                "no row has a feature value ({} rows, every feature missing)",
                unscored.len()
            ),
        });
    }
    let lines = raw.rows.iter().map(|r| r.line).collect();
    let table = raw.encode_features(skip, &encode_options(&raw, opts, 0))?;
    Ok(Features {
        table,
        lines,
        unscored,
    })
}

/// The rows `predict` scores, with where each came from in the file.
#[derive(Debug, Clone)]
pub struct Features {
    pub table: Table,
    /// The 1-based file line of each table row.
    pub lines: Vec<usize>,
    /// File lines of the records left out of `table`, each with the reason.
    pub unscored: Vec<(usize, String)>,
}

fn encode_options(raw: &RawTable, opts: &CsvOptions, target: usize) -> EncodeOptions {
    let hints = raw
        .header
        .iter()
        .map(|h| {
            if opts.categorical.contains(h) {
                KindHint::Categorical
            } else {
                KindHint::Auto
            }
        })
        .collect();
    EncodeOptions {
        target,
        hints,
        strict_mixed: true,
        class_names: None,
    }
}

/// The file (`-`: standard input) as header + rows, with the delimiter detected and the
/// declared categorical columns checked.
pub(crate) fn read_raw(path: &Path, opts: &CsvOptions) -> Result<RawTable> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = if path == Path::new("-") {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(io)?;
        b
    } else {
        std::fs::read(path).map_err(io)?
    };
    let invalid = |msg: &str| DataError::Invalid {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    };
    if let Some(kind) = binary_kind(&bytes) {
        return Err(invalid(&format!(
            "this is a {kind}, not a CSV text file; convert or decompress it first"
        )));
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("file is empty"));
    }
    let delimiter = opts.delimiter.unwrap_or_else(|| detect_delimiter(body));
    let mut raw = RawTable {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "csv".into()),
        ..Default::default()
    };
    let header = read_records(&mut raw, path, body, delimiter, None, !opts.no_header)?;
    let header_line = match header {
        Some((header, line)) => {
            raw.header = header;
            line
        }
        None if opts.no_header && !raw.rows.is_empty() => {
            let n = raw.rows.iter().map(|r| r.cells.len()).max().unwrap_or(0);
            raw.header = (1..=n).map(|i| format!("col{i}")).collect();
            0
        }
        None => return Err(invalid("file is empty")),
    };
    check_cells(&raw, path, header_line, opts.no_header)?;
    check_drop_keeps_target(&raw, path, opts)?;
    drop_columns(&mut raw, path, &opts.drop)?;
    if delimiter != b',' {
        decimal_commas(&mut raw);
    }
    // A header of one field when the data rows have several usually means the wrong
    // separator; say so instead of "label-only".
    if let (1, Some(row)) = (raw.header.len(), raw.rows.first()) {
        if row.cells.len() > 1 {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line: row.line,
                msg: format!(
                    "ragged row: expected 1 field (as the header on line {header_line}), got {}; \
                     is the delimiter `{}` right? (choose it with --delimiter)",
                    row.cells.len(),
                    delimiter as char
                ),
            });
        }
    }
    for name in &opts.categorical {
        if !raw.header.contains(name) {
            return Err(DataError::Invalid {
                path: path.to_path_buf(),
                msg: format!(
                    "--categorical `{name}` is not a column; available columns: {}",
                    raw.header.join(", ")
                ),
            });
        }
    }
    Ok(raw)
}

/// At most 40 characters of `s`, for error messages (a runaway field can be the whole file).
fn excerpt(s: &str) -> String {
    let one_line = s.replace('\n', "\\n").replace('\0', "\\0");
    match one_line.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// Cells that are never valid CSV text: a NUL byte (a binary or corrupt file), a quoted
/// field that runs over line ends to swallow the rows after it, a header row that is data.
fn check_cells(raw: &RawTable, path: &Path, header_line: usize, no_header: bool) -> Result<()> {
    let parse = |line: usize, msg: String| DataError::Parse {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let rows = std::iter::once((header_line, &raw.header))
        .chain(raw.rows.iter().map(|r| (r.line, &r.cells)));
    for (line, cells) in rows {
        for c in cells {
            if c.contains('\0') {
                return Err(parse(
                    line,
                    format!(
                        "a NUL byte in field `{}`: the file is binary or corrupt",
                        excerpt(c)
                    ),
                ));
            }
            if c.matches('\n').count() >= 2 && cells.len() < raw.header.len().max(2) {
                return Err(parse(
                    line,
                    format!(
                        "a quoted field starting here never closes and swallows {} lines: `{}`",
                        c.matches('\n').count(),
                        excerpt(c)
                    ),
                ));
            }
        }
    }
    let numeric = raw
        .header
        .iter()
        .filter(|h| h.trim().parse::<f64>().is_ok())
        .count();
    if !no_header && raw.header.len() >= 2 && 2 * numeric >= raw.header.len() {
        return Err(parse(
            header_line,
            format!(
                "the header row looks like data ({numeric} of {} fields are numbers: `{}`); the first row must name the columns: add a header line, or pass --no-header (columns are then named col1, col2, …)",
                raw.header.len(),
                excerpt(&raw.header.join(","))
            ),
        ));
    }
    Ok(())
}

/// The kind of a binary file a user may hand over as a CSV (by its magic bytes), so the
/// error says what it is instead of "invalid UTF-8".
fn binary_kind(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 7] = [
        (b"\x1f\x8b", "gzip-compressed file (gunzip it)"),
        (
            b"PK\x03\x04",
            "zip archive (or an .xlsx workbook: save it as CSV)",
        ),
        (b"BZh", "bzip2-compressed file (bunzip2 it)"),
        (b"\xfd7zXZ\x00", "xz-compressed file (unxz it)"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed file (unzstd it)"),
        (b"PAR1", "Parquet file"),
        (
            b"\xd0\xcf\x11\xe0",
            "legacy Office document (an .xls workbook: save it as CSV)",
        ),
    ];
    MAGIC
        .iter()
        .find(|(m, _)| bytes.starts_with(m))
        .map(|(_, k)| *k)
}

/// A dropped column must not be the target: dropping it would silently make another column
/// the target (the last one left, when no --target is given).
fn check_drop_keeps_target(raw: &RawTable, path: &Path, opts: &CsvOptions) -> Result<()> {
    let target = match &opts.target {
        Some(t) => Some(t.as_str()),
        None => raw.header.last().map(String::as_str),
    };
    if let Some(t) = target.filter(|t| opts.drop.iter().any(|d| d == t)) {
        let why = if opts.target.is_some() {
            "it is the --target"
        } else {
            "it is the last column, which is the target unless --target names another"
        };
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: format!(
                "--drop-column `{t}`: {why}; drop another column, or name the target with --target"
            ),
        });
    }
    Ok(())
}

/// Removes the `drop` columns (by header name) from the header and every row.
fn drop_columns(raw: &mut RawTable, path: &Path, drop: &[String]) -> Result<()> {
    let mut idx = Vec::new();
    for name in drop {
        let j = raw
            .header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| DataError::Invalid {
                path: path.to_path_buf(),
                msg: format!(
                    "--drop-column `{name}` is not a column; available columns: {}",
                    raw.header.join(", ")
                ),
            })?;
        idx.push(j);
    }
    idx.sort_unstable();
    idx.dedup();
    for &j in idx.iter().rev() {
        raw.header.remove(j);
        for r in &mut raw.rows {
            if j < r.cells.len() {
                r.cells.remove(j);
            }
        }
    }
    if raw.header.is_empty() {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: "--drop-column left no columns".into(),
        });
    }
    Ok(())
}

/// With `;` or tab separators, a column whose every value reads like `1,5` uses decimal
/// commas (European spreadsheets): read those values as numbers.
fn decimal_commas(raw: &mut RawTable) {
    let is_dc = |c: &str| {
        let c = c.trim();
        let c = c.strip_prefix(['-', '+']).unwrap_or(c);
        match c.split_once(',') {
            Some((a, b)) => {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|x| x.is_ascii_digit())
                    && b.bytes().all(|x| x.is_ascii_digit())
            }
            None => false,
        }
    };
    for j in 0..raw.header.len() {
        let cells = || {
            raw.rows
                .iter()
                .filter_map(|r| r.cells.get(j))
                .map(String::as_str)
        };
        let mut any = false;
        let all = cells().filter(|c| !crate::tabular::is_missing(c)).all(|c| {
            if is_dc(c) {
                any = true;
                true
            } else {
                c.trim().parse::<f64>().is_ok()
            }
        });
        if all && any {
            for r in &mut raw.rows {
                if let Some(c) = r.cells.get_mut(j) {
                    if is_dc(c) {
                        *c = c.replace(',', ".");
                    }
                }
            }
        }
    }
}

/// The separator among `,` `;` tab and `|` that occurs most on the first line, outside quotes.
pub(crate) fn detect_delimiter(body: &[u8]) -> u8 {
    let first = body.split(|&b| b == b'\n').next().unwrap_or(body);
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in first {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            b'|' if !quoted => counts[3] += 1,
            _ => {}
        }
    }
    let (best, &n) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
        .unwrap_or((0, &0));
    if n == 0 {
        return b',';
    }
    [b',', b';', b'\t', b'|'][best]
}

pub(crate) fn csv_error(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    DataError::Parse {
        path: path.to_path_buf(),
        line,
        msg: e.to_string(),
    }
}

/// Appends the non-blank records of `bytes` (the file at `path`) to `raw` as its next file.
/// With `has_header` the first such record is the header instead: it is returned with
/// its line number (`None` when there are no records at all). Lines starting with
/// `comment` are skipped.
pub(crate) fn read_records(
    raw: &mut RawTable,
    path: &Path,
    bytes: &[u8],
    delimiter: u8,
    comment: Option<u8>,
    has_header: bool,
) -> Result<Option<(Vec<String>, usize)>> {
    let file = raw.paths.len();
    raw.paths.push(path.to_path_buf());
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(comment)
        .from_reader(bytes);
    let mut header = None;
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let cells: Vec<String> = record.iter().map(str::to_string).collect();
        if cells.iter().all(|c| c.is_empty()) {
            if !(has_header && header.is_none()) {
                raw.blank_lines.push(line);
            }
            continue;
        }
        if has_header && header.is_none() {
            header = Some((cells, line));
        } else {
            raw.rows.push(RawRow { file, line, cells });
        }
    }
    Ok(header)
}
