//! The seeded 60/10/30 split a model was generated from, recorded in its directory, so
//! `eval --split test` scores rows the model never trained on, and a fingerprint of the
//! data, so scoring another file says that its split is redrawn instead of staying silent.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSplit {
    pub seed: u64,
    /// Rows (images) of the data the split was drawn over.
    pub rows: usize,
    /// FNV-1a 64 of the data: a file's bytes, or a folder's sorted file names and sizes.
    pub fnv64: String,
}

/// The fingerprint of a file's bytes (`-`, standard input, has none: `""`).
pub fn file_fingerprint(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return Ok(String::new());
    }
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!("{:016x}", hyper_core::io::fnv1a64(&b)))
}

/// The fingerprint of a folder tree: every file's path below `dir` and its size, sorted.
pub fn folder_fingerprint(dir: &Path) -> anyhow::Result<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
        for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                walk(&p, root, out)?;
            } else {
                let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
                out.push(format!("{rel}\t{}", e.metadata()?.len()));
            }
        }
        Ok(())
    }
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries)?;
    entries.sort();
    Ok(format!(
        "{:016x}",
        hyper_core::io::fnv1a64(entries.join("\n").as_bytes())
    ))
}
