//! The meta-gradient of Algorithm 1 (DESIGN.md §4), shared by every modality's trainer:
//! given generated tensors θ = P(r) (graph kept) and the target's loss as a function of
//! its tensors, the gradient that reaches the generator.

use std::collections::BTreeMap;

use anyhow::anyhow;
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use hyper_core::optim::{Adam, AdamConfig, Moments};
use hyper_core::ParamMap;

use crate::config::MetaGrad;

/// The target optimizer whose one step gives δ: Adam with AMSGrad and L2 decay, as the
/// reference code's inner loop (tabular and NLP meta-training alike).
pub fn target_optimizer(lr: f64, weight_decay: f64) -> AdamConfig {
    AdamConfig::adam(lr, weight_decay, true)
}

/// Steps 2–3 (δ mode): one target-optimizer step on a detached copy of `theta` gives θ';
/// δ = θ − θ' is backpropagated through the surrogate `Σ_k sum(θ_k ⊙ δ_k)` (whose
/// gradient with respect to θ_k is δ_k). Direct mode backpropagates `loss(θ)` itself.
/// `target_state` carries the target optimizer's moments between calls (δ mode).
/// Returns the target loss and the gradients, or `None` when the loss is not finite.
pub fn meta_gradients(
    mode: MetaGrad,
    theta: &ParamMap,
    target: &AdamConfig,
    target_state: &mut BTreeMap<String, Moments>,
    loss: impl FnOnce(&ParamMap) -> anyhow::Result<Tensor>,
) -> anyhow::Result<(f64, Option<GradStore>)> {
    match mode {
        MetaGrad::Delta => {
            let (pm, vars) = theta.to_vars()?;
            let l = loss(&pm)?;
            let loss_v = l.to_scalar::<f32>()? as f64;
            if !loss_v.is_finite() {
                return Ok((loss_v, None));
            }
            let mut opt = Adam::new(vars.clone(), target.clone());
            opt.state = std::mem::take(target_state);
            opt.step(&l.backward()?)?;
            *target_state = std::mem::take(&mut opt.state);
            let mut sur: Option<Tensor> = None;
            for (k, v) in &vars {
                let t = theta.get(k)?;
                let delta = (t.detach() - v.as_tensor())?.detach();
                let term = (t * delta)?.sum_all()?;
                sur = Some(match sur {
                    Some(s) => (s + term)?,
                    None => term,
                });
            }
            let sur = sur.ok_or_else(|| anyhow!("target has no parameters"))?;
            Ok((loss_v, Some(sur.backward()?)))
        }
        MetaGrad::Direct => {
            let l = loss(theta)?;
            let loss_v = l.to_scalar::<f32>()? as f64;
            if !loss_v.is_finite() {
                return Ok((loss_v, None));
            }
            Ok((loss_v, Some(l.backward()?)))
        }
    }
}

