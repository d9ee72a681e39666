//! `cargo xtask fuzz [--minutes N] [--cases N] [--target NAME]`: property-based fuzzing of
//! every parser a user's file, a fetched asset or a generated artifact reaches.
//!
//! The property is the one a user relies on: an error or a valid result, never a panic and
//! never a stall (each input must finish within [`SLOW`]). Inputs come from proptest
//! strategies: real seed files with a few edits (bit flips, truncation, byte insertions
//! from a delimiter/quote/NUL-heavy alphabet, deletions, splices), random bytes, and text
//! over that alphabet. A failure is shrunk to a minimal edit list before it is reported.
//! CI runs `tests::CI_CASES` inputs per target (`tests::every_target_survives_bounded_inputs`).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use datasets::glue::{self, GlueTask};
use datasets::{paths, text_csv, uci, user_csv};

/// An input that takes longer than this is a failure (a hang in the making).
pub const SLOW: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep fuzzing, round after round with fresh seeds, until this many minutes have passed.
    #[arg(long)]
    minutes: Option<f64>,
    /// Inputs per target and round.
    #[arg(long, default_value_t = 512)]
    cases: u32,
    /// Only this target (see the list printed by a run).
    #[arg(long)]
    target: Option<String>,
}

/// One parser under test: what its seed files are and how one input reaches it.
pub struct Target {
    pub name: &'static str,
    /// Relative cost: a target's cases are `cases * weight` (at least 4).
    weight: f64,
    seeds: fn() -> Result<Vec<Vec<u8>>>,
    /// Feeds `bytes` to the parser through files in the empty scratch directory `dir`;
    /// the result (error or value) is dropped: only panics and stalls count.
    run: fn(&Path, &[u8]),
}

pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "csv",
            weight: 1.0,
            seeds: tabular_seeds,
            run: |d, b| {
                let _ = user_csv::load_csv(&write(d, "data.csv", b), &Default::default());
            },
        },
        Target {
            name: "csv-features",
            weight: 1.0,
            seeds: tabular_seeds,
            run: |d, b| {
                let opts = user_csv::CsvOptions {
                    target: Some("income".into()),
                    ..Default::default()
                };
                let _ = user_csv::load_features(&write(d, "rows.csv", b), &opts);
            },
        },
        Target {
            name: "text-csv",
            weight: 1.0,
            seeds: || Ok(vec![TEXT_SEED.as_bytes().to_vec()]),
            run: |d, b| {
                let opts = text_csv::TextCsvOptions {
                    text_column: "text".into(),
                    pair_column: Some("pair".into()),
                    target: Some("label".into()),
                    delimiter: None,
                };
                let _ = text_csv::load_text_csv(&write(d, "texts.csv", b), &opts);
            },
        },
        Target {
            name: "text-csv-predict",
            weight: 1.0,
            seeds: || Ok(vec![TEXT_SEED.as_bytes().to_vec()]),
            run: |d, b| {
                let opts = text_csv::TextCsvOptions {
                    text_column: "text".into(),
                    pair_column: Some("pair".into()),
                    target: None,
                    delimiter: None,
                };
                let _ = text_csv::load_text_csv(&write(d, "texts.csv", b), &opts);
            },
        },
        Target {
            name: "image-folder",
            weight: 0.5,
            seeds: || Ok(vec![png_seed()]),
            // The input is one image of a two-class folder whose other images are valid.
            run: |d, b| {
                let root = d.join("imgs");
                for c in ["a", "b"] {
                    std::fs::create_dir_all(root.join(c)).expect("scratch dir");
                    std::fs::write(root.join(c).join("0.png"), png_seed()).expect("scratch");
                }
                std::fs::write(root.join("b/1.png"), b).expect("scratch write");
                let _ = datasets::images::load_class_folders(&root, None);
                let _ = datasets::images::load_unlabelled(&root.join("b"), 8);
            },
        },
        adapter_dir_target::<0>("text-model-dir/model.json"),
        adapter_dir_target::<1>("text-model-dir/adapter_config.json"),
        adapter_dir_target::<2>("image-model-dir/model.json"),
        adapter_dir_target::<3>("image-model-dir/adapter_config.json"),
        Target {
            name: "orange-tab",
            weight: 1.0,
            seeds: || head_of(&[paths::data_dir().join("orange/zoo.tab")], 16 << 10),
            run: |d, b| {
                let _ = uci::load_orange_tab("fuzz", &write(d, "data.tab", b));
            },
        },
        Target {
            name: "arff",
            weight: 1.0,
            seeds: || {
                let rice = "uci/rice_cammeo_osmancik/Rice_Cammeo_Osmancik.arff";
                head_of(&[paths::shared_data_dir().join(rice)], 8 << 10)
            },
            run: |d, b| {
                let _ = uci::load_arff("fuzz", &write(d, "data.arff", b));
            },
        },
        Target {
            name: "xlsx",
            // The seed is the 2.9 MB Dry Bean workbook: each input costs ~0.1 s.
            weight: 0.1,
            seeds: || {
                let p = paths::shared_data_dir().join("uci/dry_bean/Dry_Bean_Dataset.xlsx");
                head_of(&[p], usize::MAX)
            },
            run: |d, b| {
                let _ = uci::load_dry_bean_xlsx(&write(d, "book.xlsx", b));
            },
        },
        Target {
            name: "glue-tsv",
            weight: 1.0,
            seeds: || {
                let fx = paths::workspace_root().join("crates/datasets/tests/fixtures/glue");
                head_of(
                    &[fx.join("MRPC/train.tsv"), fx.join("MRPC/dev.tsv")],
                    8 << 10,
                )
            },
            run: |d, b| {
                let _ = glue::load_file(GlueTask::Mrpc, "train", &write(d, "train.tsv", b));
            },
        },
        Target {
            name: "metadata-json",
            weight: 1.0,
            seeds: || Ok(vec![METADATA_SEED.as_bytes().to_vec()]),
            run: |_, b| {
                let _ = llm_prompting::json::parse_metadata(&String::from_utf8_lossy(b));
            },
        },
        model_dir_target::<0>("model-dir/model.json"),
        model_dir_target::<1>("model-dir/preprocessor.json"),
        model_dir_target::<2>("model-dir/metadata.json"),
        Target {
            name: "checkpoint-header",
            weight: 1.0,
            seeds: || {
                let (_, toml) = hyper_core::checkpoint::paths(&seed_checkpoint()?.join("ck"));
                head_of(&[toml], usize::MAX)
            },
            run: |d, b| {
                let seed = seed_checkpoint().expect("seeded before the run");
                let (st, _) = hyper_core::checkpoint::paths(&seed.join("ck"));
                let stem = d.join("ck");
                std::fs::copy(st, stem.with_extension("safetensors")).expect("scratch copy");
                write(d, "ck.toml", b);
                let _ = hyper_core::checkpoint::load(&stem, "fuzz", &Device::Cpu);
            },
        },
        Target {
            name: "gguf-header",
            // Tokenizer metadata makes the seed ~2 MB.
            weight: 0.25,
            seeds: gguf_seed,
            run: |d, b| {
                let _ =
                    llm_prompting::local::GgufTokenizer::from_gguf_file(&write(d, "model.gguf", b));
            },
        },
    ]
}

const TEXT_SEED: &str = "text,pair,label\n\
\"A \"\"quoted\"\" sentence, with a comma\",second one,yes\n\
plain text,other text,no\n\
\"multi\nline\",x,yes\n";

const METADATA_SEED: &str = "Here is the metadata:\n```json\n{\"task\": \"classification\", \
\"in_dim\": 4, \"out_dim\": 3, \"scale\": \"small\", \"arch\": \"mlp_small\"}\n```";

