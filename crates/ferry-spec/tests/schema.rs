//! The checked-in JSON schema matches the types, and specs round-trip through it.
//! Regenerate with `FERRY_UPDATE_SCHEMA=1 cargo nextest run -p ferry-spec schema`.

use ferry_spec::{SourceFile, json_schema, parse};

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ferry.schema.json");

#[test]
fn checked_in_schema_matches_the_types() {
    let generated = format!(
        "{}\n",
        serde_json::to_string_pretty(&json_schema()).expect("schema serializes")
    );
    if std::env::var_os("FERRY_UPDATE_SCHEMA").is_some() {
        std::fs::write(SCHEMA_PATH, &generated).expect("write docs/ferry.schema.json");
        return;
    }
    let checked_in = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/ferry.schema.json is out of date with the spec types; regenerate it with \
         FERRY_UPDATE_SCHEMA=1 cargo nextest run -p ferry-spec checked_in_schema"
    );
}

#[test]
fn schema_describes_every_top_level_key_and_overlays() {
    let schema = json_schema();
    let props = schema["properties"].as_object().expect("properties");
    for key in [
        "app",
        "build",
        "image",
        "web",
        "workers",
        "env",
        "secrets",
        "strategy",
        "analysis",
        "accessories",
        "hooks",
        "notify",
        "security",
        "autoscale",
        "check",
        "environments",
    ] {
        assert!(props.contains_key(key), "schema lacks `{key}`");
    }
    assert_eq!(schema["required"], serde_json::json!(["app"]));
    let overlay = &schema["properties"]["environments"]["additionalProperties"];
    assert_eq!(overlay["properties"]["production"]["type"], "boolean");
    assert!(overlay["properties"]["web"].is_object());
    assert!(overlay.get("required").is_none());
}

#[test]
fn a_resolved_spec_round_trips_through_json_and_toml() {
    let text = include_str!("../../../examples/hello/ferry.toml");
    let doc = parse(&SourceFile::new("ferry.toml", text)).expect("valid");
    for env in [None, Some("staging"), Some("production")] {
        let spec = doc.resolve(env).expect("resolves");
        // JSON (the `config show --output json` form) deserializes back to the same spec.
        let json = serde_json::to_value(&spec).expect("to json");
        let back: ferry_spec::Spec = serde_json::from_value(json).expect("from json");
        assert_eq!(back, spec);
        // TOML written from the spec is a valid ferry.toml meaning the same thing.
        let toml_text = toml::to_string(&spec).expect("to toml");
        let reparsed = parse(&SourceFile::new("shown.toml", toml_text.as_str()))
            .unwrap_or_else(|d| panic!("{toml_text}\n{:#?}", d.to_records()));
        assert_eq!(reparsed.resolve(None).expect("resolves"), spec);
    }
}
