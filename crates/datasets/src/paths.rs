//! Where data lives. Fetched registry assets go under `$HYPER_DATA` (default `<workspace>/data`);
//! data no registry ships is read in place from `$HYPER_SHARED_DATA`
//! (default `<workspace>/../shared/data`, see its `SOURCES.md`).

use std::path::PathBuf;

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Root of fetched assets (`cargo xtask fetch` writes here).
pub fn data_dir() -> PathBuf {
    std::env::var_os("HYPER_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("data"))
}

/// Root of the non-registry data (GLUE, four UCI sets).
pub fn shared_data_dir() -> PathBuf {
    std::env::var_os("HYPER_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"))
}

/// The fetched all-MiniLM-L6-v2 (`config.json`, `model.safetensors`, `tokenizer.json`):
/// the text encoder every generator uses. Its files are checked against `assets.toml`
/// (once per file version, see [`crate::assets`]), so a corrupt encoder is refused here.
pub fn minilm_dir() -> crate::Result<PathBuf> {
    let dir = data_dir().join("minilm");
    crate::assets::verify_dir(
        &dir,
        &["config.json", "model.safetensors", "tokenizer.json"],
    )?;
    Ok(dir)
}
