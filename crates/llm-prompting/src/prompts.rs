//! The two prompts (system text + few-shot turns), read at run time from the workspace
//! `prompts/` directory (editable without rebuilding) with a compiled-in copy as the
//! fallback (so the binary works anywhere).
//!
//! File format: an optional leading `<!-- ... -->` comment (not sent), then messages, each
//! starting with a line `[system]`, `[user]` or `[assistant]`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hyper_core::metadata::{ARCHS, SCALES, TASKS};

use crate::backend::ChatMessage;

pub const REQUIREMENT_FILE: &str = "requirement.md";
pub const MODEL_GENERATOR_FILE: &str = "model_generator.md";

const REQUIREMENT_EMBEDDED: &str = include_str!("../../../prompts/requirement.md");
const MODEL_GENERATOR_EMBEDDED: &str = include_str!("../../../prompts/model_generator.md");

/// Parsed prompts: the messages that precede the user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompts {
    pub requirement: Vec<ChatMessage>,
    pub model_generator: Vec<ChatMessage>,
}

impl Prompts {
    /// From `$HYPER_PROMPTS_DIR`, else `<workspace>/prompts`; a file missing there falls
    /// back to the compiled-in copy, a file present but malformed is an error.
    pub fn load() -> Result<Self> {
        let dir = default_dir();
        let read = |file: &str, embedded: &str| -> Result<Vec<ChatMessage>> {
            let path = dir.join(file);
            match std::fs::read_to_string(&path) {
                Ok(s) => parse(&s, &path.display().to_string()),
                Err(e) => {
                    tracing::debug!(
                        "prompt {} not readable ({e}); using the built-in copy",
                        path.display()
                    );
                    parse(embedded, file)
                }
            }
        };
        Ok(Self {
            requirement: read(REQUIREMENT_FILE, REQUIREMENT_EMBEDDED)?,
            model_generator: read(MODEL_GENERATOR_FILE, MODEL_GENERATOR_EMBEDDED)?,
        })
    }

    /// Both files from `dir`; errors name the file (and line).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let read = |file: &str| -> Result<Vec<ChatMessage>> {
            let p = dir.join(file);
            let s = std::fs::read_to_string(&p)
                .with_context(|| format!("reading prompt {}", p.display()))?;
            parse(&s, &p.display().to_string())
        };
        Ok(Self {
            requirement: read(REQUIREMENT_FILE)?,
            model_generator: read(MODEL_GENERATOR_FILE)?,
        })
    }

    /// The compiled-in copies.
    pub fn embedded() -> Self {
        Self {
            requirement: parse(REQUIREMENT_EMBEDDED, REQUIREMENT_FILE)
                .expect("built-in requirement prompt parses"),
            model_generator: parse(MODEL_GENERATOR_EMBEDDED, MODEL_GENERATOR_FILE)
                .expect("built-in model-generator prompt parses"),
        }
    }
}

/// `$HYPER_PROMPTS_DIR` or `<workspace>/prompts`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("HYPER_PROMPTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| datasets::paths::workspace_root().join("prompts"))
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a prompt file (see the module docs) and fills `{TASKS}`, `{ARCHS}`, `{SCALES}`.
pub fn parse(text: &str, origin: &str) -> Result<Vec<ChatMessage>> {
    let mut body = text.trim_start();
    let mut line0 = 1 + text[..text.len() - body.len()].matches('\n').count();
    if body.starts_with("<!--") {
        let Some(end) = body.find("-->") else {
            bail!("prompt {origin}: the leading `<!--` comment is never closed");
        };
        line0 += body[..end].matches('\n').count();
        body = &body[end + 3..];
    }
    let mut messages: Vec<ChatMessage> = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let role = match line.trim() {
            "[system]" => Some("system"),
            "[user]" => Some("user"),
            "[assistant]" => Some("assistant"),
            _ => None,
        };
        match (role, messages.last_mut()) {
            (Some(r), _) => {
                if r == "system" && !messages.is_empty() {
                    bail!("prompt {origin} line {}: `[system]` must come first", line0 + i);
                }
                messages.push(ChatMessage::new(r, String::new()));
            }
            (None, Some(m)) => {
                m.content.push_str(line);
                m.content.push('\n');
            }
            (None, None) if line.trim().is_empty() => {}
            (None, None) => bail!(
                "prompt {origin} line {}: text before the first `[system]`/`[user]`/`[assistant]` line",
                line0 + i
            ),
        }
    }
    for m in &mut messages {
        m.content = m
            .content
            .trim()
            .replace("{TASKS}", &quoted(TASKS))
            .replace("{ARCHS}", &quoted(ARCHS))
            .replace("{SCALES}", &quoted(SCALES));
        if m.content.is_empty() {
            bail!("prompt {origin}: an empty `[{}]` message", m.role);
        }
    }
    match messages.last() {
        None => bail!("prompt {origin} has no messages"),
        Some(m) if m.role == "user" => bail!(
            "prompt {origin} ends with a `[user]` message; the user's input is appended after the prompt"
        ),
        _ => Ok(messages),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_have_the_enums_examples_and_no_placeholders() {
        let p = Prompts::embedded();
        let sys = &p.model_generator[0];
        assert_eq!(sys.role, "system");
        for v in TASKS.iter().chain(ARCHS).chain(SCALES) {
            assert!(sys.content.contains(&format!("\"{v}\"")), "missing {v}");
        }
        for m in p.model_generator.iter().chain(&p.requirement) {
            for ph in ["{TASKS}", "{ARCHS}", "{SCALES}", "<!--", "[user]"] {
                assert!(!m.content.contains(ph), "left {ph} in {m:?}");
            }
        }
        // Two chain-of-thought examples, as user/assistant pairs after the system text.
        let roles: Vec<&str> = p.requirement.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user", "assistant"]);
        assert_eq!(
            p.requirement[0]
                .content
                .matches("Analysis of example")
                .count(),
            2
        );
        // Every model-generator example answer is itself valid metadata.
        let answers: Vec<_> = p
            .model_generator
            .iter()
            .filter(|m| m.role == "assistant")
            .collect();
        assert_eq!(answers.len(), 4);
        for a in answers {
            crate::json::parse_metadata(&a.content).unwrap();
        }
    }

    #[test]
    fn workspace_files_match_the_embedded_copy() {
        let dir = datasets::paths::workspace_root().join("prompts");
        assert_eq!(Prompts::from_dir(&dir).unwrap(), Prompts::embedded());
        let e = Prompts::from_dir(Path::new("/nonexistent")).unwrap_err();
        assert!(format!("{e:#}").contains("requirement.md"), "{e:#}");
    }

    #[test]
    fn malformed_prompts_are_errors_with_lines() {
        let e = parse("<!-- note -->\nhello\n[system]\nx\n", "p.md")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.md line 2"), "{e}");
        let e = parse("[system]\nx\n[user]\n\n[assistant]\ny\n", "p.md")
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty `[user]`"), "{e}");
        let e = parse("[system]\nx\n[user]\nq\n", "p.md")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends with a `[user]`"), "{e}");
        let e = parse("<!-- open", "p.md").unwrap_err().to_string();
        assert!(e.contains("never closed"), "{e}");
        let m = parse("[system]\nA {SCALES}\n", "p.md").unwrap();
        assert_eq!(
            m,
            vec![ChatMessage::system("A \"small\", \"medium\", \"large\"")]
        );
    }
}
