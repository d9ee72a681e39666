//! `hyper-infer describe`: the Requirement Generator and Model Generator on the user's data.

use anyhow::Result;
use clap::Args;
use hyper_infer::requirement::describe;
use llm_prompting::{requirements, TaskInput};

#[derive(Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub source: super::DataArgs,
    /// Background on the task, in the user's words (read by the LLM backends; `profile`
    /// describes the data alone, as its requirements for meta-training do).
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub backend: super::BackendArgs,
    /// Also print N distinct requirements (row subsets, phrasings) as meta-training uses.
    #[arg(long, value_name = "N")]
    pub variants: Option<usize>,
    /// Print one JSON object {"requirement", "metadata", "timings"} instead of labelled lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs the two stages and prints the result.
pub fn run(args: &DescribeArgs) -> Result<()> {
    args.source.check_image_flags()?;
    let description = args.description.as_deref();
    let input = match args.source.image_source() {
        Some(source) => super::image::task_input(source, description)?.1,
        None if args.source.is_text() => super::text::describe_input(
            &super::text::TextSource::of(&args.source, datasets::preprocess::DEFAULT_SEED),
            description,
        )?,
        None => TaskInput::from_table(&args.source.load()?, description)?,
    };
    let d = describe(&input, &args.backend.options())?;
    let variants = args
        .variants
        .map(|n| requirements(&input.profile, n, datasets::preprocess::DEFAULT_SEED));
    if args.json {
        let modality = if args.source.image_source().is_some() {
            "image"
        } else if args.source.is_text() {
            "text"
        } else {
            "table"
        };
        let mut out = serde_json::json!({
            "modality": modality,
            "requirement": d.requirement,
            "metadata": d.metadata,
            "timings": {"requirement": d.requirement_secs, "metadata": d.metadata_secs},
        });
        if let Some(v) = variants {
            out["variants"] = serde_json::json!(v);
        }
        super::print_json(&out)?;
    } else {
        println!("User Requirement: {}", d.requirement);
        println!("Metadata: {}", serde_json::to_string(&d.metadata)?);
        for (i, v) in variants.iter().flatten().enumerate() {
            println!("Variant {}: {v}", i + 1);
        }
    }
    Ok(())
}
