//! What a target model needs from outside (`ParamSpec`) and the tensors that supply it
//! (`ParamMap`). Names mirror PyTorch state-dict paths so exported files load 1:1.

use std::collections::BTreeMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// Why a tensor is generated and how its head is shared across tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ParamRole {
    /// Same shape for every task: one shared generator head.
    Static,
    /// Shape depends on the task (first/last MLP layer, classifier): one head per task.
    DynamicPerTask,
    /// One LoRA factor (`a` or `b`) of the base weight `base`.
    Lora { base: String, r: usize, alpha: f64 },
}

/// One externally supplied tensor: its state-dict name, shape and role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub role: ParamRole,
}

impl ParamSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Tensors keyed by state-dict name. Generated tensors keep the generator's graph.
#[derive(Debug, Clone, Default)]
pub struct ParamMap(pub BTreeMap<String, Tensor>);

impl ParamMap {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, name: impl Into<String>, t: Tensor) {
        self.0.insert(name.into(), t);
    }
    /// The tensor for `name`, or an error naming the missing key and what is present.
    pub fn get(&self, name: &str) -> candle_core::Result<&Tensor> {
        self.0.get(name).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "parameter `{name}` missing; have: {}",
                self.0.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.0.iter()
    }
    /// The same tensors without their graph (generated weights served or stored).
    pub fn detached(&self) -> Self {
        Self(
            self.0
                .iter()
                .map(|(k, t)| (k.clone(), t.detach()))
                .collect(),
        )
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
