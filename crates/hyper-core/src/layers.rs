//! Functional layers: weights are arguments, so the same code runs on generated tensors
//! (graph kept back to the generator) and on trainable `Var`s.

use std::cell::RefCell;

use candle_core::{DType, Device, Result, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// `y = x · wᵀ + b` with PyTorch's `[out, in]` weight layout, over any number of leading
/// dimensions of `x` (`[n, in]`, `[batch, seq, in]`, ...).
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let y = if x.rank() == 2 {
        x.matmul(&w.t()?)?
    } else {
        let dims = x.dims();
        let inp = *dims
            .last()
            .ok_or_else(|| candle_core::Error::Msg("linear: scalar input".into()))?;
        let lead = &dims[..dims.len() - 1];
        let mut out = lead.to_vec();
        out.push(w.dim(0)?);
        x.reshape((lead.iter().product::<usize>(), inp))?
            .matmul(&w.t()?)?
            .reshape(out)?
    };
    match b {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

thread_local! {
    /// Per-thread dropout RNG and the values drawn from it since seeding; `None` falls
    /// back to candle's (unseedable on CPU) RNG.
    static DROPOUT_RNG: RefCell<Option<(StdRng, u64)>> = const { RefCell::new(None) };
}

/// Seeds this thread's dropout masks, so a training run that calls this first repeats
/// exactly (candle's CPU RNG cannot be seeded).
pub fn seed_dropout(seed: u64) {
    seed_dropout_at(seed, 0);
}

/// Seeds the dropout RNG and skips the first `draws` values: a run resumed from a
/// checkpoint that recorded [`dropout_draws`] continues the very mask stream an
/// uninterrupted run would have used.
pub fn seed_dropout_at(seed: u64, draws: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..draws {
        rng.random::<f32>();
    }
    DROPOUT_RNG.with(|r| *r.borrow_mut() = Some((rng, draws)));
}

/// Values drawn from this thread's seeded dropout RNG so far (0 when unseeded).
pub fn dropout_draws() -> u64 {
    DROPOUT_RNG.with(|r| r.borrow().as_ref().map_or(0, |(_, n)| *n))
}

/// A 64-bit key for a counter-based dropout mask ([`crate::attention::attention_probs`]):
/// two values of this thread's seeded dropout stream (counted in [`dropout_draws`], so a
/// resumed run skips them like any other), else from rand's thread RNG.
pub fn dropout_key() -> u64 {
    let seeded = DROPOUT_RNG.with(|r| {
        r.borrow_mut().as_mut().map(|(rng, drawn)| {
            *drawn += 2;
            (u64::from(rng.random::<u32>()) << 32) | u64::from(rng.random::<u32>())
        })
    });
    seeded.unwrap_or_else(rand::random)
}

/// A dropout probability must lie in [0, 1).
pub(crate) fn check_dropout_p(p: f32) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        candle_core::bail!("dropout probability must be in [0, 1), got {p}");
    }
    Ok(())
}

/// Inverted dropout; identity when `!train` or `p == 0`. Masks come from the RNG set by
/// [`seed_dropout`] on this thread, else from candle's.
pub fn dropout(x: &Tensor, p: f32, train: bool) -> Result<Tensor> {
    if !train || p <= 0.0 {
        return Ok(x.clone());
    }
    check_dropout_p(p)?;
    let keep = 1.0 / (1.0 - p);
    let mask = DROPOUT_RNG.with(|r| {
        r.borrow_mut().as_mut().map(|(rng, drawn)| {
            *drawn += x.elem_count() as u64;
            (0..x.elem_count())
                .map(|_| if rng.random::<f32>() >= p { keep } else { 0.0 })
                .collect::<Vec<f32>>()
        })
    });
    match mask {
        Some(m) => x.mul(&Tensor::from_vec(m, x.shape(), x.device())?.to_dtype(x.dtype())?),
        None => candle_nn::ops::dropout(x, p),
    }
}

