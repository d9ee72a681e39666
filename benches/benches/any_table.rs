//! Issue 13's speed bar: one pass of the data-conditioned generator on a 10,000-row,
//! 20-column table (support subsampled to `max_support` rows), against fitting the
//! same-run GBDT baseline on the same rows. Data generation is outside the timed loops.
//! - `any_table/generate`: support subsample + one generator forward pass;
//! - `any_table/encode+generate`: the same plus the MiniLM encoding of its requirement;
//! - `any_table/gbdt_fit`: `hyper_train::classic::gbdt` (100 trees of depth 4).
//!
//! `cargo bench -p benches --bench any_table -- --warm-up-time 1 --measurement-time 5`

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use datasets::preprocess::Split;
use datasets::prior::{sample_task, PriorConfig};
use hyper_infer::any_table::{default_any_table_checkpoint, AnyTableGenerator};
use hyper_train::classic::{gbdt, ClassicConfig};

const ROWS: usize = 10_000;
const COLS: usize = 20;

/// A 10,000 × 20 synthetic table from the prior (the first seed that draws 20 columns).
fn table() -> (Split, usize) {
    let cfg = PriorConfig {
        max_features: COLS,
        max_classes: 4,
    };
    for seed in 0.. {
        if let Some(e) = sample_task(ROWS, &cfg, seed) {
            if e.n_features == COLS {
                let split = Split {
                    x: e.x,
                    y: e.y,
                    n_features: COLS,
                };
                return (split, e.n_classes);
            }
        }
    }
    unreachable!()
}

fn any_table(c: &mut Criterion) {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let dev = Device::Cpu;
    let gen = match AnyTableGenerator::load(&default_any_table_checkpoint(), &dev) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipping any_table bench: {e:#}");
            return;
        }
    };
    let encoder = datasets::paths::minilm_dir()
        .ok()
        .and_then(|d| target_models::TextEncoder::load(&d, &dev).ok());
    let (train, n_classes) = table();
    let req = "Build a small-scaled 3-class classifier for a 20-feature tabular dataset.";
    let mut g = c.benchmark_group("any_table");
    g.sample_size(10);
    g.bench_function("generate", |b| {
        b.iter(|| gen.generate(&train, n_classes, None, None, 0).unwrap())
    });
    if let Some(enc) = &encoder {
        g.bench_function("encode+generate", |b| {
            b.iter(|| {
                let e = enc.embed_one(req).unwrap();
                gen.generate(&train, n_classes, Some(&e), None, 0).unwrap()
            })
        });
    }
    let probe = Split {
        x: train.x[..COLS].to_vec(),
        y: train.y[..1].to_vec(),
        n_features: COLS,
    };
    g.bench_function("gbdt_fit", |b| {
        b.iter(|| gbdt(&train, n_classes, &probe, &ClassicConfig::default()).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // As in our binaries (hyper_core::runtime): subnormals flushed, freed memory kept.
    config = { hyper_core::runtime::init(); Criterion::default() };
    targets = any_table
}
criterion_main!(benches);
