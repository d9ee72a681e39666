//! `frozen_linear`: `x · Wᵀ + b` for a weight that is never trained (a base model under
//! LoRA), whose backward computes only the input's gradient.
//!
//! Why: candle's matmul backward computes the gradient of *both* operands whether or not
//! anything needs them (`backprop.rs`, `Op::Matmul`), so under LoRA every frozen linear
//! pays a second full-size matmul per training step for a weight gradient that is then
//! dropped: about a third of a MiniLM LoRA step on this machine. As a custom op the
//! weight is a detached operand whose gradient is never formed, and the backward is one
//! matmul `∂y · W`. The same op with its weight gradients switched on is
//! [`crate::fused::linear`], for trained linears under fused training.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// `x · wᵀ (+ b)` with `x` `[n, in]` contiguous, `w` `[out, in]` (any strides) and `b`
/// `[out]`. The forward is the single gemm candle's `x.matmul(&w.t())` makes, called on
/// the buffers directly (no copy in or out), then the bias added row by row: the same
/// f32 sums as candle's `broadcast_add`, so both paths give bit-identical outputs.
/// Folding the bias in matters for the backward: candle's `Add` forms a full-size
/// gradient for *both* operands, so a constant bias broadcast to `[n, out]` costs a
/// zero-filled `[n, out]` tensor plus an add per step that is then thrown away.
/// `trained`: the backward also returns `w`'s and `b`'s gradients (`fused::linear`);
/// otherwise `x`'s alone (`frozen_linear`).
pub(crate) struct LinearOp {
    pub(crate) trained: bool,
}

