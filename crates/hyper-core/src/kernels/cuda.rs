//! CUDA LoRA merge, compiled at run time with NVRTC and launched through cudarc.
//!
//! Every entry point probes for the driver and NVRTC libraries first: cudarc's
//! `CudaContext::new` panics (rather than returning Err) when libcuda cannot be loaded.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};

use super::{check_lora_shapes, KernelError};

/// One thread per output element (grid-stride), summing over `r` in ascending order
/// like [`super::merge_lora_cpu`].
const MERGE_LORA_SRC: &str = r#"
extern "C" __global__ void merge_lora(
    const float* __restrict__ w,
    const float* __restrict__ b,
    const float* __restrict__ a,
    float* __restrict__ y,
    unsigned long long n,
    int r,
    int inn,
    float scale)
{
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
         i < n; i += stride) {
        unsigned long long o = i / inn;
        unsigned long long j = i % inn;
        const float* b_row = b + o * r;
        float acc = 0.0f;
        for (int k = 0; k < r; ++k) {
            acc += b_row[k] * a[(unsigned long long)k * inn + j];
        }
        y[i] = w[i] + scale * acc;
    }
}
"#;

const BLOCK: u32 = 256;
/// Enough blocks to fill any current GPU; the grid-stride loop covers the rest.
const MAX_BLOCKS: u64 = 65_535;

fn err<E: std::fmt::Display>(stage: &'static str) -> impl Fn(E) -> KernelError {
    move |e| KernelError::Cuda {
        stage,
        msg: e.to_string(),
    }
}

/// Checks, without panicking, that a CUDA driver, NVRTC and at least one device exist.
pub fn probe() -> Result<usize, KernelError> {
    // SAFETY: only tries to dlopen the library; no symbol is called.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(KernelError::NoDevice(
            "no CUDA driver found: libcuda (the NVIDIA driver library) could not be loaded".into(),
        ));
    }
    // SAFETY: as above.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(KernelError::NoDevice(
            "libnvrtc (CUDA runtime compiler) could not be loaded; install the CUDA NVRTC runtime"
                .into(),
        ));
    }
    let n = CudaContext::device_count()
        .map_err(|e| KernelError::NoDevice(format!("driver loaded but no usable device: {e}")))?;
    if n < 1 {
        return Err(KernelError::NoDevice(
            "driver loaded but it reports 0 devices".into(),
        ));
    }
    Ok(n as usize)
}

/// The compiled merge kernel on one device; build once, call [`Self::merge`] many times.
pub struct CudaLoraMerge {
    stream: Arc<CudaStream>,
    func: CudaFunction,
}

impl CudaLoraMerge {
    /// Probes, opens device `ordinal` and compiles the kernel with NVRTC.
    pub fn new(ordinal: usize) -> Result<Self, KernelError> {
        let count = probe()?;
        if ordinal >= count {
            return Err(KernelError::NoDevice(format!(
                "device ordinal {ordinal} requested but only {count} device(s) present"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(err("context creation"))?;
        // No FMA contraction: keeps results equal to the CPU reference up to rounding order.
        let opts = CompileOptions {
            fmad: Some(false),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(MERGE_LORA_SRC, opts).map_err(err("NVRTC compile"))?;
        let module = ctx.load_module(ptx).map_err(err("module load"))?;
        let func = module
            .load_function("merge_lora")
            .map_err(err("function load"))?;
        Ok(Self {
            stream: ctx.default_stream(),
            func,
        })
    }

    /// `W + scale·B·A` on the GPU; same shapes and errors as [`super::merge_lora_cpu`].
    #[allow(clippy::too_many_arguments)]
    pub fn merge(
        &self,
        w: &[f32],
        b: &[f32],
        a: &[f32],
        out: usize,
        r: usize,
        inn: usize,
        scale: f32,
    ) -> Result<Vec<f32>, KernelError> {
        let n = check_lora_shapes(w.len(), b.len(), a.len(), out, r, inn)?;
        // Empty device buffers are not allowed; these cases need no kernel anyway.
        if n == 0 || r == 0 {
            return Ok(w.to_vec());
        }
        let to_i32 = |name: &str, v: usize| {
            i32::try_from(v).map_err(|_| {
                KernelError::Shape(format!("{name} = {v} exceeds the kernel's i32 limit"))
            })
        };
        let (r_i, inn_i) = (to_i32("r", r)?, to_i32("in", inn)?);
        let s = &self.stream;
        let w_d = s.clone_htod(w).map_err(err("copy W to device"))?;
        let b_d = s.clone_htod(b).map_err(err("copy B to device"))?;
        let a_d = s.clone_htod(a).map_err(err("copy A to device"))?;
        let mut y_d = s.alloc_zeros::<f32>(n).map_err(err("alloc output"))?;
        let n_u64 = n as u64;
        let blocks = n_u64.div_ceil(BLOCK as u64).min(MAX_BLOCKS) as u32;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = s.launch_builder(&self.func);
        launch
            .arg(&w_d)
            .arg(&b_d)
            .arg(&a_d)
            .arg(&mut y_d)
            .arg(&n_u64)
            .arg(&r_i)
            .arg(&inn_i)
            .arg(&scale);
        // SAFETY: argument types and order match `merge_lora` in MERGE_LORA_SRC; buffers hold
        // n (W, Y), out·r (B) and r·inn (A) elements as checked above.
        unsafe { launch.launch(cfg) }.map_err(err("kernel launch"))?;
        s.clone_dtoh(&y_d).map_err(err("copy result to host"))
    }
}

/// One-shot convenience on device 0 (compiles the kernel each call).
pub fn merge_lora_cuda(
    w: &[f32],
    b: &[f32],
    a: &[f32],
    out: usize,
    r: usize,
    inn: usize,
    scale: f32,
) -> Result<Vec<f32>, KernelError> {
    CudaLoraMerge::new(0)?.merge(w, b, a, out, r, inn, scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::merge_lora_cpu;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn probe_does_not_panic() {
        match probe() {
            Ok(n) => assert!(n >= 1),
            Err(e) => {
                assert!(matches!(e, KernelError::NoDevice(_)), "{e}");
                assert!(
                    e.to_string().starts_with("no CUDA device available: "),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn gpu_matches_cpu_reference() {
        let merger = match CudaLoraMerge::new(0) {
            Ok(m) => m,
            Err(e @ KernelError::NoDevice(_)) => {
                println!("skipped: {e}");
                return;
            }
            Err(e) => panic!("CUDA present but kernel setup failed: {e}"),
        };
        let mut rng = StdRng::seed_from_u64(3);
        // Includes a conv-shaped case ([8, 3·3·3] with r = 4) and a multi-block one.
        for (out, r, inn) in [(2, 2, 2), (5, 3, 7), (8, 4, 27), (300, 16, 257)] {
            let scale = rng.random_range(0.1f32..4.0);
            let mut v =
                |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
            let (w, b, a) = (v(out * inn), v(out * r), v(r * inn));
            let gpu = merger.merge(&w, &b, &a, out, r, inn, scale).unwrap();
            let cpu = merge_lora_cpu(&w, &b, &a, out, r, inn, scale).unwrap();
            assert_eq!(gpu.len(), out * inn);
            for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
                assert!(
                    (g - c).abs() <= 1e-5 * c.abs().max(1.0),
                    "({out},{r},{inn}) element {i}: gpu {g} vs cpu {c}"
                );
            }
        }
        let e = merger.merge(&[0.0; 3], &[0.0; 4], &[0.0; 4], 2, 2, 2, 1.0);
        assert!(matches!(e, Err(KernelError::Shape(_))));
    }
}
