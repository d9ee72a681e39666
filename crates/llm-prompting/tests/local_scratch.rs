use llm_prompting::local::{LocalConfig, LocalLlm};
use llm_prompting::ChatMessage;
#[test]
#[ignore]
fn scratch() {
    let llm = LocalLlm::load(&LocalLlm::default_path(), LocalConfig::default()).unwrap();
    let t = llm.tokenizer();
    let ids = t.encode_chat([("user", "What is the capital of France?")], true).unwrap();
    println!("ids {ids:?}");
    let lg = llm.next_token_logits(&ids).unwrap();
    let mut idx: Vec<usize> = (0..lg.len()).collect();
    idx.sort_by(|&a, &b| lg[b].partial_cmp(&lg[a]).unwrap());
    for &i in &idx[..5] { println!("{i} {:?} {}", t.id_to_token(i as u32), lg[i]); }
    for q in std::env::var("Q").unwrap_or_default().split('|').filter(|s| !s.is_empty()) {
        let g = llm.generate_chat(&[ChatMessage::user(q)], 200).unwrap();
        println!("Q {q}\nprompt {} tok {:.2}s, {} new tok, total {:.2}s, {:.1} tok/s, {:?}\n{}", g.prompt_tokens, g.prompt_secs, g.tokens.len(), g.total_secs, g.tokens_per_sec(), g.stop, g.text);
    }
}
