//! Fused CPU ops for the BERT target: one pass per row instead of candle's chain of
//! elementwise ops and reductions, each allocating a tensor.
//!
//! - [`gelu_erf`] (inference, no backward): candle evaluates libm's scalar `erff` per
//!   element, about a tenth of a MiniLM forward on one core; here erf is a clamped rational
//!   function (Eigen's `fast_erf`, within 5e-7 of erf) evaluated eight lanes at a time with
//!   AVX2/FMA where the CPU has them.
//! - [`softmax_last_dim`], [`layer_norm`], [`gelu_erf_train`]: the same fusion **with a
//!   backward** (candle's fused softmax/layer-norm have none, DESIGN.md §10, so training
//!   used the slow composed ops). Each backward is itself one fused pass; gradients are
//!   first order (the generated weights get theirs through them; no grad of a grad).
//!   Rows run in parallel with rayon; reductions over rows (layer norm's weight and bias
//!   gradients) sum fixed-size row blocks in order, so results do not depend on the thread
//!   count. Other devices and dtypes fall back to the composed ops.
//! - [`linear`]: `x · wᵀ + b` for trainable `w`, `b` as one op whose backward returns
//!   all three gradients (two gemms and a column sum). candle's composed linear forms a
//!   full-size `[n, out]` gradient for the broadcast bias (zero-filled, then added into)
//!   before reducing it, and a transposed copy for the weight's.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, D,
};
use rayon::prelude::*;

// erf(x) ≈ x·P(x²)/Q(x²) on [-4, 4]; outside, erf is ±1 in f32. Eigen's coefficients,
// verbatim.
#[allow(clippy::excessive_precision)]
const ALPHA: [f32; 7] = [
    -1.60960333262415e-02,
    -2.95459980854025e-03,
    -7.34990630326855e-04,
    -5.69250639462346e-05,
    -2.10102402082508e-06,
    2.77068142495902e-08,
    -2.72614225801306e-10,
];
#[allow(clippy::excessive_precision)]
const BETA: [f32; 5] = [
    -1.42647390514189e-02,
    -7.37332916720468e-03,
    -1.68282697438203e-03,
    -2.13374055278905e-04,
    -1.45660718464996e-05,
];

/// erf(x/√2), the rational approximation above (the scalar twin of the AVX2 kernel).
fn erf_scaled(x: f32) -> f32 {
    let z = (x * std::f32::consts::FRAC_1_SQRT_2).clamp(-4.0, 4.0);
    let z2 = z * z;
    let p = ALPHA.iter().rev().fold(0.0, |acc, &c| acc * z2 + c) * z;
    let q = BETA.iter().rev().fold(0.0, |acc, &c| acc * z2 + c);
    p / q
}

fn gelu_scalar(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_scaled(x))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_avx2(src: &[f32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = src.len() / 8 * 8;
    let s = _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
    let (lo, hi) = (_mm256_set1_ps(-4.0), _mm256_set1_ps(4.0));
    let (half, one) = (_mm256_set1_ps(0.5), _mm256_set1_ps(1.0));
    let a = ALPHA.map(|c| _mm256_set1_ps(c));
    let b = BETA.map(|c| _mm256_set1_ps(c));
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= len of both slices.
        let x = unsafe { _mm256_loadu_ps(src.as_ptr().add(i)) };
        let z = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(x, s), lo), hi);
        let z2 = _mm256_mul_ps(z, z);
        let mut p = a[6];
        for c in a[..6].iter().rev() {
            p = _mm256_fmadd_ps(p, z2, *c);
        }
        let mut q = b[4];
        for c in b[..4].iter().rev() {
            q = _mm256_fmadd_ps(q, z2, *c);
        }
        let erf = _mm256_div_ps(_mm256_mul_ps(p, z), q);
        let y = _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, erf));
        // SAFETY: as for the load.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr().add(i), y) };
    }
    for (d, &x) in dst[n..].iter_mut().zip(&src[n..]) {
        *d = gelu_scalar(x);
    }
}

struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-inference"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(all), Some((start, end))) = (storage, layout.contiguous_offsets())
        else {
            candle_core::bail!("gelu-erf-inference takes a contiguous f32 tensor");
        };
        let src = &all[start..end];
        let mut dst = vec![0f32; src.len()];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { gelu_avx2(src, &mut dst) };
            return Ok((CpuStorage::F32(dst), layout.shape().clone()));
        }
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = gelu_scalar(x);
        }
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// Exact-erf GELU for frozen inference: the fast kernel for contiguous f32 on the CPU,
/// candle's `gelu_erf` otherwise.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && x.is_contiguous() {
        x.apply_op1_no_bwd(&GeluErf)
    } else {
        x.gelu_erf()
    }
}

/// The contiguous f32 slice a fused op reads.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op} takes contiguous f32 tensors"),
    }
}

pub(crate) fn fusable(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// Rows per parallel task: large enough to amortise rayon's scheduling.
const ROW_BLOCK: usize = 64;

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = slice(s, l, self.name())?;
        let d = l.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut dst = vec![0f32; src.len()];
        dst.par_chunks_mut(d * ROW_BLOCK)
            .zip(src.par_chunks(d * ROW_BLOCK))
            .for_each(|(o, x)| {
                for (o, x) in o.chunks_mut(d).zip(x.chunks(d)) {
                    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0f32;
                    for (o, &x) in o.iter_mut().zip(x) {
                        *o = (x - m).exp();
                        sum += *o;
                    }
                    let inv = 1.0 / sum;
                    o.iter_mut().for_each(|v| *v *= inv);
                }
            });
        Ok((CpuStorage::F32(dst), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&g.contiguous()?, &SoftmaxBwd)?))
    }
}

/// `dx = y ⊙ (g − Σ g⊙y)` per row.
struct SoftmaxBwd;

impl CustomOp2 for SoftmaxBwd {
    fn name(&self) -> &'static str {
        "fused-softmax-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let d = l1.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut dst = vec![0f32; y.len()];
        dst.par_chunks_mut(d * ROW_BLOCK)
            .zip(y.par_chunks(d * ROW_BLOCK).zip(g.par_chunks(d * ROW_BLOCK)))
            .for_each(|(o, (y, g))| {
                for (o, (y, g)) in o.chunks_mut(d).zip(y.chunks(d).zip(g.chunks(d))) {
                    let dot: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
                    for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                        *o = y * (g - dot);
                    }
                }
            });
        Ok((CpuStorage::F32(dst), l1.shape().clone()))
    }
}

