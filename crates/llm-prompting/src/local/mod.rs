//! `local` backend: SmolLM2-135M-Instruct (GGUF Q4_1, llama architecture) on CPU through
//! our llama decoder ([`llama`]), with the tokenizer rebuilt from the GGUF itself
//! (DESIGN.md §5-§6). No network, no Python.

pub mod llama;
pub mod tokenizer;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::backend::{ChatBackend, ChatMessage};
use llama::{apply_repeat_penalty, Llama, Sampler, MAX_SEQ_LEN};
pub use tokenizer::GgufTokenizer;

/// File name of the GGUF under `<data>/smollm2/` (fetched by `cargo xtask fetch`).
pub const SMOLLM2_GGUF: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Decoding settings of the local model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Upper bound on new tokens per reply (the `chat` argument may only lower it).
    pub max_tokens: usize,
    /// Wall-clock budget of one reply, prompt included; when hit, the text so far is
    /// returned with a warning rather than an error, so a slow machine degrades gracefully.
    #[serde(with = "secs_f64")]
    pub time_limit: Duration,
    /// 0 = greedy (deterministic, the default); > 0 samples with this temperature.
    pub temperature: f64,
    /// Seed for sampling (unused when greedy).
    pub seed: u64,
    /// Penalty on logits of recently generated tokens; 1.0 = off. Small models loop under
    /// greedy decoding, 1.1 is a common mild setting.
    pub repeat_penalty: f32,
    /// How many trailing tokens `repeat_penalty` looks at.
    pub repeat_last_n: usize,
    /// When a prompt extends the previous call's prompt + reply (a repair round, a
    /// follow-up turn), keep the KV cache and only process the new tokens. Chunked
    /// processing can flip near-tied greedy choices compared with a cold start.
    pub reuse_prefix: bool,
    /// In-memory weight format; see [`WeightFormat`].
    pub weights: WeightFormat,
}

/// How the GGUF's weights are held in memory.
///
/// candle 0.11 has no SIMD kernel for Q4_1 (SmolLM2's format): its matmuls run scalar
/// dot products against int8-quantized activations. Measured on the 2-core dev machine
/// (200-token prompt / 40 new tokens): f32 1.4 s / 6-7 tok/s, Q8_0 4.4-4.9 s / 3-4 tok/s,
/// native Q4_1 slower still (all under CPU contention from other builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// As stored in the file (Q4_1 for SmolLM2): least memory, slowest.
    Native,
    /// Dequantized to f32 (~0.6 GB for 135M params): fast prompt processing, and logits
    /// equal an f32 reference of the dequantized weights.
    F32,
    /// Requantized to Q8_0 (~0.15 GB, AVX2 kernels): a memory/speed middle ground;
    /// activations are int8-quantized too, which perturbs logits slightly.
    Q8_0,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            time_limit: Duration::from_secs(45),
            temperature: 0.0,
            seed: 299_792_458,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            reuse_prefix: true,
            weights: WeightFormat::F32,
        }
    }
}

mod secs_f64 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(|_| {
            serde::de::Error::custom(format!(
                "time_limit must be a finite, non-negative number of seconds, got {secs}"
            ))
        })
    }
}

