//! `cargo xtask reproduce cv|nlp --seeds N`: the LoRA reproductions over N seeds, as
//! `reproduce tabular --seeds` does for tables. Seed `s = train.seed + k` drives the
//! meta-training (init, task and batch order), the training pools and validation rows, the
//! requirement paraphrases and the baselines' LoRA init; the frozen backbone / MiniLM and
//! the test sets (GLUE dev, the image test splits) are the same for every seed.
//!
//! Each seed's generator is `checkpoints/<stem>/best` (or the `--checkpoint D/best` given)
//! when that checkpoint was trained with exactly this seed's config (the committed one, for
//! the first seed), else it is meta-trained (resumable) into `checkpoints/<stem>-seeds/seed-<s>`
//! (`D-seeds/seed-<s>`). Every cell of
//! `results/<stem>-seeds.{json,md}` is mean ± sample sd over the seeds, and each
//! acceptance claim is a paired difference per seed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use hyper_core::checkpoint::config_diff;
use hyper_train::cv::CvConfig;
use hyper_train::nlp::NlpConfig;
use serde::Serialize;

use crate::pretrain::root;
use crate::seeds::{mean_sd, read_header, seeds_of, state_int, Comparison, SeedTable};

/// How one seed's generator was obtained.
#[derive(Serialize)]
struct SeedCheckpoint {
    seed: u64,
    checkpoint: String,
    best_step: i64,
    best_val_loss: f64,
    /// Wall seconds of meta-training in this invocation (0 when it already existed).
    train_secs: f64,
}

/// What one modality's seed table shows and claims.
struct Spec {
    modality: &'static str,
    title: &'static str,
    /// What a cell of the main table is.
    cells: &'static str,
    /// After the zero-shot task's name: what its table shows.
    zero_shot: &'static str,
    zero_shot_columns: &'static [&'static str],
    /// (row a, row b, claim): a − b paired per seed, on the main table.
    claims: &'static [(&'static str, &'static str, &'static str)],
    /// (row index, claim): the zero-shot table's first row minus that row.
    zero_shot_claims: &'static [(usize, &'static str)],
}

const CV: Spec = Spec {
    modality: "cv",
    title: "CV",
    cells: "test top-1 (%) per trained domain; the average is over them",
    zero_shot: "zero-shot (the generator never saw its images), top-1/3/5 (%)",
    zero_shot_columns: &["top-1", "top-3", "top-5"],
    claims: &[
        ("ModelGPT", "Finetune", "ModelGPT − Finetune (bar: ≥ −2)"),
        ("ModelGPT-F", "Finetune", "ModelGPT-F − Finetune (bar: ≥ 0)"),
        (
            "ModelGPT",
            "Control (wrong requirement)",
            "ModelGPT − control (wrong requirement)",
        ),
        ("ModelGPT", "LoRA", "ModelGPT − LoRA"),
    ],
    zero_shot_claims: &[
        (2, "ModelGPT − majority"),
        (1, "ModelGPT − the trained domain's adapter"),
    ],
};

const NLP: Spec = Spec {
    modality: "nlp",
    title: "NLP",
    cells: "GLUE dev score (×100) per trained task (the mean of its metrics: MRPC F1/acc, \
            STS-B Pearson/Spearman); the average is the GLUE-style score over them",
    zero_shot: "zero-shot (never trained on), dev accuracy (%)",
    zero_shot_columns: &["accuracy"],
    claims: &[
        ("ModelGPT", "LoRA", "ModelGPT − LoRA (bar: ≥ 0)"),
        ("ModelGPT-F", "Finetune", "ModelGPT-F − Finetune (bar: ≥ 0)"),
        (
            "ModelGPT",
            "Majority / mean",
            "ModelGPT − majority/mean (bar: ≥ 0 per task)",
        ),
        (
            "ModelGPT",
            "Control (wrong requirement)",
            "ModelGPT − control (wrong requirement)",
        ),
    ],
    zero_shot_claims: &[
        (2, "ModelGPT − majority"),
        (1, "ModelGPT − the nearest task's adapter"),
    ],
};

