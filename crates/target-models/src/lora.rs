//! LoRA with PEFT's semantics (DESIGN.md §3): `y = W x + (alpha/r) · B(A(dropout(x)))`.
//!
//! Linear: A `[r,in]`, B `[out,r]`. Conv: A `[r,in,kh,kw]` with the base conv's stride and
//! padding, B `[out,r,1,1]`. The factors are plain tensors passed per call, so the same
//! functions serve generated weights (graph kept) and trainable `Var`s (the LoRA baseline).

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use hyper_core::{ParamMap, ParamRole, ParamSpec};
use serde::{Deserialize, Serialize};

/// PEFT's `target_modules`: a list (a module matches when its name equals an entry or ends
/// with `.entry`) or a single string, which PEFT treats as a regex that must match the
/// whole module name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    List(Vec<String>),
    Regex(String),
}

impl TargetModules {
    pub fn list<S: AsRef<str>>(names: &[S]) -> Self {
        Self::List(names.iter().map(|s| s.as_ref().to_string()).collect())
    }

    /// A matcher compiled once; a bad regex is an error naming it.
    pub fn matcher(&self) -> Result<Matcher> {
        Ok(match self {
            Self::List(v) => Matcher::List(v.clone()),
            Self::Regex(r) => {
                let anchored = format!("^(?:{r})$");
                Matcher::Regex(regex::Regex::new(&anchored).map_err(|e| {
                    candle_core::Error::Msg(format!("target_modules regex `{r}` is invalid: {e}"))
                })?)
            }
        })
    }
}

/// Compiled form of [`TargetModules`].
pub enum Matcher {
    List(Vec<String>),
    Regex(regex::Regex),
}

impl Matcher {
    pub fn matches(&self, module: &str) -> bool {
        match self {
            Self::List(v) => v
                .iter()
                .any(|t| module == t || module.ends_with(&format!(".{t}"))),
            Self::Regex(r) => r.is_match(module),
        }
    }
}

/// LoRA hyper-parameters, named as in PEFT's `LoraConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    #[serde(default = "default_r")]
    pub r: usize,
    #[serde(default = "default_alpha")]
    pub lora_alpha: f64,
    #[serde(default = "default_dropout")]
    pub lora_dropout: f32,
    #[serde(default = "default_targets")]
    pub target_modules: TargetModules,
}

fn default_r() -> usize {
    16
}
fn default_alpha() -> f64 {
    32.0
}
fn default_dropout() -> f32 {
    0.05
}
fn default_targets() -> TargetModules {
    TargetModules::list(&["q_lin", "v_lin"])
}

impl Default for LoraConfig {
    /// DistilBERT's default (FLAME appendix B): q/v, r 16, alpha 32, dropout 0.05.
    fn default() -> Self {
        Self {
            r: default_r(),
            lora_alpha: default_alpha(),
            lora_dropout: default_dropout(),
            target_modules: default_targets(),
        }
    }
}

impl LoraConfig {
    /// BERT naming of the same default (q/v are `query`/`value` there).
    pub fn bert_default() -> Self {
        Self {
            target_modules: TargetModules::list(&["query", "value"]),
            ..Self::default()
        }
    }

    /// ResNet default: every conv inside a residual block (48 in ResNet-50), r 8, alpha 16,
    /// dropout 0.1.
    pub fn resnet_default() -> Self {
        Self {
            r: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.1,
            target_modules: TargetModules::Regex(r"layer.\..\.conv.".into()),
        }
    }

    /// No adapted modules: the plain base model (full finetuning, or the reference).
    pub fn none() -> Self {
        Self {
            target_modules: TargetModules::List(vec![]),
            ..Self::default()
        }
    }

    pub fn scaling(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }

    pub fn validate(&self) -> Result<()> {
        if self.r == 0 {
            candle_core::bail!("LoRA r must be positive, got 0");
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            candle_core::bail!("lora_dropout must be in [0, 1), got {}", self.lora_dropout);
        }
        self.target_modules.matcher().map(|_| ())
    }
}

/// Dropout that is the identity unless training; shared with the MLP so
/// `hyper_core::layers::seed_dropout` makes every target's masks repeatable.
pub use hyper_core::layers::dropout;

/// One `linear` for every target (any number of leading dimensions).
pub use hyper_core::layers::linear;

/// The LoRA branch of a linear layer: `scaling · B(A(dropout(x)))`.
pub fn linear_delta(
    x: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scaling: f64,
    p: f32,
    train: bool,
) -> Result<Tensor> {
    let h = linear(&dropout(x, p, train)?, a, None)?;
    linear(&h, b, None)? * scaling
}

/// Bias-free conv with square stride/padding (torchvision ResNet convs): hyper-core's
/// im2col conv, whose backward is fast on CPU.
pub use hyper_core::layers::conv2d;

