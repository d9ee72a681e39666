//! `hyper-infer export`: a model directory as one standard file (ONNX) for other runtimes.

use std::path::PathBuf;

use anyhow::{bail, Result};
use candle_core::Device;
use clap::{Args, ValueEnum};
use hyper_infer::ModelDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ONNX (opset 13). Table models: input `features` [batch, F] (numeric values,
    /// categorical level indices, NaN for missing); image models: input `images`
    /// [batch, 3, S, S] (RGB in [0, 1]); output `probabilities`.
    Onnx,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A directory written by `hyper-infer generate`.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Onnx)]
    pub format: Format,
    /// The file to write (absent, or an earlier export).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let Format::Onnx = args.format;
    hyper_infer::outputs::check_export_out(&args.out, &[&args.model])?;
    if hyper_infer::text_model_dir::TextModelDir::is_text_model(&args.model) {
        bail!(
            "{} is a text model: it is already a PEFT adapter directory (load it with peft; see its README.md); ONNX export serves table and image models",
            args.model.display()
        );
    }
    let (bytes, doc) = if hyper_infer::image_model_dir::ImageModelDir::is_image_model(&args.model) {
        let m = hyper_infer::image_model_dir::ImageModelDir::load(&args.model, &Device::Cpu)?;
        (
            hyper_infer::export::image_onnx(&m)?,
            hyper_infer::export::IMAGE_ONNX_DOC,
        )
    } else {
        let m = ModelDir::load(&args.model, &Device::Cpu)?;
        (
            hyper_infer::export::table_onnx(&m)?,
            hyper_infer::export::TABLE_ONNX_DOC,
        )
    };
    hyper_core::io::atomic_write(&args.out, &bytes)?;
    println!(
        "wrote {} ({} bytes): {}",
        args.out.display(),
        bytes.len(),
        doc
    );
    Ok(())
}
