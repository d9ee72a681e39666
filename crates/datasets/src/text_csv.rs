//! A user's text CSV: one text column (or a pair of them) and, for training, a label
//! column. Errors name the file, the line and the column; reading (delimiter detection,
//! quoting, a UTF-8 BOM, `-` for standard input) is shared with [`crate::user_csv`].

use std::path::{Path, PathBuf};

use crate::user_csv::{read_raw, CsvOptions};
use crate::{DataError, Result};

/// Which columns hold the texts and the label.
#[derive(Debug, Clone, Default)]
pub struct TextCsvOptions {
    pub text_column: String,
    /// Second sentence of a pair task.
    pub pair_column: Option<String>,
    /// Label column; `None` reads texts only (prediction).
    pub target: Option<String>,
    /// Field separator; `None` = detected from the header line.
    pub delimiter: Option<u8>,
}

/// Texts (and labels) in file order, with the line each row came from.
#[derive(Debug, Clone, PartialEq)]
pub struct TextData {
    pub source: PathBuf,
    /// The file's stem.
    pub name: String,
    pub text_a: Vec<String>,
    pub text_b: Option<Vec<String>>,
    pub targets: Option<Vec<String>>,
    pub lines: Vec<usize>,
    /// Reading for prediction (no target): the lines of records with no text (an empty
    /// text cell, or every cell empty), each with the reason. They are not rows here, and
    /// `predict` answers them with an empty prediction so later rows keep their place.
    pub unscored: Vec<(usize, String)>,
}

impl TextData {
    pub fn len(&self) -> usize {
        self.text_a.len()
    }
    pub fn is_empty(&self) -> bool {
        self.text_a.is_empty()
    }
    /// Distinct label values sorted (numerically when all are numbers) and each row's
    /// index into them.
    pub fn classes(&self) -> Option<(Vec<String>, Vec<usize>)> {
        let t = self.targets.as_ref()?;
        let mut names: Vec<String> = t.clone();
        names.sort();
        names.dedup();
        if names.iter().all(|s| s.parse::<f64>().is_ok()) {
            names.sort_by(|a, b| {
                let (x, y) = (
                    a.parse::<f64>().unwrap_or(0.0),
                    b.parse::<f64>().unwrap_or(0.0),
                );
                x.total_cmp(&y)
            });
        }
        let idx = t
            .iter()
            .map(|v| names.iter().position(|n| n == v).unwrap_or(0))
            .collect();
        Some((names, idx))
    }
}

/// Reads `path` (`-`: standard input). Every named column must exist; no text cell may
/// be empty; with a target, no label may be empty and the file needs at least one row.
pub fn load_text_csv(path: &Path, opts: &TextCsvOptions) -> Result<TextData> {
    let raw = read_raw(
        path,
        &CsvOptions {
            delimiter: opts.delimiter,
            ..Default::default()
        },
    )?;
    let col = |name: &str, what: &str| -> Result<usize> {
        raw.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| DataError::Invalid {
                path: path.to_path_buf(),
                msg: format!(
                    "{what} column `{name}` not found; available columns: {}",
                    raw.header.join(", ")
                ),
            })
    };
    let a = col(&opts.text_column, "text")?;
    let b = opts
        .pair_column
        .as_deref()
        .map(|c| col(c, "text pair"))
        .transpose()?;
    let y = opts
        .target
        .as_deref()
        .map(|c| col(c, "target"))
        .transpose()?;
    // One column in two roles reads the label as the input (or a text twice): refused.
    let roles = [
        (Some(a), "--text-column"),
        (b, "--text-pair-column"),
        (y, "--target"),
    ];
    for (i, (x, xn)) in roles.iter().enumerate() {
        for (z, zn) in &roles[i + 1..] {
            if let (Some(x), Some(z)) = (x, z) {
                if x == z {
                    return Err(DataError::Invalid {
                        path: path.to_path_buf(),
                        msg: format!(
                            "{xn} and {zn} both name column `{}`; each role needs its own column",
                            raw.header[*x]
                        ),
                    });
                }
            }
        }
    }
    let mut out = TextData {
        source: path.to_path_buf(),
        name: raw.name.clone(),
        text_a: Vec::with_capacity(raw.rows.len()),
        text_b: b.map(|_| Vec::with_capacity(raw.rows.len())),
        targets: y.map(|_| Vec::with_capacity(raw.rows.len())),
        lines: Vec::with_capacity(raw.rows.len()),
        unscored: Vec::new(),
    };
    let predicting = opts.target.is_none();
    if predicting {
        out.unscored = raw
            .blank_lines
            .iter()
            .map(|&l| (l, "every cell is empty".to_string()))
            .collect();
    }
    for row in &raw.rows {
        // A text holding an unquoted delimiter shifts every later cell: the label would be
        // read from a piece of the text.
        if row.cells.len() != raw.header.len() {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line: row.line,
                msg: format!(
                    "ragged row: expected {} fields (as the header), got {}; quote a text that holds the delimiter (\"like, this\")",
                    raw.header.len(),
                    row.cells.len()
                ),
            });
        }
        if predicting {
            let empty = |i: usize| row.cells.get(i).is_none_or(|c| c.trim().is_empty());
            let mut texts = std::iter::once((a, opts.text_column.as_str()))
                .chain(b.zip(opts.pair_column.as_deref()));
            if let Some((_, name)) = texts.find(|(i, _)| empty(*i)) {
                out.unscored
                    .push((row.line, format!("text column `{name}` is empty")));
                continue;
            }
        }
        let cell = |i: usize, name: &str, what: &str| -> Result<String> {
            let v = row.cells.get(i).map(|s| s.trim()).unwrap_or("");
            if v.is_empty() {
                return Err(DataError::Parse {
                    path: path.to_path_buf(),
                    line: row.line,
                    msg: format!("{what} column `{name}` is empty"),
                });
            }
            Ok(v.to_string())
        };
        out.text_a.push(cell(a, &opts.text_column, "text")?);
        if let (Some(i), Some(v)) = (b, out.text_b.as_mut()) {
            v.push(cell(
                i,
                opts.pair_column.as_deref().unwrap_or(""),
                "text pair",
            )?);
        }
        if let (Some(i), Some(v)) = (y, out.targets.as_mut()) {
            v.push(cell(i, opts.target.as_deref().unwrap_or(""), "target")?);
        }
        out.lines.push(row.line);
    }
    out.unscored.sort();
    if out.is_empty() {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: if out.unscored.is_empty() {
                "no data rows after the header".into()
            } else {
                format!(
                    "no row has a text ({} rows without one)",
                    out.unscored.len()
                )
            },
        });
    }
    Ok(out)
}

