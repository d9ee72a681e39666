//! The BERT family (DistilBERT, BERT, MiniLM) as one post-LayerNorm encoder with LoRA
//! injectable on any of its linear layers, plus Hugging Face's sequence-classification
//! heads.
//!
//! Weights load 1:1 from a Hugging Face directory: `config.json` + `model.safetensors`,
//! keys either bare (`embeddings.…`, as in a `BertModel`/`DistilBertModel` checkpoint such
//! as all-MiniLM-L6-v2) or prefixed (`bert.…` / `distilbert.…`, as in a
//! `…ForSequenceClassification` checkpoint). Inside the model and in every `ParamMap` /
//! PEFT key, names are always the prefixed ones, because PEFT wraps the
//! `…ForSequenceClassification` model.
//!
//! Which tensors come from outside: the LoRA A/B of every targeted module and the head
//! (`pre_classifier.*` + `classifier.*` for DistilBERT, `classifier.*` for BERT, whose pooler
//! is pretrained and stays in the base). For full finetuning build the model from a
//! `VarMap`-backed `VarBuilder`: the base tensors are then the trainable `Var`s.
//!
//! Training paths use `layer_norm_slow` and `softmax(.., D::Minus1)` by default: the fused
//! candle ops have no backward (DESIGN.md §10). [`BertModel::with_fused_inference`]
//! switches the `train = false` path to the fused ops (and a vectorised erf GELU) for
//! speed; [`BertModel::with_fused_training`] switches the `train = true` path to
//! `hyper_core::fused`'s ops, which have a backward (opt-in: they sum in another order, so
//! the committed training results were produced without them). Both fused modes also run
//! attention's two batched products through `hyper_core::bmm` (batches spread over the
//! threads; the same sums as candle's matmul), and fused training computes attention's
//! scale, padding mask, softmax and dropout as one op and its hidden-state dropouts with
//! the same counter-hash masks (`hyper_core::attention`: another mask stream than the
//! composed path's).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use candle_core::{DType, Device, IndexOp, Result, Tensor, D};
use candle_nn::VarBuilder;
use hyper_core::lora_generator::{LoraSlot, LoraTarget};
use hyper_core::{Metadata, ParamMap, ParamRole, ParamSpec};
use serde::{Deserialize, Serialize};

use crate::lora::{self, LoraConfig};
use crate::peft::AdapterConfig;
use crate::TargetModel;

/// Which state-dict naming a checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Bert,
    DistilBert,
}

impl Flavor {
    /// The attribute name of the encoder inside `…ForSequenceClassification`.
    pub fn prefix(self) -> &'static str {
        match self {
            Flavor::Bert => "bert",
            Flavor::DistilBert => "distilbert",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact (erf) GELU: Hugging Face's `gelu`.
    Gelu,
    /// Tanh approximation: `gelu_new` / `gelu_pytorch_tanh`.
    GeluApprox,
    Relu,
}

/// The encoder's shape, normalised from either config.json schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub flavor: Flavor,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub max_position_embeddings: usize,
    /// 0 for DistilBERT (no token-type embeddings).
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_dropout: f32,
    pub attention_dropout: f32,
    /// Dropout before the classifier (DistilBERT `seq_classif_dropout`, BERT
    /// `classifier_dropout` or else `hidden_dropout_prob`).
    pub classifier_dropout: f32,
    pub pad_token_id: u32,
    /// Labels of the classification head (1 = regression).
    pub num_labels: usize,
}

/// Both Hugging Face schemas; every field optional so a missing one is reported by name.
#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    pad_token_id: Option<u32>,
    num_labels: Option<usize>,
    id2label: Option<BTreeMap<String, String>>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    hidden_act: Option<String>,
    hidden_dropout_prob: Option<f64>,
    attention_probs_dropout_prob: Option<f64>,
    classifier_dropout: Option<f64>,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f64>,
    dim: Option<usize>,
    n_layers: Option<usize>,
    n_heads: Option<usize>,
    hidden_dim: Option<usize>,
    activation: Option<String>,
    dropout: Option<f64>,
    attention_dropout: Option<f64>,
    seq_classif_dropout: Option<f64>,
}

fn need<T>(v: Option<T>, field: &str, src: &str) -> anyhow::Result<T> {
    v.ok_or_else(|| anyhow::anyhow!("{src}: missing field `{field}`"))
}

