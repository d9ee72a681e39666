//! Issue acceptance: `--backend local` gives a requirement and a schema-valid metadata
//! JSON for Iris within 60 s on 2 cores. Ignored by default (~20-40 s of CPU); run with
//! `cargo nextest run -p llm-prompting --run-ignored only -E 'binary(local_iris)' --no-capture`.

use std::time::Instant;

use llm_prompting::generator::sample_rows;
use llm_prompting::local::{LocalConfig, LocalLlm};
use llm_prompting::{
    ChatBackend, ChatMessage, LlmGenerator, ModelGenerator, RequirementGenerator, TaskInput,
};

/// Logs each call's token counts and timings.
struct Timed<'a>(&'a LocalLlm);

impl ChatBackend for Timed<'_> {
    fn chat(&self, messages: &[ChatMessage], max_tokens: usize) -> anyhow::Result<String> {
        let g = self.0.generate_chat(messages, max_tokens)?;
        eprintln!(
            "prompt {} tok ({} reused) in {:.2}s; {} new tok, {:.2}s total, {:.1} tok/s, {:?}: {:?}",
            g.prompt_tokens,
            g.reused_tokens,
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
        self.0.id()
    }
}

#[test]
#[ignore]
fn iris_requirement_and_metadata_within_60s() {
    let t0 = Instant::now();
    let llm = LocalLlm::load(&LocalLlm::default_path(), LocalConfig::default()).unwrap();
    eprintln!("load {:.2}s", t0.elapsed().as_secs_f64());
    let table = datasets::uci::load_builtin("iris").unwrap();
    let input = TaskInput::from_table(&table, None)
        .unwrap()
        .with_samples(sample_rows(&table, 3));
    let gen = LlmGenerator::new(Timed(&llm)).unwrap();
    let requirement = gen.requirement(&input).unwrap();
    eprintln!(
        "requirement at {:.2}s: {requirement}",
        t0.elapsed().as_secs_f64()
    );
    let metadata = gen.metadata(&requirement, &input);
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("metadata at {secs:.2}s: {metadata:?}");
    let m = metadata.unwrap();
    assert_eq!(m.task, "tabular_cls");
    assert_eq!((m.in_dim, m.out_dim), (Some(4), 3));
    assert!(secs < 60.0, "{secs:.1}s");
}
