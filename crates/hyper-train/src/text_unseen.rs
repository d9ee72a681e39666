//! `reproduce text-unseen`: GLUE classification tasks scored as a user's own text CSV
//! would be, every figure measured in one run. Each task's pool (its training file; QNLI,
//! which has none here, its dev file) gives a seeded sample of `rows` rows, split 60/10/30
//! per seed as `generate --data` splits a CSV; every method reads only the training and
//! validation rows and is scored on the test rows.
//!
//! Methods: the majority class; TF-IDF + logistic regression; a logistic-regression probe
//! on the frozen encoder's normalised mean-pooled embeddings; the fitted head
//! ([`hyper_infer::text_head`], 0 epochs) on the frozen encoder, which nothing was
//! meta-trained for, so every task is unseen by it, at several support sizes; LoRA
//! finetuning from a fresh head and ModelGPT-F (the same training from the fitted head),
//! both on the same `finetune_rows` training rows; and, with `adapters`, the fitted head
//! on the encoder adapted by the NLP generator for the task's own requirement or another
//! task's (that generator was meta-trained on GLUE tasks, so those rows are *seen*).

use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use datasets::glue::{self, GlueSplit, GlueTask, Label};
use datasets::preprocess::{split_indices, Split};
use hyper_core::ParamMap;
use hyper_infer::text::{
    glue_label_texts, predict, text_requirements, text_summary, train_epochs, Encoded,
    TextGenerator, TextTokenizer, TrainOptions,
};
use hyper_infer::text_any::{self, TextAnyGenerator};
use hyper_infer::text_head;
use linfa_preprocessing::tf_idf_vectorization::TfIdfVectorizer;
use ndarray::Array1;
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use target_models::bert::{BertModel, Pooling};
use target_models::lora::seeded_init_params;

