//! Checkpoints: a safetensors file plus a TOML header next to it (`X.safetensors`,
//! `X.toml`), both written atomically. The header records the owner's full config and a
//! hash of the tensor file, so a checkpoint from another config, a truncated file or a
//! mismatched pair is a clear error instead of silently wrong weights.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::io::{atomic_write, fnv1a64};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    pub format_version: u32,
    /// What wrote it (`tabular-generator`, ...).
    pub kind: String,
    /// FNV-1a 64 of the safetensors bytes, hex.
    pub tensors_fnv64: String,
    /// The config the checkpoint was trained with (compared on load).
    pub config: toml::Table,
    /// Progress and bookkeeping (epoch, step, best validation loss, ...).
    #[serde(default)]
    pub state: toml::Table,
}

pub fn paths(stem: &Path) -> (PathBuf, PathBuf) {
    (
        stem.with_extension("safetensors"),
        stem.with_extension("toml"),
    )
}

/// Where [`save`] stages new tensors before the header commits to them.
fn next_path(stem: &Path) -> PathBuf {
    stem.with_extension("safetensors.next")
}

/// Writes a checkpoint so that a kill at any instant leaves a loadable one (the old or
/// the new): the new tensors go to `stem.safetensors.next`, then the header (the commit
/// point, naming their hash) replaces `stem.toml`, then `.next` is renamed over
/// `stem.safetensors`. Each write is atomic; [`load`] finishes a save cut between the
/// last two steps.
pub fn save(
    stem: &Path,
    kind: &str,
    config: toml::Table,
    state: toml::Table,
    tensors: &[(String, Tensor)],
) -> anyhow::Result<()> {
    let (st_path, toml_path) = paths(stem);
    let bytes = safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), None)
        .with_context(|| format!("serializing tensors for {}", st_path.display()))?;
    let header = CheckpointHeader {
        format_version: FORMAT_VERSION,
        kind: kind.to_string(),
        tensors_fnv64: format!("{:016x}", fnv1a64(&bytes)),
        config,
        state,
    };
    let next = next_path(stem);
    atomic_write(&next, &bytes)?;
    atomic_write(&toml_path, toml::to_string(&header)?.as_bytes())?;
    std::fs::rename(&next, &st_path)
        .with_context(|| format!("renaming {} to {}", next.display(), st_path.display()))?;
    Ok(())
}

pub struct Loaded {
    pub header: CheckpointHeader,
    pub tensors: HashMap<String, Tensor>,
}

/// Reads a checkpoint written by [`save`], verifying kind, version and tensor hash.
pub fn load(stem: &Path, kind: &str, device: &Device) -> anyhow::Result<Loaded> {
    let (st_path, toml_path) = paths(stem);
    let text = std::fs::read_to_string(&toml_path)
        .with_context(|| format!("reading checkpoint header {}", toml_path.display()))?;
    let header: CheckpointHeader = toml::from_str(&text)
        .with_context(|| format!("parsing checkpoint header {}", toml_path.display()))?;
    if header.format_version != FORMAT_VERSION {
        bail!(
            "{}: checkpoint format {} is not supported (expected {FORMAT_VERSION})",
            toml_path.display(),
            header.format_version
        );
    }
    if header.kind != kind {
        bail!(
            "{}: checkpoint is a `{}`, expected a `{kind}`",
            toml_path.display(),
            header.kind
        );
    }
    let hash = |b: &[u8]| format!("{:016x}", fnv1a64(b));
    let mut bytes = match std::fs::read(&st_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", st_path.display())),
    };
    let next = next_path(stem);
    if bytes.as_deref().map(hash).as_ref() != Some(&header.tensors_fnv64) && next.is_file() {
        // A save killed after its header committed: its tensors are still staged.
        let staged = std::fs::read(&next).with_context(|| format!("reading {}", next.display()))?;
        if hash(&staged) == header.tensors_fnv64 {
            std::fs::rename(&next, &st_path).with_context(|| {
                format!("completing the interrupted save of {}", st_path.display())
            })?;
            bytes = Some(staged);
        }
    }
    let bytes = bytes.ok_or_else(|| {
        anyhow!(
            "{} is missing (its header {} exists)",
            st_path.display(),
            toml_path.display()
        )
    })?;
    let h = hash(&bytes);
    if h != header.tensors_fnv64 {
        bail!(
            "{} is corrupt or truncated ({} bytes; hash {h} does not match {} recorded in {})",
            st_path.display(),
            bytes.len(),
            header.tensors_fnv64,
            toml_path.display()
        );
    }
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| anyhow!("{}: not a valid safetensors file: {e}", st_path.display()))?;
    Ok(Loaded { header, tensors })
}

