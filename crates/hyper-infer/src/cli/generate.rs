//! `hyper-infer generate`: data (+ description) → requirement → metadata → one forward
//! pass of the Parameter Generator → a model directory usable by `eval` / `predict`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use datasets::preprocess::{split_and_fit, DEFAULT_SEED};
use hyper_infer::Pipeline;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub source: super::DataArgs,
    /// Background on the task, in the user's words.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub backend: super::BackendArgs,
    /// Output directory (model.safetensors, metadata.json, requirement.txt, preprocessor.json, model.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Generator checkpoint stem [default: checkpoints/tabular/best].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Seed of the 60/10/30 split whose training part the preprocessing is fitted on.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Print one JSON object (requirement, metadata, heads, stage timings) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &GenerateArgs) -> Result<()> {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Tiny matmuls: one thread per op is faster (DESIGN.md §10). Set before any op.
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let dev = Device::Cpu;
    let t = Instant::now();
    let table = args.source.load()?;
    let splits = split_and_fit(&table, args.seed)
        .with_context(|| format!("preprocessing {}", table.source))?;
    let t_data = t.elapsed().as_secs_f64();
    let pipeline = match &args.checkpoint {
        Some(ck) => Pipeline::load(ck, &datasets::paths::minilm_dir(), &dev)
            .with_context(|| format!("loading generator {}", ck.display()))?,
        None => Pipeline::load_default(&dev)?,
    };
    let g = pipeline.generate(
        &table,
        args.description.as_deref(),
        args.source.dataset.as_deref(),
        &args.backend.options(),
    )?;
    let (requirement, metadata, heads, timings) = (
        g.requirement.clone(),
        g.metadata.clone(),
        g.heads.clone(),
        g.timings.clone(),
    );
    let t = Instant::now();
    pipeline
        .model_dir(g, &table, splits.preprocessor, args.seed)
        .save(&args.out)?;
    let t_write = t.elapsed().as_secs_f64();

    let heads_note = if heads.named_by_request {
        format!(
            "seen task `{}` (requirement similarity {:.3})",
            heads.task, heads.similarity
        )
    } else {
        format!(
            "`{}` was not seen in pretraining; using the nearest seen task `{}` by requirement similarity ({:.3}){}",
            table.name,
            heads.task,
            heads.similarity,
            if heads.adapted.is_empty() {
                String::new()
            } else {
                format!("; cropped/zero-padded to this table's shape: {}", heads.adapted.join(", "))
            }
        )
    };
    if args.json {
        return super::print_json(&serde_json::json!({
            "requirement": requirement,
            "metadata": metadata,
            "backend": args.backend.backend,
            "heads": {
                "task": heads.task,
                "similarity": heads.similarity,
                "named_by_request": heads.named_by_request,
                "adapted": heads.adapted,
            },
            "timings": {
                "load_data": t_data,
                "load_generator": pipeline.load_secs,
                "requirement": timings.requirement,
                "metadata": timings.metadata,
                "encode": timings.encode,
                "generate": timings.generate,
                "write": t_write,
            },
            "out": args.out,
        }));
    }
    println!("requirement: {requirement}");
    println!("metadata: {}", serde_json::to_string(&metadata)?);
    println!("heads: {heads_note}");
    println!("time per stage (s):");
    for (stage, s) in [
        ("load + preprocess data", t_data),
        ("load generator + encoder", pipeline.load_secs),
        ("requirement", timings.requirement),
        ("metadata", timings.metadata),
        ("encode", timings.encode),
        ("generate", timings.generate),
        ("write model", t_write),
    ] {
        println!("  {stage:<26}{s:.4}");
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
