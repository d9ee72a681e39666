//! What every binary of ours sets before its first tensor: subnormals flushed to zero
//! ([`crate::denormals`]) and glibc's allocator keeping freed memory ([`crate::malloc`]).
//! Each has its own environment variable to turn it off.

/// Called first by `xtask`, `hyper-infer` and every bench.
pub fn init() {
    crate::denormals::init();
    crate::malloc::init();
}

/// Both modes in words, for results files.
pub fn describe() -> String {
    format!("{}, {}", crate::denormals::mode(), crate::malloc::mode())
}

/// Whether the environment variable `name` turns a default off: set, non-empty, not "0".
pub(crate) fn opted_out(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}
