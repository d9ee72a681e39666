//! Image models: `generate --images DIR | --image-set NAME` writes a PEFT adapter
//! directory for the frozen ResNet backbone; `eval` scores it (top-1/3/5) and `predict`
//! labels a folder of images.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use datasets::images::ImageSet;
use datasets::preprocess::split_indices;
use hyper_infer::data_split::{folder_fingerprint, DataSplit};
use hyper_infer::image_model_dir::{ImageModelDir, ImageModelInfo, IMAGE_MODEL_FORMAT};
use hyper_infer::requirement::describe;
use hyper_infer::vision::{self, ImageGenerator, ImageSetName, ImageSplit};
use hyper_infer::BackendOptions;

use super::eval::SplitArg;
use llm_prompting::{DataProfile, TaskInput};

/// The default CV generator: `checkpoints/cv/best`.
pub fn default_cv_checkpoint() -> PathBuf {
    hyper_infer::checkpoint_dir("cv").join("best")
}

/// The ResNet depths the CV generator can serve; the checkpoint's own backbone answers
/// for any of them (stated on every `generate`, never silent).
const RESNET_ARCHS: [&str; 3] = ["resnet18", "resnet50", "resnet152"];

/// Where labelled images come from.
#[derive(Debug, Clone, Copy)]
pub enum ImageSource<'a> {
    /// A folder of class sub-folders (mixed sizes are brought to the most common one).
    Folder(&'a Path),
    /// A built-in set; `generate` reads its training split, `eval` its test split.
    Set(ImageSetName),
}

impl ImageSource<'_> {
    fn name(&self) -> String {
        match self {
            Self::Folder(p) => p
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "images".into()),
            Self::Set(s) => s.name().to_string(),
        }
    }

    /// The images to generate or train from (`Train`) or to score (`Test`): a built-in
    /// set's split, or every image of a class folder for either.
    fn load(&self, split: ImageSplit) -> Result<ImageSet> {
        match self {
            Self::Folder(p) => Ok(datasets::images::load_class_folders(p, None)?),
            Self::Set(s) => s.load_split(split),
        }
    }
}

pub struct ImageGenerate<'a> {
    pub source: ImageSource<'a>,
    pub description: Option<&'a str>,
    pub backend: BackendOptions,
    pub checkpoint: Option<&'a Path>,
    pub out: &'a Path,
    pub json: bool,
    pub finetune_epochs: usize,
    pub finetune_lr: f64,
    /// At most this many training images (a seeded sample) for `finetune_epochs`.
    pub finetune_rows: usize,
    pub seed: u64,
}

/// The images a model is generated from and the requirement writers' input for them (a
/// built-in set's own description unless the user gives one).
pub fn task_input(source: ImageSource, description: Option<&str>) -> Result<(ImageSet, TaskInput)> {
    let train = source.load(ImageSplit::Train)?;
    let what = description.or(match source {
        ImageSource::Set(s) => Some(s.description()),
        ImageSource::Folder(_) => None,
    });
    let summary = vision::image_summary(&train, &source.name(), what);
    let input = TaskInput::new(DataProfile::from_image(&summary)?, description)?;
    Ok((train, input))
}

