//! Small data files under `crates/test-support/fixtures/`, so no crate's tests read another
//! crate's test directory.

use std::path::{Path, PathBuf};

/// `fixtures/<name>`.
pub fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Six Iris rows (4 numeric features, `species` last, two rows per class).
pub fn tiny_iris_csv() -> PathBuf {
    path("tiny_iris.csv")
}
