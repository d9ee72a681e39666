//! Test helpers: checkpoints written in the exact Hugging Face / torchvision key layouts
//! (key lists spelled out here, independently of the model code), and VarMap plumbing for
//! the gradient checks (the checks themselves, paths and diffs are in `test_support`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use hyper_core::ParamMap;
use target_models::bert::{BertConfig, Flavor};
use target_models::resnet::{BlockKind, ResNetConfig};

fn randn(shape: &[usize], std: f64) -> Tensor {
    Tensor::randn(0f32, std as f32, shape, &Device::Cpu).unwrap()
}

fn ln_weight(n: usize) -> Tensor {
    (randn(&[n], 0.1) + 1.0).unwrap()
}

/// Full `…ForSequenceClassification` state dict in Hugging Face's key layout.
pub fn hf_state_dict(cfg: &BertConfig) -> HashMap<String, Tensor> {
    let (h, f, l) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_layers);
    let mut m = HashMap::new();
    let lin = |m: &mut HashMap<String, Tensor>, name: String, i: usize, o: usize| {
        m.insert(format!("{name}.weight"), randn(&[o, i], 0.2));
        m.insert(format!("{name}.bias"), randn(&[o], 0.1));
    };
    let ln = |m: &mut HashMap<String, Tensor>, name: String| {
        m.insert(format!("{name}.weight"), ln_weight(h));
        m.insert(format!("{name}.bias"), randn(&[h], 0.1));
    };
    // Embeddings: the same keys under each flavor's root, plus BERT's token types.
    let e = match cfg.flavor {
        Flavor::DistilBert => "distilbert.embeddings",
        Flavor::Bert => "bert.embeddings",
    };
    m.insert(
        format!("{e}.word_embeddings.weight"),
        randn(&[cfg.vocab_size, h], 1.0),
    );
    m.insert(
        format!("{e}.position_embeddings.weight"),
        randn(&[cfg.max_position_embeddings, h], 0.5),
    );
    ln(&mut m, format!("{e}.LayerNorm"));
    match cfg.flavor {
        Flavor::DistilBert => {
            for i in 0..l {
                let p = format!("distilbert.transformer.layer.{i}");
                for q in ["q_lin", "k_lin", "v_lin", "out_lin"] {
                    lin(&mut m, format!("{p}.attention.{q}"), h, h);
                }
                ln(&mut m, format!("{p}.sa_layer_norm"));
                lin(&mut m, format!("{p}.ffn.lin1"), h, f);
                lin(&mut m, format!("{p}.ffn.lin2"), f, h);
                ln(&mut m, format!("{p}.output_layer_norm"));
            }
            lin(&mut m, "pre_classifier".into(), h, h);
        }
        Flavor::Bert => {
            m.insert(
                format!("{e}.token_type_embeddings.weight"),
                randn(&[cfg.type_vocab_size, h], 0.5),
            );
            for i in 0..l {
                let p = format!("bert.encoder.layer.{i}");
                for q in ["query", "key", "value"] {
                    lin(&mut m, format!("{p}.attention.self.{q}"), h, h);
                }
                lin(&mut m, format!("{p}.attention.output.dense"), h, h);
                ln(&mut m, format!("{p}.attention.output.LayerNorm"));
                lin(&mut m, format!("{p}.intermediate.dense"), h, f);
                lin(&mut m, format!("{p}.output.dense"), f, h);
                ln(&mut m, format!("{p}.output.LayerNorm"));
            }
            lin(&mut m, "bert.pooler.dense".into(), h, h);
        }
    }
    lin(&mut m, "classifier".into(), h, cfg.num_labels);
    m
}

/// Writes `config.json` + `model.safetensors` as `save_pretrained` does.
pub fn write_hf_checkpoint(dir: &Path, cfg: &BertConfig) -> HashMap<String, Tensor> {
    std::fs::create_dir_all(dir).unwrap();
    let sd = hf_state_dict(cfg);
    candle_core::safetensors::save(&sd, dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&cfg.to_hf_json()).unwrap(),
    )
    .unwrap();
    sd
}

