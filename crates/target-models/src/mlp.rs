//! The tabular target: an MLP whose every weight comes in through a `ParamMap`
//! (`mlp.{i}.weight` `[out, in]`, `mlp.{i}.bias` `[out]`, PyTorch layout), plus the LoRA
//! variant used by the tabular LoRA baseline.

use candle_core::{Device, Result, Tensor};
use hyper_core::layers::{default_bound, dropout, linear, uniform};
use hyper_core::{Metadata, ParamMap, ParamRole, ParamSpec};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::TargetModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// The reference code's MLP: a stack of linears with nothing in between.
    None,
    Relu,
    Gelu,
    Tanh,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::None => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Gelu => x.gelu_erf(),
            Activation::Tanh => x.tanh(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    /// Hidden widths; `[8, 8, 8, 8, 8]` is the reference Linear(in,8), 4×Linear(8,8), Linear(8,out).
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// Dropout after each hidden activation (0 = none).
    pub dropout: f32,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: vec![32, 32],
            activation: Activation::Relu,
            dropout: 0.0,
        }
    }
}

/// Stateless MLP: the config fixes depth/width; dims come from `Metadata`.
#[derive(Debug, Clone)]
pub struct Mlp {
    pub cfg: MlpConfig,
}

impl Mlp {
    /// Appends this MLP's layers to `g` after the value `input` (one `Gemm` per linear,
    /// PyTorch's `[out, in]` weights with `transB = 1`, the activation between layers);
    /// returns the logits' name. The same computation as [`TargetModel::forward`] in eval
    /// mode.
    pub fn onnx_nodes(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        params: &ParamMap,
        input: &str,
    ) -> anyhow::Result<String> {
        use crate::onnx::Attr;
        let mut h = input.to_string();
        let n = self.n_layers();
        for i in 0..n {
            let w = g.tensor(
                &format!("mlp.{i}.weight"),
                params.get(&format!("mlp.{i}.weight"))?,
            )?;
            let b = g.tensor(
                &format!("mlp.{i}.bias"),
                params.get(&format!("mlp.{i}.bias"))?,
            )?;
            h = g.node(
                "Gemm",
                &[&h, &w, &b],
                &format!("linear_{i}"),
                &[("transB", Attr::Int(1))],
            );
            if i + 1 < n {
                let out = format!("act_{i}");
                h = match self.cfg.activation {
                    Activation::None => h,
                    Activation::Relu => g.node("Relu", &[&h], &out, &[]),
                    Activation::Tanh => g.node("Tanh", &[&h], &out, &[]),
                    Activation::Gelu => {
                        // 0.5 x (1 + erf(x / √2)): Gelu itself is opset 20.
                        let c = g.constant(
                            &format!("gelu_c_{i}"),
                            &[],
                            &[std::f32::consts::FRAC_1_SQRT_2],
                        )?;
                        let half = g.constant(&format!("gelu_half_{i}"), &[], &[0.5])?;
                        let one = g.constant(&format!("gelu_one_{i}"), &[], &[1.0])?;
                        let s = g.node("Mul", &[&h, &c], &format!("gelu_s_{i}"), &[]);
                        let e = g.node("Erf", &[&s], &format!("gelu_e_{i}"), &[]);
                        let e1 = g.node("Add", &[&e, &one], &format!("gelu_e1_{i}"), &[]);
                        let xe = g.node("Mul", &[&h, &e1], &format!("gelu_xe_{i}"), &[]);
                        g.node("Mul", &[&xe, &half], &out, &[])
                    }
                };
            }
        }
        Ok(h)
    }

    pub fn new(cfg: MlpConfig) -> Self {
        Self { cfg }
    }

    pub fn n_layers(&self) -> usize {
        self.cfg.hidden.len() + 1
    }

    fn dims(&self, meta: &Metadata) -> Vec<usize> {
        let mut d = vec![meta.in_dim.unwrap_or(0)];
        d.extend(&self.cfg.hidden);
        d.push(meta.out_dim);
        d
    }

    /// PyTorch-default random init (`U(±1/√fan_in)` for weight and bias).
    pub fn init_params<R: Rng>(
        &self,
        meta: &Metadata,
        rng: &mut R,
        dev: &Device,
    ) -> Result<ParamMap> {
        let mut p = ParamMap::new();
        for s in self.param_spec(meta) {
            let fan_in = self.dims(meta)[layer_of(&s.name)];
            p.insert(
                s.name.clone(),
                uniform(rng, &s.shape, default_bound(fan_in), dev)?,
            );
        }
        Ok(p)
    }

