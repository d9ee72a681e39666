//! `hyper-infer generate`: data (+ description) → requirement → metadata → one forward
//! pass of the Parameter Generator → a model directory usable by `eval` / `predict`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use datasets::preprocess::{split_and_fit, DEFAULT_SEED};
use hyper_infer::any_table::{default_any_table_checkpoint, AnyTableGenerator};
use hyper_infer::eval::{evaluate, SplitTensors};
use hyper_infer::finetune::{finetune, FinetuneOptions};
use hyper_infer::requirement::describe;
use hyper_infer::{ModelDir, ModelInfo, Pipeline};
use target_models::mlp::Mlp;

#[derive(Args, Debug, Clone)]
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
    /// Generator checkpoint stem [default: checkpoints/tabular/best; text:
    /// checkpoints/nlp/best; images: checkpoints/cv/best].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Seed of the 60/10/30 split whose training part the preprocessing is fitted on.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Print one JSON object (requirement, metadata, heads, stage timings) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Which generator: `seen` (per-task heads of the ten meta-training sets), `any` (the
    /// data-conditioned generator, for any table), `auto` (`seen` for a built-in --dataset,
    /// `any` for --data).
    #[arg(long, value_enum, default_value_t = GeneratorChoice::Auto)]
    pub generator: GeneratorChoice,
    /// ModelGPT-F: finetune the generated weights for this many epochs on the training split
    /// (text and image models: on a seeded sample of --finetune-rows labelled rows).
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    /// Learning rate of --finetune-epochs [default: 1e-3 for tables (Adam), 1e-3 for
    /// text (AdamW on the LoRA factors and head)].
    #[arg(long)]
    pub finetune_lr: Option<f64>,
    /// Text and image models: at most this many labelled rows (images) for
    /// --finetune-epochs (a seeded sample; `reproduce nlp`'s budget is 256).
    #[arg(long, default_value_t = 256)]
    pub finetune_rows: usize,
    /// Text models: the classification head. `fitted`: a shrinkage-LDA readout fitted in
    /// one pass on the training split's encoder features (no gradient step; the default for
    /// --data); `generated`: the generator's head rows from the label names (the default
    /// for --glue, whose tasks it was meta-trained on).
    #[arg(long, value_enum)]
    pub text_head: Option<super::text::TextHead>,
}

