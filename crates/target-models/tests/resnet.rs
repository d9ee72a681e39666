//! ResNet: torchvision key layout, parity with candle-transformers' ResNet-18, frozen
//! BatchNorm, LoRA identities and gradients.

mod common;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::*;
use hyper_core::ParamMap;
use target_models::lora::{init_params, LoraConfig};
use target_models::resnet::{BlockKind, ResNet, ResNetConfig};
use test_support::{assert_all_grads_nonzero, max_abs_diff};

fn images(b: usize, hw: usize) -> Tensor {
    Tensor::randn(0f32, 1., (b, 3, hw, hw), &Device::Cpu).unwrap()
}

fn fc_params(sd: &std::collections::HashMap<String, Tensor>) -> ParamMap {
    let mut p = ParamMap::new();
    p.insert("fc.weight", sd["fc.weight"].clone());
    p.insert("fc.bias", sd["fc.bias"].clone());
    p
}

#[test]
fn conv_inventory_and_lora_targets() {
    let r50 = ResNetConfig::resnet50();
    let convs = r50.convs();
    assert_eq!(convs.len(), 53, "stem + 48 block convs + 4 downsample");
    let m = LoraConfig::resnet_default()
        .target_modules
        .matcher()
        .unwrap();
    let targets: Vec<_> = convs.iter().filter(|c| m.matches(&c.name)).collect();
    assert_eq!(targets.len(), 48);
    assert!(targets
        .iter()
        .all(|c| !c.name.contains("downsample") && c.name != "conv1"));
    assert_eq!(r50.feature_dim(), 2048);
    let l3 = convs.iter().find(|c| c.name == "layer3.0.conv2").unwrap();
    assert_eq!(
        (l3.cin, l3.cout, l3.kernel, l3.stride, l3.padding),
        (256, 256, 3, 2, 1)
    );
    let r18 = ResNetConfig::resnet18().convs();
    assert_eq!(r18.len(), 20);
    assert_eq!(r18.iter().filter(|c| m.matches(&c.name)).count(), 16);
}