/// The gradient of each of `vars` in `grads` (`None` where the graph does not reach it).
pub fn grads_for(vars: &[(String, Var)], grads: &GradStore) -> Vec<Option<Tensor>> {
    vars.iter().map(|(_, v)| grads.get(v).cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A one-matrix "generator": θ_w = A·e, so every gradient is hand-computable.
    struct Setup {
        a: Var,
        e: Vec<f32>,
        y: [f32; 2],
    }

    impl Setup {
        fn new() -> Self {
            let a = [0.3f32, -0.2, 0.5, 0.1, 0.4, -0.6];
            Self {
                a: Var::from_tensor(&Tensor::from_slice(&a, (2, 3), &Device::Cpu).unwrap())
                    .unwrap(),
                e: vec![1.0, -2.0, 0.5],
                y: [1.0, 0.5],
            }
        }

        fn theta(&self) -> ParamMap {
            let e = Tensor::from_slice(&self.e, (3, 1), &Device::Cpu).unwrap();
            let w = self.a.as_tensor().matmul(&e).unwrap().squeeze(1).unwrap();
            let mut pm = ParamMap::new();
            pm.insert("w", w);
            pm
        }

        /// θ_w as host values, and the target loss Σ(θ − y)² 's gradient 2(θ − y).
        fn theta_and_grad(&self) -> (Vec<f64>, Vec<f64>) {
            let a = self.a.as_tensor().to_vec2::<f32>().unwrap();
            let th: Vec<f64> = a
                .iter()
                .map(|r| r.iter().zip(&self.e).map(|(x, e)| (x * e) as f64).sum())
                .collect();
            let g = th
                .iter()
                .zip(self.y)
                .map(|(t, y)| 2.0 * (t - y as f64))
                .collect();
            (th, g)
        }

        fn run(
            &self,
            mode: MetaGrad,
            cfg: &AdamConfig,
            state: &mut BTreeMap<String, Moments>,
        ) -> Vec<Vec<f32>> {
            let y = Tensor::new(&self.y, &Device::Cpu).unwrap();
            let (_, grads) = meta_gradients(mode, &self.theta(), cfg, state, |pm| {
                Ok(pm.get("w")?.sub(&y)?.sqr()?.sum_all()?)
            })
            .unwrap();
            grads
                .unwrap()
                .get(&self.a)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
        }

        /// dL/dA for a per-output weight `d` on θ: d ⊗ e.
        fn outer(&self, d: &[f64]) -> Vec<Vec<f64>> {
            d.iter()
                .map(|di| self.e.iter().map(|e| di * *e as f64).collect())
                .collect()
        }
    }

    fn assert_close(got: &[Vec<f32>], want: &[Vec<f64>], tol: f64) {
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!((*g as f64 - w).abs() <= tol, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn delta_gradient_is_one_adam_step_chained_through_the_generator() {
        let s = Setup::new();
        let cfg = AdamConfig::adam(0.01, 0.0, true);
        let (_, g) = s.theta_and_grad();
        // Adam's first step from fresh moments: θ' = θ − lr·g/(|g| + eps), so δ = lr·g/(|g| + eps).
        let delta: Vec<f64> = g.iter().map(|g| 0.01 * g / (g.abs() + 1e-8)).collect();
        let got = s.run(MetaGrad::Delta, &cfg, &mut BTreeMap::new());
        assert_close(&got, &s.outer(&delta), 1e-6);
        // Direct mode backpropagates the loss itself: dL/dA = g ⊗ e.
        let got = s.run(MetaGrad::Direct, &cfg, &mut BTreeMap::new());
        assert_close(&got, &s.outer(&g), 1e-5);
    }

    #[test]
    fn target_moments_carry_between_calls_until_cleared() {
        let s = Setup::new();
        let cfg = AdamConfig::adam(0.01, 0.0, true);
        let mut state = BTreeMap::new();
        s.run(MetaGrad::Delta, &cfg, &mut state);
        assert_eq!(state["w"].step, 1);
        // A second batch (another target) with the first call's moments carried over:
        // δ is Adam's second step, computed here by hand (amsgrad keeps the larger v).
        let mut s2 = Setup::new();
        s2.y = [-3.0, 4.0];
        let carried = s2.run(MetaGrad::Delta, &cfg, &mut state);
        assert_eq!(state["w"].step, 2);
        let ((_, g1), (_, g2)) = (s.theta_and_grad(), s2.theta_and_grad());
        let (b1, b2) = (0.9f64, 0.999f64);
        let delta: Vec<f64> = g1
            .iter()
            .zip(&g2)
            .map(|(g1, g2)| {
                let m = b1 * (1.0 - b1) * g1 + (1.0 - b1) * g2;
                let v1 = (1.0 - b2) * g1 * g1;
                let v = (b2 * v1 + (1.0 - b2) * g2 * g2).max(v1);
                let (mh, vh) = (m / (1.0 - b1 * b1), v / (1.0 - b2 * b2));
                0.01 * mh / (vh.sqrt() + 1e-8)
            })
            .collect();
        assert_close(&carried, &s2.outer(&delta), 1e-6);
        // Cleared (what the trainer does at each (task, requirement) pass): a fresh step.
        state.clear();
        let fresh: Vec<f64> = g2.iter().map(|g| 0.01 * g / (g.abs() + 1e-8)).collect();
        assert_close(
            &s2.run(MetaGrad::Delta, &cfg, &mut state),
            &s2.outer(&fresh),
            1e-6,
        );
    }
}
