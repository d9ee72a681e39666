//! Steps 3–5 of the user path: the requirement's embedding (text encoder E) → one
//! forward pass of the Parameter Generator → the target model's weights, for the target
//! the metadata's `arch` selects; plus the model directory those weights go into.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use candle_core::{Device, Tensor};
use datasets::preprocess::Preprocessor;
use datasets::Table;
use hyper_core::{checkpoint, Metadata, ParamGenerator, ParamMap, Resolution, TaskSpec};
use llm_prompting::TaskInput;
use serde::Serialize;
use target_models::mlp::Mlp;
use target_models::text_encoder::{TextEncoder, ENCODER_PREFIX};
use target_models::TargetModel;

use crate::architecture::{TabularArchitecture, TABULAR_CHECKPOINT_KIND};
use crate::model_dir::{ModelDir, ModelInfo};
use crate::requirement::{describe, BackendOptions, Described};

/// Seconds per stage of one generation (what `generate --json` reports).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimings {
    pub requirement: f64,
    pub metadata: f64,
    pub encode: f64,
    pub generate: f64,
}

/// Weights for one requirement, and which seen task's heads produced them.
pub struct GeneratedWeights {
    /// Detached tensors (`mlp.{i}.weight|bias`).
    pub params: ParamMap,
    pub heads: Resolution,
    pub encode_secs: f64,
    pub generate_secs: f64,
}

/// Everything one generation produced.
pub struct Generated {
    pub requirement: String,
    pub metadata: Metadata,
    pub params: ParamMap,
    pub heads: Resolution,
    pub timings: StageTimings,
}

/// A loaded generator checkpoint and text encoder, ready to serve requests.
pub struct Pipeline {
    pub architecture: TabularArchitecture,
    pub checkpoint: PathBuf,
    generator: ParamGenerator,
    encoder: TextEncoder,
    /// Seconds spent loading the checkpoint and the encoder.
    pub load_secs: f64,
}

impl Pipeline {
    /// Loads `stem.{safetensors,toml}` (a tabular generator checkpoint; only its
    /// `[config.architecture]` section is read) and the text encoder from `encoder_dir`.
    pub fn load(stem: &Path, encoder_dir: &Path, dev: &Device) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let l = checkpoint::load(stem, TABULAR_CHECKPOINT_KIND, dev)?;
        let architecture: TabularArchitecture =
            crate::architecture::architecture_from_header(&l.header, stem)?;
        architecture
            .validate()
            .with_context(|| format!("{}: [config.architecture]", stem.display()))?;
        let tasks: Vec<TaskSpec> = l
            .header
            .state
            .get("tasks")
            .cloned()
            .ok_or_else(|| anyhow!("{}: checkpoint header lacks the task list", stem.display()))?
            .try_into()
            .with_context(|| format!("{}: task list does not parse", stem.display()))?;
        // The init seed is irrelevant: every generator tensor is restored below.
        let mut generator = ParamGenerator::new(architecture.generator.clone(), tasks, 0, dev)?;
        generator
            .load_state(&l.tensors)
            .with_context(|| format!("loading {}", stem.display()))?;
        let encoder = if architecture.generator.train_encoder {
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
            TextEncoder::load(encoder_dir, dev).with_context(|| {
                format!("loading the text encoder from {}", encoder_dir.display())
            })?
        };
        Ok(Self {
            architecture,
            checkpoint: stem.to_path_buf(),
            generator,
            encoder,
            load_secs: t0.elapsed().as_secs_f64(),
        })
    }

    /// The text encoder E (stock MiniLM, or the checkpoint's tuned weights).
    pub fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    /// The default checkpoint and the fetched MiniLM, each with the right fix when missing.
    pub fn load_default(dev: &Device) -> anyhow::Result<Self> {
        let ck = crate::default_checkpoint();
        if !checkpoint::paths(&ck).1.is_file() {
            bail!(
                "generator checkpoint {} not found (train one with `cargo xtask pretrain tabular`, or pass --checkpoint)",
                ck.display()
            );
        }
        Self::load(&ck, &datasets::paths::minilm_dir()?, dev)
    }

    /// The target model the metadata's `arch` selects, or an error naming the requested
    /// arch and the ones this checkpoint serves.
    pub fn target(&self, meta: &Metadata) -> anyhow::Result<Mlp> {
        self.architecture
            .check_serves(meta)
            .with_context(|| format!("generator {}", self.checkpoint.display()))?;
        Ok(Mlp::new(self.architecture.model.clone()))
    }

    /// Steps 3–5: embed `requirement`, run the generator once, return detached weights for
    /// the target `meta` selects. `seen_task` names a meta-training task to use directly.
    pub fn weights(
        &self,
        requirement: &str,
        meta: &Metadata,
        seen_task: Option<&str>,
    ) -> anyhow::Result<GeneratedWeights> {
        let target = self.target(meta)?;
        let t0 = Instant::now();
        let emb: Tensor = self.encoder.embed(&[requirement])?.get(0)?;
        let t1 = Instant::now();
        let specs = target.param_spec(meta);
        let (p, heads) = self
            .generator
            .generate_for_specs(&emb, &specs, seen_task, false)?;
        Ok(GeneratedWeights {
            params: p.detached(),
            heads,
            encode_secs: (t1 - t0).as_secs_f64(),
            generate_secs: t1.elapsed().as_secs_f64(),
        })
    }

    /// The whole path for one table: requirement + metadata from `backend`, then weights.
    pub fn generate(
        &self,
        table: &Table,
        description: Option<&str>,
        seen_task: Option<&str>,
        backend: &BackendOptions,
    ) -> anyhow::Result<Generated> {
        let input = TaskInput::from_table(table, description)?;
        // Both backends guarantee the metadata agrees with the data: `profile` derives it,
        // the LLM generator checks it (`DataProfile::check_metadata`) and repairs.
        let d: Described = describe(&input, backend)?;
        let w = self.weights(&d.requirement, &d.metadata, seen_task)?;
        Ok(Generated {
            timings: StageTimings {
                requirement: d.requirement_secs,
                metadata: d.metadata_secs,
                encode: w.encode_secs,
                generate: w.generate_secs,
            },
            requirement: d.requirement,
            metadata: d.metadata,
            params: w.params,
            heads: w.heads,
        })
    }

    /// The model directory for a generation on `table` with its fitted preprocessing.
    pub fn model_dir(
        &self,
        g: Generated,
        table: &Table,
        preprocessor: Preprocessor,
        split_seed: u64,
    ) -> ModelDir {
        ModelDir {
            info: ModelInfo {
                mlp: self.architecture.model.clone(),
                dataset: table.name.clone(),
                columns: table.columns.iter().map(|c| c.name.clone()).collect(),
                target: table.target.clone(),
                class_names: table.class_names.clone(),
                source_task: g.heads.task.clone(),
                similarity: g.heads.similarity,
                adapted: g.heads.adapted.clone(),
                seed: split_seed,
                data_rows: Some(table.labels.len()),
                data_fnv64: None,
                regression: None,
                head: None,
            },
            params: g.params,
            metadata: g.metadata,
            requirement: g.requirement,
            preprocessor,
        }
    }
}
