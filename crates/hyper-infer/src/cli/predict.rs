//! `hyper-infer predict`: class predictions of a generated model for every row of a CSV.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use clap::Args;
use hyper_core::io::atomic_write;
use hyper_train::ModelDir;
use target_models::mlp::Mlp;
use target_models::TargetModel;

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// CSV with the model's feature columns (the target column may be absent).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
}

const DUMMY_TARGET: &str = "__hyper_predict_target__";

/// The CSV with a dummy target column appended, for files without the target. The
/// loader insists on two classes, so the dummy alternates 0/1 and a lone data row is
/// repeated; returns the file and the number of real data rows.
fn with_dummy_target(path: &Path) -> Result<(tempfile::NamedTempFile, usize)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or("");
    let rows: Vec<&str> = lines.collect();
    let delim = [',', ';', '\t']
        .into_iter()
        .max_by_key(|d| header.matches(*d).count())
        .unwrap_or(',');
    let mut tmp = tempfile::NamedTempFile::new()?;
    writeln!(tmp, "{header}{delim}{DUMMY_TARGET}")?;
    let padded: Vec<&str> = if rows.len() == 1 {
        vec![rows[0], rows[0]]
    } else {
        rows.clone()
    };
    for (i, line) in padded.iter().enumerate() {
        writeln!(tmp, "{line}{delim}{}", i % 2)?;
    }
    tmp.flush()?;
    Ok((tmp, rows.len()))
}

pub fn run(args: &PredictArgs) -> Result<()> {
    let dev = Device::Cpu;
    let m0 = ModelDir::load(&args.model, &dev)?;
    let text = std::fs::read_to_string(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?;
    let has_target = text.lines().next().is_some_and(|h| {
        h.split([',', ';', '\t'])
            .any(|c| c.trim().trim_matches('"') == m0.info.target)
    });
    let tmp;
    let mut keep = usize::MAX;
    let (path, target) = if has_target {
        (args.data.clone(), m0.info.target.clone())
    } else {
        let (t, n) = with_dummy_target(&args.data)?;
        tmp = t;
        keep = n;
        (tmp.path().to_path_buf(), DUMMY_TARGET.to_string())
    };
    let opts = datasets::user_csv::CsvOptions {
        target: Some(target),
        ..Default::default()
    };
    let mut table = datasets::user_csv::load_csv(&path, &opts)
        .with_context(|| format!("loading {}", args.data.display()))?;
    table.source = args.data.display().to_string();
    let (m, x) = super::eval::prepare(&args.model, &table, &dev)?;
    let f = m.info.columns.len();
    let n = x.len() / f.max(1);
    let logits = Mlp::new(m.info.mlp.clone()).forward(
        &m.params,
        &Tensor::from_vec(x, (n, f), &dev)?,
        false,
    )?;
    let probs = candle_nn::ops::softmax(&logits, candle_core::D::Minus1)?.to_vec2::<f32>()?;
    let mut out = String::from("row,prediction,confidence\n");
    let n = n.min(keep);
    for (i, p) in probs.iter().take(n).enumerate() {
        let (k, c) = p
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |a, (j, &v)| if v > a.1 { (j, v) } else { a });
        let name = m
            .info
            .class_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| k.to_string());
        out.push_str(&format!("{i},{},{c:.4}\n", csv_field(&name)));
    }
    atomic_write(&args.out, out.as_bytes())?;
    println!("wrote {} predictions to {}", n, args.out.display());
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
