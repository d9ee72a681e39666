//! `batched_matmul`: `a · b` over leading batch dims, the batches spread over rayon's
//! threads, with a backward.
//!
//! Why: candle's CPU matmul runs the batches of a batched product one after another and
//! splits each single gemm over the threads. Attention's products are many small ones
//! (MiniLM at batch 32: 384 products of `[128, 32]·[32, 128]` per layer), too small for a
//! gemm to split well, so the cores mostly wait on each other. Here each batch is one
//! single-threaded gemm and rayon hands whole batches to the threads. The per-batch gemm
//! is the call candle makes (same strides, same kernel), so every output element is the
//! same sum in the same order.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// One operand's view: the offset of batch 0 and the strides (batch, row, column).
#[derive(Clone, Copy)]
struct View {
    start: usize,
    batch: usize,
    rs: usize,
    cs: usize,
}

impl View {
    /// `None` where the leading dims do not fold into one batch stride (the wrapper then
    /// copies the operand contiguous first).
    fn of(l: &Layout) -> Option<Self> {
        let (dims, st) = (l.dims(), l.stride());
        let r = dims.len();
        let lead: Vec<(usize, usize)> = (0..r - 2)
            .filter(|&i| dims[i] > 1)
            .map(|i| (dims[i], st[i]))
            .collect();
        if lead.windows(2).any(|w| w[0].1 != w[1].1 * w[1].0) {
            return None;
        }
        Some(Self {
            start: l.start_offset(),
            batch: lead.last().map_or(0, |&(_, s)| s),
            rs: st[r - 2],
            cs: st[r - 1],
        })
    }
}

/// `dst = a · b` for an `m×k` and a `k×n` operand given as (slice from its first element,
/// row stride, column stride), `dst` row-major `m×n`: the gemm call candle's CPU matmul
/// makes, so results match it bit for bit under the same parallelism.
pub(crate) fn sgemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (a, a_rs, a_cs): (&[f32], usize, usize),
    (b, b_rs, b_cs): (&[f32], usize, usize),
    parallelism: gemm::Parallelism,
) {
    let last = |rs: usize, cs: usize, rows: usize, cols: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(dst.len() >= m * n, "sgemm: destination too short");
    assert!(
        m * n * k == 0 || (a.len() > last(a_rs, a_cs, m, k) && b.len() > last(b_rs, b_cs, k, n)),
        "sgemm: an operand's strides reach past its slice"
    );
    // SAFETY: the assertions above keep every index gemm forms (row·rs + col·cs) inside
    // `a`, `b` and `dst`; `dst` is written row-major (row stride n, column stride 1).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

struct BatchedMatmul;

impl CustomOp2 for BatchedMatmul {
    fn name(&self) -> &'static str {
        "batched-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(a), CpuStorage::F32(b)) = (s1, s2) else {
            candle_core::bail!("batched_matmul: only f32 operands are supported");
        };
        let (da, db) = (l1.dims(), l2.dims());
        let r = da.len();
        let (m, k, n) = (da[r - 2], da[r - 1], db[r - 1]);
        let batches: usize = da[..r - 2].iter().product();
        let (Some(va), Some(vb)) = (View::of(l1), View::of(l2)) else {
            candle_core::bail!("batched_matmul: batch dims must fold into one stride");
        };
        let mut dst = vec![0f32; batches * m * n];
        if m * n > 0 {
            dst.par_chunks_mut(m * n).enumerate().for_each(|(i, out)| {
                let (pa, pb) = (&a[va.start + i * va.batch..], &b[vb.start + i * vb.batch..]);
                sgemm(
                    (m, n, k),
                    out,
                    (pa, va.rs, va.cs),
                    (pb, vb.rs, vb.cs),
                    gemm::Parallelism::None,
                );
            });
        }
        let mut shape = da[..r - 1].to_vec();
        shape.push(n);
        Ok((CpuStorage::F32(dst), Shape::from(shape)))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let ga = batched_matmul(grad, &b.t()?)?;
        let gb = batched_matmul(&a.t()?, grad)?;
        Ok((Some(ga), Some(gb)))
    }
}

