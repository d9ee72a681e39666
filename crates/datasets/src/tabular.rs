//! Tabular data: the raw typed table every tabular loader produces, and the shared step
//! that turns text cells into it (missing-value tokens, numeric vs categorical detection,
//! label encoding with sorted levels as sklearn's `LabelEncoder`).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{DataError, Result};

/// How a feature column is stored in [`Table::features`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnKind {
    /// Raw numeric value; `NaN` marks a missing cell.
    Numeric,
    /// Label-encoded: the value is the index into `levels` (sorted, as sklearn's
    /// `LabelEncoder`); `NaN` marks a missing cell.
    Categorical { levels: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
}

/// A classification table as loaded from disk, before filling, scaling and splitting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    /// Short dataset name (`iris`, or the user file's stem).
    pub name: String,
    /// Feature columns, in file order, target excluded.
    pub columns: Vec<Column>,
    /// Row-major features, `rows × columns.len()`, missing = `NaN`.
    pub features: Vec<Vec<f64>>,
    /// Name of the target column.
    pub target: String,
    /// Class names; `labels[i]` indexes into this.
    pub class_names: Vec<String>,
    pub labels: Vec<usize>,
    /// Where the table was read from (for `xtask datasets` and error messages).
    pub source: String,
    /// A regression target: each row's value. `class_names` is then the target's name
    /// alone and every label 0, until the caller bins the values.
    pub target_values: Option<Vec<f64>>,
}

impl Table {
    /// Data rows (a features-only table, read for prediction, has no labels).
    pub fn n_rows(&self) -> usize {
        self.features.len()
    }
    pub fn n_features(&self) -> usize {
        self.columns.len()
    }
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }
    /// Column names in order (what a generated model is conditioned on).
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }
    /// Number of rows per class, indexed like `class_names`.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }
    /// Usable as model input: at least one feature column, rectangular rows, no infinite
    /// value, labels (when there are any: a table read for prediction has none) one per
    /// row and in range. Errors name the file and the data row.
    pub fn check(&self) -> Result<()> {
        let invalid = |msg: String| DataError::Invalid {
            path: PathBuf::from(&self.source),
            msg,
        };
        let nf = self.n_features();
        if nf == 0 {
            return Err(invalid("no feature columns".into()));
        }
        if !self.labels.is_empty() && self.features.len() != self.labels.len() {
            return Err(invalid(format!(
                "{} feature rows but {} labels",
                self.features.len(),
                self.labels.len()
            )));
        }
        for (i, row) in self.features.iter().enumerate() {
            if row.len() != nf {
                return Err(invalid(format!(
                    "data row {} has {} features, expected {nf}",
                    i + 1,
                    row.len()
                )));
            }
            if let Some(j) = row.iter().position(|v| v.is_infinite()) {
                return Err(invalid(format!(
                    "data row {}, column `{}`: value {} is not finite",
                    i + 1,
                    self.columns[j].name,
                    row[j]
                )));
            }
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l >= self.n_classes())
        {
            return Err(invalid(format!(
                "data row {} has label index {l} but there are {} classes",
                i + 1,
                self.n_classes()
            )));
        }
        Ok(())
    }

    /// [`Table::check`], plus what the task needs: rows, a label per row and at least two
    /// classes (a regression table: a value per row).
    pub fn check_labelled(&self) -> Result<()> {
        let invalid = |msg: String| DataError::Invalid {
            path: PathBuf::from(&self.source),
            msg,
        };
        if self.n_rows() == 0 {
            return Err(invalid("the table has no rows".into()));
        }
        self.check()?;
        if self.labels.len() != self.n_rows() {
            return Err(invalid(format!(
                "{} feature rows but {} labels",
                self.n_rows(),
                self.labels.len()
            )));
        }
        if let Some(v) = &self.target_values {
            if v.len() != self.n_rows() {
                return Err(invalid(format!(
                    "{} feature rows but {} target values",
                    self.n_rows(),
                    v.len()
                )));
            }
            return Ok(());
        }
        if self.n_classes() < 2 {
            return Err(invalid(format!(
                "target `{}` has {} class(es); classification needs at least two",
                self.target,
                self.n_classes()
            )));
        }
        if self.n_rows() >= 3 && self.class_counts().iter().all(|&k| k <= 1) {
            return Err(invalid(format!(
                "target `{}` has a different value in every row ({} classes for {} rows): it \
                 looks like an ID or a continuous quantity, not a class label; a classifier \
                 needs at least two rows of some class",
                self.target,
                self.n_classes(),
                self.n_rows()
            )));
        }
        Ok(())
    }

    /// The rows `idx` (in that order) as a table of their own: same columns and classes,
    /// so statistics of the training split can be taken without the other rows.
    pub fn subset_rows(&self, idx: &[usize]) -> Table {
        // Field by field: `..self.clone()` would copy every row before dropping them.
        Table {
            name: self.name.clone(),
            columns: self.columns.clone(),
            features: idx.iter().map(|&i| self.features[i].clone()).collect(),
            target: self.target.clone(),
            class_names: self.class_names.clone(),
            labels: if self.labels.is_empty() {
                Vec::new()
            } else {
                idx.iter().map(|&i| self.labels[i]).collect()
            },
            source: self.source.clone(),
            target_values: self
                .target_values
                .as_ref()
                .map(|v| idx.iter().map(|&i| v[i]).collect()),
        }
    }

    /// Number of missing (`NaN`) feature cells.
    pub fn n_missing(&self) -> usize {
        self.features
            .iter()
            .flatten()
            .filter(|v| v.is_nan())
            .count()
    }
}

