//! Tabular tasks for meta-training and evaluation: a built-in table, its seeded
//! 60/10/30 split, the metadata and requirement sentences from the `profile` backend.

use std::time::Instant;

use anyhow::{anyhow, Context};
use candle_core::{Device, Tensor};
use datasets::preprocess::{split_and_fit, Split};
use datasets::Table;
use hyper_core::Metadata;

/// One split as tensors: `x [n, f]` f32, `y [n]` u32, plus host labels for accuracy.
#[derive(Debug, Clone)]
pub struct Data {
    pub x: Tensor,
    pub y: Tensor,
    pub labels: Vec<usize>,
}

impl Data {
    pub fn from_split(s: &Split, dev: &Device) -> anyhow::Result<Self> {
        Self::from_rows(&s.x, &s.y, s.n_features, dev)
    }

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
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            anyhow::bail!(
                "non-finite value {} at row {}, feature {} after preprocessing",
                x[i],
                i / n_features.max(1),
                i % n_features.max(1)
            );
        }
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

/// Requirement sentences and metadata for a table, from the deterministic `profile`
/// backend (one place to swap the backend).
pub fn requirements_for(
    table: &Table,
    n: usize,
    seed: u64,
) -> anyhow::Result<(Vec<String>, Metadata)> {
    let profile = llm_prompting::DataProfile::from_table(table)
        .with_context(|| format!("profiling table `{}`", table.name))?;
    let reqs = llm_prompting::requirements(&profile, n, seed);
    let meta = profile
        .metadata()
        .with_context(|| format!("metadata for `{}`", table.name))?;
    if reqs.is_empty() {
        return Err(anyhow!(
            "no requirement could be written for `{}`",
            table.name
        ));
    }
    Ok((reqs, meta))
}

/// A built-in task with everything the trainer and the evaluator need.
pub struct TabularTask {
    pub name: String,
    pub meta: Metadata,
    pub requirements: Vec<String>,
    pub n_local_updates: usize,
    pub train: Data,
    pub val: Data,
    pub test: Data,
    /// Seconds to read the table from disk and split/fit it (part of every E2E time).
    pub load_secs: f64,
}

impl TabularTask {
    pub fn load(
        name: &str,
        n_requirements: usize,
        n_local_updates: usize,
        seed: u64,
        dev: &Device,
    ) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let table = datasets::uci::load_builtin(name)
            .with_context(|| format!("loading dataset `{name}`"))?;
        let splits = split_and_fit(&table, seed).with_context(|| format!("splitting `{name}`"))?;
        let load_secs = t0.elapsed().as_secs_f64();
        let (requirements, mut meta) = requirements_for(&table, n_requirements, seed)?;
        meta.in_dim = Some(splits.train.n_features);
        Ok(Self {
            name: name.to_string(),
            meta,
            requirements,
            n_local_updates: n_local_updates.max(1),
            train: Data::from_split(&splits.train, dev)
                .with_context(|| format!("{name} train split"))?,
            val: Data::from_split(&splits.val, dev).with_context(|| format!("{name} val split"))?,
            test: Data::from_split(&splits.test, dev)
                .with_context(|| format!("{name} test split"))?,
            load_secs,
        })
    }
}
