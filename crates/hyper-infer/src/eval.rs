//! Scoring a generated MLP: a split as tensors, and its loss/accuracy. The meta-trainer
//! and the baselines score with the same code, so their numbers and `eval`'s agree.

use candle_core::{Device, Tensor};
use hyper_core::layers::{accuracy, cross_entropy};
use hyper_core::ParamMap;
use target_models::mlp::Mlp;
use target_models::TargetModel;

/// One split as tensors: `x [n, f]` f32, `y [n]` u32, plus host labels for accuracy.
#[derive(Debug, Clone)]
pub struct SplitTensors {
    pub x: Tensor,
    pub y: Tensor,
    pub labels: Vec<usize>,
}

impl SplitTensors {
    pub fn from_split(s: &datasets::preprocess::Split, dev: &Device) -> anyhow::Result<Self> {
        Self::from_rows(&s.x, &s.y, s.n_features, dev)
    }

    /// Rows `x` (row-major, `y.len() × n_features`) with labels `y`; non-finite values are
    /// an error naming the row and feature.
    pub fn from_rows(
        x: &[f32],
        y: &[usize],
        n_features: usize,
        dev: &Device,
    ) -> anyhow::Result<Self> {
        let n = y.len();
        anyhow::ensure!(
            x.len() == n * n_features,
            "split has {} values for {n} rows × {n_features} features",
            x.len()
        );
        check_finite(x, n_features)?;
        Ok(Self {
            x: Tensor::from_vec(x.to_vec(), (n, n_features), dev)?,
            y: Tensor::from_vec(y.iter().map(|&v| v as u32).collect::<Vec<u32>>(), n, dev)?,
            labels: y.to_vec(),
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Rows `idx` as a batch.
    pub fn batch(&self, idx: &[u32]) -> anyhow::Result<(Tensor, Tensor)> {
        let t = Tensor::new(idx, self.x.device())?;
        Ok((self.x.index_select(&t, 0)?, self.y.index_select(&t, 0)?))
    }

    /// Share of the most frequent class (the majority-rate floor).
    pub fn majority_rate(&self) -> f64 {
        if self.labels.is_empty() {
            return 0.0;
        }
        let k = self.labels.iter().max().copied().unwrap_or(0) + 1;
        let mut c = vec![0usize; k];
        for &l in &self.labels {
            c[l] += 1;
        }
        *c.iter().max().unwrap_or(&0) as f64 / self.labels.len() as f64
    }
}

/// Errors at the first non-finite value of row-major `x`, naming row and feature.
pub fn check_finite(x: &[f32], n_features: usize) -> anyhow::Result<()> {
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        anyhow::bail!(
            "non-finite value {} at row {}, feature {} after preprocessing",
            x[i],
            i / n_features.max(1),
            i % n_features.max(1)
        );
    }
    Ok(())
}

/// Loss and accuracy of `params` on `data` (eval mode).
pub fn evaluate(mlp: &Mlp, params: &ParamMap, data: &SplitTensors) -> anyhow::Result<(f64, f64)> {
    if data.is_empty() {
        return Ok((0.0, 0.0));
    }
    let logits = mlp.forward(params, &data.x, false)?;
    let loss = cross_entropy(&logits, &data.y)?.to_scalar::<f32>()? as f64;
    Ok((loss, accuracy(&logits, &data.labels)?))
}

/// Per-class probabilities `[n][classes]` of `params` on rows `x` (`n × n_features`),
/// computed in f64 (see [`forward_f64`]).
pub fn predict_proba(
    mlp: &Mlp,
    params: &ParamMap,
    x: &[f32],
    n_features: usize,
    dev: &Device,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let logits = forward_f64(mlp, params, x, n_features, dev)?;
    Ok(candle_nn::ops::softmax(&logits, candle_core::D::Minus1)?
        .to_dtype(candle_core::DType::F32)?
        .to_vec2::<f32>()?)
}

/// The MLP's outputs for rows `x` in f64: a fitted readout sums a thousand units whose
/// terms cancel to small logits, where f32 rounding moves a probability by ~1e-4; in f64
/// `predict` agrees with the model card's Python loader (which computes in f64) to 1e-5.
pub fn forward_f64(
    mlp: &Mlp,
    params: &ParamMap,
    x: &[f32],
    n_features: usize,
    dev: &Device,
) -> anyhow::Result<Tensor> {
    check_finite(x, n_features)?;
    let n = x.len() / n_features.max(1);
    let mut p64 = ParamMap::new();
    for (k, t) in params.iter() {
        p64.insert(k.clone(), t.to_dtype(candle_core::DType::F64)?);
    }
    let xt =
        Tensor::from_vec(x.to_vec(), (n, n_features), dev)?.to_dtype(candle_core::DType::F64)?;
    Ok(mlp.forward(&p64, &xt, false)?)
}

/// The regression model's outputs (the predicted values) for preprocessed rows `x`, in f64.
pub fn predict_values(
    mlp: &Mlp,
    params: &ParamMap,
    x: &[f32],
    n_features: usize,
    dev: &Device,
) -> anyhow::Result<Vec<f64>> {
    Ok(forward_f64(mlp, params, x, n_features, dev)?
        .flatten_all()?
        .to_vec1::<f64>()?)
}
