//! A YAML tree with positions for every key and value, built from yaml-rust2's event stream.
//!
//! serde-based loaders lose positions and silently keep the last of duplicate keys; checks
//! need both, so documents are loaded into [`Node`]s and duplicates are recorded.

use crate::finding::{Pos, Span};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deeper nesting is reported as an error instead of risking the stack.
const MAX_DEPTH: usize = 256;
/// Alias expansion beyond this many nodes is refused ("billion laughs").
const MAX_NODES: usize = 2_000_000;

/// A YAML value with its source region.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub start: Pos,
    /// One past where it ends (best effort for multi-line scalars).
    pub end: Pos,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar; `plain` is false for quoted and block scalars (which are always strings).
    Scalar {
        /// The scalar text after unquoting.
        text: String,
        /// Unquoted (type resolved from content) or not.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in document order (after merge keys are applied).
    Map(Vec<(Node, Node)>),
}

/// A duplicate mapping key.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateKey {
    /// The key text.
    pub key: String,
    /// Where the repeated key is.
    pub span: Span,
    /// Line of the first occurrence.
    pub first_line: u32,
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The root value.
    pub root: Node,
}

/// A loaded stream: the documents that parsed, duplicates found, and the syntax error that
/// stopped loading, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    /// Documents before any error.
    pub documents: Vec<Document>,
    /// Duplicate keys in any document.
    pub duplicates: Vec<DuplicateKey>,
    /// The syntax error, with its position.
    pub error: Option<(Pos, String)>,
}

impl Node {
    /// The span of this node.
    pub fn span(&self) -> Span {
        Span::new(self.start, self.end)
    }

    /// Looks up a key in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// Looks up a key in a mapping, returning the key node too.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Map(m) => m
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// Follows a path of keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |n, k| n.get(k))
    }

    /// The text of a scalar (of any resolved type).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The entries of a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items of a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// True for `null`, `~` and empty plain scalars.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A plain `true`/`false`.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A plain integer.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.value {
            Value::Scalar { text, plain: true } => parse_int(text),
            _ => None,
        }
    }

    /// The JSON-schema type this node resolves to.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Seq(_) => "array",
            Value::Map(_) => "object",
            Value::Scalar { text, plain } => {
                if !plain {
                    "string"
                } else if self.is_null() {
                    "null"
                } else if self.as_bool().is_some() {
                    "boolean"
                } else if parse_int(text).is_some() {
                    "integer"
                } else if is_float(text) {
                    "number"
                } else {
                    "string"
                }
            }
        }
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let t = text.strip_prefix('+').unwrap_or(text);
    if let Some(h) = t.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok();
    }
    if let Some(o) = t.strip_prefix("0o") {
        return i64::from_str_radix(o, 8).ok();
    }
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

fn is_float(text: &str) -> bool {
    matches!(
        text,
        ".inf" | "-.inf" | "+.inf" | ".nan" | ".NaN" | ".Inf" | "-.Inf"
    ) || (text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && text.parse::<f64>().is_ok())
}

fn pos(m: &Marker) -> Pos {
    // yaml-rust2 markers: 1-based lines, 0-based columns.
    Pos::new(m.line() as u32, m.col() as u32 + 1)
}

struct Loader<'a> {
    parser: Parser<std::str::Chars<'a>>,
    /// Anchored nodes with their node count (so alias cost is known before cloning).
    anchors: HashMap<usize, (Node, usize)>,
    duplicates: Vec<DuplicateKey>,
    nodes: usize,
    text: &'a str,
}

#[derive(Debug)]
struct LoadError(Pos, String);

/// Loads every document of a YAML stream. Never panics; a syntax error ends loading and is
/// returned in [`Stream::error`] alongside the documents before it.
///
/// Go's YAML parser (used by Docker Compose and kubectl) accepts a flow collection whose
/// closing `]`/`}` sits at the indentation of the enclosing block key; yaml-rust2 rejects it.
/// Such lines are re-indented and the text parsed again, so positions stay on the same lines.
pub fn load(text: &str) -> Stream {
    // A UTF-8 byte-order mark is not content (Go's YAML and kubectl ignore it).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut stream = load_strict(text);
    let mut patched: Option<String> = None;
    for _ in 0..64 {
        let Some((pos, msg)) = &stream.error else {
            break;
        };
        if msg != "invalid indentation" {
            break;
        }
        let src = patched.as_deref().unwrap_or(text);
        let mut lines: Vec<String> = src.split('\n').map(str::to_string).collect();
        let Some(line) = lines.get_mut(pos.line as usize - 1) else {
            break;
        };
        if !line.trim_start().starts_with([']', '}']) {
            break;
        }
        line.insert_str(0, "  ");
        let next = lines.join("\n");
        stream = load_strict(&next);
        patched = Some(next);
    }
    stream
}

