//! The JSON schema of ferry.toml, generated from the spec types (for editors and for
//! `docs/ferry.schema.json`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde_json::Value;

use crate::spec::Spec;

/// ferry.toml as written: the base spec plus its environment overlays.
#[derive(JsonSchema)]
#[expect(dead_code, reason = "only its schema is used")]
struct SpecFile {
    #[serde(flatten)]
    base: Spec,
    /// Overrides per environment, merged over the base (tables merge, arrays and values
    /// replace). An environment named `production`, or with `production = true`, gets
    /// the production policy.
    #[serde(default)]
    environments: BTreeMap<String, Value>,
}

/// The JSON schema (draft 2020-12) of ferry.toml.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(SpecFile).to_value();
    // TOML has no null: an absent key is how a value is left out.
    drop_null(&mut schema);
    // An overlay may set any top-level key of the base (none is required there) and
    // `production`. Nested tables keep their own schema.
    let mut overlay = serde_json::json!({
        "type": "object",
        "description": "Keys overriding the base spec in this environment.",
        "additionalProperties": false,
        "properties": {
            "production": {
                "type": "boolean",
                "description": "Apply the production policy to this environment.",
                "default": false
            }
        }
    });
    if let (Some(base_props), Some(props)) = (
        schema.get("properties").and_then(Value::as_object).cloned(),
        overlay.get_mut("properties").and_then(Value::as_object_mut),
    ) {
        for (key, value) in base_props {
            if key != "environments" {
                props.insert(key, value);
            }
        }
    }
    if let Some(envs) = schema.pointer_mut("/properties/environments") {
        *envs = serde_json::json!({
            "type": "object",
            "description": "Overrides per environment, merged over the base (tables merge, arrays and values replace).",
            "additionalProperties": overlay
        });
    }
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), Value::String("ferry.toml".into()));
        // Flattening loses the base's strictness; unknown keys are errors in ferry.toml.
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    schema
}

/// Removes `null` from every `type` list and `anyOf`, recursively.
fn drop_null(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if let Some(Value::Array(types)) = obj.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    obj.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(any_of)) = obj.get_mut("anyOf") {
                any_of.retain(|s| s.get("type").is_none_or(|t| t != "null"));
                if any_of.len() == 1 {
                    let only = any_of.remove(0);
                    obj.remove("anyOf");
                    if let Value::Object(inner) = only {
                        for (k, v) in inner {
                            obj.entry(k).or_insert(v);
                        }
                    }
                }
            }
            if obj.get("default").is_some_and(Value::is_null) {
                obj.remove("default");
            }
            obj.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}
