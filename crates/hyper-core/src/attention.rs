//! `attention_probs`: attention's `dropout(softmax(scores · scale + mask))` as one CPU op
//! with a one-pass backward.
//!
//! Why: composed from candle ops, these four steps cost about 25 passes over the
//! `[batch, heads, q, k]` score tensor per layer and step (MiniLM at batch 32: 25 MB),
//! most of them in the backward. candle's backprop forms a gradient for *every* operand,
//! constants included: the dropout mask's product and the broadcast padding mask each get
//! a full-size gradient, zero-filled and then summed into. Its dropout also draws the mask
//! one value at a time on one thread. Here the forward is one pass per row, and the
//! backward recomputes the softmax from the scores and the mask from its key (the
//! masks come from a counter-based hash, so nothing is stored) in one pass per row.
//!
//! [`dropout`] is the same counter-hash dropout for any tensor (BERT's hidden-state
//! dropouts under fused training): one pass forward, one backward, and no gradient formed
//! for the mask.
//!
//! The dropout masks are not the ones [`crate::layers::dropout`] draws: the key comes
//! from the same seeded stream ([`crate::layers::dropout_key`]), so a seeded run
//! repeats, but it is another stream of masks than the composed path's.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::fused::{fusable, slice};

/// Rows per parallel task.
const ROW_BLOCK: usize = 64;