use crate::classic::{self, ClassicConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextUnseenConfig {
    /// GLUE classification tasks (names as `--glue` takes them).
    pub tasks: Vec<String>,
    /// Rows drawn from each task's pool: the user's whole dataset, split 60/10/30.
    pub rows: usize,
    pub seeds: Vec<u64>,
    /// Support sizes of the fitted head's ablation (the default head reads up to
    /// [`text_head::SUPPORT_ROWS`]).
    pub support_sizes: Vec<usize>,
    /// Labelled training rows LoRA finetuning and ModelGPT-F both train on.
    pub finetune_rows: usize,
    pub finetune_epochs: usize,
    pub finetune_lr: f64,
    pub tfidf_max_features: usize,
    /// Also score the fitted head on generated adapters (own and another task's
    /// requirement).
    pub adapters: bool,
    /// Data-conditioned generator checkpoints (stems, relative to the workspace root).
    /// Each task is scored with the first whose meta-training sources exclude it; every
    /// task needs one. Empty: no data-conditioned rows.
    pub generators: Vec<String>,
    pub classic: ClassicConfig,
}

impl Default for TextUnseenConfig {
    fn default() -> Self {
        Self {
            tasks: ["sst2", "cola", "mrpc", "rte", "wnli", "qnli"]
                .map(String::from)
                .to_vec(),
            rows: 3000,
            seeds: vec![0, 1, 2],
            support_sizes: vec![16, 64, 256, 1024],
            finetune_rows: 256,
            finetune_epochs: 1,
            finetune_lr: 1e-3,
            tfidf_max_features: 5000,
            adapters: true,
            generators: vec![
                "checkpoints/text-any/best".into(),
                "checkpoints/text-any-b/best".into(),
            ],
            classic: ClassicConfig::default(),
        }
    }
}

impl TextUnseenConfig {
    pub fn glue_tasks(&self) -> Result<Vec<GlueTask>> {
        ensure!(!self.tasks.is_empty(), "tasks is empty");
        ensure!(!self.seeds.is_empty(), "seeds is empty");
        ensure!(self.rows >= 20, "rows {} is below 20", self.rows);
        self.tasks
            .iter()
            .map(|t| {
                let task = GlueTask::from_name(t).with_context(|| format!("tasks: `{t}`"))?;
                if task.is_regression() {
                    bail!("tasks: `{t}` is a regression task; the fitted head classifies");
                }
                Ok(task)
            })
            .collect()
    }
}

/// One method on one task: accuracy and seconds per seed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cell {
    pub accuracy: Vec<f64>,
    pub secs: Vec<f64>,
    pub mean: f64,
    pub sd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodRow {
    pub method: String,
    pub about: String,
    pub per_task: Vec<Cell>,
    /// Mean over tasks of the per-task means.
    pub average: f64,
    /// Mean seconds per task and seed, from the data in memory to a usable model.
    pub mean_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub task: String,
    /// The file the rows came from (`train`, or `dev` for QNLI).
    pub pool: String,
    pub rows: usize,
    pub classes: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    /// Milliseconds to encode one row with the frozen encoder (mean over the task).
    pub encode_ms_per_row: f64,
    pub requirement: Option<String>,
    pub wrong_requirement: Option<String>,
    /// The data-conditioned generator that scored the task (its sources exclude it).
    pub generator: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TextUnseenReport {
    pub config: TextUnseenConfig,
    pub tasks: Vec<TaskInfo>,
    pub methods: Vec<MethodRow>,
}

/// A task's rows: tokenized, labelled, and as plain text for TF-IDF.
struct TaskData {
    task: GlueTask,
    pool: String,
    texts: Vec<String>,
    split: GlueSplit,
    enc: Vec<Encoded>,
    y: Vec<usize>,
    classes: usize,
}

fn load_task(task: GlueTask, rows: usize, tok: &TextTokenizer) -> Result<TaskData> {
    let root = GlueTask::default_root();
    let (pool, mut split) = match glue::load(task, "train", &root) {
        Ok(s) => ("train", s),
        Err(_) if task == GlueTask::Qnli => (
            "dev",
            glue::load(task, "dev", &root).with_context(|| format!("loading {task} dev"))?,
        ),
        Err(e) => return Err(e).with_context(|| format!("loading {task} train")),
    };
    let mut order: Vec<usize> = (0..split.examples.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(hyper_core::io::fnv1a64(
        task.name().as_bytes(),
    )));
    order.truncate(rows);
    split.examples = order.iter().map(|&i| split.examples[i].clone()).collect();
    let y = split
        .examples
        .iter()
        .map(|e| e.label.class().context("a classification label"))
        .collect::<Result<Vec<_>>>()?;
    let texts = split.examples.iter().map(|e| e.joined_text()).collect();
    Ok(TaskData {
        task,
        pool: pool.into(),
        texts,
        enc: tok.encode_split(&split)?,
        split,
        y,
        classes: glue_label_texts(task).len(),
    })
}

/// Rows `idx` of `f` as a [`Split`].
fn split_of(f: &[Vec<f32>], y: &[usize], idx: &[usize]) -> Split {
    Split {
        x: idx.iter().flat_map(|&i| f[i].iter().copied()).collect(),
        y: idx.iter().map(|&i| y[i]).collect(),
        n_features: f.first().map_or(0, Vec::len),
    }
}

fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i].clone()).collect()
}

/// TF-IDF (unigrams and bigrams, the `max_features` most frequent, rows L2-normalised)
/// fitted on the training rows, then logistic regression; test accuracy.
fn tfidf_lr(d: &TaskData, idx: [&[usize]; 3], cfg: &TextUnseenConfig) -> Result<f64> {
    let docs = |ix: &[usize]| Array1::from(pick(&d.texts, ix));
    let v = TfIdfVectorizer::default()
        .n_gram_range(1, 2)
        .max_features(Some(cfg.tfidf_max_features))
        .fit(&docs(idx[0]))
        .map_err(|e| anyhow::anyhow!("TF-IDF: {e}"))?;
    let dense = |ix: &[usize]| -> Result<Split> {
        let m = v
            .transform(&docs(ix))
            .map_err(|e| anyhow::anyhow!("TF-IDF: {e}"))?
            .to_dense();
        let rows: Vec<Vec<f32>> = m
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&x| x as f32).collect())
            .collect();
        Ok(split_of(
            &text_head::normalised(&rows),
            &pick(&d.y, ix),
            &(0..ix.len()).collect::<Vec<_>>(),
        ))
    };
    classic::logistic_regression_unscaled(
        &dense(idx[0])?,
        &dense(idx[1])?,
        &dense(idx[2])?,
        &cfg.classic,
    )
}