/// The LoRA branch of a conv: A has the base kernel, stride and padding; B is 1×1.
#[allow(clippy::too_many_arguments)]
pub fn conv_delta(
    x: &Tensor,
    a: &Tensor,
    b: &Tensor,
    stride: usize,
    padding: usize,
    scaling: f64,
    p: f32,
    train: bool,
) -> Result<Tensor> {
    let h = conv2d(&dropout(x, p, train)?, a, stride, padding)?;
    conv2d(&h, b, 1, 0)? * scaling
}

/// `W' = W + scaling · B·A` for a linear layer (hyper-core's kernel, one merge for all).
pub fn merge_linear(w: &Tensor, a: &Tensor, b: &Tensor, scaling: f64) -> Result<Tensor> {
    hyper_core::kernels::merge_lora(w, a, b, scaling)
}

/// `W' = W + scaling · B·A` for a conv: B `[out,r,1,1]` times A `[r,in,kh,kw]` flattened,
/// reshaped back to the kernel. Exact because a 1×1 conv after A is a linear map of A's
/// output channels.
pub fn merge_conv(w: &Tensor, a: &Tensor, b: &Tensor, scaling: f64) -> Result<Tensor> {
    let (_, r, _, _) = b.dims4()?;
    let (ra, _, _, _) = a.dims4()?;
    if ra != r {
        candle_core::bail!("merge_conv: lora_A has r={ra} but lora_B has r={r}");
    }
    hyper_core::kernels::merge_lora(w, a, b, scaling)
}

/// ModelGPT-F's full-parameter start (the paper finetunes *all* parameters after
/// generation): every adapter pair in `params` folded into its base weight among the
/// trainable `vars` (`M.weight ← M.weight + scaling·B·A`); returns the rest of `params`
/// (the head). The base is `M.weight` itself, else the one var named by its dot-suffix
/// (a checkpoint without the model prefix: MiniLM's file has no `bert.`). An adapter with no
/// base, or a lone factor, is an error, so nothing generated is silently dropped.
pub fn merge_into_vars(
    params: &ParamMap,
    vars: &[(String, candle_core::Var)],
    scaling: f64,
) -> Result<ParamMap> {
    let mut rest = ParamMap::new();
    for (name, t) in params.iter() {
        if let Some(module) = name.strip_suffix(".lora_A.weight") {
            let b = params.get(&format!("{module}.lora_B.weight"))?;
            let base = format!("{module}.weight");
            let exact = vars.iter().find(|(k, _)| *k == base);
            let mut hits = exact.into_iter().chain(
                vars.iter()
                    .filter(|(k, _)| exact.is_none() && base.ends_with(&format!(".{k}"))),
            );
            let var = match (hits.next(), hits.next()) {
                (Some((_, v)), None) => v,
                (None, _) => candle_core::bail!(
                    "adapter `{name}`: no trainable base weight `{base}` to merge into"
                ),
                (Some(_), Some(_)) => {
                    candle_core::bail!(
                        "adapter `{name}`: more than one base weight matches `{base}`"
                    )
                }
            };
            let merged = hyper_core::kernels::merge_lora(
                var.as_tensor(),
                &t.detach(),
                &b.detach(),
                scaling,
            )?;
            var.set(&merged)?;
        } else if let Some(module) = name.strip_suffix(".lora_B.weight") {
            params.get(&format!("{module}.lora_A.weight"))?;
        } else {
            rest.insert(name.clone(), t.detach());
        }
    }
    Ok(rest)
}

/// Fetches the LoRA pair of `module` from `params` and checks its shapes against the base.
pub fn factors<'a>(
    params: &'a ParamMap,
    module: &str,
    a_shape: &[usize],
    b_shape: &[usize],
) -> Result<(&'a Tensor, &'a Tensor)> {
    let a = params.get(&format!("{module}.lora_A.weight"))?;
    let b = params.get(&format!("{module}.lora_B.weight"))?;
    for (t, want, which) in [(a, a_shape, "lora_A"), (b, b_shape, "lora_B")] {
        if t.dims() != want {
            candle_core::bail!(
                "parameter `{module}.{which}.weight` has shape {:?}, expected {want:?}",
                t.dims()
            );
        }
    }
    Ok((a, b))
}

/// The spec pair (A then B) of one adapted module.
pub fn lora_specs(
    module: &str,
    a_shape: Vec<usize>,
    b_shape: Vec<usize>,
    cfg: &LoraConfig,
) -> [ParamSpec; 2] {
    let role = ParamRole::Lora {
        base: format!("{module}.weight"),
        r: cfg.r,
        alpha: cfg.lora_alpha,
    };
    [
        ParamSpec {
            name: format!("{module}.lora_A.weight"),
            shape: a_shape,
            role: role.clone(),
        },
        ParamSpec {
            name: format!("{module}.lora_B.weight"),
            shape: b_shape,
            role,
        },
    ]
}

