//! Helpers shared by the workspace's tests, one copy each: the "every trainable tensor gets
//! a gradient" check, tensor/slice differences, the fetched-asset paths, small fixtures and
//! a scripted OpenAI-compatible HTTP server.
//!
//! Dev-only: crates name it under `[dev-dependencies]`, never `[dependencies]`. It depends on
//! `hyper-core` and `datasets` only (not on `target-models`, `llm-prompting`, … whose tests
//! use it). hyper-core's own unit tests reach it through a dev-dependency cycle, in which
//! Cargo links a second, separate `hyper_core`: from there only the helpers whose signatures
//! use candle and std types (not hyper-core's, e.g. not [`tabular_meta`]) are usable.

use std::path::PathBuf;

use candle_core::{DType, Result, Tensor, Var};
use hyper_core::Metadata;

pub mod bert;
pub mod fixtures;
pub mod json_schema;
pub mod openai;

/// Panics unless every `(name, gradient)` has a gradient whose entries are finite and not
/// all zero, naming every tensor that fails (and why), prefixed by `what`. Also panics on an
/// empty list, which would pass vacuously.
pub fn assert_grads_nonzero<'a, S: AsRef<str>>(
    what: &str,
    grads: impl IntoIterator<Item = (S, Option<&'a Tensor>)>,
) {
    let (mut bad, mut n) = (Vec::new(), 0usize);
    for (name, g) in grads {
        n += 1;
        let name = name.as_ref();
        let Some(g) = g else {
            bad.push(format!("`{name}` (no gradient)"));
            continue;
        };
        let s = g
            .to_dtype(DType::F32)
            .and_then(|g| g.abs()?.sum_all()?.to_scalar::<f32>())
            .unwrap_or_else(|e| panic!("{what}: reading the gradient of `{name}`: {e}"));
        if !(s > 0.0 && s.is_finite()) {
            bad.push(format!("`{name}` (sum |grad| = {s})"));
        }
    }
    assert!(n > 0, "{what}: no tensors to check");
    assert!(
        bad.is_empty(),
        "{what}: {} of {n} tensors lack a finite non-zero gradient: {}",
        bad.len(),
        bad.join(", ")
    );
}

/// [`assert_grads_nonzero`] over several backward passes (one per task, say): each named
/// tensor needs a finite non-zero gradient in at least one of `runs` (per run, one
/// optional gradient per name, in `names`' order).
pub fn assert_grads_nonzero_in_some<S: AsRef<str>>(
    what: &str,
    names: &[S],
    runs: &[Vec<Option<Tensor>>],
) {
    let total: Vec<Option<Tensor>> = (0..names.len())
        .map(|k| {
            runs.iter()
                .filter_map(|r| r.get(k).cloned().flatten())
                .map(|g| g.to_dtype(DType::F32).and_then(|g| g.abs()))
                .reduce(|a, b| a.and_then(|a| a + b?))
                .map(|r| r.unwrap_or_else(|e| panic!("{what}: summing gradients: {e}")))
        })
        .collect();
    assert_grads_nonzero(what, names.iter().zip(total.iter().map(Option::as_ref)));
}

/// Back-propagates `loss` and asserts every var in `vars` got a finite, non-zero gradient
/// (see [`assert_grads_nonzero`]).
pub fn assert_all_grads_nonzero(what: &str, loss: &Tensor, vars: &[(String, Var)]) -> Result<()> {
    let grads = loss.backward()?;
    assert_grads_nonzero(
        what,
        vars.iter()
            .map(|(name, v)| (name.as_str(), grads.get(v.as_tensor()))),
    );
    Ok(())
}

/// Runs a command; whether it succeeded, and its stdout followed by its stderr.
pub fn run_command(c: &mut std::process::Command) -> (bool, String) {
    let o = c.output().unwrap_or_else(|e| panic!("running {c:?}: {e}"));
    let s = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), s)
}

/// Largest |a − b| over all entries (same shape required; any float dtype).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let d = || -> Result<f32> {
        (a.to_dtype(DType::F32)? - b.to_dtype(DType::F32)?)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()
    };
    d().unwrap_or_else(|e| panic!("max_abs_diff({:?}, {:?}): {e}", a.shape(), b.shape()))
}

