//! A checker for the JSON Schema subset our `docs/json/*.schema.json` use (`type`,
//! `required`, `properties`, `items`, `additionalProperties`, `enum`), so tests hold the
//! CLI's `--json` output to its documented shape.

use serde_json::Value;

fn type_ok(want: &str, v: &Value) -> bool {
    match want {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

/// Every violation of `schema` by `value`, each with its JSON path; empty when it conforms.
pub fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, value, "$", &mut out);
    out
}

fn check(schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| type_ok(t, v)) {
            out.push(format!("{path}: {v} is not of type {types:?}"));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(v) {
            out.push(format!("{path}: {v} is not one of {allowed:?}"));
        }
    }
    if let (Some(obj), Some(Value::Array(req))) = (v.as_object(), schema.get("required")) {
        for r in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                out.push(format!("{path}: missing required key `{r}`"));
            }
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, item) in obj {
            let sub = format!("{path}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(s, item, &sub, out),
                None => match schema.get("additionalProperties") {
                    Some(s @ Value::Object(_)) => check(s, item, &sub, out),
                    Some(Value::Bool(false)) => out.push(format!("{sub}: key not in the schema")),
                    _ if props.is_some() => out.push(format!("{sub}: key not in the schema")),
                    _ => {}
                },
            }
        }
    }
    if let (Some(arr), Some(items)) = (v.as_array(), schema.get("items")) {
        for (i, item) in arr.iter().enumerate() {
            check(items, item, &format!("{path}[{i}]"), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_missing_keys_wrong_types_and_unknown_keys() {
        let s = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "integer"}, "b": {"type": ["string", "null"], "enum": ["x", null]},
            "c": {"type": "array", "items": {"type": "number"}}}});
        assert!(violations(&s, &json!({"a": 1, "b": null, "c": [1.5]})).is_empty());
        let v = violations(&s, &json!({"b": "y", "c": [1, "z"], "d": 0}));
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(v.iter().any(|e| e.contains("missing required key `a`")));
        assert!(v.iter().any(|e| e.contains("$.c[1]")));
        assert!(v.iter().any(|e| e.contains("$.d: key not in the schema")));
    }
}