fn activation(name: &str, src: &str) -> anyhow::Result<Activation> {
    Ok(match name {
        "gelu" => Activation::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluApprox,
        "relu" => Activation::Relu,
        other => anyhow::bail!(
            "{src}: activation `{other}` unsupported; allowed: gelu, gelu_new, gelu_pytorch_tanh, relu"
        ),
    })
}

impl BertConfig {
    /// Reads and parses a Hugging Face `config.json` file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_hf_json(&text, &path.display().to_string())
    }

    /// Parses a Hugging Face `config.json` (BERT or DistilBERT schema); `src` names the file
    /// in errors.
    pub fn from_hf_json(text: &str, src: &str) -> anyhow::Result<Self> {
        let raw: RawConfig =
            serde_json::from_str(text).with_context(|| format!("{src}: invalid JSON"))?;
        let num_labels = raw
            .num_labels
            .or(raw.id2label.as_ref().map(|m| m.len()))
            .unwrap_or(2);
        let model_type = raw.model_type.as_deref().unwrap_or("bert");
        let cfg = match model_type {
            "distilbert" => Self {
                flavor: Flavor::DistilBert,
                vocab_size: need(raw.vocab_size, "vocab_size", src)?,
                hidden_size: need(raw.dim, "dim", src)?,
                num_layers: need(raw.n_layers, "n_layers", src)?,
                num_heads: need(raw.n_heads, "n_heads", src)?,
                intermediate_size: need(raw.hidden_dim, "hidden_dim", src)?,
                activation: activation(raw.activation.as_deref().unwrap_or("gelu"), src)?,
                max_position_embeddings: need(
                    raw.max_position_embeddings,
                    "max_position_embeddings",
                    src,
                )?,
                type_vocab_size: 0,
                layer_norm_eps: 1e-12,
                hidden_dropout: raw.dropout.unwrap_or(0.1) as f32,
                attention_dropout: raw.attention_dropout.unwrap_or(0.1) as f32,
                classifier_dropout: raw.seq_classif_dropout.unwrap_or(0.2) as f32,
                pad_token_id: raw.pad_token_id.unwrap_or(0),
                num_labels,
            },
            "bert" => {
                let hidden_dropout = raw.hidden_dropout_prob.unwrap_or(0.1) as f32;
                Self {
                    flavor: Flavor::Bert,
                    vocab_size: need(raw.vocab_size, "vocab_size", src)?,
                    hidden_size: need(raw.hidden_size, "hidden_size", src)?,
                    num_layers: need(raw.num_hidden_layers, "num_hidden_layers", src)?,
                    num_heads: need(raw.num_attention_heads, "num_attention_heads", src)?,
                    intermediate_size: need(raw.intermediate_size, "intermediate_size", src)?,
                    activation: activation(raw.hidden_act.as_deref().unwrap_or("gelu"), src)?,
                    max_position_embeddings: need(
                        raw.max_position_embeddings,
                        "max_position_embeddings",
                        src,
                    )?,
                    type_vocab_size: raw.type_vocab_size.unwrap_or(2),
                    layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-12),
                    hidden_dropout,
                    attention_dropout: raw.attention_probs_dropout_prob.unwrap_or(0.1) as f32,
                    classifier_dropout: raw
                        .classifier_dropout
                        .map(|p| p as f32)
                        .unwrap_or(hidden_dropout),
                    pad_token_id: raw.pad_token_id.unwrap_or(0),
                    num_labels,
                }
            }
            other => {
                anyhow::bail!("{src}: model_type `{other}` unsupported; allowed: bert, distilbert")
            }
        };
        cfg.validate().map_err(|e| anyhow::anyhow!("{src}: {e}"))?;
        Ok(cfg)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.hidden_size.checked_rem(self.num_heads) != Some(0) {
            return Err(format!(
                "hidden size {} is not divisible by {} attention heads",
                self.hidden_size, self.num_heads
            ));
        }
        if self.num_labels == 0 {
            return Err("num_labels must be positive".into());
        }
        Ok(())
    }

    /// The Hugging Face `config.json` of this shape (for `…ForSequenceClassification`).
    pub fn to_hf_json(&self) -> serde_json::Value {
        let act = match self.activation {
            Activation::Gelu => "gelu",
            Activation::GeluApprox => "gelu_new",
            Activation::Relu => "relu",
        };
        let id2label: BTreeMap<String, String> = (0..self.num_labels)
            .map(|i| (i.to_string(), format!("LABEL_{i}")))
            .collect();
        let label2id: BTreeMap<String, usize> = (0..self.num_labels)
            .map(|i| (format!("LABEL_{i}"), i))
            .collect();
        match self.flavor {
            Flavor::DistilBert => serde_json::json!({
                "model_type": "distilbert",
                "architectures": ["DistilBertForSequenceClassification"],
                "vocab_size": self.vocab_size,
                "dim": self.hidden_size,
                "n_layers": self.num_layers,
                "n_heads": self.num_heads,
                "hidden_dim": self.intermediate_size,
                "activation": act,
                "max_position_embeddings": self.max_position_embeddings,
                "sinusoidal_pos_embds": false,
                "dropout": self.hidden_dropout,
                "attention_dropout": self.attention_dropout,
                "seq_classif_dropout": self.classifier_dropout,
                "pad_token_id": self.pad_token_id,
                "initializer_range": 0.02,
                "tie_weights_": true,
                "id2label": id2label,
                "label2id": label2id,
            }),
            Flavor::Bert => serde_json::json!({
                "model_type": "bert",
                "architectures": ["BertForSequenceClassification"],
                "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size,
                "num_hidden_layers": self.num_layers,
                "num_attention_heads": self.num_heads,
                "intermediate_size": self.intermediate_size,
                "hidden_act": act,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size,
                "layer_norm_eps": self.layer_norm_eps,
                "hidden_dropout_prob": self.hidden_dropout,
                "attention_probs_dropout_prob": self.attention_dropout,
                "classifier_dropout": self.classifier_dropout,
                "pad_token_id": self.pad_token_id,
                "initializer_range": 0.02,
                "id2label": id2label,
                "label2id": label2id,
            }),
        }
    }

    /// A few-thousand-parameter config for tests.
    pub fn tiny(flavor: Flavor, num_labels: usize) -> Self {
        Self {
            flavor,
            vocab_size: 50,
            hidden_size: 16,
            num_layers: 2,
            num_heads: 4,
            intermediate_size: 32,
            activation: Activation::Gelu,
            max_position_embeddings: 32,
            type_vocab_size: if flavor == Flavor::Bert { 2 } else { 0 },
            layer_norm_eps: 1e-12,
            hidden_dropout: 0.1,
            attention_dropout: 0.1,
            classifier_dropout: 0.1,
            pad_token_id: 0,
            num_labels,
        }
    }

    /// The six linear modules of layer `i`, canonical (prefixed) names, in forward order
    /// q, k, v, attention-out, ffn-in, ffn-out; with (in, out) features.
    pub fn layer_linears(&self, i: usize) -> [(String, usize, usize); 6] {
        let (h, f) = (self.hidden_size, self.intermediate_size);
        let names = match self.flavor {
            Flavor::DistilBert => {
                let p = format!("distilbert.transformer.layer.{i}");
                [
                    format!("{p}.attention.q_lin"),
                    format!("{p}.attention.k_lin"),
                    format!("{p}.attention.v_lin"),
                    format!("{p}.attention.out_lin"),
                    format!("{p}.ffn.lin1"),
                    format!("{p}.ffn.lin2"),
                ]
            }
            Flavor::Bert => {
                let p = format!("bert.encoder.layer.{i}");
                [
                    format!("{p}.attention.self.query"),
                    format!("{p}.attention.self.key"),
                    format!("{p}.attention.self.value"),
                    format!("{p}.attention.output.dense"),
                    format!("{p}.intermediate.dense"),
                    format!("{p}.output.dense"),
                ]
            }
        };
        let [a, b, c, d, e, g] = names;
        [
            (a, h, h),
            (b, h, h),
            (c, h, h),
            (d, h, h),
            (e, h, f),
            (g, f, h),
        ]
    }

    /// Canonical names of layer `i`'s two LayerNorms (after attention, after the FFN).
    fn layer_norms(&self, i: usize) -> [String; 2] {
        match self.flavor {
            Flavor::DistilBert => {
                let p = format!("distilbert.transformer.layer.{i}");
                [
                    format!("{p}.sa_layer_norm"),
                    format!("{p}.output_layer_norm"),
                ]
            }
            Flavor::Bert => {
                let p = format!("bert.encoder.layer.{i}");
                [
                    format!("{p}.attention.output.LayerNorm"),
                    format!("{p}.output.LayerNorm"),
                ]
            }
        }
    }

    /// Head modules PEFT must save with the adapter (`modules_to_save`): the ones not in a
    /// pretrained base checkpoint.
    pub fn head_modules(&self) -> Vec<&'static str> {
        match self.flavor {
            Flavor::DistilBert => vec!["pre_classifier", "classifier"],
            Flavor::Bert => vec!["classifier"],
        }
    }

    /// Head tensors supplied through `ParamMap`, for `num_labels` outputs.
    pub fn head_specs(&self, num_labels: usize) -> Vec<ParamSpec> {
        let h = self.hidden_size;
        let mut v = Vec::new();
        if self.flavor == Flavor::DistilBert {
            v.push(spec("pre_classifier.weight", vec![h, h], ParamRole::Static));
            v.push(spec("pre_classifier.bias", vec![h], ParamRole::Static));
        }
        v.push(spec(
            "classifier.weight",
            vec![num_labels, h],
            ParamRole::DynamicPerTask,
        ));
        v.push(spec(
            "classifier.bias",
            vec![num_labels],
            ParamRole::DynamicPerTask,
        ));
        v
    }
}

