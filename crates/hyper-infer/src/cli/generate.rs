//! `hyper-infer generate`: data (+ description) → requirement → metadata → one forward
//! pass of the Parameter Generator → a model directory usable by `eval` / `predict`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use datasets::preprocess::{split_and_fit, DEFAULT_SEED};
use hyper_train::{Engine, ModelDir, ModelInfo};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub source: super::DataArgs,
    /// Background on the task, in the user's words.
    #[arg(long)]
    pub description: Option<String>,
    /// Output directory (model.safetensors, metadata.json, requirement.txt, preprocessor.json, model.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Generator checkpoint stem [default: checkpoints/tabular/best].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Seed of the 60/10/30 split whose training part the preprocessing is fitted on.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

pub fn default_checkpoint() -> PathBuf {
    datasets::paths::workspace_root().join("checkpoints/tabular/best")
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
    let ck = args.checkpoint.clone().unwrap_or_else(default_checkpoint);
    let engine = Engine::load(&ck, &datasets::paths::data_dir().join("minilm"), &dev)
        .with_context(|| {
            format!(
                "loading generator {} (train one with `cargo xtask pretrain tabular`)",
                ck.display()
            )
        })?;
    let g = engine.generate(
        &table,
        args.description.as_deref(),
        args.source.dataset.as_deref(),
    )?;
    let t = Instant::now();
    let dir = ModelDir {
        params: g.params,
        metadata: g.metadata.clone(),
        requirement: g.requirement.clone(),
        preprocessor: splits.preprocessor,
        info: ModelInfo {
            mlp: engine.cfg.model.clone(),
            dataset: table.name.clone(),
            columns: table.columns.iter().map(|c| c.name.clone()).collect(),
            target: table.target.clone(),
            class_names: table.class_names.clone(),
            source_task: g.resolution.task.clone(),
            similarity: g.resolution.similarity,
            adapted: g.resolution.adapted.clone(),
            seed: args.seed,
        },
    };
    dir.save(&args.out)?;
    let t_write = t.elapsed().as_secs_f64();

    println!("requirement: {}", g.requirement);
    println!("metadata: {}", serde_json::to_string(&g.metadata)?);
    let r = &g.resolution;
    if r.direct {
        println!(
            "heads: seen task `{}` (requirement similarity {:.3})",
            r.task, r.similarity
        );
    } else {
        println!(
            "heads: `{}` was not seen in pretraining; using the nearest seen task `{}` by requirement similarity ({:.3}){}",
            table.name,
            r.task,
            r.similarity,
            if r.adapted.is_empty() {
                String::new()
            } else {
                format!("; cropped/zero-padded to this table's shape: {}", r.adapted.join(", "))
            }
        );
    }
    println!("time per stage (s):");
    println!("  load + preprocess data  {t_data:.4}");
    println!("  load generator + encoder {:.4}", engine.load_secs);
    for (stage, s) in &g.timings {
        println!("  {stage:<24}{s:.4}");
    }
    println!("  write model             {t_write:.4}");
    println!("wrote {}", args.out.display());
    Ok(())
}
