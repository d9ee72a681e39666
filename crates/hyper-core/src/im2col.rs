//! im2col as one CPU pass, with col2im as its backward, for [`crate::layers::conv2d`].
//!
//! The composed im2col (strided slices, a stack, a transpose and reshapes) spent most of
//! its time in candle's strided copies: `perf` of a CV meta-training step put 15% of it in
//! `copy_strided_src` under `conv2d` alone. Here each image's patch matrix is written
//! directly in the layout the matmul reads (`[n·ho·wo, cin·kh·kw]`, rows in output order,
//! columns in the kernel's `(cin, ky, kx)` order), images in parallel; col2im adds each
//! patch back in a fixed order per image, so gradients do not depend on the thread count.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::fused::slice;

/// A square-stride, zero-padded patch extraction of `[n, cin, h, w]` inputs.
#[derive(Debug, Clone, Copy)]
pub struct Patches {
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Patches {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding - self.kh) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding - self.kw) / self.stride + 1
    }
    /// Columns of the patch matrix.
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// Values of one input image, `[cin, h, w]`.
    fn image_len(&self) -> usize {
        self.cin * self.h * self.w
    }
    /// Values of one image's patch matrix, `[ho·wo, k]`.
    fn patches_len(&self) -> usize {
        self.out_h() * self.out_w() * self.k()
    }

    /// Calls `f(offset in the image's patch matrix, offset in the image)` for every
    /// in-bounds tap, output positions in row order and each row's taps in column order
    /// (padding taps are skipped: they are 0).
    #[inline]
    fn taps(&self, mut f: impl FnMut(usize, usize)) {
        let (p, s) = (self.padding as isize, self.stride as isize);
        let (wo, k) = (self.out_w(), self.k());
        for oy in 0..self.out_h() {
            for ox in 0..wo {
                let row = (oy * wo + ox) * k;
                for c in 0..self.cin {
                    for ky in 0..self.kh {
                        let iy = oy as isize * s + ky as isize - p;
                        if iy < 0 || iy >= self.h as isize {
                            continue;
                        }
                        for kx in 0..self.kw {
                            let ix = ox as isize * s + kx as isize - p;
                            if ix < 0 || ix >= self.w as isize {
                                continue;
                            }
                            f(
                                row + (c * self.kh + ky) * self.kw + kx,
                                (c * self.h + iy as usize) * self.w + ix as usize,
                            );
                        }
                    }
                }
            }
        }
    }
}

struct Im2col(Patches);

impl CustomOp1 for Im2col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let x = slice(s, l, self.name())?;
        let n = x.len() / p.image_len().max(1);
        let mut dst = vec![0f32; n * p.patches_len()];
        dst.par_chunks_mut(p.patches_len().max(1))
            .zip(x.par_chunks(p.image_len().max(1)))
            .for_each(|(cols, img)| p.taps(|at_col, at| cols[at_col] = img[at]));
        Ok((
            CpuStorage::F32(dst),
            Shape::from((n * p.out_h() * p.out_w(), p.k())),
        ))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(g.contiguous()?.apply_op1_no_bwd(&Col2im(self.0))?))
    }
}

/// The adjoint of [`Im2col`]: every patch entry added back to the input pixel it came from.
struct Col2im(Patches);

impl CustomOp1 for Col2im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let g = slice(s, l, self.name())?;
        let n = g.len() / p.patches_len().max(1);
        let mut dst = vec![0f32; n * p.image_len()];
        dst.par_chunks_mut(p.image_len().max(1))
            .zip(g.par_chunks(p.patches_len().max(1)))
            .for_each(|(img, cols)| p.taps(|at_col, at| img[at] += cols[at_col]));
        Ok((CpuStorage::F32(dst), Shape::from((n, p.cin, p.h, p.w))))
    }
}

/// The patch matrix `[n·ho·wo, cin·kh·kw]` of `x` `[n, cin, h, w]` (CPU f32), with a
/// backward.
pub fn im2col(x: &Tensor, p: Patches) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Im2col(p))
}