/// Cells that mean "missing" (compared after trimming, case-insensitively).
pub const MISSING_TOKENS: &[&str] = &["", "?", "NA", "NaN", "null"];

/// How many distinct values `v` holds (compared bit for bit).
pub fn distinct_count(v: &[f64]) -> usize {
    v.iter()
        .map(|x| x.to_bits())
        .collect::<HashSet<u64>>()
        .len()
}

/// Whether a cell is one of [`MISSING_TOKENS`].
pub fn is_missing(cell: &str) -> bool {
    let c = cell.trim();
    MISSING_TOKENS.iter().any(|m| m.eq_ignore_ascii_case(c))
}

/// Sort order of label-encoded levels: numerically when every level is a number (so `10`
/// follows `9` and wine quality `3..9` keeps its order), otherwise by string, as
/// `LabelEncoder` does on text.
pub fn sort_levels(levels: &mut [String]) {
    let numeric: Option<Vec<f64>> = levels.iter().map(|l| l.trim().parse().ok()).collect();
    match numeric {
        Some(nums) if nums.iter().all(|v: &f64| v.is_finite()) => {
            let mut pairs: Vec<(f64, String)> =
                nums.into_iter().zip(levels.iter().cloned()).collect();
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            for (slot, (_, l)) in levels.iter_mut().zip(pairs) {
                *slot = l;
            }
        }
        _ => levels.sort(),
    }
}

/// One data row of a text table, with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    /// Index into [`RawTable::paths`].
    pub file: usize,
    /// 1-based line in that file.
    pub line: usize,
    pub cells: Vec<String>,
}

/// The largest magnitude a numeric cell may have: sums and ranges of such values stay
/// finite in f64 and the scaled features in f32.
const MAX_MAGNITUDE: f64 = 1e30;

/// Distinct numbers in a column beyond which it reads as a measurement, not as codes: its
/// few word values are then an error rather than a reason to read it as categorical.
const MANY_NUMBERS: usize = 20;

/// A table of text cells (header + rows), before typing.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawTable {
    pub name: String,
    pub paths: Vec<PathBuf>,
    pub header: Vec<String>,
    pub rows: Vec<RawRow>,
    /// Lines of records whose every cell is empty (`,,,`): not rows of the table, but
    /// `predict` answers them with an empty prediction so later rows keep their numbers.
    pub blank_lines: Vec<usize>,
}

/// How to type one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KindHint {
    /// Numeric if every non-missing value parses as a number, else categorical.
    Auto,
    /// Every non-missing value must parse as a number.
    Numeric,
    Categorical,
}

pub(crate) struct EncodeOptions {
    /// Index of the target column in the header.
    pub target: usize,
    /// Per header column; empty = all [`KindHint::Auto`].
    pub hints: Vec<KindHint>,
    /// For user files: an `Auto` column that is at least 90% numbers with a few stray
    /// strings is almost always a typo, so it is an error rather than a silent switch to
    /// categorical (the user can declare the column categorical instead).
    pub strict_mixed: bool,
    /// Fixed class order (declared in the file); `None` = sorted distinct values.
    pub class_names: Option<Vec<String>>,
}

impl RawTable {
    fn path(&self, row: &RawRow) -> PathBuf {
        self.paths.get(row.file).cloned().unwrap_or_default()
    }

