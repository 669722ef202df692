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
