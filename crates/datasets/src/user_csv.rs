//! User CSV loader (in progress).
use crate::{DataError, Result, Table};
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    pub target: Option<String>,
    pub delimiter: Option<u8>,
}

pub fn load_csv(path: &Path, _opts: &CsvOptions) -> Result<Table> {
    Err(DataError::Invalid {
        path: path.to_path_buf(),
        msg: "CSV loader not implemented yet".into(),
    })
}
