//! Inference-only CPU kernels (no backward).
//!
//! `gelu_erf`: candle evaluates libm's scalar `erff` per element, about a tenth of a MiniLM
//! forward on one core; here erf is a clamped rational function (Eigen's `fast_erf`, within
//! 5e-7 of erf) evaluated eight lanes at a time with AVX2/FMA where the CPU has them.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

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

fn gelu_scalar(x: f32) -> f32 {
    let z = (x * std::f32::consts::FRAC_1_SQRT_2).clamp(-4.0, 4.0);
    let z2 = z * z;
    let p = ALPHA.iter().rev().fold(0.0, |acc, &c| acc * z2 + c) * z;
    let q = BETA.iter().rev().fold(0.0, |acc, &c| acc * z2 + c);
    0.5 * x * (1.0 + p / q)
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

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

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
