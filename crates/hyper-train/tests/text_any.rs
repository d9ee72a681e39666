//! The data-conditioned text generator on a tiny BERT: its inputs (support embedding and
//! class means) and every tensor it generates ignore row order, relabelling the classes
//! permutes the head's rows and leaves the LoRA factors alone, and Algorithm 1 reaches
//! every generator tensor through derived tasks.

use candle_core::{Device, Tensor};
use datasets::glue::Label;
use hyper_core::lora_generator::{LoraGenerator, LoraGeneratorConfig};
use hyper_core::ParamMap;
use hyper_infer::text::{Encoded, NlpArchitecture, NlpLoraConfig, TEXT_ANY_CHECKPOINT_KIND};
use hyper_infer::text_any::TextAnyGenerator;
use hyper_infer::text_head;
use hyper_train::config::MetaGrad;
use hyper_train::lora_meta::LoraMetaTrainer;
use hyper_train::nlp::TextSet;
use hyper_train::text_any::{DerivedTask, TextAnyConfig, TextAnyTasks};
use target_models::bert::Pooling;
use test_support::bert::tiny_bert;
use test_support::{assert_grads_nonzero_in_some, max_abs_diff};

fn tiny_cfg() -> TextAnyConfig {
    let mut c = TextAnyConfig {
        architecture: NlpArchitecture {
            lora: NlpLoraConfig {
                r: 2,
                alpha: 4.0,
                dropout: 0.0,
                target_modules: vec!["query".into(), "value".into()],
            },
            generator: LoraGeneratorConfig {
                embed_dim: 8,
                hidden_dim: 16,
                latent_dim: 8,
                slot_dim: 4,
                trunk_dim: 8,
                head_dim: 8,
                dropout: 0.0,
                center_labels: true,
                ..Default::default()
            },
            max_len: 16,
        },
        ..Default::default()
    };
    c.train.meta_grad = MetaGrad::Direct;
    c.train.batch_size = 6;
    c
}

fn tiny_generator(dir: &std::path::Path) -> TextAnyGenerator {
    let cfg = tiny_cfg();
    let base = tiny_bert(dir, cfg.architecture.lora.lora_config()).with_pooling(Pooling::Mean);
    let generator = LoraGenerator::new(
        cfg.architecture.generator.clone(),
        base.lora_target(),
        7,
        &Device::Cpu,
    )
    .unwrap();
    TextAnyGenerator {
        architecture: cfg.architecture,
        checkpoint: dir.join("gen"),
        generator,
        base,
        sources: vec![],
    }
}

/// 30 rows of 8 features in 3 classes.
fn support() -> (Vec<Vec<f32>>, Vec<usize>) {
    let x = (0..30)
        .map(|i| {
            (0..8)
                .map(|j| ((i * 7 + j * 3) as f32 * 0.37).sin() + (i % 3 == j % 3) as u8 as f32)
                .collect()
        })
        .collect();
    (x, (0..30).map(|i| i % 3).collect())
}

fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
    let d = max_abs_diff(a, b);
    assert!(d < 1e-5, "{what}: max difference {d}");
}

#[test]
fn generated_tensors_ignore_row_order_and_follow_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let g = tiny_generator(dir.path());
    let (x, y) = support();
    let a = g.generate(&x, &y, 3).unwrap();
    let order: Vec<usize> = (0..30).map(|i| (i * 7) % 30).collect();
    let px: Vec<Vec<f32>> = order.iter().map(|&i| x[i].clone()).collect();
    let py: Vec<usize> = order.iter().map(|&i| y[i]).collect();
    let b = g.generate(&px, &py, 3).unwrap();
    assert_eq!(a.len(), b.len());
    for (k, t) in a.iter() {
        assert_close(t, b.get(k).unwrap(), k);
    }
    // Class c becomes class perm[c]: head rows move with it, LoRA factors stay.
    let perm = [2usize, 0, 1];
    let ry: Vec<usize> = y.iter().map(|&c| perm[c]).collect();
    let r = g.generate(&x, &ry, 3).unwrap();
    for (k, t) in a.iter() {
        if k.starts_with("classifier.") {
            for (c, &pc) in perm.iter().enumerate() {
                let (ta, tr) = (t.get(c).unwrap(), r.get(k).unwrap().get(pc).unwrap());
                assert_close(&ta, &tr, k);
            }
        } else {
            assert_close(t, r.get(k).unwrap(), k);
        }
    }
    assert_eq!(
        a.get("classifier.weight").unwrap().dims(),
        &[3, g.base.config().hidden_size]
    );
}

