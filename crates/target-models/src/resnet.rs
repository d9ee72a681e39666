//! ResNet (18/50/152 and tiny test variants) with torchvision state-dict names, BatchNorm
//! always in eval mode with frozen statistics and affine parameters, LoRA on the convs
//! inside residual blocks, and a new `fc` supplied through `ParamMap`.
//!
//! Real weights: convert torchvision's `resnet50-*.pth` once with
//! `safetensors.torch.save_file(torch.load(p), "resnet50.safetensors")` and pass that file
//! to [`ResNet::load`]; every key (`conv1.weight`, `bn1.running_mean`,
//! `layer1.0.downsample.0.weight`, …) loads as is; the ImageNet `fc` is ignored because the
//! task head comes from `ParamMap` (`fc.weight`, `fc.bias`).

use std::path::Path;

use anyhow::Context;
use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};
use hyper_core::{Metadata, ParamMap, ParamRole, ParamSpec};
use serde::{Deserialize, Serialize};

use crate::lora::{self, LoraConfig};
use crate::peft::AdapterConfig;
use crate::TargetModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Two 3×3 convs (ResNet-18/34).
    Basic,
    /// 1×1 → 3×3 (strided) → 1×1 with 4× expansion (ResNet-50/101/152, torchvision v1.5).
    Bottleneck,
}

/// Depth and width; `width` is the stem's channel count (64 in torchvision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResNetConfig {
    pub block: BlockKind,
    pub layers: [usize; 4],
    #[serde(default = "default_width")]
    pub width: usize,
    #[serde(default = "default_bn_eps")]
    pub bn_eps: f64,
}

fn default_width() -> usize {
    64
}
fn default_bn_eps() -> f64 {
    1e-5
}

/// One conv of the network: torchvision name and geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvInfo {
    pub name: String,
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvInfo {
    /// Shapes of this conv's LoRA factors at rank `r`, as PEFT's `Conv2d` adapter: A is a
    /// conv like this one into `r` channels, B a 1×1 conv from `r` to `cout`.
    fn lora_shapes(&self, r: usize) -> (Vec<usize>, Vec<usize>) {
        let (k, cin, cout) = (self.kernel, self.cin, self.cout);
        (vec![r, cin, k, k], vec![cout, r, 1, 1])
    }
}

impl ResNetConfig {
    pub fn resnet18() -> Self {
        Self::new(BlockKind::Basic, [2, 2, 2, 2], 64)
    }
    pub fn resnet50() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3], 64)
    }
    pub fn resnet152() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 8, 36, 3], 64)
    }
    /// ResNet-50's topology at 1/16 of the width: same names, fast tests.
    pub fn tiny50() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3], 4)
    }
    /// One block per stage, both block kinds, for the quickest tests.
    pub fn tiny(block: BlockKind) -> Self {
        Self::new(block, [1, 1, 1, 1], 4)
    }

    pub fn new(block: BlockKind, layers: [usize; 4], width: usize) -> Self {
        Self {
            block,
            layers,
            width,
            bn_eps: default_bn_eps(),
        }
    }

    /// `arch` as in the Model Generator's metadata.
    pub fn from_arch(arch: &str) -> std::result::Result<Self, String> {
        match arch {
            "resnet18" => Ok(Self::resnet18()),
            "resnet50" => Ok(Self::resnet50()),
            "resnet152" => Ok(Self::resnet152()),
            other => Err(format!(
                "arch `{other}` is not a ResNet; allowed: resnet18, resnet50, resnet152"
            )),
        }
    }

    pub fn expansion(&self) -> usize {
        match self.block {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }

    /// Channels entering `fc`.
    pub fn feature_dim(&self) -> usize {
        self.width * 8 * self.expansion()
    }

    /// Every conv in torchvision order: stem, then per block conv1..3 and downsample.0.
    pub fn convs(&self) -> Vec<ConvInfo> {
        let c = |name: String, cin, cout, kernel, stride, padding| ConvInfo {
            name,
            cin,
            cout,
            kernel,
            stride,
            padding,
        };
        let mut v = vec![c("conv1".into(), 3, self.width, 7, 2, 3)];
        let exp = self.expansion();
        let mut cin = self.width;
        for (l, &n) in self.layers.iter().enumerate() {
            let planes = self.width << l;
            for j in 0..n {
                let stride = if j == 0 && l > 0 { 2 } else { 1 };
                let p = format!("layer{}.{j}", l + 1);
                match self.block {
                    BlockKind::Basic => {
                        v.push(c(format!("{p}.conv1"), cin, planes, 3, stride, 1));
                        v.push(c(format!("{p}.conv2"), planes, planes, 3, 1, 1));
                    }
                    BlockKind::Bottleneck => {
                        v.push(c(format!("{p}.conv1"), cin, planes, 1, 1, 0));
                        v.push(c(format!("{p}.conv2"), planes, planes, 3, stride, 1));
                        v.push(c(format!("{p}.conv3"), planes, planes * exp, 1, 1, 0));
                    }
                }
                if stride != 1 || cin != planes * exp {
                    v.push(c(
                        format!("{p}.downsample.0"),
                        cin,
                        planes * exp,
                        1,
                        stride,
                        0,
                    ));
                }
                cin = planes * exp;
            }
        }
        v
    }
}

