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
}

/// Reads a CSV with a header row into a [`Table`].
///
/// Typing: a column is numeric when every non-missing value parses as a number, else
/// categorical (levels sorted, as sklearn's `LabelEncoder`). A column that is ≥ 90%
/// numbers with a few other strings is reported as an error at the first stray value,
/// since that is almost always a typo; list it in [`CsvOptions::categorical`] if it is
/// really categorical. Missing cells: empty, `?`, `NA`, `NaN`, `null` (any case).
/// Class names are the target's distinct values, sorted (numerically if all are numbers).
pub fn load_csv(path: &Path, opts: &CsvOptions) -> Result<Table> {
    let raw = read_raw(path, opts)?;
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
    raw.encode(&encode_options(&raw, opts, target))
}

/// Reads the rows of a CSV for prediction: every column is a feature except `opts.target`
/// when the file has it (its cells are not read, so a target column with any values or
/// none is fine). `-` reads standard input, once. Errors name the file and line.
pub fn load_features(path: &Path, opts: &CsvOptions) -> Result<Table> {
    let raw = read_raw(path, opts)?;
    let skip = opts
        .target
        .as_ref()
        .and_then(|t| raw.header.iter().position(|h| h == t));
    raw.encode_features(skip, &encode_options(&raw, opts, 0))
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
fn read_raw(path: &Path, opts: &CsvOptions) -> Result<RawTable> {
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
    let Some((header, header_line)) = read_records(&mut raw, path, body, delimiter, None, true)?
    else {
        return Err(invalid("file is empty"));
    };
    raw.header = header;
    // A header of one field when the data rows have several usually means the wrong
    // separator; say so instead of "label-only".
    if let (1, Some(row)) = (raw.header.len(), raw.rows.first()) {
        if row.cells.len() > 1 {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line: row.line,
                msg: format!(
                    "ragged row: expected 1 field (as the header on line {header_line}), got {}; \
                     is the delimiter `{}` right?",
                    row.cells.len(),
                    delimiter as char
                ),
            });
        }
    }
    for name in &opts.categorical {
        if !raw.header.contains(name) {
            return Err(DataError::UnknownColumn {
                path: path.to_path_buf(),
                target: name.clone(),
                available: raw.header.join(", "),
            });
        }
    }
    Ok(raw)
}

/// The separator among `,` `;` and tab that occurs most on the first line, outside quotes.
pub(crate) fn detect_delimiter(body: &[u8]) -> u8 {
    let first = body.split(|&b| b == b'\n').next().unwrap_or(body);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in first {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
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
    [b',', b';', b'\t'][best]
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