/// Accumulates (accuracy, seconds) per method, task and seed.
struct Table {
    rows: Vec<(String, String, Vec<Cell>)>,
    tasks: usize,
}

impl Table {
    fn add(&mut self, method: &str, about: &str, task: usize, accuracy: f64, secs: f64) {
        let i = match self.rows.iter().position(|r| r.0 == method) {
            Some(i) => i,
            None => {
                let cells = vec![Cell::default(); self.tasks];
                self.rows.push((method.into(), about.into(), cells));
                self.rows.len() - 1
            }
        };
        let c = &mut self.rows[i].2[task];
        c.accuracy.push(accuracy);
        c.secs.push(secs);
    }

    fn finish(self) -> Vec<MethodRow> {
        self.rows
            .into_iter()
            .map(|(method, about, mut cells)| {
                for c in &mut cells {
                    (c.mean, c.sd) = mean_sd(&c.accuracy);
                }
                let average = cells.iter().map(|c| c.mean).sum::<f64>() / cells.len() as f64;
                let secs: Vec<f64> = cells.iter().flat_map(|c| c.secs.clone()).collect();
                MethodRow {
                    method,
                    about,
                    per_task: cells,
                    average,
                    mean_secs: mean_sd(&secs).0,
                }
            })
            .collect()
    }
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// One task's encoded features, shared by every seed.
struct TaskRun<'a> {
    ti: usize,
    d: &'a TaskData,
    base: &'a BertModel,
    /// The frozen encoder's parameters (LoRA factors at zero) with a head slot.
    zero: ParamMap,
    f: Vec<Vec<f32>>,
    fnorm: Vec<Vec<f32>>,
    adapted: Vec<(&'static str, Vec<Vec<f32>>)>,
    /// Seconds to encode one row.
    per_row: f64,
    /// The data-conditioned generator whose meta-training never saw this task.
    any: Option<&'a TextAnyGenerator>,
}

impl TaskRun<'_> {
    /// Trains `init` (LoRA factors and head) for the configured epochs on `rows`; test
    /// accuracy.
    fn finetune_accuracy(
        &self,
        init: &ParamMap,
        rows: &[usize],
        test: &[usize],
        cfg: &TextUnseenConfig,
        seed: u64,
        what: &str,
    ) -> Result<f64> {
        let (base, d) = (self.base, self.d);
        let (pm, vars) = init.to_vars()?;
        let labels: Vec<Label> = rows.iter().map(|&i| Label::Class(d.y[i])).collect();
        let opts = TrainOptions {
            epochs: cfg.finetune_epochs,
            batch_size: 16,
            lr: cfg.finetune_lr,
            weight_decay: 0.01,
            seed,
        };
        train_epochs(base, &pm, vars, &pick(&d.enc, rows), &labels, &opts, what)?;
        let p = predict(base, &pm, &pick(&d.enc, test), false, None, 64)?;
        let ok = p
            .labels
            .iter()
            .zip(test)
            .filter(|(l, &i)| l.class() == Some(d.y[i]))
            .count();
        Ok(ok as f64 / test.len().max(1) as f64)
    }

