//! The Model Generator's output: which target to build and its dimensions (DESIGN.md §1).

use serde::{Deserialize, Serialize};

/// Allowed `task` values.
pub const TASKS: &[&str] = &[
    "tabular_cls",
    "tabular_reg",
    "seq_cls",
    "seq_reg",
    "img_cls",
    "s2s_gen",
];
/// Allowed `arch` values.
pub const ARCHS: &[&str] = &[
    "mlp_small",
    "mlp_base",
    "mlp_large",
    "distilbert-base-uncased",
    "bert-base-uncased",
    "resnet50",
    "resnet152",
    "mobilenet_v3_small",
];
/// Allowed `scale` values (dataset size bucket).
pub const SCALES: &[&str] = &["small", "medium", "large"];

/// `{task, in_dim, out_dim, scale, arch}`; `in_dim` is required for tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_dim: Option<usize>,
    pub out_dim: usize,
    pub scale: String,
    pub arch: String,
}

impl Metadata {
    /// Strict schema check; the error names the offending field and the allowed values.
    pub fn validate(&self) -> Result<(), String> {
        check_enum("task", &self.task, TASKS)?;
        check_enum("arch", &self.arch, ARCHS)?;
        check_enum("scale", &self.scale, SCALES)?;
        if self.out_dim == 0 {
            return Err("field `out_dim` must be a positive integer, got 0".into());
        }
        match (self.task.as_str(), self.in_dim) {
            (task @ ("tabular_cls" | "tabular_reg"), None) => {
                Err(format!("field `in_dim` is required when task is {task}"))
            }
            (_, Some(0)) => Err("field `in_dim` must be a positive integer, got 0".into()),
            _ => Ok(()),
        }
    }
}

fn check_enum(field: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "field `{field}` has value `{value}`; allowed: {}",
            allowed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iris() -> Metadata {
        Metadata {
            task: "tabular_cls".into(),
            in_dim: Some(4),
            out_dim: 3,
            scale: "small".into(),
            arch: "mlp_small".into(),
        }
    }

    #[test]
    fn valid_and_invalid_fields() {
        assert!(iris().validate().is_ok());
        let e = Metadata {
            arch: "gpt5".into(),
            ..iris()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("`arch`") && e.contains("resnet50"), "{e}");
        let e = Metadata {
            in_dim: None,
            ..iris()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("in_dim"), "{e}");
        let e = Metadata {
            out_dim: 0,
            ..iris()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("out_dim"), "{e}");
    }
}
