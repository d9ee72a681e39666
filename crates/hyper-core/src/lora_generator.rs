//! The Parameter Generator for LoRA targets (DESIGN.md §3, the `shared` head family, after
//! Text-to-LoRA / HyperFormer++): the requirement embedding goes through the FFN M to a
//! latent z; one trunk fed `[z ; layer embedding ; module embedding]` emits every adapted
//! module's LoRA pair (A, B), so the generator's size does not grow with the number of
//! adapted layers; the classifier head is emitted one row per class from
//! `[z ; embedding of the class's name]`.
//!
//! Why the head is conditioned on label names rather than being one head per seen task:
//! a label set the generator never saw (QNLI's, a user's CSV) still gets a head, and the
//! rows of two classes differ exactly as their names do. Regression gets one "class"
//! whose name describes the target.
//!
//! Initialisation follows PEFT: a fresh generator emits A ≈ kaiming-uniform (the output
//! bias) and B ≈ 0, so the generated adapter starts as a no-op, as a fresh LoRA does.

use std::collections::HashMap;

use anyhow::{bail, ensure};
use candle_core::{Device, Result as CResult, Tensor, Var, D};
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::layers::{default_bound, dropout, linear, uniform};
use crate::param::{ParamMap, VarStore};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraGeneratorConfig {
    /// Requirement- and label-embedding width (MiniLM: 384).
    pub embed_dim: usize,
    pub hidden_dim: usize,
    /// Latent z (paper: 768 for NLP; smaller here, see configs/nlp.toml).
    pub latent_dim: usize,
    /// Width of the learned layer and module embeddings fed to the trunk.
    pub slot_dim: usize,
    /// Width of the shared LoRA trunk.
    pub trunk_dim: usize,
    /// Width of the per-class head network.
    pub head_dim: usize,
    pub dropout: f32,
    pub leaky_slope: f64,
    /// Output-layer weights are `U(±scale/√fan_in)`: small, so a fresh generator emits
    /// roughly its output biases (PEFT's init).
    pub out_init_scale: f64,
    /// Feed the head each class's label embedding minus the task's mean label embedding,
    /// scaled to unit length. Why: the ten names "the handwritten digit 0".."9" embed
    /// almost identically (what they share dominates), so the raw embeddings leave the
    /// head network to amplify tiny differences; centred, only the differences remain.
    /// Off by default (the NLP checkpoint was trained without it); single-output heads
    /// (regression) are never centred.
    pub center_labels: bool,
}

impl Default for LoraGeneratorConfig {
    fn default() -> Self {
        Self {
            embed_dim: 384,
            hidden_dim: 256,
            latent_dim: 128,
            slot_dim: 32,
            trunk_dim: 64,
            head_dim: 128,
            dropout: 0.1,
            leaky_slope: 0.01,
            out_init_scale: 0.1,
            center_labels: false,
        }
    }
}

/// One adapted module of the target: its state-dict name, its layer, its kind (index
/// into the generator's module kinds: `query`, `value`, …) and its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraSlot {
    pub module: String,
    pub layer: usize,
    pub kind: usize,
    pub in_dim: usize,
    pub out_dim: usize,
}

/// What the generator emits for: the adapted modules, the LoRA rank and the width of the
/// classifier's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraTarget {
    pub slots: Vec<LoraSlot>,
    pub r: usize,
    pub head_in: usize,
}

impl LoraTarget {
    fn n_layers(&self) -> usize {
        self.slots.iter().map(|s| s.layer + 1).max().unwrap_or(0)
    }
    fn n_kinds(&self) -> usize {
        self.slots.iter().map(|s| s.kind + 1).max().unwrap_or(0)
    }
    /// The (in, out) shape of module kind `k` (every slot of a kind has the same).
    fn kind_shape(&self, k: usize) -> Option<(usize, usize)> {
        self.slots
            .iter()
            .find(|s| s.kind == k)
            .map(|s| (s.in_dim, s.out_dim))
    }
}

pub struct LoraGenerator {
    cfg: LoraGeneratorConfig,
    target: LoraTarget,
    store: VarStore,
    device: Device,
}