/// Every `stride`-th index of `dim` from `start`, `out` of them (zero-filled past the end).
/// Built from narrow/pad/reshape, so it has a backward.
pub fn strided_slice(
    t: &Tensor,
    dim: usize,
    start: usize,
    out: usize,
    stride: usize,
) -> Result<Tensor> {
    if stride == 1 {
        return t.narrow(dim, start, out);
    }
    let len = t.dim(dim)?;
    let want = stride * out;
    let take = want.min(len.saturating_sub(start));
    let mut v = t.narrow(dim, start, take)?;
    if take < want {
        v = v.pad_with_zeros(dim, 0, want - take)?;
    }
    let mut shape = v.dims().to_vec();
    shape[dim] = out;
    shape.insert(dim + 1, stride);
    v.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// Bias-free 2-D convolution (`x` `[n, cin, h, w]`, `w` `[cout, cin, kh, kw]`, square
/// stride and zero padding) as im2col and one matmul: on CPU the patch matrix is one fused
/// pass with col2im as its backward ([`crate::im2col`]); elsewhere it is built from candle
/// primitives ([`im2col_composed`]). Why: in a ResNet-18 training step candle's CPU `conv2d` backward spent ~40%
/// of the time in a direct convolution's per-element dot products (`perf`); with this
/// conv the width-32, batch-128 step went from 1.95 s to 1.4 s (one measurement each, on
/// a busy machine). Per conv the gain depends on the shape: the `cv` bench's 64→64 3×3 on
/// 4×4 runs faster through candle. The forward and both gradients match candle's (tested).
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (n, cin, h, wd) = x.dims4()?;
    let (cout, wcin, kh, kw) = w.dims4()?;
    if wcin != cin {
        candle_core::bail!("conv2d: input has {cin} channels, kernel expects {wcin}");
    }
    if h + 2 * padding < kh || wd + 2 * padding < kw || stride == 0 {
        candle_core::bail!("conv2d: kernel {kh}x{kw} (stride {stride}) does not fit {h}x{wd}");
    }
    let p = crate::im2col::Patches {
        cin,
        h,
        w: wd,
        kh,
        kw,
        stride,
        padding,
    };
    let (ho, wo) = (p.out_h(), p.out_w());
    // cols [n·ho·wo, cin·kh·kw], K ordered as the kernel's (cin, ky, kx).
    let cols = if crate::fused::fusable(&[x]) {
        crate::im2col::im2col(x, p)?
    } else {
        im2col_composed(x, p)?
    };
    let y = cols.matmul(&w.reshape((cout, p.k()))?.t()?)?;
    y.reshape((n, ho * wo, cout))?
        .transpose(1, 2)?
        .reshape((n, cout, ho, wo))
}

/// [`crate::im2col::im2col`] from candle primitives (other devices and dtypes; the
/// reference the fused op is tested against).
pub fn im2col_composed(x: &Tensor, p: crate::im2col::Patches) -> Result<Tensor> {
    let n = x.dim(0)?;
    let (ho, wo, stride) = (p.out_h(), p.out_w(), p.stride);
    let xp = if p.padding > 0 {
        x.pad_with_zeros(3, p.padding, p.padding)?
            .pad_with_zeros(2, p.padding, p.padding)?
    } else {
        x.clone()
    };
    let cols = if p.kh == 1 && p.kw == 1 {
        strided_slice(&strided_slice(&xp, 2, 0, ho, stride)?, 3, 0, wo, stride)?
    } else {
        let mut views = Vec::with_capacity(p.kh * p.kw);
        for dy in 0..p.kh {
            let rows = strided_slice(&xp, 2, dy, ho, stride)?;
            for dx in 0..p.kw {
                views.push(strided_slice(&rows, 3, dx, wo, stride)?);
            }
        }
        Tensor::stack(&views, 2)?
    };
    cols.reshape((n, p.k(), ho * wo))?
        .transpose(1, 2)?
        .reshape((n * ho * wo, p.k()))
}

/// Mean cross-entropy of `logits [n, c]` against `labels [n]` (u32). Built from
/// differentiable primitives (log-softmax via max/exp/sum), so it trains.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    candle_nn::loss::cross_entropy(logits, labels)
}

/// PyTorch's default `nn.Linear` init bound `1/sqrt(fan_in)` (kaiming-uniform with a=√5
/// gives the same bound for the weight).
pub fn default_bound(fan_in: usize) -> f64 {
    1.0 / (fan_in.max(1) as f64).sqrt()
}

