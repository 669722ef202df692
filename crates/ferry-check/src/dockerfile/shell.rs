//! Just enough shell to lint RUN commands: split a script into simple commands and words.

/// One simple command: its words (quotes removed) and whether it feeds a pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Words with surrounding quotes removed.
    pub words: Vec<String>,
    /// Followed by a single `|`.
    pub piped: bool,
}

impl Command {
    /// The program name, skipping `sudo`, env assignments and `command`/`exec`.
    pub fn program(&self) -> Option<&str> {
        self.words
            .iter()
            .map(String::as_str)
            .find(|w| !w.contains('=') || w.starts_with('-'))
    }

    /// True when `words` contains `a` immediately followed (skipping flags) by `b`.
    pub fn has_subcommand(&self, prog: &str, sub: &str) -> bool {
        self.words
            .iter()
            .position(|w| w == prog || w.ends_with(&format!("/{prog}")))
            .is_some_and(|p| {
                self.words[p + 1..]
                    .iter()
                    .find(|w| !w.starts_with('-'))
                    .is_some_and(|w| w == sub)
            })
    }

    /// Arguments after `sub` that are not flags (and not flag values of `-o x` style options).
    pub fn operands_after(&self, sub: &str) -> Vec<&str> {
        let Some(p) = self.words.iter().position(|w| w == sub) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut skip_next = false;
        for w in &self.words[p + 1..] {
            if skip_next {
                skip_next = false;
                continue;
            }
            if w.starts_with('-') {
                // Options that take a separate value.
                skip_next = matches!(
                    w.as_str(),
                    "-o" | "-t"
                        | "--target"
                        | "-c"
                        | "--constraint"
                        | "-i"
                        | "--index-url"
                        | "--extra-index-url"
                        | "--repository"
                        | "-X"
                        | "--virtual"
                        | "-v"
                        | "--version"
                        | "--setopt"
                        | "--prefix"
                        | "--root"
                );
                continue;
            }
            out.push(w.as_str());
        }
        out
    }

    /// True when a word equals `flag` or starts with `flag=`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.words
            .iter()
            .any(|w| w == flag || w.starts_with(&format!("{flag}=")))
    }
}

/// Splits a script into simple commands at `&&`, `||`, `;`, `|`, `&` and newlines,
/// honouring quotes.
pub fn commands(script: &str) -> Vec<Command> {
    let mut cmds = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    let flush_word = |cur: &mut String, words: &mut Vec<String>, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(cur));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' && i + 1 < chars.len() {
                i += 1;
                cur.push(chars[i]);
            } else {
                cur.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                in_word = true;
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                if chars[i] != '\n' {
                    cur.push(chars[i]);
                    in_word = true;
                }
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            ' ' | '\t' => flush_word(&mut cur, &mut words, &mut in_word),
            '&' if i > 0 && (chars[i - 1] == '>' || chars[i - 1] == '<') => {
                // `2>&1` and `>&2` are redirections, not separators.
                cur.push('&');
                in_word = true;
            }
            '\n' | ';' | '&' | '|' | '(' | ')' => {
                flush_word(&mut cur, &mut words, &mut in_word);
                let piped =
                    c == '|' && chars.get(i + 1) != Some(&'|') && (i == 0 || chars[i - 1] != '|');
                if c == '&' && chars.get(i + 1) == Some(&'&')
                    || c == '|' && chars.get(i + 1) == Some(&'|')
                {
                    i += 1;
                }
                if !words.is_empty() {
                    cmds.push(Command {
                        words: std::mem::take(&mut words),
                        piped,
                    });
                }
            }
            _ => {
                cur.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    flush_word(&mut cur, &mut words, &mut in_word);
    if !words.is_empty() {
        cmds.push(Command {
            words,
            piped: false,
        });
    }
    // Strip `sudo`-less wrappers are handled by rules; drop leading `then`/`do`.
    for c in &mut cmds {
        while c.words.first().is_some_and(|w| {
            matches!(
                w.as_str(),
                "then" | "do" | "else" | "{" | "!" | "exec" | "command"
            )
        }) {
            c.words.remove(0);
        }
    }
    cmds.retain(|c| !c.words.is_empty());
    cmds
}

/// True when the script has a pipe `|` (not `||`) outside single quotes, counting pipes in
/// command substitutions `$(...)` even inside double quotes.
pub fn has_pipe(script: &str) -> bool {
    let b = script.as_bytes();
    // Stack of contexts: b'"' inside double quotes, b'(' inside $( ... ).
    let mut stack: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let in_dq = stack.last() == Some(&b'"');
        match c {
            b'\\' => i += 1,
            b'\'' if !in_dq => {
                while i + 1 < b.len() && b[i + 1] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            b'"' if in_dq => {
                stack.pop();
            }
            b'"' => stack.push(b'"'),
            b'$' if b.get(i + 1) == Some(&b'(') => {
                stack.push(b'(');
                i += 1;
            }
            b')' if stack.last() == Some(&b'(') => {
                stack.pop();
            }
            b'#' if !in_dq && (i == 0 || b[i - 1].is_ascii_whitespace()) => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'|' if !in_dq => {
                if b.get(i + 1) == Some(&b'|') {
                    i += 1;
                } else if i == 0 || b[i - 1] != b'>' {
                    return true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_operators_and_keeps_quotes() {
        let c = commands("apt-get update && apt-get install -y 'a b' | tee x; echo \"x&&y\" 2>&1");
        assert_eq!(c.len(), 4);
        assert!(c[1].piped);
        assert_eq!(c[1].words[3], "a b");
        assert_eq!(c[3].words, vec!["echo", "x&&y", "2>&1"]);
        assert!(c[1].has_subcommand("apt-get", "install"));
    }

    #[test]
    fn pipes_in_command_substitution_count_quoted_ones_do_not() {
        assert!(has_pipe("dst=\"$(echo \"$src\" | tr -d 3)\""));
        assert!(!has_pipe("echo 'a | b' \"c | d\" && x || y"));
        assert!(has_pipe("curl x | sh"));
    }
}
