//! Adam / AdamW with optional AMSGrad, computed on host slices. The tensors here are
//! tiny (an MLP, generator heads), where one fused loop beats a dozen tensor ops, and the
//! state is public so checkpoints can save and resume it exactly.

use std::collections::BTreeMap;

use candle_core::{backprop::GradStore, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    #[serde(default = "beta1")]
    pub beta1: f64,
    #[serde(default = "beta2")]
    pub beta2: f64,
    #[serde(default = "eps")]
    pub eps: f64,
    #[serde(default)]
    pub weight_decay: f64,
    /// AdamW-style decoupled decay (true) or PyTorch `Adam`'s L2 term added to the grad.
    #[serde(default)]
    pub decoupled: bool,
    #[serde(default)]
    pub amsgrad: bool,
}

fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
fn eps() -> f64 {
    1e-8
}

impl AdamConfig {
    pub fn adam(lr: f64, weight_decay: f64, amsgrad: bool) -> Self {
        Self {
            lr,
            beta1: beta1(),
            beta2: beta2(),
            eps: eps(),
            weight_decay,
            decoupled: false,
            amsgrad,
        }
    }
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self {
            decoupled: true,
            ..Self::adam(lr, weight_decay, false)
        }
    }
}

/// Per-variable moments; `step` counts the updates this variable received (PyTorch keeps
/// a per-parameter step, which matters when some parameters get no gradient).
#[derive(Debug, Clone, Default)]
pub struct Moments {
    pub step: u64,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub vmax: Vec<f32>,
}

pub struct Adam {
    pub cfg: AdamConfig,
    vars: Vec<(String, Var)>,
    pub state: BTreeMap<String, Moments>,
}

impl Adam {
    pub fn new(vars: Vec<(String, Var)>, cfg: AdamConfig) -> Self {
        Self {
            cfg,
            vars,
            state: BTreeMap::new(),
        }
    }

    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Forget all moments (the target optimizer is reset every task epoch).
    pub fn reset(&mut self) {
        self.state.clear();
    }