/// `a · b` for `a` `[.., m, k]` and `b` `[.., k, n]` with the same leading dims (no
/// broadcasting), as `Tensor::matmul`, differentiable in both operands. Falls back to
/// `matmul` off the CPU, for non-f32 operands, rank < 3, or mismatched batch dims.
pub fn batched_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (da, db) = (a.dims(), b.dims());
    let r = da.len();
    if r < 3
        || db.len() != r
        || da[..r - 2] != db[..r - 2]
        || da[r - 1] != db[r - 2]
        || !a.device().is_cpu()
        || a.dtype() != candle_core::DType::F32
        || b.dtype() != candle_core::DType::F32
    {
        return a.matmul(b);
    }
    let fold = |t: &Tensor| -> Result<Tensor> {
        match View::of(t.layout()) {
            Some(_) => Ok(t.clone()),
            None => t.contiguous(),
        }
    };
    fold(a)?.apply_op2(&fold(b)?, BatchedMatmul)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
    }

    #[test]
    fn matches_matmul_bit_for_bit_on_attention_shapes() -> Result<()> {
        let d = Device::Cpu;
        // q · kᵀ with k a transposed view, as attention forms it; then probs · v.
        let q = Tensor::randn(0f32, 1., (3, 4, 17, 8), &d)?;
        let k = Tensor::randn(0f32, 1., (3, 4, 17, 8), &d)?;
        let ours = batched_matmul(&q, &k.t()?)?;
        let theirs = q.matmul(&k.t()?)?;
        assert_eq!(ours.dims(), &[3, 4, 17, 17]);
        assert_eq!(
            ours.flatten_all()?.to_vec1::<f32>()?,
            theirs.flatten_all()?.to_vec1::<f32>()?
        );
        // One entry by hand: Σ_d q[2,1,5,d]·k[2,1,9,d].
        let q4 = q.get(2)?.get(1)?.get(5)?.to_vec1::<f32>()?;
        let k4 = k.get(2)?.get(1)?.get(9)?.to_vec1::<f32>()?;
        let want: f32 = q4.iter().zip(&k4).map(|(a, b)| a * b).sum();
        let got = ours.get(2)?.get(1)?.get(5)?.get(9)?.to_scalar::<f32>()?;
        assert!((want - got).abs() < 1e-5, "{want} vs {got}");
        Ok(())
    }

    #[test]
    fn gradients_match_matmul() -> Result<()> {
        let d = Device::Cpu;
        let a = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 3, 5, 7), &d)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 3, 7, 4), &d)?)?;
        let w = Tensor::randn(0f32, 1., (2, 3, 5, 4), &d)?;
        let g1 = (batched_matmul(a.as_tensor(), b.as_tensor())? * &w)?
            .sum_all()?
            .backward()?;
        let g2 = (a.as_tensor().matmul(b.as_tensor())? * &w)?
            .sum_all()?
            .backward()?;
        for v in [&a, &b] {
            let (x, y) = (g1.get(v).expect("grad"), g2.get(v).expect("grad"));
            assert_eq!(x.dims(), v.dims());
            assert!(max_diff(x, y)? < 1e-5, "gradient differs");
        }
        Ok(())
    }

    #[test]
    fn strided_and_broadcast_batches_and_fallbacks() -> Result<()> {
        let d = Device::Cpu;
        // Leading dims that do not fold (a transposed batch pair, which candle's matmul
        // rejects) are copied first.
        let a = Tensor::randn(0f32, 1., (4, 3, 5, 6), &d)?.transpose(0, 1)?;
        let b = Tensor::randn(0f32, 1., (3, 4, 6, 2), &d)?;
        assert!(a.matmul(&b).is_err());
        let want = a.contiguous()?.matmul(&b)?;
        assert!(max_diff(&batched_matmul(&a, &b)?, &want)? < 1e-6);
        // A batch broadcast with stride 0 reads the same matrix for every batch.
        let one = Tensor::randn(0f32, 1., (1, 6, 2), &d)?;
        let wide = one.broadcast_as((3, 6, 2))?;
        let x = Tensor::randn(0f32, 1., (3, 5, 6), &d)?;
        let got = batched_matmul(&x, &wide)?;
        assert!(max_diff(&got, &x.matmul(&wide.contiguous()?)?)? < 1e-6);
        // Rank 2 and f64 take candle's matmul.
        let m = Tensor::randn(0f64, 1., (3, 4), &d)?;
        assert_eq!(batched_matmul(&m, &m.t()?)?.dims(), &[3, 3]);
        Ok(())
    }
}
