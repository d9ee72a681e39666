//! `openai` backend: any OpenAI-compatible `/v1/chat/completions` endpoint (OpenAI, vLLM,
//! llama.cpp server, Ollama, …) over blocking `ureq`.
//!
//! The key comes from the environment only and is never logged: `Debug` redacts it and
//! server error excerpts have it masked. Transient failures (429, 5xx, connection errors,
//! timeouts) are retried with bounded exponential backoff; everything else fails at once
//! with the status and an excerpt of the server's answer.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::backend::{ChatBackend, ChatMessage};
use crate::json::excerpt;

pub const ENV_BASE_URL: &str = "HYPER_OPENAI_BASE_URL";
pub const ENV_MODEL: &str = "HYPER_OPENAI_MODEL";
pub const ENV_API_KEY: &str = "HYPER_OPENAI_API_KEY";
/// Read when [`ENV_API_KEY`] is unset.
pub const ENV_API_KEY_FALLBACK: &str = "OPENAI_API_KEY";

/// Endpoint settings. `api_key` is never (de)serialised: keys live in the environment,
/// not in config files.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Base URL, with or without the trailing `/v1` (a full `…/chat/completions` is used
    /// as is).
    pub base_url: String,
    pub model: String,
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Whole-request timeout (connect + send + receive), seconds.
    pub timeout_s: f64,
    /// Extra attempts after the first on 429 / 5xx / connection errors / timeouts.
    pub max_retries: usize,
    /// First backoff; doubles each retry up to `backoff_max_ms` (a `Retry-After` header
    /// is honoured within the same cap).
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// 0 = greedy-like, reproducible answers.
    pub temperature: f64,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key: None,
            timeout_s: 60.0,
            max_retries: 3,
            backoff_initial_ms: 500,
            backoff_max_ms: 8_000,
            temperature: 0.0,
        }
    }
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field(
                "api_key",
                &if self.api_key.is_some() {
                    "<redacted>"
                } else {
                    "<unset>"
                },
            )
            .field("timeout_s", &self.timeout_s)
            .field("max_retries", &self.max_retries)
            .field("backoff_initial_ms", &self.backoff_initial_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("temperature", &self.temperature)
            .finish()
    }
}

impl OpenAiConfig {
    /// `self` with base URL, model and key overridden by the environment where set.
    pub fn with_env(mut self) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(u) = var(ENV_BASE_URL) {
            self.base_url = u;
        }
        if let Some(m) = var(ENV_MODEL) {
            self.model = m;
        }
        if let Some(k) = var(ENV_API_KEY).or_else(|| var(ENV_API_KEY_FALLBACK)) {
            self.api_key = Some(k);
        }
        self
    }

    /// Defaults overridden by the environment.
    pub fn from_env() -> Self {
        Self::default().with_env()
    }

    /// The chat-completions URL for `base_url`.
    pub fn endpoint(&self) -> String {
        let b = self.base_url.trim().trim_end_matches('/');
        if b.ends_with("/chat/completions") {
            b.to_string()
        } else if b.ends_with("/v1") {
            format!("{b}/chat/completions")
        } else {
            format!("{b}/v1/chat/completions")
        }
    }
}

