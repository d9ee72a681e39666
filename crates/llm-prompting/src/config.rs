//! `configs/llm.toml`: endpoint, local-model and cache settings for the LLM backends
//! (API keys never live here: they come from the environment only).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::local::LocalConfig;
use crate::openai::OpenAiConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Response cache directory; `None` = `<data>/cache/llm`.
    pub cache_dir: Option<PathBuf>,
    pub openai: OpenAiConfig,
    pub local: LocalConfig,
}

impl LlmConfig {
    /// `<workspace>/configs/llm.toml`.
    pub fn default_path() -> PathBuf {
        datasets::paths::workspace_root()
            .join("configs")
            .join("llm.toml")
    }

    /// Parses `path`; errors name the file (and toml's line/column and key).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading LLM config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing LLM config {}", path.display()))
    }

    /// [`LlmConfig::default_path`] when it exists, else the built-in defaults.
    pub fn load_default() -> Result<Self> {
        let p = Self::default_path();
        if p.is_file() {
            Self::load(&p)
        } else {
            Ok(Self::default())
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(crate::cache::default_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses_and_unknown_keys_are_errors() {
        let c = LlmConfig::load(&LlmConfig::default_path()).unwrap();
        assert!(c.openai.timeout_s > 0.0 && c.openai.api_key.is_none());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "[openai]\nmodel = \"m\"\napi_key = \"sk-x\"\n").unwrap();
        let e = format!("{:#}", LlmConfig::load(&p).unwrap_err());
        assert!(e.contains("bad.toml") && e.contains("api_key"), "{e}");
    }
}