/// The columns of `path` (other than `exclude`) that hold free text: in the first 2,000
/// rows, at least 90% of the filled cells are not numbers, they average at least 4 words,
/// and at least half of them are distinct. Table columns (numbers, categories, short names
/// and IDs) fail one of these; sentences and documents pass. `generate` reads a CSV with
/// exactly one such column as text without `--text-column`. Also returns how many columns
/// are not excluded (free text or not).
pub fn free_text_columns(
    path: &Path,
    delimiter: Option<u8>,
    exclude: &[&str],
) -> Result<(Vec<String>, usize)> {
    let raw = read_raw(
        path,
        &CsvOptions {
            delimiter,
            ..Default::default()
        },
    )?;
    let mut kept = 0;
    let rows = &raw.rows[..raw.rows.len().min(2_000)];
    let mut out = Vec::new();
    for (j, name) in raw.header.iter().enumerate() {
        if exclude.contains(&name.as_str()) {
            continue;
        }
        kept += 1;
        let cells: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.cells.get(j).map(|c| c.trim()))
            .filter(|c| !c.is_empty())
            .collect();
        if cells.len() < 2 {
            continue;
        }
        let n = cells.len() as f64;
        let words = cells
            .iter()
            .map(|c| c.split_whitespace().count())
            .sum::<usize>() as f64;
        let numbers = cells.iter().filter(|c| c.parse::<f64>().is_ok()).count() as f64;
        let distinct = cells.iter().collect::<std::collections::HashSet<_>>().len() as f64;
        if numbers <= 0.1 * n && words >= 4.0 * n && distinct >= 0.5 * n {
            out.push(name.clone());
        }
    }
    Ok((out, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(s: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        std::io::Write::write_all(&mut f, s).unwrap();
        f
    }

    fn opts(target: Option<&str>) -> TextCsvOptions {
        TextCsvOptions {
            text_column: "text".into(),
            pair_column: None,
            target: target.map(String::from),
            delimiter: None,
        }
    }

    #[test]
    fn finds_the_free_text_column_and_not_table_columns() {
        let f = write(
            b"id,name,price,review,label\n\
              1,Ann Lee,3.5,the soup was cold and bland,neg\n\
              2,Bob Ray,4.0,a lovely evening with friends here,pos\n\
              3,Cy Dow,2.5,never again will I order that dish,neg\n\
              4,Di Fox,5.0,best pasta I have had in years,pos\n",
        );
        let (cols, kept) = free_text_columns(f.path(), None, &["label"]).unwrap();
        assert_eq!((cols, kept), (vec!["review".to_string()], 4));
        let (cols, kept) = free_text_columns(f.path(), None, &["review", "label"]).unwrap();
        assert_eq!((cols.len(), kept), (0, 3));
        let t = write(b"a,b,c\n1,x y,red\n2,x y,blue\n3,x z,red\n");
        assert!(free_text_columns(t.path(), None, &[]).unwrap().0.is_empty());
    }

    #[test]
    fn reads_texts_labels_and_quoted_commas() {
        let f = write(b"id,text,label\n1,\"good, very good\",pos\n2,bad,neg\n3,fine,pos\n");
        let d = load_text_csv(f.path(), &opts(Some("label"))).unwrap();
        assert_eq!(d.text_a, vec!["good, very good", "bad", "fine"]);
        assert_eq!(d.lines, vec![2, 3, 4]);
        let (names, idx) = d.classes().unwrap();
        assert_eq!(names, vec!["neg", "pos"]);
        assert_eq!(idx, vec![1, 0, 1]);
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        let f = write(b"text,label\na,10\nb,9\nc,10\n");
        let (names, _) = load_text_csv(f.path(), &opts(Some("label")))
            .unwrap()
            .classes()
            .unwrap();
        assert_eq!(names, vec!["9", "10"]);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let f = write(b"text,label\nfine,1\n ,0\n");
        let e = load_text_csv(f.path(), &opts(Some("label")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":3:") && e.contains("text column `text` is empty"),
            "{e}"
        );
        let e = load_text_csv(f.path(), &opts(Some("y")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("target column `y` not found") && e.contains("text, label"),
            "{e}"
        );
        let f = write(b"text,label\nfine,\n");
        let e = load_text_csv(f.path(), &opts(Some("label")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":2:") && e.contains("target column `label` is empty"),
            "{e}"
        );
        let f = write(b"text,label\n");
        let e = load_text_csv(f.path(), &opts(Some("label")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no data rows"), "{e}");
        let f = write(b"text,label\ngood \xff\xfe,1\n");
        let e = load_text_csv(f.path(), &opts(Some("label")))
            .unwrap_err()
            .to_string();
        assert!(e.contains(f.path().to_str().unwrap()), "{e}");
        assert!(
            e.to_lowercase().contains("utf-8") || e.contains("UTF"),
            "{e}"
        );
    }
}
