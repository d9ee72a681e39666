//! A generated model on disk (format documented in this crate's README): written as a
//! unit by `generate`, read and validated by `eval` and `predict`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context};
use candle_core::Device;
use datasets::preprocess::Preprocessor;
use datasets::Table;
use hyper_core::io::atomic_write;
use hyper_core::{Metadata, ParamMap};
use serde::{Deserialize, Serialize};
use target_models::mlp::{Mlp, MlpConfig};
use target_models::TargetModel;

/// `model.safetensors` `__metadata__` key holding the target architecture (JSON), so the
/// weights file alone says how to rebuild the model.
pub const ARCH_METADATA_KEY: &str = "hyper.architecture";

/// What `eval`/`predict` need besides the weights: the target architecture and the
/// exact input columns the model was generated for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub mlp: MlpConfig,
    pub dataset: String,
    pub columns: Vec<String>,
    pub target: String,
    pub class_names: Vec<String>,
    /// Seen task whose heads produced the task-dependent tensors.
    pub source_task: String,
    pub similarity: f32,
    pub adapted: Vec<String>,
    /// Seed of the 60/10/30 split the preprocessing was fitted on (for `eval --split`).
    pub seed: u64,
    /// Rows and fingerprint ([`crate::data_split`]) of the data the model was generated
    /// from, so `eval --split` on other data warns that its split is redrawn.
    #[serde(default)]
    pub data_rows: Option<usize>,
    #[serde(default)]
    pub data_fnv64: Option<String>,
    /// A regression model (one output, the value itself): how it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<crate::regression::RegressionInfo>,
    /// How the output layer was made when it was fitted ([`crate::any_table::fitted_readout`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<serde_json::Value>,
}

/// The architecture record stored in `model.safetensors`' `__metadata__`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsArchitecture {
    /// `mlp`: `mlp.{i}.weight` `[out, in]`, `mlp.{i}.bias` `[out]` (PyTorch `nn.Linear`),
    /// `activation` between layers, softmax over the last layer's outputs.
    pub target: String,
    pub in_dim: usize,
    pub out_dim: usize,
    pub hidden: Vec<usize>,
    pub activation: target_models::mlp::Activation,
    pub class_names: Vec<String>,
    /// `regression`: one output, the predicted value (no softmax). Absent: classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// A generated model: `model.safetensors`, `metadata.json`, `requirement.txt`,
/// `preprocessor.json`, `model.json`.
pub struct ModelDir {
    pub params: ParamMap,
    pub metadata: Metadata,
    pub requirement: String,
    pub preprocessor: Preprocessor,
    pub info: ModelInfo,
}

pub use crate::manifest::{write_manifest, MANIFEST};

const FILES: [&str; 5] = [
    "model.safetensors",
    "metadata.json",
    "requirement.txt",
    "preprocessor.json",
    "model.json",
];

impl ModelDir {
    pub fn mlp(&self) -> Mlp {
        Mlp::new(self.info.mlp.clone())
    }

    fn weights_architecture(&self) -> WeightsArchitecture {
        WeightsArchitecture {
            target: "mlp".into(),
            in_dim: self.metadata.in_dim.unwrap_or(self.info.columns.len()),
            out_dim: self.metadata.out_dim,
            hidden: self.info.mlp.hidden.clone(),
            activation: self.info.mlp.activation,
            class_names: self.info.class_names.clone(),
            task: self.info.regression.as_ref().map(|_| "regression".into()),
        }
    }

