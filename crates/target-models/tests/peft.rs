//! PEFT adapter export/import: exact key names and shapes, round trip, corrupt files, and
//! (ignored by default) loading in Python's peft.

mod common;

use std::path::Path;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::*;
use hyper_core::ParamMap;
use target_models::bert::{mask_from_ids, BertConfig, BertModel, Flavor};
use target_models::lora::{init_params, LoraConfig};
use target_models::peft::{export_adapter, import_adapter};
use target_models::resnet::{BlockKind, ResNet, ResNetConfig};
use test_support::max_abs_diff;

/// Key → shape straight from the safetensors header (independent of our importer).
fn file_keys(path: &Path) -> Vec<(String, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(k, t)| (k, t.shape().to_vec()))
        .collect();
    v.sort();
    v
}

fn random_params(model_specs: &[hyper_core::ParamSpec]) -> ParamMap {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let p = init_params(model_specs, &vb).unwrap();
    // Random B and head, so a lost or transposed tensor shows up in the outputs.
    let mut out = ParamMap::new();
    for (k, t) in p.iter() {
        let t = if k.contains("lora_A") {
            t.clone()
        } else {
            Tensor::randn(0f32, 0.3, t.dims(), &Device::Cpu).unwrap()
        };
        out.insert(k.clone(), t);
    }
    out
}

fn assert_same(a: &ParamMap, b: &ParamMap) {
    assert_eq!(
        a.0.keys().collect::<Vec<_>>(),
        b.0.keys().collect::<Vec<_>>()
    );
    for (k, t) in a.iter() {
        let u = &b.0[k];
        assert_eq!(t.dims(), u.dims(), "{k}");
        assert_eq!(
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            u.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            "{k}"
        );
    }
}

fn tiny_distilbert(dir: &Path) -> BertModel {
    write_hf_checkpoint(dir, &BertConfig::tiny(Flavor::DistilBert, 3));
    let lora = LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        ..LoraConfig::default()
    };
    BertModel::load(dir, lora, &Device::Cpu).unwrap()
}

#[test]
fn distilbert_adapter_keys_and_round_trip() -> Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_distilbert(&tmp.path().join("base"));
    let params = random_params(&model.param_spec_for(3));
    let out = tmp.path().join("adapter");
    export_adapter(
        &out,
        &model.adapter_config("distilbert-base-uncased"),
        &params,
    )
    .unwrap();

    let mut want = vec![
        ("base_model.model.classifier.bias".to_string(), vec![3]),
        (
            "base_model.model.classifier.weight".to_string(),
            vec![3, 16],
        ),
        ("base_model.model.pre_classifier.bias".to_string(), vec![16]),
        (
            "base_model.model.pre_classifier.weight".to_string(),
            vec![16, 16],
        ),
    ];
    for l in 0..2 {
        for m in ["q_lin", "v_lin"] {
            let p = format!("base_model.model.distilbert.transformer.layer.{l}.attention.{m}");
            want.push((format!("{p}.lora_A.weight"), vec![4, 16]));
            want.push((format!("{p}.lora_B.weight"), vec![16, 4]));
        }
    }
    want.sort();
    assert_eq!(file_keys(&out.join("adapter_model.safetensors")), want);

    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["task_type"], "SEQ_CLS");
    assert_eq!(cfg["r"], 4);
    assert_eq!(cfg["lora_alpha"], 8);
    assert_eq!(cfg["lora_dropout"].as_f64().unwrap() as f32, 0.05);
    assert_eq!(cfg["target_modules"], serde_json::json!(["q_lin", "v_lin"]));
    assert_eq!(
        cfg["modules_to_save"],
        serde_json::json!(["pre_classifier", "classifier"])
    );
    assert_eq!(cfg["base_model_name_or_path"], "distilbert-base-uncased");
    assert_eq!(cfg["bias"], "none");
    assert_eq!(cfg["fan_in_fan_out"], false);
    assert_eq!(cfg["inference_mode"], true);

    let (back_cfg, back) = import_adapter(&out, &Device::Cpu).unwrap();
    assert_eq!(back_cfg, model.adapter_config("distilbert-base-uncased"));
    assert_same(&params, &back);
    // The re-imported adapter drives the model to the same logits.
    let ids = Tensor::new(&[[5u32, 9, 3, 0], [7, 1, 2, 4]], &Device::Cpu)?;
    let mask = mask_from_ids(&ids, 0)?;
    let a = model.classify(&params, &ids, Some(&mask), None, false)?;
    let b = model.classify(&back, &ids, Some(&mask), None, false)?;
    assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
    Ok(())
}

