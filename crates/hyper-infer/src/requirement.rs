//! Steps 1–2 of the user path: data (+ the user's description) → one User Requirement
//! sentence (Requirement Generator) → validated `Metadata` (Model Generator), through any
//! backend: `profile` (offline, deterministic), `local` (SmolLM2 GGUF) or `openai`.
//! LLM replies are cached on disk and an invalid metadata answer gets one repair round
//! (both in `llm-prompting`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use hyper_core::Metadata;
use llm_prompting::local::LocalLlm;
use llm_prompting::{
    CachedBackend, ChatBackend, LlmConfig, LlmGenerator, ModelGenerator, OpenAiBackend,
    ProfileBackend, RequirementGenerator, TaskInput,
};
use serde::Serialize;

/// Which Requirement/Model Generator writes the sentence and the metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Offline and deterministic: computed from the data.
    #[default]
    Profile,
    /// SmolLM2-135M-Instruct (GGUF) on CPU.
    Local,
    /// Any OpenAI-compatible chat endpoint (HYPER_OPENAI_BASE_URL / _MODEL / _API_KEY).
    Openai,
}

/// A backend and its settings (the CLI's `--backend`, `--config`, `--cache-dir`, ...).
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    pub backend: Backend,
    /// LLM settings file [default: configs/llm.toml when present].
    pub config: Option<PathBuf>,
    /// LLM response cache [default: the config's cache_dir].
    pub cache_dir: Option<PathBuf>,
    /// Always ask the LLM, and store nothing.
    pub no_cache: bool,
    /// GGUF file for `local` [default: `LocalLlm::default_path()`].
    pub gguf: Option<PathBuf>,
}

/// The requirement and metadata for one task, with the seconds each stage took.
#[derive(Debug, Clone, Serialize)]
pub struct Described {
    pub requirement: String,
    pub metadata: Metadata,
    pub requirement_secs: f64,
    pub metadata_secs: f64,
}

/// Runs the Requirement Generator then the Model Generator of `opts.backend` on `input`.
pub fn describe(input: &TaskInput, opts: &BackendOptions) -> Result<Described> {
    match opts.backend {
        Backend::Profile => run(&ProfileBackend, input),
        Backend::Openai | Backend::Local => {
            let cfg = match &opts.config {
                Some(p) => LlmConfig::load(p)?,
                None => LlmConfig::load_default()?,
            };
            let cache =
                (!opts.no_cache).then(|| opts.cache_dir.clone().unwrap_or_else(|| cfg.cache_dir()));
            if opts.backend == Backend::Openai {
                with_llm(
                    OpenAiBackend::new(cfg.openai.clone().with_env())?,
                    cache,
                    input,
                )
            } else {
                let path = opts.gguf.clone().unwrap_or_else(LocalLlm::default_path);
                with_llm(LocalLlm::load(&path, cfg.local.clone())?, cache, input)
            }
        }
    }
}

fn with_llm<B: ChatBackend>(
    backend: B,
    cache: Option<PathBuf>,
    input: &TaskInput,
) -> Result<Described> {
    match cache {
        Some(dir) => run(&LlmGenerator::new(CachedBackend::new(backend, dir))?, input),
        None => run(&LlmGenerator::new(backend)?, input),
    }
}

fn run<G: RequirementGenerator + ModelGenerator>(g: &G, input: &TaskInput) -> Result<Described> {
    let t0 = Instant::now();
    let requirement = g.requirement(input).context("Requirement Generator")?;
    let t1 = Instant::now();
    let metadata = g.metadata(&requirement, input).context("Model Generator")?;
    metadata
        .validate()
        .map_err(|e| anyhow::anyhow!("Model Generator: invalid metadata: {e}"))?;
    Ok(Described {
        requirement,
        metadata,
        requirement_secs: (t1 - t0).as_secs_f64(),
        metadata_secs: t1.elapsed().as_secs_f64(),
    })
}

/// Up to `n` deterministic requirement sentences for a profiled data set (the profile
/// backend's phrasings, as meta-training and the reproductions use), or an error naming
/// the set when none can be written.
pub fn profile_requirements(
    profile: &llm_prompting::DataProfile,
    n: usize,
    seed: u64,
) -> Result<Vec<String>> {
    let reqs = llm_prompting::requirements(profile, n, seed);
    anyhow::ensure!(
        !reqs.is_empty(),
        "no requirement could be written for `{}`",
        profile.name
    );
    Ok(reqs)
}
