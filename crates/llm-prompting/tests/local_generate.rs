//! Real SmolLM2-135M generation on CPU (needs `cargo xtask fetch`). Kept to a handful of
//! tokens so the file runs in seconds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use llm_prompting::local::{LocalConfig, LocalLlm, StopReason, WeightFormat};
use llm_prompting::{ChatBackend, ChatMessage};

fn load(cfg: LocalConfig) -> LocalLlm {
    let p = test_support::fetched(LocalLlm::default_path());
    LocalLlm::load(&p, cfg).expect("load SmolLM2")
}

/// Logits after the ChatML prompt "What is the capital of France?", top 5 of an
/// independent numpy forward pass (llama with interleaved RoPE, GQA, SwiGLU, tied
/// embeddings) over the weights dequantized by the `gguf` Python package, in f32.
const REF_TOP5: [(u32, f32); 5] = [
    (504, 25.3254),   // "The"
    (60, 25.2433),    // "L"
    (15319, 24.9424), // "La"
    (2219, 24.4017),  // "Al"
    (7026, 24.3146),  // "Le"
];

#[test]
fn greedy_answer_matches_reference_is_deterministic_and_bounded() {
    let t0 = Instant::now();
    let llm = load(LocalConfig::default());
    let load_s = t0.elapsed().as_secs_f64();
    let msgs = [ChatMessage::user("What is the capital of France?")];

    let prompt = llm
        .tokenizer()
        .encode_chat(
            msgs.iter().map(|m| (m.role.as_str(), m.content.as_str())),
            true,
        )
        .unwrap();
    assert_eq!(prompt.len(), 37);
    let logits = llm.next_token_logits(&prompt).unwrap();
    assert_eq!(logits.len(), 49152);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    for (rank, (id, want)) in REF_TOP5.iter().enumerate() {
        assert_eq!(order[rank], *id as usize, "rank {rank}");
        assert!(
            (logits[*id as usize] - want).abs() < 1e-2,
            "{id}: {}",
            logits[*id as usize]
        );
    }

    let g = llm.generate_chat(&msgs, 12).unwrap();
    eprintln!(
        "load {load_s:.2}s; prompt {} tok in {:.2}s; {} new tok in {:.2}s total ({:.1} tok/s): {:?}",
        g.prompt_tokens,
        g.prompt_secs,
        g.tokens.len(),
        g.total_secs,
        g.tokens_per_sec(),
        g.text
    );
    assert_eq!(g.text, "The capital of France is Paris.");
    assert_eq!(g.stop, StopReason::EndOfTurn);
    assert_eq!(g.tokens[0], 504);
    assert_eq!(g.text, llm.tokenizer().decode(&g.tokens, true).unwrap());

    // Greedy is deterministic, and the trait path returns the same text (fresh KV cache).
    assert_eq!(llm.chat(&msgs, 12).unwrap(), g.text);
    assert_eq!(llm.id(), "local:SmolLM2-135M-Instruct.Q4_1");

    // A follow-up turn continues the cached sequence (prompt + reply; the stop token was
    // sampled, never fed) and
    // only processes its new tokens; a cold start gives the same answer.
    let mut follow = msgs.to_vec();
    follow.push(ChatMessage::assistant(&g.text));
    follow.push(ChatMessage::user("And of Germany?"));
    let warm = llm.generate_chat(&follow, 12).unwrap();
    assert_eq!(warm.reused_tokens, prompt.len() + g.tokens.len());
    llm.next_token_logits(&prompt).unwrap(); // leaves no reusable prefix behind
    let cold = llm.generate_chat(&follow, 12).unwrap();
    assert_eq!(cold.reused_tokens, 0);
    assert_eq!(warm.tokens, cold.tokens);
    assert!(cold.text.contains("Berlin"), "{:?}", cold.text);

    // The per-call limit caps the reply.
    let short = llm.generate_chat(&msgs, 2).unwrap();
    assert_eq!(short.tokens[..], g.tokens[..2]);
    assert_eq!(short.stop, StopReason::TokenLimit);
}

#[test]
fn wall_clock_limit_returns_partial_reply() {
    // Native Q4_1 loads fastest; a 3-token raw prompt keeps the forward pass short.
    let llm = load(LocalConfig {
        time_limit: Duration::ZERO,
        weights: WeightFormat::Native,
        ..LocalConfig::default()
    });
    assert_eq!(llm.id(), "local:SmolLM2-135M-Instruct.Q4_1:native");
    let prompt = llm.tokenizer().encode("Once upon a").unwrap();
    assert_eq!(prompt.len(), 3);
    let g = llm.generate(&prompt, 50).unwrap();
    assert_eq!(g.stop, StopReason::TimeLimit);
    assert_eq!(g.tokens.len(), 1);
    assert!(!g.text.is_empty());
}

#[test]
fn config_parses_seconds_and_rejects_bad_values() {
    let cfg: LocalConfig =
        serde_json::from_str(r#"{"time_limit": 1.5, "max_tokens": 40}"#).unwrap();
    assert_eq!(cfg.time_limit, Duration::from_millis(1500));
    assert_eq!(cfg.max_tokens, 40);
    assert_eq!(cfg.temperature, 0.0);
    assert_eq!(cfg.weights, WeightFormat::F32);
    let cfg8: LocalConfig = serde_json::from_str(r#"{"weights": "q8_0"}"#).unwrap();
    assert_eq!(cfg8.weights, WeightFormat::Q8_0);
    let back: LocalConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let err = serde_json::from_str::<LocalConfig>(r#"{"time_limit": -1}"#).unwrap_err();
    assert!(err.to_string().contains("time_limit"), "{err}");
    assert!(serde_json::from_str::<LocalConfig>(r#"{"max_token": 3}"#).is_err());
}

#[test]
fn missing_or_truncated_gguf_names_the_path_and_the_fix() {
    let missing = PathBuf::from("/nonexistent/SmolLM2.gguf");
    let err = LocalLlm::load(&missing, LocalConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/SmolLM2.gguf") && err.contains("cargo xtask fetch"),
        "{err}"
    );

    // Metadata intact, tensor data cut short.
    let cut = std::env::temp_dir().join(format!("hyper-cut-{}.gguf", std::process::id()));
    let src = std::fs::File::open(LocalLlm::default_path()).unwrap();
    let mut dst = std::fs::File::create(&cut).unwrap();
    std::io::copy(&mut std::io::Read::take(src, 4 << 20), &mut dst).unwrap();
    drop(dst);
    let err = LocalLlm::load(&cut, LocalConfig::default())
        .unwrap_err()
        .to_string();
    std::fs::remove_file(&cut).ok();
    assert!(err.contains(&cut.display().to_string()), "{err}");
    assert!(err.contains("cargo xtask fetch"), "{err}");

    let err = LocalLlm::load(
        &LocalLlm::default_path(),
        LocalConfig {
            max_tokens: 0,
            ..LocalConfig::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_tokens"), "{err}");
}