fn load_strict(text: &str) -> Stream {
    let mut loader = Loader {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        duplicates: Vec::new(),
        nodes: 0,
        text,
    };
    let mut stream = Stream::default();
    loop {
        let (ev, mark) = match loader.next() {
            Ok(x) => x,
            Err(LoadError(p, m)) => {
                stream.error = Some((p, m));
                break;
            }
        };
        match ev {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                loader.anchors.clear();
                match loader.next().and_then(|(ev, m)| loader.node(ev, m, 0)) {
                    Ok(root) => stream.documents.push(Document { root }),
                    Err(LoadError(p, m)) => {
                        stream.error = Some((p, m));
                        break;
                    }
                }
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            _ => {
                stream.error = Some((pos(&mark), "unexpected YAML event".into()));
                break;
            }
        }
    }
    stream.duplicates = loader.duplicates;
    stream
}

impl Loader<'_> {
    fn next(&mut self) -> Result<(Event, Marker), LoadError> {
        self.parser.next_token().map_err(|e| {
            let m = e.marker();
            LoadError(pos(m), e.info().to_string())
        })
    }

    fn count(&mut self, n: usize, at: Pos) -> Result<(), LoadError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(LoadError(
                at,
                "document too large after alias expansion".into(),
            ));
        }
        Ok(())
    }

    fn node(&mut self, ev: Event, mark: Marker, depth: usize) -> Result<Node, LoadError> {
        let start = pos(&mark);
        if depth > MAX_DEPTH {
            return Err(LoadError(start, "nesting too deep".into()));
        }
        let before = self.nodes;
        self.count(1, start)?;
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let end = self.scalar_end(&mark, &text, style);
                let node = Node {
                    value: Value::Scalar {
                        text,
                        plain: style == TScalarStyle::Plain,
                    },
                    start,
                    end,
                };
                if anchor > 0 {
                    self.anchors
                        .insert(anchor, (node.clone(), self.nodes - before));
                }
                Ok(node)
            }
            Event::Alias(id) => {
                let cost = self.anchors.get(&id).map(|(_, c)| *c);
                match cost {
                    Some(c) => {
                        self.count(c, start)?;
                        let Some((mut n, _)) = self.anchors.get(&id).cloned() else {
                            return Err(LoadError(start, format!("unknown alias {id}")));
                        };
                        // Findings on an alias point at the alias, not the anchor.
                        n.start = start;
                        n.end = Pos::new(start.line, start.column + 1);
                        Ok(n)
                    }
                    None => Err(LoadError(start, format!("unknown alias {id}"))),
                }
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                let end;
                loop {
                    let (ev, m) = self.next()?;
                    if ev == Event::SequenceEnd {
                        end = pos(&m);
                        break;
                    }
                    items.push(self.node(ev, m, depth + 1)?);
                }
                let end = tidy_end(end, items.last().map(|i| i.end));
                let node = Node {
                    value: Value::Seq(items),
                    start,
                    end,
                };
                if anchor > 0 {
                    self.anchors
                        .insert(anchor, (node.clone(), self.nodes - before));
                }
                Ok(node)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<(Node, Node)> = Vec::new();
                let mut merges: Vec<Node> = Vec::new();
                let mut last_end: Option<Pos> = None;
                let end;
                loop {
                    let (ev, m) = self.next()?;
                    if ev == Event::MappingEnd {
                        end = pos(&m);
                        break;
                    }
                    let key = self.node(ev, m, depth + 1)?;
                    let (ev, m) = self.next()?;
                    let value = self.node(ev, m, depth + 1)?;
                    last_end = Some(value.end);
                    if matches!(&key.value, Value::Scalar { text, plain: true } if text == "<<") {
                        merges.push(value);
                        continue;
                    }
                    if let Some(k) = key.as_str()
                        && let Some((first, _)) =
                            entries.iter().find(|(e, _)| e.as_str() == Some(k))
                    {
                        self.duplicates.push(DuplicateKey {
                            key: k.to_string(),
                            span: key.span(),
                            first_line: first.start.line,
                        });
                    }
                    entries.push((key, value));
                }
                for merged in merges {
                    let sources: Vec<Node> = match merged.value {
                        Value::Map(_) => vec![merged],
                        Value::Seq(items) => items,
                        Value::Scalar { .. } => Vec::new(),
                    };
                    for src in sources {
                        if let Value::Map(m) = src.value {
                            for (k, v) in m {
                                if !entries.iter().any(|(e, _)| e.as_str() == k.as_str()) {
                                    entries.push((k, v));
                                }
                            }
                        }
                    }
                }
                let end = tidy_end(end, last_end);
                let node = Node {
                    value: Value::Map(entries),
                    start,
                    end,
                };
                if anchor > 0 {
                    self.anchors
                        .insert(anchor, (node.clone(), self.nodes - before));
                }
                Ok(node)
            }
            other => Err(LoadError(start, format!("unexpected YAML event {other:?}"))),
        }
    }

    fn scalar_end(&self, mark: &Marker, text: &str, style: TScalarStyle) -> Pos {
        let start = pos(mark);
        match style {
            TScalarStyle::Plain | TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted
                if !text.contains('\n') =>
            {
                // Measure the source, not the unescaped text, so quotes and escapes count.
                let src = self.text.get(mark.index()..).unwrap_or("");
                let len = if style == TScalarStyle::Plain {
                    text.chars().count()
                } else {
                    quoted_len(src)
                };
                Pos::new(start.line, start.column + len.max(1) as u32)
            }
            _ => Pos::new(start.line, start.column + 1),
        }
    }
}

