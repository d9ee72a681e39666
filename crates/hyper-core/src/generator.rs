//! The Parameter Generator P = (E, M, G) of ModelGPT (DESIGN.md §3): a requirement
//! embedding from the frozen encoder E goes through the FFN M
//! (3 × [LeakyReLU → Linear (optional spectral norm) → Dropout]) to a latent z, and
//! per-tensor heads G (one `Linear(z → numel)` each) emit the target's tensors.
//!
//! Head sharing follows the paper: a tensor whose shape is the same for every task
//! (`ParamRole::Static`) has one shared head; a tensor whose shape depends on the task
//! (`ParamRole::DynamicPerTask`: MLP first/last layer) has one head per seen task.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use anyhow::{anyhow, bail};
use candle_core::{Device, Result as CResult, Tensor, Var};
use candle_nn::VarMap;
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::layers::{cosine, default_bound, dropout, linear, uniform};
use crate::param::{ParamMap, ParamRole, ParamSpec};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Text-encoder output width (MiniLM: 384).
    pub embed_dim: usize,
    pub hidden_dim: usize,
    /// Latent z (paper: 25 tabular, 128 CV, 768 NLP).
    pub latent_dim: usize,
    pub dropout: f32,
    pub leaky_slope: f64,
    pub spectral_norm: bool,
    /// Head weights are U(±scale/√latent): small, so a fresh generator emits roughly its
    /// head biases, which are drawn like PyTorch's default init of the target tensor.
    pub head_init_scale: f64,
    /// Meta-train the text encoder E with the generator (the paper's P = (E, G) is
    /// trained end to end). Off by default: E stays frozen and requirement embeddings
    /// are computed once, which is ~100x cheaper per step on CPU.
    pub train_encoder: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            embed_dim: 384,
            hidden_dim: 128,
            latent_dim: 25,
            dropout: 0.1,
            leaky_slope: 0.01,
            spectral_norm: false,
            head_init_scale: 0.1,
            train_encoder: false,
        }
    }
}

/// A task seen in pretraining: its name and the tensors its target needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub name: String,
    pub specs: Vec<ParamSpec>,
}

/// How a request was served: which seen task's heads produced the task-dependent tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub task: String,
    /// Cosine similarity between the request's embedding and that task's anchor.
    pub similarity: f32,
    /// Whether the request named a seen task directly (no similarity search).
    pub named_by_request: bool,
    /// Tensors whose shape differed from the chosen task's and were cropped/zero-padded.
    pub adapted: Vec<String>,
}

struct FfnLayer {
    w: Tensor,
    b: Tensor,
    /// Power-iteration vector for spectral norm (a buffer, not trained).
    u: Option<Mutex<Tensor>>,
}

pub struct ParamGenerator {
    pub cfg: GeneratorConfig,
    pub tasks: Vec<TaskSpec>,
    /// Mean requirement embedding per seen task, for nearest-task lookup.
    pub anchors: BTreeMap<String, Vec<f32>>,
    varmap: VarMap,
    ffn: Vec<FfnLayer>,
    heads: BTreeMap<String, (Tensor, Tensor)>,
    device: Device,
}