fn spec(name: &str, shape: Vec<usize>, role: ParamRole) -> ParamSpec {
    ParamSpec {
        name: name.into(),
        shape,
        role,
    }
}

/// A linear layer of the frozen base, optionally LoRA-adapted.
#[derive(Clone)]
struct Lin {
    name: String,
    inp: usize,
    out: usize,
    w: Tensor,
    b: Tensor,
    lora: bool,
}

#[derive(Clone)]
struct Ln {
    w: Tensor,
    b: Tensor,
}

#[derive(Clone)]
struct Layer {
    lins: [Lin; 6],
    ln1: Ln,
    ln2: Ln,
}

/// One encoder for both namings; see the module docs.
#[derive(Clone)]
pub struct BertModel {
    cfg: BertConfig,
    lora: LoraConfig,
    word: Tensor,
    pos: Tensor,
    token_type: Option<Tensor>,
    emb_ln: Ln,
    layers: Vec<Layer>,
    pooler: Option<(Tensor, Tensor)>,
    pooling: Pooling,
    fused: bool,
    fused_training: bool,
}

/// What the classification head reads. `Cls` is Hugging Face's `*ForSequenceClassification`
/// (BERT's pooler or DistilBERT's `pre_classifier` on [CLS]); `Mean` is the mean of the
/// real tokens' hidden states, the pooling sentence-transformers models (all-MiniLM-L6-v2)
/// were trained with: a head fitted on it reads better features than one on the untrained
/// pooler (on a 4-source GLUE sentence task, 87% vs 82% test accuracy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    #[default]
    Cls,
    Mean,
}