/// splitmix64's output function of `key + (i + 1) · golden`: element `i`'s 64 random bits.
fn hash(key: u64, i: u64) -> u64 {
    let mut z = key.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A counter-hash dropout mask: element `i` is dropped where `(hash(key, i) >> 32) <
/// drop_below`; kept ones scale by `keep`. `drop_below == 0` is no dropout.
#[derive(Clone, Copy)]
struct Mask {
    drop_below: u64,
    keep: f32,
    key: u64,
}

impl Mask {
    /// Dropout at `p`, drawing a key from [`crate::layers::dropout_key`] when `p > 0`.
    fn new(p: f32) -> Self {
        if p > 0.0 {
            Self {
                drop_below: ((p as f64) * (1u64 << 32) as f64) as u64,
                keep: 1.0 / (1.0 - p),
                key: crate::layers::dropout_key(),
            }
        } else {
            Self {
                drop_below: 0,
                keep: 1.0,
                key: 0,
            }
        }
    }

    fn on(&self) -> bool {
        self.drop_below > 0
    }

    /// The kept-and-rescaled factor of element `i` (0 where dropped).
    fn factor(&self, i: usize) -> f32 {
        if !self.on() || (hash(self.key, i as u64) >> 32) >= self.drop_below {
            self.keep
        } else {
            0.0
        }
    }
}

/// What one `attention_probs` call needs in both passes.
#[derive(Clone)]
struct Params {
    scale: f32,
    /// `[batch, k]` additive mask, or empty.
    mask: Vec<f32>,
    /// Rows per batch element (heads × queries).
    rows_per_batch: usize,
    dropout: Mask,
}

impl Params {
    /// Row `r`'s softmax of `x · scale + mask` into `p`.
    fn softmax_row(&self, r: usize, x: &[f32], p: &mut [f32]) {
        let k = x.len();
        let m: &[f32] = if self.mask.is_empty() {
            &[]
        } else {
            let b = r / self.rows_per_batch;
            &self.mask[b * k..(b + 1) * k]
        };
        for (j, (p, &x)) in p.iter_mut().zip(x).enumerate() {
            *p = x * self.scale + m.get(j).copied().unwrap_or(0.0);
        }
        let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for p in p.iter_mut() {
            *p = (*p - max).exp();
            sum += *p;
        }
        let inv = 1.0 / sum;
        p.iter_mut().for_each(|v| *v *= inv);
    }
}

struct AttentionProbs(Params);

impl CustomOp1 for AttentionProbs {
    fn name(&self) -> &'static str {
        "attention-probs"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = slice(s, l, self.name())?;
        let k = l.shape().dims().last().copied().unwrap_or(1).max(1);
        let p = &self.0;
        let mut dst = vec![0f32; src.len()];
        dst.par_chunks_mut(k * ROW_BLOCK)
            .zip(src.par_chunks(k * ROW_BLOCK))
            .enumerate()
            .for_each(|(blk, (o, x))| {
                for (i, (o, x)) in o.chunks_mut(k).zip(x.chunks(k)).enumerate() {
                    let r = blk * ROW_BLOCK + i;
                    p.softmax_row(r, x, o);
                    if p.dropout.on() {
                        for (j, o) in o.iter_mut().enumerate() {
                            *o *= p.dropout.factor(r * k + j);
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(dst), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let op = AttentionProbsBwd(self.0.clone());
        Ok(Some(x.apply_op2_no_bwd(&g.contiguous()?, &op)?))
    }
}

/// `y = x ⊙ factor` elementwise; its backward is the same op on the gradient.
struct HashDropout(Mask);

impl CustomOp1 for HashDropout {
    fn name(&self) -> &'static str {
        "hash-dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = slice(s, l, self.name())?;
        let m = self.0;
        let mut dst = vec![0f32; src.len()];
        const CHUNK: usize = 1 << 14;
        dst.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(c, (o, x))| {
                for (j, (o, &x)) in o.iter_mut().zip(x).enumerate() {
                    *o = x * m.factor(c * CHUNK + j);
                }
            });
        Ok((CpuStorage::F32(dst), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            g.contiguous()?.apply_op1_no_bwd(&HashDropout(self.0))?,
        ))
    }
}

/// Inverted dropout with the counter-hash masks of [`attention_probs`] (key from
/// [`crate::layers::dropout_key`]); identity when `!train` or `p == 0`. Off the CPU or for
/// non-f32 input it is [`crate::layers::dropout`].
pub fn dropout(x: &Tensor, p: f32, train: bool) -> Result<Tensor> {
    crate::layers::check_dropout_p(p)?;
    if !train || p == 0.0 {
        return Ok(x.clone());
    }
    if !fusable(&[x]) {
        return crate::layers::dropout(x, p, train);
    }
    x.contiguous()?.apply_op1(HashDropout(Mask::new(p)))
}

/// `dx = scale · P ⊙ (dP − Σ dP⊙P)` per row, with `P` recomputed from `x` and
/// `dP = g ⊙ factor`.
struct AttentionProbsBwd(Params);

impl CustomOp2 for AttentionProbsBwd {
    fn name(&self) -> &'static str {
        "attention-probs-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let k = l1.shape().dims().last().copied().unwrap_or(1).max(1);
        let p = &self.0;
        let mut dst = vec![0f32; x.len()];
        dst.par_chunks_mut(k * ROW_BLOCK)
            .zip(x.par_chunks(k * ROW_BLOCK).zip(g.par_chunks(k * ROW_BLOCK)))
            .enumerate()
            .for_each(|(blk, (o, (x, g)))| {
                let mut dp = vec![0f32; k];
                for (i, (o, (x, g))) in o
                    .chunks_mut(k)
                    .zip(x.chunks(k).zip(g.chunks(k)))
                    .enumerate()
                {
                    let r = blk * ROW_BLOCK + i;
                    p.softmax_row(r, x, o);
                    let mut dot = 0f32;
                    for (j, ((d, &g), &pj)) in dp.iter_mut().zip(g).zip(o.iter()).enumerate() {
                        *d = g * p.dropout.factor(r * k + j);
                        dot += *d * pj;
                    }
                    for (o, &d) in o.iter_mut().zip(&dp) {
                        *o = p.scale * *o * (d - dot);
                    }
                }
            });
        Ok((CpuStorage::F32(dst), l1.shape().clone()))
    }
}

/// `dropout(softmax(scores · scale + mask, last dim), p)` for `scores` `[b, h, q, k]` and
/// an additive `mask` of `[b, 1, 1, k]` (BERT's padding mask), with a backward to
/// `scores`. Dropout applies only when `train` and `p > 0`; its mask comes from
/// [`crate::layers::dropout_key`]. Off the CPU or for non-f32 input it is composed from
/// candle ops (and [`crate::layers::dropout`]).
pub fn attention_probs(
    scores: &Tensor,
    scale: f32,
    mask: Option<&Tensor>,
    p: f32,
    train: bool,
) -> Result<Tensor> {
    crate::layers::check_dropout_p(p)?;
    let (b, h, q, k) = scores.dims4()?;
    if let Some(m) = mask {
        if m.dims() != [b, 1, 1, k] {
            candle_core::bail!(
                "attention mask of {:?} does not fit scores of {:?}: want [{b}, 1, 1, {k}]",
                m.shape(),
                scores.shape()
            );
        }
    }
    let dropout = train && p > 0.0;
    if !fusable(&[scores]) || mask.is_some_and(|m| !fusable(&[m])) {
        let s = (scores * scale as f64)?;
        let s = match mask {
            Some(m) => s.broadcast_add(m)?,
            None => s,
        };
        return crate::layers::dropout(&crate::fused::softmax_last_dim(&s)?, p, dropout);
    }
    let params = Params {
        scale,
        mask: match mask {
            Some(m) => m.flatten_all()?.to_vec1::<f32>()?,
            None => Vec::new(),
        },
        rows_per_batch: h * q,
        dropout: Mask::new(if dropout { p } else { 0.0 }),
    };
    scores.contiguous()?.apply_op1(AttentionProbs(params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
    }

    /// Scores and a padding mask with the last two keys of batch 1 masked.
    fn inputs(d: &Device) -> Result<(Var, Tensor)> {
        let x = Var::from_tensor(&Tensor::randn(0f32, 2., (2, 3, 5, 7), d)?)?;
        let keep: Vec<f32> = (0..14).map(|i| if i >= 12 { 0.0 } else { 1.0 }).collect();
        let m = Tensor::from_vec(keep, (2, 1, 1, 7), d)?;
        let mask = (m.affine(-1.0, 1.0)? * f32::MIN as f64)?;
        Ok((x, mask))
    }

    fn composed(x: &Tensor, scale: f32, mask: &Tensor, factor: Option<&Tensor>) -> Result<Tensor> {
        let s = (x * scale as f64)?.broadcast_add(mask)?;
        let e = s.broadcast_sub(&s.max_keepdim(D::Minus1)?)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        match factor {
            Some(f) => p * f,
            None => Ok(p),
        }
    }

    #[test]
    fn without_dropout_matches_the_composed_ops_in_values_and_gradient() -> Result<()> {
        let d = Device::Cpu;
        let (x, mask) = inputs(&d)?;
        let w = Tensor::randn(0f32, 1., (2, 3, 5, 7), &d)?;
        let ours = attention_probs(x.as_tensor(), 0.35, Some(&mask), 0.1, false)?;
        let theirs = composed(x.as_tensor(), 0.35, &mask, None)?;
        assert!(max_diff(&ours, &theirs)? < 1e-6);
        // Masked keys get exactly zero; each row sums to one.
        let row = ours.get(1)?.get(2)?.get(4)?.to_vec1::<f32>()?;
        assert_eq!(&row[5..], &[0.0, 0.0]);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let g1 = (ours * &w)?.sum_all()?.backward()?;
        let g2 = (theirs * &w)?.sum_all()?.backward()?;
        let (a, b) = (g1.get(&x).expect("grad"), g2.get(&x).expect("grad"));
        assert!(max_diff(a, b)? < 1e-5, "gradient differs");
        Ok(())
    }

    #[test]
    fn dropout_matches_the_composed_ops_given_the_same_mask() -> Result<()> {
        let d = Device::Cpu;
        let (x, mask) = inputs(&d)?;
        let w = Tensor::randn(0f32, 1., (2, 3, 5, 7), &d)?;
        crate::layers::seed_dropout(7);
        let ours = attention_probs(x.as_tensor(), 0.35, Some(&mask), 0.25, true)?;
        assert_eq!(crate::layers::dropout_draws(), 2, "one key = two draws");
        // The factor each element got, read off against the undropped probabilities.
        let plain = composed(x.as_tensor(), 0.35, &mask, None)?;
        let ov = ours.flatten_all()?.to_vec1::<f32>()?;
        let pv = plain.flatten_all()?.to_vec1::<f32>()?;
        let factor: Vec<f32> = ov
            .iter()
            .zip(&pv)
            .map(|(&o, &p)| if o == 0.0 && p > 0.0 { 0.0 } else { 1.0 / 0.75 })
            .collect();
        let dropped = factor.iter().filter(|&&f| f == 0.0).count() as f32 / factor.len() as f32;
        assert!(
            (0.15..0.35).contains(&dropped),
            "dropped {dropped} of p = 0.25"
        );
        for (&o, (&p, &f)) in ov.iter().zip(pv.iter().zip(&factor)) {
            assert!((o - p * f).abs() < 1e-6);
        }
        let f = Tensor::from_vec(factor, (2, 3, 5, 7), &d)?;
        let g1 = (ours * &w)?.sum_all()?.backward()?;
        let g2 = (composed(x.as_tensor(), 0.35, &mask, Some(&f))? * &w)?
            .sum_all()?
            .backward()?;
        let (a, b) = (g1.get(&x).expect("grad"), g2.get(&x).expect("grad"));
        assert!(max_diff(a, b)? < 1e-5, "gradient differs");
        // The same seed repeats the masks; the next call draws new ones.
        crate::layers::seed_dropout(7);
        let again = attention_probs(x.as_tensor(), 0.35, Some(&mask), 0.25, true)?;
        assert_eq!(again.flatten_all()?.to_vec1::<f32>()?, ov);
        let next = attention_probs(x.as_tensor(), 0.35, Some(&mask), 0.25, true)?;
        assert_ne!(next.flatten_all()?.to_vec1::<f32>()?, ov);
        Ok(())
    }

    #[test]
    fn hash_dropout_scales_kept_values_and_its_gradient_is_the_mask() -> Result<()> {
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (40, 500), &d)?)?;
        crate::layers::seed_dropout(3);
        let y = dropout(x.as_tensor(), 0.2, true)?;
        let (xv, yv) = (
            x.as_tensor().flatten_all()?.to_vec1::<f32>()?,
            y.flatten_all()?.to_vec1::<f32>()?,
        );
        let dropped = yv.iter().filter(|&&v| v == 0.0).count() as f32 / yv.len() as f32;
        assert!(
            (0.18..0.22).contains(&dropped),
            "dropped {dropped} of p = 0.2"
        );
        for (&x, &y) in xv.iter().zip(&yv) {
            assert!(y == 0.0 || (y - x / 0.8).abs() < 1e-6, "{x} -> {y}");
        }
        // d(Σ y⊙w)/dx = w ⊙ factor, and the factor is y / x.
        let w = Tensor::randn(0f32, 1., (40, 500), &d)?;
        let g = (&y * &w)?.sum_all()?.backward()?;
        let gv = g.get(&x).expect("grad").flatten_all()?.to_vec1::<f32>()?;
        let wv = w.flatten_all()?.to_vec1::<f32>()?;
        for i in 0..xv.len() {
            let f = if yv[i] == 0.0 { 0.0 } else { 1.0 / 0.8 };
            assert!((gv[i] - wv[i] * f).abs() < 1e-5);
        }
        assert_eq!(
            dropout(x.as_tensor(), 0.2, false)?.to_vec2::<f32>()?,
            x.to_vec2::<f32>()?
        );
        Ok(())
    }

    #[test]
    fn bad_mask_shape_and_probability_are_errors() -> Result<()> {
        let d = Device::Cpu;
        let x = Tensor::zeros((2, 3, 5, 7), candle_core::DType::F32, &d)?;
        let m = Tensor::zeros((2, 7), candle_core::DType::F32, &d)?;
        let e = attention_probs(&x, 1.0, Some(&m), 0.1, true).unwrap_err();
        assert!(e.to_string().contains("want [2, 1, 1, 7]"), "{e}");
        assert!(attention_probs(&x, 1.0, None, 1.0, true).is_err());
        Ok(())
    }
}
