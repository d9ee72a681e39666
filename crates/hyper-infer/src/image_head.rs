//! The fitted image head: [`crate::fitted_head`] on the backbone's pooled features,
//! written into the ResNet's `fc`. An image folder's label set is almost never one the CV
//! generator was meta-trained on, and a generated `fc` for an unseen label set is near
//! chance; a head fitted in one pass on the training split's features is not.
//!
//! [`fit`] fits the head twice, over the frozen backbone and over the generated adapter,
//! and keeps whichever scores higher on the validation images (ties: the frozen one):
//! [`AdapterChoice`], as the text path does.

use anyhow::Result;
use candle_core::Device;
use datasets::images::ImageSet;
use hyper_core::ParamMap;
use target_models::resnet::ResNet;

use crate::fitted_head::{self, AdapterChoice, FittedHead, SUPPORT_ROWS};
use crate::vision::{self, BackboneConfig};

/// What the image head reads, as `model.json` states it.
pub const FEATURES: &str = "the backbone's globally averaged last feature map";

/// Images per forward pass when reading features.
const BATCH: usize = 128;

/// The pooled features of every image of a prepared set under `params` (BatchNorm frozen,
/// no dropout), in order.
pub fn features(model: &ResNet, params: &ParamMap, set: &ImageSet) -> Result<Vec<Vec<f32>>> {
    let rows: Vec<usize> = (0..set.n).collect();
    let mut out = Vec::with_capacity(set.n);
    for chunk in rows.chunks(BATCH) {
        let x = vision::to_tensor(set, chunk, &Device::Cpu)?;
        out.extend(model.features(params, &x, false)?.to_vec2::<f32>()?);
    }
    Ok(out)
}

/// `params` with every adapter's `lora_B` zeroed: the frozen backbone, in the same layout
/// (so the model directory's format does not depend on the choice).
pub fn without_adapter(params: &ParamMap) -> Result<ParamMap> {
    let mut out = params.clone();
    for (name, t) in params.iter() {
        if name.contains("lora_B") {
            out.insert(name.clone(), t.zeros_like()?);
        }
    }
    Ok(out)
}

/// How `model.json` and `generate --json` describe an image head and the adapter choice.
pub fn about(choice: &AdapterChoice) -> serde_json::Value {
    choice.about(
        FEATURES,
        "generated",
        "none: the frozen backbone scored at least as high on the validation images",
    )
}

/// Fits the head on at most [`SUPPORT_ROWS`] images of the training split (round-robin
/// over classes) over the frozen backbone and over `generated`, chooses on the validation
/// images, and writes the head into the chosen parameters. `train` and `val` are as
/// loaded; only the support sample and `val` go through [`vision::prepare`].
pub fn fit(
    model: &ResNet,
    backbone: &BackboneConfig,
    generated: &ParamMap,
    train: &ImageSet,
    val: &ImageSet,
) -> Result<AdapterChoice> {
    let classes = train.class_names.len();
    let support = fitted_head::support_sample(&train.labels, classes, SUPPORT_ROWS);
    let support_set = vision::prepare(&vision::subset(train, &support), backbone)?;
    let val = &vision::prepare(val, backbone)?;
    let one = |params: ParamMap| -> Result<(ParamMap, FittedHead)> {
        let x = features(model, &params, &support_set)?;
        let vx = features(model, &params, val)?;
        let head = fitted_head::fit(
            &x,
            &support_set.labels,
            classes,
            &train.labels,
            Some((&vx, &val.labels)),
        )?;
        Ok((params, head))
    };
    AdapterChoice::of(
        one(without_adapter(generated)?)?,
        one(generated.clone())?,
        "fc",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    #[test]
    fn without_adapter_zeroes_only_lora_b() -> Result<()> {
        let mut p = ParamMap::new();
        let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &Device::Cpu);
        p.insert("layer1.0.conv1.lora_A.weight", ones(4)?);
        p.insert("layer1.0.conv1.lora_B.weight", ones(4)?);
        p.insert("fc.weight", ones(3)?);
        let f = without_adapter(&p)?;
        let sum = |k: &str| -> Result<f32> { Ok(f.get(k)?.sum_all()?.to_scalar::<f32>()?) };
        assert_eq!(sum("layer1.0.conv1.lora_B.weight")?, 0.0);
        assert_eq!(sum("layer1.0.conv1.lora_A.weight")?, 4.0);
        assert_eq!(sum("fc.weight")?, 3.0);
        assert_eq!(f.len(), 3);
        Ok(())
    }
}
