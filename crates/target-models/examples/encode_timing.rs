//! Times one requirement's embedding (the Iris sentence, ~85 tokens): median of 10 after a
//! warm-up (`ENCODE_ROUNDS=n` for more), for this crate's encoder and for the
//! candle-transformers one it replaced, interleaved so load from other processes hits both
//! alike. Besides wall time it reports on-CPU time (`/proc/thread-self/schedstat`, tick
//! resolution), which time spent waiting for a core leaves out.
//! Run: `RAYON_NUM_THREADS=1 cargo run -p target-models --example encode_timing`.

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use hyper_core::ParamMap;
use target_models::bert::BertModel;
use target_models::lora::LoraConfig;
use target_models::text_encoder::{load_tokenizer, pool_normalize, tokenize};
use target_models::TextEncoder;

const IRIS: &str = "This is a task of 3-class, 4-feature and small-scaled tabular classification \
over 4 numeric features (sepal length (cm) 4.3–7.9, sepal width (cm) 2–4.4, petal length (cm) \
1–6.9, petal width (cm) 0.1–2.5), with roughly balanced classes.";

/// This thread's on-CPU time in ns (Linux), or 0 where unavailable.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (wall, cpu) of one call, in ms.
fn once(f: &mut dyn FnMut()) -> (f64, f64) {
    let (t, c) = (Instant::now(), cpu_ns());
    f();
    (t.elapsed().as_secs_f64() * 1e3, (cpu_ns() - c) as f64 / 1e6)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (v[(n - 1) / 2] + v[n / 2]) / 2.0
}

fn main() -> anyhow::Result<()> {
    let dir = test_support::minilm_dir();
    let dev = Device::Cpu;
    let enc = TextEncoder::load(&dir, &dev)?;
    let tokenizer = load_tokenizer(&dir)?;
    let cfg: candle_transformers::models::bert::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    // SAFETY: read-only mapping of a file nobody writes while this runs.
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &dev)?
    };
    let theirs = candle_transformers::models::bert::BertModel::load(vb, &cfg)?;
    // Ablation: the same BERT with fused ops but weights in their loaded `[out, in]` layout.
    let fused_only = BertModel::load(&dir, LoraConfig::none(), &dev)?.with_fused_inference(true);
    println!(
        "tokens: {}, RAYON_NUM_THREADS={:?}",
        tokenize(&tokenizer, &[IRIS], &dev)?.0.dim(1)?,
        std::env::var("RAYON_NUM_THREADS").ok()
    );

    let mut tok = || {
        tokenize(&tokenizer, &[IRIS], &dev).unwrap();
    };
    let mut ours = || {
        enc.embed(&[IRIS]).unwrap();
    };
    let mut old = || {
        let (ids, mask) = tokenize(&tokenizer, &[IRIS], &dev).unwrap();
        let h = theirs
            .forward(&ids, &ids.zeros_like().unwrap(), Some(&mask))
            .unwrap();
        pool_normalize(&h, &mask).unwrap();
    };
    let mut unprepared = || {
        let (ids, mask) = tokenize(&tokenizer, &[IRIS], &dev).unwrap();
        let h = fused_only
            .encode(&ParamMap::new(), &ids, None, None, false)
            .unwrap();
        pool_normalize(&h, &mask).unwrap();
    };
    let mut runs: [(&str, &mut dyn FnMut()); 4] = [
        ("tokenize only", &mut tok),
        ("target_models::TextEncoder::embed", &mut ours),
        (
            "  the same without BertModel::for_inference's layout",
            &mut unprepared,
        ),
        ("candle-transformers BertModel (old encoder)", &mut old),
    ];
    let mut times = vec![(Vec::new(), Vec::new()); runs.len()];
    // 10 timed rounds by default; `ENCODE_ROUNDS` asks for more on a noisy machine.
    let rounds: usize = std::env::var("ENCODE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for round in 0..=rounds {
        for ((_, f), (wall, cpu)) in runs.iter_mut().zip(&mut times) {
            let (w, c) = once(*f);
            if round > 0 {
                wall.push(w);
                cpu.push(c);
            }
        }
    }
    for ((name, _), (wall, cpu)) in runs.iter().zip(times) {
        let (n, min) = (
            wall.len(),
            wall.iter().copied().fold(f64::INFINITY, f64::min),
        );
        println!(
            "{name}: median {:.2} ms wall (min {min:.2}), {:.2} ms on-CPU, of {n}",
            median(wall),
            median(cpu),
        );
    }
    Ok(())
}
