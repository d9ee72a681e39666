use llm_prompting::local::{LocalConfig, LocalLlm};
use llm_prompting::ChatMessage;
#[test]
#[ignore]
fn scratch() {
    let t0 = std::time::Instant::now();
    let rp: f32 = std::env::var("RP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let dq: llm_prompting::local::WeightFormat = serde_json::from_str(&format!(
        "\"{}\"",
        std::env::var("DQ").unwrap_or("f32".into())
    ))
    .unwrap();
    let llm = LocalLlm::load(
        &LocalLlm::default_path(),
        LocalConfig {
            repeat_penalty: rp,
            weights: dq,
            ..LocalConfig::default()
        },
    )
    .unwrap();
    println!("load {:.2}s", t0.elapsed().as_secs_f64());
    let t = llm.tokenizer();
    let ids = t
        .encode_chat([("user", "What is the capital of France?")], true)
        .unwrap();
    println!("ids {ids:?}");
    let lg = llm.next_token_logits(&ids).unwrap();
    let mut idx: Vec<usize> = (0..lg.len()).collect();
    idx.sort_by(|&a, &b| lg[b].partial_cmp(&lg[a]).unwrap());
    for &i in &idx[..5] {
        println!("{i} {:?} {}", t.id_to_token(i as u32), lg[i]);
    }
    for q in std::env::var("Q")
        .unwrap_or_default()
        .split('|')
        .filter(|s| !s.is_empty())
    {
        let g = llm.generate_chat(&[ChatMessage::user(q)], 200).unwrap();
        println!(
            "Q {q}\nprompt {} tok {:.2}s, {} new tok, total {:.2}s, {:.1} tok/s, {:?}\n{}",
            g.prompt_tokens,
            g.prompt_secs,
            g.tokens.len(),
            g.total_secs,
            g.tokens_per_sec(),
            g.stop,
            g.text
        );
    }
}

struct Timed<'a>(&'a LocalLlm);
impl llm_prompting::ChatBackend for Timed<'_> {
    fn chat(&self, m: &[ChatMessage], n: usize) -> anyhow::Result<String> {
        let g = self.0.generate_chat(m, n)?;
        println!(
            "call: prompt {} tok {:.2}s, {} new tok, total {:.2}s, {:.1} tok/s, {:?}\n  => {:?}",
            g.prompt_tokens,
            g.prompt_secs,
            g.tokens.len(),
            g.total_secs,
            g.tokens_per_sec(),
            g.stop,
            g.text
        );
        Ok(g.text)
    }
    fn id(&self) -> String {
        llm_prompting::ChatBackend::id(self.0)
    }
}

#[test]
#[ignore]
fn scratch_iris() {
    use llm_prompting::{LlmGenerator, ModelGenerator, RequirementGenerator, TaskInput};
    let t0 = std::time::Instant::now();
    let rp: f32 = std::env::var("RP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let llm = LocalLlm::load(
        &LocalLlm::default_path(),
        LocalConfig {
            repeat_penalty: rp,
            ..LocalConfig::default()
        },
    )
    .unwrap();
    println!("load {:.2}s", t0.elapsed().as_secs_f64());
    let table = datasets::uci::load_builtin("iris").unwrap();
    let input = TaskInput::from_table(&table, None)
        .unwrap()
        .with_samples(llm_prompting::generator::sample_rows(&table, 3));
    let gen = LlmGenerator::new(Timed(&llm)).unwrap();
    let req = gen.requirement(&input);
    println!(
        "requirement {:?} at {:.2}s",
        req,
        t0.elapsed().as_secs_f64()
    );
    if let Ok(r) = req {
        let m = gen.metadata(&r, &input);
        println!(
            "metadata {:?} at {:.2}s",
            m.map(|m| serde_json::to_string(&m).unwrap()),
            t0.elapsed().as_secs_f64()
        );
    }
}