/// Softmax over the last dimension, with a backward.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if fusable(&[x]) {
        return x.contiguous()?.apply_op1(Softmax);
    }
    let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Mean and 1/σ of one row (biased variance, as PyTorch's LayerNorm).
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

struct LayerNorm {
    eps: f32,
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let (w, b) = (slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let d = w.len();
        let mut dst = vec![0f32; x.len()];
        dst.par_chunks_mut(d * ROW_BLOCK)
            .zip(x.par_chunks(d * ROW_BLOCK))
            .for_each(|(o, x)| {
                for (o, x) in o.chunks_mut(d).zip(x.chunks(d)) {
                    let (mean, rstd) = row_stats(x, self.eps);
                    for (i, o) in o.iter_mut().enumerate() {
                        *o = (x[i] - mean) * rstd * w[i] + b[i];
                    }
                }
            });
        Ok((CpuStorage::F32(dst), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let rows = x.elem_count() / w.elem_count();
        // One pass writes dx's rows, then dw, then db: [rows + 2, d].
        let all = x.apply_op3_no_bwd(w, &g.contiguous()?, &LayerNormBwd { eps: self.eps })?;
        let dx = all.narrow(0, 0, rows)?.reshape(x.shape())?;
        Ok((Some(dx), Some(all.get(rows)?), Some(all.get(rows + 1)?)))
    }
}

/// With x̂ = (x − μ)·r and gw = g ⊙ w: `dx = r·(gw − mean(gw) − x̂·mean(gw ⊙ x̂))`,
/// `dw = Σ_rows g ⊙ x̂`, `db = Σ_rows g`.
struct LayerNormBwd {
    eps: f32,
}

impl CustomOp3 for LayerNormBwd {
    fn name(&self) -> &'static str {
        "fused-layer-norm-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let (w, g) = (slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let d = w.len();
        let rows = x.len() / d;
        let mut dx = vec![0f32; x.len() + 2 * d];
        let (dx_rows, _) = dx.split_at_mut(x.len());
        // Per block of rows: its partial dw and db, summed in block order below.
        let partial: Vec<Vec<f32>> = dx_rows
            .par_chunks_mut(d * ROW_BLOCK)
            .zip(x.par_chunks(d * ROW_BLOCK).zip(g.par_chunks(d * ROW_BLOCK)))
            .map(|(o, (x, g))| {
                let mut acc = vec![0f32; 2 * d];
                let mut xhat = vec![0f32; d];
                for (o, (x, g)) in o.chunks_mut(d).zip(x.chunks(d).zip(g.chunks(d))) {
                    let (mean, rstd) = row_stats(x, self.eps);
                    let (mut m1, mut m2) = (0f32, 0f32);
                    for i in 0..d {
                        xhat[i] = (x[i] - mean) * rstd;
                        let gw = g[i] * w[i];
                        m1 += gw;
                        m2 += gw * xhat[i];
                        acc[i] += g[i] * xhat[i];
                        acc[d + i] += g[i];
                    }
                    let (m1, m2) = (m1 / d as f32, m2 / d as f32);
                    for i in 0..d {
                        o[i] = rstd * (g[i] * w[i] - m1 - xhat[i] * m2);
                    }
                }
                acc
            })
            .collect();
        let sums = &mut dx[rows * d..];
        for p in &partial {
            sums.iter_mut().zip(p).for_each(|(s, v)| *s += v);
        }
        Ok((CpuStorage::F32(dx), Shape::from((rows + 2, d))))
    }
}

/// LayerNorm over the last dimension (`w`, `b`: `[d]`), with a backward for all three.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f32) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    if w.dims() != [d] || b.dims() != [d] {
        candle_core::bail!(
            "layer norm of {:?} takes a weight and bias of [{d}], got {:?} and {:?}",
            x.shape(),
            w.shape(),
            b.shape()
        );
    }
    if fusable(&[x, w, b]) {
        return x
            .contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, LayerNorm { eps });
    }
    candle_nn::ops::layer_norm_slow(x, w, b, eps)
}

/// `x · wᵀ + b` over any leading dims of `x` (`w` `[out, in]`, `b` `[out]`), with
/// gradients for `x`, `w` and `b` from one backward (see the module doc).
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let Some(&inp) = x.dims().last() else {
        candle_core::bail!("linear: scalar input");
    };
    let out = w.dim(0)?;
    if w.dims() != [out, inp] || b.dims() != [out] {
        candle_core::bail!(
            "linear of {:?} takes a weight of [out, {inp}] and a bias of [out], got {:?} and {:?}",
            x.shape(),
            w.shape(),
            b.shape()
        );
    }
    if !fusable(&[x, w, b]) {
        return crate::layers::linear(x, w, Some(b));
    }
    crate::frozen::apply_linear_op(x, w, Some(b), true)
}

/// Exact-erf GELU's derivative `Φ(x) + x·φ(x)`, from the same erf as [`gelu_scalar`] ([`erf_scaled`]).
fn gelu_grad_scalar(x: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf_scaled(x));
    let pdf = (-0.5 * x * x).exp()
        * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2);
    cdf + x * pdf
}

struct GeluErfTrain;

impl CustomOp1 for GeluErfTrain {
    fn name(&self) -> &'static str {
        "fused-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        GeluErf.cpu_fwd(s, l)
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&g.contiguous()?, &GeluErfBwd)?))
    }
}

/// `dx = g ⊙ gelu'(x)`.
struct GeluErfBwd;