/// What `reproduce cv|nlp --seeds` has measured so far; written after every seed, so an
/// interrupted run keeps the seeds it finished (and its checkpoints resume).
#[derive(Serialize)]
struct LoraSeedsReport {
    #[serde(skip)]
    spec: &'static Spec,
    command: String,
    machine: String,
    threads: String,
    candle_version: String,
    git_commit: String,
    /// The seeds asked for; `checkpoints` and the tables hold the finished ones.
    seeds: Vec<u64>,
    checkpoints: Vec<SeedCheckpoint>,
    /// Trained tasks/domains: test score per method.
    table: SeedTable,
    /// The zero-shot task/domain: one row per adapter.
    zero_shot_name: String,
    zero_shot: SeedTable,
    comparisons: Vec<Comparison>,
    zero_shot_comparisons: Vec<Comparison>,
    /// Per seed: E2E Finetune ÷ E2E ModelGPT.
    e2e_ratio: Vec<f64>,
    wall_secs: f64,
}

impl LoraSeedsReport {
    fn new(
        spec: &'static Spec,
        seeds: Vec<u64>,
        config_arg: Option<&Path>,
        checkpoint: Option<&Path>,
    ) -> Self {
        let n = seeds.len();
        Self {
            spec,
            command: crate::reproduce::command_line(
                &crate::reproduce::with_checkpoint(
                    &format!("cargo xtask reproduce {} --seeds {n}", spec.modality),
                    checkpoint,
                ),
                config_arg,
            ),
            machine: crate::reproduce::machine(),
            threads: std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
            candle_version: crate::seeds::candle_version(),
            git_commit: crate::seeds::git_commit(),
            seeds,
            checkpoints: Vec::new(),
            table: SeedTable::new(Vec::new()),
            zero_shot_name: String::new(),
            zero_shot: SeedTable::new(
                spec.zero_shot_columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            ),
            comparisons: Vec::new(),
            zero_shot_comparisons: Vec::new(),
            e2e_ratio: Vec::new(),
            wall_secs: 0.0,
        }
    }

