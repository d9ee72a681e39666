//! The text path of `generate`, `eval` and `predict`: a GLUE task (`--glue`) or a user's
//! text CSV (`--data F --text-column C [--text-pair-column C2] --target L`) → requirement
//! → one pass of the NLP generator → a PEFT adapter directory ([`TextModelDir`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use datasets::glue::{self, GlueTask, Label};
use datasets::preprocess::split_indices;
use datasets::text_csv::{load_text_csv, TextCsvOptions, TextData};
use hyper_infer::data_split::{file_fingerprint, DataSplit};
use hyper_infer::requirement::describe;
use hyper_infer::text::{
    glue_label_texts, glue_score, predict, text_summary, train_epochs, Encoded, TextGenerator,
    TextTokenizer, TrainOptions, BASE_MODEL_ID,
};
use hyper_infer::text_any::{self, TextAnyGenerator};
use hyper_infer::text_head;
use hyper_infer::text_model_dir::{TextModelDir, TextModelInfo, TEXT_MODEL_FORMAT};
use llm_prompting::{DataProfile, TaskInput, TextSummary};
use target_models::bert::{BertModel, Pooling};

/// Architectures a text requirement may ask for; the BERT-family target served here is
/// all-MiniLM-L6-v2 (DistilBERT weights are not obtainable on this machine).
pub const SERVED_TEXT_ARCHS: &[&str] = &["distilbert-base-uncased", "bert-base-uncased"];

/// What a text model directory holds an adapter for (the metadata's `arch` is what the Model
/// Generator asked for).
const GENERATED_ARCH: &str = "all-MiniLM-L6-v2";

/// The classes (or regression target) most labels may have before the data looks like a
/// free-text or ID column rather than a label set.
const MAX_CLASSES: usize = 100;

/// `checkpoints/nlp/best`.
pub fn default_nlp_checkpoint() -> PathBuf {
    hyper_infer::checkpoint_dir("nlp").join("best")
}

/// Texts ready for the generator: what the requirement is written from, the label texts
/// the head rows are generated from, and how the model directory describes itself.
struct TextTask {
    summary: TextSummary,
    samples: Vec<String>,
    label_texts: Vec<String>,
    regression: bool,
    glue: Option<GlueTask>,
    columns: (Option<String>, Option<String>, Option<String>),
    /// The labelled rows (first text, second text, label) ModelGPT-F may train on: a CSV's
    /// training split, so `eval --split test` scores rows it never saw.
    rows: Vec<(String, Option<String>, Label)>,
    /// A CSV's validation rows, for the majority check after generation.
    val: Vec<(String, Option<String>, Label)>,
    /// The split of a CSV's rows, recorded in the model directory.
    split: Option<DataSplit>,
}

impl TextTask {
    /// Up to `n` of the labelled rows (a seeded sample), tokenized.
    fn training_rows(
        &self,
        tok: &TextTokenizer,
        n: usize,
        seed: u64,
    ) -> Result<(Vec<Encoded>, Vec<Label>)> {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        order.truncate(n);
        let rows: Vec<_> = order.iter().map(|&i| self.rows[i].clone()).collect();
        encode_rows(&rows, tok, self.summary.pair)
    }
}

/// Labelled rows (first text, second text when `pair`, label), tokenized.
fn encode_rows(
    rows: &[(String, Option<String>, Label)],
    tok: &TextTokenizer,
    pair: bool,
) -> Result<(Vec<Encoded>, Vec<Label>)> {
    let a: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let b: Option<Vec<&str>> =
        pair.then(|| rows.iter().map(|r| r.1.as_deref().unwrap_or("")).collect());
    let enc = tok.encode(&a, b.as_deref())?;
    Ok((enc, rows.iter().map(|r| r.2).collect()))
}

fn sample_line(a: &str, b: Option<&str>, label: &str) -> String {
    match b {
        Some(b) => format!("[input] {a} [SEP] {b} [label] {label}"),
        None => format!("[input] {a} [label] {label}"),
    }
}

