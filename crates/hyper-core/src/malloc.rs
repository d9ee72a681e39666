//! glibc's allocator told to keep freed memory for reuse instead of handing it back to
//! the kernel, on by default in every binary of ours (through [`crate::runtime::init`]).
//!
//! Why: a training step allocates and frees hundreds of tensors of 1–100 MB. By default
//! glibc serves each block above its mmap threshold (128 KiB, adapting up to 32 MiB) with
//! a fresh `mmap` and `munmap`s it on free, and gives the top of its heap back above
//! 128 KiB free; every new tensor then page-faults and the kernel zeroes its pages. In a
//! MiniLM LoRA step (batch 32 × 128) `perf` put ~12% of the time in the kernel's page
//! clearing and faults, more in the page-table locks, and setting both thresholds high
//! took the step from 8.25 s to 2.91 s (page faults 15.5 M → 1.3 M per bench run) on a
//! 2-core AMD EPYC KVM guest (README, NLP speed). The cost: resident memory stays near
//! the process's peak instead of shrinking between steps. `HYPER_MALLOC_DEFAULTS=1` keeps
//! glibc's defaults; other C libraries are left alone.

use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that keeps glibc's default thresholds.
pub const DEFAULTS_ENV: &str = "HYPER_MALLOC_DEFAULTS";

/// Blocks below this come from the heap (glibc 2.36 accepts it through `mallopt`; the
/// default adapts between 128 KiB and 32 MiB).
pub const MMAP_THRESHOLD: i32 = 1 << 30;
/// Free memory at the heap's top kept before trimming: -1 never trims (`man mallopt`).
/// A finite value is not enough: one MiniLM LoRA step frees over 4 GB at its end, and a
/// 4 GB threshold still gave the whole heap back after every step.
pub const TRIM_THRESHOLD: i32 = -1;

static SET: AtomicBool = AtomicBool::new(false);

/// Raises glibc's mmap and trim thresholds unless [`DEFAULTS_ENV`] is set; [`mode`]
/// says whether both took effect (never off glibc).
pub fn init() {
    if crate::runtime::opted_out(DEFAULTS_ENV) {
        return;
    }
    SET.store(set_thresholds(), Ordering::Relaxed);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> bool {
    // SAFETY: mallopt only changes the allocator's tuning parameters; it returns 1 on
    // success and 0 for a value it rejects.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> bool {
    false
}

/// The allocator mode in words, for results files.
pub fn mode() -> &'static str {
    if SET.load(Ordering::Relaxed) {
        "glibc malloc keeps freed memory (mmap/trim thresholds raised)"
    } else {
        "allocator defaults"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_accepted_on_glibc_and_reported() {
        init();
        let glibc = cfg!(all(target_os = "linux", target_env = "gnu"));
        if std::env::var_os(DEFAULTS_ENV).is_none() {
            assert_eq!(mode().starts_with("glibc"), glibc, "{}", mode());
        } else {
            assert_eq!(mode(), "allocator defaults");
        }
        // A block far above glibc's default threshold is served and freed either way.
        let v = vec![1u8; 64 << 20];
        assert_eq!(v.iter().map(|&b| b as usize).sum::<usize>(), 64 << 20);
    }
}
