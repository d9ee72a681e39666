//! Hand-written kernels with a plain-Rust CPU reference each (DESIGN.md §8).
//!
//! The LoRA merge `W' = W + s·B·A` (B `[out, r]`, A `[r, in]`, row-major f32) folds a
//! generated low-rank update into a base weight so inference runs one dense matmul. A conv
//! weight `[out, in, kh, kw]` is the same math with A reshaped to `[r, in·kh·kw]`
//! (see [`conv_lora_dims`]).
//!
//! The CUDA version lives behind the `cuda` feature: cudarc loads the driver and NVRTC at
//! run time and the kernel source is a Rust string, so the feature builds without a CUDA
//! toolkit. On a machine with an NVIDIA driver and NVRTC installed, run the GPU-vs-CPU
//! test with:
//!
//! ```text
//! cargo nextest run -p hyper-core --features cuda
//! ```
//!
//! Without a device that test prints `skipped: <reason>` and passes.

mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;

pub use cpu::merge_lora_cpu;

/// Errors from kernel entry points: bad shapes from the caller, or a missing/failed GPU.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("LoRA merge shape error: {0}")]
    Shape(String),
    #[error("no CUDA device available: {0}")]
    NoDevice(String),
    #[error("CUDA {stage} failed: {msg}")]
    Cuda { stage: &'static str, msg: String },
}

/// `(out, r, inn)` for merging a conv LoRA into a weight `[out, in_ch, kh, kw]`:
/// A `[r, in_ch, kh, kw]` is read as `[r, in_ch·kh·kw]`, B `[out, r]` as is.
pub fn conv_lora_dims(
    out: usize,
    r: usize,
    in_ch: usize,
    kh: usize,
    kw: usize,
) -> Result<(usize, usize, usize), KernelError> {
    let inn = in_ch
        .checked_mul(kh)
        .and_then(|x| x.checked_mul(kw))
        .ok_or_else(|| {
            KernelError::Shape(format!(
                "conv in_ch·kh·kw = {in_ch}·{kh}·{kw} overflows usize"
            ))
        })?;
    Ok((out, r, inn))
}

/// Checks `w.len() == out·inn`, `b.len() == out·r`, `a.len() == r·inn`; returns `out·inn`.
pub(crate) fn check_lora_shapes(
    w: usize,
    b: usize,
    a: usize,
    out: usize,
    r: usize,
    inn: usize,
) -> Result<usize, KernelError> {
    let prod = |what: &str, x: usize, y: usize| {
        x.checked_mul(y)
            .ok_or_else(|| KernelError::Shape(format!("{what} size {x}×{y} overflows usize")))
    };
    let n_w = prod("W", out, inn)?;
    let n_b = prod("B", out, r)?;
    let n_a = prod("A", r, inn)?;
    for (name, dims, want, got) in [
        ("W", format!("[{out}, {inn}]"), n_w, w),
        ("B", format!("[{out}, {r}]"), n_b, b),
        ("A", format!("[{r}, {inn}]"), n_a, a),
    ] {
        if want != got {
            return Err(KernelError::Shape(format!(
                "{name} should be {dims} = {want} elements, got {got}"
            )));
        }
    }
    Ok(n_w)
}

/// `W' = W + scale·B·A` on tensors: W `[out, ...]` (a linear `[out, in]` or a conv
/// `[out, in, kh, kw]`), B `[out, r, ...]` (`[out, r]` or `[out, r, 1, 1]`), A
/// `[r, ...]` with W's trailing shape. The one LoRA merge every target uses: it runs
/// [`merge_lora_cpu`] (the reference the CUDA kernel is tested against) on host copies
/// (f32) and returns W's shape and dtype, on W's device.
pub fn merge_lora(
    w: &candle_core::Tensor,
    a: &candle_core::Tensor,
    b: &candle_core::Tensor,
    scale: f64,
) -> candle_core::Result<candle_core::Tensor> {
    use candle_core::{DType, Error};
    let out = w.dim(0)?;
    let inn = w.elem_count() / out.max(1);
    let r = a.dim(0)?;
    if b.dim(0)? != out || b.elem_count() != out * r {
        return Err(Error::Msg(format!(
            "LoRA merge: lora_B has shape {:?}, expected [{out}, {r}, ...] for base {:?} and lora_A {:?}",
            b.dims(),
            w.dims(),
            a.dims()
        )));
    }
    let host = |t: &candle_core::Tensor| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
    let y = merge_lora_cpu(&host(w)?, &host(b)?, &host(a)?, out, r, inn, scale as f32)
        .map_err(|e| Error::Msg(e.to_string()))?;
    candle_core::Tensor::from_vec(y, w.dims(), w.device())?.to_dtype(w.dtype())
}
