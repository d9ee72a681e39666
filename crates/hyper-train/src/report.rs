//! The method rows of the LoRA reproductions' tables (`reproduce nlp`, `reproduce cv`):
//! the same order, epoch counts and E2E accounting for both modalities.

use std::collections::BTreeMap;

/// One method's row: its outcome per trained task or domain, the mean of their scores and
/// its end-to-end seconds summed over them.
pub struct MethodRow<O> {
    pub method: String,
    pub epochs: usize,
    pub outcomes: Vec<O>,
    pub mean_score: f64,
    pub e2e_secs: f64,
}

/// How many epochs each method trained: the baselines' budget, ModelGPT-F's epochs from
/// the generated weights, none for the generator-only rows and the majority baseline.
fn epochs_of(method: &str, baseline_epochs: usize, finetune_f_epochs: usize) -> usize {
    match method {
        "LoRA" | "Finetune" => baseline_epochs,
        "ModelGPT-F" => finetune_f_epochs,
        _ => 0,
    }
}

/// The rows named in `order` (those with outcomes), taken out of `rows`. A row that uses
/// the generator (ModelGPT*, the control) also pays its one load, `generator_load_secs`.
pub fn method_rows<'a, O>(
    rows: &mut BTreeMap<&'a str, Vec<O>>,
    order: &[&'a str],
    (baseline_epochs, finetune_f_epochs): (usize, usize),
    generator_load_secs: f64,
    score: impl Fn(&O) -> f64,
    e2e_secs: impl Fn(&O) -> f64,
) -> Vec<MethodRow<O>> {
    order
        .iter()
        .filter_map(|m| rows.remove(m).map(|v| (*m, v)))
        .map(|(m, outcomes)| {
            let uses_gen = m.starts_with("ModelGPT") || m.starts_with("Control");
            let e2e = outcomes.iter().map(&e2e_secs).sum::<f64>()
                + if uses_gen { generator_load_secs } else { 0.0 };
            MethodRow {
                method: m.to_string(),
                epochs: epochs_of(m, baseline_epochs, finetune_f_epochs),
                mean_score: outcomes.iter().map(&score).sum::<f64>() / outcomes.len().max(1) as f64,
                outcomes,
                e2e_secs: e2e,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_order_and_only_generator_rows_pay_its_load() {
        let mut rows: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        rows.insert("ModelGPT-F", vec![(0.5, 2.0), (0.7, 3.0)]);
        rows.insert("LoRA", vec![(0.4, 10.0), (0.6, 10.0)]);
        rows.insert("Control (wrong requirement)", vec![(0.1, 1.0)]);
        let got = method_rows(
            &mut rows,
            &[
                "LoRA",
                "Finetune",
                "ModelGPT-F",
                "Control (wrong requirement)",
            ],
            (3, 1),
            0.25,
            |o| o.0,
            |o| o.1,
        );
        let summary: Vec<(&str, usize, f64, f64)> = got
            .iter()
            .map(|r| (r.method.as_str(), r.epochs, r.mean_score, r.e2e_secs))
            .collect();
        assert_eq!(
            summary,
            [
                ("LoRA", 3, 0.5, 20.0),
                ("ModelGPT-F", 1, 0.6, 5.25),
                ("Control (wrong requirement)", 0, 0.1, 1.25),
            ]
        );
        assert!(rows.is_empty());
    }
}
