//! A generated text model on disk: a **PEFT adapter directory** (`adapter_config.json` +
//! `adapter_model.safetensors`, loadable with `PeftModel.from_pretrained` on the Hugging
//! Face base model, the classifier saved as a `modules_to_save` module) plus `model.json`
//! (base model, task, label names, columns, tokenization) and `requirement.txt`.
//! Written as a unit (see [`crate::model_dir::write_dir_atomically`]).

use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context};
use candle_core::Device;
use hyper_core::io::atomic_write;
use hyper_core::ParamMap;
use serde::{Deserialize, Serialize};
use target_models::bert::BertModel;
use target_models::peft::{export_adapter, import_adapter, AdapterConfig};

use crate::manifest::check_finite;
use crate::model_dir::write_dir_atomically;

/// The adapter weights file of text and image model directories (PEFT's name).
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// The adapter of a text or image model directory, after its manifest check, with every
/// weight finite.
pub fn import_checked(dir: &Path, dev: &Device) -> anyhow::Result<(AdapterConfig, ParamMap)> {
    crate::manifest::verify(dir)?;
    let (adapter, params) = import_adapter(dir, dev)?;
    check_finite(&params, &dir.join(ADAPTER_WEIGHTS).display().to_string())?;
    Ok((adapter, params))
}

/// `model.json`'s `format` for text models.
pub const TEXT_MODEL_FORMAT: &str = "hyper-text-model-v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextModelInfo {
    pub format: String,
    /// Hugging Face id of the base model the adapter is for.
    pub base_model: String,
    /// `seq_cls` or `seq_reg`.
    pub task: String,
    /// Class names in output order (for `seq_reg`: the one target name).
    pub label_names: Vec<String>,
    /// The GLUE task it was generated for, if any.
    pub glue_task: Option<String>,
    /// CSV columns a user model reads (GLUE models: the task's own layout).
    pub text_column: Option<String>,
    pub text_pair_column: Option<String>,
    pub target: Option<String>,
    pub max_len: usize,
    pub requirement: String,
    /// The generator checkpoint it came from.
    pub generator: String,
    /// The split of a CSV's rows it was generated (and finetuned) on, for `eval --split`.
    #[serde(default)]
    pub split: Option<crate::data_split::DataSplit>,
    /// What the head reads: `cls` (Hugging Face's sequence-classification heads, the
    /// generated head) or `mean` (the fitted head). Directories from before it are `cls`.
    #[serde(default)]
    pub pooling: target_models::bert::Pooling,
}

impl TextModelInfo {
    pub fn is_regression(&self) -> bool {
        self.task == "seq_reg"
    }
}

/// `dir/model.json` of a model directory of `kind` (`text`, `image`), checked to carry
/// `format`.
pub fn read_model_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    kind: &str,
    format_of: impl Fn(&T) -> &String,
    format: &str,
) -> anyhow::Result<T> {
    crate::model_dir::ensure_model_dir(dir)?;
    let p = dir.join("model.json");
    let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    let info: T = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a {kind} model description", p.display()))?;
    if format_of(&info) != format {
        bail!(
            "{}: format `{}` is not supported (expected `{format}`)",
            p.display(),
            format_of(&info)
        );
    }
    Ok(info)
}

/// The `format` field of `dir/model.json`, if it has one.
pub fn model_format(dir: &Path) -> Option<String> {
    std::fs::read(dir.join("model.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_owned))
}

pub struct TextModelDir {
    pub info: TextModelInfo,
    pub adapter: AdapterConfig,
    /// LoRA factors and the head (`classifier.weight|bias`), our key names.
    pub params: ParamMap,
}

impl TextModelDir {
    pub fn new(info: TextModelInfo, base: &BertModel, params: ParamMap) -> Self {
        Self {
            adapter: base.adapter_config(&info.base_model),
            info,
            params,
        }
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        self.save_with_card(dir, &Default::default())
    }

    /// [`Self::save`] with what the model card says beyond the directory's own files. The
    /// directory also gets the base model's tokenizer and the label mapping, so it loads
    /// with `transformers` alone.
    pub fn save_with_card(
        &self,
        dir: &Path,
        notes: &crate::model_card::CardNotes,
    ) -> anyhow::Result<()> {
        let w = self.params.get("classifier.weight")?;
        ensure!(
            w.dim(0)? == self.info.label_names.len(),
            "head has {} outputs but {} label names",
            w.dim(0)?,
            self.info.label_names.len()
        );
        check_finite(&self.params, ADAPTER_WEIGHTS)?;
        let tokenizer = datasets::paths::minilm_dir()?.join("tokenizer.json");
        let tokenizer = std::fs::read(&tokenizer)
            .with_context(|| format!("reading the tokenizer {}", tokenizer.display()))?;
        write_dir_atomically(dir, |s| {
            export_adapter(s, &self.adapter, &self.params)?;
            atomic_write(
                &s.join("model.json"),
                serde_json::to_string_pretty(&self.info)?.as_bytes(),
            )?;
            atomic_write(
                &s.join("requirement.txt"),
                format!("{}\n", self.info.requirement).as_bytes(),
            )?;
            atomic_write(&s.join("tokenizer.json"), &tokenizer)?;
            let tokenizer_config = serde_json::json!({
                "tokenizer_class": "BertTokenizerFast",
                "do_lower_case": true,
                "model_max_length": self.info.max_len,
            });
            atomic_write(
                &s.join("tokenizer_config.json"),
                serde_json::to_string_pretty(&tokenizer_config)?.as_bytes(),
            )?;
            let names = &self.info.label_names;
            let labels = serde_json::json!({
                "id2label": names.iter().enumerate().map(|(i, n)| (i.to_string(), n.clone())).collect::<std::collections::BTreeMap<_, _>>(),
                "label2id": names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect::<std::collections::BTreeMap<_, _>>(),
            });
            atomic_write(
                &s.join("labels.json"),
                serde_json::to_string_pretty(&labels)?.as_bytes(),
            )?;
            atomic_write(
                &s.join(crate::model_card::CARD),
                crate::model_card::text_card(&self.info, notes).as_bytes(),
            )
        })
    }

    /// Whether `dir` holds a text model (its `model.json` says so).
    pub fn is_text_model(dir: &Path) -> bool {
        model_format(dir).is_some_and(|f| f == TEXT_MODEL_FORMAT)
    }

    pub fn load(dir: &Path, dev: &Device) -> anyhow::Result<Self> {
        let info: TextModelInfo = read_model_json(
            dir,
            "text",
            |i: &TextModelInfo| &i.format,
            TEXT_MODEL_FORMAT,
        )?;
        let (adapter, params) = import_checked(dir, dev)?;
        let w = params
            .get("classifier.weight")
            .map_err(|_| anyhow!("{}: the adapter has no classifier head", dir.display()))?;
        if w.dim(0)? != info.label_names.len() {
            bail!(
                "{}: the head has {} outputs but model.json names {} labels",
                dir.display(),
                w.dim(0)?,
                info.label_names.len()
            );
        }
        Ok(Self {
            info,
            adapter,
            params,
        })
    }
}