#[test]
fn torchvision_layout_loads_from_file() -> Result<()> {
    // Key counts of torchvision's resnet18/resnet50 state dicts (with num_batches_tracked).
    assert_eq!(
        torchvision_state_dict(&ResNetConfig::new(BlockKind::Basic, [2, 2, 2, 2], 4), 1000).len(),
        122
    );
    let cfg = ResNetConfig::tiny50();
    let sd = torchvision_state_dict(&cfg, 1000);
    assert_eq!(sd.len(), 320);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet50.safetensors");
    candle_core::safetensors::save(&sd, &path)?;
    let model = ResNet::load(
        &path,
        cfg.clone(),
        LoraConfig::resnet_default(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(model.lora_modules().len(), 48);
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let params = init_params(&model.param_spec_for(10), &vb)?;
    assert_eq!(params.len(), 48 * 2 + 2);
    for hw in [32, 224] {
        let y = model.classify(&params, &images(2, hw), false)?;
        assert_eq!(y.dims(), &[2, 10]);
        assert!(y
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .all(|v| v.is_finite()));
    }

    let mut broken = sd.clone();
    broken.remove("layer2.0.downsample.1.running_var");
    candle_core::safetensors::save(&broken, &path)?;
    let e = format!(
        "{:#}",
        ResNet::load(&path, cfg, LoraConfig::resnet_default(), &Device::Cpu)
            .err()
            .unwrap()
    );
    assert!(e.contains("layer2.0.downsample.1.running_var"), "{e}");
    Ok(())
}

#[test]
fn resnet18_matches_candle_transformers() -> Result<()> {
    let cfg = ResNetConfig::resnet18();
    let sd = torchvision_state_dict(&cfg, 5);
    let vb = VarBuilder::from_tensors(sd.clone(), DType::F32, &Device::Cpu);
    let ours = ResNet::from_vb(&vb, cfg, LoraConfig::none())?;
    let theirs = candle_transformers::models::resnet::resnet18(5, vb)?;
    let x = images(2, 32);
    let a = ours.classify(&fc_params(&sd), &x, false)?;
    let b = x.apply(&theirs)?;
    let scale = b.abs()?.max_all()?.to_scalar::<f32>()?;
    let d = max_abs_diff(&a, &b);
    eprintln!("resnet18 logits: max |diff| {d}, max |logit| {scale}");
    assert!(
        d <= 1e-4 * scale.max(1.0),
        "logits differ by {d} (scale {scale})"
    );
    Ok(())
}

fn lora_model(block: BlockKind) -> (ResNet, ResNet, ParamMap, VarMap) {
    let cfg = ResNetConfig::tiny(block);
    let sd = torchvision_state_dict(&cfg, 1000);
    let vb = VarBuilder::from_tensors(sd, DType::F32, &Device::Cpu);
    let model = ResNet::from_vb(&vb, cfg.clone(), LoraConfig::resnet_default()).unwrap();
    let base = ResNet::from_vb(&vb, cfg, LoraConfig::none()).unwrap();
    let vm = VarMap::new();
    let vbp = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let params = init_params(&model.param_spec_for(7), &vbp).unwrap();
    (model, base, params, vm)
}

#[test]
fn zero_b_equals_base_exactly_and_merge_matches() -> Result<()> {
    for block in [BlockKind::Bottleneck, BlockKind::Basic] {
        let (model, base, params, _) = lora_model(block);
        let x = images(2, 40);
        let y = model.classify(&params, &x, false)?;
        let y0 = base.classify(&params, &x, false)?;
        assert_eq!(
            y.to_vec2::<f32>()?,
            y0.to_vec2::<f32>()?,
            "{block:?}: B=0 must be exact"
        );
        let p = randomize_b(&params, 0.05);
        let y = model.classify(&p, &x, false)?;
        assert!(
            max_abs_diff(&y, &y0) > 1e-4,
            "{block:?}: LoRA had no effect"
        );
        let merged = model.merge(&p)?;
        assert!(merged.lora_modules().is_empty());
        // 1e-5 relative to the logits' size: merging reorders f32 sums in 16 convs.
        let d = max_abs_diff(&y, &merged.classify(&p, &x, false)?);
        let scale = y.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
        assert!(
            d <= 1e-5 * scale,
            "{block:?}: merged differs by {d} (|logit| {scale})"
        );
    }
    Ok(())
}

#[test]
fn batchnorm_is_frozen_eval() -> Result<()> {
    // Eval BatchNorm is per-sample: a sample's logits do not depend on its batch mates,
    // in training mode (dropout aside) as well.
    let (model, _, params, _) = lora_model(BlockKind::Bottleneck);
    let x = images(3, 32);
    let all = model.classify(&params, &x, false)?;
    let one = model.classify(&params, &x.narrow(0, 1, 1)?, false)?;
    assert!(max_abs_diff(&all.narrow(0, 1, 1)?, &one) <= 1e-5);
    let lora0 = LoraConfig {
        lora_dropout: 0.0,
        ..LoraConfig::resnet_default()
    };
    let cfg = ResNetConfig::tiny(BlockKind::Bottleneck);
    let vb = VarBuilder::from_tensors(torchvision_state_dict(&cfg, 10), DType::F32, &Device::Cpu);
    let m = ResNet::from_vb(&vb, cfg, lora0)?;
    let t_all = m.classify(&params, &x, true)?;
    let t_one = m.classify(&params, &x.narrow(0, 1, 1)?, true)?;
    assert!(max_abs_diff(&t_all.narrow(0, 1, 1)?, &t_one) <= 1e-5);
    Ok(())
}

#[test]
fn lora_training_reaches_every_factor_and_fc() -> Result<()> {
    let cfg = ResNetConfig::tiny50();
    let vb = VarBuilder::from_tensors(torchvision_state_dict(&cfg, 1000), DType::F32, &Device::Cpu);
    let model = ResNet::from_vb(&vb, cfg, LoraConfig::resnet_default())?;
    let vm = VarMap::new();
    let vbp = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let params = init_params(&model.param_spec_for(4), &vbp)?;
    let vars = named_vars(&vm);
    assert_eq!(vars.len(), 48 * 2 + 2);
    for (k, v) in &vars {
        if k.ends_with("lora_B.weight") {
            v.set(&Tensor::randn(0f32, 0.1, v.shape(), &Device::Cpu)?)?;
        }
    }
    let logits = model.classify(&params, &images(2, 32), true)?;
    // A linear loss: its gradient never vanishes, unlike a saturated cross-entropy on the
    // large logits of a random-weight network.
    let coef = Tensor::randn(0f32, 1., logits.shape(), &Device::Cpu)?;
    let loss = (logits * coef)?.sum_all()?;
    assert_all_grads_nonzero("ResNet-50 LoRA", &loss, &vars)
}

#[test]
fn bad_inputs_are_errors() {
    let (model, _, params, _) = lora_model(BlockKind::Basic);
    let gray = Tensor::zeros((1, 1, 32, 32), DType::F32, &Device::Cpu).unwrap();
    let e = model
        .classify(&params, &gray, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3-channel"), "{e}");
    // Small images still run (every stage keeps at least 1×1).
    assert_eq!(
        model
            .classify(&params, &images(1, 8), false)
            .unwrap()
            .dims(),
        &[1, 7]
    );
    let mut p = params.clone();
    p.insert(
        "fc.weight",
        Tensor::zeros((7, 3), DType::F32, &Device::Cpu).unwrap(),
    );
    let e = model
        .classify(&p, &images(1, 32), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fc.weight"), "{e}");
    let mut p = params.clone();
    p.0.remove("layer2.0.conv1.lora_A.weight");
    let e = model
        .classify(&p, &images(1, 32), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer2.0.conv1.lora_A.weight"), "{e}");
    assert!(ResNetConfig::from_arch("vgg16")
        .unwrap_err()
        .contains("resnet50"));
}

#[test]
fn stem_pool_matches_candle_max_pool() -> Result<()> {
    use target_models::resnet::max_pool_3x3_s2;
    for hw in [7, 8, 16, 17] {
        // Post-ReLU input, as in the stem.
        let x = images(2, hw).relu()?;
        let ours = max_pool_3x3_s2(&x)?;
        let theirs = x
            .pad_with_zeros(3, 1, 1)?
            .pad_with_zeros(2, 1, 1)?
            .max_pool2d_with_stride(3, 2)?;
        assert_eq!(ours.dims(), theirs.dims(), "{hw}x{hw}");
        assert_eq!(max_abs_diff(&ours, &theirs), 0.0, "{hw}x{hw}");
    }
    Ok(())
}

#[test]
fn batch_norm_training_mode_uses_batch_statistics() -> Result<()> {
    let cfg = ResNetConfig::tiny(BlockKind::Basic);
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let model = ResNet::from_vb(&vb, cfg.clone(), LoraConfig::none())?;
    let mut head = ParamMap::new();
    let fd = cfg.feature_dim();
    head.insert(
        "fc.weight",
        Tensor::randn(0f32, 0.1, (3, fd), &Device::Cpu)?,
    );
    head.insert("fc.bias", Tensor::zeros(3, DType::F32, &Device::Cpu)?);
    let x = images(4, 16);
    let (logits, stats) = model.classify_batch_norm(&head, &x)?;
    assert_eq!(logits.dims(), [4, 3]);
    // One entry per BatchNorm (one per conv), named as torchvision's state dict.
    assert_eq!(stats.len(), cfg.convs().len());
    assert_eq!(stats[0].name, "bn1");
    assert!(stats.iter().any(|s| s.name == "layer2.0.downsample.1"));
    // The stem's statistics against a direct computation over (N, H, W).
    let w = vm.data().lock().unwrap()["conv1.weight"]
        .as_tensor()
        .clone();
    let y = x.conv2d(&w, 3, 2, 1, 1)?;
    let n = (4 * 8 * 8) as f64;
    let mean = y.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
    let var = (y
        .broadcast_sub(&mean)?
        .sqr()?
        .sum_keepdim(0)?
        .sum_keepdim(2)?
        .sum_keepdim(3)?
        / (n - 1.0))?;
    assert!(max_abs_diff(&stats[0].mean, &mean.flatten_all()?) < 1e-5);
    assert!(max_abs_diff(&stats[0].var, &var.flatten_all()?) < 1e-4);
    // Batch mode depends on batch mates; frozen (eval) mode does not.
    let (one, _) = model.classify_batch_norm(&head, &x.narrow(0, 0, 2)?)?;
    assert!(max_abs_diff(&one, &logits.narrow(0, 0, 2)?) > 1e-4);
    Ok(())
}

#[test]
fn generator_layout_maps_to_conv_lora_and_fc() -> Result<()> {
    let (model, _, params, _) = lora_model(BlockKind::Basic);
    let target = model.lora_target();
    assert_eq!(target.slots.len(), model.lora_modules().len());
    assert_eq!(target.head_in, model.config().feature_dim());
    // Convs of one (cin·k·k, cout) shape share a kind; blocks are numbered from 0.
    for s in &target.slots {
        let twin = target.slots.iter().find(|t| t.kind == s.kind).unwrap();
        assert_eq!((s.in_dim, s.out_dim), (twin.in_dim, twin.out_dim));
    }
    assert_eq!(target.slots[0].layer, 0);
    // Linear-shaped factors as the generator emits them → PEFT's conv layout.
    let mut raw = ParamMap::new();
    for s in &target.slots {
        let a = params.get(&format!("{}.lora_A.weight", s.module))?;
        let b = params.get(&format!("{}.lora_B.weight", s.module))?;
        raw.insert(
            format!("{}.lora_A.weight", s.module),
            a.reshape((target.r, s.in_dim))?,
        );
        raw.insert(
            format!("{}.lora_B.weight", s.module),
            b.reshape((s.out_dim, target.r))?,
        );
    }
    raw.insert("classifier.weight", params.get("fc.weight")?.clone());
    raw.insert("classifier.bias", params.get("fc.bias")?.clone());
    let mapped = model.from_generated(&raw)?;
    for (k, t) in params.iter() {
        assert_eq!(mapped.get(k)?.dims(), t.dims(), "{k}");
    }
    let x = images(2, 32);
    let a = model.classify(&params, &x, false)?;
    let b = model.classify(&mapped, &x, false)?;
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    Ok(())
}