/// A valid 6×6 grey PNG.
fn png_seed() -> Vec<u8> {
    let img = image::GrayImage::from_fn(6, 6, |x, y| image::Luma([(x * 40 + y * 3) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a PNG in memory");
    out.into_inner()
}

/// The adapter-directory files fuzzed (`adapter_dir_target::<I>`): text (`true`) or image
/// model, and the file.
const ADAPTER_DIR_FILES: [(bool, &str); 4] = [
    (true, "model.json"),
    (true, "adapter_config.json"),
    (false, "model.json"),
    (false, "adapter_config.json"),
];

fn seed_adapter_dir(text: bool) -> Result<PathBuf> {
    if text {
        seed_text_model_dir()
    } else {
        seed_image_model_dir()
    }
}

/// A target for `ADAPTER_DIR_FILES[I]`, resealed like [`model_dir_target`]'s so the
/// mutated file reaches its parser behind the manifest check.
fn adapter_dir_target<const I: usize>(name: &'static str) -> Target {
    fn seeds<const I: usize>() -> Result<Vec<Vec<u8>>> {
        let (text, file) = ADAPTER_DIR_FILES[I];
        head_of(&[seed_adapter_dir(text)?.join(file)], usize::MAX)
    }
    fn run<const I: usize>(d: &Path, b: &[u8]) {
        let (text, file) = ADAPTER_DIR_FILES[I];
        let seed = seed_adapter_dir(text).expect("seeded before the run");
        let dir = d.join("model");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        for e in std::fs::read_dir(&seed).expect("seed dir").flatten() {
            std::fs::copy(e.path(), dir.join(e.file_name())).expect("scratch copy");
        }
        std::fs::write(dir.join(file), b).expect("scratch write");
        hyper_infer::model_dir::write_manifest(&dir).expect("reseal");
        if text {
            let _ = hyper_infer::text_model_dir::TextModelDir::load(&dir, &Device::Cpu);
        } else if let Ok(m) = hyper_infer::image_model_dir::ImageModelDir::load(&dir, &Device::Cpu)
        {
            let _ = m.backbone(&Device::Cpu);
        }
    }
    Target {
        name,
        weight: 0.5,
        seeds: seeds::<I>,
        run: run::<I>,
    }
}

/// An image model directory from the default CV generator (two classes), once.
fn seed_image_model_dir() -> Result<PathBuf> {
    use hyper_infer::image_model_dir::{
        ImageModelDir, ImageModelInfo, IMAGE_MODEL_FORMAT, RESIZE_POLICY,
    };
    static DIR: OnceLock<std::result::Result<tempfile::TempDir, String>> = OnceLock::new();
    let made = DIR.get_or_init(|| {
        (|| -> Result<tempfile::TempDir> {
            let dev = Device::Cpu;
            let ck = hyper_infer::checkpoint_dir("cv").join("best");
            let gen = hyper_infer::vision::ImageGenerator::load(&ck, &paths::minilm_dir()?, &dev)?;
            let classes = vec!["cat".to_string(), "dog".to_string()];
            let g = gen.generate("Cats or dogs.", &classes)?;
            let info = ImageModelInfo {
                format: IMAGE_MODEL_FORMAT.into(),
                backbone: gen.architecture.backbone.clone(),
                backbone_weights: gen.architecture.backbone_weights.clone(),
                lora: gen.architecture.lora.clone(),
                class_names: classes,
                image_set: None,
                requirement: "Cats or dogs.".into(),
                generator: ck.display().to_string(),
                split: None,
                resize: RESIZE_POLICY.into(),
                head: None,
            };
            let tmp = tempfile::tempdir()?;
            ImageModelDir::new(info, &gen.base, g.params).save(&tmp.path().join("image"))?;
            Ok(tmp)
        })()
        .map_err(|e| format!("{e:#}"))
    });
    match made {
        Ok(t) => Ok(t.path().join("image")),
        Err(e) => bail!("seed image model directory: {e}"),
    }
}

/// A text model directory from the default NLP generator (two labels), once.
fn seed_text_model_dir() -> Result<PathBuf> {
    use hyper_infer::text_model_dir::{TextModelDir, TextModelInfo, TEXT_MODEL_FORMAT};
    static DIR: OnceLock<std::result::Result<tempfile::TempDir, String>> = OnceLock::new();
    let made = DIR.get_or_init(|| {
        (|| -> Result<tempfile::TempDir> {
            let dev = Device::Cpu;
            let ck = hyper_infer::checkpoint_dir("nlp").join("best");
            let gen = hyper_infer::text::TextGenerator::load(&ck, &paths::minilm_dir()?, &dev)?;
            let labels = vec!["bad".to_string(), "good".to_string()];
            let g = gen.generate("Sentiment of short reviews.", &labels)?;
            let info = TextModelInfo {
                format: TEXT_MODEL_FORMAT.into(),
                base_model: hyper_infer::text::BASE_MODEL_ID.into(),
                task: "seq_cls".into(),
                label_names: labels,
                glue_task: None,
                text_column: Some("text".into()),
                text_pair_column: None,
                target: Some("label".into()),
                max_len: gen.architecture.max_len,
                requirement: "Sentiment of short reviews.".into(),
                generator: ck.display().to_string(),
                split: None,
                pooling: Default::default(),
            };
            let tmp = tempfile::tempdir()?;
            TextModelDir::new(info, &gen.base, g.params).save(&tmp.path().join("text"))?;
            Ok(tmp)
        })()
        .map_err(|e| format!("{e:#}"))
    });
    match made {
        Ok(t) => Ok(t.path().join("text")),
        Err(e) => bail!("seed text model directory: {e}"),
    }
}

/// The model-directory files fuzzed, each as its own target (`model_dir_target::<I>`).
const MODEL_DIR_FILES: [&str; 3] = ["model.json", "preprocessor.json", "metadata.json"];

/// A target for `MODEL_DIR_FILES[I]`: fn pointers cannot capture the file name, so it is a
/// const parameter.
fn model_dir_target<const I: usize>(name: &'static str) -> Target {
    fn seeds<const I: usize>() -> Result<Vec<Vec<u8>>> {
        head_of(&[seed_model_dir()?.join(MODEL_DIR_FILES[I])], usize::MAX)
    }
    fn run<const I: usize>(d: &Path, b: &[u8]) {
        let seed = seed_model_dir().expect("seeded before the run");
        let dir = d.join("model");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        for e in std::fs::read_dir(&seed).expect("seed dir").flatten() {
            std::fs::copy(e.path(), dir.join(e.file_name())).expect("scratch copy");
        }
        std::fs::write(dir.join(MODEL_DIR_FILES[I]), b).expect("scratch write");
        // Reseal, so the mutated file reaches its parser instead of the hash check.
        hyper_infer::model_dir::write_manifest(&dir).expect("reseal");
        if let Ok(m) = hyper_infer::ModelDir::load(&dir, &Device::Cpu) {
            let _ = m.encode_rows(seed_table());
        }
    }
    Target {
        name,
        weight: 0.5,
        seeds: seeds::<I>,
        run: run::<I>,
    }
}

/// Iris, read once: the rows a loaded model directory encodes.
fn seed_table() -> &'static datasets::Table {
    static TABLE: OnceLock<datasets::Table> = OnceLock::new();
    TABLE.get_or_init(|| uci::load_builtin("iris").expect("iris (run `cargo xtask fetch`)"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("writing a scratch input");
    p
}

/// The first `max` bytes of each file (a truncated seed is itself a useful input).
fn head_of(files: &[PathBuf], max: usize) -> Result<Vec<Vec<u8>>> {
    files
        .iter()
        .map(|p| {
            let mut b = std::fs::read(p)
                .with_context(|| format!("fuzz seed {} (run `cargo xtask fetch`)", p.display()))?;
            b.truncate(max);
            Ok(b)
        })
        .collect()
}

fn tabular_seeds() -> Result<Vec<Vec<u8>>> {
    let root = paths::workspace_root();
    let mut files: Vec<PathBuf> = [
        "crates/datasets/tests/fixtures/tabular",
        "crates/hyper-infer/tests/fixtures/bad",
    ]
    .iter()
    .flat_map(|d| {
        std::fs::read_dir(root.join(d))
            .into_iter()
            .flatten()
            .flatten()
    })
    .map(|e| e.path())
    .filter(|p| p.extension().is_some_and(|e| e == "csv" || e == "tsv"))
    .collect();
    files.sort();
    files.push(paths::data_dir().join("sklearn/iris.csv"));
    head_of(&files, 8 << 10)
}

/// SmolLM2's GGUF up to its tensor data: header, metadata (the tokenizer) and tensor infos.
fn gguf_seed() -> Result<Vec<Vec<u8>>> {
    let p = llm_prompting::local::LocalLlm::default_path();
    let mut f = std::fs::File::open(&p)
        .with_context(|| format!("fuzz seed {} (run `cargo xtask fetch`)", p.display()))?;
    let ct = candle_core::quantized::gguf_file::Content::read(&mut f)
        .with_context(|| format!("reading {}", p.display()))?;
    head_of(&[p], ct.tensor_data_offset as usize)
}

/// A model directory written by the real pipeline (iris, the committed checkpoint), once.
fn seed_model_dir() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<tempfile::TempDir, String>> = OnceLock::new();
    let made = DIR.get_or_init(|| {
        (|| -> Result<tempfile::TempDir> {
            let dev = Device::Cpu;
            let pipeline = hyper_infer::Pipeline::load_default(&dev)?;
            let table = uci::load_builtin("iris")?;
            let g = pipeline.generate(&table, None, None, &Default::default())?;
            let rows: Vec<usize> = (0..table.n_rows()).collect();
            let pre = datasets::preprocess::Preprocessor::fit(&table, &rows)?;
            let tmp = tempfile::tempdir()?;
            let dir = tmp.path().join("iris");
            pipeline.model_dir(g, &table, pre, 0).save(&dir)?;
            Ok(tmp)
        })()
        .map_err(|e| format!("{e:#}"))
    });
    match made {
        Ok(t) => Ok(t.path().join("iris")),
        Err(e) => bail!("seed model directory: {e}"),
    }
}

/// A small checkpoint written by `hyper_core::checkpoint::save`, once.
fn seed_checkpoint() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<tempfile::TempDir, String>> = OnceLock::new();
    let made = DIR.get_or_init(|| {
        (|| -> Result<tempfile::TempDir> {
            let tmp = tempfile::tempdir()?;
            let t = candle_core::Tensor::arange(0f32, 12., &Device::Cpu)?.reshape((3, 4))?;
            let config: toml::Table = toml::from_str("lr = 0.001\n[model]\nhidden = [8, 8]\n")?;
            let state: toml::Table = toml::from_str("epoch = 3\nbest_val = 0.25\n")?;
            hyper_core::checkpoint::save(
                &tmp.path().join("ck"),
                "fuzz",
                config,
                state,
                &[("w".to_string(), t)],
            )?;
            Ok(tmp)
        })()
        .map_err(|e| format!("{e:#}"))
    });
    match made {
        Ok(t) => Ok(t.path().to_path_buf()),
        Err(e) => bail!("seed checkpoint: {e}"),
    }
}

/// Bytes the parsers treat specially, for insertions and generated text.
const ALPHABET: &[u8] = b",;\t|\"'\n\r\0 .-+eE0123456789?@%{}[]:=abcNAn\xff\xc3";

/// A position in an input of any length: `len * p / 2^64`, so it shrinks towards the start.
#[derive(Debug, Clone, Copy)]
struct Pos(u64);

impl Pos {
    /// An index in `0..=len` (the end included, for truncation and insertion).
    fn at(self, len: usize) -> usize {
        (((len as u128 + 1) * self.0 as u128) >> 64) as usize
    }
}

fn pos() -> impl Strategy<Value = Pos> {
    any::<u64>().prop_map(Pos)
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(Pos, u8),
    Truncate(Pos),
    Insert(Pos, Vec<u8>),
    Delete(Pos, usize),
    /// Copy a stretch of the input elsewhere (duplicated rows, repeated headers).
    Splice(Pos, usize, Pos),
}

#[derive(Debug, Clone)]
enum Input {
    Mutated(Pos, Vec<Edit>),
    Bytes(Vec<u8>),
    Text(Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop::sample::select(ALPHABET).boxed();
    prop_oneof![
        4 => (pos(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        1 => pos().prop_map(Edit::Truncate),
        3 => (pos(), prop::collection::vec(byte, 1..6)).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => (pos(), 1usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
        1 => (pos(), 1usize..256, pos()).prop_map(|(f, n, t)| Edit::Splice(f, n, t)),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => (pos(), prop::collection::vec(edit(), 1..8))
            .prop_map(|(s, e)| Input::Mutated(s, e)),
        1 => prop::collection::vec(any::<u8>(), 0..2048).prop_map(Input::Bytes),
        2 => prop::collection::vec(prop::sample::select(ALPHABET), 0..512).prop_map(Input::Text),
    ]
}

impl Input {
    fn bytes(&self, seeds: &[Vec<u8>]) -> Vec<u8> {
        match self {
            Input::Bytes(b) | Input::Text(b) => b.clone(),
            Input::Mutated(s, edits) => {
                let mut b = seeds[s.at(seeds.len() - 1)].clone();
                for e in edits {
                    apply(&mut b, e);
                }
                b
            }
        }
    }
}

fn apply(b: &mut Vec<u8>, e: &Edit) {
    match e {
        Edit::Flip(p, bit) => {
            let k = p.at(b.len().saturating_sub(1));
            if let Some(x) = b.get_mut(k) {
                *x ^= 1 << bit;
            }
        }
        Edit::Truncate(p) => b.truncate(p.at(b.len())),
        Edit::Insert(p, bytes) => {
            let k = p.at(b.len());
            b.splice(k..k, bytes.iter().copied());
        }
        Edit::Delete(p, n) => {
            let k = p.at(b.len());
            b.drain(k..(k + n).min(b.len()));
        }
        Edit::Splice(from, n, to) => {
            let f = from.at(b.len());
            let piece: Vec<u8> = b[f..(f + n).min(b.len())].to_vec();
            let t = to.at(b.len());
            b.splice(t..t, piece);
        }
    }
}

/// What one target's run found.
pub struct Report {
    pub name: &'static str,
    pub inputs: u64,
    pub secs: f64,
    /// The shrunk failing input and what went wrong.
    pub failure: Option<String>,
}

/// Runs `cases` inputs against `t` from the RNG seed `seed`.
pub fn fuzz_target(t: &Target, cases: u32, seed: u64) -> Result<Report> {
    let seeds = (t.seeds)().with_context(|| format!("target {}", t.name))?;
    if seeds.is_empty() {
        bail!("target {}: no seed inputs", t.name);
    }
    let scratch = tempfile::tempdir()?;
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: ((cases as f64 * t.weight).ceil() as u32).max(4),
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let inputs = Cell::new(0u64);
    let started = Instant::now();
    let outcome = runner.run(&input(), |inp| {
        inputs.set(inputs.get() + 1);
        let case = scratch.path().join(format!("case{}", inputs.get()));
        std::fs::create_dir_all(&case).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let t0 = Instant::now();
        (t.run)(&case, &inp.bytes(&seeds));
        let _ = std::fs::remove_dir_all(&case);
        if t0.elapsed() > SLOW {
            return Err(TestCaseError::fail(format!(
                "took {:.1} s (limit {:.0} s)",
                t0.elapsed().as_secs_f64(),
                SLOW.as_secs_f64()
            )));
        }
        Ok(())
    });
    let failure = match outcome {
        Ok(()) => None,
        Err(TestError::Fail(why, inp)) => {
            let b = inp.bytes(&seeds);
            let shown = String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
            Some(format!(
                "{why}; minimal input ({} bytes): {shown:?}; from {inp:?}",
                b.len()
            ))
        }
        Err(TestError::Abort(why)) => Some(format!("aborted: {why}")),
    };
    Ok(Report {
        name: t.name,
        inputs: inputs.get(),
        secs: started.elapsed().as_secs_f64(),
        failure,
    })
}

/// Every (selected) target once with `cases` inputs: panics are caught and shrunk, so the
/// default hook's backtrace noise is silenced for the duration.
pub fn fuzz_all(only: Option<&str>, cases: u32, seed: u64) -> Result<Vec<Report>> {
    let all = targets();
    if let Some(name) = only {
        if !all.iter().any(|t| t.name == name) {
            let known: Vec<_> = all.iter().map(|t| t.name).collect();
            bail!("unknown fuzz target `{name}`; known: {}", known.join(", "));
        }
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let reports = all
        .iter()
        .filter(|t| only.is_none_or(|n| n == t.name))
        .map(|t| fuzz_target(t, cases, seed))
        .collect();
    std::panic::set_hook(hook);
    reports
}

pub fn run(args: Args) -> Result<()> {
    let deadline = args
        .minutes
        .map(|m| Instant::now() + Duration::from_secs_f64(m * 60.0));
    let mut totals: Vec<(&'static str, u64, f64, Vec<String>)> = Vec::new();
    let mut round = 0u64;
    loop {
        for r in fuzz_all(args.target.as_deref(), args.cases, round)? {
            match totals.iter_mut().find(|t| t.0 == r.name) {
                Some(t) => {
                    t.1 += r.inputs;
                    t.2 += r.secs;
                    t.3.extend(r.failure);
                }
                None => totals.push((r.name, r.inputs, r.secs, r.failure.into_iter().collect())),
            }
        }
        round += 1;
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
    println!(
        "{:<28} {:>8} {:>8} {:>9}",
        "target", "inputs", "seconds", "failures"
    );
    for (name, n, secs, fails) in &totals {
        println!("{name:<28} {n:>8} {secs:>8.1} {:>9}", fails.len());
    }
    let failed: Vec<String> = totals
        .iter()
        .flat_map(|(name, _, _, f)| f.iter().map(move |f| format!("{name}: {f}")))
        .collect();
    if !failed.is_empty() {
        bail!("{} failure(s):\n{}", failed.len(), failed.join("\n"));
    }
    println!(
        "{round} round(s), no panics and no input over {} s",
        SLOW.as_secs()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs per target in CI (scaled down for targets with large seeds, see `Target::weight`).
    const CI_CASES: u32 = 512;

    #[test]
    fn edits_stay_in_bounds_on_empty_and_short_inputs() {
        let i = Pos(u64::MAX);
        for e in [
            Edit::Flip(i, 7),
            Edit::Truncate(i),
            Edit::Insert(i, vec![b',']),
            Edit::Delete(i, 63),
            Edit::Splice(i, 255, i),
        ] {
            for len in [0usize, 1, 3] {
                let mut b = vec![b'x'; len];
                apply(&mut b, &e);
                assert!(b.len() <= len + 255, "{e:?} on {len}");
            }
        }
        let mut b = b"abcdef".to_vec();
        apply(&mut b, &Edit::Delete(Pos(0), 2));
        assert_eq!(b, b"cdef");
    }

    #[test]
    fn a_panicking_target_is_caught_and_shrunk() {
        let t = Target {
            name: "panics-on-nul",
            weight: 1.0,
            seeds: || Ok(vec![b"a,b\n1,2\n".to_vec()]),
            run: |_, b| assert!(!b.contains(&0), "NUL byte"),
        };
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = fuzz_target(&t, 256, 7).unwrap();
        std::panic::set_hook(hook);
        let f = r.failure.expect("a NUL is generated within 256 inputs");
        assert!(f.contains("NUL byte"), "{f}");
    }

    /// The CI-bounded run: every target, [`CI_CASES`] inputs each (scaled by weight).
    #[test]
    fn every_target_survives_bounded_inputs() {
        let reports = fuzz_all(None, CI_CASES, 0).unwrap();
        assert_eq!(reports.len(), targets().len());
        let mut failed = Vec::new();
        for r in &reports {
            println!("{:<28} {:>5} inputs {:>6.1} s", r.name, r.inputs, r.secs);
            assert!(r.inputs >= 4, "{} ran {} inputs", r.name, r.inputs);
            failed.extend(r.failure.as_ref().map(|f| format!("{}: {f}", r.name)));
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
}