    /// One update from a backward pass; variables without a gradient are skipped, as in
    /// PyTorch.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let gs: Vec<Option<Tensor>> = self
            .vars
            .iter()
            .map(|(_, v)| grads.get(v).cloned())
            .collect();
        self.step_grads(&gs, 1.0)
    }

    /// One update with explicit gradients (aligned with `vars`), each scaled by `scale`
    /// (used for global-norm clipping).
    pub fn step_grads(&mut self, grads: &[Option<Tensor>], scale: f64) -> Result<()> {
        let c = self.cfg.clone();
        for ((name, var), g) in self.vars.iter().zip(grads) {
            let Some(g) = g else { continue };
            let shape = var.shape().clone();
            let mut p = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let g = g.flatten_all()?.to_vec1::<f32>()?;
            let st = self.state.entry(name.clone()).or_insert_with(|| Moments {
                step: 0,
                m: vec![0.0; p.len()],
                v: vec![0.0; p.len()],
                vmax: if c.amsgrad {
                    vec![0.0; p.len()]
                } else {
                    Vec::new()
                },
            });
            if g.len() != p.len() || st.m.len() != p.len() {
                candle_core::bail!(
                    "Adam: `{name}` has {} values but its gradient has {} and its saved moments {} \
                     (state from another model? reset it between tasks)",
                    p.len(),
                    g.len(),
                    st.m.len()
                );
            }
            st.step += 1;
            let t = st.step as i32;
            let bc1 = 1.0 - c.beta1.powi(t);
            let bc2 = 1.0 - c.beta2.powi(t);
            let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
            let step_size = (c.lr / bc1) as f32;
            let bc2_sqrt = bc2.sqrt() as f32;
            let eps = c.eps as f32;
            let wd = c.weight_decay as f32;
            let lr = c.lr as f32;
            let scale = scale as f32;
            for i in 0..p.len() {
                let mut gi = g[i] * scale;
                if c.decoupled {
                    p[i] *= 1.0 - lr * wd;
                } else if wd != 0.0 {
                    gi += wd * p[i];
                }
                st.m[i] = b1 * st.m[i] + (1.0 - b1) * gi;
                st.v[i] = b2 * st.v[i] + (1.0 - b2) * gi * gi;
                let v = if c.amsgrad {
                    st.vmax[i] = st.vmax[i].max(st.v[i]);
                    st.vmax[i]
                } else {
                    st.v[i]
                };
                let denom = v.sqrt() / bc2_sqrt + eps;
                p[i] -= step_size * st.m[i] / denom;
            }
            var.set(&Tensor::from_vec(p, shape, var.device())?)?;
        }
        Ok(())
    }

    /// Saves moments as `{prefix}{var}.{m,v,vmax}` tensors plus `{prefix}{var}.step`.
    pub fn state_tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (name, var) in &self.vars {
            let Some(st) = self.state.get(name) else {
                continue;
            };
            let shape = var.shape().clone();
            let dev = var.device();
            out.push((
                format!("{prefix}{name}.m"),
                Tensor::from_vec(st.m.clone(), &shape, dev)?,
            ));
            out.push((
                format!("{prefix}{name}.v"),
                Tensor::from_vec(st.v.clone(), &shape, dev)?,
            ));
            if !st.vmax.is_empty() {
                out.push((
                    format!("{prefix}{name}.vmax"),
                    Tensor::from_vec(st.vmax.clone(), &shape, dev)?,
                ));
            }
            out.push((
                format!("{prefix}{name}.step"),
                Tensor::new(&[st.step as i64], dev)?,
            ));
        }
        Ok(out)
    }

    /// Restores what [`Adam::state_tensors`] wrote.
    pub fn load_state(
        &mut self,
        prefix: &str,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        self.state.clear();
        for (name, _) in &self.vars {
            let Some(step) = tensors.get(&format!("{prefix}{name}.step")) else {
                continue;
            };
            let get = |k: &str| -> Result<Vec<f32>> {
                tensors
                    .get(&format!("{prefix}{name}.{k}"))
                    .ok_or_else(|| {
                        candle_core::Error::Msg(format!(
                            "optimizer state `{prefix}{name}.{k}` missing"
                        ))
                    })?
                    .flatten_all()?
                    .to_vec1::<f32>()
            };
            let vmax = if self.cfg.amsgrad {
                get("vmax")?
            } else {
                Vec::new()
            };
            self.state.insert(
                name.clone(),
                Moments {
                    step: step.to_vec1::<i64>()?[0] as u64,
                    m: get("m")?,
                    v: get("v")?,
                    vmax,
                },
            );
        }
        Ok(())
    }
}