/// A tensor of `shape` drawn from U(-bound, bound) with the caller's seeded RNG.
pub fn uniform<R: Rng>(rng: &mut R, shape: &[usize], bound: f64, dev: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let b = bound as f32;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            if b > 0.0 {
                rng.random_range(-b..=b)
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(data, shape, dev)
}

/// A tensor of `shape` drawn from N(mean, std²) with the caller's seeded RNG (Box–Muller).
pub fn normal<R: Rng>(
    rng: &mut R,
    shape: &[usize],
    mean: f64,
    std: f64,
    dev: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|_| {
            let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (mean + std * z) as f32
        })
        .collect();
    Tensor::from_vec(data, shape, dev)
}

/// Index and value of the largest entry of `row` (the first on ties; `(0, -inf)` when
/// empty): the predicted class of a probability or logit row.
pub fn argmax(row: &[f32]) -> (usize, f32) {
    row.iter().enumerate().fold(
        (0, f32::NEG_INFINITY),
        |m, (k, &v)| if v > m.1 { (k, v) } else { m },
    )
}

/// Fraction of rows whose argmax equals the label.
pub fn accuracy(logits: &Tensor, labels: &[usize]) -> Result<f64> {
    if labels.is_empty() {
        return Ok(0.0);
    }
    let pred = logits
        .argmax(candle_core::D::Minus1)?
        .to_dtype(DType::U32)?
        .to_vec1::<u32>()?;
    let ok = pred
        .iter()
        .zip(labels)
        .filter(|(p, y)| **p as usize == **y)
        .count();
    Ok(ok as f64 / labels.len() as f64)
}

