//! Flush-to-zero for subnormal floats on x86, on by default in every binary of ours.
//!
//! Gradients through the data-conditioned generator's Newton–Schulz inverse underflow into
//! subnormals, and Intel cores take a microcode assist for each subnormal operand: with the
//! same code and data, `pretrain tabular-any` ran 7.4x slower on an Intel Xeon than with
//! FTZ/DAZ set (30 steps: 22.9 s → 3.1 s, the same validation loss to four digits), which
//! is why it looked 9x slower than on the AMD EPYC its checkpoint came from. Setting
//! MXCSR's FTZ and DAZ bits makes subnormals zero, as `torch.set_flush_denormal(True)`
//! does. `HYPER_KEEP_DENORMALS=1` keeps IEEE subnormals (to re-run a checkpoint made
//! before this default bit for bit).

/// MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// The environment variable that keeps subnormals.
pub const KEEP_ENV: &str = "HYPER_KEEP_DENORMALS";

#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut csr: u32 = 0;
    // SAFETY: stmxcsr stores this thread's SSE control register into `csr`.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
    csr
}

/// Sets FTZ/DAZ on the calling thread (a no-op off x86_64).
pub fn flush_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    {
        let csr = mxcsr() | FTZ_DAZ;
        // SAFETY: ldmxcsr loads this thread's SSE control register; FTZ/DAZ only change
        // how subnormal operands and results are treated.
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly)) };
    }
}

/// Whether FTZ and DAZ are both set on the calling thread.
pub fn flushing_on_this_thread() -> bool {
    #[cfg(target_arch = "x86_64")]
    return mxcsr() & FTZ_DAZ == FTZ_DAZ;
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// A rayon pool builder whose threads start with FTZ/DAZ set.
pub fn pool_builder() -> rayon::ThreadPoolBuilder {
    rayon::ThreadPoolBuilder::new().start_handler(|_| flush_on_this_thread())
}

/// What a binary calls first: FTZ/DAZ on this thread and on rayon's global pool (which
/// candle's matmuls and our fused ops use), unless `HYPER_KEEP_DENORMALS` is set.
pub fn init() {
    if crate::runtime::opted_out(KEEP_ENV) {
        return;
    }
    flush_on_this_thread();
    // Fails only when the global pool already exists (a second call): it was built here.
    let _ = pool_builder().build_global();
}

/// The calling thread's mode in words, for results files.
pub fn mode() -> &'static str {
    if flushing_on_this_thread() {
        "subnormals flushed to zero (FTZ/DAZ)"
    } else {
        "subnormals kept"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Half the smallest normal f32, computed at run time.
    fn subnormal() -> f32 {
        std::hint::black_box(f32::MIN_POSITIVE) / std::hint::black_box(2.0)
    }

    #[test]
    fn subnormals_survive_by_default_and_flush_when_set() {
        // Fresh threads, so the test harness's own thread keeps its mode.
        let before = std::thread::spawn(|| (flushing_on_this_thread(), subnormal()))
            .join()
            .unwrap();
        assert_eq!(before, (false, f32::MIN_POSITIVE / 2.0));
        assert!(before.1 > 0.0, "IEEE keeps 2^-127");
        let after = std::thread::spawn(|| {
            flush_on_this_thread();
            (flushing_on_this_thread(), subnormal())
        })
        .join()
        .unwrap();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(after, (true, 0.0));
        }
    }

    #[test]
    fn pool_threads_start_flushing() {
        let pool = pool_builder().num_threads(2).build().unwrap();
        let flags: Vec<bool> = pool.broadcast(|_| flushing_on_this_thread());
        assert_eq!(flags, vec![cfg!(target_arch = "x86_64"); 2]);
    }
}
