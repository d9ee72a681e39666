//! Hugging Face PEFT adapter directories: `adapter_config.json` + `adapter_model.safetensors`.
//!
//! File keys are PEFT's saved keys: `base_model.model.<module>.lora_A.weight` /
//! `…lora_B.weight` for adapted modules and `base_model.model.<module>.weight|bias` for
//! `modules_to_save` (the task head). Our `ParamMap` keys are the same without the
//! `base_model.model.` prefix, so export and import are a rename plus checks.
//! Load in Python with `PeftModel.from_pretrained(base_model, dir)`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context;
use candle_core::{DType, Device};
use hyper_core::io::atomic_write;
use hyper_core::ParamMap;
use serde::{Deserialize, Serialize};

use crate::lora::{LoraConfig, TargetModules};

/// Prefix PEFT puts before every saved key.
pub const KEY_PREFIX: &str = "base_model.model.";
pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// The fields of PEFT's `LoraConfig` that describe a plain LoRA adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    pub peft_type: String,
    pub r: usize,
    #[serde(serialize_with = "int_if_whole")]
    pub lora_alpha: f64,
    pub lora_dropout: f32,
    pub target_modules: TargetModules,
    #[serde(default)]
    pub task_type: Option<String>,
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default = "bias_none")]
    pub bias: String,
    #[serde(default)]
    pub fan_in_fan_out: bool,
    #[serde(default = "yes")]
    pub inference_mode: bool,
    #[serde(default = "yes")]
    pub init_lora_weights: bool,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub use_dora: bool,
    #[serde(default)]
    pub layers_to_transform: Option<serde_json::Value>,
    #[serde(default)]
    pub layers_pattern: Option<serde_json::Value>,
    #[serde(default)]
    pub rank_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub alpha_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub revision: Option<String>,
}

fn bias_none() -> String {
    "none".into()
}
fn yes() -> bool {
    true
}

/// PEFT writes `lora_alpha` as an int; keep that when it is whole.
fn int_if_whole<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

impl AdapterConfig {
    pub fn new(
        lora: &LoraConfig,
        task_type: Option<&str>,
        modules_to_save: Vec<String>,
        base_model_name_or_path: &str,
    ) -> Self {
        Self {
            peft_type: "LORA".into(),
            r: lora.r,
            lora_alpha: lora.lora_alpha,
            lora_dropout: lora.lora_dropout,
            target_modules: lora.target_modules.clone(),
            task_type: task_type.map(str::to_string),
            modules_to_save: Some(modules_to_save),
            base_model_name_or_path: Some(base_model_name_or_path.into()),
            bias: bias_none(),
            fan_in_fan_out: false,
            inference_mode: true,
            init_lora_weights: true,
            use_rslora: false,
            use_dora: false,
            layers_to_transform: None,
            layers_pattern: None,
            rank_pattern: BTreeMap::new(),
            alpha_pattern: BTreeMap::new(),
            revision: None,
        }
    }

    /// The LoRA hyper-parameters to build a model with.
    pub fn lora_config(&self) -> LoraConfig {
        LoraConfig {
            r: self.r,
            lora_alpha: self.lora_alpha,
            lora_dropout: self.lora_dropout,
            target_modules: self.target_modules.clone(),
        }
    }

    /// Rejects what our models cannot reproduce, naming the field.
    fn check(&self, src: &str) -> anyhow::Result<()> {
        let bad = |what: String| Err(anyhow::anyhow!("{src}: {what}"));
        if self.peft_type != "LORA" {
            return bad(format!(
                "peft_type is `{}`, only LORA is supported",
                self.peft_type
            ));
        }
        if self.r == 0 {
            return bad("r must be positive".into());
        }
        if self.bias != "none" {
            return bad(format!(
                "bias is `{}`, only \"none\" is supported",
                self.bias
            ));
        }
        if self.fan_in_fan_out {
            return bad("fan_in_fan_out = true is not supported".into());
        }
        if self.use_dora || self.use_rslora {
            return bad("use_dora / use_rslora are not supported".into());
        }
        if !self.rank_pattern.is_empty() || !self.alpha_pattern.is_empty() {
            return bad("per-module rank_pattern / alpha_pattern are not supported".into());
        }
        self.target_modules
            .matcher()
            .map_err(|e| anyhow::anyhow!("{src}: {e}"))?;
        Ok(())
    }

    fn is_saved_module(&self, module: &str) -> bool {
        self.modules_to_save
            .iter()
            .flatten()
            .any(|m| module == m || module.ends_with(&format!(".{m}")))
    }
}