/// Sets each of `vars` from the tensor of the same name in `tensors` (a loaded
/// checkpoint); every var must be present with its shape. `owner` names whose tensors
/// they are in the error ("generator", "encoder"), `hint` says what a missing one means.
pub fn restore_vars(
    vars: &[(String, Var)],
    tensors: &HashMap<String, Tensor>,
    owner: &str,
    hint: &str,
) -> anyhow::Result<()> {
    for (name, var) in vars {
        let t = tensors
            .get(name)
            .ok_or_else(|| anyhow!("checkpoint lacks {owner} tensor `{name}` ({hint})"))?;
        if t.dims() != var.dims() {
            bail!(
                "checkpoint tensor `{name}` has shape {:?}, this config expects {:?}",
                t.dims(),
                var.dims()
            );
        }
        var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
    }
    Ok(())
}

/// Keys whose values differ between two configs (dotted paths), for "checkpoint from
/// another config" errors.
pub fn config_diff(a: &toml::Table, b: &toml::Table) -> Vec<String> {
    fn walk(prefix: &str, a: &toml::Table, b: &toml::Table, out: &mut Vec<String>) {
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match (a.get(k), b.get(k)) {
                (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => walk(&p, x, y, out),
                (x, y) if x == y => {}
                (x, y) => out.push(format!(
                    "{p}: {} vs {}",
                    x.map(|v| v.to_string())
                        .unwrap_or_else(|| "(absent)".into()),
                    y.map(|v| v.to_string())
                        .unwrap_or_else(|| "(absent)".into())
                )),
            }
        }
    }
    let mut out = Vec::new();
    walk("", a, b, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_bit_exact_and_truncation_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("ck");
        let dev = Device::Cpu;
        let t = Tensor::new(&[1.0f32, f32::MIN_POSITIVE, -0.0, 2.718_281_7, 1e-40], &dev).unwrap();
        let mut cfg = toml::Table::new();
        cfg.insert("a".into(), 1.into());
        save(
            &stem,
            "test",
            cfg.clone(),
            toml::Table::new(),
            &[("x".into(), t.clone())],
        )
        .unwrap();
        let l = load(&stem, "test", &dev).unwrap();
        let a: Vec<u32> = t
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        let b: Vec<u32> = l.tensors["x"]
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(a, b);
        assert_eq!(l.header.config, cfg);
        let e = load(&stem, "other", &dev).err().unwrap().to_string();
        assert!(e.contains("expected a `other`"), "{e}");
        let (st, _) = paths(&stem);
        let bytes = std::fs::read(&st).unwrap();
        std::fs::write(&st, &bytes[..bytes.len() - 3]).unwrap();
        let e = load(&stem, "test", &dev).err().unwrap().to_string();
        assert!(e.contains("corrupt or truncated"), "{e}");
        let mut c2 = cfg.clone();
        c2.insert("a".into(), 2.into());
        assert_eq!(config_diff(&cfg, &c2), vec!["a: 1 vs 2".to_string()]);
    }

    /// A save killed at each point between its three steps leaves a loadable checkpoint:
    /// the old one before the header commits, the new one after.
    #[test]
    fn a_save_killed_between_its_steps_leaves_the_old_or_the_new_checkpoint() {
        let dev = Device::Cpu;
        let dir = tempfile::tempdir().unwrap();
        let x = |v: f32| vec![("x".to_string(), Tensor::new(&[v, v + 1.0], &dev).unwrap())];
        let value = |stem: &Path| {
            load(stem, "t", &dev).unwrap().tensors["x"]
                .to_vec1::<f32>()
                .unwrap()[0]
        };
        let (old, new) = (dir.path().join("old"), dir.path().join("new"));
        save(&old, "t", toml::Table::new(), toml::Table::new(), &x(1.0)).unwrap();
        save(&new, "t", toml::Table::new(), toml::Table::new(), &x(2.0)).unwrap();
        assert!(
            !next_path(&new).exists(),
            "a finished save leaves no staged file"
        );
        let (new_st, new_toml) = paths(&new);
        let run = |stage: bool, commit: bool| {
            let stem = dir.path().join(format!("ck-{stage}-{commit}"));
            let (st, toml) = paths(&stem);
            std::fs::copy(paths(&old).0, &st).unwrap();
            std::fs::copy(paths(&old).1, &toml).unwrap();
            if stage {
                std::fs::copy(&new_st, next_path(&stem)).unwrap();
            }
            if commit {
                std::fs::copy(&new_toml, &toml).unwrap();
            }
            stem
        };
        assert_eq!(
            value(&run(true, false)),
            1.0,
            "killed before the header: old"
        );
        let s = run(true, true);
        assert_eq!(
            value(&s),
            2.0,
            "killed after the header: new, rolled forward"
        );
        assert!(!next_path(&s).exists() && value(&s) == 2.0);
        // A committed header whose tensors are nowhere is an error, not the old weights.
        let e = load(&run(false, true), "t", &dev)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("corrupt or truncated"), "{e}");
    }
}