/// Global L2 norm of a set of gradients.
pub fn global_norm(grads: &[Option<Tensor>]) -> Result<f64> {
    let mut s = 0f64;
    for g in grads.iter().flatten() {
        s += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    Ok(s.sqrt())
}

/// The factor that scales gradients down to `max_norm` (PyTorch's `clip_grad_norm_`).
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    let c = max_norm / (norm + 1e-6);
    c.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Moments of another shape (state from another model) are an error, not a panic.
    #[test]
    fn mismatched_state_is_an_error() {
        let dev = Device::Cpu;
        let v = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &dev).unwrap()).unwrap();
        let mut opt = Adam::new(vec![("w".into(), v)], AdamConfig::adam(0.1, 0.0, true));
        opt.state.insert(
            "w".into(),
            Moments {
                step: 1,
                m: vec![0.0; 3],
                v: vec![0.0; 3],
                vmax: vec![0.0; 3],
            },
        );
        let g = Tensor::new(&[0.5f32, 1.0], &dev).unwrap();
        let e = opt.step_grads(&[Some(g)], 1.0).unwrap_err().to_string();
        assert!(
            e.contains("`w` has 2 values") && e.contains("moments 3"),
            "{e}"
        );
    }

    /// First Adam step moves each weight by exactly lr·sign(g) (bias-corrected m/√v = ±1).
    #[test]
    fn first_step_is_lr_times_sign() {
        let dev = Device::Cpu;
        let v = Var::from_tensor(&Tensor::new(&[1f32, -2.0, 3.0], &dev).unwrap()).unwrap();
        let mut opt = Adam::new(
            vec![("w".into(), v.clone())],
            AdamConfig::adam(0.1, 0.0, true),
        );
        let g = Tensor::new(&[0.5f32, -4.0, 0.0], &dev).unwrap();
        opt.step_grads(&[Some(g)], 1.0).unwrap();
        let p = v.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (p[0] - 0.9).abs() < 1e-5 && (p[1] + 1.9).abs() < 1e-5 && (p[2] - 3.0).abs() < 1e-6,
            "{p:?}"
        );
        let st = opt.state_tensors("o.").unwrap();
        let map: std::collections::HashMap<_, _> = st.into_iter().collect();
        let mut opt2 = Adam::new(vec![("w".into(), v)], AdamConfig::adam(0.1, 0.0, true));
        opt2.load_state("o.", &map).unwrap();
        assert_eq!(opt2.state["w"].step, 1);
        assert_eq!(opt2.state["w"].m, opt.state["w"].m);
        assert!((clip_scale(1.0, 0.25) - 0.25).abs() < 1e-5);
    }

    // PyTorch 2.15.0's `Adam(lr=0.05, weight_decay=0.01, amsgrad=True)` and `AdamW(...)`,
    // five steps on the gradients below; printed by
    // `python3 crates/hyper-core/tests/fixtures/adam_amsgrad_reference.py`.
    const P0: [f32; 4] = [0.5, -1.5, 2.0, 0.0];
    const GRADS: [[f32; 4]; 5] = [
        [4.0, -3.0, 0.5, 1e-3],
        [0.1, 0.2, -0.1, 0.0],
        [-0.05, 2.5, 0.3, -1e-3],
        [0.01, -0.01, 0.02, 0.5],
        [1.0, 1.0, -1.0, 0.0],
    ];
    const TORCH_ADAM_L2: [[f32; 4]; 5] = [
        [0.45, -1.45, 1.95, -0.049_999_494],
        [0.415_543, -1.418_846_4, 1.922_586_8, -0.063_316_375],
        [0.389_286_6, -1.420_567, 1.887_895_3, -0.042_764_15],
        [0.367_688_92, -1.421_795_8, 1.857_700_8, -0.071_753_696],
        [0.343_323_9, -1.429_477_8, 1.867_244_2, -0.096_205_04],
    ];
    const TORCH_ADAMW: [[f32; 4]; 5] = [
        [0.449_75, -1.449_25, 1.949, -0.049_999_494],
        [0.415_108_8, -1.417_572_9, 1.922_474_1, -0.083_460_17],
        [0.388_709_87, -1.418_907_4, 1.888_285, -0.079_125_11],
        [0.366_999_2, -1.419_796_5, 1.859_155_3, -0.108_131_91],
        [0.342_529_62, -1.427_163_8, 1.869_587_1, -0.132_616_37],
    ];

    /// AMSGrad over several steps, where v falls below its running max, matches PyTorch
    /// for both weight-decay forms (L2 into the gradient; decoupled).
    #[test]
    fn amsgrad_matches_pytorch_over_five_steps() {
        let dev = Device::Cpu;
        for (cfg, want) in [
            (AdamConfig::adam(0.05, 0.01, true), TORCH_ADAM_L2),
            (
                AdamConfig {
                    amsgrad: true,
                    ..AdamConfig::adamw(0.05, 0.01)
                },
                TORCH_ADAMW,
            ),
        ] {
            let v = Var::from_tensor(&Tensor::new(&P0, &dev).unwrap()).unwrap();
            let mut opt = Adam::new(vec![("w".into(), v.clone())], cfg.clone());
            for (t, (g, want)) in GRADS.iter().zip(want).enumerate() {
                opt.step_grads(&[Some(Tensor::new(g, &dev).unwrap())], 1.0)
                    .unwrap();
                let p = v.as_tensor().to_vec1::<f32>().unwrap();
                for (a, b) in p.iter().zip(want) {
                    assert!(
                        (a - b).abs() < 2e-6,
                        "{cfg:?} step {}: {p:?} vs {want:?}",
                        t + 1
                    );
                }
            }
            // The last step's v (1.0 then 0.0 for the 4th coordinate) is below its max.
            let st = &opt.state["w"];
            assert!(st.vmax[3] > st.v[3], "{:?} vs {:?}", st.vmax, st.v);
        }
    }
}
