//! `reproduce text-unseen` end to end on a tiny config (300 SST-2 rows, one seed) with the
//! committed NLP generator's tokenizer and frozen MiniLM: every method gets a score for the
//! task, the checks are computed from them, and the fitted head beats the majority class.

use candle_core::Device;
use hyper_infer::text::TextGenerator;
use hyper_train::text_unseen::{reproduce_text_unseen, TextUnseenConfig};

#[test]
fn tiny_protocol_scores_every_method() {
    let ck = hyper_infer::checkpoint_dir("nlp").join("best");
    let gen = TextGenerator::load(&ck, &datasets::paths::minilm_dir().unwrap(), &Device::Cpu)
        .expect("the committed NLP generator and MiniLM (cargo xtask fetch)");
    let cfg = TextUnseenConfig {
        tasks: vec!["sst2".into()],
        rows: 300,
        seeds: vec![3],
        support_sizes: vec![8],
        finetune_rows: 8,
        adapters: false,
        generators: vec![],
        ..Default::default()
    };
    let r = reproduce_text_unseen(&cfg, &gen, &|_| {}).unwrap();
    let names: Vec<&str> = r.methods.iter().map(|m| m.method.as_str()).collect();
    assert_eq!(
        names,
        [
            "majority",
            "tfidf-lr",
            "frozen-probe",
            "ours",
            "ours-support-8",
            "lora-finetune",
            "modelgpt-f"
        ]
    );
    assert_eq!((r.tasks[0].train_rows, r.tasks[0].test_rows), (180, 90));
    for m in &r.methods {
        let c = &m.per_task[0];
        assert_eq!(c.accuracy.len(), 1, "{}", m.method);
        assert!((0.0..=1.0).contains(&c.mean), "{}: {}", m.method, c.mean);
        assert_eq!(m.average, c.mean);
    }
    let score = |name: &str| r.methods.iter().find(|m| m.method == name).unwrap().average;
    assert!(
        score("ours") > score("majority"),
        "fitted head at {}, majority {}",
        score("ours"),
        score("majority")
    );
    let checks = r.checks();
    assert!(checks[0].starts_with("ours average"), "{checks:?}");
    assert!(checks[1].starts_with("SST-2: ours"), "{checks:?}");
    assert!(r.markdown("cmd", "machine").contains("| ours |"));
    // A regression task is refused with its name.
    let bad = TextUnseenConfig {
        tasks: vec!["stsb".into()],
        ..cfg
    };
    let e = bad.glue_tasks().unwrap_err().to_string();
    assert!(e.contains("stsb") && e.contains("regression"), "{e}");
}