/// torchvision `resnet*().state_dict()` layout, including `num_batches_tracked`.
pub fn torchvision_state_dict(cfg: &ResNetConfig, num_classes: usize) -> HashMap<String, Tensor> {
    let mut m = HashMap::new();
    let conv = |m: &mut HashMap<String, Tensor>, name: String, o: usize, i: usize, k: usize| {
        let std = (2.0 / (o * k * k) as f64).sqrt();
        m.insert(format!("{name}.weight"), randn(&[o, i, k, k], std));
    };
    let bn = |m: &mut HashMap<String, Tensor>, name: String, c: usize| {
        m.insert(format!("{name}.weight"), ln_weight(c));
        m.insert(format!("{name}.bias"), randn(&[c], 0.1));
        m.insert(format!("{name}.running_mean"), randn(&[c], 0.1));
        m.insert(
            format!("{name}.running_var"),
            (randn(&[c], 0.1).abs().unwrap() + 0.5).unwrap(),
        );
        m.insert(
            format!("{name}.num_batches_tracked"),
            Tensor::new(0i64, &Device::Cpu).unwrap(),
        );
    };
    let w = cfg.width;
    conv(&mut m, "conv1".into(), w, 3, 7);
    bn(&mut m, "bn1".into(), w);
    let exp = if cfg.block == BlockKind::Bottleneck {
        4
    } else {
        1
    };
    let mut inplanes = w;
    for (li, &n) in cfg.layers.iter().enumerate() {
        let planes = w * (1 << li);
        for j in 0..n {
            let p = format!("layer{}.{j}", li + 1);
            let stride = if li > 0 && j == 0 { 2 } else { 1 };
            if cfg.block == BlockKind::Bottleneck {
                conv(&mut m, format!("{p}.conv1"), planes, inplanes, 1);
                bn(&mut m, format!("{p}.bn1"), planes);
                conv(&mut m, format!("{p}.conv2"), planes, planes, 3);
                bn(&mut m, format!("{p}.bn2"), planes);
                conv(&mut m, format!("{p}.conv3"), planes * 4, planes, 1);
                bn(&mut m, format!("{p}.bn3"), planes * 4);
            } else {
                conv(&mut m, format!("{p}.conv1"), planes, inplanes, 3);
                bn(&mut m, format!("{p}.bn1"), planes);
                conv(&mut m, format!("{p}.conv2"), planes, planes, 3);
                bn(&mut m, format!("{p}.bn2"), planes);
            }
            if stride != 1 || inplanes != planes * exp {
                conv(
                    &mut m,
                    format!("{p}.downsample.0"),
                    planes * exp,
                    inplanes,
                    1,
                );
                bn(&mut m, format!("{p}.downsample.1"), planes * exp);
            }
            inplanes = planes * exp;
        }
    }
    m.insert("fc.weight".into(), randn(&[num_classes, inplanes], 0.05));
    m.insert("fc.bias".into(), randn(&[num_classes], 0.05));
    m
}

/// Copies `params`, replacing every `lora_B` with random values so A gets a gradient.
pub fn randomize_b(params: &ParamMap, std: f64) -> ParamMap {
    randomize_where(params, std, |k| k.ends_with("lora_B.weight"))
}

/// Copies `params`, replacing the head (every non-LoRA tensor) with random values, so
/// logits are O(1) and differences show.
pub fn randomize_head(params: &ParamMap, std: f64) -> ParamMap {
    randomize_where(params, std, |k| !k.contains(".lora_"))
}

fn randomize_where(params: &ParamMap, std: f64, pick: impl Fn(&str) -> bool) -> ParamMap {
    let mut out = ParamMap::new();
    for (k, t) in params.iter() {
        let t = if pick(k) {
            randn(t.dims(), std)
        } else {
            t.clone()
        };
        out.insert(k.clone(), t);
    }
    out
}

/// All vars of a VarMap with their names.
pub fn named_vars(vm: &candle_nn::VarMap) -> Vec<(String, candle_core::Var)> {
    let data = vm.data().lock().unwrap();
    let mut v: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// ParamMap whose tensors are the given vars (trainable LoRA baseline).
pub fn vars_as_params(vars: &[(String, candle_core::Var)]) -> ParamMap {
    let mut p = ParamMap::new();
    for (k, v) in vars {
        p.insert(k.clone(), v.as_tensor().clone());
    }
    p
}
