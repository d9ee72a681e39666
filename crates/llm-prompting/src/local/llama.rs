//! A llama-architecture decoder over GGUF tensors (SmolLM2 and other llama.cpp exports):
//! RMSNorm, grouped-query attention with a KV cache, rotary embeddings, SwiGLU MLP, and
//! the output head tied to the token embedding when the file has no `output.weight`.
//! Written for this crate (the one model it serves) so the workspace needs no
//! candle-transformers at run time. Tensor names follow llama.cpp's GGUF layout
//! (`blk.{i}.attn_q.weight`, ...).

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Result, Tensor};

/// Longest sequence (prompt + reply) the rotary tables are built for.
pub const MAX_SEQ_LEN: usize = 4096;

struct Layer {
    attn_norm: Tensor,
    q: QMatMul,
    k: QMatMul,
    v: QMatMul,
    o: QMatMul,
    ffn_norm: Tensor,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
    /// Keys and values of the positions seen so far, `[1, n_kv_head, t, head_dim]`.
    cache: Option<(Tensor, Tensor)>,
}

/// The decoder and its KV cache.
pub struct Llama {
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    output: QMatMul,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    eps: f64,
    cos: Tensor,
    sin: Tensor,
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    candle_nn::ops::rms_norm(x, w, eps as f32)
}

impl Llama {
    /// Reads hyperparameters from the GGUF metadata and the tensors from `r`.
    pub fn from_gguf<R: Read + Seek>(ct: &Content, r: &mut R, dev: &Device) -> Result<Self> {
        let md = |k: &str| {
            ct.metadata
                .get(k)
                .ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata lacks `{k}`")))
        };
        let n_head = md("llama.attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md("llama.attention.head_count_kv")?.to_u32()? as usize;
        let n_layer = md("llama.block_count")?.to_u32()? as usize;
        let dim = md("llama.embedding_length")?.to_u32()? as usize;
        let rope_dim = md("llama.rope.dimension_count")?.to_u32()? as usize;
        let eps = md("llama.attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let theta = md("llama.rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        if n_head == 0
            || n_kv_head == 0
            || !n_head.is_multiple_of(n_kv_head)
            || !dim.is_multiple_of(n_head)
        {
            candle_core::bail!(
                "GGUF metadata: {n_head} heads, {n_kv_head} key/value heads, width {dim} do not fit"
            );
        }
        let mut get = |name: &str| ct.tensor(r, name, dev);
        let embed_q = get("token_embd.weight")?;
        let embed = embed_q.dequantize(dev)?;
        let output = match get("output.weight") {
            Ok(w) => QMatMul::from_qtensor(w)?,
            Err(_) => QMatMul::from_qtensor(embed_q)?,
        };
        let norm = get("output_norm.weight")?.dequantize(dev)?;
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let mut t = |n: &str| get(&format!("blk.{i}.{n}.weight"));
            layers.push(Layer {
                attn_norm: t("attn_norm")?.dequantize(dev)?,
                q: QMatMul::from_qtensor(t("attn_q")?)?,
                k: QMatMul::from_qtensor(t("attn_k")?)?,
                v: QMatMul::from_qtensor(t("attn_v")?)?,
                o: QMatMul::from_qtensor(t("attn_output")?)?,
                ffn_norm: t("ffn_norm")?.dequantize(dev)?,
                gate: QMatMul::from_qtensor(t("ffn_gate")?)?,
                up: QMatMul::from_qtensor(t("ffn_up")?)?,
                down: QMatMul::from_qtensor(t("ffn_down")?)?,
                cache: None,
            });
        }
        // inv_freq_j = theta^(-2j/d); angle(pos, j) = pos · inv_freq_j.
        let inv: Vec<f32> = (0..rope_dim / 2)
            .map(|j| 1.0 / theta.powf(2.0 * j as f32 / rope_dim as f32))
            .collect();
        let inv = Tensor::from_vec(inv, (1, rope_dim / 2), dev)?;
        let pos = Tensor::arange(0u32, MAX_SEQ_LEN as u32, dev)?
            .to_dtype(DType::F32)?
            .reshape((MAX_SEQ_LEN, 1))?;
        let angles = pos.broadcast_mul(&inv)?;
        Ok(Self {
            embed,
            layers,
            norm,
            output,
            n_head,
            n_kv_head,
            head_dim: dim / n_head,
            eps,
            cos: angles.cos()?,
            sin: angles.sin()?,
        })
    }

    /// Forgets every cached position (the next `forward` starts at position 0).
    pub fn clear_kv_cache(&mut self) {
        for l in &mut self.layers {
            l.cache = None;
        }
    }

    /// Rotary embedding on interleaved pairs: llama.cpp's converter permutes the Q/K rows
    /// of a llama checkpoint so that this layout is the right one.
    fn rope(&self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let t = x.dim(2)?;
        let cos = self.cos.narrow(0, pos, t)?;
        let sin = self.sin.narrow(0, pos, t)?;
        candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
    }

    /// Logits `[1, vocab]` of the token after `ids` (`[1, t]`), whose first token sits at
    /// position `pos` (the number of positions already in the cache).
    pub fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if pos + t > MAX_SEQ_LEN {
            candle_core::bail!("sequence of {} tokens exceeds {MAX_SEQ_LEN}", pos + t);
        }
        let (nh, nkv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let mut x = self
            .embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, ()))?;
        // Causal mask for a chunk of t new queries over pos + t keys: query i sees key j
        // when j <= pos + i.
        let mask = (t > 1)
            .then(|| {
                let m: Vec<f32> = (0..t)
                    .flat_map(|i| {
                        (0..pos + t).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 })
                    })
                    .collect();
                Tensor::from_vec(m, (t, pos + t), ids.device())
            })
            .transpose()?;
        let scale = 1.0 / (hd as f64).sqrt();
        for li in 0..self.layers.len() {
            let l = &self.layers[li];
            let h = rms_norm(&x, &l.attn_norm, self.eps)?;
            let heads = |m: &QMatMul, n: usize| -> Result<Tensor> {
                m.forward(&h)?.reshape((b, t, n, hd))?.transpose(1, 2)
            };
            let q = self.rope(&heads(&l.q, nh)?, pos)?;
            let k = self.rope(&heads(&l.k, nkv)?, pos)?;
            let v = heads(&l.v, nkv)?.contiguous()?;
            let (k, v) = match &l.cache {
                Some((ck, cv)) => (Tensor::cat(&[ck, &k], 2)?, Tensor::cat(&[cv, &v], 2)?),
                None => (k, v),
            };
            let total = k.dim(2)?;
            // Grouped-query attention: each key/value head serves n_head / n_kv_head queries.
            let expand = |x: &Tensor| -> Result<Tensor> {
                if nh == nkv {
                    return Ok(x.clone());
                }
                x.unsqueeze(2)?
                    .expand((b, nkv, nh / nkv, total, hd))?
                    .reshape((b, nh, total, hd))
            };
            let att = (q.contiguous()?.matmul(&expand(&k)?.t()?.contiguous()?)? * scale)?;
            let att = match &mask {
                Some(m) => att.broadcast_add(m)?,
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att
                .matmul(&expand(&v)?.contiguous()?)?
                .transpose(1, 2)?
                .reshape((b, t, nh * hd))?;
            let x1 = (&x + l.o.forward(&y)?)?;
            let h = rms_norm(&x1, &l.ffn_norm, self.eps)?;
            let g = candle_nn::ops::silu(&l.gate.forward(&h)?)?;
            let ff = l.down.forward(&(g * l.up.forward(&h)?)?)?;
            x = (x1 + ff)?;
            self.layers[li].cache = Some((k, v));
        }
        let last = x.narrow(1, t - 1, 1)?.squeeze(1)?;
        self.output.forward(&rms_norm(&last, &self.norm, self.eps)?)
    }
}

