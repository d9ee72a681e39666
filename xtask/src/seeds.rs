//! `cargo xtask reproduce tabular --seeds N`: the tabular reproduction over N seeds, each
//! seed driving both the meta-training (init, shuffles) and the 60/10/30 split (the
//! generator meta-trains on the training split of its seed, so scoring it on another
//! seed's test rows would leak). Missing checkpoints are meta-trained first into
//! `checkpoints/<stem>-seeds/seed-<s>` (resumable; `<stem>` is the config's, `tabular` by
//! default). Every cell of `results/<stem>-seeds.{json,md}` is mean ± sample standard deviation over the seeds,
//! and every comparison the README makes is reported as a paired difference per seed.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use hyper_core::checkpoint::{config_diff, CheckpointHeader};
use hyper_infer::Pipeline;
use hyper_train::experiment::{reproduce_tabular, TabularReproduction};
use hyper_train::TabularConfig;
use serde::Serialize;

use crate::pretrain::{root, train_tabular};

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n.max(1.0);
    if v.len() < 2 {
        return (m, 0.0);
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

/// One method's scores over the seeds.
#[derive(Serialize)]
pub struct SeedRow {
    pub method: String,
    /// `[seed][column]` score (accuracy or metric, a fraction).
    pub scores: Vec<Vec<f64>>,
    /// Per seed: the row's headline average (over the columns, or the modality's own).
    pub average: Vec<f64>,
}

/// A claim the README makes, as a paired difference per seed.
#[derive(Serialize)]
pub struct Comparison {
    pub claim: String,
    /// Per seed: the difference of the two averages (points × 100).
    pub per_seed: Vec<f64>,
    pub mean: f64,
    pub sd: f64,
    /// Per column: mean over seeds of the paired difference.
    pub per_column: Vec<f64>,
}

/// Rows of one results table, filled seed by seed.
#[derive(Serialize)]
pub struct SeedTable {
    pub columns: Vec<String>,
    pub rows: Vec<SeedRow>,
}

impl SeedTable {
    pub fn new(columns: Vec<String>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    /// Appends one seed's `scores` (one per column) and `average` to `method`'s row,
    /// creating the row on its first seed.
    pub fn push(&mut self, method: &str, scores: Vec<f64>, average: f64) {
        let i = match self.rows.iter().position(|r| r.method == method) {
            Some(i) => i,
            None => {
                self.rows.push(SeedRow {
                    method: method.into(),
                    scores: Vec::new(),
                    average: Vec::new(),
                });
                self.rows.len() - 1
            }
        };
        self.rows[i].scores.push(scores);
        self.rows[i].average.push(average);
    }

    /// Row `a` minus row `b`, paired per seed; `None` when either row is missing.
    pub fn compare(&self, a: &str, b: &str, claim: &str) -> Option<Comparison> {
        let find = |name: &str| self.rows.iter().find(|r| r.method == name);
        let (ra, rb) = (find(a)?, find(b)?);
        let n = ra.average.len().min(rb.average.len());
        let per_seed: Vec<f64> = (0..n)
            .map(|s| 100.0 * (ra.average[s] - rb.average[s]))
            .collect();
        let (mean, sd) = mean_sd(&per_seed);
        let per_column = (0..self.columns.len())
            .map(|c| {
                let v: Vec<f64> = (0..n)
                    .map(|s| 100.0 * (ra.scores[s][c] - rb.scores[s][c]))
                    .collect();
                mean_sd(&v).0
            })
            .collect();
        Some(Comparison {
            claim: claim.into(),
            per_seed,
            mean,
            sd,
            per_column,
        })
    }

    /// [`Self::compare`] for each `(a, b, claim)`, skipping claims whose rows are missing.
    pub fn compare_all(&self, claims: &[(&str, &str, &str)]) -> Vec<Comparison> {
        claims
            .iter()
            .filter_map(|(a, b, claim)| self.compare(a, b, claim))
            .collect()
    }

    /// `| Method | columns… | <average> |`, each cell mean ± sd over the seeds (× 100);
    /// without the average column when `average` is `None`.
    pub fn markdown(&self, average: Option<&str>) -> String {
        let mut s = String::new();
        let (head, rule) = match average {
            Some(a) => (format!(" {a} |"), "---|"),
            None => (String::new(), ""),
        };
        let _ = writeln!(s, "| Method | {} |{head}", self.columns.join(" | "));
        let _ = writeln!(s, "|---|{}{rule}", "---|".repeat(self.columns.len()));
        for row in &self.rows {
            let cells: Vec<String> = (0..self.columns.len())
                .map(|c| pm(&row.scores.iter().map(|a| a[c]).collect::<Vec<_>>()))
                .collect();
            let avg = match average {
                Some(_) => format!(" **{}** |", pm(&row.average)),
                None => String::new(),
            };
            let _ = writeln!(s, "| {} | {} |{avg}", row.method, cells.join(" | "));
        }
        s
    }

    /// The comparisons as a table: per seed, mean ± sd, and the per-column means.
    pub fn comparisons_markdown(&self, comparisons: &[Comparison]) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| Claim | per seed | mean ± sd | {} |",
            self.columns.join(" | ")
        );
        let _ = writeln!(s, "|---|---|---|{}", "---|".repeat(self.columns.len()));
        for c in comparisons {
            let _ = writeln!(
                s,
                "| {} | {} | **{:+.2} ± {:.2}** | {} |",
                c.claim,
                c.per_seed
                    .iter()
                    .map(|v| format!("{v:+.2}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                c.mean,
                c.sd,
                c.per_column
                    .iter()
                    .map(|v| format!("{v:+.1}"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        s
    }
}

#[derive(Serialize)]
struct SeedsReport {
    command: String,
    machine: String,
    threads: String,
    candle_version: String,
    git_commit: String,
    seeds: Vec<u64>,
    checkpoints: Vec<String>,
    /// Per seed: best epoch and best validation loss of its meta-training.
    meta_training: Vec<(u64, i64, f64)>,
    /// Columns: the datasets.
    table: SeedTable,
    comparisons: Vec<Comparison>,
    wall_secs: f64,
}

/// The `--seeds N` seeds: `first`, `first + 1`, … (`N ≥ 1`).
pub fn seeds_of(first: u64, n: usize) -> Result<Vec<u64>> {
    anyhow::ensure!(n >= 1, "--seeds must be at least 1");
    Ok((0..n as u64).map(|k| first + k).collect())
}

/// The checked-out commit (short), or `unknown` outside a git checkout.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// candle-core's version from Cargo.lock.
pub fn candle_version() -> String {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "name = \"candle-core\"" {
            if let Some(v) = lines.next() {
                return v
                    .trim()
                    .trim_start_matches("version = ")
                    .trim_matches('"')
                    .to_string();
            }
        }
    }
    "unknown".into()
}

/// The TOML header of checkpoint `stem`, or `None` when there is none.
pub fn read_header(stem: &Path) -> Result<Option<CheckpointHeader>> {
    let path = stem.with_extension("toml");
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let h = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(h))
}

pub fn state_int(h: &CheckpointHeader, key: &str) -> Option<i64> {
    h.state.get(key)?.as_integer()
}

pub fn run(cfg: TabularConfig, stem: &str, n: usize, config_arg: Option<&Path>) -> Result<()> {
    let seeds = seeds_of(cfg.train.seed, n)?;
    let t0 = Instant::now();
    let dev = Device::Cpu;
    let mut runs: Vec<TabularReproduction> = Vec::new();
    let mut checkpoints = Vec::new();
    let mut meta_training = Vec::new();
    for &seed in &seeds {
        let mut c = cfg.clone();
        c.train.seed = seed;
        let dir = root()
            .join("checkpoints")
            .join(format!("{stem}-seeds"))
            .join(format!("seed-{seed}"));
        // Finished: `last` says all epochs ran; a clone has only the committed `best`
        // (the `last` files with optimizer state are not committed), which is final too.
        let best = dir.join("best");
        let done = match read_header(&dir.join("last"))? {
            Some(last) => state_int(&last, "epoch").is_some_and(|e| e as usize >= c.train.epochs),
            None => read_header(&best)?.is_some(),
        };
        if done {
            // The whole config must match (not only the architecture): a checkpoint from
            // another training config would silently stand in for this one's seed.
            let header = read_header(&best)?.context("checkpoint header vanished")?;
            let diff = config_diff(&header.config, &c.to_table()?);
            anyhow::ensure!(
                diff.is_empty(),
                "{} was trained with another config (differing keys: {}); move it away to \
                 meta-train this seed anew",
                dir.display(),
                diff.join(", ")
            );
        }
        if !done {
            eprintln!("seed {seed}: meta-training into {}", dir.display());
            train_tabular(c.clone(), &dir, true, None)
                .with_context(|| format!("meta-training seed {seed}"))?;
        }
        let header = read_header(&best)?
            .with_context(|| format!("{} has no header after training", best.display()))?;
        meta_training.push((
            seed,
            state_int(&header, "best_epoch").unwrap_or(-1),
            header
                .state
                .get("best_val_loss")
                .and_then(|v| v.as_float())
                .unwrap_or(f64::NAN),
        ));
        let t = Instant::now();
        let pipeline = Pipeline::load(&best, &datasets::paths::minilm_dir()?, &dev)?;
        let load = t.elapsed().as_secs_f64();
        eprintln!("seed {seed}: reproducing with {}", best.display());
        runs.push(reproduce_tabular(&c, &pipeline, load, &dev, true)?);
        checkpoints.push(
            best.strip_prefix(root())
                .unwrap_or(&best)
                .display()
                .to_string(),
        );
    }
    let datasets = runs[0].datasets.clone();
    let mut table = SeedTable::new(datasets.clone());
    for r in &runs {
        for m in &r.methods {
            let a = m.accuracies();
            table.push(&m.method, a.clone(), mean_sd(&a).0);
        }
        for (name, a) in [
            ("Control: wrong requirement", &r.wrong_requirement_control),
            ("Majority class", &r.majority_rate),
        ] {
            table.push(name, a.clone(), mean_sd(a).0);
        }
    }
    let comparisons = table.compare_all(&[
        ("ModelGPT", "Finetune", "ModelGPT − Finetune"),
        ("ModelGPT-F", "Finetune", "ModelGPT-F − Finetune"),
        (
            "ModelGPT",
            "Control: wrong requirement",
            "ModelGPT − control (wrong requirement)",
        ),
        ("ModelGPT", "LoRA", "ModelGPT − LoRA"),
    ]);
    let command = crate::reproduce::command_line(
        &format!("cargo xtask reproduce tabular --seeds {n}"),
        config_arg,
    );
    let report = SeedsReport {
        command,
        machine: crate::reproduce::machine(),
        threads: std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
        candle_version: candle_version(),
        git_commit: git_commit(),
        seeds,
        checkpoints,
        meta_training,
        table,
        comparisons,
        wall_secs: t0.elapsed().as_secs_f64(),
    };
    crate::results::write(&format!("{stem}-seeds"), &report, &markdown(&report))
}

fn pm(v: &[f64]) -> String {
    let (m, sd) = mean_sd(v);
    format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * sd)
}

fn markdown(r: &SeedsReport) -> String {
    let mut s = String::new();
    let n = r.seeds.len();
    let _ = writeln!(
        s,
        "# Tabular results over {n} seeds (`{}`)\n\nTest accuracy (%), mean ± sample sd over \
         n = {n} seeds {:?}; each seed sets both the meta-training (init, shuffles) and the \
         60/10/30 split. Machine: {}; candle {}; commit {}; {:.0} s wall.\n",
        r.command, r.seeds, r.machine, r.candle_version, r.git_commit, r.wall_secs
    );
    s.push_str(&r.table.markdown(Some("Average")));
    let _ = writeln!(
        s,
        "\nPaired differences of the averages (points), per seed and mean ± sd; per-dataset \
         columns are the mean paired difference:\n"
    );
    s.push_str(&r.table.comparisons_markdown(&r.comparisons));
    let _ = writeln!(
        s,
        "\nMeta-training per seed (best epoch, best validation loss):\n"
    );
    for (seed, e, l) in &r.meta_training {
        let _ = writeln!(s, "- seed {seed}: epoch {e}, {l:.4}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{mean_sd, SeedTable};

    #[test]
    fn seed_table_pairs_rows_per_seed() {
        let mut t = SeedTable::new(vec!["a".into(), "b".into()]);
        t.push("X", vec![0.80, 0.60], 0.70);
        t.push("Y", vec![0.70, 0.70], 0.70);
        t.push("X", vec![0.90, 0.70], 0.80);
        t.push("Y", vec![0.70, 0.50], 0.60);
        let c = t.compare("X", "Y", "X − Y").unwrap();
        // Per seed: (0.70 − 0.70, 0.80 − 0.60) × 100.
        assert!((c.per_seed[0] - 0.0).abs() < 1e-9 && (c.per_seed[1] - 20.0).abs() < 1e-9);
        assert!((c.mean - 10.0).abs() < 1e-9);
        assert!((c.sd - 200f64.sqrt()).abs() < 1e-9);
        // Column a: (+10, +20) → +15; column b: (−10, +20) → +5.
        assert!((c.per_column[0] - 15.0).abs() < 1e-9 && (c.per_column[1] - 5.0).abs() < 1e-9);
        assert!(t.compare("X", "missing", "").is_none());
        let md = t.markdown(Some("Average"));
        assert!(
            md.contains("| X | 85.0 ± 7.1 | 65.0 ± 7.1 | **75.0 ± 7.1** |"),
            "{md}"
        );
        assert!(t
            .comparisons_markdown(&[c])
            .contains("| X − Y | +0.00, +20.00 | **+10.00 ± 14.14** | +15.0 | +5.0 |"));
    }

    #[test]
    fn mean_and_sample_sd() {
        let (m, sd) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        // Sample sd (n − 1): sqrt(32 / 7).
        assert!((sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(&[3.0]), (3.0, 0.0));
    }
}