    /// Recomputes the comparisons and writes results/<stem>-seeds.{json,md}.
    fn write(&mut self, stem: &str, t0: Instant) -> Result<()> {
        let spec = self.spec;
        self.wall_secs = t0.elapsed().as_secs_f64();
        self.comparisons = self.table.compare_all(spec.claims);
        let names: Vec<String> = self
            .zero_shot
            .rows
            .iter()
            .map(|r| r.method.clone())
            .collect();
        self.zero_shot_comparisons = spec
            .zero_shot_claims
            .iter()
            .filter(|(i, _)| *i < names.len())
            .filter_map(|(i, claim)| self.zero_shot.compare(&names[0], &names[*i], claim))
            .collect();
        crate::results::write(&format!("{stem}-seeds"), self, &markdown(self))?;
        eprintln!("({} of {} seeds)", self.checkpoints.len(), self.seeds.len());
        Ok(())
    }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The header config of checkpoint `stem` against `want` (`None`: there is no checkpoint).
fn differs(stem: &Path, want: &toml::Table, default: &toml::Table) -> Result<Option<Vec<String>>> {
    Ok(read_header(stem)?.map(|h| training_diff(&h.config, want, default)))
}

/// Keys in which a checkpoint trained with `have` differs from `want` in what meta-training
/// used. Not counted: `[baseline]` (only `reproduce` reads it), and keys `have` lacks whose
/// wanted value is the `default` (options added after it was trained, whose default is the
/// old behaviour).
pub fn training_diff(have: &toml::Table, want: &toml::Table, default: &toml::Table) -> Vec<String> {
    fn drop_new_defaults(want: &mut toml::Table, have: &toml::Table, default: &toml::Table) {
        want.retain(|k, v| match (have.get(k), default.get(k)) {
            (None, Some(d)) => v != d,
            _ => true,
        });
        for (k, v) in want.iter_mut() {
            if let (toml::Value::Table(w), Some(toml::Value::Table(h))) = (v, have.get(k)) {
                let empty = toml::Table::new();
                let d = default.get(k).and_then(|d| d.as_table()).unwrap_or(&empty);
                drop_new_defaults(w, h, d);
            }
        }
    }
    let mut have = have.clone();
    let mut want = want.clone();
    have.remove("baseline");
    want.remove("baseline");
    drop_new_defaults(&mut want, &have, default);
    config_diff(&have, &want)
}

/// The generator for seed index `k`: the committed `committed` (`D/best`) when it was
/// trained with exactly `want` (only tried for `k = 0`), else `D-seeds/seed-<s>/best`,
/// calling `train(dir)` first unless `dir/last` has reached `steps` (or only a `best` with
/// this config is there, as in a clone). A finished checkpoint from another config is
/// refused rather than silently standing in for this seed.
fn seed_checkpoint(
    committed: &Path,
    k: usize,
    seed: u64,
    want: &toml::Table,
    default: &toml::Table,
    steps: usize,
    train: impl FnOnce(&Path) -> Result<()>,
) -> Result<SeedCheckpoint> {
    let committed = committed.to_path_buf();
    let dir = seeds_dir(&committed)?.join(format!("seed-{seed}"));
    let mut train_secs = 0.0;
    let reuse = match (k, differs(&committed, want, default)?) {
        (0, Some(d)) if d.is_empty() => true,
        (0, Some(d)) => {
            eprintln!(
                "seed {seed}: not reusing {} (trained with another config; differing keys: {})",
                rel(&committed),
                d.join(", ")
            );
            false
        }
        _ => false,
    };
    let best = if reuse {
        eprintln!(
            "seed {seed}: {} was trained with this config",
            rel(&committed)
        );
        committed
    } else {
        let best = dir.join("best");
        let done = match read_header(&dir.join("last"))? {
            Some(last) => state_int(&last, "step").is_some_and(|s| s as usize >= steps),
            None => read_header(&best)?.is_some(),
        };
        if !done {
            eprintln!("seed {seed}: meta-training into {}", rel(&dir));
            let t = Instant::now();
            train(&dir).with_context(|| format!("meta-training seed {seed}"))?;
            train_secs = t.elapsed().as_secs_f64();
        }
        if let Some(d) = differs(&best, want, default)?.filter(|d| !d.is_empty()) {
            anyhow::bail!(
                "{} was trained with another config (differing keys: {}); move it away to \
                 meta-train this seed anew",
                best.display(),
                d.join(", ")
            );
        }
        best
    };
    let header = read_header(&best)?
        .with_context(|| format!("{} has no header after training", best.display()))?;
    Ok(SeedCheckpoint {
        seed,
        checkpoint: rel(&best),
        best_step: state_int(&header, "best_step").unwrap_or(-1),
        best_val_loss: header
            .state
            .get("best_val_loss")
            .and_then(|v| v.as_float())
            .unwrap_or(f64::NAN),
        train_secs,
    })
}

/// `D-seeds` for the checkpoint `D/best`: where the other seeds' generators live.
fn seeds_dir(committed: &Path) -> Result<PathBuf> {
    let dir = committed
        .parent()
        .filter(|d| d.file_name().is_some())
        .with_context(|| {
            format!(
                "--checkpoint {}: expected a checkpoint stem inside a folder (D/best)",
                committed.display()
            )
        })?;
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push("-seeds");
    Ok(dir.with_file_name(name))
}

/// One modality's part of `reproduce <modality> --seeds`: its config at a seed, how a
/// seed's generator is meta-trained, and how a checkpoint is scored into the tables.
trait SeedRun: Sized {
    const SPEC: &'static Spec;
    fn seed(&self) -> u64;
    fn with_seed(&self, seed: u64) -> Self;
    fn config_table(&self) -> Result<toml::Table>;
    fn default_table() -> Result<toml::Table>;
    fn steps(&self) -> usize;
    /// Meta-trains this config's generator into `dir` (resuming what is there).
    fn train(&self, dir: &Path) -> Result<()>;
    /// Reproduces the table with generator `ck` and adds this seed's rows to `rep`.
    fn score(&self, ck: &Path, t0: Instant, rep: &mut LoraSeedsReport) -> Result<()>;
}

/// How `reproduce cv|nlp --seeds N` was asked for: the config's stem (the results file),
/// `--config` and `--checkpoint` as given.
pub struct SeedsArgs<'a> {
    pub stem: &'a str,
    pub n: usize,
    pub config_arg: Option<&'a Path>,
    pub checkpoint: Option<&'a Path>,
}