    /// Every method on seed `seed`'s split; returns the training and test row counts.
    fn score_seed(
        &self,
        seed: u64,
        cfg: &TextUnseenConfig,
        table: &mut Table,
        progress: &dyn Fn(&str),
    ) -> Result<(usize, usize)> {
        let (d, ti) = (self.d, self.ti);
        let (tr, va, te) = split_indices(d.y.len(), seed).context("too few rows to split")?;
        let (ytr, yva, yte) = (pick(&d.y, &tr), pick(&d.y, &va), pick(&d.y, &te));
        let read_secs = |rows: usize| self.per_row * rows as f64;

        let mut counts = vec![0usize; d.classes];
        ytr.iter().for_each(|&c| counts[c] += 1);
        let top = (0..d.classes).max_by_key(|&c| (counts[c], usize::MAX - c));
        let majority = yte.iter().filter(|&&c| Some(c) == top).count() as f64;
        let about = "the training split's most frequent class";
        table.add("majority", about, ti, majority / yte.len() as f64, 0.0);

        let t = Instant::now();
        let acc = tfidf_lr(d, [&tr, &va, &te], cfg)?;
        let about = "TF-IDF (1-2 grams) + logistic regression, L2 chosen on validation";
        table.add("tfidf-lr", about, ti, acc, t.elapsed().as_secs_f64());

        let t = Instant::now();
        let [str_, sva, ste] = [&tr, &va, &te].map(|ix| split_of(&self.fnorm, &d.y, ix));
        let acc = classic::logistic_regression(&str_, &sva, &ste, &cfg.classic)?;
        let secs = t.elapsed().as_secs_f64() + read_secs(tr.len() + va.len());
        let about = "logistic regression on the frozen encoder's normalised mean-pooled embeddings (L2 on validation)";
        table.add("frozen-probe", about, ti, acc, secs);

        let fit = |f: &[Vec<f32>], cap: usize| -> Result<(text_head::FittedHead, f64, f64)> {
            let t = Instant::now();
            let s = text_head::support_sample(&ytr, d.classes, cap);
            let sx = pick(f, &pick(&tr, &s));
            let val = Some((pick(f, &va), yva.clone()));
            let val = val.as_ref().map(|(x, y)| (x.as_slice(), y.as_slice()));
            let head = text_head::fit(&sx, &pick(&ytr, &s), d.classes, &ytr, val)?;
            let acc = head.head.accuracy(&pick(f, &te), &yte);
            let secs = t.elapsed().as_secs_f64() + read_secs(s.len() + va.len());
            Ok((head, acc, secs))
        };
        let (head, acc0, ours_secs) = fit(&self.f, text_head::SUPPORT_ROWS)?;
        let acc = acc0;
        let about =
            "0 epochs: fitted head on the frozen encoder (nothing meta-trained on any task)";
        table.add("ours", about, ti, acc, ours_secs);
        for &s in &cfg.support_sizes {
            let (_, acc, secs) = fit(&self.f, s)?;
            let about = "ours with at most this many support rows";
            table.add(&format!("ours-support-{s}"), about, ti, acc, secs);
        }
        for (name, fa) in &self.adapted {
            let (_, acc, secs) = fit(fa, text_head::SUPPORT_ROWS)?;
            let about = "fitted head on the encoder adapted by the NLP generator (meta-trained on GLUE: seen)";
            let method = format!("ours-adapter-{name}-requirement");
            table.add(&method, about, ti, acc, secs);
        }

        if let Some(g) = self.any {
            let t = Instant::now();
            let s = text_head::support_sample(&ytr, d.classes, text_head::SUPPORT_ROWS);
            let rows = pick(&tr, &s);
            let (sy, enc) = (pick(&ytr, &s), |ix: &[usize]| pick(&d.enc, ix));
            let ve = enc(&va);
            let val = (ve.as_slice(), yva.as_slice());
            let fx = pick(&self.f, &rows);
            let (params, ahead) = text_any::adapt(g, &fx, &enc(&rows), &sy, d.classes, &ytr, val)?;
            let adapted = ahead
                .head
                .accuracy(&text_head::features(&g.base, &params, &enc(&te))?, &yte);
            let secs = ours_secs + t.elapsed().as_secs_f64();
            let about = "fitted head on the adapter the data-conditioned generator writes from the support set (its meta-training never saw the task)";
            table.add("ours-any-adapter", about, ti, adapted, secs);
            let chosen = if hyper_infer::fitted_head::keep_adapter(&head, &ahead) {
                adapted
            } else {
                acc0
            };
            let about = "0 epochs, what `generate --data` does: the frozen encoder or the generated adapter, whichever fits the validation rows better";
            table.add("ours-any", about, ti, chosen, secs);
        }

        let ft_rows: Vec<usize> = tr.iter().copied().take(cfg.finetune_rows).collect();
        progress(&format!("{} seed {seed}: LoRA finetune", d.task));
        let fresh = seeded_init_params(&self.base.param_spec_for(d.classes), seed, &Device::Cpu)?;
        let t = Instant::now();
        let acc = self.finetune_accuracy(&fresh, &ft_rows, &te, cfg, seed, "LoRA")?;
        let about = "LoRA (q, v) + fresh head, trained on the finetune rows";
        table.add("lora-finetune", about, ti, acc, t.elapsed().as_secs_f64());

        progress(&format!("{} seed {seed}: ModelGPT-F", d.task));
        let mut init = self.zero.clone();
        text_head::insert(&head, &mut init)?;
        let t = Instant::now();
        let acc = self.finetune_accuracy(&init, &ft_rows, &te, cfg, seed, "ModelGPT-F")?;
        let about = "ours, then the same LoRA training on the same rows";
        let secs = ours_secs + t.elapsed().as_secs_f64();
        table.add("modelgpt-f", about, ti, acc, secs);
        Ok((tr.len(), te.len()))
    }
}