pub fn generate(a: &ImageGenerate) -> Result<()> {
    let dev = Device::Cpu;
    let t = Instant::now();
    let (train, input) = task_input(a.source, a.description)?;
    let t_data = t.elapsed().as_secs_f64();
    let d = describe(&input, &a.backend)?;
    ensure!(
        d.metadata.task == "img_cls",
        "the Model Generator chose task `{}` but the data is `img_cls`",
        d.metadata.task
    );
    ensure!(
        RESNET_ARCHS.contains(&d.metadata.arch.as_str()),
        "the Model Generator chose arch `{}`; the CV generator serves a ResNet ({})",
        d.metadata.arch,
        RESNET_ARCHS.join(", ")
    );
    let t = Instant::now();
    let ck = a
        .checkpoint
        .map(Path::to_path_buf)
        .unwrap_or_else(default_cv_checkpoint);
    let gen =
        ImageGenerator::load(&ck, &datasets::paths::minilm_dir()?, &dev).with_context(|| {
            format!(
                "loading CV generator {} (run `cargo xtask pretrain backbone` and `cargo xtask pretrain cv`)",
                ck.display()
            )
        })?;
    let t_load = t.elapsed().as_secs_f64();
    let served = gen.architecture.backbone.arch.clone();
    let arch_note = (d.metadata.arch != served).then(|| {
        format!(
            "the Model Generator asked for {}; this checkpoint's backbone is {served} (width {}), which serves every ResNet request",
            d.metadata.arch, gen.architecture.backbone.width
        )
    });
    // A folder is split 60/10/30 like a table: finetuning sees its training part only, so
    // `eval --split test` scores images the model never trained on.
    let (train, val, split) = match a.source {
        ImageSource::Folder(dir) => match split_indices(train.n, a.seed) {
            Some((rows, val, _)) => (
                vision::subset(&train, &rows),
                Some(vision::subset(
                    &train,
                    &val[..val.len().min(super::VALIDATION_ROWS)],
                )),
                Some(DataSplit {
                    seed: a.seed,
                    rows: train.n,
                    fnv64: folder_fingerprint(dir)?,
                }),
            ),
            None => (train, None, None),
        },
        ImageSource::Set(_) => (train, None, None),
    };
    let g = gen.generate(&d.requirement, &train.class_names)?;
    let mut params = g.params;
    // A folder's label set is almost never one the generator was meta-trained on: its
    // `fc` is fitted in one pass on the training split's features instead.
    let t = Instant::now();
    let head = match &val {
        Some(val) => {
            let b = &gen.architecture.backbone;
            let m = hyper_infer::image_head::fit(&gen.base, b, &params, &train, val)?;
            let about = hyper_infer::image_head::about(&m);
            params = m.params;
            Some(about)
        }
        None => None,
    };
    let t_head = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut finetune = None;
    if a.finetune_epochs > 0 {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut rows: Vec<usize> = (0..train.n).collect();
        rows.shuffle(&mut rand::rngs::StdRng::seed_from_u64(a.seed));
        rows.truncate(a.finetune_rows.max(1));
        let sample = vision::subset(&train, &rows);
        let prepared = vision::prepare(&sample, &gen.architecture.backbone)?;
        let (pm, vars) = params.to_vars()?;
        let losses = vision::train_epochs(
            &gen.base,
            &pm,
            vars,
            &prepared,
            &hyper_infer::finetune::TrainOptions {
                epochs: a.finetune_epochs,
                batch_size: 32,
                lr: a.finetune_lr,
                weight_decay: 0.01,
                seed: a.seed,
            },
            "ModelGPT-F",
        )?;
        params = pm;
        finetune = Some((sample.n, losses));
    }
    let t_finetune = t.elapsed().as_secs_f64();
    let validation = match &val {
        Some(val) => Some(super::Validation {
            accuracy: vision::evaluate(
                &gen.base,
                &params,
                &vision::prepare(val, &gen.architecture.backbone)?,
            )?
            .top1,
            majority: super::majority_rate(&val.labels).unwrap_or(0.0),
            rows: val.n,
        }),
        None => None,
    };
    let info = ImageModelInfo {
        format: IMAGE_MODEL_FORMAT.into(),
        backbone: gen.architecture.backbone.clone(),
        backbone_weights: gen.architecture.backbone_weights.clone(),
        lora: gen.architecture.lora.clone(),
        class_names: train.class_names.clone(),
        image_set: match a.source {
            ImageSource::Set(s) => Some(s.name().to_string()),
            ImageSource::Folder(_) => None,
        },
        requirement: d.requirement.clone(),
        generator: ck.display().to_string(),
        split,
        resize: hyper_infer::image_model_dir::RESIZE_POLICY.into(),
        head: head.clone(),
    };
    let t = Instant::now();
    let notes = hyper_infer::model_card::CardNotes {
        validation: validation
            .as_ref()
            .map(|v| (v.accuracy, v.majority, v.rows)),
        finetune_epochs: a.finetune_epochs,
        data: Some(format!("{} training images", train.n)),
    };
    ImageModelDir::new(info, &gen.base, params).save_with_card(a.out, &notes)?;
    let t_write = t.elapsed().as_secs_f64();
    let stages = [
        ("load images", t_data),
        ("requirement", d.requirement_secs),
        ("metadata", d.metadata_secs),
        ("load generator + encoder", t_load),
        ("encode", g.encode_secs),
        ("generate", g.generate_secs),
        ("fit head", t_head),
        ("finetune", t_finetune),
        ("write adapter", t_write),
    ];
    if a.json {
        let timings = super::stage_timings(&stages);
        let mut v = serde_json::json!({
            "requirement": d.requirement,
            "metadata": d.metadata,
            "classes": train.class_names,
            "backbone": gen.architecture.backbone,
            "generated_arch": format!("{}-w{}", served, gen.architecture.backbone.width),
            "note": arch_note,
            "head": head,
            "timings": timings,
            "finetune": finetune.as_ref().map(|(n, l)| serde_json::json!({"images": n, "losses": l})),
            "out": a.out,
        });
        super::Validation::json_into(validation.as_ref(), &mut v);
        return super::print_json(&v);
    }
    println!("requirement: {}", d.requirement);
    println!("metadata: {}", serde_json::to_string(&d.metadata)?);
    if let Some(n) = arch_note {
        println!("note: {n}");
    }
    println!("classes: {}", train.class_names.join(", "));
    if let Some(h) = &head {
        println!(
            "head: fitted on the training images' features (validation: frozen backbone {:.4}, generated adapter {:.4}; kept {})",
            h["val_accuracy_frozen"].as_f64().unwrap_or(0.0),
            h["val_accuracy_adapted"].as_f64().unwrap_or(0.0),
            if h["adapter"] == "generated" { "the adapter" } else { "the frozen backbone" }
        );
    }
    super::print_stages(&stages);
    if let Some((n, l)) = finetune {
        println!("finetune: {n} training images, training loss per epoch {l:?}");
    }
    if let Some(v) = &validation {
        v.print();
    }
    println!("wrote {}", a.out.display());
    Ok(())
}