    /// LoRA forward (PEFT semantics): `y = W x + b + (alpha/r)·B(A(dropout(x)))` on every
    /// linear; `base` holds the frozen `mlp.{i}.*`, `lora` holds `mlp.{i}.lora_A.weight|lora_B.weight` (PEFT keys).
    pub fn forward_lora(
        &self,
        base: &ParamMap,
        lora: &ParamMap,
        x: &Tensor,
        scale: f64,
        lora_dropout: f32,
        train: bool,
    ) -> Result<Tensor> {
        let mut h = x.clone();
        let n = self.n_layers();
        for i in 0..n {
            let w = base.get(&format!("mlp.{i}.weight"))?;
            let b = base.get(&format!("mlp.{i}.bias"))?;
            let a = lora.get(&format!("mlp.{i}.lora_A.weight"))?;
            let bb = lora.get(&format!("mlp.{i}.lora_B.weight"))?;
            let delta = linear(
                &linear(&dropout(&h, lora_dropout, train)?, a, None)?,
                bb,
                None,
            )?;
            h = (linear(&h, w, Some(b))? + (delta * scale)?)?;
            if i + 1 < n {
                h = self.cfg.activation.apply(&h)?;
                h = dropout(&h, self.cfg.dropout, train)?;
            }
        }
        Ok(h)
    }

    /// LoRA factors for every linear: A `[r, in]` kaiming-uniform, B `[out, r]` zeros
    /// (PEFT's init, so training starts at the base model).
    pub fn init_lora<R: Rng>(
        &self,
        meta: &Metadata,
        r: usize,
        rng: &mut R,
        dev: &Device,
    ) -> Result<ParamMap> {
        let d = self.dims(meta);
        let mut p = ParamMap::new();
        for i in 0..self.n_layers() {
            p.insert(
                format!("mlp.{i}.lora_A.weight"),
                uniform(rng, &[r, d[i]], default_bound(d[i]), dev)?,
            );
            p.insert(
                format!("mlp.{i}.lora_B.weight"),
                Tensor::zeros((d[i + 1], r), candle_core::DType::F32, dev)?,
            );
        }
        Ok(p)
    }
}

fn layer_of(name: &str) -> usize {
    name.split('.')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

impl TargetModel for Mlp {
    /// First and last layers depend on the task's in/out dims: one head per task; the
    /// middle layers are the same for every task: shared heads.
    fn param_spec(&self, meta: &Metadata) -> Vec<ParamSpec> {
        let d = self.dims(meta);
        let n = self.n_layers();
        let mut v = Vec::with_capacity(2 * n);
        for i in 0..n {
            let role = if i == 0 || i + 1 == n {
                ParamRole::DynamicPerTask
            } else {
                ParamRole::Static
            };
            v.push(ParamSpec {
                name: format!("mlp.{i}.weight"),
                shape: vec![d[i + 1], d[i]],
                role: role.clone(),
            });
            v.push(ParamSpec {
                name: format!("mlp.{i}.bias"),
                shape: vec![d[i + 1]],
                role,
            });
        }
        v
    }

    fn forward(&self, params: &ParamMap, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        let n = self.n_layers();
        for i in 0..n {
            let w = params.get(&format!("mlp.{i}.weight"))?;
            let b = params.get(&format!("mlp.{i}.bias"))?;
            h = linear(&h, w, Some(b))?;
            if i + 1 < n {
                h = self.cfg.activation.apply(&h)?;
                h = dropout(&h, self.cfg.dropout, train)?;
            }
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use test_support::tabular_meta as meta;

    #[test]
    fn paper_mlp_specs_and_forward() {
        let m = Mlp::new(MlpConfig {
            hidden: vec![8; 5],
            activation: Activation::None,
            dropout: 0.0,
        });
        let s = m.param_spec(&meta(4, 3));
        assert_eq!(s.len(), 12);
        assert_eq!(s[0].shape, vec![8, 4]);
        assert_eq!(s[10].shape, vec![3, 8]);
        assert_eq!(s[2].role, ParamRole::Static);
        assert_eq!(s[11].role, ParamRole::DynamicPerTask);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let p = m.init_params(&meta(4, 3), &mut rng, &Device::Cpu).unwrap();
        let x = Tensor::ones((5, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(m.forward(&p, &x, false).unwrap().dims(), &[5, 3]);
        // LoRA with B = 0 reproduces the base model exactly.
        let l = m.init_lora(&meta(4, 3), 4, &mut rng, &Device::Cpu).unwrap();
        let a = m.forward(&p, &x, false).unwrap().to_vec2::<f32>().unwrap();
        let b = m
            .forward_lora(&p, &l, &x, 2.0, 0.1, false)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(a, b);
    }

    /// Hand-computed: one hidden unit with ReLU.
    #[test]
    fn relu_forward_by_hand() {
        let m = Mlp::new(MlpConfig {
            hidden: vec![1],
            activation: Activation::Relu,
            dropout: 0.0,
        });
        let dev = Device::Cpu;
        let mut p = ParamMap::new();
        p.insert("mlp.0.weight", Tensor::new(&[[1f32, -1.0]], &dev).unwrap());
        p.insert("mlp.0.bias", Tensor::new(&[0.5f32], &dev).unwrap());
        p.insert(
            "mlp.1.weight",
            Tensor::new(&[[2f32], [-1.0]], &dev).unwrap(),
        );
        p.insert("mlp.1.bias", Tensor::new(&[0f32, 1.0], &dev).unwrap());
        let x = Tensor::new(&[[1f32, 3.0], [3.0, 1.0]], &dev).unwrap();
        let y = m.forward(&p, &x, false).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, vec![vec![0.0, 1.0], vec![5.0, -1.5]]);
    }
}