/// Cosine similarity of two host vectors (0 when either is zero): nearest seen task.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The im2col conv against candle's direct `conv2d`, forward and both gradients
    /// (candle's slow backward is the reference), over the shapes a ResNet uses.
    #[test]
    fn im2col_conv_matches_candle_forward_and_backward() -> Result<()> {
        let dev = Device::Cpu;
        for (cin, cout, hw, k, stride, pad) in [
            (3, 4, 9, 7, 2, 3),
            (4, 5, 8, 3, 1, 1),
            (4, 6, 7, 3, 2, 1),
            (5, 3, 8, 1, 1, 0),
            (5, 3, 9, 1, 2, 0),
        ] {
            let x = candle_core::Var::randn(0f32, 1., (2, cin, hw, hw), &dev)?;
            let w = candle_core::Var::randn(0f32, 0.5, (cout, cin, k, k), &dev)?;
            let ours = conv2d(x.as_tensor(), w.as_tensor(), stride, pad)?;
            let theirs = x.as_tensor().conv2d(w.as_tensor(), pad, stride, 1, 1)?;
            assert_eq!(ours.dims(), theirs.dims(), "k{k} s{stride} p{pad}");
            assert!(max_diff(&ours, &theirs) < 1e-4, "forward k{k} s{stride}");
            // A fixed random projection so every output position matters.
            let coef = Tensor::randn(0f32, 1., ours.shape(), &dev)?;
            let g1 = (ours * &coef)?.sum_all()?.backward()?;
            let g2 = (theirs * &coef)?.sum_all()?.backward()?;
            for (name, v) in [("input", &x), ("kernel", &w)] {
                let (a, b) = (g1.get(v).expect("grad"), g2.get(v).expect("grad"));
                assert!(max_diff(a, b) < 1e-3, "{name} grad k{k} s{stride} p{pad}");
            }
        }
        Ok(())
    }

    /// The fused im2col/col2im against the composed one: the same patch matrix bit for
    /// bit, and the same input gradient (col2im sums in another order: to 1e-5).
    #[test]
    fn fused_im2col_matches_the_composed_one() -> Result<()> {
        let dev = Device::Cpu;
        for (cin, hw, k, stride, padding) in [
            (3, 9, 7, 2, 3),
            (4, 8, 3, 1, 1),
            (4, 7, 3, 2, 1),
            (5, 8, 1, 1, 0),
            (5, 9, 1, 2, 0),
        ] {
            let p = crate::im2col::Patches {
                cin,
                h: hw,
                w: hw,
                kh: k,
                kw: k,
                stride,
                padding,
            };
            let x = candle_core::Var::randn(0f32, 1., (2, cin, hw, hw), &dev)?;
            let fused = crate::im2col::im2col(x.as_tensor(), p)?;
            let composed = im2col_composed(x.as_tensor(), p)?;
            assert_eq!(fused.dims(), [2 * p.out_h() * p.out_w(), p.k()]);
            assert_eq!(fused.to_vec2::<f32>()?, composed.to_vec2::<f32>()?, "{p:?}");
            let coef = Tensor::randn(0f32, 1., fused.shape(), &dev)?;
            let g1 = (fused * &coef)?.sum_all()?.backward()?;
            let g2 = (composed * &coef)?.sum_all()?.backward()?;
            let (a, b) = (g1.get(&x).expect("grad"), g2.get(&x).expect("grad"));
            assert!(
                max_diff(a, b) < 1e-5,
                "input grad {p:?}: {}",
                max_diff(a, b)
            );
        }
        Ok(())
    }

    #[test]
    fn strided_slice_takes_every_other_row() -> Result<()> {
        let t = Tensor::arange(0f32, 7., &Device::Cpu)?.reshape((1, 7))?;
        let s = strided_slice(&t, 1, 1, 3, 2)?;
        assert_eq!(s.to_vec2::<f32>()?, [[1., 3., 5.]]);
        // Past the end reads zeros (the padding a strided conv never multiplies by).
        let s = strided_slice(&t, 1, 2, 3, 3)?;
        assert_eq!(s.to_vec2::<f32>()?, [[2., 5., 0.]]);
        Ok(())
    }

    #[test]
    fn seeded_dropout_repeats_and_scales() {
        let dev = Device::Cpu;
        let x = Tensor::ones(4000, DType::F32, &dev).unwrap();
        let draw = || {
            seed_dropout(7);
            dropout(&x, 0.25, true).unwrap().to_vec1::<f32>().unwrap()
        };
        let (a, b) = (draw(), draw());
        assert_eq!(a, b, "same seed must give the same mask");
        // Inverted dropout: kept entries are 1/(1-p) = 4/3, dropped ones 0.
        assert!(a.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / 4000.0;
        assert!((dropped - 0.25).abs() < 0.03, "dropped fraction {dropped}");
        seed_dropout(8);
        assert_ne!(
            a,
            dropout(&x, 0.25, true).unwrap().to_vec1::<f32>().unwrap()
        );
        assert!(dropout(&x, 1.0, true).is_err());
        assert_eq!(
            dropout(&x, 0.25, false).unwrap().to_vec1::<f32>().unwrap(),
            vec![1.0; 4000]
        );
    }

    #[test]
    fn argmax_takes_the_first_largest() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), (1, 0.7));
        assert_eq!(argmax(&[-3.0]), (0, -3.0));
        assert_eq!(argmax(&[]).0, 0);
    }

    /// A stream reseeded at its recorded draw count continues exactly where it was.
    #[test]
    fn dropout_resumes_its_mask_stream_from_a_draw_count() {
        let x = Tensor::ones(300, DType::F32, &Device::Cpu).unwrap();
        let mask = || dropout(&x, 0.5, true).unwrap().to_vec1::<f32>().unwrap();
        seed_dropout(3);
        mask();
        mask();
        assert_eq!(dropout_draws(), 600);
        let third = mask();
        seed_dropout_at(3, 600);
        assert_eq!(mask(), third);
        assert_eq!(dropout_draws(), 900);
    }

    #[test]
    fn seeded_dropout_passes_gradients() {
        let dev = Device::Cpu;
        let v = candle_core::Var::ones(64, DType::F32, &dev).unwrap();
        seed_dropout(1);
        let y = dropout(v.as_tensor(), 0.5, true).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        let gv = g.get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let yv = y.to_vec1::<f32>().unwrap();
        // d(sum(x⊙m))/dx = m: the gradient equals the mask itself.
        assert_eq!(gv, yv);
        assert!(gv.iter().any(|&g| g > 0.0));
    }

    #[test]
    fn linear_matches_hand_computation() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[1f32, 2.0]], &dev).unwrap();
        let w = Tensor::new(&[[1f32, 0.0], [0.5, -1.0], [2.0, 3.0]], &dev).unwrap();
        let b = Tensor::new(&[0.1f32, 0.2, 0.3], &dev).unwrap();
        let y = linear(&x, &w, Some(&b)).unwrap().to_vec2::<f32>().unwrap();
        let want = [1.1f32, -1.3, 8.3];
        for (a, e) in y[0].iter().zip(want) {
            assert!((a - e).abs() < 1e-6, "{a} vs {e}");
        }
        let logits = Tensor::new(&[[0f32, 1.0], [3.0, 1.0]], &dev).unwrap();
        assert_eq!(accuracy(&logits, &[1, 1]).unwrap(), 0.5);
    }
}