impl BertModel {
    /// Loads `dir/config.json` + `dir/model.safetensors` (Hugging Face layout).
    pub fn load(dir: &Path, lora: LoraConfig, device: &Device) -> anyhow::Result<Self> {
        let cfg = BertConfig::load(&dir.join("config.json"))?;
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            anyhow::bail!("{}: no such file", weights.display());
        }
        // SAFETY: the file is mapped read-only and not modified while the model lives.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, device)
                .with_context(|| format!("reading {}", weights.display()))?
        };
        let model = Self::from_vb(&vb, cfg, lora)
            .with_context(|| format!("loading {}", weights.display()))?;
        tracing::debug!(
            dir = %dir.display(),
            flavor = ?model.cfg.flavor,
            lora_modules = model.lora_modules().len(),
            "loaded BERT-family encoder"
        );
        Ok(model)
    }

    /// Builds from a `VarBuilder` at the checkpoint root. Keys may be bare or prefixed with
    /// `bert.` / `distilbert.`; a `VarMap`-backed builder creates fresh `Var`s (full
    /// finetuning).
    pub fn from_vb(vb: &VarBuilder, cfg: BertConfig, lora: LoraConfig) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::Msg)?;
        lora.validate()?;
        let pre = cfg.flavor.prefix();
        let prefixed = vb.contains_tensor(&format!("{pre}.embeddings.word_embeddings.weight"));
        let key = |canonical: &str| -> String {
            if prefixed {
                canonical.to_string()
            } else {
                canonical
                    .strip_prefix(&format!("{pre}."))
                    .unwrap_or(canonical)
                    .to_string()
            }
        };
        use candle_nn::Init;
        let normal = Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let get =
            |name: &str, shape: Vec<usize>, init: Init| vb.get_with_hints(shape, &key(name), init);
        let h = cfg.hidden_size;
        let ln = |name: &str| -> Result<Ln> {
            Ok(Ln {
                w: get(&format!("{name}.weight"), vec![h], Init::Const(1.0))?,
                b: get(&format!("{name}.bias"), vec![h], Init::Const(0.0))?,
            })
        };
        let e = format!("{pre}.embeddings");
        let word = get(
            &format!("{e}.word_embeddings.weight"),
            vec![cfg.vocab_size, h],
            normal,
        )?;
        let pos = get(
            &format!("{e}.position_embeddings.weight"),
            vec![cfg.max_position_embeddings, h],
            normal,
        )?;
        let token_type = if cfg.flavor == Flavor::Bert {
            Some(get(
                &format!("{e}.token_type_embeddings.weight"),
                vec![cfg.type_vocab_size, h],
                normal,
            )?)
        } else {
            None
        };
        let emb_ln = ln(&format!("{e}.LayerNorm"))?;
        let matcher = lora.target_modules.matcher()?;
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let lins = cfg.layer_linears(i).map(|(name, inp, out)| -> Result<Lin> {
                let w = get(&format!("{name}.weight"), vec![out, inp], normal)?;
                let b = get(&format!("{name}.bias"), vec![out], Init::Const(0.0))?;
                let lora = matcher.matches(&name);
                Ok(Lin {
                    name,
                    inp,
                    out,
                    w,
                    b,
                    lora,
                })
            });
            let [a, b, c, d, e2, f] = lins;
            let [n1, n2] = cfg.layer_norms(i);
            layers.push(Layer {
                lins: [a?, b?, c?, d?, e2?, f?],
                ln1: ln(&n1)?,
                ln2: ln(&n2)?,
            });
        }
        let pooler = if cfg.flavor == Flavor::Bert {
            Some((
                get("bert.pooler.dense.weight", vec![h, h], normal)?,
                get("bert.pooler.dense.bias", vec![h], Init::Const(0.0))?,
            ))
        } else {
            None
        };
        Ok(Self {
            cfg,
            lora,
            word,
            pos,
            token_type,
            emb_ln,
            layers,
            pooler,
            pooling: Pooling::Cls,
            fused: false,
            fused_training: false,
        })
    }

    /// What the classification head reads from now on.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Use candle's fused LayerNorm/softmax and a vectorised erf GELU when `train = false`
    /// (no backward: only for frozen inference).
    pub fn with_fused_inference(mut self, fused: bool) -> Self {
        self.fused = fused;
        self
    }

    /// Use `hyper_core::fused`'s LayerNorm, softmax and erf GELU (each with a backward)
    /// when `train = true`.
    pub fn with_fused_training(mut self, fused: bool) -> Self {
        self.fused_training = fused;
        self
    }

    /// A frozen copy for serving: fused ops, and each linear weight stored transposed
    /// (still `[out, in]`, column-major) so `x·Wᵀ` reads a contiguous `[in, out]` matrix,
    /// which gemm packs ~20% faster. The weights are copies: no gradient reaches `Var`s.
    pub fn for_inference(mut self) -> Result<Self> {
        for layer in &mut self.layers {
            for lin in &mut layer.lins {
                lin.w = lin.w.detach().t()?.contiguous()?.t()?;
            }
        }
        Ok(self.with_fused_inference(true))
    }

    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }

    pub fn lora_config(&self) -> &LoraConfig {
        &self.lora
    }

    /// Canonical names of the LoRA-adapted modules, in layer order.
    pub fn lora_modules(&self) -> Vec<String> {
        self.layers
            .iter()
            .flat_map(|l| l.lins.iter().filter(|x| x.lora).map(|x| x.name.clone()))
            .collect()
    }

    /// Every tensor this model needs from outside for a `num_labels`-output head: LoRA A/B
    /// per adapted module (in layer order), then the head.
    pub fn param_spec_for(&self, num_labels: usize) -> Vec<ParamSpec> {
        let r = self.lora.r;
        let mut v = Vec::new();
        for l in &self.layers {
            for lin in l.lins.iter().filter(|x| x.lora) {
                v.extend(lora::lora_specs(
                    &lin.name,
                    vec![r, lin.inp],
                    vec![lin.out, r],
                    &self.lora,
                ));
            }
        }
        v.extend(self.cfg.head_specs(num_labels));
        v
    }

    /// The adapted modules as the LoRA generator's slots: module kinds are numbered by
    /// their position among a layer's adapted linears (query 0, value 1 for q/v).
    pub fn lora_target(&self) -> LoraTarget {
        let mut slots = Vec::new();
        for (li, l) in self.layers.iter().enumerate() {
            for (kind, lin) in l.lins.iter().filter(|x| x.lora).enumerate() {
                slots.push(LoraSlot {
                    module: lin.name.clone(),
                    layer: li,
                    kind,
                    in_dim: lin.inp,
                    out_dim: lin.out,
                });
            }
        }
        LoraTarget {
            slots,
            r: self.lora.r,
            head_in: self.cfg.hidden_size,
        }
    }

    /// PEFT's adapter config for this model.
    pub fn adapter_config(&self, base_model_name_or_path: &str) -> AdapterConfig {
        AdapterConfig::new(
            &self.lora,
            Some("SEQ_CLS"),
            self.cfg
                .head_modules()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            base_model_name_or_path,
        )
    }

    /// Hidden-state dropout: `hyper_core::attention`'s counter-hash dropout under fused
    /// training (one pass each way, no gradient for the mask).
    fn dropout(&self, x: &Tensor, p: f32, train: bool) -> Result<Tensor> {
        if self.fused_training && train {
            hyper_core::attention::dropout(x, p, train)
        } else {
            lora::dropout(x, p, train)
        }
    }

    /// Attention's batched products: `hyper_core::bmm` in the fused modes.
    fn bmm(&self, a: &Tensor, b: &Tensor, train: bool) -> Result<Tensor> {
        if (self.fused && !train) || (self.fused_training && train) {
            hyper_core::bmm::batched_matmul(a, b)
        } else {
            a.matmul(b)
        }
    }

    fn layer_norm(&self, x: &Tensor, ln: &Ln, train: bool) -> Result<Tensor> {
        let eps = self.cfg.layer_norm_eps as f32;
        if self.fused && !train {
            candle_nn::ops::layer_norm(x, &ln.w, &ln.b, eps)
        } else if self.fused_training && train {
            hyper_core::fused::layer_norm(x, &ln.w, &ln.b, eps)
        } else {
            candle_nn::ops::layer_norm_slow(x, &ln.w, &ln.b, eps)
        }
    }

    fn lin(&self, lin: &Lin, x: &Tensor, params: &ParamMap, train: bool) -> Result<Tensor> {
        // A frozen base weight needs no gradient: skip candle's weight-gradient matmul.
        // A trained one (full finetuning) under fused training: one op for all three
        // gradients, no full-size gradient for the broadcast bias.
        let y = if self.fused_training && train && lin.w.is_variable() {
            hyper_core::fused::linear(x, &lin.w, &lin.b)?
        } else {
            hyper_core::frozen::frozen_linear(x, &lin.w, Some(&lin.b))?
        };
        if !lin.lora {
            return Ok(y);
        }
        let r = self.lora.r;
        let (a, b) = lora::factors(params, &lin.name, &[r, lin.inp], &[lin.out, r])?;
        let delta =
            lora::linear_delta(x, a, b, self.lora.scaling(), self.lora.lora_dropout, train)?;
        y + delta
    }

    fn act(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self.cfg.activation {
            Activation::Gelu if self.fused && !train => hyper_core::fused::gelu_erf(x),
            Activation::Gelu if self.fused_training && train => {
                hyper_core::fused::gelu_erf_train(x)
            }
            Activation::Gelu => x.gelu_erf(),
            Activation::GeluApprox => x.gelu(),
            Activation::Relu => x.relu(),
        }
    }

    /// Hidden states `[batch, seq, hidden]`. `ids` are token ids `[batch, seq]` (u32 or
    /// i64); `mask` is 1 for real tokens and 0 for padding (all ones when `None`);
    /// `token_type_ids` default to zeros (BERT only).
    pub fn encode(
        &self,
        params: &ParamMap,
        ids: &Tensor,
        mask: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let (bsz, seq) = ids.dims2()?;
        let h = self.cfg.hidden_size;
        if seq > self.cfg.max_position_embeddings {
            candle_core::bail!(
                "sequence length {seq} exceeds max_position_embeddings {}",
                self.cfg.max_position_embeddings
            );
        }
        let dev = ids.device();
        let mut x = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((bsz, seq, h))?;
        if let Some(tt) = &self.token_type {
            let tti = match token_type_ids {
                Some(t) => t.clone(),
                None => Tensor::zeros((bsz, seq), DType::U32, dev)?,
            };
            let e = tt
                .index_select(&tti.flatten_all()?, 0)?
                .reshape((bsz, seq, h))?;
            x = (x + e)?;
        }
        let positions = Tensor::arange(0u32, seq as u32, dev)?;
        x = x.broadcast_add(&self.pos.index_select(&positions, 0)?)?;
        x = self.layer_norm(&x, &self.emb_ln, train)?;
        x = self.dropout(&x, self.cfg.hidden_dropout, train)?;

        let mask_add = match mask {
            Some(m) => {
                let m = m.to_dtype(DType::F32)?;
                if m.dims() != [bsz, seq] {
                    candle_core::bail!(
                        "attention mask has shape {:?}, expected [{bsz}, {seq}]",
                        m.dims()
                    );
                }
                Some((m.affine(-1.0, 1.0)? * f32::MIN as f64)?.reshape((bsz, 1, 1, seq))?)
            }
            None => None,
        };
        for layer in &self.layers {
            x = self.layer_forward(layer, &x, mask_add.as_ref(), params, train)?;
        }
        Ok(x)
    }

    fn layer_forward(
        &self,
        layer: &Layer,
        x: &Tensor,
        mask_add: Option<&Tensor>,
        params: &ParamMap,
        train: bool,
    ) -> Result<Tensor> {
        let (bsz, seq, h) = x.dims3()?;
        let nh = self.cfg.num_heads;
        let dh = h / nh;
        let heads = |t: Tensor| -> Result<Tensor> {
            t.reshape((bsz, seq, nh, dh))?.transpose(1, 2)?.contiguous()
        };
        let [q, k, v, o, f1, f2] = &layer.lins;
        let q = heads(self.lin(q, x, params, train)?)?;
        let k = heads(self.lin(k, x, params, train)?)?;
        let v = heads(self.lin(v, x, params, train)?)?;
        let scale = 1.0 / (dh as f64).sqrt();
        let raw = self.bmm(&q, &k.t()?, train)?;
        let probs = if self.fused_training && train {
            hyper_core::attention::attention_probs(
                &raw,
                scale as f32,
                mask_add,
                self.cfg.attention_dropout,
                train,
            )?
        } else {
            let mut scores = (raw * scale)?;
            if let Some(m) = mask_add {
                scores = scores.broadcast_add(m)?;
            }
            let probs = if self.fused && !train {
                candle_nn::ops::softmax_last_dim(&scores)?
            } else {
                candle_nn::ops::softmax(&scores, D::Minus1)?
            };
            lora::dropout(&probs, self.cfg.attention_dropout, train)?
        };
        let ctx = self
            .bmm(&probs, &v, train)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((bsz, seq, h))?;
        let attn = self.dropout(
            &self.lin(o, &ctx, params, train)?,
            self.cfg.hidden_dropout,
            train,
        )?;
        let x = self.layer_norm(&(x + attn)?, &layer.ln1, train)?;
        let ff = self.act(&self.lin(f1, &x, params, train)?, train)?;
        let ff = self.dropout(
            &self.lin(f2, &ff, params, train)?,
            self.cfg.hidden_dropout,
            train,
        )?;
        self.layer_norm(&(x + ff)?, &layer.ln2, train)
    }

    /// Logits `[batch, num_labels]` from what [`Pooling`] names: [CLS] through Hugging
    /// Face's heads, or the mean of the real tokens. `token_type_ids` mark the second
    /// sentence of a pair (zeros when `None`).
    pub fn classify(
        &self,
        params: &ParamMap,
        ids: &Tensor,
        mask: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let hidden = self.encode(params, ids, mask, token_type_ids, train)?;
        self.head(params, &self.features(params, &hidden, mask)?, train)
    }

    /// What the classification head reads `[batch, hidden]`, before the head's dropout:
    /// BERT's pooler (`tanh` of a linear map of [CLS]) or DistilBERT's `pre_classifier`
    /// (`relu`) under [`Pooling::Cls`], the masked mean under [`Pooling::Mean`]. A
    /// closed-form head fitted on these is the model's own head.
    pub fn pooled(
        &self,
        params: &ParamMap,
        ids: &Tensor,
        mask: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
    ) -> Result<Tensor> {
        let hidden = self.encode(params, ids, mask, token_type_ids, false)?;
        self.features(params, &hidden, mask)
    }

    fn features(
        &self,
        params: &ParamMap,
        hidden: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        match self.pooling {
            Pooling::Cls => self.pool(params, &hidden.i((.., 0))?),
            Pooling::Mean => match mask {
                Some(m) => mean_pool(hidden, m),
                None => hidden.mean(1),
            },
        }
    }

    fn pool(&self, params: &ParamMap, cls: &Tensor) -> Result<Tensor> {
        let h = self.cfg.hidden_size;
        let p = |name: &str| params.get(name);
        Ok(match &self.pooler {
            Some((w, b)) => lora::linear(cls, w, Some(b))?.tanh()?,
            None => {
                let (w, b) = (p("pre_classifier.weight")?, p("pre_classifier.bias")?);
                if w.dims() != [h, h] {
                    candle_core::bail!(
                        "parameter `pre_classifier.weight` has shape {:?}, expected [{h}, {h}]",
                        w.dims()
                    );
                }
                lora::linear(cls, w, Some(b))?.relu()?
            }
        })
    }

    fn head(&self, params: &ParamMap, pooled: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.cfg.hidden_size;
        let p = |name: &str| params.get(name);
        let pooled = self.dropout(pooled, self.cfg.classifier_dropout, train)?;
        let (w, b) = (p("classifier.weight")?, p("classifier.bias")?);
        if w.rank() != 2 || w.dim(1)? != h {
            candle_core::bail!(
                "parameter `classifier.weight` has shape {:?}, expected [num_labels, {h}]",
                w.dims()
            );
        }
        lora::linear(&pooled, w, Some(b))
    }

    /// A copy with every adapter folded into its base weight (`W + (alpha/r)·B·A`) and LoRA
    /// switched off: the same function of the input, one matmul per layer cheaper.
    pub fn merge(&self, params: &ParamMap) -> Result<Self> {
        let mut m = self.clone();
        let r = self.lora.r;
        for layer in &mut m.layers {
            for lin in layer.lins.iter_mut().filter(|l| l.lora) {
                let (a, b) = lora::factors(params, &lin.name, &[r, lin.inp], &[lin.out, r])?;
                lin.w = lora::merge_linear(&lin.w, &a.detach(), &b.detach(), self.lora.scaling())?;
                lin.lora = false;
            }
        }
        m.lora = LoraConfig {
            target_modules: lora::TargetModules::List(vec![]),
            ..self.lora.clone()
        };
        Ok(m)
    }
}

/// Attention mask (1 = token, 0 = padding) of `ids` padded with `pad_id`.
pub fn mask_from_ids(ids: &Tensor, pad_id: u32) -> Result<Tensor> {
    ids.to_dtype(DType::I64)?
        .ne(pad_id as i64)?
        .to_dtype(DType::U32)
}

/// Sentence embedding as sentence-transformers computes it: the mean of the hidden states
/// of real tokens.
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let sum = hidden.broadcast_mul(&m)?.sum(1)?;
    let count = m.sum(1)?.clamp(1e-9, f64::MAX)?;
    sum.broadcast_div(&count)
}

impl TargetModel for BertModel {
    fn param_spec(&self, meta: &Metadata) -> Vec<ParamSpec> {
        self.param_spec_for(meta.out_dim)
    }

    /// `x` holds token ids `[batch, seq]` padded with the config's `pad_token_id`, from
    /// which the attention mask is derived; the output is the head's logits.
    fn forward(&self, params: &ParamMap, x: &Tensor, train: bool) -> Result<Tensor> {
        let mask = mask_from_ids(x, self.cfg.pad_token_id)?;
        self.classify(params, x, Some(&mask), None, train)
    }
}
