//! Generate vs finetune on real tables (DESIGN.md §2: the paper's "46–270x" comparison),
//! with criterion's repeated sampling instead of the single wall-clock pass of
//! `cargo xtask reproduce tabular`. Data loading is done once outside the timed loops
//! (both methods pay it equally). Per dataset:
//! - `generate/<set>`: profile requirement + metadata, MiniLM encoding, one generator pass;
//! - `finetune/<set>`: the Finetune baseline (random init, `baseline.epochs` epochs of Adam).
//!
//! `cargo bench -p benches --bench e2e -- --warm-up-time 1 --measurement-time 5`

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use datasets::preprocess::split_and_fit;
use hyper_infer::{BackendOptions, Pipeline, SplitTensors};
use hyper_train::baselines::finetune;
use hyper_train::TabularConfig;
use rand::{rngs::StdRng, SeedableRng};

/// Smallest, a mid-sized and the largest of the ten sets.
const SETS: [&str; 3] = ["iris", "dry_bean", "adult"];

fn e2e(c: &mut Criterion) {
    let dev = Device::Cpu;
    let pipeline = match Pipeline::load_default(&dev) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skipping e2e bench: {e:#} (run `cargo xtask fetch`)");
            return;
        }
    };
    let cfg_path = datasets::paths::workspace_root().join("configs/tabular.toml");
    let cfg = TabularConfig::load(&cfg_path).expect("configs/tabular.toml");
    let (b, seed) = (cfg.baseline.clone(), cfg.train.seed);
    let backend = BackendOptions::default();
    let mut g = c.benchmark_group("e2e");
    g.sample_size(10);
    for name in SETS {
        let table = datasets::uci::load_builtin(name).expect("built-in table");
        let s = split_and_fit(&table, seed).expect("split");
        let train = SplitTensors::from_split(&s.train, &dev).expect("train split");
        let gen = pipeline
            .generate(&table, None, Some(name), &backend)
            .expect("generate");
        let mlp = pipeline.target(&gen.metadata).expect("target");
        g.bench_function(format!("generate/{name}"), |bch| {
            bch.iter(|| {
                pipeline
                    .generate(&table, None, Some(name), &backend)
                    .unwrap()
            })
        });
        g.bench_function(format!("finetune/{name}"), |bch| {
            bch.iter(|| {
                let mut rng = StdRng::seed_from_u64(seed);
                let init = mlp.init_params(&gen.metadata, &mut rng, &dev).unwrap();
                finetune(&mlp, &init, &train, &b, b.epochs, seed).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // As in our binaries (hyper_core::runtime): subnormals flushed, freed memory kept.
    config = { hyper_core::runtime::init(); Criterion::default() };
    targets = e2e
}
criterion_main!(benches);