/// The seeds loop shared by `reproduce cv|nlp --seeds N`.
fn run_seeds<R: SeedRun>(base: R, a: &SeedsArgs) -> Result<()> {
    let t0 = Instant::now();
    let stem = a.stem;
    let seeds = seeds_of(base.seed(), a.n)?;
    let committed = a
        .checkpoint
        .map(Path::to_path_buf)
        .unwrap_or_else(|| hyper_infer::checkpoint_dir(stem).join("best"));
    let mut rep = LoraSeedsReport::new(R::SPEC, seeds.clone(), a.config_arg, a.checkpoint);
    let default = R::default_table()?;
    for (k, &seed) in seeds.iter().enumerate() {
        let run = base.with_seed(seed);
        let ck = seed_checkpoint(
            &committed,
            k,
            seed,
            &run.config_table()?,
            &default,
            run.steps(),
            |dir| run.train(dir),
        )?;
        eprintln!("seed {seed}: reproducing with {}", ck.checkpoint);
        let path = root().join(&ck.checkpoint);
        rep.checkpoints.push(ck);
        run.score(&path, t0, &mut rep)?;
        rep.write(stem, t0)?;
    }
    Ok(())
}

struct CvRun(CvConfig);

impl SeedRun for CvRun {
    const SPEC: &'static Spec = &CV;
    fn seed(&self) -> u64 {
        self.0.train.seed
    }
    fn with_seed(&self, seed: u64) -> Self {
        let mut c = self.0.clone();
        c.train.seed = seed;
        Self(c)
    }
    fn config_table(&self) -> Result<toml::Table> {
        self.0.to_table()
    }
    fn default_table() -> Result<toml::Table> {
        CvConfig::default().to_table()
    }
    fn steps(&self) -> usize {
        self.0.train.steps
    }
    fn train(&self, dir: &Path) -> Result<()> {
        crate::cv::train(self.0.clone(), dir, true, None)
    }
    fn score(&self, ck: &Path, t0: Instant, rep: &mut LoraSeedsReport) -> Result<()> {
        let r = crate::cv::reproduction(&self.0, ck, t0)?;
        if rep.table.columns.is_empty() {
            rep.table = SeedTable::new(r.domains.clone());
        }
        for m in &r.methods {
            let top1 = m.per_domain.iter().map(|o| o.acc.top1).collect();
            rep.table.push(&m.method, top1, m.avg_top1);
        }
        rep.e2e_ratio.push(e2e_ratio_of(
            r.methods.iter().map(|m| (&m.method, m.e2e_secs)),
        ));
        let z = &r.zero_shot;
        rep.zero_shot_name.clone_from(&z.domain);
        for (name, acc) in [
            ("ModelGPT (requirement from its data)", &z.modelgpt),
            (
                &format!("{}'s adapter applied unchanged", z.nearest_domain) as &str,
                &z.nearest_adapter,
            ),
            ("Majority", &z.majority),
            ("LoRA trained on it (upper bound)", &z.lora_on_domain),
            (
                "Finetune trained on it (upper bound)",
                &z.finetune_on_domain,
            ),
        ] {
            rep.zero_shot
                .push(name, vec![acc.top1, acc.top3, acc.top5], acc.top1);
        }
        Ok(())
    }
}

/// `reproduce cv --seeds N`.
pub fn run_cv(cfg: CvConfig, a: &SeedsArgs) -> Result<()> {
    run_seeds(CvRun(cfg), a)
}

/// The two-phase NLP recipe (checkpoints/nlp-two-phase/README.md): `<stem>-phase1.toml`
/// (a higher generator lr) stopped after this many steps, then `<stem>.toml` from phase
/// 1's best. Each seed repeats that recipe; a config without a `-phase1` sibling (as
/// `configs/nlp.toml`) trains in one phase.
const NLP_PHASE1_STEPS: usize = 300;

