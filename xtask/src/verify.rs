//! sha256 checks and verified, atomic placement of extracted files.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
pub use datasets::assets::sha256_reader;
use hyper_core::io::atomic_write_with;
use sha2::{Digest, Sha256};

/// What is on disk at a destination, compared with the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Verified,
    Missing,
    Mismatch { actual: String },
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    sha256_reader(BufReader::new(f)).with_context(|| format!("cannot read {}", path.display()))
}

pub fn check_file(path: &Path, expected: &str) -> Result<FileState> {
    if !path.is_file() {
        return Ok(FileState::Missing);
    }
    let actual = sha256_file(path)?;
    Ok(if actual == expected {
        FileState::Verified
    } else {
        FileState::Mismatch { actual }
    })
}

/// Streams `src` into a temporary file next to `dest` (through
/// [`hyper_core::io::atomic_write_with`]), hashing as it goes, and renames it onto `dest`
/// only when the hash equals `expected`. On a mismatch (truncated or tampered archive) the
/// temporary file is removed, `dest` is left untouched, and the error names the file and
/// both hashes. `on_bytes` reports progress.
pub fn place_verified<R: Read>(
    mut src: R,
    dest: &Path,
    expected: &str,
    origin: &str,
    mut on_bytes: impl FnMut(u64),
) -> Result<()> {
    atomic_write_with(dest, |tmp| {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = src
                .read(&mut buf)
                .with_context(|| format!("cannot read {origin}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .with_context(|| format!("cannot write {}", dest.display()))?;
            on_bytes(n as u64);
        }
        let actual = hex::encode(h.finalize());
        if actual != expected {
            bail!(
                "sha256 mismatch for {} (from {origin}): expected {expected}, got {actual}; \
                 the file was not used",
                dest.display()
            );
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn known_hash() {
        assert_eq!(sha256_reader(&b"hello"[..]).unwrap(), HELLO_SHA);
    }

    #[test]
    fn places_file_when_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/deeper/x.csv");
        let mut seen = 0;
        place_verified(&b"hello"[..], &dest, HELLO_SHA, "test", |n| seen += n).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(seen, 5);
        assert_eq!(leftovers(dest.parent().unwrap()), vec!["x.csv".to_string()]);
        assert_eq!(check_file(&dest, HELLO_SHA).unwrap(), FileState::Verified);
    }

    #[test]
    fn tampered_content_is_rejected_and_not_placed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.csv");
        let err = place_verified(&b"hellO"[..], &dest, HELLO_SHA, "wheel w.whl", |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.csv"), "{err}");
        assert!(err.contains(&format!("expected {HELLO_SHA}")), "{err}");
        assert!(err.contains("got "), "{err}");
        assert!(!dest.exists());
        assert!(leftovers(dir.path()).is_empty(), "temp file left behind");
    }

    #[test]
    fn mismatch_keeps_previous_file_intact() {
        // Atomicity: a failed replacement must not clobber or truncate what was there.
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.csv");
        std::fs::write(&dest, b"old").unwrap();
        assert!(place_verified(&b"truncat"[..], &dest, HELLO_SHA, "t", |_| {}).is_err());
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        assert!(matches!(
            check_file(&dest, HELLO_SHA).unwrap(),
            FileState::Mismatch { .. }
        ));
        place_verified(&b"hello"[..], &dest, HELLO_SHA, "t", |_| {}).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(leftovers(dir.path()), vec!["x.csv".to_string()]);
    }

    #[test]
    fn missing_file_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            check_file(&dir.path().join("none"), HELLO_SHA).unwrap(),
            FileState::Missing
        );
    }
}
