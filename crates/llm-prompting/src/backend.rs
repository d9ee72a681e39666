//! The chat interface every LLM backend (OpenAI-compatible HTTP, local SmolLM2, cache
//! wrapper, test fakes) implements, so the prompting logic is written once.

use serde::{Deserialize, Serialize};

/// One chat turn; `role` is `system`, `user` or `assistant` (OpenAI convention).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// A chat-completion backend: messages in, assistant text out.
pub trait ChatBackend {
    /// Returns the assistant's reply to `messages`, at most `max_tokens` new tokens.
    fn chat(&self, messages: &[ChatMessage], max_tokens: usize) -> anyhow::Result<String>;
    /// Backend kind + model name (e.g. `openai:gpt-4o-mini`); part of the cache key so
    /// replies from different models never mix.
    fn id(&self) -> String;
}

impl<B: ChatBackend + ?Sized> ChatBackend for &B {
    fn chat(&self, messages: &[ChatMessage], max_tokens: usize) -> anyhow::Result<String> {
        (**self).chat(messages, max_tokens)
    }
    fn id(&self) -> String {
        (**self).id()
    }
}

impl<B: ChatBackend + ?Sized> ChatBackend for Box<B> {
    fn chat(&self, messages: &[ChatMessage], max_tokens: usize) -> anyhow::Result<String> {
        (**self).chat(messages, max_tokens)
    }
    fn id(&self) -> String {
        (**self).id()
    }
}
