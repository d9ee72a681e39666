//! On-disk response cache: one JSON file per (backend id, messages, max_tokens), named by
//! the SHA-256 of that key, so repeated runs and tests are reproducible and free.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{ChatBackend, ChatMessage};

/// `<data>/cache/llm` (`$HYPER_DATA` honoured).
pub fn default_dir() -> PathBuf {
    datasets::paths::data_dir().join("cache").join("llm")
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    backend: String,
    max_tokens: usize,
    messages: Vec<ChatMessage>,
    reply: String,
}

/// The cache key: hex SHA-256 of the canonical JSON of (backend id, max_tokens, messages).
/// The backend id names the model too, so replies of different models never mix.
pub fn cache_key(backend_id: &str, messages: &[ChatMessage], max_tokens: usize) -> String {
    let canonical = serde_json::json!({
        "backend": backend_id,
        "max_tokens": max_tokens,
        "messages": messages,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Wraps a backend; a hit returns the stored reply without calling it.
pub struct CachedBackend<B> {
    inner: B,
    dir: PathBuf,
}

impl<B: ChatBackend> CachedBackend<B> {
    pub fn new(inner: B, dir: impl Into<PathBuf>) -> Self {
        Self {
            inner,
            dir: dir.into(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The stored reply, if any. A corrupt or mismatching file is a miss (and is
    /// overwritten by the next store), never an error.
    pub fn lookup(&self, messages: &[ChatMessage], max_tokens: usize) -> Option<String> {
        let id = self.inner.id();
        let path = self.path(&cache_key(&id, messages, max_tokens));
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(e) if e.backend == id && e.max_tokens == max_tokens && e.messages == messages => {
                Some(e.reply)
            }
            Ok(_) => {
                tracing::warn!(
                    "cache entry {} does not match its key; ignoring it",
                    path.display()
                );
                None
            }
            Err(err) => {
                tracing::warn!(
                    "cache entry {} is unreadable ({err}); ignoring it",
                    path.display()
                );
                None
            }
        }
    }

    fn store(&self, messages: &[ChatMessage], max_tokens: usize, reply: &str) -> Result<()> {
        let backend = self.inner.id();
        let path = self.path(&cache_key(&backend, messages, max_tokens));
        let entry = Entry {
            backend,
            max_tokens,
            messages: messages.to_vec(),
            reply: reply.to_string(),
        };
        let json = serde_json::to_vec_pretty(&entry)?;
        hyper_core::io::atomic_write(&path, &json)
            .with_context(|| format!("writing cache entry {}", path.display()))?;
        Ok(())
    }
}

impl<B: ChatBackend> ChatBackend for CachedBackend<B> {
    fn chat(&self, messages: &[ChatMessage], max_tokens: usize) -> Result<String> {
        if let Some(reply) = self.lookup(messages, max_tokens) {
            tracing::debug!(backend = %self.inner.id(), "LLM cache hit");
            return Ok(reply);
        }
        let reply = self.inner.chat(messages, max_tokens)?;
        if let Err(e) = self.store(messages, max_tokens, &reply) {
            tracing::warn!("could not cache the LLM reply: {e:#}");
        }
        Ok(reply)
    }

    fn id(&self) -> String {
        self.inner.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Answers with a counter so a second real call would be visible.
    struct Counting {
        calls: Cell<usize>,
        model: &'static str,
    }

    impl ChatBackend for Counting {
        fn chat(&self, messages: &[ChatMessage], _max_tokens: usize) -> Result<String> {
            self.calls.set(self.calls.get() + 1);
            Ok(format!(
                "reply #{} to {}",
                self.calls.get(),
                messages.last().unwrap().content
            ))
        }
        fn id(&self) -> String {
            format!("fake:{}", self.model)
        }
    }

    #[test]
    fn hit_returns_identical_reply_without_calling() {
        let dir = tempfile::tempdir().unwrap();
        let b = CachedBackend::new(
            Counting {
                calls: Cell::new(0),
                model: "m1",
            },
            dir.path(),
        );
        let msgs = [ChatMessage::system("sys"), ChatMessage::user("hello")];
        let a = b.chat(&msgs, 32).unwrap();
        let again = b.chat(&msgs, 32).unwrap();
        assert_eq!(a, "reply #1 to hello");
        assert_eq!(again, a);
        assert_eq!(b.inner().calls.get(), 1);
        // Another prompt, token budget or model is a miss.
        b.chat(&[ChatMessage::user("other")], 32).unwrap();
        b.chat(&msgs, 64).unwrap();
        assert_eq!(b.inner().calls.get(), 3);
        let b2 = CachedBackend::new(
            Counting {
                calls: Cell::new(0),
                model: "m2",
            },
            dir.path(),
        );
        b2.chat(&msgs, 32).unwrap();
        assert_eq!(b2.inner().calls.get(), 1);
        // A fresh wrapper over the same dir (a new process) still hits.
        let b3 = CachedBackend::new(
            Counting {
                calls: Cell::new(0),
                model: "m1",
            },
            dir.path(),
        );
        assert_eq!(b3.chat(&msgs, 32).unwrap(), a);
        assert_eq!(b3.inner().calls.get(), 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn corrupt_entry_is_a_miss_and_gets_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let b = CachedBackend::new(
            Counting {
                calls: Cell::new(0),
                model: "m",
            },
            dir.path(),
        );
        let msgs = [ChatMessage::user("x")];
        let key = cache_key("fake:m", &msgs, 8);
        std::fs::write(dir.path().join(format!("{key}.json")), "{not json").unwrap();
        assert_eq!(b.chat(&msgs, 8).unwrap(), "reply #1 to x");
        assert_eq!(b.chat(&msgs, 8).unwrap(), "reply #1 to x");
        assert_eq!(b.inner().calls.get(), 1);
    }

    #[test]
    fn key_is_stable_and_sensitive() {
        let m = [ChatMessage::user("a")];
        assert_eq!(cache_key("x", &m, 1), cache_key("x", &m, 1));
        assert_eq!(cache_key("x", &m, 1).len(), 64);
        assert_ne!(cache_key("x", &m, 1), cache_key("y", &m, 1));
        assert_ne!(
            cache_key("x", &m, 1),
            cache_key("x", &[ChatMessage::assistant("a")], 1)
        );
    }
}