fn glue_task(task: GlueTask) -> Result<TextTask> {
    let split = glue::load(task, "train", &GlueTask::default_root())
        .with_context(|| format!("loading {task} train"))?;
    let labels = glue_label_texts(task);
    let samples = split
        .examples
        .iter()
        .take(4)
        .map(|e| {
            let l = match e.label {
                Label::Class(c) => labels[c].clone(),
                Label::Score(s) => format!("{s:.1}"),
            };
            sample_line(&e.text_a, e.text_b.as_deref(), &l)
        })
        .collect();
    Ok(TextTask {
        summary: text_summary(&split, true),
        samples,
        regression: task.is_regression(),
        label_texts: labels,
        glue: Some(task),
        columns: (None, None, None),
        val: Vec::new(),
        split: None,
        rows: split
            .examples
            .iter()
            .map(|e| (e.text_a.clone(), e.text_b.clone(), e.label))
            .collect(),
    })
}

fn csv_task(
    path: &Path,
    text: &str,
    pair: Option<&str>,
    target: &str,
    seed: u64,
) -> Result<TextTask> {
    let d = load_text_csv(
        path,
        &TextCsvOptions {
            text_column: text.into(),
            pair_column: pair.map(String::from),
            target: Some(target.into()),
            delimiter: None,
        },
    )?;
    let (names, idx) = d.classes().expect("target was requested");
    if names.len() < 2 {
        bail!(
            "{}: target column `{target}` has a single value `{}`; a classifier needs at least two classes",
            path.display(),
            names.first().map_or("", String::as_str)
        );
    }
    if names.len() > MAX_CLASSES {
        bail!(
            "{}: target column `{target}` has {} distinct values; the text head serves at most {MAX_CLASSES} classes (is it a score or an ID column?)",
            path.display(),
            names.len()
        );
    }
    // Generation and finetuning see the training split only (every row when there are
    // too few to split); the requirement's statistics too.
    let split = split_indices(d.len(), seed);
    let (train, val): (Vec<usize>, Vec<usize>) = match &split {
        // The validation check reads at most VALIDATION_ROWS of them (a random sample:
        // the split is a seeded permutation).
        Some((train, val, _)) => (
            train.clone(),
            val[..val.len().min(super::VALIDATION_ROWS)].to_vec(),
        ),
        None => ((0..d.len()).collect(), Vec::new()),
    };
    let mut counts = vec![0usize; names.len()];
    for &i in &train {
        counts[idx[i]] += 1;
    }
    let joined: Vec<String> = train
        .iter()
        .map(|&i| match &d.text_b {
            Some(b) => format!("{} {}", d.text_a[i], b[i]),
            None => d.text_a[i].clone(),
        })
        .collect();
    let (avg_words, max_words) = TextSummary::word_stats(joined.iter().map(String::as_str));
    let row = |i: usize| {
        let b = d.text_b.as_ref().map(|b| b[i].clone());
        (d.text_a[i].clone(), b, Label::Class(idx[i]))
    };
    let split = match split {
        Some(_) => Some(DataSplit {
            seed,
            rows: d.len(),
            fnv64: file_fingerprint(path)?,
        }),
        None => None,
    };
    let samples = train
        .iter()
        .take(4)
        .map(|&i| {
            sample_line(
                &d.text_a[i],
                d.text_b.as_ref().map(|b| b[i].as_str()),
                &names[idx[i]],
            )
        })
        .collect();
    Ok(TextTask {
        summary: TextSummary {
            name: d.name.clone(),
            n_examples: train.len(),
            pair: d.text_b.is_some(),
            avg_words,
            max_words,
            label_names: names.clone(),
            class_counts: counts,
        },
        samples,
        label_texts: names,
        regression: false,
        glue: None,
        rows: train.iter().map(|&i| row(i)).collect(),
        val: val.iter().map(|&i| row(i)).collect(),
        split,
        columns: (
            Some(text.into()),
            pair.map(String::from),
            Some(target.into()),
        ),
    })
}

/// Where a text task comes from: a GLUE task, or a CSV with its columns.
pub struct TextSource<'a> {
    pub glue: Option<&'a str>,
    pub data: Option<&'a Path>,
    pub text_column: Option<&'a str>,
    pub pair_column: Option<&'a str>,
    pub target: Option<&'a str>,
    /// Seed of a CSV's 60/10/30 split.
    pub seed: u64,
}

