//! Atomic file writes: a crash or Ctrl-C never leaves a half-written file behind.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Writes `bytes` to `path` via a temporary file in the same directory, fsync, then
/// rename, so readers see either the old or the new content, never a prefix. Creates the
/// parent directory if it is missing.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    atomic_write_with(path, |f| {
        f.write_all(bytes)
            .with_context(|| format!("writing {}", path.display()))
    })
}

/// [`atomic_write`] for content produced by streaming: `fill` writes into the temporary
/// file, so a large download never has to sit in memory. If `fill` fails (say, a hash
/// check after the last byte), its error is returned unchanged, the temporary file is
/// removed and `path` keeps its old content.
pub fn atomic_write_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating directory {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    fill(tmp.as_file_mut())?;
    #[cfg(unix)]
    {
        // Temp files are created 0600; results and checkpoints are meant to be shared.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting permissions of {}", path.display()))?;
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming the temporary file onto {}", path.display()))?;
    Ok(())
}

/// FNV-1a 64-bit: a cheap content hash that pairs a config file with its tensor file.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/a.txt");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let n = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(n, 1);
        assert_ne!(fnv1a64(b"a"), fnv1a64(b"b"));
    }

    #[test]
    fn failed_fill_keeps_old_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        atomic_write(&p, b"old").unwrap();
        let err = atomic_write_with(&p, |f| {
            f.write_all(b"partial")?;
            anyhow::bail!("hash mismatch")
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "hash mismatch");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