    /// Writes the directory as a unit: every file goes into a staging directory beside
    /// `dir`, which then replaces `dir` by rename, so a reader never sees the weights of
    /// one run beside the preprocessing of another. Writers of one `dir` take turns on a
    /// lock file beside it (`.<name>.lock`): a second `generate` into the same `--out`
    /// waits, then replaces the first one's model whole.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        self.save_with_card(dir, &Default::default())
    }

    /// [`Self::save`] with what the model card says beyond the directory's own files.
    pub fn save_with_card(
        &self,
        dir: &Path,
        notes: &crate::model_card::CardNotes,
    ) -> anyhow::Result<()> {
        self.validate()
            .context("refusing to write an inconsistent model")?;
        write_dir_atomically(dir, |s| {
            atomic_write(
                &s.join(crate::model_card::CARD),
                crate::model_card::table_card(self, notes).as_bytes(),
            )?;
            let arch = serde_json::to_string(&self.weights_architecture())?;
            let bytes = safetensors::serialize(
                self.params.iter().map(|(k, t)| (k.as_str(), t)),
                Some(HashMap::from([(ARCH_METADATA_KEY.to_string(), arch)])),
            )?;
            let contents: [(&str, Vec<u8>); 5] = [
                ("model.safetensors", bytes),
                ("metadata.json", pretty(&self.metadata)?.into_bytes()),
                (
                    "requirement.txt",
                    format!("{}\n", self.requirement).into_bytes(),
                ),
                (
                    "preprocessor.json",
                    pretty(&self.preprocessor)?.into_bytes(),
                ),
                ("model.json", pretty(&self.info)?.into_bytes()),
            ];
            for (f, b) in &contents {
                atomic_write(&s.join(f), b)?;
            }
            Ok(())
        })
    }

    pub fn load(dir: &Path, dev: &Device) -> anyhow::Result<Self> {
        crate::model_dir::ensure_model_dir(dir)?;
        // model.json first: it says what kind of model a directory holds.
        for f in ["model.json"].iter().chain(FILES.iter()).chain([&MANIFEST]) {
            if !dir.join(f).is_file() {
                bail!(
                    "{}: `{f}` is missing (is {} a `hyper-infer generate` output? regenerate it)",
                    dir.display(),
                    dir.display()
                );
            }
        }
        let mut files = crate::manifest::verify(dir)?;
        for f in FILES {
            ensure!(
                files.contains_key(f),
                "{}: lists no `{f}` (regenerate the model)",
                dir.join(MANIFEST).display()
            );
        }
        let files: HashMap<&str, Vec<u8>> = FILES
            .iter()
            .map(|f| (*f, files.remove(*f).unwrap_or_default()))
            .collect();
        fn parse<T: serde::de::DeserializeOwned>(
            dir: &Path,
            n: &str,
            bytes: &[u8],
        ) -> anyhow::Result<T> {
            serde_json::from_slice(bytes)
                .with_context(|| format!("parsing {}", dir.join(n).display()))
        }
        let metadata: Metadata = parse(dir, "metadata.json", &files["metadata.json"])?;
        let info: ModelInfo = parse(dir, "model.json", &files["model.json"])?;
        let preprocessor: Preprocessor =
            parse(dir, "preprocessor.json", &files["preprocessor.json"])?;
        let requirement = std::str::from_utf8(&files["requirement.txt"])
            .with_context(|| format!("{}: not UTF-8 text", dir.join("requirement.txt").display()))?
            .trim()
            .to_string();
        let wp = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load_buffer(&files["model.safetensors"], dev)
            .map_err(|e| anyhow!("{}: not a valid safetensors file: {e}", wp.display()))?;
        let mlp = Mlp::new(info.mlp.clone());
        let mut params = ParamMap::new();
        for s in mlp.param_spec(&metadata) {
            let t = tensors
                .get(&s.name)
                .ok_or_else(|| anyhow!("{}: tensor `{}` missing", wp.display(), s.name))?;
            if t.dims() != s.shape.as_slice() {
                bail!(
                    "{}: tensor `{}` has shape {:?}, metadata implies {:?}",
                    wp.display(),
                    s.name,
                    t.dims(),
                    s.shape
                );
            }
            params.insert(s.name, t.clone());
        }
        let m = Self {
            params,
            metadata,
            requirement,
            preprocessor,
            info,
        };
        m.validate()
            .with_context(|| format!("{} is inconsistent", dir.display()))?;
        Ok(m)
    }

    /// Cross-file consistency: column and class lists agree between `model.json`,
    /// `preprocessor.json` and the output width; the preprocessing has one statistic
    /// per column; every weight is finite.
    pub fn validate(&self) -> anyhow::Result<()> {
        let p = &self.preprocessor;
        let nc = p.columns.len();
        for (what, len) in [
            ("fill", p.fill.len()),
            ("min", p.min.len()),
            ("max", p.max.len()),
        ] {
            if len != nc {
                bail!("preprocessor.json: `{what}` has {len} values for {nc} columns");
            }
        }
        let pcols: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
        if pcols
            != self
                .info
                .columns
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        {
            bail!(
                "model.json columns [{}] differ from preprocessor.json columns [{}]",
                self.info.columns.join(", "),
                pcols.join(", ")
            );
        }
        if p.class_names != self.info.class_names {
            bail!(
                "model.json class names [{}] differ from preprocessor.json class names [{}]",
                self.info.class_names.join(", "),
                p.class_names.join(", ")
            );
        }
        if self.info.class_names.len() != self.metadata.out_dim {
            bail!(
                "{} class names for {} outputs (metadata.json out_dim)",
                self.info.class_names.len(),
                self.metadata.out_dim
            );
        }
        if self.metadata.in_dim != Some(nc) {
            bail!(
                "metadata.json in_dim {:?} differs from the {nc} preprocessed columns",
                self.metadata.in_dim
            );
        }
        crate::manifest::check_finite(&self.params, "model.safetensors")
    }

    /// Errors naming missing/extra columns when `table` differs from the
    /// columns the model was generated for.
    pub fn check_columns(&self, table: &Table) -> anyhow::Result<()> {
        let have: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        let missing: Vec<&str> = self
            .info
            .columns
            .iter()
            .filter(|c| !have.contains(c))
            .map(String::as_str)
            .collect();
        let extra: Vec<&str> = have
            .iter()
            .filter(|c| !self.info.columns.contains(c))
            .map(String::as_str)
            .collect();
        if missing.is_empty() && extra.is_empty() {
            // Same set; the preprocessor matches columns by name, so order is free.
            return Ok(());
        }
        bail!(
            "{}: column set differs from the one the model was generated for; missing: [{}], unexpected: [{}] (target `{}`)",
            table.source,
            missing.join(", "),
            extra.join(", "),
            self.info.target
        );
    }

    /// The table's rows encoded with the model's preprocessing (columns checked first).
    pub fn encode_rows(&self, table: &Table) -> anyhow::Result<Vec<f32>> {
        self.check_columns(table)?;
        self.preprocessor
            .transform_table(table)
            .with_context(|| format!("encoding {} with the model's preprocessing", table.source))
    }
}

