//! The two pipeline stages as traits, the input they share, and the LLM-backed
//! implementation of both (any [`ChatBackend`]: OpenAI-compatible, local SmolLM2, cached).

use anyhow::{anyhow, bail, Result};
use datasets::tabular::{ColumnKind, Table};
use hyper_core::metadata::Metadata;

use crate::backend::{ChatBackend, ChatMessage};
use crate::json::{excerpt, parse_metadata};
use crate::profile::{fmt_num, DataProfile};
use crate::prompts::Prompts;

/// Data → one User Requirement sentence.
pub trait RequirementGenerator {
    fn requirement(&self, input: &TaskInput) -> Result<String>;
}

/// User Requirement (+ the data it came from) → validated [`Metadata`].
pub trait ModelGenerator {
    fn metadata(&self, requirement: &str, input: &TaskInput) -> Result<Metadata>;
}

/// What both stages see: the data's profile, the user's description, and a few rendered
/// example rows (for LLM prompts).
#[derive(Debug, Clone)]
pub struct TaskInput {
    pub profile: DataProfile,
    pub description: Option<String>,
    /// `[input] {...} [label] ...` lines, as in the paper's prompts.
    pub samples: Vec<String>,
}

/// Example rows shown to an LLM (a small model's context is short).
pub const DEFAULT_SAMPLE_ROWS: usize = 4;
/// Columns shown per example row; the rest are summarised as "+N more".
pub const MAX_SAMPLE_COLUMNS: usize = 10;

impl TaskInput {
    /// A description that is only whitespace is an error (it is almost always a scripting
    /// mistake); `None` or a real sentence is fine.
    pub fn new(profile: DataProfile, description: Option<&str>) -> Result<Self> {
        let description = match description {
            None => None,
            Some(d) if d.trim().is_empty() => {
                bail!(
                    "the description is empty or only whitespace; give a sentence or leave it out"
                )
            }
            Some(d) => Some(d.trim().to_string()),
        };
        Ok(Self {
            profile,
            description,
            samples: Vec::new(),
        })
    }

    /// Profile + example rows of a table.
    pub fn from_table(table: &Table, description: Option<&str>) -> Result<Self> {
        let profile = DataProfile::from_table(table)?;
        let mut input = Self::new(profile, description)?;
        input.samples = sample_rows(table, DEFAULT_SAMPLE_ROWS);
        Ok(input)
    }

    pub fn with_samples(mut self, samples: Vec<String>) -> Self {
        self.samples = samples;
        self
    }
}

/// Up to `max_rows` rows, taking classes in turn (first row of each class, then the
/// second, …) so every class shows up; deterministic.
pub fn sample_rows(table: &Table, max_rows: usize) -> Vec<String> {
    let k = table.n_classes();
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &l) in table.labels.iter().enumerate() {
        if let Some(v) = by_class.get_mut(l) {
            if v.len() < max_rows {
                v.push(i);
            }
        }
    }
    let mut picked = Vec::new();
    'outer: for depth in 0..max_rows {
        for rows in &by_class {
            if picked.len() == max_rows {
                break 'outer;
            }
            if let Some(&r) = rows.get(depth) {
                picked.push(r);
            }
        }
    }
    picked.sort_unstable();
    picked.iter().map(|&r| render_row(table, r)).collect()
}