/// `--data` without `--text-column` whose CSV is a text dataset: exactly one free-text
/// column ([`datasets::text_csv::free_text_columns`]) and, besides it and the target, at
/// most one other column (a row ID). Returns the same arguments with that column named, and
/// says so on stderr. A table, even one with a comment column among its features, is left
/// to the table path as before.
fn found_text_column(args: &GenerateArgs) -> Result<Option<GenerateArgs>> {
    let s = &args.source;
    let (Some(data), None, None, Some(target)) = (
        s.data.as_deref(),
        &s.text_column,
        &s.glue,
        s.target.as_deref(),
    ) else {
        return Ok(None);
    };
    if data == std::path::Path::new("-") || s.csv.no_header {
        return Ok(None);
    }
    let mut exclude: Vec<&str> = vec![target];
    exclude.extend(s.csv.drop_column.iter().map(String::as_str));
    let (cols, columns) = datasets::text_csv::free_text_columns(data, s.csv.delimiter, &exclude)?;
    match cols.as_slice() {
        [one] if columns <= 2 => {
            eprintln!(
                "note: `{one}` is the free-text column of {}: generating a text model from it (name it with --text-column to be explicit)",
                data.display()
            );
            let mut a = args.clone();
            a.source.text_column = Some(one.clone());
            Ok(Some(a))
        }
        [_, _, ..] if columns == cols.len() => anyhow::bail!(
            "{}: several columns hold free text ({}); name the one to classify with --text-column (and the second of a pair with --text-pair-column)",
            data.display(),
            cols.join(", ")
        ),
        _ => Ok(None),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GeneratorChoice {
    Auto,
    Seen,
    Any,
}

pub fn run(args: &GenerateArgs) -> Result<()> {
    let found = found_text_column(args)?;
    let args = found.as_ref().unwrap_or(args);
    args.source.check_image_flags()?;
    anyhow::ensure!(
        args.text_head.is_none() || args.source.is_text(),
        "--text-head applies to text models (--glue, or --data with --text-column)"
    );
    let inputs: Vec<&std::path::Path> =
        [args.source.data.as_deref(), args.source.images.as_deref()]
            .into_iter()
            .flatten()
            .collect();
    hyper_infer::outputs::check_model_out(&args.out, &inputs)?;
    if let Some(lr) = args.finetune_lr {
        anyhow::ensure!(
            lr.is_finite() && lr > 0.0,
            "--finetune-lr {lr}: give a finite learning rate above 0 (e.g. 1e-3)"
        );
    }
    if let Some(source) = args.source.image_source() {
        return super::image::generate(&super::image::ImageGenerate {
            source,
            description: args.description.as_deref(),
            backend: args.backend.options(),
            checkpoint: args.checkpoint.as_deref(),
            out: &args.out,
            json: args.json,
            finetune_epochs: args.finetune_epochs,
            finetune_lr: args.finetune_lr.unwrap_or(1e-3),
            finetune_rows: args.finetune_rows,
            seed: args.seed,
        });
    }
    if args.source.is_text() {
        return super::text::generate(&super::text::TextGenerate {
            source: super::text::TextSource::of(&args.source, args.seed),
            description: args.description.as_deref(),
            backend: args.backend.options(),
            checkpoint: args.checkpoint.as_deref(),
            out: &args.out,
            json: args.json,
            head: args.text_head.unwrap_or(if args.source.glue.is_some() {
                super::text::TextHead::Generated
            } else {
                super::text::TextHead::Fitted
            }),
            finetune: super::text::TextFinetune {
                epochs: args.finetune_epochs,
                rows: args.finetune_rows,
                lr: args.finetune_lr.unwrap_or(1e-3),
                seed: args.seed,
            },
        });
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Tiny matmuls: one thread per op is faster (DESIGN.md §10). Set before any op.
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let dev = Device::Cpu;
    let t = Instant::now();
    let table = args.source.load()?;
    if table.target_values.is_some() {
        anyhow::ensure!(
            args.generator != GeneratorChoice::Seen,
            "--generator seen serves the ten built-in classification tasks; a regression target is generated by --generator any (the default)"
        );
        let t_data = t.elapsed().as_secs_f64();
        return super::regression::generate(args, &table, t_data, &dev);
    }
    let splits = split_and_fit(&table, args.seed)
        .with_context(|| format!("preprocessing {}", table.source))?;
    let t_data = t.elapsed().as_secs_f64();
    let any = match args.generator {
        GeneratorChoice::Any => true,
        GeneratorChoice::Seen => false,
        GeneratorChoice::Auto => args.source.dataset.is_none(),
    };
    if any {
        return run_any(args, &table, splits, t_data, &dev);
    }
    if args.finetune_epochs > 0 {
        anyhow::bail!(
            "--finetune-epochs is implemented for --generator any (the default for --data)"
        );
    }
    let pipeline = match &args.checkpoint {
        Some(ck) => Pipeline::load(ck, &datasets::paths::minilm_dir()?, &dev)
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
    let mut dir = pipeline.model_dir(g, &table, splits.preprocessor, args.seed);
    dir.info.data_fnv64 = data_fingerprint(args)?;
    dir.save_with_card(
        &args.out,
        &hyper_infer::model_card::CardNotes {
            data: Some(format!("{} rows of {}", table.labels.len(), table.source)),
            ..Default::default()
        },
    )?;
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
    super::print_stages(&[
        ("load + preprocess data", t_data),
        ("load generator + encoder", pipeline.load_secs),
        ("requirement", timings.requirement),
        ("metadata", timings.metadata),
        ("encode", timings.encode),
        ("generate", timings.generate),
        ("write model", t_write),
    ]);
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The fingerprint `eval --split` compares against ([`hyper_infer::data_split`]).
pub(super) fn data_fingerprint(args: &GenerateArgs) -> Result<Option<String>> {
    Ok(match (&args.source.data, &args.source.dataset) {
        (Some(p), _) => Some(hyper_infer::data_split::file_fingerprint(p)?),
        (None, Some(name)) => Some(format!("built-in {name}")),
        _ => None,
    })
}

/// What both data-conditioned paths (classes and values) start from.
pub(super) struct AnyPrelude {
    pub ck: PathBuf,
    pub gen: AnyTableGenerator,
    pub d: hyper_infer::requirement::Described,
    pub emb: Vec<f32>,
    pub t_load: f64,
    pub t_encode: f64,
}

/// Loads the data-conditioned generator and the encoder, writes the requirement and
/// metadata from the training rows `train_rows` of `table` only, and embeds it.
pub(super) fn any_prelude(
    args: &GenerateArgs,
    table: &datasets::Table,
    train_rows: &[usize],
    dev: &Device,
) -> Result<AnyPrelude> {
    let t = Instant::now();
    let ck = args
        .checkpoint
        .clone()
        .unwrap_or_else(default_any_table_checkpoint);
    let gen = AnyTableGenerator::load(&ck, dev)?;
    let encoder = target_models::TextEncoder::load(&datasets::paths::minilm_dir()?, dev)?;
    let t_load = t.elapsed().as_secs_f64();
    let input = llm_prompting::TaskInput::from_table(
        &table.subset_rows(train_rows),
        args.description.as_deref(),
    )?;
    let d = describe(&input, &args.backend.options())?;
    let t = Instant::now();
    let emb = encoder.embed_one(&d.requirement)?;
    Ok(AnyPrelude {
        ck,
        gen,
        d,
        emb,
        t_load,
        t_encode: t.elapsed().as_secs_f64(),
    })
}

/// The data-conditioned path: requirement and metadata from the **training rows** only,
/// one generator pass on the training split, optional finetuning, a validation check.
fn run_any(
    args: &GenerateArgs,
    table: &datasets::Table,
    splits: datasets::preprocess::Splits,
    t_data: f64,
    dev: &Device,
) -> Result<()> {
    let AnyPrelude {
        ck,
        gen,
        d,
        emb,
        t_load,
        t_encode,
    } = any_prelude(args, table, &splits.train_rows, dev)?;
    let t = Instant::now();
    let m = gen.generate(
        &splits.train,
        table.n_classes(),
        Some(&emb),
        None,
        args.seed,
    )?;
    let m = hyper_infer::any_table::fitted_readout(
        m,
        &splits.train,
        table.n_classes(),
        hyper_infer::basis::RANDOM_UNITS,
        args.seed,
    )?;
    let t_generate = t.elapsed().as_secs_f64();
    let mlp = Mlp::new(m.mlp.clone());
    let val = SplitTensors::from_split(&splits.val, dev)?;
    let mut params = m.params;
    let t = Instant::now();
    if args.finetune_epochs > 0 {
        let train = SplitTensors::from_split(&splits.train, dev)?;
        let o = FinetuneOptions {
            lr: args.finetune_lr.unwrap_or(FinetuneOptions::default().lr),
            epochs: args.finetune_epochs,
            ..FinetuneOptions::default()
        };
        params = finetune(&mlp, &params, &train, &o, args.seed)?;
    }
    let t_finetune = t.elapsed().as_secs_f64();
    let validation = super::Validation {
        accuracy: evaluate(&mlp, &params, &val)?.1,
        majority: val.majority_rate(),
        rows: val.len(),
    };
    let t = Instant::now();
    let dir = ModelDir {
        info: ModelInfo {
            mlp: m.mlp.clone(),
            dataset: table.name.clone(),
            columns: table.columns.iter().map(|c| c.name.clone()).collect(),
            target: table.target.clone(),
            class_names: table.class_names.clone(),
            source_task: format!("data-conditioned generator {}", ck.display()),
            similarity: 1.0,
            adapted: Vec::new(),
            seed: args.seed,
            data_rows: Some(table.labels.len()),
            data_fnv64: data_fingerprint(args)?,
            regression: None,
            head: m.head.clone(),
        },
        params,
        metadata: d.metadata.clone(),
        requirement: d.requirement.clone(),
        preprocessor: splits.preprocessor,
    };
    dir.save_with_card(
        &args.out,
        &validation.card_notes(
            args.finetune_epochs,
            format!("{} rows of {}", table.labels.len(), table.source),
        ),
    )?;
    let t_write = t.elapsed().as_secs_f64();
    if args.json {
        let mut v = serde_json::json!({
            "requirement": d.requirement,
            "metadata": d.metadata,
            "backend": args.backend.backend,
            "generator": "any",
            "generated_arch": format!("mlp {}", m.mlp.hidden.iter().map(usize::to_string).collect::<Vec<_>>().join("x")),
            "hidden": m.mlp.hidden,
            "support_rows": m.support_rows,
            "head": m.head,
            "finetune_epochs": args.finetune_epochs,
            "timings": {
                "load_data": t_data,
                "load_generator": t_load,
                "requirement": d.requirement_secs,
                "metadata": d.metadata_secs,
                "encode": t_encode,
                "generate": t_generate,
                "finetune": t_finetune,
                "write": t_write,
            },
            "out": args.out,
        });
        super::Validation::json_into(Some(&validation), &mut v);
        return super::print_json(&v);
    }
    println!("requirement: {}", d.requirement);
    println!("metadata: {}", serde_json::to_string(&d.metadata)?);
    println!(
        "generator: data-conditioned ({}); MLP {} → {} → {} from {} training rows, output layer fitted in one pass (LDA over the generated and basis units){}",
        ck.display(),
        table.n_features(),
        m.mlp.hidden[0],
        table.n_classes(),
        m.support_rows,
        if args.finetune_epochs > 0 {
            format!(", then {} finetuning epochs", args.finetune_epochs)
        } else {
            String::new()
        }
    );
    validation.print();
    super::print_stages(&[
        ("load + preprocess data", t_data),
        ("load generator + encoder", t_load),
        ("requirement", d.requirement_secs),
        ("metadata", d.metadata_secs),
        ("encode", t_encode),
        ("generate", t_generate),
        ("finetune", t_finetune),
        ("write model", t_write),
    ]);
    println!("wrote {}", args.out.display());
    Ok(())
}