#[test]
fn resnet_adapter_keys_and_round_trip() -> Result<()> {
    let cfg = ResNetConfig::tiny(BlockKind::Bottleneck);
    let vb = VarBuilder::from_tensors(torchvision_state_dict(&cfg, 1000), DType::F32, &Device::Cpu);
    let model = ResNet::from_vb(&vb, cfg, LoraConfig::resnet_default())?;
    let params = random_params(&model.param_spec_for(7));
    let tmp = tempfile::tempdir().unwrap();
    export_adapter(tmp.path(), &model.adapter_config("resnet50"), &params).unwrap();

    // (layer, planes, in-channels) of the single bottleneck per stage at width 4, r = 8.
    let mut want = vec![
        ("base_model.model.fc.bias".to_string(), vec![7]),
        ("base_model.model.fc.weight".to_string(), vec![7, 128]),
    ];
    for (l, planes, cin) in [(1, 4, 4), (2, 8, 16), (3, 16, 32), (4, 32, 64)] {
        let p = format!("base_model.model.layer{l}.0");
        for (conv, i, o, k) in [
            ("conv1", cin, planes, 1),
            ("conv2", planes, planes, 3),
            ("conv3", planes, planes * 4, 1),
        ] {
            want.push((format!("{p}.{conv}.lora_A.weight"), vec![8, i, k, k]));
            want.push((format!("{p}.{conv}.lora_B.weight"), vec![o, 8, 1, 1]));
        }
    }
    want.sort();
    assert_eq!(
        file_keys(&tmp.path().join("adapter_model.safetensors")),
        want
    );

    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["target_modules"], r"layer.\..\.conv.");
    assert_eq!(cfg["modules_to_save"], serde_json::json!(["fc"]));
    assert_eq!(
        (cfg["r"].as_u64(), cfg["lora_alpha"].as_u64()),
        (Some(8), Some(16))
    );
    assert!(cfg["task_type"].is_null());

    let (back_cfg, back) = import_adapter(tmp.path(), &Device::Cpu).unwrap();
    assert_eq!(back_cfg.lora_config(), LoraConfig::resnet_default());
    assert_same(&params, &back);
    Ok(())
}

#[test]
fn corrupt_and_foreign_adapters_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_distilbert(&tmp.path().join("base"));
    let params = random_params(&model.param_spec_for(3));
    let out = tmp.path().join("adapter");
    let cfg = model.adapter_config("x");
    export_adapter(&out, &cfg, &params).unwrap();
    let wpath = out.join("adapter_model.safetensors");
    let good = std::fs::read(&wpath).unwrap();

    std::fs::write(&wpath, &good[..good.len() / 2]).unwrap();
    let e = format!("{:#}", import_adapter(&out, &Device::Cpu).unwrap_err());
    assert!(
        e.contains("adapter_model.safetensors") && e.contains("corrupt or truncated"),
        "{e}"
    );
    std::fs::write(&wpath, b"not a safetensors file").unwrap();
    let e = format!("{:#}", import_adapter(&out, &Device::Cpu).unwrap_err());
    assert!(e.contains("corrupt or truncated"), "{e}");
    std::fs::write(&wpath, &good).unwrap();

    let cpath = out.join("adapter_config.json");
    let text = std::fs::read_to_string(&cpath).unwrap();
    std::fs::write(&cpath, text.replace("\"LORA\"", "\"IA3\"")).unwrap();
    let e = format!("{:#}", import_adapter(&out, &Device::Cpu).unwrap_err());
    assert!(
        e.contains("adapter_config.json") && e.contains("IA3"),
        "{e}"
    );
    std::fs::write(&cpath, &text[..text.len() / 2]).unwrap();
    let e = format!("{:#}", import_adapter(&out, &Device::Cpu).unwrap_err());
    assert!(e.contains("adapter_config.json"), "{e}");
    std::fs::write(&cpath, text.replace("\"r\": 4", "\"r\": 5")).unwrap();
    let e = format!("{:#}", import_adapter(&out, &Device::Cpu).unwrap_err());
    assert!(e.contains("lora_A.weight") && e.contains("r=5"), "{e}");

    // Export refuses tensors PEFT would report as unexpected, and a lone factor.
    let mut extra = params.clone();
    extra.insert(
        "distilbert.embeddings.LayerNorm.weight",
        Tensor::zeros(16, DType::F32, &Device::Cpu).unwrap(),
    );
    let e = format!(
        "{:#}",
        export_adapter(&tmp.path().join("x"), &cfg, &extra).unwrap_err()
    );
    assert!(e.contains("distilbert.embeddings.LayerNorm.weight"), "{e}");
    let mut lone = params.clone();
    lone.0
        .remove("distilbert.transformer.layer.1.attention.v_lin.lora_B.weight");
    let e = format!(
        "{:#}",
        export_adapter(&tmp.path().join("y"), &cfg, &lone).unwrap_err()
    );
    assert!(e.contains("layer.1.attention.v_lin.lora_B.weight"), "{e}");
    assert!(!tmp.path().join("x").exists() && !tmp.path().join("y").exists());
}

