//! Tolerant extraction of a JSON object from an LLM reply (prose, ```json fences) and
//! strict validation of the Model Generator's `Metadata` with field-level errors.
//!
//! Tolerant on the *wrapping* (LLMs love to explain themselves), strict on the *content*:
//! a wrong type or an out-of-enum value is an error naming the field, never a guess.

use hyper_core::metadata::Metadata;
use serde_json::{Map, Value};

/// Why no JSON object could be taken from a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the reply is empty")]
    Empty,
    #[error("no JSON object found in the reply (expected `{{...}}`); reply starts with: {0:?}")]
    NoObject(String),
    #[error("the JSON object in the reply does not parse: {error}; candidate: {candidate:?}")]
    Invalid { error: String, candidate: String },
}

/// Returns the first JSON object in `reply`: the content of a ```json (or bare ```) fence
/// if one parses, else the first balanced `{...}` (string-aware) that parses.
pub fn extract_json(reply: &str) -> Result<Map<String, Value>, ExtractError> {
    let text = reply.trim();
    if text.is_empty() {
        return Err(ExtractError::Empty);
    }
    let mut first_invalid: Option<ExtractError> = None;
    for block in fenced_blocks(text) {
        match parse_object(block.trim()) {
            Ok(m) => return Ok(m),
            Err(e) => {
                first_invalid.get_or_insert(e);
            }
        }
    }
    for candidate in balanced_objects(text) {
        match parse_object(candidate) {
            Ok(m) => return Ok(m),
            Err(e) => {
                first_invalid.get_or_insert(e);
            }
        }
    }
    Err(first_invalid.unwrap_or_else(|| ExtractError::NoObject(excerpt(text, 80))))
}

fn parse_object(s: &str) -> Result<Map<String, Value>, ExtractError> {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ExtractError::Invalid {
            error: format!("expected a JSON object, got {}", type_name(&other)),
            candidate: excerpt(s, 120),
        }),
        Err(e) => Err(ExtractError::Invalid {
            error: e.to_string(),
            candidate: excerpt(s, 120),
        }),
    }
}

/// Bodies of Markdown code fences, in order (the info string such as `json` is skipped).
fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(after.len(), |i| i + 1);
        let body = &after[body_start..];
        match body.find("```") {
            Some(end) => {
                out.push(&body[..end]);
                rest = &body[end + 3..];
            }
            None => {
                out.push(body);
                break;
            }
        }
    }
    out
}

/// Every balanced `{...}` span, scanning from each `{` in turn; braces inside JSON strings
/// are ignored.
fn balanced_objects(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for (start, _) in text.match_indices('{') {
        let mut depth = 0usize;
        let mut in_str = false;
        let mut escaped = false;
        for (i, &b) in bytes.iter().enumerate().skip(start) {
            if in_str {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(&text[start..=i]);
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Strictly converts an extracted object to a valid [`Metadata`]. Errors name the field:
/// missing, wrong JSON type, non-positive or fractional dimension, value outside the enum
/// (with the allowed values), `in_dim` missing for `tabular_cls`. Unknown keys are ignored.
pub fn metadata_from_object(obj: &Map<String, Value>) -> Result<Metadata, String> {
    let string = |key: &str| -> Result<String, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Err(format!("missing field `{key}` (a string)")),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(format!(
                "field `{key}` must be a string, got {} `{v}`",
                type_name(v)
            )),
        }
    };
    let dim = |key: &str| -> Result<Option<usize>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) => Err(format!("field `{key}` must be a positive integer, got 0")),
                Some(u) => usize::try_from(u)
                    .map(Some)
                    .map_err(|_| format!("field `{key}` is too large: {u}")),
                None => Err(format!("field `{key}` must be a positive integer, got {n}")),
            },
            Some(v) => Err(format!(
                "field `{key}` must be a positive integer, got {} `{v}`",
                type_name(v)
            )),
        }
    };
    let task = string("task")?;
    let out_dim = dim("out_dim")?.ok_or("missing field `out_dim` (a positive integer)")?;
    let in_dim = dim("in_dim")?;
    let scale = string("scale")?;
    let arch = string("arch")?;
    let meta = Metadata {
        task,
        in_dim,
        out_dim,
        scale,
        arch,
    };
    meta.validate()?;
    Ok(meta)
}

