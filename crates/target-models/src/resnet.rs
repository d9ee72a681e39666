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
use hyper_core::lora_generator::{LoraSlot, LoraTarget};
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

/// BatchNorm. Frozen (every adapted or finetuned model): eval mode folded to
/// `x·scale + shift` (per channel, shaped `[1,C,1,1]`, detached, so neither the statistics
/// nor the affine parameters ever change). Batch mode (backbone pretraining only):
/// normalised by the batch's statistics through `weight`/`bias`, which stay trainable.
#[derive(Clone)]
struct Bn {
    name: String,
    scale: Tensor,
    shift: Tensor,
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

/// One BatchNorm's statistics over a training batch (`[C]` each; the variance unbiased,
/// as PyTorch feeds its running estimate).
#[derive(Debug, Clone)]
pub struct BatchStats {
    /// State-dict prefix, e.g. `layer1.0.bn2`.
    pub name: String,
    pub mean: Tensor,
    pub var: Tensor,
}

impl Bn {
    fn forward(&self, x: &Tensor, stats: Option<&mut Vec<BatchStats>>) -> Result<Tensor> {
        let Some(stats) = stats else {
            return x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift);
        };
        let (n, c, h, w) = x.dims4()?;
        let mean = x.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc
            .sqr()?
            .mean_keepdim(0)?
            .mean_keepdim(2)?
            .mean_keepdim(3)?;
        let y = xc.broadcast_div(&(&var + self.eps)?.sqrt()?)?;
        let count = (n * h * w) as f64;
        stats.push(BatchStats {
            name: self.name.clone(),
            mean: mean.detach().reshape(c)?,
            var: (var.detach().reshape(c)? * (count / (count - 1.0).max(1.0)))?,
        });
        y.broadcast_mul(&self.weight.reshape((1, c, 1, 1))?)?
            .broadcast_add(&self.bias.reshape((1, c, 1, 1))?)
    }
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
            let scale = (&w / (var + cfg.bn_eps)?.sqrt()?)?;
            let shift = (&b - (mean * &scale)?)?;
            Ok(Bn {
                name: name.to_string(),
                scale: scale.detach().reshape((1, c, 1, 1))?,
                shift: shift.detach().reshape((1, c, 1, 1))?,
                weight: w,
                bias: b,
                eps: cfg.bn_eps,
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

    /// What the LoRA generator emits for: every adapted conv as a slot whose `in_dim` is
    /// the flattened kernel (`cin·k·k`; A is emitted as `[r, cin·k·k]`) and whose kind is
    /// its (in, out) shape, so convs of one shape share the generator's output layer;
    /// `layer` is the residual block. [`ResNet::from_generated`] gives the PEFT layout.
    pub fn lora_target(&self) -> LoraTarget {
        let mut shapes: Vec<(usize, usize)> = Vec::new();
        let mut slots = Vec::new();
        for c in self.all_convs().filter(|c| c.lora) {
            let i = &c.info;
            let shape = (i.cin * i.kernel * i.kernel, i.cout);
            let kind = match shapes.iter().position(|s| *s == shape) {
                Some(k) => k,
                None => {
                    shapes.push(shape);
                    shapes.len() - 1
                }
            };
            slots.push(LoraSlot {
                module: i.name.clone(),
                layer: self.block_index(&i.name),
                kind,
                in_dim: shape.0,
                out_dim: shape.1,
            });
        }
        LoraTarget {
            slots,
            r: self.lora.r,
            head_in: self.cfg.feature_dim(),
        }
    }

    /// Index of the residual block a conv belongs to, counted from 0 over all stages (the
    /// stem counts as block 0).
    fn block_index(&self, conv: &str) -> usize {
        let mut n = 0;
        for (l, &count) in self.cfg.layers.iter().enumerate() {
            for j in 0..count {
                if conv.starts_with(&format!("layer{}.{j}.", l + 1)) {
                    return n;
                }
                n += 1;
            }
        }
        0
    }

    /// The generator's output (linear-shaped LoRA pairs, `classifier.*`) in this model's
    /// layout: conv-shaped factors as PEFT's `Conv2d` adapter stores them and the head as
    /// `fc.*`. Reshapes only, so the tensors keep the generator's graph.
    pub fn from_generated(&self, generated: &ParamMap) -> Result<ParamMap> {
        let r = self.lora.r;
        let mut out = ParamMap::new();
        for c in self.all_convs().filter(|c| c.lora) {
            let (a_shape, b_shape) = c.info.lora_shapes(r);
            for (which, shape) in [("lora_A", a_shape), ("lora_B", b_shape)] {
                let key = format!("{}.{which}.weight", c.info.name);
                out.insert(key.clone(), generated.get(&key)?.reshape(shape)?);
            }
        }
        out.insert("fc.weight", generated.get("classifier.weight")?.clone());
        out.insert("fc.bias", generated.get("classifier.bias")?.clone());
        Ok(out)
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
        stats: &mut Option<&mut Vec<BatchStats>>,
    ) -> Result<Tensor> {
        let y = self.conv(&cb.0, x, params, train)?;
        cb.1.forward(&y, stats.as_deref_mut())
    }

    /// Pooled features `[batch, feature_dim]` of images `[batch, 3, H, W]` (any size; the
    /// reference code uses 32×32, ImageNet weights expect 224×224). BatchNorm is frozen.
    pub fn features(&self, params: &ParamMap, x: &Tensor, train: bool) -> Result<Tensor> {
        self.features_with(params, x, train, None)
    }

    /// Logits with BatchNorm in training mode (batch statistics, trainable affine), for
    /// pretraining the backbone; also returns every BatchNorm's batch statistics, from
    /// which the caller updates the running estimates.
    pub fn classify_batch_norm(
        &self,
        params: &ParamMap,
        x: &Tensor,
    ) -> Result<(Tensor, Vec<BatchStats>)> {
        let mut stats = Vec::new();
        let f = self.features_with(params, x, true, Some(&mut stats))?;
        Ok((self.head(params, &f)?, stats))
    }

    fn features_with(
        &self,
        params: &ParamMap,
        x: &Tensor,
        train: bool,
        mut stats: Option<&mut Vec<BatchStats>>,
    ) -> Result<Tensor> {
        let (_, c, _, _) = x.dims4()?;
        if c != 3 {
            candle_core::bail!(
                "ResNet expects 3-channel images [batch, 3, H, W], got {c} channels"
            );
        }
        let mut x = self
            .conv_bn(&self.stem, x, params, train, &mut stats)?
            .relu()?;
        x = max_pool_3x3_s2(&x)?;
        for b in &self.blocks {
            let mut y = x.clone();
            let last = b.convs.len() - 1;
            for (k, cb) in b.convs.iter().enumerate() {
                y = self.conv_bn(cb, &y, params, train, &mut stats)?;
                if k < last {
                    y = y.relu()?;
                }
            }
            let identity = match &b.downsample {
                Some(ds) => self.conv_bn(ds, &x, params, train, &mut stats)?,
                None => x,
            };
            x = (y + identity)?.relu()?;
        }
        x.mean(D::Minus1)?.mean(D::Minus1)
    }

    /// Logits `[batch, num_classes]` through the supplied `fc`.
    pub fn classify(&self, params: &ParamMap, x: &Tensor, train: bool) -> Result<Tensor> {
        let f = self.features(params, x, train)?;
        self.head(params, &f)
    }

    fn head(&self, params: &ParamMap, f: &Tensor) -> Result<Tensor> {
        let (w, b) = (params.get("fc.weight")?, params.get("fc.bias")?);
        let fd = self.cfg.feature_dim();
        if w.rank() != 2 || w.dim(1)? != fd {
            candle_core::bail!(
                "parameter `fc.weight` has shape {:?}, expected [num_classes, {fd}]",
                w.dims()
            );
        }
        lora::linear(f, w, Some(b))
    }

    /// Appends the adapted network to `g` after `input` (normalised images
    /// `[batch, 3, H, W]`): every adapter folded into its kernel ([`Self::merge`]), each
    /// frozen BatchNorm as its per-channel scale and shift, the stem pool, the blocks,
    /// global average pooling and `fc`; returns the logits' name. The same computation as
    /// [`Self::classify`] in eval mode.
    pub fn onnx_nodes(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        params: &ParamMap,
        input: &str,
    ) -> anyhow::Result<String> {
        use crate::onnx::Attr;
        let m = self.merge(params)?;
        let conv_bn =
            |g: &mut crate::onnx::OnnxGraph, cb: &(Conv, Bn), x: &str| -> anyhow::Result<String> {
                let (c, bn) = cb;
                let i = &c.info;
                let w = g.tensor(&format!("{}.weight", i.name), &c.w)?;
                let (k, s, p) = (i.kernel as i64, i.stride as i64, i.padding as i64);
                let y = g.node(
                    "Conv",
                    &[x, &w],
                    &format!("{}.out", i.name),
                    &[
                        ("kernel_shape", Attr::Ints(vec![k, k])),
                        ("strides", Attr::Ints(vec![s, s])),
                        ("pads", Attr::Ints(vec![p, p, p, p])),
                    ],
                );
                let scale = g.tensor(&format!("{}.scale", bn.name), &bn.scale)?;
                let shift = g.tensor(&format!("{}.shift", bn.name), &bn.shift)?;
                let y = g.node("Mul", &[&y, &scale], &format!("{}.scaled", bn.name), &[]);
                Ok(g.node("Add", &[&y, &shift], &format!("{}.out", bn.name), &[]))
            };
        let x = conv_bn(g, &m.stem, input)?;
        let x = g.node("Relu", &[&x], "stem.relu", &[]);
        let mut x = g.node(
            "MaxPool",
            &[&x],
            "stem.pool",
            &[
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("strides", Attr::Ints(vec![2, 2])),
                ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ],
        );
        for (bi, b) in m.blocks.iter().enumerate() {
            let mut y = x.clone();
            let last = b.convs.len() - 1;
            for (k, cb) in b.convs.iter().enumerate() {
                y = conv_bn(g, cb, &y)?;
                if k < last {
                    y = g.node("Relu", &[&y], &format!("block{bi}.relu{k}"), &[]);
                }
            }
            let identity = match &b.downsample {
                Some(ds) => conv_bn(g, ds, &x)?,
                None => x.clone(),
            };
            let sum = g.node("Add", &[&y, &identity], &format!("block{bi}.sum"), &[]);
            x = g.node("Relu", &[&sum], &format!("block{bi}.out"), &[]);
        }
        let pooled = g.node("GlobalAveragePool", &[&x], "pooled", &[]);
        let flat = g.node("Flatten", &[&pooled], "features", &[("axis", Attr::Int(1))]);
        let w = g.tensor("fc.weight", params.get("fc.weight")?)?;
        let b = g.tensor("fc.bias", params.get("fc.bias")?)?;
        Ok(g.node(
            "Gemm",
            &[&flat, &w, &b],
            "logits",
            &[("transB", Attr::Int(1))],
        ))
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

/// torchvision's stem pool `MaxPool2d(3, stride=2, padding=1)` as a max over the nine
/// shifted, stride-2 views of the padded input: candle's `max_pool2d` has no backward
/// when kernel ≠ stride (DESIGN.md §10), and backbone pretraining and full finetuning
/// train the stem through it. Zero padding equals PyTorch's -inf padding here because the
/// input is post-ReLU (≥ 0).
pub fn max_pool_3x3_s2(x: &Tensor) -> Result<Tensor> {
    use hyper_core::layers::strided_slice;
    let (_, _, h, w) = x.dims4()?;
    let (ho, wo) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
    let p = x
        .pad_with_zeros(D::Minus1, 1, 1)?
        .pad_with_zeros(D::Minus2, 1, 1)?;
    let mut best: Option<Tensor> = None;
    for dy in 0..3 {
        let rows = strided_slice(&p, 2, dy, ho, 2)?;
        for dx in 0..3 {
            let v = strided_slice(&rows, 3, dx, wo, 2)?;
            best = Some(match best {
                None => v,
                Some(b) => b.maximum(&v)?,
            });
        }
    }
    best.ok_or_else(|| candle_core::Error::Msg("max pool of nothing".into()))
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