impl CustomOp2 for GeluErfBwd {
    fn name(&self) -> &'static str {
        "fused-gelu-erf-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let mut dst = vec![0f32; x.len()];
        const BLOCK: usize = 4096;
        dst.par_chunks_mut(BLOCK)
            .zip(x.par_chunks(BLOCK).zip(g.par_chunks(BLOCK)))
            .for_each(|(o, (x, g))| {
                for ((o, &x), &g) in o.iter_mut().zip(x).zip(g) {
                    *o = g * gelu_grad_scalar(x);
                }
            });
        Ok((CpuStorage::F32(dst), l1.shape().clone()))
    }
}

/// Exact-erf GELU with a backward (the fast kernel of [`gelu_erf`] forward).
pub fn gelu_erf_train(x: &Tensor) -> Result<Tensor> {
    if fusable(&[x]) {
        return x.contiguous()?.apply_op1(GeluErfTrain);
    }
    x.gelu_erf()
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor, Var, D};

    use test_support::max_abs_diff as max_diff;

    fn randn(shape: &[usize], scale: f64) -> Tensor {
        (Tensor::randn(0f32, 1f32, shape, &Device::Cpu).unwrap() * scale).unwrap()
    }

    /// Forward value and the gradients of `Σ y ⊙ r` (a random upstream gradient) w.r.t.
    /// `inputs`, for `f` applied to them.
    fn value_and_grads(
        inputs: &[Tensor],
        r: &Tensor,
        f: impl Fn(&[Tensor]) -> Tensor,
    ) -> (Tensor, Vec<Tensor>) {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&ts);
        let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
        let g = vars.iter().map(|v| grads.get(v).unwrap().clone()).collect();
        (y, g)
    }

    /// The trainable linear against candle's composed one: values, and the gradients of
    /// x, w and b (w and b relative to their size: they sum 150 rows).
    #[test]
    fn linear_matches_the_composed_linear_and_its_gradients() {
        let (x, w, b) = (
            randn(&[3, 50, 37], 1.0),
            randn(&[11, 37], 1.0),
            randn(&[11], 1.0),
        );
        let r = randn(&[3, 50, 11], 1.0);
        let inputs = [x, w, b];
        let (y1, g1) =
            value_and_grads(&inputs, &r, |t| super::linear(&t[0], &t[1], &t[2]).unwrap());
        let (y2, g2) = value_and_grads(&inputs, &r, |t| {
            crate::layers::linear(&t[0], &t[1], Some(&t[2])).unwrap()
        });
        assert_eq!(y1.dims(), [3, 50, 11]);
        assert!(max_diff(&y1, &y2) < 1e-5, "value {}", max_diff(&y1, &y2));
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert_eq!(a.dims(), b.dims());
            let scale = b
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let d = max_diff(a, b);
            assert!(d <= 1e-5 * scale.max(1.0), "gradient {i}: {d}");
        }
        // db is the column sum of the upstream gradient r.
        let want = r.sum((0, 1)).unwrap();
        assert!(max_diff(&g1[2], &want) < 1e-4);
        assert!(super::linear(&inputs[0], &inputs[1].t().unwrap(), &inputs[2]).is_err());
    }

    /// Value and every gradient within 1e-5 of the composed (slow) path. Shapes: a
    /// hidden size that is not a multiple of 8 and more rows than one block, with a
    /// non-contiguous input for softmax (a transpose, as attention scores can be).
    #[test]
    fn fused_ops_match_the_composed_ops_and_their_gradients() {
        let tol = 1e-5;
        // Layer norm: [3, 50, 37] → 150 rows of 37.
        let (x, w, b) = (
            randn(&[3, 50, 37], 2.0),
            randn(&[37], 1.0),
            randn(&[37], 1.0),
        );
        let r = randn(&[3, 50, 37], 1.0);
        let (y1, g1) = value_and_grads(&[x.clone(), w.clone(), b.clone()], &r, |t| {
            super::layer_norm(&t[0], &t[1], &t[2], 1e-12).unwrap()
        });
        let (y2, g2) = value_and_grads(&[x, w, b], &r, |t| {
            candle_nn::ops::layer_norm_slow(&t[0], &t[1], &t[2], 1e-12).unwrap()
        });
        assert!(
            max_diff(&y1, &y2) < tol,
            "layer norm value {}",
            max_diff(&y1, &y2)
        );
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            // dw and db sum 150 rows: compare relative to their size.
            let scale = b
                .abs()
                .unwrap()
                .max_keepdim(D::Minus1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .max(1.0);
            assert!(
                max_diff(a, b) / scale < tol,
                "layer norm grad {i}: {}",
                max_diff(a, b)
            );
        }
        // Softmax over a transposed [2, 4, 70, 65] (rows of 70 after the transpose).
        let s = randn(&[2, 4, 70, 65], 3.0).transpose(2, 3).unwrap();
        let r = randn(&[2, 4, 65, 70], 1.0);
        let (y1, g1) = value_and_grads(std::slice::from_ref(&s), &r, |t| {
            super::softmax_last_dim(&t[0]).unwrap()
        });
        let (y2, g2) = value_and_grads(&[s], &r, |t| {
            candle_nn::ops::softmax(&t[0], D::Minus1).unwrap()
        });
        assert!(
            max_diff(&y1, &y2) < tol,
            "softmax value {}",
            max_diff(&y1, &y2)
        );
        assert!(
            max_diff(&g1[0], &g2[0]) < tol,
            "softmax grad {}",
            max_diff(&g1[0], &g2[0])
        );
        // GELU on [-6, 6] and beyond erf's clamp.
        let x = randn(&[5, 1001], 3.0);
        let r = randn(&[5, 1001], 1.0);
        let (y1, g1) = value_and_grads(std::slice::from_ref(&x), &r, |t| {
            super::gelu_erf_train(&t[0]).unwrap()
        });
        let (y2, g2) = value_and_grads(&[x], &r, |t| t[0].gelu_erf().unwrap());
        assert!(
            max_diff(&y1, &y2) < tol,
            "gelu value {}",
            max_diff(&y1, &y2)
        );
        assert!(
            max_diff(&g1[0], &g2[0]) < tol,
            "gelu grad {}",
            max_diff(&g1[0], &g2[0])
        );
    }

    /// The weight and bias gradients sum row blocks in a fixed order: the same bits with
    /// one thread and with many.
    #[test]
    fn layer_norm_gradients_do_not_depend_on_the_thread_count() {
        let (x, w, b) = (randn(&[700, 33], 1.0), randn(&[33], 1.0), randn(&[33], 1.0));
        let r = randn(&[700, 33], 1.0);
        let run = || {
            value_and_grads(&[x.clone(), w.clone(), b.clone()], &r, |t| {
                super::layer_norm(&t[0], &t[1], &t[2], 1e-5).unwrap()
            })
            .1
        };
        let many = run();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(run);
        for (a, b) in many.iter().zip(&one) {
            assert_eq!(a.to_vec2::<f32>().ok(), b.to_vec2::<f32>().ok());
            assert_eq!(
                a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
        }
    }

    #[test]
    fn layer_norm_refuses_a_weight_of_the_wrong_size() {
        let x = Tensor::zeros((2, 8), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::ones(7, DType::F32, &Device::Cpu).unwrap();
        let e = super::layer_norm(&x, &w, &w, 1e-5).unwrap_err().to_string();
        assert!(e.contains("weight and bias of [8]"), "{e}");
    }

    /// Within 2e-6 of candle's libm-based GELU on [-10, 10], tails (len % 8) included.
    #[test]
    fn matches_candle_gelu_erf() {
        let xs: Vec<f32> = (0..20_003).map(|i| -10.0 + i as f32 * 1e-3).collect();
        let x = Tensor::from_vec(xs, 20_003, &Device::Cpu).unwrap();
        let d = (super::gelu_erf(&x).unwrap() - x.gelu_erf().unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 2e-6, "max |diff| {d}");
    }
}