impl<'a> TextSource<'a> {
    pub fn of(args: &'a super::DataArgs, seed: u64) -> Self {
        Self {
            glue: args.glue.as_deref(),
            data: args.data.as_deref(),
            text_column: args.text_column.as_deref(),
            pair_column: args.text_pair_column.as_deref(),
            target: args.target.as_deref(),
            seed,
        }
    }
}

/// The task and the requirement writers' input for it (`describe` and `generate`).
fn task_input(src: &TextSource, description: Option<&str>) -> Result<(TextTask, TaskInput)> {
    let task = match (src.glue, src.data) {
        (Some(name), _) => glue_task(GlueTask::from_name(name)?)?,
        (None, Some(path)) => {
            let text = src
                .text_column
                .context("--text-column is required with --data for text")?;
            let target = src
                .target
                .context("--target names the label column of a text CSV; it is required")?;
            csv_task(path, text, src.pair_column, target, src.seed)?
        }
        (None, None) => bail!("give --glue <task> or --data <csv> --text-column <col>"),
    };
    let mut input = TaskInput::new(DataProfile::from_text(&task.summary)?, description)?;
    input.samples = task.samples.clone();
    Ok((task, input))
}

/// The requirement writers' input for a text task (`describe`).
pub fn describe_input(src: &TextSource, description: Option<&str>) -> Result<TaskInput> {
    Ok(task_input(src, description)?.1)
}

/// Options of the text path, gathered from the subcommands' arguments.
pub struct TextGenerate<'a> {
    pub source: TextSource<'a>,
    pub description: Option<&'a str>,
    pub backend: hyper_infer::BackendOptions,
    pub checkpoint: Option<&'a Path>,
    pub out: &'a Path,
    pub json: bool,
    /// The classification head: fitted on the training split, or generated.
    pub head: TextHead,
    /// ModelGPT-F: LoRA epochs from the generated adapter (0 = none).
    pub finetune: TextFinetune,
}

/// Which classification head a text model gets (`generate --text-head`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextHead {
    Fitted,
    Generated,
}

/// The fitted head ([`hyper_infer::text_head`]) on the training split's support sample,
/// its choices made on the validation rows, written into `params`. With the
/// data-conditioned generator `any`, over the frozen encoder or its generated adapter
/// ([`hyper_infer::text_any::fit`], which replaces `params`); without, over the adapter
/// already in `params`. Returns the head's description and validation accuracy.
fn fit_head(
    tokenizer: &TextTokenizer,
    base: &BertModel,
    params: &mut hyper_core::ParamMap,
    task: &TextTask,
    any: Option<&TextAnyGenerator>,
) -> Result<(serde_json::Value, Option<f64>)> {
    let classes = task.label_texts.len();
    let class_of = |rows: &[(String, Option<String>, Label)]| -> Vec<usize> {
        rows.iter().map(|r| r.2.class().unwrap_or(0)).collect()
    };
    let train_labels = class_of(&task.rows);
    let support: Vec<_> =
        text_head::support_sample(&train_labels, classes, text_head::SUPPORT_ROWS)
            .into_iter()
            .map(|i| task.rows[i].clone())
            .collect();
    let (se, _) = encode_rows(&support, tokenizer, task.summary.pair)?;
    let (ve, _) = encode_rows(&task.val, tokenizer, task.summary.pair)?;
    let (sy, vy) = (class_of(&support), class_of(&task.val));
    if let Some(g) = any {
        let m = text_any::fit(g, &se, &sy, classes, &train_labels, (&ve, &vy))?;
        let mut about = m.about(
            text_head::FEATURES,
            "generated from the support set",
            "none: the frozen encoder scored at least as high on the validation rows",
        );
        about["generator"] = g.checkpoint.display().to_string().into();
        *params = m.params;
        return Ok((about, m.head.val_accuracy));
    }
    let x = text_head::features(base, params, &se)?;
    let vx = text_head::features(base, params, &ve)?;
    let fitted = text_head::fit(&x, &sy, classes, &train_labels, Some((&vx, &vy)))?;
    text_head::insert(&fitted, params)?;
    Ok((fitted.about(text_head::FEATURES), fitted.val_accuracy))
}