impl LoraGenerator {
    pub fn new(
        cfg: LoraGeneratorConfig,
        target: LoraTarget,
        seed: u64,
        device: &Device,
    ) -> anyhow::Result<Self> {
        ensure!(
            !target.slots.is_empty(),
            "a LoRA generator needs at least one adapted module"
        );
        ensure!(target.r > 0, "LoRA rank must be positive");
        for s in &target.slots {
            let (i, o) = target.kind_shape(s.kind).expect("kind present");
            if (i, o) != (s.in_dim, s.out_dim) {
                bail!(
                    "module `{}` is {}→{} but another module of its kind is {i}→{o}",
                    s.module,
                    s.in_dim,
                    s.out_dim
                );
            }
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut vars = Vec::new();
        let mut push = |name: String, shape: &[usize], bound: f64| -> anyhow::Result<()> {
            let t = uniform(&mut rng, shape, bound, device)?;
            vars.push((name, Var::from_tensor(&t)?));
            Ok(())
        };
        let c = &cfg;
        let dims = [c.embed_dim, c.hidden_dim, c.hidden_dim, c.latent_dim];
        for i in 0..3 {
            let (din, dout) = (dims[i], dims[i + 1]);
            push(format!("ffn.{i}.weight"), &[dout, din], default_bound(din))?;
            push(format!("ffn.{i}.bias"), &[dout], default_bound(din))?;
        }
        push("slots.layer".into(), &[target.n_layers(), c.slot_dim], 1.0)?;
        push("slots.kind".into(), &[target.n_kinds(), c.slot_dim], 1.0)?;
        let tin = c.latent_dim + 2 * c.slot_dim;
        push(
            "trunk.weight".into(),
            &[c.trunk_dim, tin],
            default_bound(tin),
        )?;
        push("trunk.bias".into(), &[c.trunk_dim], default_bound(tin))?;
        let small = c.out_init_scale * default_bound(c.trunk_dim);
        for k in 0..target.n_kinds() {
            let (inp, out) = target.kind_shape(k).expect("kinds are dense");
            let r = target.r;
            push(format!("lora.{k}.A.weight"), &[r * inp, c.trunk_dim], small)?;
            // PEFT: A ~ kaiming-uniform(a=√5) = U(±1/√in), B = 0.
            push(format!("lora.{k}.A.bias"), &[r * inp], default_bound(inp))?;
            push(format!("lora.{k}.B.weight"), &[out * r, c.trunk_dim], small)?;
            push(format!("lora.{k}.B.bias"), &[out * r], 0.0)?;
        }
        let hin = c.latent_dim + c.embed_dim;
        push(
            "head.0.weight".into(),
            &[c.head_dim, hin],
            default_bound(hin),
        )?;
        push("head.0.bias".into(), &[c.head_dim], default_bound(hin))?;
        push(
            "head.weight.weight".into(),
            &[target.head_in, c.head_dim],
            default_bound(c.head_dim),
        )?;
        push("head.weight.bias".into(), &[target.head_in], 0.0)?;
        push("head.bias.weight".into(), &[1, c.head_dim], small)?;
        push("head.bias.bias".into(), &[1], 0.0)?;
        Ok(Self {
            cfg,
            target,
            store: VarStore::new(vars, "LoRA generator"),
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &LoraGeneratorConfig {
        &self.cfg
    }

    pub fn target(&self) -> &LoraTarget {
        &self.target
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trainable tensors, by name.
    pub fn vars(&self) -> &[(String, Var)] {
        self.store.vars()
    }

    pub fn num_params(&self) -> usize {
        self.store.num_params()
    }

    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.store.state_tensors()
    }

    pub fn load_state(&self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        self.store.load_state(tensors)
    }

    fn p(&self, name: &str) -> CResult<&Tensor> {
        self.store.get(name)
    }

    fn lin(&self, x: &Tensor, name: &str) -> CResult<Tensor> {
        linear(
            x,
            self.p(&format!("{name}.weight"))?,
            Some(self.p(&format!("{name}.bias"))?),
        )
    }

    /// `[d]` or `[1, d]` requirement embedding → `[1, latent]`.
    pub fn latent(&self, emb: &Tensor, train: bool) -> CResult<Tensor> {
        let mut z = if emb.rank() == 1 {
            emb.unsqueeze(0)?
        } else {
            emb.clone()
        };
        for i in 0..3 {
            z = candle_nn::ops::leaky_relu(&z, self.cfg.leaky_slope)?;
            z = self.lin(&z, &format!("ffn.{i}"))?;
            z = dropout(&z, self.cfg.dropout, train)?;
        }
        Ok(z)
    }

    /// Every LoRA pair and the classifier (`classifier.weight` `[C, head_in]`,
    /// `classifier.bias` `[C]`) from a requirement embedding `[d]` and one embedding per
    /// output (`label_embs` `[C, d]`: class names, or one row describing a regression
    /// target). The tensors keep the generator's graph.
    pub fn generate(
        &self,
        emb: &Tensor,
        label_embs: &Tensor,
        train: bool,
    ) -> anyhow::Result<ParamMap> {
        let d = self.cfg.embed_dim;
        let (c, ld) = label_embs.dims2()?;
        ensure!(
            ld == d && c >= 1,
            "label embeddings have shape [{c}, {ld}], expected [C ≥ 1, {d}]"
        );
        ensure!(
            emb.elem_count() == d,
            "requirement embedding has {} values, expected {d}",
            emb.elem_count()
        );
        let z = self.latent(&emb.flatten_all()?, train)?; // [1, latent]
        let t = &self.target;
        let s = t.slots.len();
        let layer_idx: Vec<u32> = t.slots.iter().map(|x| x.layer as u32).collect();
        let kind_idx: Vec<u32> = t.slots.iter().map(|x| x.kind as u32).collect();
        let layer_e = self
            .p("slots.layer")?
            .index_select(&Tensor::new(layer_idx, &self.device)?, 0)?;
        let kind_e = self
            .p("slots.kind")?
            .index_select(&Tensor::new(kind_idx, &self.device)?, 0)?;
        let zs = z.broadcast_as((s, self.cfg.latent_dim))?;
        let trunk_in = Tensor::cat(&[&zs, &layer_e, &kind_e], D::Minus1)?;
        let h = candle_nn::ops::leaky_relu(&self.lin(&trunk_in, "trunk")?, self.cfg.leaky_slope)?;
        let mut out = ParamMap::new();
        for (i, slot) in t.slots.iter().enumerate() {
            let hi = h.narrow(0, i, 1)?;
            let k = slot.kind;
            let a = self
                .lin(&hi, &format!("lora.{k}.A"))?
                .reshape((t.r, slot.in_dim))?;
            let b = self
                .lin(&hi, &format!("lora.{k}.B"))?
                .reshape((slot.out_dim, t.r))?;
            out.insert(format!("{}.lora_A.weight", slot.module), a);
            out.insert(format!("{}.lora_B.weight", slot.module), b);
        }
        let zc = z.broadcast_as((c, self.cfg.latent_dim))?;
        let labels = if self.cfg.center_labels && c > 1 {
            let centred = label_embs.broadcast_sub(&label_embs.mean_keepdim(0)?)?;
            let norm = (centred.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-6)?;
            centred.broadcast_div(&norm)?
        } else {
            label_embs.clone()
        };
        let hin = Tensor::cat(&[&zc, &labels], D::Minus1)?;
        let hh = candle_nn::ops::leaky_relu(&self.lin(&hin, "head.0")?, self.cfg.leaky_slope)?;
        out.insert("classifier.weight", self.lin(&hh, "head.weight")?);
        out.insert(
            "classifier.bias",
            self.lin(&hh, "head.bias")?.flatten_all()?,
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> LoraTarget {
        let slots = (0..2)
            .flat_map(|l| {
                [("query", 0), ("value", 1)].map(|(n, k)| LoraSlot {
                    module: format!("bert.encoder.layer.{l}.attention.self.{n}"),
                    layer: l,
                    kind: k,
                    in_dim: 8,
                    out_dim: 8,
                })
            })
            .collect();
        LoraTarget {
            slots,
            r: 2,
            head_in: 8,
        }
    }

    fn small_cfg() -> LoraGeneratorConfig {
        LoraGeneratorConfig {
            embed_dim: 6,
            hidden_dim: 10,
            latent_dim: 5,
            slot_dim: 3,
            trunk_dim: 7,
            head_dim: 9,
            ..Default::default()
        }
    }

    #[test]
    fn shapes_init_and_label_equivariance() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let g = LoraGenerator::new(small_cfg(), target(), 0, &dev)?;
        let emb = Tensor::randn(0f32, 1., 6, &dev)?;
        let labels = Tensor::randn(0f32, 1., (3, 6), &dev)?;
        let p = g.generate(&emb, &labels, false)?;
        assert_eq!(p.len(), 4 * 2 + 2);
        let a = p.get("bert.encoder.layer.1.attention.self.value.lora_A.weight")?;
        let b = p.get("bert.encoder.layer.1.attention.self.value.lora_B.weight")?;
        assert_eq!(a.dims(), [2, 8]);
        assert_eq!(b.dims(), [8, 2]);
        // PEFT's start: B is near zero, A near U(±1/√8).
        let bmax = b.abs()?.max_all()?.to_scalar::<f32>()?;
        let amax = a.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(bmax < 0.1, "B max {bmax}");
        assert!(amax > 0.05 && amax < 0.5, "A max {amax}");
        assert_eq!(p.get("classifier.weight")?.dims(), [3, 8]);
        assert_eq!(p.get("classifier.bias")?.dims(), [3]);
        // Swapping two label embeddings swaps the two classifier rows.
        let swapped = Tensor::cat(
            &[
                labels.narrow(0, 1, 1)?,
                labels.narrow(0, 0, 1)?,
                labels.narrow(0, 2, 1)?,
            ],
            0,
        )?;
        let q = g.generate(&emb, &swapped, false)?;
        let w0 = p.get("classifier.weight")?.get(0)?.to_vec1::<f32>()?;
        let w1 = q.get("classifier.weight")?.get(1)?.to_vec1::<f32>()?;
        assert_eq!(w0, w1);
        // Different layers get different adapters from the same requirement.
        let a0 = p
            .get("bert.encoder.layer.0.attention.self.value.lora_A.weight")?
            .to_vec2::<f32>()?;
        assert_ne!(a0, a.to_vec2::<f32>()?);
        Ok(())
    }

    #[test]
    fn every_tensor_gets_a_gradient() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let g = LoraGenerator::new(small_cfg(), target(), 1, &dev)?;
        let emb = Tensor::randn(0f32, 1., 6, &dev)?;
        let labels = Tensor::randn(0f32, 1., (2, 6), &dev)?;
        let p = g.generate(&emb, &labels, true)?;
        let mut loss = Tensor::zeros((), candle_core::DType::F32, &dev)?;
        for (_, t) in p.iter() {
            loss = (loss + t.sqr()?.sum_all()?)?;
        }
        let grads = loss.backward()?;
        for (name, v) in g.vars() {
            let gr = grads
                .get(v)
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let n = gr.abs()?.sum_all()?.to_scalar::<f32>()?;
            assert!(n > 0.0, "zero gradient for {name}");
        }
        Ok(())
    }

    #[test]
    fn centred_labels_ignore_what_all_names_share() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let cfg = LoraGeneratorConfig {
            center_labels: true,
            ..small_cfg()
        };
        let g = LoraGenerator::new(cfg, target(), 3, &dev)?;
        let emb = Tensor::randn(0f32, 1., 6, &dev)?;
        let labels = Tensor::randn(0f32, 1., (3, 6), &dev)?;
        // A shared offset and a common scale leave the centred, unit-length inputs as
        // they are, so the head is the same.
        let shifted = ((&labels * 2.0)?.broadcast_add(&Tensor::randn(0f32, 5., (1, 6), &dev)?))?;
        let a = g.generate(&emb, &labels, false)?;
        let b = g.generate(&emb, &shifted, false)?;
        let d = (a.get("classifier.weight")? - b.get("classifier.weight")?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(d < 1e-4, "head moved by {d}");
        // One output (regression) is not centred (it would be all zeros).
        let one = g.generate(&emb, &labels.narrow(0, 0, 1)?, false)?;
        let two = g.generate(&emb, &(labels.narrow(0, 0, 1)? * 2.0)?, false)?;
        assert_ne!(
            one.get("classifier.weight")?.to_vec2::<f32>()?,
            two.get("classifier.weight")?.to_vec2::<f32>()?
        );
        Ok(())
    }

    #[test]
    fn mismatched_kind_shapes_are_refused() {
        let mut t = target();
        t.slots[2].in_dim = 4;
        let e = LoraGenerator::new(small_cfg(), t, 0, &Device::Cpu)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("another module of its kind"), "{e}");
    }
}
