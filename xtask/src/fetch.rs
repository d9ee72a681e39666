//! `cargo xtask fetch`: obtain every registry asset listed in `assets.toml`, extract only the
//! needed files into the data directory, verify their sha256, and report on the shared
//! (non-registry) data.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::clients;
use crate::manifest::{Asset, AssetFile, Manifest, SharedFile};
use crate::verify::{check_file, FileState};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fetch only this asset (a `name` in assets.toml).
    #[arg(long)]
    pub only: Option<String>,
    /// Re-download and re-extract even when the files are present and verified.
    #[arg(long)]
    pub force: bool,
    /// Where fetched assets go.
    #[arg(long, env = "HYPER_DATA")]
    pub data_dir: Option<PathBuf>,
    /// Where the non-registry data (GLUE, four UCI sets) is looked for.
    #[arg(long, env = "HYPER_SHARED_DATA")]
    pub shared_data: Option<PathBuf>,
    /// The asset manifest.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
}

/// An asset with the files it still needs (missing, or failing their hash).
#[derive(Debug)]
pub struct Todo<'a> {
    pub asset: &'a Asset,
    pub files: Vec<&'a AssetFile>,
    pub notes: Vec<String>,
}

/// Decides what must be fetched. Without `force`, an asset whose files are all present and
/// verified is left alone; with it, every file of every selected asset is redone.
pub fn plan<'a>(assets: &[&'a Asset], data_dir: &Path, force: bool) -> Result<Vec<Todo<'a>>> {
    let mut todo = Vec::new();
    for a in assets {
        let mut files = Vec::new();
        let mut notes = Vec::new();
        for f in &a.files {
            let dest = data_dir.join(&f.dest);
            match check_file(&dest, &f.sha256)? {
                FileState::Verified if !force => continue,
                FileState::Verified => notes.push(format!("{}: forced", f.dest)),
                FileState::Missing => notes.push(format!("{}: missing", f.dest)),
                FileState::Mismatch { actual } => notes.push(format!(
                    "{}: sha256 {actual} does not match {}, replacing",
                    f.dest, f.sha256
                )),
            }
            files.push(f);
        }
        if !files.is_empty() {
            todo.push(Todo {
                asset: a,
                files,
                notes,
            });
        }
    }
    Ok(todo)
}