/// Runs the protocol with `gen` (its tokenizer and frozen MiniLM; its generator only for
/// the adapter rows).
pub fn reproduce_text_unseen(
    cfg: &TextUnseenConfig,
    gen: &TextGenerator,
    progress: &dyn Fn(&str),
) -> Result<TextUnseenReport> {
    let tasks = cfg.glue_tasks()?;
    let dev = Device::Cpu;
    let base = gen.base.clone().with_pooling(Pooling::Mean);
    let mut table = Table {
        rows: Vec::new(),
        tasks: tasks.len(),
    };
    // The tokens `generate --data` reads for a fitted head.
    let tok = TextTokenizer::load(&datasets::paths::minilm_dir()?, text_head::MAX_TOKENS)?;
    let data: Vec<TaskData> = tasks
        .iter()
        .map(|&t| {
            progress(&format!("{t}: reading and tokenizing"));
            load_task(t, cfg.rows, &tok)
        })
        .collect::<Result<_>>()?;
    // Each task's requirement is written from its seed-0 training rows only.
    let requirements: Vec<String> = data
        .iter()
        .map(|d| {
            let (tr, _, _) = split_indices(d.y.len(), 0).context("too few rows to split")?;
            let mut s = d.split.clone();
            s.examples = pick(&d.split.examples, &tr);
            Ok(text_requirements(&text_summary(&s, true), 1, 0)?.remove(0))
        })
        .collect::<Result<_>>()?;
    let root = datasets::paths::workspace_root();
    let generators: Vec<TextAnyGenerator> = cfg
        .generators
        .iter()
        .map(|stem| {
            TextAnyGenerator::load(&root.join(stem), &datasets::paths::minilm_dir()?, &dev)
                .with_context(|| {
                    format!("generators: loading {stem} (cargo xtask pretrain text-any)")
                })
        })
        .collect::<Result<_>>()?;
    let mut infos = Vec::new();
    for (ti, d) in data.iter().enumerate() {
        let any = if generators.is_empty() {
            None
        } else {
            let unseen = generators.iter().find(|g| {
                g.sources
                    .iter()
                    .all(|s| GlueTask::from_name(s).ok() != Some(d.task))
            });
            Some(unseen.with_context(|| {
                format!(
                    "no generator in `generators` was meta-trained without {}",
                    d.task
                )
            })?)
        };
        progress(&format!("{}: encoding {} rows", d.task, d.y.len()));
        let zero = seeded_init_params(&base.param_spec_for(d.classes), 0, &dev)?;
        let t = Instant::now();
        let f = text_head::features(&base, &zero, &d.enc)?;
        let per_row = t.elapsed().as_secs_f64() / d.y.len() as f64;
        let fnorm = text_head::normalised(&f);
        let wrong = requirements[(ti + 1) % requirements.len()].clone();
        let mut adapted = Vec::new();
        if cfg.adapters {
            for (name, req) in [("own", &requirements[ti]), ("wrong", &wrong)] {
                progress(&format!(
                    "{}: encoding with the {name}-requirement adapter",
                    d.task
                ));
                let g = gen.generate(req, &glue_label_texts(d.task))?;
                adapted.push((name, text_head::features(&base, &g.params, &d.enc)?));
            }
        }
        let run = TaskRun {
            ti,
            d,
            base: &base,
            zero,
            f,
            fnorm,
            adapted,
            per_row,
            any,
        };
        let mut sizes = (0, 0);
        for &seed in &cfg.seeds {
            progress(&format!("{} seed {seed}", d.task));
            sizes = run.score_seed(seed, cfg, &mut table, progress)?;
        }
        let (n_train, n_test) = sizes;
        infos.push(TaskInfo {
            task: d.task.name().into(),
            pool: d.pool.clone(),
            rows: d.y.len(),
            classes: d.classes,
            train_rows: n_train,
            test_rows: n_test,
            encode_ms_per_row: per_row * 1e3,
            requirement: cfg.adapters.then(|| requirements[ti].clone()),
            wrong_requirement: cfg.adapters.then_some(wrong),
            generator: any.map(|g| g.checkpoint.display().to_string()),
        });
    }
    Ok(TextUnseenReport {
        config: cfg.clone(),
        tasks: infos,
        methods: table.finish(),
    })
}