    fn first_path(&self) -> PathBuf {
        self.paths.first().cloned().unwrap_or_default()
    }

    fn source(&self) -> String {
        self.paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    }

    fn invalid(&self, msg: String) -> DataError {
        DataError::Invalid {
            path: self.first_path(),
            msg,
        }
    }

    fn parse_err(&self, row: &RawRow, msg: String) -> DataError {
        DataError::Parse {
            path: self.path(row),
            line: row.line,
            msg,
        }
    }

    /// Types the cells: checks the shape, finds each column's kind, label-encodes
    /// categoricals and the target.
    pub fn encode(&self, opts: &EncodeOptions) -> Result<Table> {
        self.check_shape()?;
        let n_cols = self.header.len();
        if opts.target >= n_cols {
            return Err(self.invalid(format!(
                "target column index {} out of range ({} columns)",
                opts.target, n_cols
            )));
        }
        let target_name = self.header[opts.target].clone();
        if n_cols == 1 {
            return Err(self.invalid(format!(
                "label-only dataset: the only column is the target `{target_name}`, \
                 there are no feature columns"
            )));
        }
        if opts.strict_mixed {
            self.check_user_columns(opts.target, &target_name)?;
        }
        let (class_names, labels) = self.encode_target(opts, &target_name)?;
        let feature_idx: Vec<usize> = (0..n_cols).filter(|&j| j != opts.target).collect();
        let (columns, features) = self.encode_columns(&feature_idx, opts)?;
        Ok(Table {
            name: self.name.clone(),
            columns,
            features,
            target: target_name,
            class_names,
            labels,
            source: self.source(),
            target_values: None,
        })
    }

