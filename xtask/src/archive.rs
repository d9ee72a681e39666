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

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn octal(b: &[u8]) -> Result<u64> {
    if b.first().is_some_and(|&c| c & 0x80 != 0) {
        bail!("base-256 tar sizes are not supported");
    }
    let s = cstr(b);
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).with_context(|| format!("bad octal field `{s}` in tar header"))
}

/// Reads `buf.len()` bytes, or returns `false` on a clean end of stream before the first byte.
fn read_block<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => bail!("truncated tar header"),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Minimal ustar/GNU tar walker (what `cargo package` writes): calls `f` with each regular
/// file's path and a reader limited to its body. GNU long names (`L`) are honoured; other
/// special entries (directories, pax headers, links) are skipped.
pub fn for_each_tar_file<R: Read>(
    mut r: R,
    mut f: impl FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let mut header = [0u8; 512];
    let mut long_name: Option<String> = None;
    while read_block(&mut r, &mut header)? {
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let size = octal(&header[124..136])?;
        let padding = size.div_ceil(512) * 512 - size;
        let typeflag = header[156];
        let name = match long_name.take() {
            Some(n) => n,
            None => {
                let n = cstr(&header[..100]);
                let prefix = if &header[257..262] == b"ustar" {
                    cstr(&header[345..500])
                } else {
                    String::new()
                };
                if prefix.is_empty() {
                    n
                } else {
                    format!("{prefix}/{n}")
                }
            }
        };
        let mut body = (&mut r).take(size);
        match typeflag {
            b'L' => {
                let mut buf = Vec::new();
                body.read_to_end(&mut buf)?;
                long_name = Some(cstr(&buf));
            }
            b'0' | 0 => f(&name, &mut body)?,
            _ => {}
        }
        io::copy(&mut body, &mut io::sink())?;
        let short_body = body.limit() != 0;
        let skipped = io::copy(&mut (&mut r).take(padding), &mut io::sink())?;
        if short_body || skipped != padding {
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
        let mut out = Vec::new();
        for (name, data) in entries {
            let mut h = [0u8; 512];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[100..108].copy_from_slice(b"0000644\0");
            let size = format!("{:011o}\0", data.len());
            h[124..136].copy_from_slice(size.as_bytes());
            h[156] = b'0';
            h[257..263].copy_from_slice(b"ustar\0");
            out.extend_from_slice(&h);
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
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
        // Cut inside the second body: must be an error, not a short file.
        assert!(for_each_tar_file(&tar[..1200], |_, r| {
            io::copy(r, &mut io::sink())?;
            Ok(())
        })
        .is_err());
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
