//! `manifest.json`: the integrity record of every model directory, whatever the modality.
//! It lists each file `generate` wrote with its size and FNV-1a 64 hash. Loading checks
//! it, so a flipped byte or a file from another run is an error instead of a silently
//! wrong model; writing checks it too, because a directory is replaced only when the
//! manifest shows this tool wrote every file in it (anything else is the user's).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use hyper_core::io::atomic_write;
use hyper_core::ParamMap;
use serde::{Deserialize, Serialize};

/// The manifest's file name, in every model directory.
pub const MANIFEST: &str = "manifest.json";

const MANIFEST_FORMAT: &str = "hyper-model-dir/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileEntry {
    bytes: u64,
    fnv64: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: String,
    files: BTreeMap<String, FileEntry>,
}

fn entry(bytes: &[u8]) -> FileEntry {
    FileEntry {
        bytes: bytes.len() as u64,
        fnv64: format!("{:016x}", hyper_core::io::fnv1a64(bytes)),
    }
}

/// Writes `manifest.json` for every regular file in `dir` as it is now: the last step of
/// each model directory's `save`, public so fuzzing can reseal a mutated directory and
/// reach the parsers behind the integrity check.
pub fn write_manifest(dir: &Path) -> anyhow::Result<()> {
    let mut manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        files: BTreeMap::new(),
    };
    let list = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for e in list {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == MANIFEST || !e.file_type()?.is_file() {
            continue;
        }
        let b =
            std::fs::read(e.path()).with_context(|| format!("reading {}", e.path().display()))?;
        manifest.files.insert(name, entry(&b));
    }
    atomic_write(
        &dir.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )
}

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let mp = dir.join(MANIFEST);
    if !mp.is_file() {
        bail!(
            "{}: `{MANIFEST}` is missing, so its files cannot be checked (is {} a `hyper-infer generate` output? regenerate it)",
            dir.display(),
            dir.display()
        );
    }
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(&mp).with_context(|| format!("reading {}", mp.display()))?,
    )
    .with_context(|| format!("parsing {}", mp.display()))?;
    if manifest.format != MANIFEST_FORMAT {
        bail!(
            "{}: format `{}` is not supported (expected `{MANIFEST_FORMAT}`)",
            mp.display(),
            manifest.format
        );
    }
    Ok(manifest)
}

/// Checks every file `manifest.json` lists against its size and hash; returns their bytes
/// by name.
pub fn verify(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let manifest = read_manifest(dir)?;
    let mp = dir.join(MANIFEST);
    let mut files = BTreeMap::new();
    for (f, want) in &manifest.files {
        let p = dir.join(f);
        let b = std::fs::read(&p).with_context(|| {
            format!(
                "reading {} (listed in {}; regenerate the model)",
                p.display(),
                mp.display()
            )
        })?;
        let got = entry(&b);
        if &got != want {
            bail!(
                "{} is corrupt or from another run: {} bytes, hash {} vs {} bytes, hash {} in {} (regenerate the model)",
                p.display(),
                got.bytes,
                got.fnv64,
                want.bytes,
                want.fnv64,
                mp.display()
            );
        }
        files.insert(f.clone(), b);
    }
    Ok(files)
}

/// `Ok` when replacing `dir` loses nothing of the user's: it is empty, or it is a model
/// directory this tool wrote and nothing else (a valid manifest listing every file in it).
/// Otherwise the reason, for a refusal to replace it.
pub fn replaceable(dir: &Path) -> Result<(), String> {
    if std::fs::read_dir(dir).is_ok_and(|mut l| l.next().is_none()) {
        return Ok(());
    }
    written_by_this_tool(dir)
}

/// `Ok` when `dir` is a model directory this tool wrote and nothing else: a valid
/// manifest listing every file in it. Otherwise the reason.
pub fn written_by_this_tool(dir: &Path) -> Result<(), String> {
    let manifest = read_manifest(dir).map_err(|_| {
        format!("it has no `{MANIFEST}` of a model directory written by `hyper-infer generate`")
    })?;
    let list = std::fs::read_dir(dir).map_err(|e| format!("it cannot be listed: {e}"))?;
    let mut foreign = Vec::new();
    for e in list.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != MANIFEST && !manifest.files.contains_key(&name) {
            foreign.push(name);
        }
    }
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    let more = foreign.len().saturating_sub(5);
    foreign.truncate(5);
    Err(format!(
        "it holds files `hyper-infer generate` did not write: {}{}",
        foreign.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// Refuses weights with a NaN or an infinity, naming the tensor and the file: such a model
/// scores as garbage (NaN logits make every argmax class 0) instead of failing.
pub fn check_finite(params: &ParamMap, file: &str) -> anyhow::Result<()> {
    for (name, t) in params.iter() {
        let v = t
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(anyhow!(
                "{file}: tensor `{name}` has a non-finite value {} at flat index {i}",
                v[i]
            ));
        }
    }
    Ok(())
}
