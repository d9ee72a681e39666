//! Requirement Generator and Model Generator (DESIGN.md §6): turn data (+ an optional
//! description) into one User Requirement sentence and a validated `Metadata` JSON.

pub mod backend;
pub mod local;

pub use backend::{ChatBackend, ChatMessage};
