//! `hyper-infer describe`: the Requirement Generator and Model Generator on the user's data.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use hyper_core::metadata::Metadata;
use llm_prompting::local::LocalLlm;
use llm_prompting::{
    requirements, CachedBackend, ChatBackend, LlmConfig, LlmGenerator, ModelGenerator,
    OpenAiBackend, ProfileBackend, RequirementGenerator, TaskInput,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Offline and deterministic: computed from the data.
    Profile,
    /// SmolLM2-135M-Instruct (GGUF) on CPU.
    Local,
    /// Any OpenAI-compatible chat endpoint (HYPER_OPENAI_BASE_URL / _MODEL / _API_KEY).
    Openai,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub source: super::DataArgs,
    /// Background on the task, in the user's words (read by the LLM backends; `profile`
    /// describes the data alone, as its requirements for meta-training do).
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long, value_enum, default_value_t = Backend::Profile)]
    pub backend: Backend,
    /// LLM settings [default: configs/llm.toml when present].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// LLM response cache [default: the config's cache_dir, else <data>/cache/llm].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Always ask the LLM, and store nothing.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// GGUF file for --backend local [default: <data>/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf].
    #[arg(long)]
    pub gguf: Option<PathBuf>,
    /// Also print N distinct requirements (row subsets, phrasings) as meta-training uses.
    #[arg(long, value_name = "N")]
    pub variants: Option<usize>,
    /// Print one JSON object {"requirement", "metadata"} instead of labelled lines.
    #[arg(long)]
    pub json: bool,
}

fn with_llm<B: ChatBackend>(
    backend: B,
    cache: Option<PathBuf>,
    input: &TaskInput,
) -> Result<(String, Metadata)> {
    match cache {
        Some(dir) => generate(&LlmGenerator::new(CachedBackend::new(backend, dir))?, input),
        None => generate(&LlmGenerator::new(backend)?, input),
    }
}

fn generate<G: RequirementGenerator + ModelGenerator>(
    g: &G,
    input: &TaskInput,
) -> Result<(String, Metadata)> {
    let requirement = g.requirement(input).context("Requirement Generator")?;
    let metadata = g.metadata(&requirement, input).context("Model Generator")?;
    Ok((requirement, metadata))
}

/// Runs the two stages and prints the result.
pub fn run(args: &DescribeArgs) -> Result<()> {
    let start = Instant::now();
    let table = args.source.load()?;
    let input = TaskInput::from_table(&table, args.description.as_deref())?;
    let cfg = match (&args.config, args.backend) {
        (_, Backend::Profile) => LlmConfig::default(),
        (Some(p), _) => LlmConfig::load(p)?,
        (None, _) => LlmConfig::load_default()?,
    };
    let cache = (!args.no_cache).then(|| args.cache_dir.clone().unwrap_or_else(|| cfg.cache_dir()));
    let (requirement, metadata) = match args.backend {
        Backend::Profile => generate(&ProfileBackend, &input)?,
        Backend::Openai => with_llm(
            OpenAiBackend::new(cfg.openai.clone().with_env())?,
            cache,
            &input,
        )?,
        Backend::Local => {
            let path = args.gguf.clone().unwrap_or_else(LocalLlm::default_path);
            with_llm(LocalLlm::load(&path, cfg.local.clone())?, cache, &input)?
        }
    };
    tracing::info!(elapsed_s = start.elapsed().as_secs_f64(), "describe done");
    let variants = args
        .variants
        .map(|n| requirements(&input.profile, n, datasets::preprocess::DEFAULT_SEED));
    if args.json {
        let mut out = serde_json::json!({ "requirement": requirement, "metadata": metadata });
        if let Some(v) = variants {
            out["variants"] = serde_json::json!(v);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("User Requirement: {requirement}");
        println!("Metadata: {}", serde_json::to_string(&metadata)?);
        for (i, v) in variants.iter().flatten().enumerate() {
            println!("Variant {}: {v}", i + 1);
        }
    }
    Ok(())
}
