//! CPU reference for the LoRA merge: the ground truth the GPU kernel is tested against.

use super::{check_lora_shapes, KernelError};

/// `W + scale·B·A` with W `[out, inn]`, B `[out, r]`, A `[r, inn]`, all row-major f32.
///
/// Sums over `r` in ascending order and scales once per element, the same order as the
/// CUDA kernel, so the two agree to rounding.
pub fn merge_lora_cpu(
    w: &[f32],
    b: &[f32],
    a: &[f32],
    out: usize,
    r: usize,
    inn: usize,
    scale: f32,
) -> Result<Vec<f32>, KernelError> {
    check_lora_shapes(w.len(), b.len(), a.len(), out, r, inn)?;
    let mut y = w.to_vec();
    if r == 0 || inn == 0 {
        return Ok(y);
    }
    let mut acc = vec![0f32; inn];
    for (y_row, b_row) in y.chunks_exact_mut(inn).zip(b.chunks_exact(r)) {
        acc.fill(0.0);
        // Row-of-A updates keep the inner loop contiguous (cache-friendly, vectorisable).
        for (&bk, a_row) in b_row.iter().zip(a.chunks_exact(inn)) {
            for (s, &av) in acc.iter_mut().zip(a_row) {
                *s += bk * av;
            }
        }
        for (yv, &s) in y_row.iter_mut().zip(&acc) {
            *yv += scale * s;
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv_lora_dims;
    use candle_core::{Device, Tensor};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use test_support::max_abs_diff_slices as max_abs_diff;

    fn rand_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn hand_computed_2x2() {
        // B·A = [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]]; ×0.5 = [[9.5,11],[21.5,25]].
        let w = [1.0, -1.0, 0.0, 2.0];
        let b = [1.0, 2.0, 3.0, 4.0];
        let a = [5.0, 6.0, 7.0, 8.0];
        let y = merge_lora_cpu(&w, &b, &a, 2, 2, 2, 0.5).unwrap();
        assert_eq!(y, vec![10.5, 10.0, 21.5, 27.0]);
    }

    #[test]
    fn rank_one_non_square() {
        // B [3,1] = [1,2,3], A [1,2] = [10, -1], s = 2, W = 0 → 2·outer(B, A).
        let y = merge_lora_cpu(&[0.0; 6], &[1.0, 2.0, 3.0], &[10.0, -1.0], 3, 1, 2, 2.0).unwrap();
        assert_eq!(y, vec![20.0, -2.0, 40.0, -4.0, 60.0, -6.0]);
    }

    #[test]
    fn matches_candle_on_random_shapes() {
        let mut rng = StdRng::seed_from_u64(7);
        let dev = Device::Cpu;
        for (out, r, inn) in [(1, 1, 1), (5, 3, 7), (16, 4, 33), (64, 8, 17), (3, 16, 128)] {
            let scale = rng.random_range(0.1f32..4.0);
            let w = rand_vec(&mut rng, out * inn);
            let b = rand_vec(&mut rng, out * r);
            let a = rand_vec(&mut rng, r * inn);
            let got = merge_lora_cpu(&w, &b, &a, out, r, inn, scale).unwrap();
            let wt = Tensor::from_vec(w, (out, inn), &dev).unwrap();
            let bt = Tensor::from_vec(b, (out, r), &dev).unwrap();
            let at = Tensor::from_vec(a, (r, inn), &dev).unwrap();
            let want = (wt + (bt.matmul(&at).unwrap() * scale as f64).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let d = max_abs_diff(&got, &want);
            assert!(d < 1e-5, "({out},{r},{inn}) s={scale}: max |diff| {d}");
        }
    }

    #[test]
    fn conv_case_matches_candle() {
        // W [4, 3, 3, 3], A [2, 3, 3, 3], B [4, 2]: merge on A viewed as [2, 27].
        let (o, r, c, kh, kw) = (4, 2, 3, 3, 3);
        let (out, r, inn) = conv_lora_dims(o, r, c, kh, kw).unwrap();
        assert_eq!((out, r, inn), (4, 2, 27));
        let mut rng = StdRng::seed_from_u64(11);
        let w = rand_vec(&mut rng, o * c * kh * kw);
        let b = rand_vec(&mut rng, o * r);
        let a = rand_vec(&mut rng, r * c * kh * kw);
        let got = merge_lora_cpu(&w, &b, &a, out, r, inn, 0.25).unwrap();
        let dev = Device::Cpu;
        let wt = Tensor::from_vec(w, (o, c, kh, kw), &dev).unwrap();
        let bt = Tensor::from_vec(b, (o, r), &dev).unwrap();
        let at = Tensor::from_vec(a, (r, c, kh, kw), &dev).unwrap();
        let delta = bt
            .matmul(&at.reshape((r, c * kh * kw)).unwrap())
            .unwrap()
            .reshape((o, c, kh, kw))
            .unwrap();
        let want = (wt + (delta * 0.25).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let d = max_abs_diff(&got, &want);
        assert!(d < 1e-5, "conv max |diff| {d}");
    }

    #[test]
    fn zero_rank_returns_w() {
        let w = [1.0, 2.0, 3.0];
        assert_eq!(
            merge_lora_cpu(&w, &[], &[], 1, 0, 3, 9.0).unwrap(),
            w.to_vec()
        );
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_operand() {
        let e = merge_lora_cpu(&[0.0; 4], &[0.0; 4], &[0.0; 3], 2, 2, 2, 1.0).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("A should be [2, 2] = 4 elements, got 3"),
            "{msg}"
        );
        let e = merge_lora_cpu(&[0.0; 5], &[0.0; 4], &[0.0; 4], 2, 2, 2, 1.0).unwrap_err();
        assert!(e.to_string().contains("W should be [2, 2]"), "{e}");
        let e = merge_lora_cpu(&[], &[], &[], usize::MAX, 2, 2, 1.0).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
    }
}
