//! Requirement Generator and Model Generator (DESIGN.md §6): turn data (+ an optional
//! description) into one User Requirement sentence and a validated `Metadata` JSON.
//!
//! Backends: [`ProfileBackend`] (offline, deterministic, default), [`LlmGenerator`] over any
//! [`ChatBackend`] ([`openai::OpenAiBackend`], `local::LocalLlm`), optionally wrapped in
//! [`cache::CachedBackend`].

pub mod backend;
pub mod cache;
pub mod config;
pub mod generator;
pub mod json;
pub mod local;
pub mod openai;
pub mod profile;
pub mod prompts;

pub use backend::{ChatBackend, ChatMessage};
pub use cache::CachedBackend;
pub use config::LlmConfig;
pub use generator::{LlmGenerator, ModelGenerator, RequirementGenerator, TaskInput};
pub use openai::{OpenAiBackend, OpenAiConfig};
pub use profile::{requirements, DataProfile, ImageSummary, ProfileBackend, TextSummary};
pub use prompts::Prompts;
