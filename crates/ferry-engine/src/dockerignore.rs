//! `.dockerignore` rules with Docker's own semantics (moby/patternmatcher).
//!
//! Each line is a pattern, `#` starts a comment line, `!` makes an exception. Patterns are
//! cleaned like Go's `filepath.Clean` and a leading `/` is dropped. `*` and `?` never match
//! `/`, `**` matches any number of directories (also none), `[...]` is a character class,
//! `\` escapes. A path is excluded by a pattern that matches it or any of its parent
//! directories; the last matching pattern wins.

use crate::error::EngineError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `*`: any run of characters except `/`.
    Star,
    /// `?`: one character except `/`.
    Quest,
    /// `**` at the end: everything.
    DoubleStarEnd,
    /// `**` (and `**/`) elsewhere: any number of whole directories, also none.
    DoubleStar,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    text: String,
    tokens: Vec<Token>,
}

/// The parsed rules of one `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

impl IgnoreRules {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Self, EngineError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let mut line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let exclusion = line.starts_with('!');
            if exclusion {
                line = line[1..].trim();
            }
            if line.is_empty() {
                continue;
            }
            let mut cleaned = clean(line);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let tokens = compile(&cleaned).map_err(|reason| EngineError::IgnorePattern {
                line: i + 1,
                pattern: raw.to_owned(),
                reason,
            })?;
            patterns.push(Pattern {
                exclusion,
                text: cleaned,
                tokens,
            });
        }
        Ok(Self { patterns })
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let parents: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            // An exception only matters once something matched, and vice versa.
            if p.exclusion != matched {
                continue;
            }
            let mut hit = matches(&p.tokens, path);
            if !hit && parents.len() > 1 {
                for i in 1..parents.len() {
                    if matches(&p.tokens, &parents[..i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether an exception pattern could re-include something below the excluded
    /// directory `dir`; when none can, the walk skips the directory entirely.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir_parts: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            let parts: Vec<&str> = p.text.split('/').collect();
            for (i, d) in dir_parts.iter().enumerate() {
                let Some(part) = parts.get(i) else {
                    return false;
                };
                if part.contains("**") {
                    return true;
                }
                match compile(part) {
                    Ok(tokens) if matches(&tokens, d) => {}
                    _ => return false,
                }
            }
            parts.len() > dir_parts.len()
        })
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Lexical path cleaning as Go's `filepath.Clean` does it.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

fn compile(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::DoubleStarEnd
                } else {
                    Token::DoubleStar
                });
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Quest),
            '\\' => {
                i += 1;
                let c = chars.get(i).ok_or("trailing backslash")?;
                tokens.push(Token::Lit(*c));
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let c = *chars.get(i).ok_or("unclosed character class")?;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let lo = if c == '\\' {
                        i += 1;
                        *chars.get(i).ok_or("unclosed character class")?
                    } else {
                        c
                    };
                    if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']')
                    {
                        let hi = chars[i + 2];
                        if hi < lo {
                            return Err(format!("bad range {lo}-{hi}"));
                        }
                        ranges.push((lo, hi));
                        i += 3;
                    } else {
                        ranges.push((lo, lo));
                        i += 1;
                    }
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Lit(c)),
        }
        i += 1;
    }
    Ok(tokens)
}

fn matches(tokens: &[Token], path: &str) -> bool {
    let chars: Vec<char> = path.chars().collect();
    match_at(tokens, &chars)
}

fn match_at(tokens: &[Token], s: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return s.is_empty();
    };
    match first {
        Token::Lit(c) => s.first() == Some(c) && match_at(rest, &s[1..]),
        Token::Quest => s.first().is_some_and(|c| *c != '/') && match_at(rest, &s[1..]),
        Token::Class { negated, ranges } => {
            s.first()
                .is_some_and(|c| ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&c)) != *negated)
                && match_at(rest, &s[1..])
        }
        Token::Star => {
            for i in 0..=s.len() {
                if match_at(rest, &s[i..]) {
                    return true;
                }
                if s.get(i) == Some(&'/') {
                    return false;
                }
            }
            false
        }
        Token::DoubleStarEnd => true,
        Token::DoubleStar => {
            match_at(rest, s)
                || s.iter()
                    .enumerate()
                    .any(|(i, c)| *c == '/' && match_at(rest, &s[i + 1..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text).unwrap()
    }

    #[test]
    fn plain_names_exclude_the_path_and_everything_below() {
        let r = rules("target\n# comment\n\nnode_modules/\n");
        assert!(r.is_excluded("target"));
        assert!(r.is_excluded("target/debug/x"));
        assert!(r.is_excluded("node_modules/a/b"));
        assert!(
            !r.is_excluded("src/target"),
            "patterns are anchored at the context root"
        );
        assert!(!r.is_excluded("targets"));
    }

    #[test]
    fn star_and_question_mark_do_not_cross_directories() {
        let r = rules("*.log\n?.tmp\n");
        assert!(r.is_excluded("a.log"));
        assert!(!r.is_excluded("dir/a.log"));
        assert!(r.is_excluded("x.tmp"));
        assert!(!r.is_excluded("xy.tmp"));
        let r = rules("*/*.log");
        assert!(r.is_excluded("dir/a.log"));
        assert!(!r.is_excluded("a/b/a.log"));
    }

    #[test]
    fn double_star_matches_any_depth() {
        let r = rules("**/*.pyc\ndocs/**\n");
        assert!(r.is_excluded("a.pyc"));
        assert!(r.is_excluded("a/b/c.pyc"));
        assert!(r.is_excluded("docs/x/y.md"));
        assert!(!r.is_excluded("docs"), "docs/** needs something below docs");
        let r = rules("a/**/z");
        assert!(r.is_excluded("a/z"));
        assert!(r.is_excluded("a/b/c/z"));
    }

    #[test]
    fn exceptions_reinclude_and_the_last_match_wins() {
        let r = rules("*\n!Dockerfile\n!dist/hello\n");
        assert!(r.is_excluded("src/main.rs"));
        assert!(!r.is_excluded("Dockerfile"));
        assert!(!r.is_excluded("dist/hello"));
        assert!(r.is_excluded("dist/other"));
        assert!(r.may_include_below("dist"));
        assert!(!r.may_include_below("src"));
        let r = rules("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(r.is_excluded("CHANGES.md"));
        assert!(!r.is_excluded("README.md"));
        assert!(r.is_excluded("README-secret.md"));
    }

    #[test]
    fn patterns_are_cleaned_like_go() {
        let r = rules("/foo/./bar//\n./baz\nx/../y\n");
        assert!(r.is_excluded("foo/bar"));
        assert!(r.is_excluded("baz"));
        assert!(r.is_excluded("y"));
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("./"), ".");
    }

    #[test]
    fn character_classes_and_escapes() {
        let r = rules("file[0-9].txt\n[^a]x\nlit\\*\n");
        assert!(r.is_excluded("file3.txt"));
        assert!(!r.is_excluded("filea.txt"));
        assert!(r.is_excluded("bx"));
        assert!(!r.is_excluded("ax"));
        assert!(r.is_excluded("lit*"));
        assert!(!r.is_excluded("litx"));
    }

    #[test]
    fn bad_patterns_name_the_line() {
        let err = IgnoreRules::parse("ok\nbad[\n").unwrap_err();
        assert!(
            matches!(err, EngineError::IgnorePattern { line: 2, .. }),
            "{err:?}"
        );
        assert!(IgnoreRules::parse("x\\").is_err());
    }
}
