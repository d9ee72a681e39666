//! The tokenizer rebuilt from SmolLM2's GGUF metadata (needs `cargo xtask fetch`).

use std::path::PathBuf;

use candle_core::quantized::gguf_file::Content;
use llm_prompting::local::{GgufTokenizer, LocalLlm};

fn gguf() -> PathBuf {
    test_support::fetched(LocalLlm::default_path())
}

fn tok() -> GgufTokenizer {
    GgufTokenizer::from_gguf_file(&gguf()).expect("tokenizer from GGUF")
}

#[test]
fn round_trips_ascii_accents_emoji_digits() {
    let t = tok();
    for text in [
        "Hello, world! The Iris dataset has 150 rows.",
        "café naïve",
        "I feel 🙂 today",
        "2024 3.14",
        "  two  spaces\nnewline\ttab",
        "中文 and ελληνικά",
    ] {
        let ids = t.encode(text).unwrap();
        assert!(!ids.is_empty(), "{text:?} encoded to nothing");
        assert_eq!(t.decode(&ids, false).unwrap(), text, "ids {ids:?}");
        let plain = t.encode_plain(text).unwrap();
        assert_eq!(plain, ids, "{text:?}: no special tokens, both paths agree");
    }
}

/// Ids read off the GGUF vocabulary (`tokenizer.ggml.tokens[0..3]`, all CONTROL = 3).
const ENDOFTEXT: u32 = 0;
const IM_START: u32 = 1;
const IM_END: u32 = 2;

#[test]
fn chatml_special_tokens_encode_to_their_gguf_ids() {
    let path = gguf();
    let ct = Content::read(&mut std::fs::File::open(&path).unwrap()).unwrap();
    let tokens = ct.metadata["tokenizer.ggml.tokens"].to_vec().unwrap();
    let types = ct.metadata["tokenizer.ggml.token_type"].to_vec().unwrap();
    let t = GgufTokenizer::from_gguf(&ct, &path).unwrap();
    assert_eq!(t.vocab_size(), tokens.len());
    assert_eq!(tokens.len(), 49152);
    for (name, id) in [
        ("<|endoftext|>", ENDOFTEXT),
        ("<|im_start|>", IM_START),
        ("<|im_end|>", IM_END),
    ] {
        assert_eq!(tokens[id as usize].to_string().unwrap(), name);
        assert_eq!(types[id as usize].to_i32().unwrap(), 3, "{name} is CONTROL");
        assert_eq!(t.encode(name).unwrap(), vec![id], "{name}");
        assert_eq!(t.token_to_id(name), Some(id));
        // As plain text the marker is several ordinary tokens, so content cannot forge turns.
        let plain = t.encode_plain(name).unwrap();
        assert!(plain.len() > 1 && !plain.contains(&id), "{name}: {plain:?}");
        assert_eq!(t.decode(&plain, true).unwrap(), name);
    }
    assert_eq!(t.im_start_id(), IM_START);
    assert_eq!(t.im_end_id(), IM_END);
    assert_eq!(t.bos_id(), Some(1));
    assert_eq!(t.eos_id(), 2);
    assert_eq!(t.stop_ids(), &[ENDOFTEXT, IM_END]);
    // Inside text the special tokens are cut out as single ids.
    let ids = t.encode("<|im_start|>user\nHi<|im_end|>").unwrap();
    assert_eq!(ids.first(), Some(&IM_START));
    assert_eq!(ids.last(), Some(&IM_END));
    assert_eq!(ids.iter().filter(|&&i| i < 17).count(), 2);
    assert_eq!(t.decode(&ids, true).unwrap(), "user\nHi");
}

/// Expected ids come from an independent Python reference (not HF `tokenizers`): the
/// textbook GPT-2 byte-level BPE (`bytes_to_unicode` + rank-ordered merges, as in OpenAI's
/// `encoder.py`) over vocab/merges read with the `gguf` package, after llama.cpp's
/// `smollm` pre-tokenizer (split every `\p{N}`, then the GPT-2 regex). transformers' own
/// GGUF loader needs torch, which is not installable quickly here.
#[test]
fn known_strings_encode_to_reference_ids() {
    let t = tok();
    let cases: [(&str, &[u32]); 6] = [
        ("Hello world", &[19556, 905]),
        ("café naïve", &[83, 1939, 2756, 15486, 46494]),
        ("I feel 🙂 today", &[57, 1407, 47526, 1834]),
        // Digits are split one by one (`smollm` pre-tokenizer); 216 is a lone "Ġ".
        ("2024 3.14", &[34, 32, 34, 36, 216, 35, 30, 33, 36]),
        (
            "The Iris dataset has 150 rows.",
            &[504, 44283, 7747, 553, 216, 33, 37, 32, 10055, 30],
        ),
        ("  two  spaces\nnewline", &[216, 827, 216, 5600, 198, 28160]),
    ];
    for (text, want) in cases {
        assert_eq!(t.encode(text).unwrap(), want, "{text:?}");
    }
}

#[test]
fn chat_template_matches_the_gguf_chatml() {
    let t = tok();
    let sys = t
        .default_system()
        .expect("SmolLM2 template has a default system turn");
    assert_eq!(
        sys,
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    );
    assert!(t.chat_template().unwrap().contains("<|im_start|>"));

    let msgs = [("system", "Be brief."), ("user", "Name 3 flowers.")];
    let text = t.render_chat(msgs, true);
    assert_eq!(
        text,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nName 3 flowers.<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = t.encode_chat(msgs, true).unwrap();
    assert_eq!(ids, t.encode(&text).unwrap());
    assert_eq!(ids.iter().filter(|&&i| i == IM_START).count(), 3);
    assert_eq!(ids.iter().filter(|&&i| i == IM_END).count(), 2);

    // No system turn: the template's default one is inserted first.
    let ids = t.encode_chat([("user", "Hi")], false).unwrap();
    let want = format!("<|im_start|>system\n{sys}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    assert_eq!(ids, t.encode(&want).unwrap());

    // A message that spells a turn marker stays text.
    let ids = t.encode_chat([("user", "x<|im_end|>y")], true).unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == IM_END).count(), 2);
}

#[test]
fn missing_and_corrupt_gguf_give_clear_errors() {
    let missing = PathBuf::from("/nonexistent/dir/model.gguf");
    let err = GgufTokenizer::from_gguf_file(&missing).unwrap_err();
    assert!(
        format!("{err:#}").contains("/nonexistent/dir/model.gguf"),
        "{err:#}"
    );

    let bad = std::env::temp_dir().join(format!("hyper-bad-{}.gguf", std::process::id()));
    std::fs::write(&bad, b"GGUF this is not a real gguf file").unwrap();
    let err = GgufTokenizer::from_gguf_file(&bad).unwrap_err().to_string();
    std::fs::remove_file(&bad).ok();
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(err.contains("cargo xtask fetch"), "{err}");
}
