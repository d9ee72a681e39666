//! `export`: a model directory as one standard file other runtimes load (ONNX, opset 13).
//! Table models: the preprocessing's numeric part (fill, min-max) and the MLP in one
//! graph, so a caller only maps categorical cells to their level index (and missing cells
//! to NaN). Image models: normalisation, the backbone with the adapter folded in, and the
//! head, so a caller only resizes (the policy in `model.json`).

use anyhow::Result;
use target_models::onnx::{Dim, OnnxGraph};

use crate::ModelDir;

/// What the exported table graph reads and writes, written into the file's documentation
/// and the CLI's help.
pub const TABLE_ONNX_DOC: &str = "input `features` float [batch, F]: the columns of \
preprocessor.json in order, a numeric cell as its value, a categorical cell as the index of \
its level in `levels`, a missing cell as NaN; output `probabilities` float [batch, classes] \
in model.json's class_names order";

/// The table model in `m` as ONNX bytes (opset 13): `IsNaN`/`Where` fill missing values,
/// `Sub`/`Mul` apply the min-max ranges, `Gemm`s and activations are the MLP, `Softmax`
/// gives the probabilities `predict` prints.
pub fn table_onnx(m: &ModelDir) -> Result<Vec<u8>> {
    let p = &m.preprocessor;
    let f = p.columns.len();
    let mut g = OnnxGraph::new(&format!("hyper-infer table model: {}", m.info.dataset));
    g.input("features", &[Dim::Named("batch"), Dim::Fixed(f)]);
    let as_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let fill = g.constant("fill", &[f], &as_f32(&p.fill))?;
    let min = g.constant("min", &[f], &as_f32(&p.min))?;
    // `x = 0` when a column's range is 0, as the preprocessing does.
    let inv: Vec<f64> = p
        .max
        .iter()
        .zip(&p.min)
        .map(|(hi, lo)| if hi > lo { 1.0 / (hi - lo) } else { 0.0 })
        .collect();
    let inv = g.constant("inv_range", &[f], &as_f32(&inv))?;
    let missing = g.node("IsNaN", &["features"], "missing", &[]);
    let filled = g.node("Where", &[&missing, &fill, "features"], "filled", &[]);
    let shifted = g.node("Sub", &[&filled, &min], "shifted", &[]);
    let mut x = g.node("Mul", &[&shifted, &inv], "scaled", &[]);
    if p.clip {
        let lo = g.constant("clip_min", &[], &[0.0])?;
        let hi = g.constant("clip_max", &[], &[1.0])?;
        x = g.node("Clip", &[&x, &lo, &hi], "clipped", &[]);
    }
    let logits = m.mlp().onnx_nodes(&mut g, &m.params, &x)?;
    if m.info.regression.is_some() {
        let value = g.node("Identity", &[&logits], "value", &[]);
        g.output(&value, &[Dim::Named("batch"), Dim::Fixed(1)]);
        return Ok(g.finish(TABLE_REGRESSION_ONNX_DOC));
    }
    Ok(finish_with_softmax(
        g,
        &logits,
        m.info.class_names.len(),
        TABLE_ONNX_DOC,
    ))
}

/// What the exported graph of a table regression model reads and writes.
pub const TABLE_REGRESSION_ONNX_DOC: &str = "input `features` float [batch, columns] in \
model.json's column order (categorical columns as their level index, missing = NaN); \
output `value` float [batch, 1], the predicted target";

/// What the exported image graph reads and writes.
pub const IMAGE_ONNX_DOC: &str = "input `images` float [batch, 3, S, S]: RGB in [0, 1] at the \
model's image_size S, resized as model.json's `resize` says; output `probabilities` float \
[batch, classes] in model.json's class_names order";

/// The image model in `m` as ONNX bytes: `Sub`/`Div` normalise, the merged ResNet, `Softmax`.
pub fn image_onnx(m: &crate::image_model_dir::ImageModelDir) -> Result<Vec<u8>> {
    let b = &m.info.backbone;
    let net = m.backbone(&candle_core::Device::Cpu)?;
    let mut g = OnnxGraph::new("hyper-infer image model");
    let s = b.image_size;
    g.input(
        "images",
        &[
            Dim::Named("batch"),
            Dim::Fixed(3),
            Dim::Fixed(s),
            Dim::Fixed(s),
        ],
    );
    let mean = g.constant("mean", &[1, 3, 1, 1], &b.mean)?;
    let std = g.constant("std", &[1, 3, 1, 1], &b.std)?;
    let c = g.node("Sub", &["images", &mean], "centred", &[]);
    let x = g.node("Div", &[&c, &std], "normalised", &[]);
    let logits = net.onnx_nodes(&mut g, &m.params, &x)?;
    Ok(finish_with_softmax(
        g,
        &logits,
        m.info.class_names.len(),
        IMAGE_ONNX_DOC,
    ))
}

/// The graph's output: `probabilities` `[batch, classes]`, the softmax of `logits`.
fn finish_with_softmax(mut g: OnnxGraph, logits: &str, classes: usize, doc: &str) -> Vec<u8> {
    let probs = g.node(
        "Softmax",
        &[logits],
        "probabilities",
        &[("axis", target_models::onnx::Attr::Int(-1))],
    );
    g.output(&probs, &[Dim::Named("batch"), Dim::Fixed(classes)]);
    g.finish(doc)
}
