//! The text of a ferry.toml and the mapping from byte offsets to 1-based lines and columns.

use std::ops::Range;

/// A ferry.toml as text, with the name it is shown under (usually its path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    name: String,
    text: String,
}

/// A 1-based line and column (the column counts characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl SourceFile {
    /// A source named `name` (shown in diagnostics) holding `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The name shown in diagnostics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The position of byte `offset` (clamped to the text, and to a character boundary).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }

    /// Start and end positions of a byte range.
    pub fn range(&self, span: &Range<usize>) -> (Position, Position) {
        (self.position(span.start), self.position(span.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = SourceFile::new("f", "ab\nçd\n");
        assert_eq!(src.position(0), Position { line: 1, column: 1 });
        assert_eq!(src.position(3), Position { line: 2, column: 1 });
        // "ç" is two bytes: offset 5 is "d", the second character.
        assert_eq!(src.position(5), Position { line: 2, column: 2 });
        // Inside a character: clamped back to its start.
        assert_eq!(src.position(4), Position { line: 2, column: 1 });
        assert_eq!(src.position(999), Position { line: 3, column: 1 });
    }
}
