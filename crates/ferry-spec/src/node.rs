//! An owned TOML tree that remembers the byte span of every key and value, and the
//! overlay merge: tables merge key by key, arrays and scalars replace.

use std::ops::Range;

/// A TOML value with the span it was written at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub span: Range<usize>,
    pub kind: Kind,
}

/// The kinds of TOML values (datetimes are rejected by the tokenizer we use).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// A key of a table, its span and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Kind {
    /// The TOML name of the kind, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "a string",
            Self::Integer(_) => "an integer",
            Self::Float(_) => "a float",
            Self::Bool(_) => "a boolean",
            Self::Array(_) => "an array",
            Self::Table(_) => "a table",
        }
    }
}

impl Node {
    pub fn from_toml(value: &toml_span::Value<'_>) -> Self {
        use toml_span::value::ValueInner;
        let kind = match value.as_ref() {
            ValueInner::String(s) => Kind::String(s.to_string()),
            ValueInner::Integer(i) => Kind::Integer(*i),
            ValueInner::Float(f) => Kind::Float(*f),
            ValueInner::Boolean(b) => Kind::Bool(*b),
            ValueInner::Array(items) => Kind::Array(items.iter().map(Self::from_toml).collect()),
            ValueInner::Table(table) => {
                let mut entries: Vec<Entry> = table
                    .iter()
                    .map(|(key, value)| Entry {
                        key: key.name.to_string(),
                        key_span: key.span.start..key.span.end,
                        value: Self::from_toml(value),
                    })
                    .collect();
                // File order reads best in messages and in `config show`.
                entries.sort_by_key(|e| e.key_span.start);
                Kind::Table(entries)
            }
        };
        Self {
            span: value.span.start..value.span.end,
            kind,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Table(entries) => Some(entries),
            _ => None,
        }
    }

    /// The key span and value at a dotted path of table keys and array indices
    /// (`strategy.canary.steps.2.analysis`); an array item's "key span" is its own span.
    pub fn lookup(&self, path: &str) -> Option<(Range<usize>, &Node)> {
        let mut node = self;
        let mut key_span = None;
        for part in path.split('.') {
            match &node.kind {
                Kind::Table(entries) => {
                    let entry = entries.iter().find(|e| e.key == part)?;
                    key_span = Some(entry.key_span.clone());
                    node = &entry.value;
                }
                Kind::Array(items) => {
                    node = items.get(part.parse::<usize>().ok()?)?;
                    key_span = Some(node.span.clone());
                }
                _ => return None,
            }
        }
        Some((key_span?, node))
    }