/// Splits a ParamMap key into (module, kind) and checks it belongs in an adapter file.
fn classify_key<'a>(cfg: &AdapterConfig, key: &'a str) -> anyhow::Result<(&'a str, Kind)> {
    for (suffix, kind) in [(".lora_A.weight", Kind::A), (".lora_B.weight", Kind::B)] {
        if let Some(m) = key.strip_suffix(suffix) {
            return Ok((m, kind));
        }
    }
    let module = key.rsplit_once('.').map(|(m, _)| m).unwrap_or("");
    if cfg.is_saved_module(module) {
        return Ok((module, Kind::Saved));
    }
    anyhow::bail!(
        "tensor `{key}` is neither a LoRA factor nor in modules_to_save {:?}",
        cfg.modules_to_save.as_deref().unwrap_or(&[])
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    A,
    B,
    Saved,
}

/// Checks that every A has its B with matching rank, and the rank is the config's.
fn check_tensors(cfg: &AdapterConfig, params: &ParamMap, src: &str) -> anyhow::Result<()> {
    let r = cfg.r;
    for (key, t) in params.iter() {
        let (module, kind) = classify_key(cfg, key).map_err(|e| anyhow::anyhow!("{src}: {e}"))?;
        let dims = t.dims();
        match kind {
            Kind::A => {
                if !(dims.len() == 2 || dims.len() == 4) || dims[0] != r {
                    anyhow::bail!("{src}: `{key}` has shape {dims:?}, expected [r={r}, in] or [r={r}, in, kh, kw]");
                }
                let bkey = format!("{module}.lora_B.weight");
                if !params.0.contains_key(&bkey) {
                    anyhow::bail!("{src}: `{key}` has no matching `{bkey}`");
                }
            }
            Kind::B => {
                let ok = match dims.len() {
                    2 => dims[1] == r,
                    4 => dims[1] == r && dims[2] == 1 && dims[3] == 1,
                    _ => false,
                };
                if !ok {
                    anyhow::bail!("{src}: `{key}` has shape {dims:?}, expected [out, r={r}] or [out, r={r}, 1, 1]");
                }
                let akey = format!("{module}.lora_A.weight");
                if !params.0.contains_key(&akey) {
                    anyhow::bail!("{src}: `{key}` has no matching `{akey}`");
                }
            }
            Kind::Saved => {}
        }
    }
    Ok(())
}

/// Writes a PEFT adapter directory (created if missing): `params` keyed as in our models'
/// `ParamMap` (LoRA factors + head tensors named in `cfg.modules_to_save`).
pub fn export_adapter(dir: &Path, cfg: &AdapterConfig, params: &ParamMap) -> anyhow::Result<()> {
    let src = dir.display().to_string();
    cfg.check(&src)?;
    check_tensors(cfg, params, &src)?;
    let mut tensors = Vec::with_capacity(params.len());
    for (k, t) in params.iter() {
        let t = t
            .detach()
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .contiguous()?;
        tensors.push((format!("{KEY_PREFIX}{k}"), t));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(meta))
        .with_context(|| format!("serialising {WEIGHTS_FILE}"))?;
    atomic_write(&dir.join(WEIGHTS_FILE), &bytes)?;
    let json = serde_json::to_string_pretty(cfg)?;
    atomic_write(&dir.join(CONFIG_FILE), json.as_bytes())?;
    Ok(())
}

/// Reads a PEFT adapter directory back into its config and a `ParamMap` with our keys.
pub fn import_adapter(dir: &Path, device: &Device) -> anyhow::Result<(AdapterConfig, ParamMap)> {
    let cfg_path = dir.join(CONFIG_FILE);
    let src = cfg_path.display().to_string();
    let text = std::fs::read_to_string(&cfg_path).with_context(|| format!("reading {src}"))?;
    let cfg: AdapterConfig =
        serde_json::from_str(&text).with_context(|| format!("{src}: not a PEFT LoRA config"))?;
    cfg.check(&src)?;

    let wpath = dir.join(WEIGHTS_FILE);
    let wsrc = wpath.display().to_string();
    if !wpath.is_file() && dir.join("adapter_model.bin").is_file() {
        anyhow::bail!(
            "{}: only adapter_model.bin (pickle) found; re-save the adapter with safe_serialization=True",
            dir.display()
        );
    }
    let bytes = std::fs::read(&wpath).with_context(|| format!("reading {wsrc}"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{wsrc}: corrupt or truncated safetensors file: {e}"))?;
    let mut params = ParamMap::new();
    for (key, view) in st.tensors() {
        let Some(name) = key.strip_prefix(KEY_PREFIX) else {
            anyhow::bail!("{wsrc}: key `{key}` does not start with `{KEY_PREFIX}`");
        };
        let t = candle_core::safetensors::Load::load(&view, device)
            .with_context(|| format!("{wsrc}: tensor `{key}`"))?
            .to_dtype(DType::F32)?;
        params.insert(name, t);
    }
    if params.is_empty() {
        anyhow::bail!("{wsrc}: no tensors");
    }
    check_tensors(&cfg, &params, &wsrc)?;
    Ok((cfg, params))
}
