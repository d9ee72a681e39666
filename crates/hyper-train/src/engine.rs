//! The one-pass path: table (+ description) → requirement → metadata → embedding →
//! generated MLP, with per-stage timings; and the model directory `generate` writes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use candle_core::{Device, Tensor};
use datasets::preprocess::Preprocessor;
use datasets::Table;
use hyper_core::encoder::ENCODER_PREFIX;
use hyper_core::io::atomic_write;
use hyper_core::{
    checkpoint, Metadata, ParamGenerator, ParamMap, Resolution, TaskSpec, TextEncoder,
};
use llm_prompting::generator::{ModelGenerator, RequirementGenerator, TaskInput};
use llm_prompting::ProfileBackend;
use serde::{Deserialize, Serialize};
use target_models::mlp::{Mlp, MlpConfig};
use target_models::TargetModel;

use crate::config::TabularConfig;
use crate::meta::CHECKPOINT_KIND;

/// A loaded generator ready to serve requests.
pub struct Engine {
    pub cfg: TabularConfig,
    pub mlp: Mlp,
    pub gen: ParamGenerator,
    pub encoder: TextEncoder,
    /// Seconds spent loading the checkpoint and the encoder.
    pub load_secs: f64,
}

pub struct Generated {
    pub requirement: String,
    pub metadata: Metadata,
    /// Detached generated tensors (`mlp.{i}.weight|bias`).
    pub params: ParamMap,
    pub resolution: Resolution,
    /// `(stage, seconds)` in order.
    pub timings: Vec<(&'static str, f64)>,
}

impl Engine {
    /// Loads `stem.{safetensors,toml}` (a `tabular-generator` checkpoint) and the encoder.
    pub fn load(stem: &Path, encoder_dir: &Path, dev: &Device) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let l = checkpoint::load(stem, CHECKPOINT_KIND, dev)?;
        let cfg: TabularConfig = toml::Value::Table(l.header.config.clone())
            .try_into()
            .with_context(|| format!("{}: checkpoint config does not parse", stem.display()))?;
        let tasks: Vec<TaskSpec> = l
            .header
            .state
            .get("tasks")
            .cloned()
            .ok_or_else(|| anyhow!("{}: checkpoint header lacks the task list", stem.display()))?
            .try_into()
            .with_context(|| format!("{}: task list does not parse", stem.display()))?;
        let mut gen = ParamGenerator::new(cfg.generator.clone(), tasks, cfg.train.seed, dev)?;
        gen.load_state(&l.tensors)
            .with_context(|| format!("loading {}", stem.display()))?;
        let encoder = if cfg.generator.train_encoder {
            let tuned: HashMap<String, Tensor> = l
                .tensors
                .iter()
                .filter_map(|(k, t)| Some((k.strip_prefix(ENCODER_PREFIX)?.to_string(), t.clone())))
                .collect();
            if tuned.is_empty() {
                bail!(
                    "{}: config says train_encoder = true but the checkpoint holds no `{ENCODER_PREFIX}*` tensors",
                    stem.display()
                );
            }
            TextEncoder::load_with_weights(encoder_dir, Some(tuned), dev)
                .with_context(|| format!("loading the tuned encoder of {}", stem.display()))?
        } else {
            TextEncoder::load(encoder_dir, dev)?
        };
        Ok(Self {
            mlp: Mlp::new(cfg.model.clone()),
            cfg,
            gen,
            encoder,
            load_secs: t0.elapsed().as_secs_f64(),
        })
    }

    /// Requirement + metadata from the data via the `profile` backend.
    pub fn describe(
        table: &Table,
        description: Option<&str>,
    ) -> anyhow::Result<(String, Metadata, f64, f64)> {
        let t0 = Instant::now();
        let input = TaskInput::from_table(table, description)?;
        let req = ProfileBackend.requirement(&input)?;
        let t1 = Instant::now();
        let mut meta = ProfileBackend.metadata(&req, &input)?;
        meta.in_dim = Some(table.n_features());
        meta.validate().map_err(|e| anyhow!("metadata: {e}"))?;
        Ok((
            req,
            meta,
            (t1 - t0).as_secs_f64(),
            t1.elapsed().as_secs_f64(),
        ))
    }