    /// Removes and returns the entry named `key` of a table.
    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        match &mut self.kind {
            Kind::Table(entries) => {
                let i = entries.iter().position(|e| e.key == key)?;
                Some(entries.remove(i))
            }
            _ => None,
        }
    }

    /// Merges `overlay` over `self`: tables merge recursively, anything else replaces.
    pub fn merge(&mut self, overlay: &Self) {
        match (&mut self.kind, &overlay.kind) {
            (Kind::Table(base), Kind::Table(over)) => {
                for entry in over {
                    match base.iter_mut().find(|b| b.key == entry.key) {
                        Some(existing) => {
                            if matches!(
                                (&existing.value.kind, &entry.value.kind),
                                (Kind::Table(_), Kind::Table(_))
                            ) {
                                existing.value.merge(&entry.value);
                            } else {
                                existing.key_span = entry.key_span.clone();
                                existing.value = entry.value.clone();
                            }
                        }
                        None => base.push(entry.clone()),
                    }
                }
            }
            _ => *self = overlay.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Small trees over few keys, so that base and overlay share keys often.
    fn arb_node() -> impl Strategy<Value = Node> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Kind::Integer),
            any::<bool>().prop_map(Kind::Bool),
            "[a-z]{0,3}".prop_map(Kind::String),
        ]
        .prop_map(|kind| Node { span: 0..0, kind });
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Kind::Array),
                proptest::collection::btree_map("[a-d]", (inner, 0usize..100), 0..4).prop_map(
                    |map| {
                        Kind::Table(
                            map.into_iter()
                                .map(|(key, (value, at))| Entry {
                                    key,
                                    key_span: at..at + 1,
                                    value,
                                })
                                .collect(),
                        )
                    }
                ),
            ]
            .prop_map(|kind| Node { span: 0..0, kind })
        })
    }

    fn table(node: Node) -> Node {
        match node.kind {
            Kind::Table(_) => node,
            _ => Node {
                span: 0..0,
                kind: Kind::Table(vec![Entry {
                    key: "a".into(),
                    key_span: 0..1,
                    value: node,
                }]),
            },
        }
    }

    /// Every leaf (non-table value) with its dotted path.
    /// With `empty_tables`, a nested empty table counts as a leaf too: it merges into a
    /// base table but replaces a base value of another kind.
    fn leaves(node: &Node, path: &str, empty_tables: bool, out: &mut Vec<(String, Node)>) {
        match &node.kind {
            Kind::Table(entries) if entries.is_empty() => {
                if empty_tables && !path.is_empty() {
                    out.push((path.to_owned(), node.clone()));
                }
            }
            Kind::Table(entries) => {
                for e in entries {
                    leaves(&e.value, &format!("{path}.{}", e.key), empty_tables, out);
                }
            }
            _ => out.push((path.to_owned(), node.clone())),
        }
    }

    fn merged(base: &Node, overlay: &Node) -> Node {
        let mut out = base.clone();
        out.merge(overlay);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn an_empty_overlay_changes_nothing(base in arb_node().prop_map(table)) {
            let empty = Node { span: 0..0, kind: Kind::Table(Vec::new()) };
            prop_assert_eq!(merged(&base, &empty), base);
        }

        #[test]
        fn applying_an_overlay_twice_is_applying_it_once(
            base in arb_node().prop_map(table),
            overlay in arb_node().prop_map(table),
        ) {
            let once = merged(&base, &overlay);
            prop_assert_eq!(merged(&once, &overlay), once);
        }

        #[test]
        fn every_overlay_leaf_wins_and_unshadowed_base_leaves_stay(
            base in arb_node().prop_map(table),
            overlay in arb_node().prop_map(table),
        ) {
            let result = merged(&base, &overlay);
            let mut got = Vec::new();
            leaves(&result, "", false, &mut got);
            let mut over = Vec::new();
            leaves(&overlay, "", false, &mut over);
            for leaf in &over {
                prop_assert!(got.contains(leaf), "overlay leaf {:?} lost", leaf.0);
            }
            let mut kept = Vec::new();
            leaves(&base, "", false, &mut kept);
            let mut over = Vec::new();
            leaves(&overlay, "", true, &mut over);
            for (path, value) in kept {
                // A base leaf survives unless the overlay wrote that path or a prefix of it
                // with a non-table, or the path itself.
                let shadowed = over.iter().any(|(p, _)| {
                    p == &path || path.starts_with(&format!("{p}.")) || p.starts_with(&format!("{path}."))
                });
                if !shadowed {
                    prop_assert!(got.contains(&(path.clone(), value)), "base leaf {path:?} lost");
                }
            }
        }
    }

    #[test]
    fn arrays_replace_and_tables_merge() {
        let text_base = "a = [1, 2]\n[t]\nx = 1\ny = 2\n";
        let text_over = "a = [3]\n[t]\ny = 5\n";
        let base = Node::from_toml(&toml_span::parse(text_base).expect("toml"));
        let over = Node::from_toml(&toml_span::parse(text_over).expect("toml"));
        let out = merged(&base, &over);
        let Some((_, a)) = out.lookup("a") else {
            panic!("a")
        };
        assert!(matches!(&a.kind, Kind::Array(items) if items.len() == 1));
        assert!(matches!(
            out.lookup("t.x").map(|(_, n)| &n.kind),
            Some(Kind::Integer(1))
        ));
        assert!(matches!(
            out.lookup("t.y").map(|(_, n)| &n.kind),
            Some(Kind::Integer(5))
        ));
    }
}