/// Trainable tensors for `specs` created in `vb` (a `VarMap`-backed builder), initialised
/// as PEFT does: A kaiming-uniform (bound 1/√fan_in), B zero; heads as Hugging Face does:
/// weights N(0, 0.02), biases zero. This is the LoRA baseline's starting point.
pub fn init_params(specs: &[ParamSpec], vb: &VarBuilder) -> Result<ParamMap> {
    let mut map = ParamMap::new();
    for s in specs {
        let t = vb.get_with_hints_dtype(s.shape.clone(), &s.name, init_of(s), DType::F32)?;
        map.insert(s.name.clone(), t);
    }
    Ok(map)
}

/// PEFT's and Hugging Face's init for one tensor: LoRA A uniform ±1/√fan_in, B and biases
/// zero, head weights N(0, 0.02²).
fn init_of(s: &ParamSpec) -> Init {
    if s.name.ends_with("lora_A.weight") {
        let fan_in: usize = s.shape[1..].iter().product();
        let bound = 1.0 / (fan_in as f64).sqrt();
        Init::Uniform {
            lo: -bound,
            up: bound,
        }
    } else if s.name.ends_with("lora_B.weight") || s.name.ends_with(".bias") {
        Init::Const(0.0)
    } else {
        Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        }
    }
}

