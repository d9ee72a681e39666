//! A tiny random BERT for tests of the text generators.

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use target_models::bert::{BertConfig, BertModel, Flavor};
use target_models::lora::LoraConfig;

/// A tiny random BERT written to `dir` as a Hugging Face checkpoint and loaded back, so its
/// base weights are frozen tensors as MiniLM's are (a second call loads the same weights).
pub fn tiny_bert(dir: &std::path::Path, lora: LoraConfig) -> BertModel {
    if !dir.join("config.json").exists() {
        let cfg = BertConfig::tiny(Flavor::Bert, 2);
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        BertModel::from_vb(&vb, cfg.clone(), LoraConfig::none()).unwrap();
        vm.save(dir.join("model.safetensors")).unwrap();
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_string(&cfg.to_hf_json()).unwrap(),
        )
        .unwrap();
    }
    BertModel::load(dir, lora, &Device::Cpu)
        .unwrap()
        .with_fused_inference(true)
}
