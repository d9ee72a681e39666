//! Real SmolLM2-135M generation on CPU (needs `cargo xtask fetch`). Kept to a handful of
//! tokens so the file runs in seconds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use llm_prompting::local::{LocalConfig, LocalLlm, StopReason};
use llm_prompting::{ChatBackend, ChatMessage};

fn load(cfg: LocalConfig) -> LocalLlm {
    let p = LocalLlm::default_path();
    assert!(
        p.is_file(),
        "{} missing: run `cargo xtask fetch`",
        p.display()
    );
    LocalLlm::load(&p, cfg).expect("load SmolLM2")
}

#[test]
fn greedy_answer_is_sensible_deterministic_and_bounded() {
    let t0 = Instant::now();
    let llm = load(LocalConfig::default());
    let load_s = t0.elapsed().as_secs_f64();
    let msgs = [ChatMessage::user("What is the capital of France?")];

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
    assert!(!g.tokens.is_empty() && g.tokens.len() <= 12);
    assert!(g.text.contains("Paris"), "{:?}", g.text);
    assert!(matches!(
        g.stop,
        StopReason::EndOfTurn | StopReason::TokenLimit
    ));
    assert_eq!(g.text, llm.tokenizer().decode(&g.tokens, true).unwrap());

    // Greedy is deterministic, and the trait path returns the same text (fresh KV cache).
    let again = llm.chat(&msgs, 12).unwrap();
    assert_eq!(again, g.text);
    assert_eq!(llm.id(), "local:SmolLM2-135M-Instruct.Q4_1");

    // The per-call limit caps the reply.
    let short = llm.generate_chat(&msgs, 2).unwrap();
    assert_eq!(short.tokens.len(), 2);
    assert_eq!(short.stop, StopReason::TokenLimit);
    assert_eq!(short.tokens[..], g.tokens[..2]);
}

#[test]
fn wall_clock_limit_returns_partial_reply() {
    let llm = load(LocalConfig {
        time_limit: Duration::ZERO,
        ..LocalConfig::default()
    });
    let g = llm
        .generate_chat(&[ChatMessage::user("Count from 1 to 100.")], 50)
        .unwrap();
    assert_eq!(g.stop, StopReason::TimeLimit);
    assert_eq!(g.tokens.len(), 1);
}

#[test]
fn config_parses_seconds_and_rejects_bad_values() {
    let cfg: LocalConfig =
        serde_json::from_str(r#"{"time_limit": 1.5, "max_tokens": 40}"#).unwrap();
    assert_eq!(cfg.time_limit, Duration::from_millis(1500));
    assert_eq!(cfg.max_tokens, 40);
    assert_eq!(cfg.temperature, 0.0);
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
    assert!(err.contains("/nonexistent/SmolLM2.gguf") && err.contains("cargo xtask fetch"), "{err}");

    // Metadata intact, tensor data cut short.
    let bytes = std::fs::read(LocalLlm::default_path()).unwrap();
    let cut = std::env::temp_dir().join(format!("hyper-cut-{}.gguf", std::process::id()));
    std::fs::write(&cut, &bytes[..4 << 20]).unwrap();
    let err = LocalLlm::load(&cut, LocalConfig::default()).unwrap_err().to_string();
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