/// A blocking client for one endpoint and model.
pub struct OpenAiBackend {
    cfg: OpenAiConfig,
    key: String,
    url: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("cfg", &self.cfg)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One failed attempt, classified for the retry decision.
enum Failure {
    Retryable(String, Option<Duration>),
    Fatal(anyhow::Error),
}

impl OpenAiBackend {
    /// Checks the settings (key present, URL scheme usable, model named, timeout positive).
    pub fn new(cfg: OpenAiConfig) -> Result<Self> {
        let key = match cfg.api_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => k.to_string(),
            _ => bail!(
                "no API key for the openai backend: set {ENV_API_KEY} (or {ENV_API_KEY_FALLBACK}); \
                 for a local server that ignores keys, any value works"
            ),
        };
        if cfg.model.trim().is_empty() {
            bail!("no model for the openai backend: set {ENV_MODEL} or `model` in the config");
        }
        let url = cfg.endpoint();
        if url.starts_with("https://") {
            if !cfg!(feature = "tls") {
                bail!(
                    "{url} needs HTTPS, but llm-prompting was built without its `tls` feature; \
                     rebuild with `--features llm-prompting/tls` or use an http:// endpoint"
                );
            }
        } else if !url.starts_with("http://") {
            bail!(
                "base URL `{}` must start with http:// or https:// ({ENV_BASE_URL})",
                cfg.base_url
            );
        }
        if !(cfg.timeout_s.is_finite() && cfg.timeout_s > 0.0) {
            bail!(
                "openai timeout_s must be a positive number of seconds, got {}",
                cfg.timeout_s
            );
        }
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs_f64(cfg.timeout_s))
            .build();
        Ok(Self {
            cfg,
            key,
            url,
            agent,
        })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.cfg
    }

    fn redact(&self, s: &str) -> String {
        s.replace(&self.key, "<redacted>")
    }

    fn attempt(&self, body: &Value) -> std::result::Result<String, Failure> {
        let resp = self
            .agent
            .post(&self.url)
            .set("Authorization", &format!("Bearer {}", self.key))
            .set("Accept", "application/json")
            .send_json(body.clone());
        match resp {
            Ok(r) => {
                let text = r.into_string().map_err(|e| {
                    Failure::Retryable(format!("reading the response body failed: {e}"), None)
                })?;
                parse_reply(&text)
                    .map_err(|e| Failure::Fatal(anyhow!(self.redact(&format!("{e:#}")))))
            }
            Err(ureq::Error::Status(code, r)) => {
                let retry_after = r
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64);
                let body = self.redact(&excerpt(r.into_string().unwrap_or_default().trim(), 300));
                let url = &self.url;
                match code {
                    429 | 500..=599 => Err(Failure::Retryable(
                        format!("HTTP {code} from {url}: {body}"),
                        retry_after,
                    )),
                    401 | 403 => Err(Failure::Fatal(anyhow!(
                        "authentication failed (HTTP {code}) at {url}: check {ENV_API_KEY} / \
                         {ENV_API_KEY_FALLBACK}; server said: {body}"
                    ))),
                    404 => Err(Failure::Fatal(anyhow!(
                        "not found (HTTP 404) at {url}: check {ENV_BASE_URL} and the model name `{}`; \
                         server said: {body}",
                        self.cfg.model
                    ))),
                    _ => Err(Failure::Fatal(anyhow!(
                        "request rejected (HTTP {code}) at {url}; server said: {body}"
                    ))),
                }
            }
            Err(ureq::Error::Transport(t)) => {
                let msg = t.to_string();
                let what = if msg.contains("timed out") || msg.contains("WouldBlock") {
                    format!("timed out after {} s: {msg}", self.cfg.timeout_s)
                } else {
                    format!("connection error: {msg}")
                };
                match t.kind() {
                    ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                        Err(Failure::Fatal(anyhow!("bad endpoint {}: {msg}", self.url)))
                    }
                    _ => Err(Failure::Retryable(what, None)),
                }
            }
        }
    }

    fn backoff(&self, retry: usize, retry_after: Option<Duration>) -> Duration {
        let cap = Duration::from_millis(self.cfg.backoff_max_ms);
        let exp = Duration::from_millis(
            self.cfg
                .backoff_initial_ms
                .saturating_mul(1u64 << retry.min(20)),
        );
        retry_after.unwrap_or(exp).min(cap)
    }
}

/// The assistant text of a chat-completions response body.
fn parse_reply(text: &str) -> Result<String> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        anyhow!(
            "the server's answer is not JSON ({e}): {:?}",
            excerpt(text.trim(), 200)
        )
    })?;
    if let Some(err) = v.get("error") {
        bail!(
            "the server returned an error object: {}",
            excerpt(&err.to_string(), 300)
        );
    }
    let content = v.pointer("/choices/0/message/content").ok_or_else(|| {
        anyhow!(
            "the server's answer has no `choices[0].message.content`: {}",
            excerpt(&v.to_string(), 200)
        )
    })?;
    match content {
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        Value::String(_) | Value::Null => bail!("the model returned an empty reply"),
        other => bail!(
            "`choices[0].message.content` is not a string: {}",
            excerpt(&other.to_string(), 100)
        ),
    }
}