struct NlpRun {
    cfg: NlpConfig,
    /// The phase-1 config and its path, when the recipe has one.
    phase1: Option<(PathBuf, NlpConfig)>,
}

impl SeedRun for NlpRun {
    const SPEC: &'static Spec = &NLP;
    fn seed(&self) -> u64 {
        self.cfg.train.seed
    }
    fn with_seed(&self, seed: u64) -> Self {
        let mut cfg = self.cfg.clone();
        cfg.train.seed = seed;
        let phase1 = self.phase1.clone().map(|(p, mut c)| {
            c.train.seed = seed;
            (p, c)
        });
        Self { cfg, phase1 }
    }
    fn config_table(&self) -> Result<toml::Table> {
        self.cfg.to_table()
    }
    fn default_table() -> Result<toml::Table> {
        NlpConfig::default().to_table()
    }
    fn steps(&self) -> usize {
        self.cfg.train.steps
    }
    fn train(&self, dir: &Path) -> Result<()> {
        let seed = self.cfg.train.seed;
        let init = match &self.phase1 {
            Some((path, p1)) => {
                let out = dir.join("phase1");
                let done = read_header(&out.join("last"))?
                    .and_then(|h| state_int(&h, "step"))
                    .unwrap_or(0) as usize;
                if done < NLP_PHASE1_STEPS {
                    eprintln!(
                        "seed {seed}: phase 1 ({}, steps {done}..{NLP_PHASE1_STEPS})",
                        rel(path)
                    );
                    let rest = Some(NLP_PHASE1_STEPS - done);
                    crate::nlp::train(p1.clone(), &out, None, true, rest)?;
                }
                Some(out.join("best"))
            }
            None => None,
        };
        // Resuming phase 2 loads `last` over the `init` weights (`nlp::train`).
        crate::nlp::train(self.cfg.clone(), dir, init.as_deref(), true, None)
    }
    fn score(&self, ck: &Path, t0: Instant, rep: &mut LoraSeedsReport) -> Result<()> {
        let r = crate::nlp::reproduction(&self.cfg, ck, t0)?;
        if rep.table.columns.is_empty() {
            let cols = r.methods[0]
                .per_task
                .iter()
                .map(|o| {
                    let names: Vec<&str> = o.metrics.iter().map(|(k, _)| k.as_str()).collect();
                    format!("{} ({})", o.task, names.join("/"))
                })
                .collect();
            rep.table = SeedTable::new(cols);
        }
        for m in &r.methods {
            let scores = m.per_task.iter().map(|o| o.score).collect();
            rep.table.push(&m.method, scores, m.glue_score);
        }
        rep.e2e_ratio.push(e2e_ratio_of(
            r.methods.iter().map(|m| (&m.method, m.e2e_secs)),
        ));
        let z = &r.zero_shot;
        rep.zero_shot_name.clone_from(&z.task);
        for (name, acc) in [
            ("ModelGPT (requirement from its dev rows)", z.modelgpt),
            (
                &format!("{}'s adapter", z.nearest_task) as &str,
                z.nearest_task_adapter,
            ),
            ("Majority", z.majority_rate),
        ] {
            rep.zero_shot.push(name, vec![acc], acc);
        }
        Ok(())
    }
}

/// `reproduce nlp --seeds N` (`path`: the config file, whose `<stem>-phase1.toml` sibling
/// is the recipe's first phase when it exists).
pub fn run_nlp(cfg: NlpConfig, path: &Path, a: &SeedsArgs) -> Result<()> {
    let phase1_path = path.with_file_name(format!("{}-phase1.toml", a.stem));
    let phase1 = match phase1_path.exists() {
        true => Some((phase1_path.clone(), NlpConfig::load(&phase1_path)?)),
        false => None,
    };
    run_seeds(NlpRun { cfg, phase1 }, a)
}

/// E2E Finetune ÷ E2E ModelGPT of one run (NaN when either is missing).
fn e2e_ratio_of<'a>(methods: impl Iterator<Item = (&'a String, f64)> + Clone) -> f64 {
    let of = |name: &str| {
        methods
            .clone()
            .find(|(m, _)| m.as_str() == name)
            .map_or(f64::NAN, |(_, s)| s)
    };
    of("Finetune") / of("ModelGPT")
}

