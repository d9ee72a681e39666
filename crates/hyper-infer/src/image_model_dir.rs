//! A generated image model on disk: a **PEFT adapter directory** (`adapter_config.json` +
//! `adapter_model.safetensors` with conv-LoRA keys as PEFT writes them and the new `fc`
//! saved whole, loadable on the torchvision ResNet layout) plus `model.json` (backbone,
//! input size, class names) and `requirement.txt`. Written as a unit (see
//! [`crate::model_dir::write_dir_atomically`]).

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use candle_core::Device;
use hyper_core::io::atomic_write;
use hyper_core::ParamMap;
use serde::{Deserialize, Serialize};
use target_models::peft::{export_adapter, AdapterConfig};
use target_models::resnet::ResNet;

use crate::model_dir::write_dir_atomically;
use crate::vision::{BackboneConfig, CvLoraConfig};

/// `model.json`'s `format` for image models.
pub const IMAGE_MODEL_FORMAT: &str = "hyper-image-model-v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageModelInfo {
    pub format: String,
    /// The backbone the adapter is for: its shape and weights file (relative to the
    /// workspace root unless absolute).
    pub backbone: BackboneConfig,
    pub backbone_weights: std::path::PathBuf,
    pub lora: CvLoraConfig,
    /// Class names in output order.
    pub class_names: Vec<String>,
    /// The built-in image set it was generated for, if any.
    pub image_set: Option<String>,
    pub requirement: String,
    /// The generator checkpoint it came from.
    pub generator: String,
    /// The split of a folder's images it was generated (and finetuned) on, for
    /// `eval --split`.
    #[serde(default)]
    pub split: Option<crate::data_split::DataSplit>,
    /// How an image of another size becomes `image_size²` (one policy for every path).
    #[serde(default = "resize_policy")]
    pub resize: String,
    /// How `fc` was made: fitted on the training split's features (folders) or generated
    /// (built-in sets, and directories from before the fitted head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<serde_json::Value>,
}

/// The one resize policy of image models: what [`datasets::images::resize`] does.
pub const RESIZE_POLICY: &str = "RGB in [0, 1] (grey repeated, alpha dropped), resized to \
image_size x image_size by bilinear interpolation on float values with half-pixel centres, \
antialiased when shrinking (PyTorch interpolate(mode='bilinear', align_corners=False, \
antialias=True), as torchvision's Resize), no crop; then (x - mean) / std per channel";

fn resize_policy() -> String {
    RESIZE_POLICY.into()
}

/// The backbone's file name inside an image model directory: each directory carries its own
/// copy (a few MB), so it loads without this tool's checkout.
pub const BACKBONE_FILE: &str = "backbone.safetensors";

pub struct ImageModelDir {
    pub info: ImageModelInfo,
    pub adapter: AdapterConfig,
    /// Conv-LoRA factors and `fc.weight|bias`, the backbone's key names.
    pub params: ParamMap,
    /// The directory it was loaded from (`None` before it is written).
    pub dir: Option<std::path::PathBuf>,
}

impl ImageModelDir {
    pub fn new(info: ImageModelInfo, base: &ResNet, params: ParamMap) -> Self {
        Self {
            adapter: base.adapter_config(BACKBONE_FILE),
            info,
            params,
            dir: None,
        }
    }

    /// Whether `dir` holds an image model (its `model.json` says so).
    pub fn is_image_model(dir: &Path) -> bool {
        crate::text_model_dir::model_format(dir).is_some_and(|f| f == IMAGE_MODEL_FORMAT)
    }

    fn check_head(&self, dir: &Path) -> anyhow::Result<()> {
        let w = self
            .params
            .get("fc.weight")
            .map_err(|_| anyhow!("{}: the adapter has no `fc` head", dir.display()))?;
        if w.dim(0)? != self.info.class_names.len() {
            bail!(
                "{}: the head has {} outputs but model.json names {} classes",
                dir.display(),
                w.dim(0)?,
                self.info.class_names.len()
            );
        }
        Ok(())
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        self.save_with_card(dir, &Default::default())
    }

    /// [`Self::save`] with what the model card says beyond the directory's own files.
    pub fn save_with_card(
        &self,
        dir: &Path,
        notes: &crate::model_card::CardNotes,
    ) -> anyhow::Result<()> {
        self.check_head(dir)?;
        crate::manifest::check_finite(&self.params, crate::text_model_dir::ADAPTER_WEIGHTS)?;
        let source = self.backbone_path();
        let backbone = std::fs::read(&source)
            .with_context(|| format!("reading the backbone {}", source.display()))?;
        let info = ImageModelInfo {
            backbone_weights: BACKBONE_FILE.into(),
            ..self.info.clone()
        };
        write_dir_atomically(dir, |s| {
            export_adapter(s, &self.adapter, &self.params)?;
            atomic_write(&s.join(BACKBONE_FILE), &backbone)?;
            atomic_write(
                &s.join("model.json"),
                serde_json::to_string_pretty(&info)?.as_bytes(),
            )?;
            atomic_write(
                &s.join("requirement.txt"),
                format!("{}\n", self.info.requirement).as_bytes(),
            )?;
            atomic_write(
                &s.join(crate::model_card::CARD),
                crate::model_card::image_card(&info, notes).as_bytes(),
            )
        })
    }

    pub fn load(dir: &Path, dev: &Device) -> anyhow::Result<Self> {
        let info: ImageModelInfo = crate::text_model_dir::read_model_json(
            dir,
            "image",
            |i: &ImageModelInfo| &i.format,
            IMAGE_MODEL_FORMAT,
        )?;
        let (adapter, params) = crate::text_model_dir::import_checked(dir, dev)?;
        let m = Self {
            info,
            adapter,
            params,
            dir: Some(dir.to_path_buf()),
        };
        m.check_head(dir)?;
        Ok(m)
    }

    /// The backbone's weights file: the directory's own copy, else (a model not yet
    /// written, or a directory from before the copy) the generator's file, relative to the
    /// workspace root.
    fn backbone_path(&self) -> std::path::PathBuf {
        let w = &self.info.backbone_weights;
        match &self.dir {
            Some(d) if d.join(w).is_file() => d.join(w),
            _ => crate::vision::resolve(w),
        }
    }

    /// The frozen backbone this adapter is for, with its LoRA slots.
    pub fn backbone(&self, dev: &Device) -> anyhow::Result<ResNet> {
        let path = self.backbone_path();
        ResNet::load(
            &path,
            self.info.backbone.resnet()?,
            self.info.lora.lora_config(),
            dev,
        )
        .with_context(|| format!("loading the backbone {}", path.display()))
    }
}