fn head_key(task: &str, spec: &ParamSpec) -> String {
    match spec.role {
        ParamRole::DynamicPerTask => format!("heads.task.{}.{}", sanitize(task), spec.name),
        _ => format!("heads.shared.{}", spec.name),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The fan-in PyTorch would use to initialise `spec`: a weight's second dim, a bias's
/// matching weight's second dim.
fn fan_in(spec: &ParamSpec, all: &[ParamSpec]) -> usize {
    if spec.shape.len() >= 2 {
        return spec.shape[1..].iter().product();
    }
    if let Some(stem) = spec.name.strip_suffix(".bias") {
        let w = format!("{stem}.weight");
        if let Some(ws) = all.iter().find(|s| s.name == w) {
            return ws.shape[1..].iter().product();
        }
    }
    spec.shape.first().copied().unwrap_or(1)
}

impl ParamGenerator {
    /// A freshly initialised generator with heads for every tensor of every task.
    pub fn new(
        cfg: GeneratorConfig,
        tasks: Vec<TaskSpec>,
        seed: u64,
        device: &Device,
    ) -> anyhow::Result<Self> {
        if tasks.is_empty() {
            bail!("a parameter generator needs at least one task");
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let varmap = VarMap::new();
        let add = |name: String, t: Tensor| -> anyhow::Result<Tensor> {
            let var = Var::from_tensor(&t)?;
            let out = var.as_tensor().clone();
            varmap
                .data()
                .lock()
                .map_err(|_| anyhow!("var map lock poisoned"))?
                .insert(name, var);
            Ok(out)
        };
        let dims = [
            cfg.embed_dim,
            cfg.hidden_dim,
            cfg.hidden_dim,
            cfg.latent_dim,
        ];
        let mut ffn = Vec::new();
        for i in 0..3 {
            let (din, dout) = (dims[i], dims[i + 1]);
            let bound = default_bound(din);
            let w = add(
                format!("ffn.{i}.weight"),
                uniform(&mut rng, &[dout, din], bound, device)?,
            )?;
            let b = add(
                format!("ffn.{i}.bias"),
                uniform(&mut rng, &[dout], bound, device)?,
            )?;
            let u = if cfg.spectral_norm {
                let u = uniform(&mut rng, &[dout], 1.0, device)?;
                Some(Mutex::new(normalize(&u)?))
            } else {
                None
            };
            ffn.push(FfnLayer { w, b, u });
        }
        let mut heads = BTreeMap::new();
        let mut shared_shapes: HashMap<String, (Vec<usize>, String)> = HashMap::new();
        let hb = cfg.head_init_scale / (cfg.latent_dim as f64).sqrt();
        for task in &tasks {
            for spec in &task.specs {
                if let ParamRole::Static = spec.role {
                    if let Some((shape, first)) = shared_shapes.get(&spec.name) {
                        if *shape != spec.shape {
                            bail!(
                                "tensor `{}` is marked static (shared head) but has shape {:?} in task `{}` and {:?} in task `{first}`",
                                spec.name, spec.shape, task.name, shape
                            );
                        }
                    } else {
                        shared_shapes
                            .insert(spec.name.clone(), (spec.shape.clone(), task.name.clone()));
                    }
                }
                let key = head_key(&task.name, spec);
                if heads.contains_key(&key) {
                    continue;
                }
                let n = spec.numel();
                let w = add(
                    format!("{key}.weight"),
                    uniform(&mut rng, &[n, cfg.latent_dim], hb, device)?,
                )?;
                let bias_bound = default_bound(fan_in(spec, &task.specs));
                let b = add(
                    format!("{key}.bias"),
                    uniform(&mut rng, &[n], bias_bound, device)?,
                )?;
                heads.insert(key, (w, b));
            }
        }
        Ok(Self {
            cfg,
            tasks,
            anchors: BTreeMap::new(),
            varmap,
            ffn,
            heads,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every trainable tensor, sorted by name (stable order for optimizers and tests).
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().expect("var map lock");
        let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn num_params(&self) -> usize {
        self.trainable_vars()
            .iter()
            .map(|(_, v)| v.elem_count())
            .sum()
    }

    pub fn task(&self, name: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.name == name)
    }

    pub fn set_anchor(&mut self, task: &str, emb: Vec<f32>) {
        self.anchors.insert(task.to_string(), emb);
    }

    fn ffn_weight(&self, l: &FfnLayer, train: bool) -> CResult<Tensor> {
        let Some(u) = &l.u else {
            return Ok(l.w.clone());
        };
        let mut guard = u
            .lock()
            .map_err(|_| candle_core::Error::Msg("spectral-norm lock poisoned".into()))?;
        let wd = l.w.detach();
        let v = normalize(&wd.t()?.matmul(&guard.unsqueeze(1)?)?.squeeze(1)?)?;
        let u_new = normalize(&wd.matmul(&v.unsqueeze(1)?)?.squeeze(1)?)?;
        let sigma = u_new.unsqueeze(0)?.matmul(&l.w)?.matmul(&v.unsqueeze(1)?)?; // [1,1], graph via W
        if train {
            *guard = u_new;
        }
        l.w.broadcast_div(&sigma)
    }

    /// `[n, d]` embeddings → `[n, latent]`.
    pub fn latent(&self, emb: &Tensor, train: bool) -> CResult<Tensor> {
        let mut z = if emb.rank() == 1 {
            emb.unsqueeze(0)?
        } else {
            emb.clone()
        };
        for l in &self.ffn {
            z = candle_nn::ops::leaky_relu(&z, self.cfg.leaky_slope)?;
            z = linear(&z, &self.ffn_weight(l, train)?, Some(&l.b))?;
            z = dropout(&z, self.cfg.dropout, train)?;
        }
        Ok(z)
    }

    /// The tensors of seen task `task` from one requirement embedding `[d]`.
    pub fn generate_for_task(
        &self,
        emb: &Tensor,
        task: &str,
        train: bool,
    ) -> anyhow::Result<ParamMap> {
        let ts = self.task(task).ok_or_else(|| {
            anyhow!(
                "task `{task}` was not seen in pretraining; seen: {}",
                self.task_names().join(", ")
            )
        })?;
        let z = self.latent(emb, train)?;
        let mut out = ParamMap::new();
        for spec in &ts.specs {
            out.insert(
                spec.name.clone(),
                self.head(&z, &head_key(task, spec), &spec.shape)?,
            );
        }
        Ok(out)
    }

    fn head(&self, z: &Tensor, key: &str, shape: &[usize]) -> anyhow::Result<Tensor> {
        let (w, b) = self
            .heads
            .get(key)
            .ok_or_else(|| anyhow!("generator has no head `{key}`"))?;
        Ok(linear(z, w, Some(b))?.reshape(shape)?)
    }

    pub fn task_names(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.name.clone()).collect()
    }

    /// Seen tasks ordered by cosine similarity of their anchor to `emb` (best first).
    pub fn nearest_tasks(&self, emb: &[f32]) -> Vec<(String, f32)> {
        let mut v: Vec<(String, f32)> = self
            .tasks
            .iter()
            .map(|t| {
                let s = self
                    .anchors
                    .get(&t.name)
                    .map(|a| cosine(a, emb))
                    .unwrap_or(f32::NEG_INFINITY);
                (t.name.clone(), s)
            })
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    /// Tensors for an arbitrary spec list. If `task_hint` names a seen task with the same
    /// shapes, its heads are used; otherwise the nearest seen task by requirement
    /// similarity, preferring one with identical shapes, else cropping/zero-padding the
    /// task-dependent tensors (the paper's limitation; reported in the `Resolution`).
    pub fn generate_for_specs(
        &self,
        emb: &Tensor,
        specs: &[ParamSpec],
        task_hint: Option<&str>,
        train: bool,
    ) -> anyhow::Result<(ParamMap, Resolution)> {
        let emb_v = emb.flatten_all()?.to_vec1::<f32>()?;
        let shapes_match = |t: &TaskSpec| {
            t.specs.len() == specs.len()
                && t.specs
                    .iter()
                    .zip(specs)
                    .all(|(a, b)| a.name == b.name && a.shape == b.shape)
        };
        let nearest = self.nearest_tasks(&emb_v);
        let sim_of = |n: &str| {
            nearest
                .iter()
                .find(|(t, _)| t == n)
                .map(|x| x.1)
                .unwrap_or(0.0)
        };
        let chosen: (String, bool) = match task_hint
            .and_then(|h| self.task(h))
            .filter(|t| shapes_match(t))
        {
            Some(t) => (t.name.clone(), true),
            None => {
                let exact = nearest
                    .iter()
                    .find(|(n, _)| self.task(n).is_some_and(shapes_match));
                match exact.or(nearest.first()) {
                    Some((n, _)) => (n.clone(), false),
                    None => bail!("generator has no seen tasks"),
                }
            }
        };
        let ts = self.task(&chosen.0).expect("chosen task exists");
        let z = self.latent(emb, train)?;
        let mut out = ParamMap::new();
        let mut adapted = Vec::new();
        for spec in specs {
            let src = ts
                .specs
                .iter()
                .find(|s| s.name == spec.name)
                .ok_or_else(|| {
                    anyhow!(
                        "tensor `{}` is unknown to the generator (task `{}`)",
                        spec.name,
                        ts.name
                    )
                })?;
            let t = self.head(&z, &head_key(&ts.name, src), &src.shape)?;
            let t = if src.shape == spec.shape {
                t
            } else {
                adapted.push(spec.name.clone());
                crop_or_pad(&t, &spec.shape)?
            };
            out.insert(spec.name.clone(), t);
        }
        Ok((
            out,
            Resolution {
                similarity: sim_of(&chosen.0),
                task: chosen.0,
                named_by_request: chosen.1,
                adapted,
            },
        ))
    }

    /// All persistent tensors: trainable vars, anchors (`anchor.{task}`) and spectral-norm
    /// buffers (`sn.{i}.u`).
    pub fn state_tensors(&self) -> anyhow::Result<Vec<(String, Tensor)>> {
        let mut out: Vec<(String, Tensor)> = self
            .trainable_vars()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().detach()))
            .collect();
        for (k, a) in &self.anchors {
            out.push((
                format!("anchor.{k}"),
                Tensor::from_vec(a.clone(), a.len(), &self.device)?,
            ));
        }
        for (i, l) in self.ffn.iter().enumerate() {
            if let Some(u) = &l.u {
                out.push((
                    format!("sn.{i}.u"),
                    u.lock().map_err(|_| anyhow!("lock poisoned"))?.clone(),
                ));
            }
        }
        Ok(out)
    }

    /// Restores [`ParamGenerator::state_tensors`]; every var must be present with its shape.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        crate::checkpoint::restore_vars(
            &self.trainable_vars(),
            tensors,
            "generator",
            "was it saved by another config?",
        )?;
        self.anchors.clear();
        for (k, t) in tensors {
            if let Some(task) = k.strip_prefix("anchor.") {
                self.anchors.insert(task.to_string(), t.to_vec1::<f32>()?);
            }
        }
        for (i, l) in self.ffn.iter().enumerate() {
            if let (Some(u), Some(t)) = (&l.u, tensors.get(&format!("sn.{i}.u"))) {
                *u.lock().map_err(|_| anyhow!("lock poisoned"))? = t.clone();
            }
        }
        Ok(())
    }
}

fn normalize(v: &Tensor) -> CResult<Tensor> {
    let n = v.sqr()?.sum_all()?.sqrt()?.clamp(1e-12, f64::MAX)?;
    v.broadcast_div(&n)
}

/// Crops or zero-pads `t` to `shape` dim by dim (same rank).
fn crop_or_pad(t: &Tensor, shape: &[usize]) -> anyhow::Result<Tensor> {
    if t.rank() != shape.len() {
        bail!(
            "cannot adapt a rank-{} tensor to shape {:?}",
            t.rank(),
            shape
        );
    }
    let mut t = t.clone();
    for (d, &want) in shape.iter().enumerate() {
        let have = t.dim(d)?;
        if have > want {
            t = t.narrow(d, 0, want)?;
        } else if have < want {
            t = t.pad_with_zeros(d, 0, want - have)?;
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    fn spec(name: &str, shape: &[usize], role: ParamRole) -> ParamSpec {
        ParamSpec {
            name: name.into(),
            shape: shape.to_vec(),
            role,
        }
    }

    /// Two tasks with different in/out dims sharing a middle layer.
    fn tasks() -> Vec<TaskSpec> {
        let t = |name: &str, i: usize, o: usize| TaskSpec {
            name: name.into(),
            specs: vec![
                spec("mlp.0.weight", &[6, i], ParamRole::DynamicPerTask),
                spec("mlp.0.bias", &[6], ParamRole::DynamicPerTask),
                spec("mlp.1.weight", &[6, 6], ParamRole::Static),
                spec("mlp.1.bias", &[6], ParamRole::Static),
                spec("mlp.2.weight", &[o, 6], ParamRole::DynamicPerTask),
                spec("mlp.2.bias", &[o], ParamRole::DynamicPerTask),
            ],
        };
        vec![t("a", 4, 3), t("b", 7, 2)]
    }

    fn small_cfg(sn: bool) -> GeneratorConfig {
        GeneratorConfig {
            embed_dim: 16,
            hidden_dim: 12,
            latent_dim: 5,
            spectral_norm: sn,
            ..Default::default()
        }
    }

    #[test]
    fn shapes_match_specs_and_heads_are_shared_or_per_task() {
        let dev = Device::Cpu;
        let g = ParamGenerator::new(small_cfg(false), tasks(), 1, &dev).unwrap();
        let emb = Tensor::ones(16, DType::F32, &dev).unwrap();
        for t in tasks() {
            let p = g.generate_for_task(&emb, &t.name, false).unwrap();
            assert_eq!(p.len(), t.specs.len());
            for s in &t.specs {
                assert_eq!(
                    p.get(&s.name).unwrap().dims(),
                    s.shape.as_slice(),
                    "{} {}",
                    t.name,
                    s.name
                );
            }
        }
        // 2 tasks × 4 dynamic heads + 2 shared heads, each with weight and bias.
        assert_eq!(g.trainable_vars().len(), 6 + 2 * (8 + 2));
        // A fresh generator emits roughly its head bias: within default-init bounds.
        let w = g
            .generate_for_task(&emb, "a", false)
            .unwrap()
            .get("mlp.0.weight")
            .unwrap()
            .abs()
            .unwrap();
        let max = w.max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(max < 0.5 + 0.2, "{max}");
    }

    #[test]
    fn every_trainable_tensor_gets_a_nonzero_gradient() {
        for sn in [false, true] {
            let dev = Device::Cpu;
            let g = ParamGenerator::new(small_cfg(sn), tasks(), 2, &dev).unwrap();
            let emb = Tensor::randn(0f32, 1.0, 16, &dev).unwrap();
            let mut loss = Tensor::zeros((), DType::F32, &dev).unwrap();
            for t in ["a", "b"] {
                let p = g.generate_for_task(&emb, t, true).unwrap();
                for (_, v) in p.iter() {
                    loss = (loss + v.sqr().unwrap().sum_all().unwrap()).unwrap();
                }
            }
            test_support::assert_all_grads_nonzero(&format!("sn={sn}"), &loss, &g.trainable_vars())
                .unwrap();
        }
    }

    #[test]
    fn unseen_shape_uses_nearest_task_and_reports_it() {
        let dev = Device::Cpu;
        let mut g = ParamGenerator::new(small_cfg(false), tasks(), 3, &dev).unwrap();
        let mut ea = vec![0f32; 16];
        ea[0] = 1.0;
        let mut eb = vec![0f32; 16];
        eb[1] = 1.0;
        g.set_anchor("a", ea);
        g.set_anchor("b", eb);
        let mut q = vec![0f32; 16];
        q[1] = 0.9;
        q[0] = 0.1;
        let emb = Tensor::from_vec(q, 16, &dev).unwrap();
        // Same shapes as `a` but the query is closer to `b`: `a` is chosen (exact shape).
        let (_, r) = g
            .generate_for_specs(&emb, &tasks()[0].specs, None, false)
            .unwrap();
        assert_eq!(
            (r.task.as_str(), r.named_by_request, r.adapted.len()),
            ("a", false, 0)
        );
        // A 5-feature, 3-class task matches neither: nearest (`b`) with cropping/padding.
        let mut specs = tasks()[1].specs.clone();
        specs[0].shape = vec![6, 5];
        specs[4].shape = vec![3, 6];
        specs[5].shape = vec![3];
        let (p, r) = g.generate_for_specs(&emb, &specs, None, false).unwrap();
        assert_eq!(r.task, "b");
        assert_eq!(
            r.adapted,
            vec!["mlp.0.weight", "mlp.2.weight", "mlp.2.bias"]
        );
        assert_eq!(p.get("mlp.0.weight").unwrap().dims(), &[6, 5]);
        assert_eq!(p.get("mlp.2.bias").unwrap().dims(), &[3]);
        let (_, r) = g
            .generate_for_specs(&emb, &tasks()[0].specs, Some("a"), false)
            .unwrap();
        assert!(r.named_by_request);
    }

    #[test]
    fn state_round_trip_is_bit_exact() {
        let dev = Device::Cpu;
        let mut g = ParamGenerator::new(small_cfg(true), tasks(), 4, &dev).unwrap();
        g.set_anchor("a", vec![0.5; 16]);
        let st: HashMap<String, Tensor> = g.state_tensors().unwrap().into_iter().collect();
        let mut h = ParamGenerator::new(small_cfg(true), tasks(), 99, &dev).unwrap();
        h.load_state(&st).unwrap();
        let emb = Tensor::ones(16, DType::F32, &dev).unwrap();
        let a = g.generate_for_task(&emb, "b", false).unwrap();
        let b = h.generate_for_task(&emb, "b", false).unwrap();
        let bits = |t: &Tensor| -> Vec<u32> {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            v.iter().map(|v| v.to_bits()).collect()
        };
        for (k, t) in a.iter() {
            assert_eq!(bits(t), bits(b.get(k).unwrap()), "{k}");
        }
        assert_eq!(h.anchors["a"], vec![0.5; 16]);
        let other = ParamGenerator::new(
            GeneratorConfig {
                latent_dim: 6,
                ..small_cfg(true)
            },
            tasks(),
            4,
            &dev,
        )
        .unwrap();
        let mut other = other;
        let e = other.load_state(&st).unwrap_err().to_string();
        assert!(e.contains("has shape"), "{e}");
    }
}
