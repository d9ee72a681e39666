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
use hyper_train::baselines::finetune;
use hyper_train::{Data, Engine};
use rand::{rngs::StdRng, SeedableRng};

/// Smallest, a mid-sized and the largest of the ten sets.
const SETS: [&str; 3] = ["iris", "dry_bean", "adult"];

fn e2e(c: &mut Criterion) {
    let dev = Device::Cpu;
    let root = datasets::paths::workspace_root();
    let engine = match Engine::load(
        &root.join("checkpoints/tabular/best"),
        &datasets::paths::data_dir().join("minilm"),
        &dev,
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("skipping e2e bench: {e:#} (run `cargo xtask fetch`)");
            return;
        }
    };
    let b = engine.cfg.baseline.clone();
    let seed = engine.cfg.train.seed;
    let mut g = c.benchmark_group("e2e");
    g.sample_size(10);
    for name in SETS {
        let table = datasets::uci::load_builtin(name).expect("built-in table");
        let s = split_and_fit(&table, seed).expect("split");
        let train = Data::from_split(&s.train, &dev).expect("train split");
        let gen = engine.generate(&table, None, Some(name)).expect("generate");
        g.bench_function(format!("generate/{name}"), |bch| {
            bch.iter(|| engine.generate(&table, None, Some(name)).unwrap())
        });
        g.bench_function(format!("finetune/{name}"), |bch| {
            bch.iter(|| {
                let mut rng = StdRng::seed_from_u64(seed);
                let init = engine
                    .mlp
                    .init_params(&gen.metadata, &mut rng, &dev)
                    .unwrap();
                finetune(&engine.mlp, &init, &train, &b, b.epochs, seed).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, e2e);
criterion_main!(benches);