/// ModelGPT-F for text: the generated adapter and head trained for `epochs` on a seeded
/// sample of at most `rows` labelled rows (the reproduction's budget is 1 epoch, 256 rows).
#[derive(Debug, Clone, Copy)]
pub struct TextFinetune {
    pub epochs: usize,
    pub rows: usize,
    pub lr: f64,
    pub seed: u64,
}

pub fn generate(a: &TextGenerate) -> Result<()> {
    let dev = Device::Cpu;
    let t = Instant::now();
    let (task, input) = task_input(&a.source, a.description)?;
    if a.head == TextHead::Generated
        && !task.regression
        && task.label_texts.iter().all(|n| n.parse::<f64>().is_ok())
    {
        // The generated head builds each class's row from its name: `0`/`1` say nothing
        // (SST-2 dev as a CSV: 51.4% with labels 0/1, 75.9% with negative/positive).
        eprintln!(
            "warning: the labels are numbers ({}); the generated head builds each class from its name, so number labels give a near-chance model: use --text-head fitted (the default for --data), rename them to words, or add --finetune-epochs",
            task.label_texts.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let t_data = t.elapsed().as_secs_f64();
    let d = describe(&input, &a.backend)?;
    ensure!(
        SERVED_TEXT_ARCHS.contains(&d.metadata.arch.as_str()),
        "the Model Generator chose arch `{}`; the NLP generator serves {} (as all-MiniLM-L6-v2)",
        d.metadata.arch,
        SERVED_TEXT_ARCHS.join(", ")
    );
    let want_task = if task.regression {
        "seq_reg"
    } else {
        "seq_cls"
    };
    ensure!(
        d.metadata.task == want_task,
        "the Model Generator chose task `{}` but the data is `{want_task}`",
        d.metadata.task
    );
    let t = Instant::now();
    let ck = a
        .checkpoint
        .map(Path::to_path_buf)
        .unwrap_or_else(default_nlp_checkpoint);
    let gen =
        TextGenerator::load(&ck, &datasets::paths::minilm_dir()?, &dev).with_context(|| {
            format!(
                "loading NLP generator {} (run `cargo xtask pretrain nlp`)",
                ck.display()
            )
        })?;
    // A fitted head reads the mean of the tokens (the pooling MiniLM was trained with); a
    // generated head reads what the generator was meta-trained on, [CLS] through the pooler.
    let pooling = match a.head {
        TextHead::Fitted if !task.regression => Pooling::Mean,
        _ => Pooling::Cls,
    };
    // A classifier fitted on a user's rows uses the data-conditioned generator when its
    // checkpoint is there (`cargo xtask pretrain text-any`), else the requirement's adapter.
    let any_ck = text_any::default_checkpoint();
    let any = if pooling == Pooling::Mean
        && task.glue.is_none()
        && any_ck.with_extension("toml").exists()
    {
        Some(TextAnyGenerator::load(
            &any_ck,
            &datasets::paths::minilm_dir()?,
            &dev,
        )?)
    } else {
        None
    };
    let base = match &any {
        Some(g) => g.base.clone(),
        None => gen.base.clone().with_pooling(pooling),
    };
    let t_load = t.elapsed().as_secs_f64();
    // A fitted head reads up to the encoder's sentence length (the probe's too); a generated
    // head the length its generator was meta-trained at.
    let max_len = match pooling {
        Pooling::Mean => text_head::MAX_TOKENS,
        Pooling::Cls => gen.architecture.max_len,
    };
    // The requirement's adapter, unless the data-conditioned generator writes one.
    let (mut params, requirement_stages) = match &any {
        Some(_) => (hyper_core::ParamMap::new(), Vec::new()),
        None => {
            let g = gen.generate(&d.requirement, &task.label_texts)?;
            let stages = vec![("encode", g.encode_secs), ("generate", g.generate_secs)];
            (g.params, stages)
        }
    };
    let tokenizer = TextTokenizer::load(&datasets::paths::minilm_dir()?, max_len)?;
    let t = Instant::now();
    let (head, fitted_val_accuracy) =
        attach_head(a.head, &task, &tokenizer, &base, &mut params, any.as_ref())?;
    let t_head = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let finetune = if a.finetune.epochs > 0 {
        Some(finetune_text(
            &base,
            &mut params,
            &task,
            &tokenizer,
            a.finetune,
        )?)
    } else {
        None
    };
    let t_finetune = t.elapsed().as_secs_f64();
    // The fitted head already scored the validation rows on their encoder features; encode
    // them again only when finetuning changed the model since.
    let scored = fitted_val_accuracy.filter(|_| finetune.is_none());
    let validation = validate(&task, scored, &base, &params, &tokenizer)?;
    let info = TextModelInfo {
        format: TEXT_MODEL_FORMAT.into(),
        base_model: BASE_MODEL_ID.into(),
        task: want_task.into(),
        label_names: task.label_texts.clone(),
        glue_task: task.glue.map(|t| t.name().to_string()),
        text_column: task.columns.0.clone(),
        text_pair_column: task.columns.1.clone(),
        target: task.columns.2.clone(),
        max_len,
        requirement: d.requirement.clone(),
        generator: any
            .as_ref()
            .map_or(&ck, |g| &g.checkpoint)
            .display()
            .to_string(),
        split: task.split.clone(),
        pooling,
    };
    let t = Instant::now();
    let notes = hyper_infer::model_card::CardNotes {
        validation: validation
            .as_ref()
            .map(|v| (v.accuracy, v.majority, v.rows)),
        finetune_epochs: a.finetune.epochs,
        data: Some(format!(
            "{} labelled training rows",
            task.summary.n_examples
        )),
    };
    TextModelDir::new(info, &base, params).save_with_card(a.out, &notes)?;
    let t_write = t.elapsed().as_secs_f64();
    let head_stage = match &any {
        Some(_) => "generate from the support set",
        None => "fit head",
    };
    let mut stages = vec![
        ("load data", t_data),
        ("requirement", d.requirement_secs),
        ("metadata", d.metadata_secs),
        ("load generator + encoder", t_load),
    ];
    stages.extend(requirement_stages);
    stages.extend([
        (head_stage, t_head),
        ("finetune", t_finetune),
        ("write adapter", t_write),
    ]);
    report(a, &d, &task, &head, &stages, finetune, validation.as_ref())
}

/// Puts the head a text model gets into `params`: for classification with
/// [`TextHead::Fitted`], the fitted head over the adapted encoder's features (which also
/// scores the validation rows); otherwise the generated one already there. Returns how
/// the head is described and the fitted head's validation accuracy.
fn attach_head(
    kind: TextHead,
    task: &TextTask,
    tokenizer: &TextTokenizer,
    base: &BertModel,
    params: &mut hyper_core::ParamMap,
    any: Option<&TextAnyGenerator>,
) -> Result<(serde_json::Value, Option<f64>)> {
    Ok(match kind {
        TextHead::Fitted if !task.regression => fit_head(tokenizer, base, params, task, any)?,
        TextHead::Fitted => (
            serde_json::json!({"kind": "generated", "note": "regression: no fitted head"}),
            None,
        ),
        TextHead::Generated => (serde_json::json!({"kind": "generated"}), None),
    })
}

/// ModelGPT-F for text: trains `params` (adapter and head) on a seeded sample of the
/// training rows; returns the rows used and the loss on them before and after.
fn finetune_text(
    base: &BertModel,
    params: &mut hyper_core::ParamMap,
    task: &TextTask,
    tokenizer: &TextTokenizer,
    f: TextFinetune,
) -> Result<(usize, f64, f64)> {
    let (examples, labels) = task.training_rows(tokenizer, f.rows, f.seed)?;
    let loss = |p: &hyper_core::ParamMap| -> Result<f64> {
        let pr = predict(base, p, &examples, task.regression, Some(&labels), 32)?;
        pr.loss.context("no loss without labels")
    };
    let before = loss(params)?;
    let (pm, vars) = params.to_vars()?;
    let opts = TrainOptions {
        epochs: f.epochs,
        batch_size: 16,
        lr: f.lr,
        weight_decay: 0.01,
        seed: f.seed,
    };
    train_epochs(base, &pm, vars, &examples, &labels, &opts, "ModelGPT-F")?;
    *params = pm;
    Ok((examples.len(), before, loss(params)?))
}

/// The model's accuracy on a CSV's validation rows beside their majority rate (`None`
/// without validation rows, or for regression); `scored` is an accuracy already measured.
fn validate(
    task: &TextTask,
    scored: Option<f64>,
    base: &BertModel,
    params: &hyper_core::ParamMap,
    tokenizer: &TextTokenizer,
) -> Result<Option<super::Validation>> {
    if task.val.is_empty() || task.regression {
        return Ok(None);
    }
    let gold: Vec<Label> = task.val.iter().map(|r| r.2).collect();
    let accuracy = match scored {
        Some(v) => v,
        None => {
            let (examples, _) = encode_rows(&task.val, tokenizer, task.summary.pair)?;
            let p = predict(base, params, &examples, false, None, 64)?;
            let ok = p.labels.iter().zip(&gold).filter(|(a, b)| a == b).count();
            ok as f64 / gold.len() as f64
        }
    };
    Ok(Some(super::Validation {
        accuracy,
        majority: super::majority_rate(&gold).unwrap_or(0.0),
        rows: gold.len(),
    }))
}

/// What `generate` prints for a text model (`--json`: one object).
fn report(
    a: &TextGenerate,
    d: &hyper_infer::Described,
    task: &TextTask,
    head: &serde_json::Value,
    stages: &[(&str, f64)],
    finetune: Option<(usize, f64, f64)>,
    validation: Option<&super::Validation>,
) -> Result<()> {
    if a.json {
        let timings = super::stage_timings(stages);
        let mut v = serde_json::json!({
            "requirement": d.requirement,
            "metadata": d.metadata,
            "labels": task.label_texts,
            "base_model": BASE_MODEL_ID,
            "generated_arch": GENERATED_ARCH,
            "head": head,
            "timings": timings,
            "finetune": finetune.map(|(rows, before, after)| serde_json::json!({
                "epochs": a.finetune.epochs,
                "rows": rows,
                "lr": a.finetune.lr,
                "loss_before": before,
                "loss_after": after,
            })),
            "out": a.out,
        });
        super::Validation::json_into(validation, &mut v);
        return super::print_json(&v);
    }
    println!("requirement: {}", d.requirement);
    println!("metadata: {}", serde_json::to_string(&d.metadata)?);
    println!("labels: {}", task.label_texts.join(", "));
    match (head["support_rows"].as_u64(), head["shrinkage"].as_f64()) {
        (Some(n), Some(g)) => println!(
            "head: fitted in one pass (shrinkage LDA, shrinkage {g}, prior boost {}) on {n} training rows' mean-pooled encoder features",
            head["prior_boost"]
        ),
        _ => println!("head: generated from the label names"),
    }
    if let Some(adapter) = head["adapter"].as_str() {
        println!(
            "adapter: {adapter} (validation accuracy frozen {}, adapted {}; {})",
            head["val_accuracy_frozen"], head["val_accuracy_adapted"], head["generator"]
        );
    }
    if d.metadata.arch != GENERATED_ARCH {
        println!(
            "note: the Model Generator asked for {}; the text generator serves every BERT-family request with {GENERATED_ARCH}",
            d.metadata.arch
        );
    }
    super::print_stages(stages);
    if let Some((rows, before, after)) = finetune {
        println!(
            "finetuned {} epoch(s) on {rows} rows: training-row loss {before:.4} -> {after:.4}",
            a.finetune.epochs
        );
    }
    if let Some(v) = validation {
        v.print();
    }
    println!(
        "wrote a PEFT adapter for {BASE_MODEL_ID} to {}",
        a.out.display()
    );
    Ok(())
}

/// A loaded text model ready to score: base + adapter + tokenizer.
struct Loaded {
    dir: TextModelDir,
    base: BertModel,
    tokenizer: TextTokenizer,
}

fn load_model(model: &Path, dev: &Device) -> Result<Loaded> {
    let dir = TextModelDir::load(model, dev)?;
    let minilm = datasets::paths::minilm_dir()?;
    let base = BertModel::load(&minilm, dir.adapter.lora_config(), dev)?
        .with_fused_inference(true)
        .with_pooling(dir.info.pooling);
    let tokenizer = TextTokenizer::load(&minilm, dir.info.max_len)?;
    Ok(Loaded {
        dir,
        base,
        tokenizer,
    })
}

/// Texts of a CSV with the model's columns (overridable).
fn read_csv(
    path: &Path,
    info: &TextModelInfo,
    text_column: Option<&str>,
    pair_column: Option<&str>,
    target: Option<&str>,
) -> Result<TextData> {
    let text = text_column
        .map(String::from)
        .or_else(|| info.text_column.clone())
        .context("--text-column is required (the model does not name one)")?;
    let pair = pair_column
        .map(String::from)
        .or_else(|| info.text_pair_column.clone());
    Ok(load_text_csv(
        path,
        &TextCsvOptions {
            text_column: text,
            pair_column: pair,
            target: target.map(String::from),
            delimiter: None,
        },
    )?)
}

fn encode(tok: &TextTokenizer, d: &TextData) -> Result<Vec<Encoded>> {
    let a: Vec<&str> = d.text_a.iter().map(String::as_str).collect();
    let b: Option<Vec<&str>> = d
        .text_b
        .as_ref()
        .map(|v| v.iter().map(String::as_str).collect());
    tok.encode(&a, b.as_deref())
        .with_context(|| format!("{}", d.source.display()))
}

/// `eval` of a text model: the GLUE metrics of `--glue` dev, or accuracy on a CSV.
pub fn eval(args: &super::eval::EvalArgs) -> Result<()> {
    let (model, glue_name, data) = (&args.model, args.glue.as_deref(), args.data.as_deref());
    let (text_column, pair_column) = (
        args.text_column.as_deref(),
        args.text_pair_column.as_deref(),
    );
    let (target, split, json) = (args.target.as_deref(), args.split, args.json);
    let dev = Device::Cpu;
    let m = load_model(model, &dev)?;
    let info = &m.dir.info;
    let (examples, gold, task, source): (Vec<Encoded>, Vec<Label>, Option<GlueTask>, String) =
        match (glue_name, data) {
            (Some(name), _) => {
                ensure!(
                    split == super::eval::SplitArg::All,
                    "--glue scores the task's dev set, which no model trained on; --split applies to --data"
                );
                let task = GlueTask::from_name(name)?;
                let want = glue_label_texts(task);
                ensure!(
                    want == info.label_names,
                    "{}: the model's labels ({}) are not {task}'s ({})",
                    model.display(),
                    info.label_names.join(", "),
                    want.join(", ")
                );
                let split = glue::load(task, "dev", &GlueTask::default_root())?;
                (
                    m.tokenizer.encode_split(&split)?,
                    split.labels(),
                    Some(task),
                    split.source.display().to_string(),
                )
            }
            (None, Some(path)) => {
                let target = target
                    .map(String::from)
                    .or_else(|| info.target.clone())
                    .context("--target is required (the model does not name its label column)")?;
                let d = read_csv(path, info, text_column, pair_column, Some(&target))?;
                let gold = d
                    .targets
                    .as_ref()
                    .expect("target requested")
                    .iter()
                    .zip(&d.lines)
                    .map(|(v, line)| {
                        if info.is_regression() {
                            v.parse::<f32>().map(Label::Score).map_err(|_| {
                                anyhow::anyhow!(
                                    "{}:{line}: target `{v}` is not a number",
                                    path.display()
                                )
                            })
                        } else {
                            info.label_names
                                .iter()
                                .position(|n| n == v)
                                .map(Label::Class)
                                .ok_or_else(|| {
                                    anyhow::anyhow!(
                                        "{}:{line}: label `{v}` is not one the model knows ({})",
                                        path.display(),
                                        info.label_names.join(", ")
                                    )
                                })
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                let rows = super::eval::split_rows(
                    split,
                    info.split.as_ref(),
                    &file_fingerprint(path)?,
                    d.len(),
                    &path.display().to_string(),
                )?;
                let enc = encode(&m.tokenizer, &d)?;
                (
                    rows.iter().map(|&r| enc[r].clone()).collect(),
                    rows.iter().map(|&r| gold[r]).collect(),
                    None,
                    path.display().to_string(),
                )
            }
            (None, None) => bail!("give --glue <task> or --data <csv>"),
        };
    let p = predict(
        &m.base,
        &m.dir.params,
        &examples,
        info.is_regression(),
        Some(&gold),
        64,
    )?;
    let metrics: Vec<(String, f64)> = match task {
        Some(t) => t
            .evaluate(&p.labels, &gold)?
            .into_iter()
            .map(|(k, v)| (k.name(), v))
            .collect(),
        None if info.is_regression() => vec![],
        None => {
            let ok = p.labels.iter().zip(&gold).filter(|(a, b)| a == b).count();
            vec![("acc".into(), ok as f64 / gold.len() as f64)]
        }
    };
    let score = if let Some(t) = task {
        glue_score(&t.evaluate(&p.labels, &gold)?)
    } else {
        metrics.first().map_or(f64::NAN, |m| m.1)
    };
    if json {
        return super::EvalReport {
            modality: "text",
            model,
            data: &source,
            split,
            rows: gold.len(),
            metrics: metrics
                .iter()
                .map(|(k, v)| {
                    (
                        if k == "acc" {
                            "accuracy".into()
                        } else {
                            k.clone()
                        },
                        *v,
                    )
                })
                .collect(),
            score,
            loss: p.loss,
            majority_rate: (!info.is_regression())
                .then(|| super::majority_rate(&gold))
                .flatten(),
        }
        .print_json();
    }
    let shown: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    println!(
        "{} ({} rows of {source}), loss {:.4}",
        shown.join(", "),
        gold.len(),
        p.loss.unwrap_or(f64::NAN)
    );
    Ok(())
}

/// `predict` of a text model: `row,prediction,confidence,p_<class>...` (regression:
/// `row,prediction`) for every row of a CSV.
pub fn predict_csv(
    model: &Path,
    data: &Path,
    text_column: Option<&str>,
    pair_column: Option<&str>,
    out: &Path,
    json: bool,
) -> Result<usize> {
    let dev = Device::Cpu;
    let m = load_model(model, &dev)?;
    let info = &m.dir.info;
    let d = read_csv(data, info, text_column, pair_column, None)?;
    let p = predict(
        &m.base,
        &m.dir.params,
        &encode(&m.tokenizer, &d)?,
        info.is_regression(),
        None,
        64,
    )?;
    let mut s = String::from("row,prediction");
    if !info.is_regression() {
        s.push_str(",confidence");
        for c in &info.label_names {
            s.push(',');
            s.push_str(&super::csv_field(&format!("p_{c}")));
        }
    }
    s.push('\n');
    let rows = super::RowOrder::new(Some(d.lines.clone()), &d.unscored, d.len());
    let empty_tail = if info.is_regression() {
        String::new()
    } else {
        ",".repeat(info.label_names.len() + 1)
    };
    for (i, slot) in rows.iter().enumerate() {
        let Some(r) = slot else {
            s.push_str(&format!("{i},{empty_tail}\n"));
            continue;
        };
        match p.labels[r] {
            Label::Score(v) => s.push_str(&format!("{i},{v:.4}\n")),
            Label::Class(c) => {
                let probs = &p.probs[r];
                s.push_str(&format!(
                    "{i},{},{:.4}",
                    super::csv_field(&info.label_names[c]),
                    probs[c]
                ));
                for v in probs {
                    s.push_str(&format!(",{v:.6}"));
                }
                s.push('\n');
            }
        }
    }
    rows.warn_unscored(&data.display().to_string());
    super::write_output(out, &s)?;
    if json {
        let names = if info.is_regression() {
            info.target.iter().cloned().collect()
        } else {
            info.label_names.clone()
        };
        super::PredictReport {
            modality: "text",
            model,
            data: &data.display().to_string(),
            class_names: &names,
            predictions: rows
                .iter()
                .map(|r| match r.map(|r| p.labels[r]) {
                    Some(Label::Class(c)) => info.label_names[c].clone().into(),
                    Some(Label::Score(v)) => v.into(),
                    None => serde_json::Value::Null,
                })
                .collect(),
            probabilities: rows
                .iter()
                .map(|r| {
                    r.filter(|_| !info.is_regression())
                        .map(|r| p.probs[r].as_slice())
                })
                .collect(),
            files: None,
            unscored: rows.unscored_json(),
            out,
        }
        .print_json()?;
    }
    Ok(rows.len())
}