/// [`init_params`]' distributions drawn from `seed` (candle's own RNG cannot be seeded),
/// so a baseline trained from it is a function of its config.
pub fn seeded_init_params(specs: &[ParamSpec], seed: u64, dev: &Device) -> Result<ParamMap> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut map = ParamMap::new();
    for s in specs {
        let t = match init_of(s) {
            Init::Uniform { up, .. } => hyper_core::layers::uniform(&mut rng, &s.shape, up, dev)?,
            Init::Randn { mean, stdev } => {
                hyper_core::layers::normal(&mut rng, &s.shape, mean, stdev, dev)?
            }
            Init::Const(v) => (Tensor::ones(s.shape.as_slice(), DType::F32, dev)? * v)?,
            other => candle_core::bail!("{}: no seeded draw for {other:?}", s.name),
        };
        map.insert(s.name.clone(), t);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed gives the same tensors; the distributions are PEFT's / HF's: A within
    /// ±1/√fan_in, B and biases zero, the head weight N(0, 0.02²).
    #[test]
    fn seeded_init_repeats_and_has_the_reference_distributions() {
        let spec = |name: &str, shape: &[usize]| ParamSpec {
            name: name.into(),
            shape: shape.to_vec(),
            role: ParamRole::Static,
        };
        let specs = [
            spec("l.lora_A.weight", &[8, 384]),
            spec("l.lora_B.weight", &[384, 8]),
            spec("classifier.weight", &[200, 384]),
            spec("classifier.bias", &[200]),
        ];
        let d = Device::Cpu;
        let a = seeded_init_params(&specs, 3, &d).unwrap();
        let b = seeded_init_params(&specs, 3, &d).unwrap();
        let c = seeded_init_params(&specs, 4, &d).unwrap();
        let v = |m: &ParamMap, k: &str| {
            m.get(k)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        for s in &specs {
            assert_eq!(v(&a, &s.name), v(&b, &s.name), "{}", s.name);
        }
        assert_ne!(v(&a, "classifier.weight"), v(&c, "classifier.weight"));
        let bound = 1.0 / 384f32.sqrt();
        let la = v(&a, "l.lora_A.weight");
        assert!(la.iter().all(|x| x.abs() <= bound) && la.iter().any(|x| x.abs() > 0.9 * bound));
        assert!(v(&a, "l.lora_B.weight").iter().all(|&x| x == 0.0));
        assert!(v(&a, "classifier.bias").iter().all(|&x| x == 0.0));
        let w = v(&a, "classifier.weight");
        let n = w.len() as f32;
        let mean = w.iter().sum::<f32>() / n;
        let sd = (w.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
        assert!(
            mean.abs() < 1e-3 && (sd - 0.02).abs() < 5e-4,
            "mean {mean}, sd {sd}"
        );
    }

    #[test]
    fn peft_target_matching() {
        let l = TargetModules::list(&["q_lin", "v_lin"]).matcher().unwrap();
        assert!(l.matches("distilbert.transformer.layer.0.attention.q_lin"));
        assert!(l.matches("q_lin"));
        assert!(!l.matches("distilbert.transformer.layer.0.attention.k_lin"));
        assert!(!l.matches("x.aq_lin"));
        let r = LoraConfig::resnet_default()
            .target_modules
            .matcher()
            .unwrap();
        assert!(r.matches("layer1.0.conv1"));
        assert!(r.matches("layer4.2.conv3"));
        assert!(!r.matches("conv1"));
        assert!(!r.matches("layer1.0.downsample.0"));
        assert!(!r.matches("xlayer1.0.conv1"));
        assert!(TargetModules::Regex("(".into()).matcher().is_err());
    }

    #[test]
    fn linear_merge_hand_computed() -> Result<()> {
        let d = Device::Cpu;
        let w = Tensor::new(&[[1f32, 0.], [0., 1.]], &d)?;
        let a = Tensor::new(&[[1f32, 2.]], &d)?; // r=1, in=2
        let b = Tensor::new(&[[3f32], [4.]], &d)?; // out=2, r=1
        let m = merge_linear(&w, &a, &b, 0.5)?;
        // 0.5 * [[3,6],[4,8]] + I
        assert_eq!(m.to_vec2::<f32>()?, vec![vec![2.5, 3.], vec![2., 5.]]);
        let x = Tensor::new(&[[1f32, -1.]], &d)?;
        let y = (linear(&x, &w, None)? + linear_delta(&x, &a, &b, 0.5, 0.0, false)?)?;
        assert_eq!(y.to_vec2::<f32>()?, linear(&x, &m, None)?.to_vec2::<f32>()?);
        assert_eq!(y.to_vec2::<f32>()?, vec![vec![-0.5, -3.]]);
        Ok(())
    }

    #[test]
    fn conv_merge_matches_unmerged() -> Result<()> {
        let d = Device::Cpu;
        let x = Tensor::randn(0f32, 1., (2, 3, 9, 9), &d)?;
        let w = Tensor::randn(0f32, 0.3, (5, 3, 3, 3), &d)?;
        let a = Tensor::randn(0f32, 0.3, (2, 3, 3, 3), &d)?;
        let b = Tensor::randn(0f32, 0.3, (5, 2, 1, 1), &d)?;
        for (stride, pad) in [(1, 1), (2, 1), (2, 0)] {
            let y = (conv2d(&x, &w, stride, pad)?
                + conv_delta(&x, &a, &b, stride, pad, 2.0, 0.1, false)?)?;
            let m = conv2d(&x, &merge_conv(&w, &a, &b, 2.0)?, stride, pad)?;
            let diff = (y - m)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "stride {stride} pad {pad}: {diff}");
        }
        Ok(())
    }

    /// W ← W + s·B·A on the matched var only (by dot-suffix when the file has no
    /// prefix); the head comes back; an unmatched adapter or a lone factor is an error.
    #[test]
    fn merge_into_vars_folds_adapters_and_returns_the_head() {
        let d = Device::Cpu;
        let t = |v: &[f32], s: &[usize]| Tensor::from_slice(v, s, &d).unwrap();
        let q = candle_core::Var::from_tensor(&t(&[1., 2., 3., 4.], &[2, 2])).unwrap();
        let k = candle_core::Var::from_tensor(&t(&[5., 6., 7., 8.], &[2, 2])).unwrap();
        let vars = vec![
            ("enc.q.weight".to_string(), q.clone()),
            ("enc.k.weight".into(), k.clone()),
        ];
        let mut p = ParamMap::new();
        p.insert("model.enc.q.lora_A.weight", t(&[1., -1.], &[1, 2]));
        p.insert("model.enc.q.lora_B.weight", t(&[2., 3.], &[2, 1]));
        p.insert("head.weight", t(&[9.], &[1, 1]));
        let rest = merge_into_vars(&p, &vars, 0.5).unwrap();
        // B·A = [[2,-2],[3,-3]]; ×0.5 added to [[1,2],[3,4]].
        assert_eq!(
            q.as_tensor().to_vec2::<f32>().unwrap(),
            [[2., 1.], [4.5, 2.5]]
        );
        assert_eq!(
            k.as_tensor().to_vec2::<f32>().unwrap(),
            [[5., 6.], [7., 8.]]
        );
        assert_eq!(
            rest.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["head.weight"]
        );

        let mut lone = ParamMap::new();
        lone.insert("enc.k.lora_B.weight", t(&[1., 1.], &[2, 1]));
        let e = merge_into_vars(&lone, &vars, 1.0).unwrap_err().to_string();
        assert!(e.contains("enc.k.lora_A.weight"), "{e}");
        let mut stray = ParamMap::new();
        stray.insert("enc.v.lora_A.weight", t(&[1., 1.], &[1, 2]));
        stray.insert("enc.v.lora_B.weight", t(&[1., 1.], &[2, 1]));
        let e = merge_into_vars(&stray, &vars, 1.0).unwrap_err().to_string();
        assert!(e.contains("enc.v.weight"), "{e}");
    }
}
