//! Deterministic YAML: any serialisable value, through `serde_json::Value`, emitted with
//! sorted keys (Kubernetes' `apiVersion`, `kind`, `metadata` and a few headline keys first)
//! so the same input always gives the same bytes.
//!
//! A small emitter of our own: strings are plain only when every YAML 1.1 and 1.2 parser
//! reads them back unchanged, `|` blocks only when exact, double-quoted otherwise (a
//! property test round-trips arbitrary values).

use serde::Serialize;
use serde_json::Value;

use crate::Error;

/// Keys written before the alphabetically sorted rest, in this order, at every level.
const FIRST_KEYS: [&str; 7] = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "on",
    "stages",
    "image",
];

/// Serialises `value` to a JSON tree (the form every renderer builds on).
pub(crate) fn to_value(what: &str, value: &impl Serialize) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|source| Error::Serialize {
        what: what.to_owned(),
        source,
    })
}

fn key_rank(key: &str) -> usize {
    FIRST_KEYS
        .iter()
        .position(|k| *k == key)
        .unwrap_or(FIRST_KEYS.len())
}

fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| key_rank(a.0).cmp(&key_rank(b.0)).then_with(|| a.0.cmp(b.0)));
    entries
}

/// Words YAML 1.1 or 1.2 parsers read as booleans, nulls or special floats.
const SPECIAL_WORDS: [&str; 16] = [
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf",
    ".nan", "=", "<<",
];

/// Whether `s` can be written unquoted and read back as the same string by any YAML 1.1
/// or 1.2 parser (kubectl's, Python's, Prometheus', GitHub's).
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.len() > 120
        || !(first.is_ascii_alphanumeric() || first == '/' || first == '_')
        || s.ends_with([' ', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || SPECIAL_WORDS.contains(&s.to_ascii_lowercase().as_str())
        || !s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, ' ' | '_' | '.' | '/' | ':' | '@' | '+' | '=' | '-')
        })
    {
        return false;
    }
    if first.is_ascii_digit() {
        // Numbers in any YAML dialect: 12, 1_000, 1e3, 0x1f, 0o17, 0b101, 1:20 (base 60).
        let lower = s.to_ascii_lowercase();
        let numeric = s.parse::<f64>().is_ok()
            || lower.starts_with("0x")
            || lower.starts_with("0o")
            || lower.starts_with("0b")
            || s.contains(':')
            || s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '_' | '.' | '-' | '+' | 'e' | 'E'));
        if numeric {
            return false;
        }
    }
    true
}

/// A double-quoted scalar; every character YAML does not allow raw is escaped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20
                || (0x7f..=0x9f).contains(&(c as u32))
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a multi-line string can be a `|` literal block and read back unchanged.
fn is_block_safe(s: &str) -> bool {
    let body = s.strip_suffix('\n').unwrap_or(s);
    body.contains('\n')
        && !body.ends_with('\n')
        && !body.starts_with([' ', '\n'])
        && body.lines().all(|l| {
            !l.ends_with([' ', '\t'])
                && l.chars()
                    .all(|c| !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}'))
        })
}

fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else if f.abs() >= 1e15 {
        format!("{f:e}")
    } else {
        format!("{f}")
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes a value that follows `key:` or `- ` on the current line (`indent` is the
/// indentation of that key or dash).
fn value_after(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Null => out.push_str(" null\n"),
        Value::Bool(b) => out.push_str(if *b { " true\n" } else { " false\n" }),
        Value::Number(n) => {
            out.push(' ');
            out.push_str(&number(n));
            out.push('\n');
        }
        Value::String(s) if is_block_safe(s) => {
            out.push_str(if s.ends_with('\n') { " |\n" } else { " |-\n" });
            for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
                if !line.is_empty() {
                    pad(out, indent + 2);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        Value::String(s) => {
            out.push(' ');
            out.push_str(&if is_plain_safe(s) {
                s.clone()
            } else {
                quoted(s)
            });
            out.push('\n');
        }
        Value::Array(items) if items.is_empty() => out.push_str(" []\n"),
        Value::Object(map) if map.is_empty() => out.push_str(" {}\n"),
        Value::Array(items) => {
            out.push('\n');
            sequence(out, items, indent + 2);
        }
        Value::Object(map) => {
            out.push('\n');
            mapping(out, map, indent + 2, true);
        }
    }
}

fn key(k: &str) -> String {
    if is_plain_safe(k) {
        k.to_owned()
    } else {
        quoted(k)
    }
}

fn mapping(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize, pad_first: bool) {
    for (i, (k, v)) in sorted(map).into_iter().enumerate() {
        if i > 0 || pad_first {
            pad(out, indent);
        }
        out.push_str(&key(k));
        out.push(':');
        value_after(out, v, indent);
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                mapping(out, map, indent + 2, false);
            }
            other => value_after(out, other, indent),
        }
    }
}

/// One YAML document (without the `---` marker), ending in a newline.
pub(crate) fn document(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(&mut out, map, 0, true),
        Value::Array(items) if !items.is_empty() => sequence(&mut out, items, 0),
        other => {
            value_after(&mut out, other, 0);
            out = out.trim_start().to_owned();
        }
    }
    out
}