/// [`extract_json`] then [`metadata_from_object`], with one error string for both.
pub fn parse_metadata(reply: &str) -> Result<Metadata, String> {
    let obj = extract_json(reply).map_err(|e| e.to_string())?;
    metadata_from_object(&obj)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// First `n` characters of `s` (on a char boundary), with `…` when cut.
pub(crate) fn excerpt(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().nth(n).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const IRIS: &str =
        r#"{"task":"tabular_cls","in_dim":4,"out_dim":3,"scale":"small","arch":"mlp_small"}"#;

    fn iris() -> Metadata {
        test_support::tabular_meta(4, 3)
    }

    #[test]
    fn extracts_plain_fenced_and_prose() {
        assert_eq!(parse_metadata(IRIS).unwrap(), iris());
        let fenced = format!("Sure! Here it is:\n```json\n{IRIS}\n```\nHope this helps.");
        assert_eq!(parse_metadata(&fenced).unwrap(), iris());
        let prose = format!("The metadata is {IRIS} based on the requirement {{not json}}.");
        assert_eq!(parse_metadata(&prose).unwrap(), iris());
        // A brace inside a string must not end the object early.
        let tricky = r#"x {"task":"seq_cls","note":"a } b","out_dim":2,"scale":"large","arch":"bert-base-uncased"} y"#;
        let m = parse_metadata(tricky).unwrap();
        assert_eq!((m.task.as_str(), m.out_dim, m.in_dim), ("seq_cls", 2, None));
        // An unterminated fence still yields its body.
        let open = format!("```json\n{IRIS}");
        assert_eq!(parse_metadata(&open).unwrap(), iris());
        // A broken first object, a good second one.
        let two = format!("{{\"task\": }} then {IRIS}");
        assert_eq!(parse_metadata(&two).unwrap(), iris());
    }

    #[test]
    fn extraction_errors() {
        assert_eq!(extract_json("  \n ").unwrap_err(), ExtractError::Empty);
        assert!(matches!(
            extract_json("I cannot help with that.").unwrap_err(),
            ExtractError::NoObject(_)
        ));
        let e = extract_json("{\"task\": \"tabular_cls\",").unwrap_err();
        assert!(matches!(e, ExtractError::NoObject(_)), "{e:?}");
        let e = extract_json("```json\n[1, 2]\n```").unwrap_err();
        assert!(
            e.to_string()
                .contains("expected a JSON object, got an array"),
            "{e}"
        );
    }

    #[test]
    fn field_level_errors() {
        let cases = [
            (
                r#"{"task":3,"in_dim":4,"out_dim":3,"scale":"small","arch":"mlp_small"}"#,
                "field `task` must be a string",
            ),
            (
                r#"{"task":"tabular_cls","in_dim":4,"out_dim":"3","scale":"small","arch":"mlp_small"}"#,
                "field `out_dim` must be a positive integer, got a string",
            ),
            (
                r#"{"task":"tabular_cls","in_dim":4,"out_dim":-3,"scale":"small","arch":"mlp_small"}"#,
                "field `out_dim` must be a positive integer, got -3",
            ),
            (
                r#"{"task":"tabular_cls","in_dim":4.5,"out_dim":3,"scale":"small","arch":"mlp_small"}"#,
                "field `in_dim` must be a positive integer, got 4.5",
            ),
            (
                r#"{"task":"tabular_cls","in_dim":0,"out_dim":3,"scale":"small","arch":"mlp_small"}"#,
                "field `in_dim` must be a positive integer, got 0",
            ),
            (
                r#"{"task":"tabular_cls","out_dim":3,"scale":"small","arch":"mlp_small"}"#,
                "`in_dim` is required when task is tabular_cls",
            ),
            (
                r#"{"task":"tabular_cls","in_dim":4,"scale":"small","arch":"mlp_small"}"#,
                "missing field `out_dim`",
            ),
            (
                r#"{"task":"tabular_regression","in_dim":4,"out_dim":3,"scale":"small","arch":"mlp_small"}"#,
                "field `task` has value `tabular_regression`; allowed: tabular_cls, tabular_reg, seq_cls",
            ),
            (
                r#"{"task":"tabular_cls","in_dim":4,"out_dim":3,"scale":"base","arch":"mlp_small"}"#,
                "field `scale` has value `base`; allowed: small, medium, large",
            ),
            (
                r#"{"task":"tabular_cls","in_dim":4,"out_dim":3,"scale":"small","arch":"gpt-4"}"#,
                "field `arch` has value `gpt-4`",
            ),
            (
                r#"{"task":"tabular_cls","in_dim":4,"out_dim":3,"scale":"small"}"#,
                "missing field `arch`",
            ),
        ];
        for (reply, want) in cases {
            let e = parse_metadata(reply).unwrap_err();
            assert!(e.contains(want), "reply {reply}: got `{e}`, want `{want}`");
        }
    }

    #[test]
    fn optional_in_dim_and_extra_keys() {
        let m = parse_metadata(
            r#"{"task":"img_cls","out_dim":31,"in_dim":null,"scale":"medium","arch":"resnet50","why":"photos"}"#,
        )
        .unwrap();
        assert_eq!(m.in_dim, None);
        assert_eq!(m.out_dim, 31);
    }
}