    /// Generated weights for a requirement; `task_hint` names a seen task to use directly.
    pub fn generate_from_requirement(
        &self,
        requirement: &str,
        meta: &Metadata,
        task_hint: Option<&str>,
    ) -> anyhow::Result<(ParamMap, Resolution, f64, f64)> {
        let t0 = Instant::now();
        let emb: Tensor = self.encoder.embed(&[requirement])?.get(0)?;
        let t1 = Instant::now();
        let specs = self.mlp.param_spec(meta);
        let (p, res) = self.gen.generate_for(&emb, &specs, task_hint, false)?;
        Ok((
            crate::meta::detach(&p),
            res,
            (t1 - t0).as_secs_f64(),
            t1.elapsed().as_secs_f64(),
        ))
    }

    /// The whole pipeline for one table.
    pub fn generate(
        &self,
        table: &Table,
        description: Option<&str>,
        task_hint: Option<&str>,
    ) -> anyhow::Result<Generated> {
        let (requirement, metadata, t_req, t_meta) = Self::describe(table, description)?;
        let (params, resolution, t_enc, t_gen) =
            self.generate_from_requirement(&requirement, &metadata, task_hint)?;
        Ok(Generated {
            requirement,
            metadata,
            params,
            resolution,
            timings: vec![
                ("requirement", t_req),
                ("metadata", t_meta),
                ("encode", t_enc),
                ("generate", t_gen),
            ],
        })
    }
}

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
}

/// A generated model on disk: `model.safetensors`, `metadata.json`, `requirement.txt`,
/// `preprocessor.json`, `model.json`.
pub struct ModelDir {
    pub params: ParamMap,
    pub metadata: Metadata,
    pub requirement: String,
    pub preprocessor: Preprocessor,
    pub info: ModelInfo,
}

impl ModelDir {
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let bytes = safetensors::serialize(self.params.iter().map(|(k, t)| (k.as_str(), t)), None)?;
        atomic_write(&dir.join("model.safetensors"), &bytes)?;
        atomic_write(
            &dir.join("metadata.json"),
            serde_json::to_string_pretty(&self.metadata)?.as_bytes(),
        )?;
        atomic_write(
            &dir.join("requirement.txt"),
            format!("{}\n", self.requirement).as_bytes(),
        )?;
        atomic_write(
            &dir.join("preprocessor.json"),
            serde_json::to_string_pretty(&self.preprocessor)?.as_bytes(),
        )?;
        atomic_write(
            &dir.join("model.json"),
            serde_json::to_string_pretty(&self.info)?.as_bytes(),
        )?;
        Ok(())
    }

    pub fn load(dir: &Path, dev: &Device) -> anyhow::Result<Self> {
        let read = |n: &str| -> anyhow::Result<String> {
            let p = dir.join(n);
            std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "reading {} (is {} a `hyper-infer generate` output?)",
                    p.display(),
                    dir.display()
                )
            })
        };
        let json = |n: &str| -> anyhow::Result<serde_json::Value> {
            serde_json::from_str(&read(n)?)
                .with_context(|| format!("parsing {}", dir.join(n).display()))
        };
        let metadata: Metadata =
            serde_json::from_value(json("metadata.json")?).context("metadata.json")?;
        let info: ModelInfo = serde_json::from_value(json("model.json")?).context("model.json")?;
        let preprocessor: Preprocessor =
            serde_json::from_value(json("preprocessor.json")?).context("preprocessor.json")?;
        let requirement = read("requirement.txt")?.trim().to_string();
        let wp = dir.join("model.safetensors");
        let bytes = std::fs::read(&wp).with_context(|| format!("reading {}", wp.display()))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, dev)
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
        Ok(Self {
            params,
            metadata,
            requirement,
            preprocessor,
            info,
        })
    }

    /// Errors naming missing/extra columns when `table` differs from the
    /// columns the model was generated for.
    pub fn check_columns(&self, table: &Table) -> anyhow::Result<()> {
        let have: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        let missing: Vec<&String> = self
            .info
            .columns
            .iter()
            .filter(|c| !have.contains(c))
            .collect();
        let extra: Vec<&String> = have
            .iter()
            .filter(|c| !self.info.columns.contains(c))
            .collect();
        if missing.is_empty() && extra.is_empty() {
            // Same set; the preprocessor matches columns by name, so order is free.
            return Ok(());
        }
        bail!(
            "{}: column set differs from the one the model was generated for; missing: [{}], unexpected: [{}] (target `{}`)",
            table.source,
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            self.info.target
        );
    }
}