#[test]
fn support_embedding_reads_class_means_only() {
    let (x, y) = support();
    let e = text_head::support_embedding(&x, &y, 3);
    let n: f32 = e.iter().map(|v| v * v).sum();
    assert!((n - 1.0).abs() < 1e-5, "unit length, got {n}");
    let rev: Vec<Vec<f32>> = x.iter().rev().cloned().collect();
    let ry: Vec<usize> = y.iter().rev().map(|&c| (c + 1) % 3).collect();
    let e2 = text_head::support_embedding(&rev, &ry, 3);
    for (a, b) in e.iter().zip(&e2) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // Class means: class 0's rows are 0, 3, 6, …, 27.
    let m = text_head::class_means(&x, &y, 3);
    let want: f32 = (0..10).map(|k| x[3 * k][1]).sum::<f32>() / 10.0;
    assert!((m[0][1] - want).abs() < 1e-5);
}

fn derived(classes: usize, seed: u32) -> DerivedTask {
    let set = |n: u32| TextSet {
        examples: (0..n)
            .map(|i| {
                let ids: Vec<u32> = (0..6).map(|k| 1 + (i * 13 + k * 5 + seed) % 49).collect();
                Encoded {
                    types: vec![0; ids.len()],
                    ids,
                }
            })
            .collect(),
        labels: (0..n).map(|i| Label::Class(i as usize % classes)).collect(),
    };
    DerivedTask {
        name: format!("t{classes}"),
        classes,
        train: set(18),
        val: set(6),
    }
}

#[test]
fn every_generator_tensor_gets_a_gradient_through_derived_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg();
    let base =
        tiny_bert(dir.path(), cfg.architecture.lora.lora_config()).with_pooling(Pooling::Mean);
    let target = base.lora_target();
    let (x, y) = support();
    let cond = |classes: usize| -> (Vec<Tensor>, Tensor) {
        let y: Vec<usize> = y.iter().map(|&c| c % classes).collect();
        let e = text_head::support_embedding(&x, &y, classes);
        let m: Vec<f32> = text_head::class_means(&x, &y, classes).concat();
        (
            vec![Tensor::from_vec(e, 8, &Device::Cpu).unwrap()],
            Tensor::from_vec(m, (classes, 8), &Device::Cpu).unwrap(),
        )
    };
    let ((e3, m3), (e2, m2)) = (cond(3), cond(2));
    let mut tr = LoraMetaTrainer::new(
        cfg,
        TextAnyTasks {
            model: base,
            tasks: vec![derived(3, 1), derived(2, 2)],
        },
        target,
        TEXT_ANY_CHECKPOINT_KIND,
        vec![e3, e2],
        vec![m3, m2],
        &Device::Cpu,
    )
    .unwrap();
    let runs: Vec<Vec<Option<Tensor>>> = (0..2)
        .map(|ti| {
            let (loss, grads) = tr.meta_gradients(ti, 0, &[0, 1, 2, 3, 4, 5]).unwrap();
            assert!(loss.is_finite(), "loss {loss}");
            grads.unwrap()
        })
        .collect();
    // With `center_labels`, the generated biases are centred over the classes, which
    // cancels the bias generator's own constant term: `head.bias.bias` has a zero
    // gradient by construction (exactly zero or rounding noise), so it is left out.
    let (names, runs): (Vec<&str>, Vec<Vec<Option<Tensor>>>) = {
        let keep: Vec<usize> = (0..tr.opt.vars().len())
            .filter(|&k| tr.opt.vars()[k].0 != "head.bias.bias")
            .collect();
        (
            keep.iter().map(|&k| tr.opt.vars()[k].0.as_str()).collect(),
            runs.iter()
                .map(|r| keep.iter().map(|&k| r[k].clone()).collect())
                .collect(),
        )
    };
    assert_eq!(names.len() + 1, tr.opt.vars().len());
    assert_grads_nonzero_in_some("text-any generator", &names, &runs);
    let (vl, vs) = tr.validate().unwrap();
    assert!(vl.is_finite() && (0.0..=1.0).contains(&vs), "{vl} {vs}");
    let _: &ParamMap = &tr.generate(0, 0).unwrap();
}
