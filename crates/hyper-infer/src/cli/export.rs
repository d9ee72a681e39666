//! `hyper-infer export`: a model directory as one standard file (ONNX) for other runtimes.

use std::path::PathBuf;

use anyhow::{bail, Result};
use candle_core::Device;
use clap::{Args, ValueEnum};
use hyper_infer::ModelDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ONNX (opset 13). Table models: input `features` [batch, F] (numeric values,
    /// categorical level indices, NaN for missing), output `probabilities`.
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
    hyper_infer::outputs::check_export_out(&args.out, &[&args.model])?;
    if hyper_infer::text_model_dir::TextModelDir::is_text_model(&args.model) {
        bail!(
            "{} is a text model: it is already a PEFT adapter directory (load it with peft; see its README.md); ONNX export serves table models",
            args.model.display()
        );
    }
    if hyper_infer::image_model_dir::ImageModelDir::is_image_model(&args.model) {
        bail!(
            "{} is an image model: ONNX export serves table models so far; load the adapter with peft (see its README.md)",
            args.model.display()
        );
    }
    let m = ModelDir::load(&args.model, &Device::Cpu)?;
    let bytes = match args.format {
        Format::Onnx => hyper_infer::export::table_onnx(&m)?,
    };
    hyper_core::io::atomic_write(&args.out, &bytes)?;
    println!(
        "wrote {} ({} bytes): {}",
        args.out.display(),
        bytes.len(),
        hyper_infer::export::TABLE_ONNX_DOC
    );
    Ok(())
}
