//! The `profile` backend on every built-in tabular dataset: each gets its own numbers in
//! both the sentence and the metadata.

use std::collections::HashSet;

use llm_prompting::{
    requirements, ModelGenerator, ProfileBackend, RequirementGenerator, TaskInput,
};

/// (name, #input features, #classes, scale) from the datasets' documentation.
const EXPECTED: &[(&str, usize, usize, &str)] = &[
    ("iris", 4, 3, "small"),
    ("wine", 13, 3, "small"),
    ("breast_cancer", 30, 2, "small"),
    ("heart_disease", 13, 2, "small"),
    ("adult", 14, 2, "medium"),
    ("car_evaluation", 6, 4, "medium"),
    ("wine_quality", 11, 7, "medium"),
    ("dry_bean", 16, 7, "medium"),
    ("rice", 7, 2, "medium"),
    ("bank_marketing", 16, 2, "medium"),
];

#[test]
fn every_builtin_gets_its_own_numbers() {
    assert_eq!(EXPECTED.len(), datasets::uci::BUILTIN.len());
    let mut sentences = HashSet::new();
    for &(name, f, k, scale) in EXPECTED {
        let table = datasets::uci::load_builtin(name).unwrap();
        let input = TaskInput::from_table(&table, None).unwrap();
        let r = ProfileBackend.requirement(&input).unwrap();
        let m = ProfileBackend.metadata(&r, &input).unwrap();
        assert_eq!(
            (m.task.as_str(), m.in_dim, m.out_dim),
            ("tabular_cls", Some(f), k),
            "{name}"
        );
        assert_eq!(m.scale, scale, "{name}");
        let arch = if scale == "small" {
            "mlp_small"
        } else {
            "mlp_base"
        };
        assert_eq!(m.arch, arch, "{name}");
        let head = format!("This is a task of {k}-class, {f}-feature and {scale}-scaled tabular classification over ");
        assert!(r.starts_with(&head), "{name}: {r}");
        // The sentence describes inputs, never the label values.
        for c in &table.class_names {
            if c.len() > 3 {
                assert!(
                    !r.contains(c.as_str()),
                    "{name}: class `{c}` leaked into: {r}"
                );
            }
        }
        assert!(sentences.insert(r));
        let v = requirements(&input.profile, 5, 2024);
        assert_eq!(v.len(), 5, "{name}");
        assert_eq!(v.iter().collect::<HashSet<_>>().len(), 5, "{name}");
        for s in &v {
            assert!(
                s.contains(&k.to_string()) && s.contains(&f.to_string()) && s.contains(scale),
                "{name}: {s}"
            );
        }
    }
}

#[test]
fn iris_sentence_is_exact_and_deterministic() {
    let table = datasets::uci::load_builtin("iris").unwrap();
    let a = TaskInput::from_table(&table, None).unwrap();
    let b = TaskInput::from_table(&table, Some("Measurements of iris flowers.")).unwrap();
    let r = ProfileBackend.requirement(&a).unwrap();
    assert_eq!(r, ProfileBackend.requirement(&b).unwrap());
    assert!(r.starts_with("This is a task of 3-class, 4-feature and small-scaled tabular classification over 4 numeric features"), "{r}");
    // Hand-checked Iris ranges: sepal length 4.3–7.9, petal width 0.1–2.5; 50 rows per class.
    assert!(
        r.contains("4.3–7.9") && r.contains("0.1–2.5") && r.contains("roughly balanced"),
        "{r}"
    );
    assert_eq!(a.profile.class_counts, vec![50, 50, 50]);
    assert_eq!(
        requirements(&a.profile, 5, 1),
        requirements(&b.profile, 5, 1)
    );
}
