//! The requirement encoder on real all-MiniLM-L6-v2 weights: padding invariance, semantics,
//! parity with the candle-transformers implementation it replaced, and tuned-weight loading.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use hyper_core::layers::cosine;
use target_models::text_encoder::{load_tokenizer, pool_normalize, tokenize};
use target_models::TextEncoder;
use test_support::{max_abs_diff, minilm_dir};

const IRIS: &str = "This is a task of 3-class, 4-feature and small-scaled tabular classification \
over 4 numeric features (sepal length (cm) 4.3–7.9, sepal width (cm) 2–4.4, petal length (cm) \
1–6.9, petal width (cm) 0.1–2.5), with roughly balanced classes.";

/// Padding must not change an embedding; similar sentences are closer than unrelated.
#[test]
fn padding_invariant_and_semantic() {
    let enc = TextEncoder::load(&minilm_dir(), &Device::Cpu).unwrap();
    assert_eq!(enc.dim, 384);
    let a = "Classify iris flowers into three species from four petal and sepal measurements.";
    let b = "Predict the species of an iris flower from its sepal and petal sizes.";
    let c = "Decide whether a bank client subscribes to a term deposit.";
    let solo = enc.embed_one(a).unwrap();
    let batch = enc
        .embed(&[a, "x", c, b])
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (x, y) in solo.iter().zip(&batch[0]) {
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
    let n: f32 = solo.iter().map(|x| x * x).sum();
    assert!((n - 1.0).abs() < 1e-4);
    assert!(cosine(&batch[0], &batch[3]) > cosine(&batch[0], &batch[2]) + 0.1);
    assert_eq!(enc.embed(&[]).unwrap().dims(), &[0, 384]);
}

/// The embedding equals what the replaced encoder computed: candle-transformers' BERT,
/// mean pooling over real tokens, L2 normalisation.
#[test]
fn matches_candle_transformers_embedding() {
    let dir = minilm_dir();
    let dev = Device::Cpu;
    let enc = TextEncoder::load(&dir, &dev).unwrap();
    let cfg: candle_transformers::models::bert::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    // SAFETY: read-only mapping of a file nobody writes during the test.
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &dev)
            .unwrap()
    };
    let theirs = candle_transformers::models::bert::BertModel::load(vb, &cfg).unwrap();
    let tokenizer = load_tokenizer(&dir).unwrap();
    let reference = |texts: &[&str]| -> Tensor {
        let (ids, mask) = tokenize(&tokenizer, texts, &dev).unwrap();
        let h = theirs
            .forward(&ids, &ids.zeros_like().unwrap(), Some(&mask))
            .unwrap();
        pool_normalize(&h, &mask).unwrap()
    };
    let batch = [
        IRIS,
        "A man is eating food.",
        "Decide whether a client churns.",
    ];
    for texts in [&batch[..1], &batch[..]] {
        let d = max_abs_diff(&enc.embed(texts).unwrap(), &reference(texts));
        eprintln!(
            "{} sentence(s): max |diff| vs candle-transformers {d}",
            texts.len()
        );
        assert!(d <= 1e-4, "embeddings differ by {d}");
    }
}

/// Tuned weights as a checkpoint stores them (bare Hugging Face names, no pooler) load and
/// give the same embedding as the same weights from disk.
#[test]
fn load_with_weights_without_pooler() {
    let dir = minilm_dir();
    let dev = Device::Cpu;
    let mut w = candle_core::safetensors::load(dir.join("model.safetensors"), &dev).unwrap();
    assert!(w.remove("pooler.dense.weight").is_some());
    w.remove("pooler.dense.bias");
    let tuned = TextEncoder::load_with_weights(&dir, Some(w), &dev).unwrap();
    let stock = TextEncoder::load(&dir, &dev).unwrap();
    let d = max_abs_diff(
        &tuned.embed(&[IRIS]).unwrap(),
        &stock.embed(&[IRIS]).unwrap(),
    );
    assert!(d == 0.0, "differ by {d}");
}
