//! The two system prompts, read at run time from the workspace `prompts/` directory (so
//! they can be edited without rebuilding) with a compiled-in copy as the fallback (so the
//! binary works anywhere).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hyper_core::metadata::{ARCHS, SCALES, TASKS};

pub const REQUIREMENT_FILE: &str = "requirement.md";
pub const MODEL_GENERATOR_FILE: &str = "model_generator.md";

const REQUIREMENT_EMBEDDED: &str = include_str!("../../../prompts/requirement.md");
const MODEL_GENERATOR_EMBEDDED: &str = include_str!("../../../prompts/model_generator.md");

/// Rendered system prompts (leading `<!-- -->` comment stripped, enums filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompts {
    pub requirement: String,
    pub model_generator: String,
}

impl Prompts {
    /// `$HYPER_PROMPTS_DIR`, else `<workspace>/prompts`; each file missing there falls back
    /// to the compiled-in copy.
    pub fn load() -> Self {
        let dir = default_dir();
        let read = |file: &str, embedded: &str| match std::fs::read_to_string(dir.join(file)) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("prompt {} not readable ({e}); using the built-in copy", dir.join(file).display());
                embedded.to_string()
            }
        };
        Self::render(
            &read(REQUIREMENT_FILE, REQUIREMENT_EMBEDDED),
            &read(MODEL_GENERATOR_FILE, MODEL_GENERATOR_EMBEDDED),
        )
    }

    /// Both files from `dir`; an error names the file that cannot be read.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let read = |file: &str| {
            let p = dir.join(file);
            std::fs::read_to_string(&p).with_context(|| format!("reading prompt {}", p.display()))
        };
        Ok(Self::render(&read(REQUIREMENT_FILE)?, &read(MODEL_GENERATOR_FILE)?))
    }

    /// The compiled-in copies.
    pub fn embedded() -> Self {
        Self::render(REQUIREMENT_EMBEDDED, MODEL_GENERATOR_EMBEDDED)
    }

    fn render(requirement: &str, model_generator: &str) -> Self {
        let model_generator = strip_comment(model_generator)
            .replace("{TASKS}", &quoted(TASKS))
            .replace("{ARCHS}", &quoted(ARCHS))
            .replace("{SCALES}", &quoted(SCALES));
        Self {
            requirement: strip_comment(requirement),
            model_generator,
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
    values.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ")
}

/// Drops a leading `<!-- ... -->` block (notes for maintainers, not for the model).
fn strip_comment(s: &str) -> String {
    let t = s.trim_start();
    match (t.starts_with("<!--"), t.find("-->")) {
        (true, Some(end)) => t[end + 3..].trim().to_string(),
        _ => s.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_have_the_enums_and_no_placeholders() {
        let p = Prompts::embedded();
        for v in TASKS.iter().chain(ARCHS).chain(SCALES) {
            assert!(p.model_generator.contains(&format!("\"{v}\"")), "missing {v}");
        }
        for ph in ["{TASKS}", "{ARCHS}", "{SCALES}"] {
            assert!(!p.model_generator.contains(ph), "unfilled {ph}");
        }
        assert!(!p.requirement.starts_with("<!--") && !p.model_generator.starts_with("<!--"));
        assert_eq!(p.requirement.matches("Example No.").count(), 2);
        assert!(p.requirement.contains("Analysis:"));
    }

    #[test]
    fn workspace_files_match_the_embedded_copy() {
        let dir = datasets::paths::workspace_root().join("prompts");
        assert_eq!(Prompts::from_dir(&dir).unwrap(), Prompts::embedded());
        let e = Prompts::from_dir(Path::new("/nonexistent")).unwrap_err();
        assert!(format!("{e:#}").contains("requirement.md"), "{e:#}");
    }
}