/// A YAML file: the "generated by" header, then the documents separated by `---`.
pub(crate) fn file(docs: &[Value]) -> String {
    let mut out = format!("# {}\n", crate::HEADER);
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&document(doc));
    }
    out
}

/// A JSON file, pretty-printed with sorted keys (JSON has no comments, so no header).
pub(crate) fn json_file(value: &Value) -> String {
    let sorted = sort_json(value);
    let mut text = serde_json::to_string_pretty(&sorted).unwrap_or_default();
    text.push('\n');
    text
}

fn sort_json(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(sort_json).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sort_json(v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use yaml_rust2::Yaml;

    use super::*;

    #[test]
    fn keys_are_sorted_with_kubernetes_headline_keys_first() {
        let v = json!({"spec": {"b": 1, "a": "true"}, "kind": "X", "apiVersion": "v1", "metadata": {"name": "web"}});
        assert_eq!(
            document(&v),
            "apiVersion: v1\nkind: X\nmetadata:\n  name: web\nspec:\n  a: \"true\"\n  b: 1\n"
        );
    }

    #[test]
    fn ambiguous_strings_are_quoted_and_multiline_strings_are_blocks() {
        let v = json!({"a": "1", "b": "yes", "c": "null", "d": "x\ny\n", "e": "*.example.com", "f": 0.5});
        let text = document(&v);
        let back: serde_json::Value = serde_json::to_value(
            yaml_rust2::YamlLoader::load_from_str(&text).expect("valid yaml")[0]
                .as_hash()
                .expect("a map")
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), format!("{v:?}")))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .expect("json");
        assert_eq!(back["a"], "String(\"1\")");
        assert_eq!(back["b"], "String(\"yes\")");
        assert_eq!(back["c"], "String(\"null\")");
        assert_eq!(back["d"], "String(\"x\\ny\\n\")");
        assert_eq!(back["e"], "String(\"*.example.com\")");
        assert_eq!(back["f"], "Real(\"0.5\")");
    }

    fn arb_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            (-1e6f64..1e6).prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
            "[ -~\n\t]{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[ -~]{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn from_yaml(y: &Yaml) -> Value {
        match y {
            Yaml::Null => Value::Null,
            Yaml::Boolean(b) => Value::Bool(*b),
            Yaml::Integer(i) => json!(i),
            Yaml::Real(r) => json!(r.parse::<f64>().expect("a float")),
            Yaml::String(s) => Value::String(s.clone()),
            Yaml::Array(items) => Value::Array(items.iter().map(from_yaml).collect()),
            Yaml::Hash(h) => Value::Object(
                h.iter()
                    .map(|(k, v)| (k.as_str().expect("string keys").to_owned(), from_yaml(v)))
                    .collect(),
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    proptest::proptest! {
        /// Whatever the strings hold (quotes, colons, '#', newlines, control characters,
        /// "yes", "1e3"), the YAML written reads back as the same value.
        #[test]
        fn yaml_round_trips_any_value(value in arb_value()) {
            let text = document(&value);
            let docs = yaml_rust2::YamlLoader::load_from_str(&text)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}\n{text}")))?;
            let back = docs.first().map_or(Value::Null, from_yaml);
            let norm = |v: &Value| serde_json::to_string(v).expect("json");
            // Floats print with their shortest round-trip form; compare through JSON.
            proptest::prop_assert_eq!(norm(&back), norm(&value), "{}", text);
        }
    }
}
