//! How much the adapter family allows on one image domain: the LoRA baseline of
//! `reproduce cv` (PEFT's start, `[baseline]` lr, batch and image cap of the config)
//! trained with each given placement and rank, scored on the domain's test split. This is
//! what chose `configs/cv-blocks.toml`'s `target_modules`.
//!
//! ```text
//! cargo run -p hyper-train --example cv_lora_placement -- configs/cv-budget.toml mnist5k \
//!     'layer[34]\..\.conv.@4' 'layer[1234]\..\.conv.@4'
//! ```
//! Each placement is `REGEX@RANK` (alpha = 2·rank, as the committed configs).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Device;
use hyper_infer::finetune::TrainOptions;
use hyper_infer::vision::{self, ImageSetName};
use hyper_train::cv::config::CvConfig;
use hyper_train::cv::experiment::seeded_lora_init;
use hyper_train::cv::task::ImageTask;
use target_models::lora::TargetModules;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, domain, placements @ ..] = args.as_slice() else {
        bail!("usage: cv_lora_placement CONFIG DOMAIN REGEX@RANK...");
    };
    let mut cfg = CvConfig::load(Path::new(config))?;
    let set: ImageSetName = serde_json::from_str(&format!("\"{domain}\""))
        .with_context(|| format!("unknown image set {domain:?}"))?;
    let d = &cfg.data;
    let (seed, b) = (cfg.train.seed, cfg.baseline.clone());
    let task = ImageTask::load(
        set,
        &cfg.architecture.backbone,
        d.train_cap,
        d.val_per_task,
        d.test_cap,
        1,
        seed,
    )?;
    let rows: Vec<usize> = (0..b.train_cap.min(task.train.n)).collect();
    let train = vision::subset(&task.train, &rows);
    let opts = TrainOptions {
        epochs: b.epochs,
        batch_size: b.batch_size,
        lr: b.lora_lr,
        weight_decay: b.weight_decay,
        seed,
    };
    for spec in placements {
        let (re, r) = spec
            .rsplit_once('@')
            .with_context(|| format!("{spec:?}: expected REGEX@RANK"))?;
        let lora = &mut cfg.architecture.lora;
        lora.target_modules = TargetModules::Regex(re.into());
        lora.r = r.parse().with_context(|| format!("{spec:?}: rank"))?;
        lora.alpha = 2.0 * lora.r as f64;
        let model = cfg.architecture.load_backbone(&Device::Cpu)?;
        let t0 = Instant::now();
        let (params, vars) =
            seeded_lora_init(&model, train.num_classes(), seed, &Device::Cpu)?.to_vars()?;
        let trainable: usize = vars.iter().map(|(_, v)| v.elem_count()).sum();
        vision::train_epochs(&model, &params, vars, &train, &opts, spec)?;
        let acc = vision::evaluate(&model, &params, &task.test)?;
        println!(
            "{domain} {spec}: {trainable} trainable, {} epochs over {} images: test top-1 {:.1} / @3 {:.1} ({:.0} s)",
            b.epochs,
            train.n,
            acc.top1 * 100.0,
            acc.top3 * 100.0,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
