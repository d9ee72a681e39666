//! Byte-level BPE tokenizer rebuilt from a GGUF file's own metadata.
//!
//! The SmolLM2 GGUF ships no `tokenizer.json`, so we assemble the equivalent
//! `tokenizers::Tokenizer` from `tokenizer.ggml.{tokens,merges,token_type}`: a GPT-2 style
//! BPE over byte-level symbols, the pre-tokenizer llama.cpp selects for
//! `tokenizer.ggml.pre` (`smollm` = single digits, then the GPT-2 regex), and every
//! CONTROL token (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>`, …) as an added special
//! token with its GGUF id.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::json;
use tokenizers::Tokenizer;

/// llama.cpp `llama_token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";
const END_OF_TEXT: &str = "<|endoftext|>";

/// Tokenizer and ChatML template of a GGUF chat model.
#[derive(Clone)]
pub struct GgufTokenizer {
    /// Recognises special tokens written in the text (`encode`).
    with_special: Tokenizer,
    /// Treats special-token strings as plain text, so user content cannot forge turns.
    plain: Tokenizer,
    bos_id: Option<u32>,
    eos_id: u32,
    im_start_id: u32,
    im_end_id: u32,
    /// Ids that end a reply: eos, `<|im_end|>`, `<|endoftext|>`.
    stop_ids: Vec<u32>,
    /// System prompt the GGUF chat template inserts when the first turn is not `system`.
    default_system: Option<String>,
    chat_template: Option<String>,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("im_start_id", &self.im_start_id)
            .field("im_end_id", &self.im_end_id)
            .finish()
    }
}

fn md<'a>(ct: &'a Content, key: &str, src: &Path) -> Result<&'a Value> {
    ct.metadata
        .get(key)
        .ok_or_else(|| anyhow!("GGUF {}: metadata key `{key}` is missing", src.display()))
}

fn md_u32(ct: &Content, key: &str, src: &Path) -> Result<Option<u32>> {
    match ct.metadata.get(key) {
        None => Ok(None),
        Some(v) => v
            .to_u32()
            .map(Some)
            .map_err(|e| anyhow!("GGUF {}: metadata key `{key}`: {e}", src.display())),
    }
}

fn md_strings(ct: &Content, key: &str, src: &Path) -> Result<Vec<String>> {
    let arr = md(ct, key, src)?
        .to_vec()
        .map_err(|e| anyhow!("GGUF {}: metadata key `{key}`: {e}", src.display()))?;
    arr.iter()
        .enumerate()
        .map(|(i, v)| {
            v.to_string()
                .cloned()
                .map_err(|e| anyhow!("GGUF {}: `{key}`[{i}]: {e}", src.display()))
        })
        .collect()
}

impl GgufTokenizer {
    /// Builds the tokenizer from already-read GGUF metadata; `src` only names the file in
    /// errors.
    pub fn from_gguf(ct: &Content, src: &Path) -> Result<Self> {
        let model = md(ct, "tokenizer.ggml.model", src)?
            .to_string()
            .map_err(|e| anyhow!("GGUF {}: `tokenizer.ggml.model`: {e}", src.display()))?;
        if model != "gpt2" {
            bail!(
                "GGUF {}: tokenizer.ggml.model is `{model}`, only byte-level BPE (`gpt2`) is supported",
                src.display()
            );
        }
        let pre = ct
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "default".to_string());