/// A spinner (hidden when stderr is not a terminal); `bytes` adds a byte counter.
fn spinner(prefix: &str, bytes: bool) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    let template = if bytes {
        "{spinner} {prefix:<14} {msg} {binary_bytes:>10} {elapsed}"
    } else {
        "{spinner} {prefix:<14} {msg} {elapsed}"
    };
    pb.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_prefix(prefix.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

fn fetch_one(todo: &Todo, data_dir: &Path) -> Result<()> {
    let a = todo.asset;
    let pb = spinner(&a.name, true);
    let tmp = tempfile::Builder::new().prefix("hyper-fetch-").tempdir()?;
    let archive = clients::obtain(a, tmp.path(), &|m| pb.set_message(m));
    let result = archive.and_then(|archive| {
        pb.set_message(format!("extracting {} file(s)", todo.files.len()));
        archive.extract(&todo.files, data_dir, |n| pb.inc(n))
    });
    pb.finish_and_clear();
    result
}

pub fn run(args: Args) -> Result<()> {
    let manifest = Manifest::load(
        &args
            .manifest
            .clone()
            .unwrap_or_else(crate::manifest::default_path),
    )?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(datasets::paths::data_dir);
    let shared_dir = args
        .shared_data
        .clone()
        .unwrap_or_else(datasets::paths::shared_data_dir);
    let shared_dir = shared_dir.canonicalize().unwrap_or(shared_dir);
    let selected: Vec<&Asset> = match &args.only {
        Some(n) => vec![manifest.find(n)?],
        None => manifest.assets.iter().collect(),
    };

    let started = Instant::now();
    let check = spinner("verifying", false);
    check.set_message(data_dir.display().to_string());
    let todo = plan(&selected, &data_dir, args.force)?;
    check.finish_and_clear();

    let mut failed = Vec::new();
    if todo.is_empty() {
        println!(
            "all {} assets present and verified, nothing to do ({})",
            selected.len(),
            data_dir.display()
        );
    } else {
        println!(
            "fetching {} of {} assets into {}",
            todo.len(),
            selected.len(),
            data_dir.display()
        );
        for t in &todo {
            let t0 = Instant::now();
            for n in &t.notes {
                tracing::info!("{}: {n}", t.asset.name);
            }
            match fetch_one(t, &data_dir) {
                Ok(()) => println!(
                    "  ok     {:<14} {:<40} {} file(s) verified in {:.1}s",
                    t.asset.name,
                    t.asset.spec(),
                    t.files.len(),
                    t0.elapsed().as_secs_f64()
                ),
                Err(e) => {
                    println!("  FAILED {:<14} {:#}", t.asset.name, e);
                    failed.push(t.asset.name.clone());
                }
            }
        }
        println!("done in {:.1}s", started.elapsed().as_secs_f64());
    }
    report_shared(&manifest.shared, &shared_dir)?;
    if !failed.is_empty() {
        bail!("{} asset(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

/// Present/verified/missing for the shared data, with the exact paths expected when absent.
/// Absent shared data is not an error: the catalog lists those datasets as unavailable.
pub fn shared_report(shared: &[SharedFile], dir: &Path) -> Result<(usize, Vec<String>)> {
    let mut ok = 0;
    let mut problems = Vec::new();
    for s in shared {
        let p = dir.join(&s.path);
        match check_file(&p, &s.sha256)? {
            FileState::Verified => ok += 1,
            FileState::Missing => {
                problems.push(format!("missing  {} ({})", p.display(), s.dataset))
            }
            FileState::Mismatch { actual } => problems.push(format!(
                "MODIFIED {} ({}): sha256 {actual}, expected {}",
                p.display(),
                s.dataset,
                s.sha256
            )),
        }
    }
    Ok((ok, problems))
}

fn report_shared(shared: &[SharedFile], dir: &Path) -> Result<()> {
    if shared.is_empty() {
        return Ok(());
    }
    let (ok, problems) = shared_report(shared, dir)?;
    if problems.is_empty() {
        println!(
            "shared data: all {} files present and verified ({})",
            shared.len(),
            dir.display()
        );
        return Ok(());
    }
    if !dir.is_dir() {
        println!(
            "shared data: directory {} not found (set HYPER_SHARED_DATA or --shared-data); \
             the datasets below will be listed as unavailable. Expected files:",
            dir.display()
        );
    } else {
        println!(
            "shared data: {ok} of {} files present and verified in {}; problems:",
            shared.len(),
            dir.display()
        );
    }
    let n = problems.len();
    for p in problems {
        println!("  {p}");
    }
    println!("  (provenance and layout: SOURCES.md in that directory)");
    // No shared directory at all is a machine without that data (its datasets are listed
    // as unavailable); a present one with missing or modified files is broken.
    if dir.is_dir() {
        bail!(
            "shared data in {} has {n} missing or modified file(s), listed above",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::sha256_reader;

    fn asset(name: &str, files: &[(&str, &[u8])]) -> Asset {
        Asset {
            name: name.into(),
            kind: crate::manifest::Kind::Pypi,
            package: name.into(),
            version: "1.0".into(),
            what: String::new(),
            files: files
                .iter()
                .map(|(dest, data)| AssetFile {
                    member: format!("pkg/{dest}"),
                    dest: dest.to_string(),
                    sha256: sha256_reader(*data).unwrap(),
                })
                .collect(),
        }
    }

    #[test]
    fn plan_is_empty_only_when_everything_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let a = asset("a", &[("a/x.csv", b"xx"), ("a/y.csv", b"yy")]);
        let b = asset("b", &[("b/z.bin", b"zz")]);
        let all = [&a, &b];

        let t = plan(&all, dir.path(), false).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].files.len(), 2);

        // Place a's files through the verified path; b still missing.
        for f in &a.files {
            let data = if f.dest.ends_with("x.csv") {
                b"xx"
            } else {
                b"yy"
            };
            crate::verify::place_verified(
                &data[..],
                &dir.path().join(&f.dest),
                &f.sha256,
                "t",
                |_| {},
            )
            .unwrap();
        }
        let t = plan(&all, dir.path(), false).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].asset.name, "b");

        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/z.bin"), b"zz").unwrap();
        assert!(
            plan(&all, dir.path(), false).unwrap().is_empty(),
            "second run must do nothing"
        );
        // --force redoes everything selected.
        let forced = plan(&all, dir.path(), true).unwrap();
        assert_eq!(forced.iter().map(|t| t.files.len()).sum::<usize>(), 3);

        // Tampering with one file brings back exactly that file.
        std::fs::write(dir.path().join("a/y.csv"), b"y!").unwrap();
        let t = plan(&all, dir.path(), false).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].files.len(), 1);
        assert_eq!(t[0].files[0].dest, "a/y.csv");
        assert!(t[0].notes[0].contains("does not match"), "{:?}", t[0].notes);
    }

    #[test]
    fn shared_report_names_missing_and_modified_files() {
        let dir = tempfile::tempdir().unwrap();
        let sha = sha256_reader(&b"tsv"[..]).unwrap();
        let shared = vec![
            SharedFile {
                dataset: "GLUE CoLA".into(),
                path: "glue/CoLA/train.tsv".into(),
                sha256: sha.clone(),
            },
            SharedFile {
                dataset: "GLUE RTE".into(),
                path: "glue/RTE/dev.tsv".into(),
                sha256: sha.clone(),
            },
            SharedFile {
                dataset: "UCI Car".into(),
                path: "uci/car.data".into(),
                sha256: sha,
            },
        ];
        std::fs::create_dir_all(dir.path().join("glue/CoLA")).unwrap();
        std::fs::write(dir.path().join("glue/CoLA/train.tsv"), b"tsv").unwrap();
        std::fs::create_dir_all(dir.path().join("uci")).unwrap();
        std::fs::write(dir.path().join("uci/car.data"), b"tsv!").unwrap();
        let (ok, problems) = shared_report(&shared, dir.path()).unwrap();
        assert_eq!(ok, 1);
        assert_eq!(problems.len(), 2);
        let expected = dir.path().join("glue/RTE/dev.tsv");
        assert!(
            problems[0].contains(&format!("missing  {}", expected.display())),
            "{problems:?}"
        );
        assert!(problems[1].starts_with("MODIFIED") && problems[1].contains("car.data"));
        // `fetch` fails on a present but broken shared directory, not on an absent one.
        let e = report_shared(&shared, dir.path()).unwrap_err().to_string();
        assert!(e.contains("2 missing or modified"), "{e}");
        report_shared(&shared, &dir.path().join("absent")).unwrap();
    }

    /// The real data directory (filled by `cargo xtask fetch`, which CI runs first) verifies
    /// against the checked-in manifest.
    #[test]
    fn fetched_data_matches_manifest() {
        let m = Manifest::load(&crate::manifest::default_path()).unwrap();
        let data = datasets::paths::data_dir();
        assert!(
            data.is_dir(),
            "{} absent: run `cargo xtask fetch`",
            data.display()
        );
        let all: Vec<&Asset> = m.assets.iter().collect();
        let todo = plan(&all, &data, false).unwrap();
        let bad: Vec<_> = todo.iter().flat_map(|t| t.notes.clone()).collect();
        assert!(bad.is_empty(), "{bad:?}");
    }
}