fn pretty<T: Serialize>(v: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(v)?)
}

/// The first check of every model-directory load: `dir` exists and is a directory.
pub(crate) fn ensure_model_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!(
            "{} is not a model directory (write one with `hyper-infer generate --out {}`)",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Writes a directory as a unit: `fill` writes the files into a staging directory beside
/// `dir`, [`write_manifest`] seals them, and the result replaces `dir` (any previous one is
/// moved aside, then removed), under a lock file so two writers cannot interleave. A crash
/// leaves the old directory or the new one, never a mix; what a killed run left behind
/// (staging and moved-aside directories) is cleaned, or restored, by the next write.
///
/// An existing `dir` is replaced only when it is a model directory this tool wrote and
/// holds nothing else, or is empty ([`crate::manifest::replaceable`]): anything else may be the
/// user's data, so it is refused, never removed.
pub(crate) fn write_dir_atomically(
    dir: &Path,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let refuse_foreign = |dir: &Path| -> anyhow::Result<()> {
        if dir.exists() && !dir.is_dir() {
            bail!(
                "{} exists and is not a directory: refusing to replace it; give a new --out",
                dir.display()
            );
        }
        if dir.is_dir() {
            if let Err(why) = crate::manifest::replaceable(dir) {
                bail!(
                    "{} exists and {why}: refusing to replace it (it may hold your files); give a new --out, or remove it yourself",
                    dir.display()
                );
            }
        }
        Ok(())
    };
    refuse_foreign(dir)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = dir
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a directory name", dir.display()))?
        .to_string_lossy()
        .into_owned();
    let lock = DirLock::acquire(&parent.join(format!(".{name}.lock")))?;
    recover_interrupted(&parent, &name, dir)?;
    // Checked again under the lock: another writer may have put something there.
    refuse_foreign(dir)?;
    let stage = tempfile::Builder::new()
        .prefix(&format!(".{name}.staging-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
    fill(stage.path())?;
    write_manifest(stage.path())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    let stage = stage.keep();
    // Move any previous model aside, put the new one in place, then drop the old.
    let old = if dir.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(dir, &old)
            .with_context(|| format!("moving the previous {} aside", dir.display()))?;
        Some(old)
    } else {
        None
    };
    std::fs::rename(&stage, dir)
        .with_context(|| format!("moving the new model into {}", dir.display()))?;
    if let Some(old) = old {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the previous model {}", old.display()))?;
    }
    drop(lock);
    Ok(())
}

/// Under the lock: a killed writer's staging directories are removed; a model it had moved
/// aside (`.NAME.old-PID`) is put back when `dir` is missing, else removed.
fn recover_interrupted(parent: &Path, name: &str, dir: &Path) -> anyhow::Result<()> {
    let (staging, old) = (format!(".{name}.staging-"), format!(".{name}.old-"));
    let list =
        std::fs::read_dir(parent).with_context(|| format!("listing {}", parent.display()))?;
    for e in list.flatten() {
        let f = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if f.starts_with(&staging) {
            std::fs::remove_dir_all(&p)
                .with_context(|| format!("removing the stale staging directory {}", p.display()))?;
        } else if f.starts_with(&old) {
            if !dir.exists() && crate::manifest::written_by_this_tool(&p).is_ok() {
                std::fs::rename(&p, dir).with_context(|| {
                    format!("restoring the interrupted write's model {}", p.display())
                })?;
            } else {
                std::fs::remove_dir_all(&p)
                    .with_context(|| format!("removing the stale model {}", p.display()))?;
            }
        }
    }
    Ok(())
}

/// An exclusive lock on `.NAME.lock` beside a model directory, removed on release so no
/// lock file outlives a write. A waiter that wakes on a lock file already removed (its
/// holder released it) opens the new one and waits again, so two writers never both hold
/// "the" lock.
struct DirLock {
    /// Held open for its lock; closing it unlocks.
    _file: std::fs::File,
    path: PathBuf,
}

impl DirLock {
    fn acquire(path: &Path) -> anyhow::Result<Self> {
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .with_context(|| format!("opening the lock file {}", path.display()))?;
            file.lock()
                .with_context(|| format!("locking {}", path.display()))?;
            if same_file(&file, path) {
                return Ok(Self {
                    _file: file,
                    path: path.to_path_buf(),
                });
            }
        }
    }
}

impl Drop for DirLock {
    /// Removed while still held (the file closes after this body): a waiter on this inode
    /// then sees it is stale.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;
    use datasets::{Column, ColumnKind};

    /// A consistent 2-feature, 2-class model directory in memory.
    fn tiny() -> ModelDir {
        let dev = Device::Cpu;
        let cols = ["a", "b"];
        let classes = vec!["no".to_string(), "yes".to_string()];
        let info = ModelInfo {
            mlp: MlpConfig {
                hidden: vec![3],
                ..Default::default()
            },
            dataset: "tiny".into(),
            columns: cols.map(String::from).to_vec(),
            target: "y".into(),
            class_names: classes.clone(),
            source_task: "tiny".into(),
            similarity: 1.0,
            adapted: vec![],
            seed: 0,
            data_rows: None,
            data_fnv64: None,
            regression: None,
            head: None,
        };
        let metadata = test_support::tabular_meta(2, 2);
        let mut params = ParamMap::new();
        for s in Mlp::new(info.mlp.clone()).param_spec(&metadata) {
            params.insert(
                s.name,
                Tensor::ones(s.shape, candle_core::DType::F32, &dev).unwrap(),
            );
        }
        ModelDir {
            params,
            metadata,
            requirement: "tiny".into(),
            preprocessor: Preprocessor {
                columns: cols
                    .map(|n| Column {
                        name: n.into(),
                        kind: ColumnKind::Numeric,
                    })
                    .to_vec(),
                target: "y".into(),
                class_names: classes,
                fill: vec![0.0; 2],
                min: vec![0.0; 2],
                max: vec![1.0; 2],
                clip: false,
            },
            info,
        }
    }

    #[test]
    fn round_trips_and_refuses_inconsistent_or_non_finite_models() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m");
        tiny().save(&out).unwrap();
        let back = ModelDir::load(&out, &Device::Cpu).unwrap();
        assert_eq!(back.info, tiny().info);

        let mut m = tiny();
        m.preprocessor.fill.pop();
        let e = format!("{:#}", m.save(&out).unwrap_err());
        assert!(e.contains("`fill` has 1 values for 2 columns"), "{e}");

        let mut m = tiny();
        m.info.class_names.pop();
        m.preprocessor.class_names.pop();
        let e = format!("{:#}", m.save(&out).unwrap_err());
        assert!(e.contains("1 class names for 2 outputs"), "{e}");

        let mut m = tiny();
        let w = m.params.get("mlp.0.weight").unwrap();
        let nan = (w * f64::NAN).unwrap();
        m.params.insert("mlp.0.weight", nan);
        let e = format!("{:#}", m.save(&out).unwrap_err());
        assert!(e.contains("`mlp.0.weight` has a non-finite value"), "{e}");
        // The model saved first is untouched by the refused writes.
        assert_eq!(
            ModelDir::load(&out, &Device::Cpu).unwrap().info,
            tiny().info
        );
    }
}