fn markdown(r: &LoraSeedsReport) -> String {
    let Spec {
        title,
        cells,
        zero_shot,
        ..
    } = r.spec;
    let zero_shot = format!("{} {zero_shot}", r.zero_shot_name);
    let mut s = String::new();
    let n = r.checkpoints.len();
    let done: Vec<u64> = r.checkpoints.iter().map(|c| c.seed).collect();
    let partial = match n < r.seeds.len() {
        true => format!(
            "**Partial: {n} of the {} seeds asked for.** ",
            r.seeds.len()
        ),
        false => String::new(),
    };
    let _ = writeln!(
        s,
        "# {title} results over {n} seeds (`{}`)\n\n{}Mean ± sample sd over n = {n} seeds {:?}; \
         each seed sets the meta-training, the training pools, the requirement paraphrases \
         and the baselines' init (the frozen base model and the test sets are the same for \
         every seed). Cells: {cells}. Machine: {}; candle {}; commit \
         {}; {:.0} s wall.\n",
        r.command, partial, done, r.machine, r.candle_version, r.git_commit, r.wall_secs
    );
    s.push_str(&r.table.markdown(Some("Average")));
    let _ = writeln!(
        s,
        "\nPaired differences of the averages (points), per seed and mean ± sd; the \
         per-column cells are the mean paired difference:\n"
    );
    s.push_str(&r.table.comparisons_markdown(&r.comparisons));
    let _ = writeln!(s, "\n**{zero_shot}:**\n");
    s.push_str(&r.zero_shot.markdown(None));
    s.push('\n');
    s.push_str(&r.zero_shot.comparisons_markdown(&r.zero_shot_comparisons));
    let (m, sd) = mean_sd(&r.e2e_ratio);
    let _ = writeln!(
        s,
        "\nE2E Finetune ÷ ModelGPT per seed: {} (mean {m:.0}x ± {sd:.0}).\n\nGenerator per seed \
         (best step, best validation loss, meta-training seconds in this run):\n",
        r.e2e_ratio
            .iter()
            .map(|v| format!("{v:.0}x"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for c in &r.checkpoints {
        let _ = writeln!(
            s,
            "- seed {}: `{}`, step {}, {:.4}, {:.0} s",
            c.seed, c.checkpoint, c.best_step, c.best_val_loss, c.train_secs
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{seeds_dir, training_diff};
    use std::path::Path;

    fn t(s: &str) -> toml::Table {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn only_what_meta_training_used_counts() {
        let have = t("[train]\nseed = 1\n[baseline]\ncap = 500\n[g]\nx = 1");
        let default = t("[g]\nx = 1\nnew = false\n[train]\nseed = 0");
        // A later default-valued option and another [baseline] are the same training.
        let same = t("[train]\nseed = 1\n[baseline]\ncap = 256\n[g]\nx = 1\nnew = false");
        assert!(training_diff(&have, &same, &default).is_empty());
        // The new option set away from its default, or another seed, are not.
        let on = t("[train]\nseed = 1\n[g]\nx = 1\nnew = true");
        assert_eq!(
            training_diff(&have, &on, &default),
            ["g.new: (absent) vs true"]
        );
        let seed = t("[train]\nseed = 2\n[g]\nx = 1");
        assert_eq!(
            training_diff(&have, &seed, &default),
            ["train.seed: 1 vs 2"]
        );
    }

    /// `--checkpoint D/best` puts the other seeds in `D-seeds/`, as the default
    /// `checkpoints/<stem>/best` puts them in `checkpoints/<stem>-seeds/`.
    #[test]
    fn other_seeds_sit_beside_the_given_checkpoint() {
        assert_eq!(
            seeds_dir(Path::new("checkpoints/cv/best")).unwrap(),
            Path::new("checkpoints/cv-seeds")
        );
        assert_eq!(
            seeds_dir(Path::new("/x/my-run/best")).unwrap(),
            Path::new("/x/my-run-seeds")
        );
        let err = format!("{:#}", seeds_dir(Path::new("best")).unwrap_err());
        assert!(err.contains("D/best"), "{err}");
    }
}