fn render_row(t: &Table, r: usize) -> String {
    // Built by hand: a serde_json map would sort the keys, and column order matters.
    let mut cells: Vec<String> = Vec::new();
    for (j, c) in t.columns.iter().enumerate().take(MAX_SAMPLE_COLUMNS) {
        let v = t
            .features
            .get(r)
            .and_then(|row| row.get(j))
            .copied()
            .unwrap_or(f64::NAN);
        let cell = match (&c.kind, v.is_nan()) {
            (_, true) => json_str("?"),
            (ColumnKind::Categorical { levels }, false) => {
                json_str(levels.get(v as usize).map_or("?", String::as_str))
            }
            (ColumnKind::Numeric, false) => fmt_num(v),
        };
        cells.push(format!("{}:{cell}", json_str(&c.name)));
    }
    if t.columns.len() > MAX_SAMPLE_COLUMNS {
        let more = format!("+{} more columns", t.columns.len() - MAX_SAMPLE_COLUMNS);
        cells.push(format!("\"...\":{}", json_str(&more)));
    }
    let label = t
        .labels
        .get(r)
        .and_then(|&l| t.class_names.get(l))
        .map_or("?", String::as_str);
    format!("[input] {{{}}} [label] {label}", cells.join(","))
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Both stages through an LLM: the prompts from `prompts/`, tolerant JSON extraction,
/// strict validation (schema, then agreement with the data), and one repair round that
/// quotes the error; after that, an error naming the field.
pub struct LlmGenerator<B> {
    backend: B,
    prompts: Prompts,
    /// Token budget of the requirement sentence.
    pub requirement_tokens: usize,
    /// Token budget of the metadata JSON.
    pub metadata_tokens: usize,
    /// Reject metadata that contradicts the data (#classes, #features, task, scale).
    pub check_against_data: bool,
}

impl<B: ChatBackend> LlmGenerator<B> {
    /// With the prompts from `prompts/` (see [`Prompts::load`]).
    pub fn new(backend: B) -> Result<Self> {
        Ok(Self::with_prompts(backend, Prompts::load()?))
    }

    pub fn with_prompts(backend: B, prompts: Prompts) -> Self {
        Self {
            backend,
            prompts,
            requirement_tokens: 160,
            metadata_tokens: 96,
            check_against_data: true,
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The chat sent to produce the requirement: the prompt's turns, then the input.
    pub fn requirement_messages(&self, input: &TaskInput) -> Vec<ChatMessage> {
        let mut user = String::new();
        if let Some(d) = &input.description {
            user.push_str(&format!("User Description: {d}\n"));
        }
        user.push_str(&format!(
            "Facts computed from the data: {}",
            input.profile.facts()
        ));
        if !input.samples.is_empty() {
            user.push_str(&format!(
                "\nUser Data ({} of {} rows):\n{}",
                input.samples.len(),
                input.profile.n_rows,
                input.samples.join("\n")
            ));
        }
        let mut messages = self.prompts.requirement.clone();
        messages.push(ChatMessage::user(user));
        messages
    }

    /// The chat sent to produce the metadata: the prompt's turns, then the requirement.
    pub fn metadata_messages(&self, requirement: &str) -> Vec<ChatMessage> {
        let mut messages = self.prompts.model_generator.clone();
        messages.push(ChatMessage::user(requirement));
        messages
    }

    fn check(&self, reply: &str, input: &TaskInput) -> std::result::Result<Metadata, String> {
        let m = parse_metadata(reply)?;
        if self.check_against_data {
            input.profile.check_metadata(&m)?;
        }
        Ok(m)
    }
}

impl<B: ChatBackend> LlmGenerator<B> {
    /// A cleaned sentence that (when checking) states the data's numbers.
    fn check_sentence(
        &self,
        reply: &str,
        input: &TaskInput,
    ) -> std::result::Result<String, String> {
        let s = clean_sentence(reply).ok_or("the reply is empty")?;
        if self.check_against_data {
            input.profile.check_requirement(&s)?;
        }
        Ok(s)
    }
}

impl<B: ChatBackend> RequirementGenerator for LlmGenerator<B> {
    /// One repair round when the sentence is empty or misses the data's numbers, then an
    /// error saying what is missing.
    fn requirement(&self, input: &TaskInput) -> Result<String> {
        let mut messages = self.requirement_messages(input);
        let reply = self.backend.chat(&messages, self.requirement_tokens)?;
        tracing::debug!(backend = %self.backend.id(), %reply, "requirement reply");
        let first = match self.check_sentence(&reply, input) {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        tracing::warn!(backend = %self.backend.id(), error = %first, "unusable requirement; one repair round");
        messages.push(ChatMessage::assistant(reply));
        messages.push(ChatMessage::user(format!(
            "That answer is not usable: {first}. Answer with exactly ONE sentence as instructed."
        )));
        let reply = self.backend.chat(&messages, self.requirement_tokens)?;
        tracing::debug!(backend = %self.backend.id(), %reply, "requirement repair reply");
        self.check_sentence(&reply, input).map_err(|e| {
            anyhow!(
                "the requirement generator ({}) gave no usable requirement after one repair round: {e}; \
                 last reply: {:?}",
                self.backend.id(),
                excerpt(reply.trim(), 200)
            )
        })
    }
}

impl<B: ChatBackend> ModelGenerator for LlmGenerator<B> {
    fn metadata(&self, requirement: &str, input: &TaskInput) -> Result<Metadata> {
        let mut messages = self.metadata_messages(requirement);
        let reply = self.backend.chat(&messages, self.metadata_tokens)?;
        tracing::debug!(backend = %self.backend.id(), %reply, "metadata reply");
        let first = match self.check(&reply, input) {
            Ok(m) => return Ok(m),
            Err(e) => e,
        };
        tracing::warn!(backend = %self.backend.id(), error = %first, "invalid metadata; one repair round");
        messages.push(ChatMessage::assistant(reply));
        messages.push(ChatMessage::user(format!(
            "That answer is invalid: {first}. Reply with JUST the corrected JSON object."
        )));
        let reply = self.backend.chat(&messages, self.metadata_tokens)?;
        self.check(&reply, input).map_err(|e| {
            anyhow!(
                "the model generator ({}) gave invalid metadata after one repair round: {e} \
                 (first answer: {first}); last reply: {:?}",
                self.backend.id(),
                excerpt(reply.trim(), 200)
            )
        })
    }
}

/// First non-empty line of a reply, without fences, quotes or an `Output:`-style prefix.
pub fn clean_sentence(reply: &str) -> Option<String> {
    let line = reply
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("```"))?;
    let mut s = line;
    for prefix in [
        "Output:",
        "User Requirement:",
        "Requirement:",
        "Answer:",
        "Sentence:",
    ] {
        if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
            s = s[prefix.len()..].trim_start();
        }
    }
    let s = s
        .trim_matches(|c| c == '"' || c == '\'' || c == '`' || c == '*')
        .trim();
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_description_is_an_error() {
        let t = crate::profile::tests::tiny();
        let e = TaskInput::from_table(&t, Some("  \n\t")).unwrap_err();
        assert!(e.to_string().contains("only whitespace"), "{e}");
        let ok = TaskInput::from_table(&t, Some("  flowers ")).unwrap();
        assert_eq!(ok.description.as_deref(), Some("flowers"));
    }

    #[test]
    fn samples_cover_every_class() {
        let t = crate::profile::tests::tiny();
        let s = sample_rows(&t, 3);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            r#"[input] {"SepalLengthCm":5.1,"sepal_width":3.5,"petal length":1.4,"w":0.2} [label] a"#
        );
        assert!(
            s[1].ends_with("[label] b") && s[2].ends_with("[label] c"),
            "{s:?}"
        );
        let all = sample_rows(&t, 10);
        assert_eq!(all.len(), 6);
        assert!(all[5].contains(r#""sepal_width":"?""#), "{}", all[5]);
    }

    #[test]
    fn sentence_cleanup() {
        assert_eq!(clean_sentence("  \n").as_deref(), None);
        assert_eq!(
            clean_sentence("Output: \"This is a task of 3-class.\"\nAnalysis: blah").as_deref(),
            Some("This is a task of 3-class.")
        );
        assert_eq!(
            clean_sentence("```\nA sentence.\n```").as_deref(),
            Some("A sentence.")
        );
    }
}