/// Runs a Python check script; it must succeed, and its last stdout line is its JSON verdict.
fn python_verdict(cmd: &mut std::process::Command) -> serde_json::Value {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", cmd.get_program().to_string_lossy()));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// Needs Python with torch, transformers and peft: set `HYPER_PEFT_PYTHON` to its
/// interpreter and run with `--ignored`.
#[test]
#[ignore]
fn python_peft_loads_our_adapter() {
    for flavor in [Flavor::DistilBert, Flavor::Bert] {
        python_peft_check(flavor);
    }
}

fn python_peft_check(flavor: Flavor) {
    let python = std::env::var("HYPER_PEFT_PYTHON").unwrap_or_else(|_| "python3".into());
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    write_hf_checkpoint(&base, &BertConfig::tiny(flavor, 3));
    let lora = match flavor {
        Flavor::DistilBert => LoraConfig::default(),
        Flavor::Bert => LoraConfig::bert_default(),
    };
    let model = BertModel::load(
        &base,
        LoraConfig {
            r: 4,
            lora_alpha: 8.0,
            ..lora
        },
        &Device::Cpu,
    )
    .unwrap();
    let params = random_params(&model.param_spec_for(3));
    let out = tmp.path().join("adapter");
    export_adapter(&out, &model.adapter_config(base.to_str().unwrap()), &params).unwrap();
    let rows = vec![vec![2u32, 9, 3, 11, 0, 0], vec![7, 1, 2, 4, 8, 6]];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peft_check.py");
    let v = python_verdict(
        std::process::Command::new(&python)
            .arg(&script)
            .arg(&base)
            .arg(&out)
            .arg(serde_json::to_string(&rows).unwrap()),
    );
    assert_eq!(v["unexpected"], serde_json::json!([]), "{flavor:?}: {v}");
    assert_eq!(v["missing"], serde_json::json!([]), "{flavor:?}: {v}");
    assert_eq!(v["n_lora"], 4, "{flavor:?}");
    let theirs: Vec<Vec<f32>> = serde_json::from_value(v["logits"].clone()).unwrap();
    let ids = Tensor::new(rows, &Device::Cpu).unwrap();
    let ours = model
        .classify(
            &params,
            &ids,
            Some(&mask_from_ids(&ids, 0).unwrap()),
            None,
            false,
        )
        .unwrap();
    let d = max_abs_diff(&ours, &Tensor::new(theirs.clone(), &Device::Cpu).unwrap());
    eprintln!(
        "{flavor:?}: peft logits {theirs:?}\nours {:?}\nmax |diff| {d}",
        ours.to_vec2::<f32>().unwrap()
    );
    assert!(d <= 1e-4, "{flavor:?}: logits differ by {d}");
}

/// Needs Python with torch, torchvision and peft (`HYPER_PEFT_PYTHON`); run with
/// `--ignored`.
#[test]
#[ignore]
fn python_peft_loads_our_resnet_adapter() {
    let python = std::env::var("HYPER_PEFT_PYTHON").unwrap_or_else(|_| "python3".into());
    let tmp = tempfile::tempdir().unwrap();
    let cfg = ResNetConfig::resnet18();
    let base = tmp.path().join("resnet18.safetensors");
    candle_core::safetensors::save(&torchvision_state_dict(&cfg, 1000), &base).unwrap();
    let model = ResNet::load(&base, cfg, LoraConfig::resnet_default(), &Device::Cpu).unwrap();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let params = init_params(&model.param_spec_for(7), &vb).unwrap();
    let params = randomize_head(&randomize_b(&params, 0.05), 0.05);
    let out = tmp.path().join("adapter");
    export_adapter(&out, &model.adapter_config("resnet18"), &params).unwrap();
    let x = Tensor::randn(0f32, 1., (2, 3, 32, 32), &Device::Cpu).unwrap();
    let images = tmp.path().join("x.safetensors");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("x", x.clone())]),
        &images,
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peft_check_resnet.py");
    let v = python_verdict(
        std::process::Command::new(&python)
            .args([&script, &base, &out, &images])
            .arg("7"),
    );
    assert_eq!(v["unexpected"], serde_json::json!([]), "{v}");
    assert_eq!(v["missing"], serde_json::json!([]), "{v}");
    assert_eq!(v["n_lora"], 16);
    let theirs: Vec<Vec<f32>> = serde_json::from_value(v["logits"].clone()).unwrap();
    let ours = model.classify(&params, &x, false).unwrap();
    let scale = theirs.iter().flatten().fold(1f32, |m, v| m.max(v.abs()));
    let d = max_abs_diff(&ours, &Tensor::new(theirs.clone(), &Device::Cpu).unwrap());
    eprintln!(
        "resnet18: peft logits {theirs:?}\nours {:?}\nmax |diff| {d} (max |logit| {scale})",
        ours.to_vec2::<f32>().unwrap()
    );
    assert!(d <= 1e-4 * scale, "logits differ by {d}");
}