/// Divides positive logits and multiplies negative ones by `penalty` for every token in
/// `context` (the usual repeat penalty: both make the token less likely).
pub fn apply_repeat_penalty(logits: &Tensor, penalty: f32, context: &[u32]) -> Result<Tensor> {
    let mut v = logits.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let mut seen = std::collections::HashSet::new();
    for &id in context {
        if seen.insert(id) {
            if let Some(l) = v.get_mut(id as usize) {
                *l = if *l >= 0.0 {
                    *l / penalty
                } else {
                    *l * penalty
                };
            }
        }
    }
    Tensor::from_vec(v, logits.shape(), logits.device())
}

/// Next-token choice: argmax when `temperature == 0`, else a draw from
/// `softmax(logits / temperature)` with a seeded RNG (repeatable).
pub struct Sampler {
    temperature: f64,
    rng: rand::rngs::StdRng,
}

impl Sampler {
    pub fn new(temperature: f64, seed: u64) -> Self {
        use rand::SeedableRng;
        Self {
            temperature,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    pub fn sample(&mut self, logits: &Tensor) -> Result<u32> {
        let v = logits.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let argmax = v
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |a, (i, &x)| {
                if x > a.1 {
                    (i, x)
                } else {
                    a
                }
            })
            .0;
        if self.temperature <= 0.0 {
            return Ok(argmax as u32);
        }
        let p =
            candle_nn::ops::softmax_last_dim(&(logits.to_dtype(DType::F32)? / self.temperature)?)?
                .to_vec1::<f32>()?;
        let u: f32 = rand::Rng::random(&mut self.rng);
        let mut acc = 0.0;
        for (i, &pi) in p.iter().enumerate() {
            acc += pi;
            if u < acc {
                return Ok(i as u32);
            }
        }
        Ok(argmax as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_penalty_lowers_seen_tokens_once() -> Result<()> {
        let l = Tensor::new(&[2.0f32, -2.0, 1.0], &Device::Cpu)?;
        let p = apply_repeat_penalty(&l, 2.0, &[0, 1, 0])?.to_vec1::<f32>()?;
        assert_eq!(p, vec![1.0, -4.0, 1.0]);
        Ok(())
    }

    #[test]
    fn greedy_takes_the_argmax_and_sampling_repeats_with_its_seed() -> Result<()> {
        let l = Tensor::new(&[0.1f32, 3.0, 2.9, -1.0], &Device::Cpu)?;
        assert_eq!(Sampler::new(0.0, 1).sample(&l)?, 1);
        let draw = |seed| -> Result<Vec<u32>> {
            let mut s = Sampler::new(1.0, seed);
            (0..20).map(|_| s.sample(&l)).collect()
        };
        assert_eq!(draw(7)?, draw(7)?);
        let d = draw(7)?;
        assert!(d.iter().all(|&i| i < 4));
        assert!(d.contains(&1) && d.contains(&2), "{d:?}");
        Ok(())
    }
}