/// Rewrites the tensors of `ct` in `dtype` into an in-memory buffer and returns the
/// content describing it, for [`Llama::from_gguf`] to load from. 1-D tensors (norms)
/// and tensors whose rows do not fit `dtype`'s blocks stay f32.
fn convert_all<R: std::io::Read + std::io::Seek>(
    ct: Content,
    reader: &mut R,
    dtype: GgmlDType,
    device: &Device,
) -> candle_core::Result<(Content, std::io::Cursor<Vec<u8>>)> {
    use candle_core::quantized::gguf_file::TensorInfo;
    use candle_core::quantized::QTensor;

    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let total: usize = ct
        .tensor_infos
        .values()
        .map(|t| t.shape.elem_count() * 4)
        .sum();
    let mut buf: Vec<u8> = Vec::with_capacity(total);
    let mut infos = std::collections::HashMap::with_capacity(names.len());
    for name in names {
        let t = ct.tensor(reader, name, device)?.dequantize(device)?;
        let dims = t.dims();
        let target = if dims.len() >= 2 && dims[dims.len() - 1] % dtype.block_size() == 0 {
            dtype
        } else {
            GgmlDType::F32
        };
        let q = QTensor::quantize(&t, target)?;
        let offset = buf.len() as u64;
        buf.extend_from_slice(&q.data()?);
        // GGUF tensor data is 32-byte aligned.
        buf.resize(buf.len().div_ceil(32) * 32, 0);
        infos.insert(
            name.clone(),
            TensorInfo {
                ggml_dtype: target,
                shape: t.shape().clone(),
                offset,
            },
        );
    }
    let content = Content {
        magic: ct.magic,
        metadata: ct.metadata,
        tensor_infos: infos,
        tensor_data_offset: 0,
    };
    Ok((content, std::io::Cursor::new(buf)))
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model emitted `<|im_end|>` / eos.
    EndOfTurn,
    TokenLimit,
    TimeLimit,
    /// Prompt + reply reached the model's maximum sequence length.
    ContextLimit,
}

/// One reply with its timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    /// Generated token ids, stop token excluded.
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    /// Leading prompt tokens served from the previous call's KV cache.
    pub reused_tokens: usize,
    pub stop: StopReason,
    /// Time to process the prompt and produce the first token's logits.
    pub prompt_secs: f64,
    pub total_secs: f64,
}

impl Generation {
    /// Decode speed, tokens per second after the prompt.
    pub fn tokens_per_sec(&self) -> f64 {
        let t = self.total_secs - self.prompt_secs;
        if t > 0.0 {
            self.tokens.len() as f64 / t
        } else {
            0.0
        }
    }
}

/// The model and the tokens whose keys/values its internal cache holds.
struct Session {
    model: Llama,
    cached: Vec<u32>,
}

/// SmolLM2 (or any llama-architecture ChatML GGUF) loaded for CPU inference.
pub struct LocalLlm {
    /// `chat` takes `&self`; the model's internal KV cache needs exclusive access.
    model: Mutex<Session>,
    tokenizer: GgufTokenizer,
    cfg: LocalConfig,
    path: PathBuf,
    name: String,
    device: Device,
}

impl std::fmt::Debug for LocalLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLlm")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("cfg", &self.cfg)
            .field("tokenizer", &self.tokenizer)
            .finish()
    }
}

impl LocalLlm {
    /// Where `cargo xtask fetch` puts SmolLM2 (`$HYPER_DATA` respected).
    pub fn default_path() -> PathBuf {
        datasets::paths::data_dir().join(SMOLLM2_GGUF)
    }

