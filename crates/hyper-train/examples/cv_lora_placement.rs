//! How much the adapter family allows on one image domain: the LoRA baseline of
//! `reproduce cv` (`hyper_train::cv::experiment::train_lora`: PEFT's start, the config's
//! `[baseline]` epochs, lr, batch and image cap) trained with each given placement and
//! rank, scored on the domain's test split. This is what chose `configs/cv-blocks.toml`'s
//! `target_modules`.
//!
//! ```text
//! cargo run -p hyper-train --example cv_lora_placement -- configs/cv-noshift-budget.toml mnist5k \
//!     'layer[34]\..\.conv.@4' 'layer[1234]\..\.conv.@4'
//! ```
//! Each placement is `REGEX@RANK` (alpha = 2·rank, as the committed configs).

use std::path::Path;

use anyhow::{bail, Context};
use candle_core::Device;
use hyper_infer::vision::{self, ImageSetName};
use hyper_train::cv::config::CvConfig;
use hyper_train::cv::experiment::{capped, train_lora};
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
    let task = ImageTask::load(
        set,
        &cfg.architecture.backbone,
        d.train_cap,
        d.val_per_task,
        d.test_cap,
        1,
        cfg.train.seed,
    )?;
    let train = capped(&task.train, cfg.baseline.train_cap);
    for spec in placements {
        let (re, r) = spec
            .rsplit_once('@')
            .with_context(|| format!("{spec:?}: expected REGEX@RANK"))?;
        let lora = &mut cfg.architecture.lora;
        lora.target_modules = TargetModules::Regex(re.into());
        lora.r = r.parse().with_context(|| format!("{spec:?}: rank"))?;
        lora.alpha = 2.0 * lora.r as f64;
        let model = cfg.architecture.load_backbone(&Device::Cpu)?;
        let (params, secs) = train_lora(&cfg, &model, &train, spec)?;
        let acc = vision::evaluate(&model, &params, &task.test)?;
        let trainable: usize = params.iter().map(|(_, t)| t.elem_count()).sum();
        println!(
            "{domain} {spec}: {trainable} trainable, {} epochs over {} images: test top-1 {:.1} / @3 {:.1} ({secs:.0} s)",
            cfg.baseline.epochs,
            train.n,
            acc.top1 * 100.0,
            acc.top3 * 100.0,
        );
    }
    Ok(())
}
