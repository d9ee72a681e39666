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
            let mut vars = Vec::new();
            let mut pm = ParamMap::new();
            for (k, t) in theta.iter() {
                let v = Var::from_tensor(&t.detach())?;
                pm.insert(k.clone(), v.as_tensor().clone());
                vars.push((k.clone(), v));
            }
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