    /// A user's table with a numeric target read as values (regression): the features as
    /// [`Self::encode_features`] reads them (ID columns refused), the target's value per
    /// row in [`Table::target_values`]. A missing or non-numeric target cell is an error
    /// naming its line.
    pub fn encode_regression(&self, opts: &EncodeOptions) -> Result<Table> {
        self.check_shape()?;
        let t = opts.target;
        let name = self.header.get(t).cloned().unwrap_or_default();
        if self.header.len() == 1 {
            return Err(self.invalid(format!(
                "label-only dataset: the only column is the target `{name}`, there are no feature columns"
            )));
        }
        let mut values = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            let cell = row.cells[t].trim();
            match cell.parse::<f64>() {
                // Every missing-cell token fails to parse or parses to NaN.
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    return Err(self.parse_err(
                        row,
                        format!(
                            "target `{name}` is `{cell}`; a regression target needs a finite number in every row"
                        ),
                    ))
                }
            }
        }
        if opts.strict_mixed {
            self.check_id_columns(t)?;
        }
        let mut table = self.encode_features(Some(t), opts)?;
        table.class_names = vec![name];
        table.labels = vec![0; values.len()];
        table.target_values = Some(values);
        Ok(table)
    }

    /// The target column's distinct values when every cell is a finite number (`None`
    /// otherwise): what the regression rule reads.
    pub fn numeric_distinct(&self, target: usize) -> Option<usize> {
        let v = self.numbers(target)?;
        if v.iter().any(|x| !x.is_finite()) {
            return None;
        }
        Some(distinct_count(&v))
    }

    /// Features only (rows to predict): every column except `skip` (the model's target,
    /// when the file has it; its cells are not read). Labels and class names are empty.
    pub fn encode_features(&self, skip: Option<usize>, opts: &EncodeOptions) -> Result<Table> {
        self.check_shape()?;
        let feature_idx: Vec<usize> = (0..self.header.len())
            .filter(|&j| Some(j) != skip)
            .collect();
        if feature_idx.is_empty() {
            return Err(self.invalid("no feature columns".into()));
        }
        let (columns, features) = self.encode_columns(&feature_idx, opts)?;
        Ok(Table {
            name: self.name.clone(),
            columns,
            features,
            target: skip.map(|j| self.header[j].clone()).unwrap_or_default(),
            class_names: Vec::new(),
            labels: Vec::new(),
            source: self.source(),
            target_values: None,
        })
    }

    /// Header names present and unique, at least one data row, no ragged row.
    fn check_shape(&self) -> Result<()> {
        let n_cols = self.header.len();
        let invalid = |msg: String| self.invalid(msg);
        if n_cols == 0 {
            return Err(invalid("file is empty (no header)".into()));
        }
        let mut seen = HashSet::new();
        for (i, h) in self.header.iter().enumerate() {
            if h.trim().is_empty() {
                return Err(invalid(format!("header column {} has no name", i + 1)));
            }
            if !seen.insert(h.as_str()) {
                return Err(invalid(format!(
                    "duplicate column name `{h}` in the header"
                )));
            }
        }
        if self.rows.is_empty() {
            return Err(invalid(
                "header only: the file has a header row but no data rows".into(),
            ));
        }
        for row in &self.rows {
            if row.cells.len() != n_cols {
                return Err(self.parse_err(
                    row,
                    format!(
                        "ragged row: expected {} fields (as the header), got {}",
                        n_cols,
                        row.cells.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Types the header columns `idx`: their descriptions and the row-major values.
    fn encode_columns(
        &self,
        idx: &[usize],
        opts: &EncodeOptions,
    ) -> Result<(Vec<Column>, Vec<Vec<f64>>)> {
        let mut columns = Vec::with_capacity(idx.len());
        let mut features = vec![Vec::with_capacity(idx.len()); self.rows.len()];
        for &j in idx {
            let hint = opts.hints.get(j).copied().unwrap_or(KindHint::Auto);
            let (column, values) = self.encode_column(j, hint, opts.strict_mixed)?;
            columns.push(column);
            for (row, v) in features.iter_mut().zip(values) {
                row.push(v);
            }
        }
        Ok((columns, features))
    }

    /// A user's table read as a classification task: a target of many distinct
    /// fractional numbers is a regression target, and a feature column that counts rows
    /// (distinct consecutive integers) is an ID; both would train a model on nonsense.
    fn check_user_columns(&self, target: usize, name: &str) -> Result<()> {
        let n = self.rows.len();
        if let Some(v) = self.numbers(target) {
            let distinct = distinct_count(&v);
            if v.iter().any(|x| x.fract() != 0.0) && distinct > 20.max(n / 2) {
                return Err(self.invalid(format!(
                    "target `{name}` has {distinct} distinct fractional values in {n} rows: it looks like a regression target \
                     and hyper generates classifiers; choose a column of class labels with --target"
                )));
            }
        }
        self.check_id_columns(target)
    }

    /// Column `j`'s cells as numbers, if every one parses (a ragged row that lacks the
    /// cell: `None`; the shape check reports it).
    fn numbers(&self, j: usize) -> Option<Vec<f64>> {
        self.rows
            .iter()
            .map(|r| r.cells.get(j)?.trim().parse::<f64>().ok())
            .collect()
    }

    /// A feature column that counts rows (distinct consecutive integers) is an ID.
    fn check_id_columns(&self, target: usize) -> Result<()> {
        let n = self.rows.len();
        if n >= 20 {
            for j in (0..self.header.len()).filter(|&j| j != target) {
                let Some(v) = self.numbers(j) else { continue };
                let mut ints: Vec<i64> = v
                    .iter()
                    .filter(|x| x.fract() == 0.0)
                    .map(|&x| x as i64)
                    .collect();
                ints.sort_unstable();
                ints.dedup();
                if ints.len() == n && ints[n - 1] - ints[0] == n as i64 - 1 {
                    return Err(self.invalid(format!(
                        "column `{}` holds {n} distinct consecutive integers ({}–{}), one per row: it looks like a row ID, \
                         which a model cannot learn from; remove the column from the file, or pass --drop-column {}",
                        self.header[j],
                        ints[0],
                        ints[n - 1],
                        self.header[j]
                    )));
                }
            }
        }
        Ok(())
    }

    fn encode_target(&self, opts: &EncodeOptions, name: &str) -> Result<(Vec<String>, Vec<usize>)> {
        let t = opts.target;
        for row in &self.rows {
            if is_missing(&row.cells[t]) {
                return Err(self.parse_err(
                    row,
                    format!(
                        "target `{name}` is missing (`{}`); every row needs a label",
                        row.cells[t]
                    ),
                ));
            }
        }
        let class_names = match &opts.class_names {
            Some(c) => c.clone(),
            None => {
                let mut c: Vec<String> = self
                    .rows
                    .iter()
                    .map(|r| r.cells[t].trim().to_string())
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                sort_levels(&mut c);
                c
            }
        };
        let index: BTreeMap<&str, usize> = class_names
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let mut labels = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            let v = row.cells[t].trim();
            match index.get(v) {
                Some(&i) => labels.push(i),
                None => {
                    return Err(self.parse_err(
                        row,
                        format!(
                            "target `{name}` has value `{v}`, not one of the declared classes {}",
                            class_names.join(", ")
                        ),
                    ))
                }
            }
        }
        if class_names.len() < 2 {
            return Err(DataError::Invalid {
                path: self.first_path(),
                msg: format!(
                    "target `{name}` has a single class ({}); classification needs at least two",
                    class_names.first().map(String::as_str).unwrap_or("none")
                ),
            });
        }
        Ok((class_names, labels))
    }

    fn encode_column(
        &self,
        j: usize,
        hint: KindHint,
        strict_mixed: bool,
    ) -> Result<(Column, Vec<f64>)> {
        let name = self.header[j].clone();
        let mut n_num = 0usize;
        let mut n_text = 0usize;
        let mut first_text: Option<&RawRow> = None;
        let mut distinct_numbers = HashSet::new();
        for row in &self.rows {
            let c = row.cells[j].trim();
            if is_missing(c) {
                continue;
            }
            if c.parse::<f64>().is_ok() {
                n_num += 1;
                if distinct_numbers.len() < MANY_NUMBERS {
                    distinct_numbers.insert(c);
                }
            } else {
                n_text += 1;
                first_text.get_or_insert(row);
            }
        }
        if n_num + n_text == 0 {
            return Err(DataError::Invalid {
                path: self.first_path(),
                msg: format!("column `{name}` is missing in every row"),
            });
        }
        let numeric = match hint {
            KindHint::Categorical => false,
            KindHint::Numeric => {
                if let Some(row) = first_text {
                    return Err(self.parse_err(
                        row,
                        format!(
                            "non-numeric value `{}` in numeric column `{name}`",
                            row.cells[j].trim()
                        ),
                    ));
                }
                true
            }
            KindHint::Auto => {
                // A few stray words among numbers, or words beside many distinct numbers
                // (a measurement, not a code list like `2,3,4,5more`): almost always a typo
                // or an unmarked missing value.
                let mostly_numbers = n_num * 10 >= (n_num + n_text) * 9
                    || (n_num > n_text && distinct_numbers.len() >= MANY_NUMBERS);
                if let (true, Some(row)) = (strict_mixed && mostly_numbers, first_text) {
                    return Err(self.parse_err(
                        row,
                        format!(
                            "non-numeric value `{}` in column `{name}`, whose other values are \
                             numbers ({n_num} numeric, {n_text} not); fix it, mark it missing \
                             (empty, ?, NA) or read the column as categorical (--categorical {name})",
                            row.cells[j].trim()
                        ),
                    ));
                }
                n_text == 0
            }
        };
        if numeric {
            let mut values = Vec::with_capacity(self.rows.len());
            for row in &self.rows {
                let c = row.cells[j].trim();
                if is_missing(c) {
                    values.push(f64::NAN);
                    continue;
                }
                let v: f64 = c.parse().map_err(|_| {
                    self.parse_err(
                        row,
                        format!("non-numeric value `{c}` in numeric column `{name}`"),
                    )
                })?;
                if !v.is_finite() {
                    return Err(self.parse_err(
                        row,
                        format!("non-finite value `{c}` in numeric column `{name}`"),
                    ));
                }
                if v.abs() > MAX_MAGNITUDE {
                    return Err(self.parse_err(
                        row,
                        format!(
                            "value `{c}` in numeric column `{name}` is beyond ±{MAX_MAGNITUDE:e}, \
                             where its mean and range overflow; rescale the column (e.g. log or \
                             other units)"
                        ),
                    ));
                }
                values.push(v);
            }
            return Ok((
                Column {
                    name,
                    kind: ColumnKind::Numeric,
                },
                values,
            ));
        }
        let mut levels: Vec<String> = self
            .rows
            .iter()
            .map(|r| r.cells[j].trim())
            .filter(|c| !is_missing(c))
            .map(str::to_string)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        sort_levels(&mut levels);
        let index: BTreeMap<&str, usize> = levels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        let values = self
            .rows
            .iter()
            .map(|r| {
                let c = r.cells[j].trim();
                if is_missing(c) {
                    f64::NAN
                } else {
                    index[c] as f64
                }
            })
            .collect();
        Ok((
            Column {
                name,
                kind: ColumnKind::Categorical { levels },
            },
            values,
        ))
    }
}
