//! UCI tabular loaders (in progress).
use crate::{DataError, Result, Table};

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

pub fn load_builtin(name: &str) -> Result<Table> {
    Err(DataError::Unavailable {
        name: name.to_string(),
        reason: "loader not implemented yet".into(),
    })
}
