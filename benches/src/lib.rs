//! Criterion benchmarks live in `benches/benches/`; this holds what several of them share.

use std::ffi::OsStr;
use std::path::Path;

/// Runs `script` (a file beside this crate's `Cargo.toml`) with `args` under the Python that
/// `HYPER_TORCH_PYTHON` names and prints its one-line result, so PyTorch's step is timed in
/// the same run as ours; without the variable it prints how to set it.
pub fn torch_same_run(script: &str, args: &[&OsStr]) {
    let Ok(py) = std::env::var("HYPER_TORCH_PYTHON") else {
        eprintln!(
            "set HYPER_TORCH_PYTHON to a Python with torch (+ transformers, peft) to time \
             PyTorch's step in this run (benches/README.md)"
        );
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    match std::process::Command::new(py)
        .arg(&script)
        .args(args)
        .output()
    {
        Ok(o) if o.status.success() => eprintln!(
            "PyTorch, same run: {}",
            String::from_utf8_lossy(&o.stdout).trim()
        ),
        Ok(o) => eprintln!(
            "PyTorch step failed ({}): {}",
            script.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("PyTorch step not run ({}): {e}", script.display()),
    }
}

/// `configs/cv.toml`, the config the CV benches time.
pub fn cv_config() -> hyper_train::cv::CvConfig {
    hyper_train::cv::CvConfig::load(&datasets::paths::workspace_root().join("configs/cv.toml"))
        .unwrap_or_else(|e| panic!("{e:#}"))
}
