//! Tabular tasks for meta-training and evaluation: a built-in table, its seeded
//! 60/10/30 split, the metadata and requirement sentences from the `profile` backend.

use std::time::Instant;

use anyhow::{anyhow, Context};
use candle_core::Device;
use datasets::preprocess::split_and_fit;
use datasets::Table;
use hyper_core::Metadata;
use hyper_infer::SplitTensors;

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
    pub train: SplitTensors,
    pub val: SplitTensors,
    pub test: SplitTensors,
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
            train: SplitTensors::from_split(&splits.train, dev)
                .with_context(|| format!("{name} train split"))?,
            val: SplitTensors::from_split(&splits.val, dev)
                .with_context(|| format!("{name} val split"))?,
            test: SplitTensors::from_split(&splits.test, dev)
                .with_context(|| format!("{name} test split"))?,
            load_secs,
        })
    }
}
