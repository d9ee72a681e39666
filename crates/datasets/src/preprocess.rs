//! Preprocessing (in progress).
use crate::{DataError, Result, Table};
use serde::{Deserialize, Serialize};

pub const DEFAULT_SEED: u64 = 2024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preprocessor {}

impl Preprocessor {
    pub fn transform_table(&self, t: &Table) -> Result<Vec<f32>> {
        Err(DataError::Invalid {
            path: t.source.clone().into(),
            msg: "not implemented yet".into(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Split {
    pub x: Vec<f32>,
    pub y: Vec<usize>,
    pub n_features: usize,
}

#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Split,
    pub val: Split,
    pub test: Split,
    pub preprocessor: Preprocessor,
}

pub fn split_and_fit(t: &Table, _seed: u64) -> Result<Splits> {
    Err(DataError::Invalid {
        path: t.source.clone().into(),
        msg: "not implemented yet".into(),
    })
}
