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
    /// Trainable copies of these tensors (detached from any graph): the vars, in key
    /// order as an optimizer takes them, and a map over their tensors for the forward pass.
    /// Finetuning a generated model and Algorithm 1's target step both start here.
    pub fn to_vars(&self) -> candle_core::Result<(Self, Vec<(String, candle_core::Var)>)> {
        let mut pm = Self::new();
        let mut vars = Vec::with_capacity(self.len());
        for (k, t) in self.iter() {
            let v = candle_core::Var::from_tensor(&t.detach())?;
            pm.insert(k.clone(), v.as_tensor().clone());
            vars.push((k.clone(), v));
        }
        Ok((pm, vars))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A generator's trainable tensors by name: the `Var`s (for optimizers, in creation
/// order), lookup of their tensors during a forward pass, and checkpoint I/O.
pub struct VarStore {
    vars: Vec<(String, candle_core::Var)>,
    tensors: std::collections::HashMap<String, Tensor>,
    /// Who owns them, for error messages ("LoRA generator").
    owner: &'static str,
}

impl VarStore {
    pub fn new(vars: Vec<(String, candle_core::Var)>, owner: &'static str) -> Self {
        let tensors = vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        Self {
            vars,
            tensors,
            owner,
        }
    }

    pub fn vars(&self) -> &[(String, candle_core::Var)] {
        &self.vars
    }

    pub fn num_params(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The tensor of var `name` (graph-tracked), or an error naming it.
    pub fn get(&self, name: &str) -> candle_core::Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| {
            candle_core::Error::Msg(format!("{}: missing tensor {name}", self.owner))
        })
    }

    /// Detached copies of every var, for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
            .collect()
    }

    /// Sets every var from a checkpoint's tensors (each must be there, with its shape).
    pub fn load_state(
        &self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> anyhow::Result<()> {
        crate::checkpoint::restore_vars(
            &self.vars,
            tensors,
            self.owner,
            "a checkpoint of another generator config",
        )
    }
}
