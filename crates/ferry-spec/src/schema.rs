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
    let mut partial_defs = Vec::new();
    if let (Some(base_props), Some(props)) = (
        schema.get("properties").and_then(Value::as_object).cloned(),
        overlay.get_mut("properties").and_then(Value::as_object_mut),
    ) {
        for (key, mut value) in base_props {
            if key != "environments" {
                partial_ref(&schema, &mut value, &mut partial_defs);
                props.insert(key, value);
            }
        }
    }
    // Tables in an overlay merge over the base, so their required keys may come from the
    // base: overlays use "Partial" copies of the table definitions without `required`.
    // Array items replace whole and keep the full definitions.
    let mut done = Vec::new();
    while let Some(name) = partial_defs.pop() {
        if done.contains(&name) {
            continue;
        }
        let Some(mut def) = schema.pointer(&format!("/$defs/{name}")).cloned() else {
            continue;
        };
        partialize(&schema, &mut def, &mut partial_defs);
        if let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) {
            defs.insert(format!("Partial{name}"), def);
        }
        done.push(name);
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
    sorted(schema)
}

/// Sorts object keys recursively, so that the output is the same whether or not another
/// crate in the build turns on serde_json's `preserve_order`.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(obj) => {
            let mut entries: Vec<(String, Value)> = obj.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
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

/// Whether `$defs/name` describes a table (a struct with properties).
fn is_table_def(schema: &Value, name: &str) -> bool {
    schema
        .pointer(&format!("/$defs/{name}/properties"))
        .is_some()
}

/// Points a property's schema at the partial version of its table definition, if any.
fn partial_ref(schema: &Value, value: &mut Value, needed: &mut Vec<String>) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    if let Some(Value::String(reference)) = obj.get_mut("$ref") {
        if let Some(name) = reference.strip_prefix("#/$defs/")
            && is_table_def(schema, name)
        {
            needed.push(name.to_owned());
            *reference = format!("#/$defs/Partial{name}");
        }
    } else if obj.contains_key("properties") {
        partialize(schema, value, needed);
    } else if let Some(Value::Object(_)) = obj.get("additionalProperties") {
        // A map of tables (workers, analysis...): each value merges too.
        if let Some(inner) = obj.get_mut("additionalProperties") {
            partial_ref(schema, inner, needed);
        }
    } else if let Some(Value::Object(patterns)) = obj.get_mut("patternProperties") {
        for inner in patterns.values_mut() {
            partial_ref(schema, inner, needed);
        }
    }
}

/// Drops `required` from a table schema and makes its table-valued properties partial.
fn partialize(schema: &Value, table: &mut Value, needed: &mut Vec<String>) {
    let Some(obj) = table.as_object_mut() else {
        return;
    };
    obj.remove("required");
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for value in props.values_mut() {
            partial_ref(schema, value, needed);
        }
    }
}