        let tokens = md_strings(ct, "tokenizer.ggml.tokens", src)?;
        let merges = md_strings(ct, "tokenizer.ggml.merges", src)?;
        let types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
            None => vec![1; tokens.len()],
            Some(v) => v
                .to_vec()
                .map_err(|e| anyhow!("GGUF {}: `tokenizer.ggml.token_type`: {e}", src.display()))?
                .iter()
                .map(|t| t.to_i32())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| anyhow!("GGUF {}: `tokenizer.ggml.token_type`: {e}", src.display()))?,
        };
        if types.len() != tokens.len() {
            bail!(
                "GGUF {}: {} token types for {} tokens",
                src.display(),
                types.len(),
                tokens.len()
            );
        }

        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut added = Vec::new();
        for (id, (tok, &ty)) in tokens.iter().zip(&types).enumerate() {
            if vocab.insert(tok.clone(), json!(id)).is_some() {
                bail!(
                    "GGUF {}: token {tok:?} (id {id}) appears twice",
                    src.display()
                );
            }
            if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
                added.push(json!({
                    "id": id, "content": tok, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": ty == TOKEN_TYPE_CONTROL,
                }));
            }
        }
        for (i, m) in merges.iter().enumerate() {
            if m.split(' ').count() != 2 {
                bail!(
                    "GGUF {}: `tokenizer.ggml.merges`[{i}] = {m:?} is not two symbols",
                    src.display()
                );
            }
        }

        let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        // Mirrors llama.cpp's `llm_tokenizer_bpe`: these pre types split every digit first.
        let pre_tokenizer = match pre.as_str() {
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" => json!({
                "type": "Sequence",
                "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level],
            }),
            "gpt2" | "default" => byte_level,
            other => {
                tracing::warn!(
                    "GGUF {}: pre-tokenizer `{other}` not known; using the GPT-2 regex",
                    src.display()
                );
                byte_level
            }
        };
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null,
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": merges,
            },
        });
        let bytes = serde_json::to_vec(&spec)?;
        let with_special = Tokenizer::from_bytes(&bytes).map_err(|e| {
            anyhow!(
                "GGUF {}: cannot build a BPE tokenizer from its vocabulary: {e}",
                src.display()
            )
        })?;
        let mut plain = with_special.clone();
        plain.set_encode_special_tokens(true);

        let id_of = |name: &str| -> Result<u32> {
            with_special.token_to_id(name).ok_or_else(|| {
                anyhow!(
                    "GGUF {}: vocabulary has no `{name}` token (not a ChatML model?)",
                    src.display()
                )
            })
        };
        let im_start_id = id_of(IM_START)?;
        let im_end_id = id_of(IM_END)?;
        let n = tokens.len() as u32;
        let check = |key: &str, id: Option<u32>| -> Result<Option<u32>> {
            match id {
                Some(i) if i >= n => bail!(
                    "GGUF {}: `{key}` = {i} is outside the {n}-token vocabulary",
                    src.display()
                ),
                other => Ok(other),
            }
        };
        let bos_id = check(
            "tokenizer.ggml.bos_token_id",
            md_u32(ct, "tokenizer.ggml.bos_token_id", src)?,
        )?;
        let eos_id = check(
            "tokenizer.ggml.eos_token_id",
            md_u32(ct, "tokenizer.ggml.eos_token_id", src)?,
        )?
        .unwrap_or(im_end_id);
        let mut stop_ids = vec![eos_id, im_end_id];
        stop_ids.extend(with_special.token_to_id(END_OF_TEXT));
        stop_ids.sort_unstable();
        stop_ids.dedup();

        let chat_template = ct
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        let default_system = chat_template.as_deref().and_then(default_system_prompt);

        Ok(Self {
            with_special,
            plain,
            bos_id,
            eos_id,
            im_start_id,
            im_end_id,
            stop_ids,
            default_system,
            chat_template,
        })
    }

    /// Reads only the metadata of the GGUF at `path` (no tensor data) and builds the
    /// tokenizer.
    pub fn from_gguf_file(path: &Path) -> Result<Self> {
        let mut f = std::fs::File::open(path)
            .with_context(|| format!("cannot open GGUF {}", path.display()))?;
        let ct = Content::read(&mut f).map_err(|e| {
            anyhow!(
                "cannot read GGUF {}: {e} (truncated or corrupt? re-run `cargo xtask fetch`)",
                path.display()
            )
        })?;
        Self::from_gguf(&ct, path)
    }

    /// Encodes `text`; special-token strings such as `<|im_end|>` become their ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Self::ids(&self.with_special, text)
    }

    /// Encodes `text` treating special-token strings as ordinary characters.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        Self::ids(&self.plain, text)
    }

    fn ids(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
        tok.encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| anyhow!("tokenizer failed on {} bytes of text: {e}", text.len()))
    }

    /// Decodes `ids` to text; `skip_special` drops control tokens like `<|im_end|>`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.with_special
            .decode(ids, skip_special)
            .map_err(|e| anyhow!("cannot decode {} token ids: {e}", ids.len()))
    }

    /// Token ids of a ChatML conversation, as the GGUF's `tokenizer.chat_template`
    /// renders it: `<|im_start|>{role}\n{content}<|im_end|>\n` per turn, the template's
    /// default system turn first when the conversation has none, and
    /// `<|im_start|>assistant\n` when `add_generation_prompt`. Contents are encoded as
    /// plain text so a message cannot inject turn markers.
    pub fn encode_chat<'a>(
        &self,
        messages: impl IntoIterator<Item = (&'a str, &'a str)>,
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let newline = self.encode_plain("\n")?;
        for (i, (role, content)) in messages.into_iter().enumerate() {
            if i == 0 && role != "system" {
                if let Some(sys) = &self.default_system {
                    ids.push(self.im_start_id);
                    ids.extend(self.encode_plain(&format!("system\n{sys}"))?);
                    ids.push(self.im_end_id);
                    ids.extend(&newline);
                }
            }
            ids.push(self.im_start_id);
            ids.extend(self.encode_plain(&format!("{role}\n{content}"))?);
            ids.push(self.im_end_id);
            ids.extend(&newline);
        }
        if add_generation_prompt {
            ids.push(self.im_start_id);
            ids.extend(self.encode_plain("assistant\n")?);
        }
        Ok(ids)
    }

    /// The ChatML text `encode_chat` tokenizes (for logs, caches and tests).
    pub fn render_chat<'a>(
        &self,
        messages: impl IntoIterator<Item = (&'a str, &'a str)>,
        add_generation_prompt: bool,
    ) -> String {
        let mut s = String::new();
        for (i, (role, content)) in messages.into_iter().enumerate() {
            if i == 0 && role != "system" {
                if let Some(sys) = &self.default_system {
                    s.push_str(&format!("{IM_START}system\n{sys}{IM_END}\n"));
                }
            }
            s.push_str(&format!("{IM_START}{role}\n{content}{IM_END}\n"));
        }
        if add_generation_prompt {
            s.push_str(&format!("{IM_START}assistant\n"));
        }
        s
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.with_special.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.with_special.id_to_token(id)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.with_special.get_vocab_size(true)
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    pub fn im_start_id(&self) -> u32 {
        self.im_start_id
    }

    pub fn im_end_id(&self) -> u32 {
        self.im_end_id
    }

    /// Ids that end an assistant reply.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    pub fn is_stop(&self, id: u32) -> bool {
        self.stop_ids.contains(&id)
    }

    pub fn default_system(&self) -> Option<&str> {
        self.default_system.as_deref()
    }

    /// The raw Jinja `tokenizer.chat_template`, if the GGUF has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The underlying `tokenizers` tokenizer (special tokens recognised).
    pub fn inner(&self) -> &Tokenizer {
        &self.with_special
    }

    /// Token → id map of the base vocabulary plus added tokens.
    pub fn vocab(&self) -> HashMap<String, u32> {
        self.with_special.get_vocab(true)
    }
}

/// The literal system turn a ChatML Jinja template inserts by default, e.g. SmolLM2's
/// `'<|im_start|>system\nYou are a helpful AI assistant named SmolLM…<|im_end|>\n'`.
fn default_system_prompt(template: &str) -> Option<String> {
    let marker = format!("{IM_START}system\n");
    let start = template.find(&marker)? + marker.len();
    let rest = &template[start..];
    let end = rest.find(IM_END)?;
    let text = &rest[..end];
    // A template that splices the message in (`' + message['content'] + '`) has no literal.
    if text.contains('\'') || text.contains('{') || text.is_empty() {
        return None;
    }
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::default_system_prompt;

    #[test]
    fn default_system_is_extracted_from_smollm_template() {
        let t = "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}";
        assert_eq!(
            default_system_prompt(t).as_deref(),
            Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        );
        assert_eq!(
            default_system_prompt("{{'<|im_start|>' + message['role'] + '\n'}}"),
            None
        );
    }
}