    /// Loads the GGUF at `gguf_path`: weights, tokenizer and chat template.
    pub fn load(gguf_path: &Path, cfg: LocalConfig) -> Result<Self> {
        let hint = "run `cargo xtask fetch` (or point $HYPER_DATA at a data dir holding it)";
        if !gguf_path.is_file() {
            bail!(
                "local LLM weights not found at {}: {hint}",
                gguf_path.display()
            );
        }
        datasets::assets::verify_file(gguf_path)?;
        if cfg.max_tokens == 0 {
            bail!("local LLM config: max_tokens must be > 0");
        }
        if !(cfg.temperature >= 0.0 && cfg.temperature.is_finite()) {
            bail!(
                "local LLM config: temperature must be >= 0, got {}",
                cfg.temperature
            );
        }
        if !(cfg.repeat_penalty > 0.0 && cfg.repeat_penalty.is_finite()) {
            bail!(
                "local LLM config: repeat_penalty must be > 0, got {}",
                cfg.repeat_penalty
            );
        }
        let t0 = Instant::now();
        let mut file = std::fs::File::open(gguf_path)
            .with_context(|| format!("cannot open GGUF {}", gguf_path.display()))?;
        let ct = Content::read(&mut file).map_err(|e| {
            anyhow!(
                "cannot read GGUF {}: {e} (truncated or corrupt? {hint})",
                gguf_path.display()
            )
        })?;
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            bail!(
                "GGUF {}: architecture `{arch}` is not supported by the local backend (need `llama`)",
                gguf_path.display()
            );
        }
        // The file stem (`SmolLM2-135M-Instruct.Q4_1`) names model and quantisation, which
        // `general.name` does not.
        let name = gguf_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "gguf".to_string());
        let tokenizer = GgufTokenizer::from_gguf(&ct, gguf_path)?;
        let device = Device::Cpu;
        let corrupt = |e: candle_core::Error| {
            anyhow!(
                "cannot load weights from GGUF {}: {e} (truncated or corrupt? {hint})",
                gguf_path.display()
            )
        };
        let model = match cfg.weights {
            WeightFormat::Native => Llama::from_gguf(&ct, &mut file, &device),
            WeightFormat::F32 => convert_all(ct, &mut file, GgmlDType::F32, &device)
                .and_then(|(ct, mut data)| Llama::from_gguf(&ct, &mut data, &device)),
            WeightFormat::Q8_0 => convert_all(ct, &mut file, GgmlDType::Q8_0, &device)
                .and_then(|(ct, mut data)| Llama::from_gguf(&ct, &mut data, &device)),
        }
        .map_err(corrupt)?;
        tracing::info!(
            path = %gguf_path.display(),
            secs = t0.elapsed().as_secs_f64(),
            "loaded local LLM"
        );
        Ok(Self {
            model: Mutex::new(Session {
                model,
                cached: Vec::new(),
            }),
            tokenizer,
            cfg,
            path: gguf_path.to_path_buf(),
            name,
            device,
        })
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    pub fn config(&self) -> &LocalConfig {
        &self.cfg
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renders `messages` with the ChatML template and generates the assistant turn.
    pub fn generate_chat(&self, messages: &[ChatMessage], max_tokens: usize) -> Result<Generation> {
        if messages.is_empty() {
            bail!("local LLM: no messages to answer");
        }
        let prompt = self.tokenizer.encode_chat(
            messages
                .iter()
                .map(|m| (m.role.as_str(), m.content.as_str())),
            true,
        )?;
        self.generate(&prompt, max_tokens)
    }

    /// Logits of the token after `prompt` (fresh KV cache); for checking the model against
    /// a reference implementation.
    pub fn next_token_logits(&self, prompt: &[u32]) -> Result<Vec<f32>> {
        if prompt.is_empty() || prompt.len() >= MAX_SEQ_LEN {
            bail!(
                "local LLM: prompt of {} tokens (need 1..{MAX_SEQ_LEN})",
                prompt.len()
            );
        }
        let mut session = self.model.lock().unwrap_or_else(|p| p.into_inner());
        session.cached.clear();
        session.model.clear_kv_cache();
        let x = Tensor::new(prompt, &self.device)?.unsqueeze(0)?;
        let logits = session.model.forward(&x, 0)?.squeeze(0)?;
        Ok(logits.to_dtype(candle_core::DType::F32)?.to_vec1()?)
    }

    /// Continues the token sequence `prompt` until a stop token, `max_tokens` (capped by
    /// the config's), the context length or the wall-clock limit.
    pub fn generate(&self, prompt: &[u32], max_tokens: usize) -> Result<Generation> {
        let t0 = Instant::now();
        let max_tokens = max_tokens.min(self.cfg.max_tokens);
        if prompt.is_empty() {
            bail!("local LLM: empty prompt");
        }
        if max_tokens == 0 {
            bail!("local LLM: max_tokens must be > 0");
        }
        if prompt.len() >= MAX_SEQ_LEN {
            bail!(
                "local LLM: prompt is {} tokens, the model's limit is {MAX_SEQ_LEN}",
                prompt.len()
            );
        }
        let mut sampler = Sampler::new(self.cfg.temperature, self.cfg.seed);
        // A panic in an earlier call cannot leave bad state behind: `cached` is cleared
        // before the model runs and only set once a forward pass has succeeded.
        let mut session = self.model.lock().unwrap_or_else(|p| p.into_inner());
        let reuse = if self.cfg.reuse_prefix
            && !session.cached.is_empty()
            && session.cached.len() < prompt.len()
            && prompt.starts_with(&session.cached)
        {
            session.cached.len()
        } else {
            session.model.clear_kv_cache();
            0
        };
        session.cached.clear();
        if reuse > 0 {
            tracing::debug!(
                reused = reuse,
                "local LLM: prompt continues the cached sequence"
            );
        }

        let mut all: Vec<u32> = prompt.to_vec();
        let mut out: Vec<u32> = Vec::new();
        let mut prompt_secs = 0.0;
        let mut input = prompt[reuse..].to_vec();
        let mut pos = reuse;
        let stop = loop {
            let x = Tensor::new(input.as_slice(), &self.device)?.unsqueeze(0)?;
            let logits = session.model.forward(&x, pos)?.squeeze(0)?;
            pos += input.len();
            if out.is_empty() {
                prompt_secs = t0.elapsed().as_secs_f64();
            }
            let logits = if self.cfg.repeat_penalty != 1.0 {
                let start = all.len().saturating_sub(self.cfg.repeat_last_n);
                apply_repeat_penalty(&logits, self.cfg.repeat_penalty, &all[start..])?
            } else {
                logits
            };
            let next = sampler.sample(&logits)?;
            if self.tokenizer.is_stop(next) {
                break StopReason::EndOfTurn;
            }
            out.push(next);
            all.push(next);
            if out.len() >= max_tokens {
                break StopReason::TokenLimit;
            }
            if pos + 1 >= MAX_SEQ_LEN {
                break StopReason::ContextLimit;
            }
            if t0.elapsed() >= self.cfg.time_limit {
                break StopReason::TimeLimit;
            }
            input = vec![next];
        };
        // Every sampled token but the last was fed back; after a stop token (never pushed)
        // the last one was fed too.
        if stop != StopReason::EndOfTurn {
            all.pop();
        }
        session.cached = all;
        drop(session);

        let text = self.tokenizer.decode(&out, true)?;
        let total_secs = t0.elapsed().as_secs_f64();
        match stop {
            StopReason::TimeLimit => tracing::warn!(
                limit_s = self.cfg.time_limit.as_secs_f64(),
                tokens = out.len(),
                "local LLM hit its wall-clock limit; returning the partial reply"
            ),
            StopReason::ContextLimit => tracing::warn!(
                tokens = out.len(),
                "local LLM reached its context length; returning the partial reply"
            ),
            _ => {}
        }
        let g = Generation {
            text,
            tokens: out,
            prompt_tokens: prompt.len(),
            reused_tokens: reuse,
            stop,
            prompt_secs,
            total_secs,
        };
        tracing::debug!(
            prompt_tokens = g.prompt_tokens,
            new_tokens = g.tokens.len(),
            prompt_secs = g.prompt_secs,
            total_secs = g.total_secs,
            tok_per_s = g.tokens_per_sec(),
            stop = ?g.stop,
            "local LLM generation"
        );
        Ok(g)
    }
}

impl ChatBackend for LocalLlm {
    fn chat(&self, messages: &[ChatMessage], max_tokens: usize) -> Result<String> {
        Ok(self.generate_chat(messages, max_tokens)?.text)
    }

    /// Includes the settings that change the reply (weight format, sampling, repeat
    /// penalty), so cached replies from other settings never mix in.
    fn id(&self) -> String {
        let mut id = format!("local:{}", self.name);
        match self.cfg.weights {
            WeightFormat::F32 => {}
            WeightFormat::Native => id.push_str(":native"),
            WeightFormat::Q8_0 => id.push_str(":q8_0"),
        }
        if self.cfg.temperature > 0.0 {
            id.push_str(&format!(":t{}:s{}", self.cfg.temperature, self.cfg.seed));
        }
        if self.cfg.repeat_penalty != 1.0 {
            id.push_str(&format!(
                ":rp{}x{}",
                self.cfg.repeat_penalty, self.cfg.repeat_last_n
            ));
        }
        id
    }
}
