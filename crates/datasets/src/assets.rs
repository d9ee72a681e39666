//! Fetched and shared files checked against `assets.toml` on first use, so a bit-flipped
//! encoder or data file is refused with its fix instead of being used silently.
//!
//! Hashing is paid once per version of a file: the (size, mtime) at which a file last
//! verified is cached in `<data>/.verified.json`, and a file whose size and mtime still
//! match is not hashed again. Paths outside the manifest (a user's CSV, test fixtures)
//! pass unchecked.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use crate::paths;

/// The manifest `cargo xtask fetch` places and verifies files by, compiled in so a
/// runtime check needs no workspace checkout.
const MANIFEST: &str = include_str!("../../../assets.toml");

/// Name of the verification cache under the data directory.
pub const CACHE_FILE: &str = ".verified.json";

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    asset: Vec<Asset>,
    #[serde(default)]
    shared: Vec<Shared>,
}

#[derive(Deserialize)]
struct Asset {
    files: Vec<AssetFile>,
}

#[derive(Deserialize)]
struct AssetFile {
    dest: String,
    sha256: String,
}

#[derive(Deserialize)]
struct Shared {
    path: String,
    sha256: String,
}

/// Expected sha256 by path relative to its root, for each root.
struct Expected {
    fetched: HashMap<String, String>,
    shared: HashMap<String, String>,
}

fn expected() -> &'static Expected {
    static EXPECTED: OnceLock<Expected> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        // The manifest is a compile-time constant checked by this crate's tests, so a parse
        // failure here is a build defect, not a user error.
        let m: Manifest = toml::from_str(MANIFEST).expect("assets.toml parses");
        Expected {
            fetched: m
                .asset
                .into_iter()
                .flat_map(|a| a.files)
                .map(|f| (f.dest, f.sha256))
                .collect(),
            shared: m.shared.into_iter().map(|s| (s.path, s.sha256)).collect(),
        }
    })
}

/// Which root a manifest file lives under: it decides the fix the error names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Origin {
    Fetched,
    Shared,
}

impl Origin {
    fn fix(self) -> &'static str {
        match self {
            Origin::Fetched => "run `cargo xtask fetch --force` to replace it",
            Origin::Shared => {
                "restore it from the original shared data (provenance in SOURCES.md there); \
                 `cargo xtask fetch` reports every shared file that differs"
            }
        }
    }
}

/// The manifest entry `path` is, if any.
fn lookup(path: &Path) -> Option<(Origin, &'static str)> {
    let exp = expected();
    [
        (paths::data_dir(), Origin::Fetched, &exp.fetched),
        (paths::shared_data_dir(), Origin::Shared, &exp.shared),
    ]
    .into_iter()
    .find_map(|(root, origin, map)| {
        let rel = path.strip_prefix(&root).ok()?;
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        map.get(&key).map(|sha| (origin, sha.as_str()))
    })
}

/// Checks `path` against the manifest, reading it to hash it unless the cache says this
/// version of the file already verified. Files outside the manifest pass.
pub fn verify_file(path: &Path) -> Result<()> {
    verify(path, None)
}

/// [`verify_file`] for a file whose raw bytes (before any gunzip) are already in memory,
/// so it is not read twice.
pub fn verify_bytes(path: &Path, raw: &[u8]) -> Result<()> {
    verify(path, Some(raw))
}

/// Every manifest file directly inside `dir` (e.g. the three MiniLM files), verified.
pub fn verify_dir(dir: &Path, files: &[&str]) -> Result<()> {
    files.iter().try_for_each(|f| verify_file(&dir.join(f)))
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Clone, Debug)]
struct Stamp {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

fn verify(path: &Path, raw: Option<&[u8]>) -> Result<()> {
    let Some((origin, want)) = lookup(path) else {
        return Ok(());
    };
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        // Absence is the loader's to report, with its own "run `cargo xtask fetch`".
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = path.to_string_lossy().into_owned();
    let cache_path = paths::data_dir().join(CACHE_FILE);
    let mut cache = read_cache(&cache_path);
    let stamp = |sha256: &str| Stamp {
        size: meta.len(),
        mtime_ns,
        sha256: sha256.to_string(),
    };
    if cache.get(&key) == Some(&stamp(want)) {
        return Ok(());
    }
    let got = match raw {
        Some(b) => hex::encode(Sha256::digest(b)),
        None => sha256_file(path).map_err(io)?,
    };
    if got != want {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            msg: format!(
                "sha256 {got} does not match assets.toml ({want}): the file is corrupt or was \
                 modified; {}",
                origin.fix()
            ),
        });
    }
    cache.insert(key, stamp(&got));
    write_cache(&cache_path, &cache);
    Ok(())
}

/// Lower-case hex sha256 of everything `r` yields (`cargo xtask fetch` hashes with it too).
pub fn sha256_reader<R: Read>(mut r: R) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_reader(std::io::BufReader::new(std::fs::File::open(path)?))
}

/// A missing or unreadable cache is an empty one: the cost is a re-hash, never an error.
fn read_cache(p: &Path) -> BTreeMap<String, Stamp> {
    std::fs::read(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Best effort and atomic (temp file + rename): a read-only data directory or a lost race
/// with another process only means the next use hashes again.
fn write_cache(p: &Path, cache: &BTreeMap<String, Stamp>) {
    let write = || -> std::io::Result<()> {
        let dir: PathBuf = p.parent().map_or_else(|| ".".into(), Path::to_path_buf);
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer_pretty(&mut tmp, cache)?;
        tmp.persist(p).map_err(|e| e.error)?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::debug!("not caching asset verification in {}: {e}", p.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_with_every_hash_well_formed() {
        let e = expected();
        assert!(e.fetched.contains_key("minilm/model.safetensors"));
        assert!(e.shared.contains_key("glue/CoLA/train.tsv"));
        for sha in e.fetched.values().chain(e.shared.values()) {
            assert_eq!(sha.len(), 64, "{sha}");
            assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()), "{sha}");
        }
    }

    #[test]
    fn files_outside_the_manifest_pass_unchecked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("user.csv");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        verify_file(&p).unwrap();
        verify_file(&paths::data_dir().join("not-in-the-manifest.bin")).unwrap();
    }

    #[test]
    fn relative_keys_use_forward_slashes() {
        let p = paths::data_dir().join("minilm").join("config.json");
        let (origin, sha) = lookup(&p).expect("minilm/config.json is in the manifest");
        assert_eq!(origin, Origin::Fetched);
        assert_eq!(sha, expected().fetched["minilm/config.json"]);
        let s = paths::shared_data_dir().join("glue/CoLA/dev.tsv");
        assert_eq!(lookup(&s).unwrap().0, Origin::Shared);
    }
}