impl LinearOp {
    pub(crate) fn forward(
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(w)) = (xs, ws) else {
            candle_core::bail!("linear op: only f32 inputs are supported");
        };
        let Some((a, _)) = xl.contiguous_offsets() else {
            candle_core::bail!("linear op: input must be contiguous");
        };
        let ((n, inp), (out, _)) = (xl.shape().dims2()?, wl.shape().dims2()?);
        let (w_rs, w_cs) = (wl.stride()[0], wl.stride()[1]);
        let threads = candle_core::utils::get_num_threads();
        let par = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        let mut y = vec![0f32; n * out];
        // wᵀ's (row, col) = w's (col, row): its strides swap.
        crate::bmm::sgemm(
            (n, out, inp),
            &mut y,
            (&x[a..], inp, 1),
            (&w[wl.start_offset()..], w_cs, w_rs),
            par,
        );
        if let Some((bs, bl)) = bias {
            let CpuStorage::F32(b) = bs else {
                candle_core::bail!("linear op: only an f32 bias is supported");
            };
            let (Some((lo, hi)), [len]) = (bl.contiguous_offsets(), bl.dims()) else {
                candle_core::bail!("linear op: the bias must be a contiguous vector");
            };
            if *len != out {
                candle_core::bail!("linear op: bias of {len} for {out} outputs");
            }
            let b = &b[lo..hi];
            for row in y.chunks_exact_mut(out.max(1)) {
                for (v, bj) in row.iter_mut().zip(b) {
                    *v += bj;
                }
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Self::forward(xs, xl, ws, wl, None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dw = if self.trained {
            Some(grad_res.t()?.matmul(x)?)
        } else {
            None
        };
        Ok((Some(grad_res.matmul(w)?), dw))
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        if self.trained {
            "fused-linear"
        } else {
            "frozen-linear"
        }
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Self::forward(xs, xl, ws, wl, Some((bs, bl)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = Some(grad_res.matmul(w)?);
        if !self.trained {
            return Ok((dx, None, None));
        }
        Ok((dx, Some(grad_res.t()?.matmul(x)?), Some(grad_res.sum(0)?)))
    }
}

/// `x · wᵀ + b` over any leading dims of `x`, with `w` `[out, in]` (PyTorch layout) and
/// `b` treated as constants: gradients reach `x` only. Falls back to the plain op where
/// no gradient flows (`x` tracks none), off the CPU, for non-f32 input, or when `w` or
/// `b` is a trainable variable.
pub fn frozen_linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    if !x.track_op()
        || w.is_variable()
        || b.is_some_and(|b| b.is_variable())
        || !x.device().is_cpu()
        || x.dtype() != candle_core::DType::F32
    {
        return crate::layers::linear(x, w, b);
    }
    let b = b.map(Tensor::detach);
    apply_linear_op(x, &w.detach(), b.as_ref(), false)
}

/// [`LinearOp`] over any leading dims of `x`: flattened to `[n, in]` rows, applied,
/// restored. Shared by [`frozen_linear`] and [`crate::fused::linear`].
pub(crate) fn apply_linear_op(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    trained: bool,
) -> Result<Tensor> {
    let dims = x.dims();
    let Some((&inp, lead)) = dims.split_last() else {
        candle_core::bail!("linear: scalar input");
    };
    let x = x
        .reshape((lead.iter().product::<usize>(), inp))?
        .contiguous()?;
    let op = LinearOp { trained };
    let y = match b {
        Some(b) => x.apply_op3(w, &b.contiguous()?, op)?,
        None => x.apply_op2(w, op)?,
    };
    let mut shape = lead.to_vec();
    shape.push(w.dim(0)?);
    y.reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_linear_values_and_input_gradient() -> Result<()> {
        let d = Device::Cpu;
        let w = Tensor::randn(0f32, 1., (5, 7), &d)?;
        let b = Tensor::randn(0f32, 1., 5, &d)?;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 3, 7), &d)?)?;
        let target = Tensor::randn(0f32, 1., (2, 3, 5), &d)?;
        let ours = frozen_linear(x.as_tensor(), &w, Some(&b))?;
        let plain = crate::layers::linear(x.as_tensor(), &w, Some(&b))?;
        assert_eq!(ours.to_vec3::<f32>()?, plain.to_vec3::<f32>()?);
        let g1 = (ours * &target)?.sum_all()?.backward()?;
        let g2 = (plain * &target)?.sum_all()?.backward()?;
        let (a, c) = (g1.get(&x).expect("grad"), g2.get(&x).expect("grad"));
        let diff = (a - c)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "input gradient differs by {diff}");
        // dL/dx = target · W, by hand for one entry.
        let t = target.to_vec3::<f32>()?;
        let wv = w.to_vec2::<f32>()?;
        let want: f32 = (0..5).map(|o| t[1][2][o] * wv[o][4]).sum();
        let got = a.to_vec3::<f32>()?[1][2][4];
        assert!((want - got).abs() < 1e-4, "{want} vs {got}");
        Ok(())
    }

    #[test]
    fn the_constant_bias_gets_no_full_size_gradient() -> Result<()> {
        let d = Device::Cpu;
        let w = Tensor::randn(0f32, 1., (5, 7), &d)?;
        let b = Tensor::randn(0f32, 1., 5, &d)?;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (4, 7), &d)?)?;
        // candle's composed linear leaves, beside x's gradient, one for the constant
        // weight (its matmul backward) and a full-size [4, 5] one for the broadcast
        // constant bias; the folded op leaves x's alone.
        let plain = crate::layers::linear(x.as_tensor(), &w, Some(&b.detach()))?;
        let plain_grads = plain.sum_all()?.backward()?;
        let mut shapes: Vec<Vec<usize>> = plain_grads
            .get_ids()
            .filter_map(|id| plain_grads.get_id(*id))
            .map(|g| g.dims().to_vec())
            .collect();
        shapes.sort();
        assert_eq!(shapes, [vec![4, 5], vec![4, 7], vec![7, 5]]);
        let ours = frozen_linear(x.as_tensor(), &w, Some(&b))?;
        let grads = ours.sum_all()?.backward()?;
        assert_eq!(grads.get_ids().count(), 1);
        // d(sum y)/dx[i][k] = Σ_o w[o][k].
        let wv = w.to_vec2::<f32>()?;
        let got = grads.get(&x).expect("grad").to_vec2::<f32>()?;
        for row in &got {
            for (k, g) in row.iter().enumerate() {
                let want: f32 = (0..5).map(|o| wv[o][k]).sum();
                assert!((want - g).abs() < 1e-5, "{want} vs {g}");
            }
        }
        Ok(())
    }

    #[test]
    fn strided_input_and_trainable_weight_fall_back_correctly() -> Result<()> {
        let d = Device::Cpu;
        let w = Tensor::randn(0f32, 1., (4, 6), &d)?;
        let x = Tensor::randn(0f32, 1., (6, 3), &d)?.t()?; // non-contiguous [3, 6]
        let diff = (frozen_linear(&x, &w, None)? - crate::layers::linear(&x, &w, None)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-5);
        let wv = Var::from_tensor(&w)?;
        let y = frozen_linear(&x, wv.as_tensor(), None)?;
        let g = y.sum_all()?.backward()?;
        assert!(
            g.get(&wv).is_some(),
            "a trainable weight still gets its gradient"
        );
        Ok(())
    }
}