#[derive(Clone)]
struct Conv {
    info: ConvInfo,
    w: Tensor,
    lora: bool,
}

/// Eval-mode BatchNorm folded to `x·scale + shift` (per channel, shaped `[1,C,1,1]`).
#[derive(Clone)]
struct Bn {
    scale: Tensor,
    shift: Tensor,
}

#[derive(Clone)]
struct Block {
    convs: Vec<(Conv, Bn)>,
    downsample: Option<(Conv, Bn)>,
}

/// See the module docs.
#[derive(Clone)]
pub struct ResNet {
    cfg: ResNetConfig,
    lora: LoraConfig,
    stem: (Conv, Bn),
    blocks: Vec<Block>,
}

impl ResNet {
    /// Loads torchvision-named weights from a safetensors file.
    pub fn load(
        path: &Path,
        cfg: ResNetConfig,
        lora: LoraConfig,
        device: &Device,
    ) -> anyhow::Result<Self> {
        if !path.is_file() {
            anyhow::bail!("{}: no such file", path.display());
        }
        // SAFETY: the file is mapped read-only and not modified while the model lives.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device)
                .with_context(|| format!("reading {}", path.display()))?
        };
        let model =
            Self::from_vb(&vb, cfg, lora).with_context(|| format!("loading {}", path.display()))?;
        tracing::debug!(
            path = %path.display(),
            lora_modules = model.lora_modules().len(),
            "loaded ResNet"
        );
        Ok(model)
    }

    /// Builds from a `VarBuilder` at the state-dict root; a `VarMap`-backed builder gives
    /// random weights (kaiming-normal convs, identity BatchNorm).
    pub fn from_vb(vb: &VarBuilder, cfg: ResNetConfig, lora: LoraConfig) -> Result<Self> {
        lora.validate()?;
        let matcher = lora.target_modules.matcher()?;
        let conv = |info: ConvInfo| -> Result<Conv> {
            let fan_out = info.cout * info.kernel * info.kernel;
            let w = vb.get_with_hints(
                (info.cout, info.cin, info.kernel, info.kernel),
                &format!("{}.weight", info.name),
                Init::Randn {
                    mean: 0.0,
                    stdev: (2.0 / fan_out as f64).sqrt(),
                },
            )?;
            let lora = matcher.matches(&info.name);
            Ok(Conv { info, w, lora })
        };
        let bn = |name: &str, c: usize| -> Result<Bn> {
            let g = |s: &str, v: f64| vb.get_with_hints(c, &format!("{name}.{s}"), Init::Const(v));
            let (w, b) = (g("weight", 1.0)?, g("bias", 0.0)?);
            let (mean, var) = (g("running_mean", 0.0)?, g("running_var", 1.0)?);
            let scale = (w / (var + cfg.bn_eps)?.sqrt()?)?;
            let shift = (b - (mean * &scale)?)?;
            Ok(Bn {
                scale: scale.detach().reshape((1, c, 1, 1))?,
                shift: shift.detach().reshape((1, c, 1, 1))?,
            })
        };
        let bn_name = |conv: &str| -> String {
            match conv.strip_suffix(".downsample.0") {
                Some(p) => format!("{p}.downsample.1"),
                None => conv.replace("conv", "bn"),
            }
        };
        let infos = cfg.convs();
        let mut it = infos.into_iter().peekable();
        let stem_info = it.next().expect("stem conv");
        let stem = (conv(stem_info.clone())?, bn("bn1", stem_info.cout)?);
        let per_block = match cfg.block {
            BlockKind::Basic => 2,
            BlockKind::Bottleneck => 3,
        };
        let mut blocks = Vec::new();
        while it.peek().is_some() {
            let mut convs = Vec::with_capacity(per_block);
            for _ in 0..per_block {
                let info = it.next().expect("block conv");
                let b = bn(&bn_name(&info.name), info.cout)?;
                convs.push((conv(info)?, b));
            }
            let downsample = match it.peek() {
                Some(i) if i.name.ends_with("downsample.0") => {
                    let info = it.next().expect("downsample conv");
                    let b = bn(&bn_name(&info.name), info.cout)?;
                    Some((conv(info)?, b))
                }
                _ => None,
            };
            blocks.push(Block { convs, downsample });
        }
        Ok(Self {
            cfg,
            lora,
            stem,
            blocks,
        })
    }

    pub fn config(&self) -> &ResNetConfig {
        &self.cfg
    }

    pub fn lora_config(&self) -> &LoraConfig {
        &self.lora
    }

    fn all_convs(&self) -> impl Iterator<Item = &Conv> {
        std::iter::once(&self.stem.0).chain(
            self.blocks
                .iter()
                .flat_map(|b| b.convs.iter().chain(b.downsample.iter()).map(|(c, _)| c)),
        )
    }

    /// Names of the LoRA-adapted convs in forward order.
    pub fn lora_modules(&self) -> Vec<String> {
        self.all_convs()
            .filter(|c| c.lora)
            .map(|c| c.info.name.clone())
            .collect()
    }

    /// LoRA A/B of every adapted conv, then `fc` for `num_classes` outputs.
    pub fn param_spec_for(&self, num_classes: usize) -> Vec<ParamSpec> {
        let r = self.lora.r;
        let mut v = Vec::new();
        for c in self.all_convs().filter(|c| c.lora) {
            let (a, b) = c.info.lora_shapes(r);
            v.extend(lora::lora_specs(&c.info.name, a, b, &self.lora));
        }
        let f = self.cfg.feature_dim();
        for (name, shape) in [
            ("fc.weight", vec![num_classes, f]),
            ("fc.bias", vec![num_classes]),
        ] {
            v.push(ParamSpec {
                name: name.into(),
                shape,
                role: ParamRole::DynamicPerTask,
            });
        }
        v
    }

    /// PEFT's adapter config (custom model: no task_type; the new `fc` is saved whole).
    pub fn adapter_config(&self, base_model_name_or_path: &str) -> AdapterConfig {
        AdapterConfig::new(&self.lora, None, vec!["fc".into()], base_model_name_or_path)
    }

    fn conv(&self, c: &Conv, x: &Tensor, params: &ParamMap, train: bool) -> Result<Tensor> {
        let i = &c.info;
        let y = lora::conv2d(x, &c.w, i.stride, i.padding)?;
        if !c.lora {
            return Ok(y);
        }
        let (a_shape, b_shape) = i.lora_shapes(self.lora.r);
        let (a, b) = lora::factors(params, &i.name, &a_shape, &b_shape)?;
        let d = lora::conv_delta(
            x,
            a,
            b,
            i.stride,
            i.padding,
            self.lora.scaling(),
            self.lora.lora_dropout,
            train,
        )?;
        y + d
    }

    fn conv_bn(
        &self,
        cb: &(Conv, Bn),
        x: &Tensor,
        params: &ParamMap,
        train: bool,
    ) -> Result<Tensor> {
        let y = self.conv(&cb.0, x, params, train)?;
        y.broadcast_mul(&cb.1.scale)?.broadcast_add(&cb.1.shift)
    }

    /// Pooled features `[batch, feature_dim]` of images `[batch, 3, H, W]` (any size; the
    /// reference code uses 32×32, ImageNet weights expect 224×224).
    pub fn features(&self, params: &ParamMap, x: &Tensor, train: bool) -> Result<Tensor> {
        let (_, c, _, _) = x.dims4()?;
        if c != 3 {
            candle_core::bail!(
                "ResNet expects 3-channel images [batch, 3, H, W], got {c} channels"
            );
        }
        // Zero padding equals torchvision's -inf padding here: the input is post-ReLU (≥ 0).
        let mut x = self
            .conv_bn(&self.stem, x, params, train)?
            .relu()?
            .pad_with_zeros(D::Minus1, 1, 1)?
            .pad_with_zeros(D::Minus2, 1, 1)?
            .max_pool2d_with_stride(3, 2)?;
        for b in &self.blocks {
            let mut y = x.clone();
            let last = b.convs.len() - 1;
            for (k, cb) in b.convs.iter().enumerate() {
                y = self.conv_bn(cb, &y, params, train)?;
                if k < last {
                    y = y.relu()?;
                }
            }
            let identity = match &b.downsample {
                Some(ds) => self.conv_bn(ds, &x, params, train)?,
                None => x,
            };
            x = (y + identity)?.relu()?;
        }
        x.mean(D::Minus1)?.mean(D::Minus1)
    }

    /// Logits `[batch, num_classes]` through the supplied `fc`.
    pub fn classify(&self, params: &ParamMap, x: &Tensor, train: bool) -> Result<Tensor> {
        let f = self.features(params, x, train)?;
        let (w, b) = (params.get("fc.weight")?, params.get("fc.bias")?);
        let fd = self.cfg.feature_dim();
        if w.rank() != 2 || w.dim(1)? != fd {
            candle_core::bail!(
                "parameter `fc.weight` has shape {:?}, expected [num_classes, {fd}]",
                w.dims()
            );
        }
        lora::linear(&f, w, Some(b))
    }

    /// A copy with every adapter folded into its kernel and LoRA switched off.
    pub fn merge(&self, params: &ParamMap) -> Result<Self> {
        let mut m = self.clone();
        let r = self.lora.r;
        let s = self.lora.scaling();
        let convs = m.blocks.iter_mut().flat_map(|b| {
            b.convs
                .iter_mut()
                .chain(b.downsample.iter_mut())
                .map(|(c, _)| c)
        });
        for c in std::iter::once(&mut m.stem.0)
            .chain(convs)
            .filter(|c| c.lora)
        {
            let (a_shape, b_shape) = c.info.lora_shapes(r);
            let (a, b) = lora::factors(params, &c.info.name, &a_shape, &b_shape)?;
            c.w = lora::merge_conv(&c.w, &a.detach(), &b.detach(), s)?;
            c.lora = false;
        }
        m.lora = LoraConfig {
            target_modules: lora::TargetModules::List(vec![]),
            ..self.lora.clone()
        };
        Ok(m)
    }
}

impl TargetModel for ResNet {
    fn param_spec(&self, meta: &Metadata) -> Vec<ParamSpec> {
        self.param_spec_for(meta.out_dim)
    }

    /// `x`: normalised images `[batch, 3, H, W]`; output: logits.
    fn forward(&self, params: &ParamMap, x: &Tensor, train: bool) -> Result<Tensor> {
        self.classify(params, x, train)
    }
}