/// The end of a collection: a block collection's end event sits at the next token (often
/// lines later), so it ends with its last child; a flow collection ends after its bracket.
fn tidy_end(end_event: Pos, last_child: Option<Pos>) -> Pos {
    match last_child {
        Some(le) if end_event.line > le.line => le,
        _ => Pos::new(end_event.line, end_event.column + 1),
    }
}

fn quoted_len(src: &str) -> usize {
    let mut chars = src.chars();
    let Some(q) = chars.next() else { return 1 };
    let mut n = 1;
    let mut escaped = false;
    for c in chars {
        n += 1;
        if c == '\n' {
            break;
        }
        if escaped {
            escaped = false;
        } else if q == '"' && c == '\\' {
            escaped = true;
        } else if c == q {
            break;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_exact() {
        let s = load("a: 1\nb:\n  c: \"x\"\n");
        let root = &s.documents[0].root;
        let (k, v) = root.entry("a").expect("a");
        assert_eq!((k.start.line, k.start.column), (1, 1));
        assert_eq!((v.start.line, v.start.column), (1, 4));
        let c = root.path(&["b", "c"]).expect("c");
        assert_eq!((c.start.line, c.start.column, c.end.column), (3, 6, 9));
        assert_eq!(c.type_name(), "string");
        assert_eq!(v.type_name(), "integer");
    }

    #[test]
    fn collections_end_with_their_content() {
        let s = load("a:\n  b: 1\n  c: [x, y]\n\n\nd: 2\n");
        let a = s.documents[0].root.get("a").expect("a");
        assert_eq!((a.end.line, a.end.column), (3, 12));
        let c = a.get("c").expect("c");
        assert_eq!((c.start.column, c.end.column), (6, 12));
    }

    #[test]
    fn byte_order_mark_is_accepted() {
        let s = load("\u{feff}a: 1\n");
        assert!(s.error.is_none(), "{:?}", s.error);
        assert_eq!(s.documents[0].root.get("a").and_then(Node::as_i64), Some(1));
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let s = load("a: 1\nb: 2\na: 3\n");
        assert_eq!(s.duplicates.len(), 1);
        assert_eq!(s.duplicates[0].first_line, 1);
        assert_eq!(s.duplicates[0].span.start.line, 3);
    }

    #[test]
    fn merge_keys_and_multi_documents() {
        let s = load("x: &d {a: 1}\ny:\n  <<: *d\n  b: 2\n---\nz: 1\n");
        assert_eq!(s.documents.len(), 2);
        assert!(s.documents[0].root.path(&["y", "a"]).is_some());
        assert!(s.duplicates.is_empty());
    }

    #[test]
    fn syntax_error_keeps_earlier_documents() {
        let s = load("a: 1\n---\nb: [\n");
        assert_eq!(s.documents.len(), 1);
        assert!(s.error.is_some());
    }

    #[test]
    fn flow_sequence_closed_at_key_indentation_is_accepted() {
        let s = load("a:\n  test: [\n      \"x\",\n  ]\n  b: 1\n");
        assert!(s.error.is_none(), "{:?}", s.error);
        assert_eq!(
            s.documents[0].root.path(&["a", "b"]).map(|n| n.start.line),
            Some(5)
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(5000);
        assert!(load(&text).error.is_some());
    }
}