/// Largest |a − b| over two equally long slices.
pub fn max_abs_diff_slices(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "max_abs_diff_slices: lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// The metadata of a small tabular classification task (`scale` small, `arch` mlp_small).
pub fn tabular_meta(in_dim: usize, out_dim: usize) -> Metadata {
    Metadata {
        task: "tabular_cls".into(),
        in_dim: Some(in_dim),
        out_dim,
        scale: "small".into(),
        arch: "mlp_small".into(),
    }
}

/// `path`, after asserting the file `cargo xtask fetch` puts there exists (the panic says
/// how to get it).
pub fn fetched(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} missing: run `cargo xtask fetch` (or point $HYPER_DATA at a data dir holding it)",
        path.display()
    );
    path
}

/// The fetched all-MiniLM-L6-v2 directory ([`datasets::paths::minilm_dir`]), after asserting
/// its weights, config and tokenizer are there.
pub fn minilm_dir() -> PathBuf {
    let dir = datasets::paths::minilm_dir().unwrap_or_else(|e| panic!("{e}"));
    for f in ["model.safetensors", "config.json", "tokenizer.json"] {
        fetched(dir.join(f));
    }
    dir
}

/// Whether python3 can import onnxruntime and numpy (the ONNX checks' runtime); prints
/// the skip reason when it cannot, so a check that returns early says it was skipped.
pub fn onnxruntime_available() -> bool {
    let has = std::process::Command::new("python3")
        .args(["-c", "import onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        println!(
            "skipped: python3 has no onnxruntime/numpy (python3 -m pip install onnxruntime numpy)"
        );
    }
    has
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use std::panic::AssertUnwindSafe;

    #[test]
    fn grad_check_names_every_offender() {
        let dev = Device::Cpu;
        let a = Var::from_tensor(&Tensor::ones(3, DType::F32, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::ones(2, DType::F32, &dev).unwrap()).unwrap();
        let c = Var::from_tensor(&Tensor::ones(2, DType::F32, &dev).unwrap()).unwrap();
        // `b` enters multiplied by zero (zero gradient), `c` not at all (no gradient).
        let loss = (a.as_tensor().sum_all().unwrap()
            + (b.as_tensor() * Tensor::zeros(2, DType::F32, &dev).unwrap())
                .unwrap()
                .sum_all()
                .unwrap())
        .unwrap();
        let vars = vec![("a".to_string(), a), ("b".into(), b), ("c".into(), c)];
        assert_all_grads_nonzero("ok", &loss, &vars[..1]).unwrap();
        let e = std::panic::catch_unwind(AssertUnwindSafe(|| {
            assert_all_grads_nonzero("ctx", &loss, &vars)
        }))
        .unwrap_err();
        let e = e.downcast_ref::<String>().unwrap();
        assert!(
            e.starts_with("ctx: 2 of 3 tensors")
                && e.contains("`b` (sum |grad| = 0)")
                && e.contains("`c` (no gradient)")
                && !e.contains("`a`"),
            "{e}"
        );
        let e =
            std::panic::catch_unwind(|| assert_grads_nonzero::<&str>("empty", std::iter::empty()))
                .unwrap_err();
        assert!(e.downcast_ref::<String>().unwrap().contains("no tensors"));
    }

    #[test]
    fn differences() {
        let dev = Device::Cpu;
        let a = Tensor::new(&[[1f32, 2.], [3., 4.]], &dev).unwrap();
        let b = Tensor::new(&[[1f32, 2.5], [2., 4.]], &dev).unwrap();
        assert_eq!(max_abs_diff(&a, &b), 1.0);
        assert_eq!(max_abs_diff_slices(&[1.0, -2.0], &[1.5, 1.0]), 3.0);
        assert_eq!(max_abs_diff_slices(&[], &[]), 0.0);
    }

    #[test]
    fn fixture_and_meta() {
        assert!(fixtures::tiny_iris_csv().is_file());
        let m = tabular_meta(4, 3);
        assert!(m.validate().is_ok());
        assert_eq!((m.in_dim, m.out_dim), (Some(4), 3));
    }
}
