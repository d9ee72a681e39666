//! Where an output may go. Checked before any work starts, so a refusal costs nothing and
//! no user file is ever replaced: an input is never an output, an output never lands inside
//! an input folder or a model directory, and an existing output is replaced only when this
//! tool wrote it (a model directory with its manifest, or a predictions file).

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

/// `p` made absolute and with `.`/`..` and links resolved as far as it exists, so two
/// spellings of one file compare equal even when the file does not exist yet.
pub fn resolved(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    // Component by component: each existing prefix canonicalized (links resolved), so
    // a `..` after a link steps out of the link's target, as the file system does.
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
        if let Ok(canonical) = out.canonicalize() {
            out = canonical;
        }
    }
    out
}

/// The first directory at or above `p` that is a model directory (it has a manifest).
fn enclosing_model_dir(p: &Path) -> Option<PathBuf> {
    p.ancestors()
        .find(|a| a.join(crate::manifest::MANIFEST).is_file())
        .map(Path::to_path_buf)
}

/// Checks that writing `out` (a file, or a directory when `is_dir`) cannot touch any of
/// `inputs` (files or folders the command reads; `-` is standard input and skipped) nor
/// land inside a model directory.
fn check_disjoint(out: &Path, is_dir: bool, inputs: &[&Path]) -> Result<()> {
    let o = resolved(out);
    // The nearest existing folder above `out` must be a folder, not a file.
    if let Some(a) = o.ancestors().skip(1).find(|a| a.exists()) {
        if !a.is_dir() {
            bail!(
                "--out {}: {} is a file, not a folder; give an --out in a folder",
                out.display(),
                a.display()
            );
        }
    }
    for input in inputs.iter().filter(|i| i.as_os_str() != "-") {
        let i = resolved(input);
        if o == i {
            bail!(
                "--out {} is also an input ({}): refusing to overwrite it; give another --out",
                out.display(),
                input.display()
            );
        }
        if o.starts_with(&i) {
            bail!(
                "--out {} lies inside the input {}: refusing to write there; give an --out outside it",
                out.display(),
                input.display()
            );
        }
        if is_dir && i.starts_with(&o) {
            bail!(
                "--out {} would hold the input {}, and writing a model replaces the whole directory: give another --out",
                out.display(),
                input.display()
            );
        }
    }
    if let Some(m) = o.parent().and_then(enclosing_model_dir) {
        bail!(
            "--out {} lies inside the model directory {}: refusing to write there; give an --out outside it",
            out.display(),
            m.display()
        );
    }
    Ok(())
}

/// A model directory's `--out` (`generate`): not an input, not inside an input or another
/// model directory, and, when it exists, a model directory this tool wrote and nothing
/// else (the write itself checks that last part again, under its lock).
pub fn check_model_out(out: &Path, inputs: &[&Path]) -> Result<()> {
    check_disjoint(out, true, inputs)?;
    let o = resolved(out);
    if o.exists() && !o.is_dir() {
        bail!(
            "--out {} exists and is not a directory: refusing to replace it; give a new --out",
            out.display()
        );
    }
    if o.is_dir() {
        if let Err(why) = crate::manifest::replaceable(&o) {
            bail!(
                "--out {} exists and {why}: refusing to replace it (it may hold your files); give a new --out, or remove it yourself",
                out.display()
            );
        }
    }
    Ok(())
}

/// Whether the first line of `p` is the header of a predictions file this tool writes.
fn is_predictions_file(p: &Path) -> bool {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(p) else {
        return false;
    };
    let mut first = String::new();
    if std::io::BufReader::new(f).read_line(&mut first).is_err() {
        return false;
    }
    ["row,prediction", "file,prediction,"]
        .iter()
        .any(|h| first.starts_with(h))
}

/// A predictions file's `--out` (`predict`; `-` is standard output and always allowed):
/// not an input, not inside an input or a model directory, and, when it exists, a
/// regular file holding an earlier run's predictions.
pub fn check_predictions_out(out: &Path, inputs: &[&Path]) -> Result<()> {
    if out.as_os_str() == "-" {
        return Ok(());
    }
    check_file_out(
        out,
        inputs,
        is_predictions_file,
        "a predictions file written by `hyper-infer predict`",
    )
}

/// Whether `p` starts like an ONNX file this tool exported (its producer name sits in the
/// first bytes of the model).
fn is_onnx_export(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let n = std::fs::File::open(p)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].windows(11).any(|w| w == b"hyper-infer")
}

/// An exported file's `--out` (`export`): as [`check_predictions_out`], replacing only an
/// earlier export.
pub fn check_export_out(out: &Path, inputs: &[&Path]) -> Result<()> {
    check_file_out(
        out,
        inputs,
        is_onnx_export,
        "an ONNX file written by `hyper-infer export`",
    )
}

/// A file output: not an input, not inside an input or a model directory, and, when it
/// exists, a regular file that `ours` recognises as this tool's (`what` names it).
fn check_file_out(out: &Path, inputs: &[&Path], ours: fn(&Path) -> bool, what: &str) -> Result<()> {
    check_disjoint(out, false, inputs)?;
    if let Ok(meta) = std::fs::symlink_metadata(out) {
        if !meta.file_type().is_file() {
            bail!(
                "--out {} exists and is not a regular file (a link, a pipe, a device or a directory): refusing to replace it; give another --out, or `-` for standard output",
                out.display()
            );
        }
        if !ours(out) {
            bail!(
                "--out {} exists and is not {what}: refusing to overwrite it; give a new --out, or remove it yourself",
                out.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_paths_compare_equal_across_spellings() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        let a = resolved(&d.path().join("a/../a/x.csv"));
        assert_eq!(a, resolved(&d.path().join("a/x.csv")));
        assert_eq!(a, resolved(&d.path().join("a/./new/../x.csv")));
    }

    #[test]
    fn outputs_never_touch_inputs_or_foreign_directories() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data.csv");
        std::fs::write(&data, "a,y\n1,x\n").unwrap();
        let e = check_model_out(d.path(), &[&data]).unwrap_err().to_string();
        assert!(e.contains("would hold the input"), "{e}");
        let e = check_predictions_out(&data, &[&data])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is also an input"), "{e}");
        // A user's other file is not overwritten; an earlier predictions file is.
        let other = d.path().join("other.csv");
        std::fs::write(&other, "a,b\n").unwrap();
        let e = check_predictions_out(&other, &[&data])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a predictions file"), "{e}");
        std::fs::write(&other, "row,prediction,confidence\n0,x,1\n").unwrap();
        check_predictions_out(&other, &[&data]).unwrap();
        // A folder without a manifest is the user's.
        let folder = d.path().join("imgs");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("a.png"), b"x").unwrap();
        let e = check_model_out(&folder, &[]).unwrap_err().to_string();
        assert!(e.contains("has no `manifest.json`"), "{e}");
        check_model_out(&d.path().join("new"), &[&data, &folder]).unwrap();
    }
}
