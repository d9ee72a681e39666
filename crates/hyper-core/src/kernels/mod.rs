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