/// Top-1/3/5 of the model in `dir` on `source` (a built-in set's test split, or every
/// image of a class folder, whose class folders must be the model's classes).
pub fn eval(dir: &Path, source: ImageSource, split: SplitArg, json: bool) -> Result<()> {
    let dev = Device::Cpu;
    let m = ImageModelDir::load(dir, &dev)?;
    let test = source.load(ImageSplit::Test)?;
    let test = match source {
        ImageSource::Folder(folder) => {
            let rows = super::eval::split_rows(
                split,
                m.info.split.as_ref(),
                &folder_fingerprint(folder)?,
                test.n,
                &test.source,
            )?;
            vision::subset(&test, &rows)
        }
        ImageSource::Set(s) => {
            ensure!(
                split == SplitArg::All,
                "--image-set {} scores the set's own test split; --split applies to --images folders",
                s.name()
            );
            test
        }
    };
    if test.class_names != m.info.class_names {
        bail!(
            "{} has classes [{}] but the model in {} was generated for [{}]",
            test.source,
            test.class_names.join(", "),
            dir.display(),
            m.info.class_names.join(", ")
        );
    }
    let model = m.backbone(&dev)?;
    let prepared = vision::prepare(&test, &m.info.backbone)?;
    let acc = vision::evaluate(&model, &m.params, &prepared)?;
    if json {
        return super::EvalReport {
            modality: "image",
            model: dir,
            data: &test.source,
            split,
            rows: test.n,
            metrics: [
                ("accuracy", acc.top1),
                ("top3", acc.top3),
                ("top5", acc.top5),
            ]
            .map(|(k, v)| (k.to_string(), v))
            .into(),
            score: acc.top1,
            loss: None,
            majority_rate: super::majority_rate(&test.labels),
        }
        .print_json();
    }
    println!(
        "top-1 {:.4}  top-3 {:.4}  top-5 {:.4}  ({} images of {})",
        acc.top1, acc.top3, acc.top5, test.n, test.source
    );
    Ok(())
}

/// Labels every image directly in `images` with the model in `dir`; writes
/// `file,prediction,confidence,p_<class>…` to `out` (`-`: standard output). Returns the
/// number of images.
pub fn predict(dir: &Path, images: &Path, out: &Path, json: bool) -> Result<usize> {
    let dev = Device::Cpu;
    let m = ImageModelDir::load(dir, &dev)?;
    let model = m.backbone(&dev)?;
    let size = m.info.backbone.image_size;
    let (files, set) = datasets::images::load_unlabelled(images, size)?;
    let prepared = vision::prepare(&set, &m.info.backbone)?;
    let probs = vision::probabilities(&model, &m.params, &prepared, 128)?;
    let names = &m.info.class_names;
    let mut text = String::from("file,prediction,confidence");
    for c in names {
        text.push_str(&format!(",{}", super::csv_field(&format!("p_{c}"))));
    }
    text.push('\n');
    for (f, p) in files.iter().zip(&probs) {
        let (best, conf) =
            p.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        text.push_str(&format!(
            "{},{},{conf:.6}",
            super::csv_field(&f.display().to_string()),
            super::csv_field(&names[best])
        ));
        for v in p {
            text.push_str(&format!(",{v:.6}"));
        }
        text.push('\n');
    }
    super::write_output(out, &text)?;
    if json {
        super::PredictReport {
            modality: "image",
            model: dir,
            data: &images.display().to_string(),
            class_names: names,
            predictions: probs
                .iter()
                .map(|p| names[hyper_core::layers::argmax(p).0].clone().into())
                .collect(),
            probabilities: probs.iter().map(|p| Some(p.as_slice())).collect(),
            files: Some(files.iter().map(|f| f.display().to_string()).collect()),
            unscored: serde_json::json!([]),
            out,
        }
        .print_json()?;
    }
    Ok(files.len())
}