impl TextUnseenReport {
    fn method(&self, name: &str) -> Option<&MethodRow> {
        self.methods.iter().find(|m| m.method == name)
    }

    /// The acceptance checks, computed from the numbers: ours against the probe on
    /// average, ours against the majority rate on every task, ModelGPT-F against LoRA.
    pub fn checks(&self) -> Vec<String> {
        let mut out = Vec::new();
        let (Some(ours), Some(probe), Some(maj)) = (
            self.method("ours"),
            self.method("frozen-probe"),
            self.method("majority"),
        ) else {
            return out;
        };
        out.push(format!(
            "ours average {:.4} vs frozen-probe {:.4}: {}",
            ours.average,
            probe.average,
            if ours.average >= probe.average {
                "at or above"
            } else {
                "below"
            }
        ));
        for (i, t) in self.tasks.iter().enumerate() {
            let (o, m) = (ours.per_task[i].mean, maj.per_task[i].mean);
            out.push(format!(
                "{}: ours {o:.4} vs majority {m:.4}: {}",
                t.task,
                if o > m { "above" } else { "NOT above" }
            ));
        }
        if let (Some(f), Some(l)) = (self.method("modelgpt-f"), self.method("lora-finetune")) {
            out.push(format!(
                "modelgpt-f average {:.4} vs lora-finetune {:.4}: {}",
                f.average,
                l.average,
                if f.average >= l.average {
                    "at or above"
                } else {
                    "below"
                }
            ));
        }
        out
    }

    /// `results/text-unseen.md`: the table (mean ± sd over seeds, test accuracy), the
    /// mean seconds per task and seed, the checks and the data behind each task.
    pub fn markdown(&self, command: &str, machine: &str) -> String {
        let mut s =
            String::from("# Text tasks as unseen: one-pass heads against per-task training\n\n");
        s += &format!("Command: `{command}`  \nMachine: {machine}\n\n");
        s += &format!(
            "Each task: {} rows drawn (seeded) from its pool, split 60/10/30 per seed (seeds {:?}), test accuracy mean ± sd. Seconds: per task and seed, from tokenized rows in memory to a usable model (encoding time per row × rows read, plus fitting or training).\n\n",
            self.config.rows, self.config.seeds
        );
        s += "| method |";
        for t in &self.tasks {
            s += &format!(" {} |", t.task);
        }
        s += " average | s |\n|---|";
        s += &"---|".repeat(self.tasks.len() + 2);
        s += "\n";
        for m in &self.methods {
            s += &format!("| {} |", m.method);
            for c in &m.per_task {
                s += &format!(" {:.4} ± {:.4} |", c.mean, c.sd);
            }
            s += &format!(" {:.4} | {:.1} |\n", m.average, m.mean_secs);
        }
        s += "\n## Checks (computed from the table)\n\n";
        for c in self.checks() {
            s += &format!("- {c}\n");
        }
        s += "\n## Methods\n\n";
        for m in &self.methods {
            s += &format!("- `{}`: {}\n", m.method, m.about);
        }
        s += "\n## Tasks\n\n| task | pool | rows | classes | train | test | encode ms/row |\n|---|---|---|---|---|---|---|\n";
        for t in &self.tasks {
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {:.1} |\n",
                t.task, t.pool, t.rows, t.classes, t.train_rows, t.test_rows, t.encode_ms_per_row
            );
        }
        s
    }
}