impl ChatBackend for OpenAiBackend {
    fn chat(&self, messages: &[ChatMessage], max_tokens: usize) -> Result<String> {
        let body = json!({
            "model": self.cfg.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.cfg.temperature,
        });
        let attempts = self.cfg.max_retries + 1;
        let mut last = String::new();
        for attempt in 0..attempts {
            match self.attempt(&body) {
                Ok(s) => return Ok(s),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retryable(msg, retry_after)) => {
                    last = msg;
                    if attempt + 1 < attempts {
                        let wait = self.backoff(attempt, retry_after);
                        tracing::warn!(
                            "openai attempt {}/{attempts} failed ({last}); retrying in {:?}",
                            attempt + 1,
                            wait
                        );
                        std::thread::sleep(wait);
                    }
                }
            }
        }
        bail!(
            "openai request to {} failed after {attempts} attempt(s): {last}",
            self.url
        )
    }

    fn id(&self) -> String {
        format!("openai:{}@{}", self.cfg.model, self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let c = |u: &str| OpenAiConfig {
            base_url: u.into(),
            ..Default::default()
        };
        assert_eq!(
            c("http://h:1/v1").endpoint(),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            c("http://h:1/v1/").endpoint(),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(c("http://h:1").endpoint(), "http://h:1/v1/chat/completions");
        assert_eq!(
            c("http://h:1/x/chat/completions").endpoint(),
            "http://h:1/x/chat/completions"
        );
    }

    #[test]
    fn key_never_shows_in_debug() {
        let cfg = OpenAiConfig {
            base_url: "http://127.0.0.1:9".into(),
            api_key: Some("sk-secret-123".into()),
            ..Default::default()
        };
        let d = format!("{cfg:?}");
        assert!(
            !d.contains("sk-secret-123") && d.contains("<redacted>"),
            "{d}"
        );
        let b = OpenAiBackend::new(cfg).unwrap();
        assert!(!format!("{b:?}").contains("sk-secret-123"));
        assert!(!b.id().contains("sk-secret"));
        assert!(serde_json::to_string(b.config())
            .unwrap()
            .find("sk-secret")
            .is_none());
    }

    #[test]
    fn settings_errors() {
        let e = OpenAiBackend::new(OpenAiConfig {
            base_url: "http://127.0.0.1:9".into(),
            api_key: Some("  ".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains(ENV_API_KEY), "{e}");
        let e = OpenAiBackend::new(OpenAiConfig {
            base_url: "ftp://x".into(),
            api_key: Some("k".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
    }

    #[test]
    fn reply_parsing() {
        let ok = r#"{"choices":[{"message":{"role":"assistant","content":"hi"}}]}"#;
        assert_eq!(parse_reply(ok).unwrap(), "hi");
        let empty = r#"{"choices":[{"message":{"role":"assistant","content":"  "}}]}"#;
        assert!(parse_reply(empty)
            .unwrap_err()
            .to_string()
            .contains("empty reply"));
        assert!(parse_reply("<html>")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        assert!(parse_reply(r#"{"choices":[]}"#)
            .unwrap_err()
            .to_string()
            .contains("choices[0]"));
    }

    #[test]
    fn backoff_is_bounded() {
        let b = OpenAiBackend::new(OpenAiConfig {
            base_url: "http://127.0.0.1:9".into(),
            api_key: Some("k".into()),
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(b.backoff(0, None), Duration::from_millis(100));
        assert_eq!(b.backoff(2, None), Duration::from_millis(400));
        assert_eq!(b.backoff(10, None), Duration::from_millis(1_000));
        assert_eq!(
            b.backoff(0, Some(Duration::from_secs(30))),
            Duration::from_millis(1_000)
        );
    }
}
