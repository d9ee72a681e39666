//! Tabular data: the raw typed table every tabular loader produces.

use serde::{Deserialize, Serialize};

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
}

impl Table {
    pub fn n_rows(&self) -> usize {
        self.labels.len()
    }
    pub fn n_features(&self) -> usize {
        self.columns.len()
    }
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }
}
