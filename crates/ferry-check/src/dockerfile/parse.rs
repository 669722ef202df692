//! A Dockerfile parser that follows BuildKit's frontend: directives, escapes, continuations,
//! heredocs, flags, JSON and shell forms. It never fails: malformed instructions become
//! diagnostics and parsing resumes at the next instruction.

use crate::finding::{Finding, Pos, Span};

/// Instructions BuildKit knows.
pub const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// A parsed Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct Dockerfile {
    /// Parser directives at the top (`# syntax=`, `# escape=`, `# check=`).
    pub directives: Vec<(String, String, u32)>,
    /// The escape character in effect.
    pub escape: char,
    /// Instructions in order.
    pub instructions: Vec<Instruction>,
    /// Syntax diagnostics (DF000, DF031).
    pub errors: Vec<Finding>,
}

/// A `--name=value` flag of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Name without the dashes.
    pub name: String,
    /// Value after `=`, if any.
    pub value: Option<String>,
    /// Byte offset of the flag in the logical line.
    pub offset: usize,
}

/// The arguments of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["exec", "form"]`.
    Json(Vec<String>),
    /// Anything else, as written (continuations joined).
    Shell(String),
}

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word.
    pub name: String,
    /// `<<-`: leading tabs stripped.
    pub strip_tabs: bool,
    /// Quoted delimiter: no variable expansion in the body.
    pub quoted: bool,
    /// The body, without the terminator line.
    pub body: String,
    /// First line of the body.
    pub body_line: u32,
}

/// One instruction, possibly spanning several physical lines.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// Upper-cased keyword.
    pub keyword: String,
    /// The logical line: physical lines joined with continuations removed.
    pub logical: String,
    /// Byte offset in `logical` of the arguments after the keyword and flags.
    pub args_offset: usize,
    /// Flags before the arguments.
    pub flags: Vec<Flag>,
    /// Arguments.
    pub args: Args,
    /// Heredocs, in order.
    pub heredocs: Vec<Heredoc>,
    /// For `ONBUILD`, the wrapped instruction.
    pub onbuild: Option<Box<Instruction>>,
    /// First physical line (1-based).
    pub line: u32,
    /// Last physical line including heredoc terminators.
    pub end_line: u32,
    /// (logical offset, physical line) of each physical line segment.
    segments: Vec<(usize, u32)>,
}

impl Instruction {
    /// Position of a byte offset of the logical line.
    pub fn pos_at(&self, offset: usize) -> Pos {
        let offset = offset.min(self.logical.len());
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|(o, _)| *o <= offset)
            .copied()
            .unwrap_or((0, self.line));
        let col = self
            .logical
            .get(seg.0..offset)
            .map_or(0, |s| s.chars().count());
        Pos::new(seg.1, col as u32 + 1)
    }

    /// Span of `len` bytes at `offset` of the logical line.
    pub fn span_at(&self, offset: usize, len: usize) -> Span {
        let start = self.pos_at(offset);
        let mut end = self.pos_at(offset + len);
        if end.line != start.line || end.column <= start.column {
            end = Pos::new(start.line, start.column + 1);
        }
        Span::new(start, end)
    }

    /// Span of the whole first line of the instruction.
    pub fn span(&self) -> Span {
        let first_len = self.segments.get(1).map_or(self.logical.len(), |(o, _)| *o);
        let text = self.logical.get(..first_len).unwrap_or("");
        let lead = text.len() - text.trim_start().len();
        self.span_at(lead, text.trim().len())
    }

    /// Span of the first occurrence of `needle` in the arguments, or the instruction.
    pub fn span_of(&self, needle: &str) -> Span {
        match self
            .logical
            .get(self.args_offset..)
            .and_then(|a| a.find(needle))
        {
            Some(i) if !needle.is_empty() => self.span_at(self.args_offset + i, needle.len()),
            _ => self.span(),
        }
    }

    /// The argument text after flags (shell form as written, JSON form re-joined by spaces).
    pub fn args_text(&self) -> String {
        match &self.args {
            Args::Json(v) => v.join(" "),
            Args::Shell(s) => s.clone(),
        }
    }

    /// The flag named `name`, if given.
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    /// Every script this instruction runs: the shell-form command, and heredoc bodies
    /// that feed the shell (a RUN whose command is only the heredoc).
    pub fn scripts(&self) -> Vec<String> {
        let mut out = vec![self.args_text()];
        if self.keyword == "RUN" {
            for h in &self.heredocs {
                out.push(h.body.clone());
            }
        }
        out
    }
}

/// Parses a Dockerfile. Never panics and never gives up: each malformed instruction yields
/// one diagnostic in [`Dockerfile::errors`].
pub fn parse(text: &str) -> Dockerfile {
    // BuildKit ignores a UTF-8 byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut df = Dockerfile {
        escape: '\\',
        ..Dockerfile::default()
    };
    let mut i = 0;
    // Directives: only before any other line; the first non-directive ends them.
    while i < lines.len() {
        let Some((k, v)) = directive(lines[i]) else {
            break;
        };
        if df.directives.iter().any(|(d, _, _)| *d == k) {
            break;
        }
        if k == "escape" {
            match v.as_str() {
                "`" => df.escape = '`',
                "\\" => df.escape = '\\',
                _ => df.errors.push(Finding::new(
                    "DF000",
                    Span::on_line(i as u32 + 1, 1, lines[i].chars().count() as u32),
                    format!("invalid escape directive `{v}`: must be ` or \\"),
                )),
            }
        }
        df.directives.push((k, v, i as u32 + 1));
        i += 1;
    }
    while i < lines.len() {
        let t = lines[i].trim_start();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let (ins, next, errs) = instruction(&lines, i, df.escape);
        df.errors.extend(errs);
        if let Some(ins) = ins {
            df.instructions.push(ins);
        }
        i = next.max(i + 1);
    }
    df
}

fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?.trim();
    let (k, v) = rest.split_once('=')?;
    let k = k.trim().to_ascii_lowercase();
    if !matches!(k.as_str(), "syntax" | "escape" | "check") {
        return None;
    }
    Some((k, v.trim().to_string()))
}

fn ends_with_escape(line: &str, escape: char) -> Option<usize> {
    let t = line.trim_end_matches([' ', '\t']);
    t.ends_with(escape).then(|| t.len() - escape.len_utf8())
}

/// Parses the instruction starting at physical line `start`; returns it, the next line to
/// look at, and diagnostics.
fn instruction(
    lines: &[&str],
    start: usize,
    escape: char,
) -> (Option<Instruction>, usize, Vec<Finding>) {
    let mut logical = String::new();
    let mut segments = Vec::new();
    let mut j = start;
    loop {
        let l = lines[j];
        if j > start {
            let t = l.trim_start();
            // BuildKit drops comment lines and empty lines inside a continuation.
            if t.starts_with('#') || t.is_empty() {
                j += 1;
                if j >= lines.len() {
                    break;
                }
                continue;
            }
        }
        segments.push((logical.len(), j as u32 + 1));
        match ends_with_escape(l, escape) {
            Some(cut) => {
                logical.push_str(&l[..cut]);
                j += 1;
                if j >= lines.len() {
                    break;
                }
            }
            None => {
                logical.push_str(l);
                j += 1;
                break;
            }
        }
    }
    let mut errs = Vec::new();
    let mut ins = Instruction {
        keyword: String::new(),
        logical,
        args_offset: 0,
        flags: Vec::new(),
        args: Args::Shell(String::new()),
        heredocs: Vec::new(),
        onbuild: None,
        line: start as u32 + 1,
        end_line: j as u32,
        segments,
    };
    let lead = ins.logical.len() - ins.logical.trim_start().len();
    let kw_len = ins.logical[lead..]
        .find(|c: char| c.is_whitespace())
        .unwrap_or(ins.logical.len() - lead);
    ins.keyword = ins.logical[lead..lead + kw_len].to_ascii_uppercase();
    let after_kw = lead + kw_len;
    if !INSTRUCTIONS.contains(&ins.keyword.as_str()) {
        errs.push(
            Finding::new(
                "DF031",
                ins.span_at(lead, kw_len),
                format!(
                    "unknown instruction `{}`",
                    &ins.logical[lead..lead + kw_len]
                ),
            )
            .with_hint(suggest(&ins.keyword)),
        );
        return (None, j, errs);
    }
    fill(&mut ins, after_kw, &mut errs);
    // Heredocs are read after the whole logical line, in the order they were opened.
    if matches!(ins.keyword.as_str(), "RUN" | "COPY" | "ADD") {
        for (name, strip_tabs, quoted) in heredoc_openers(&ins.logical[ins.args_offset..]) {
            let body_line = j as u32 + 1;
            let mut body = String::new();
            let mut closed = false;
            while j < lines.len() {
                let l = lines[j];
                j += 1;
                let cmp = if strip_tabs {
                    l.trim_start_matches('\t')
                } else {
                    l
                };
                if cmp == name {
                    closed = true;
                    break;
                }
                body.push_str(cmp);
                body.push('\n');
            }
            if !closed {
                errs.push(
                    Finding::new(
                        "DF000",
                        ins.span(),
                        format!("heredoc `{name}` is not terminated before the end of the file"),
                    )
                    .with_hint(format!(
                        "end the heredoc with a line containing only `{name}`"
                    )),
                );
            }
            ins.heredocs.push(Heredoc {
                name,
                strip_tabs,
                quoted,
                body,
                body_line,
            });
        }
        ins.end_line = j as u32;
    }
    (Some(ins), j, errs)
}

fn suggest(kw: &str) -> String {
    let best = INSTRUCTIONS
        .iter()
        .min_by_key(|k| edit_distance(k, kw))
        .copied()
        .unwrap_or("RUN");
    if edit_distance(best, kw) <= 2 {
        format!("did you mean `{best}`?")
    } else {
        format!("instructions are {}", INSTRUCTIONS.join(", "))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Splits on unquoted whitespace, returning (byte offset, word).
pub(crate) fn words(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    let mut prev_escape = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if c == q && !prev_escape {
                quote = None;
            }
        } else if c.is_whitespace() {
            if let Some(st) = start.take() {
                out.push((st, &s[st..i]));
            }
        } else {
            if start.is_none() {
                start = Some(i);
            }
            if (c == '"' || c == '\'') && !prev_escape {
                quote = Some(c);
            }
        }
        prev_escape = c == '\\' && !prev_escape;
    }
    if let Some(st) = start {
        out.push((st, &s[st..]));
    }
    out
}

fn heredoc_openers(args: &str) -> Vec<(String, bool, bool)> {
    let ws = words(args);
    let mut out = Vec::new();
    let mut k = 0;
    while k < ws.len() {
        let w = ws[k].1;
        // A heredoc opener may be glued to a redirection (`cat 0<<EOF`) or stand alone.
        if let Some(pos) = w.find("<<") {
            let rest = &w[pos + 2..];
            // `<<` inside a quoted string is text, not a heredoc.
            let quoted_text = w[..pos].contains(['"', '\'']);
            if !rest.starts_with('<') && !quoted_text {
                let (strip, rest) = match rest.strip_prefix('-') {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                let mut name = rest.to_string();
                if name.is_empty() && k + 1 < ws.len() {
                    k += 1;
                    name = ws[k].1.to_string();
                }
                let quoted = name.starts_with('"') || name.starts_with('\'');
                let name: String = name.chars().filter(|c| *c != '"' && *c != '\'').collect();
                // Redirections glued after the name (`<<EOF>out`) are not part of it.
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    .collect();
                if !name.is_empty() {
                    out.push((name, strip, quoted));
                }
            }
        }
        k += 1;
    }
    out
}

fn known_flags(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "FROM" => &["platform"],
        "RUN" => &["mount", "network", "security", "device"],
        "COPY" => &["from", "chown", "chmod", "link", "exclude", "parents"],
        "ADD" => &[
            "chown",
            "chmod",
            "link",
            "keep-git-dir",
            "checksum",
            "exclude",
            "parents",
            "unpack",
        ],
        "HEALTHCHECK" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        _ => &[],
    }
}

/// Fills flags, args and ONBUILD from the text after the keyword, validating the shape.
fn fill(ins: &mut Instruction, after_kw: usize, errs: &mut Vec<Finding>) {
    let mut pos = after_kw;
    let known = known_flags(&ins.keyword);
    if !known.is_empty() || ins.keyword == "HEALTHCHECK" {
        let base = pos;
        let rest = ins.logical[pos..].to_string();
        for (off, w) in words(&rest) {
            let Some(flag) = w.strip_prefix("--") else {
                break;
            };
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(unquote(v))),
                None => (flag.to_string(), None),
            };
            if !known.contains(&name.as_str()) {
                errs.push(
                    Finding::new(
                        "DF000",
                        ins.span_at(base + off, w.len()),
                        format!("unknown flag `--{name}` for {}", ins.keyword),
                    )
                    .with_hint(format!(
                        "{} accepts {}",
                        ins.keyword,
                        known
                            .iter()
                            .map(|k| format!("--{k}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
            ins.flags.push(Flag {
                name,
                value,
                offset: base + off,
            });
            pos = base + off + w.len();
        }
    }
    let rest = &ins.logical[pos..];
    let lead = rest.len() - rest.trim_start().len();
    ins.args_offset = pos + lead;
    let args = ins.logical[ins.args_offset..].trim_end().to_string();
    ins.args = if args.starts_with('[') {
        match serde_json::from_str::<Vec<String>>(&args) {
            Ok(v) => Args::Json(v),
            // BuildKit treats text that is not a JSON string array as shell form.
            Err(_) => Args::Shell(args.clone()),
        }
    } else {
        Args::Shell(args.clone())
    };
    let words_n = words(&args).len();
    let bad = |msg: &str, errs: &mut Vec<Finding>, ins: &Instruction| {
        errs.push(Finding::new(
            "DF000",
            ins.span(),
            format!("{} {msg}", ins.keyword),
        ));
    };
    match ins.keyword.as_str() {
        "FROM" => {
            let w = words(&args);
            let ok = w.len() == 1 || (w.len() == 3 && w[1].1.eq_ignore_ascii_case("as"));
            if !ok {
                bad("takes an image and an optional `AS name`", errs, ins);
            }
        }
        "RUN" | "CMD" | "ENTRYPOINT" | "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER"
        | "VOLUME" | "EXPOSE" | "LABEL" | "ARG"
            if (args.is_empty()
                || matches!(&ins.args, Args::Json(v) if v.is_empty() && ins.keyword != "CMD" && ins.keyword != "ENTRYPOINT")) =>
        {
            bad("requires at least one argument", errs, ins);
        }
        "ENV" => {
            let w = words(&args);
            let first_has_eq = w.first().is_some_and(|(_, x)| x.contains('='));
            if w.is_empty() || (!first_has_eq && w.len() < 2) {
                bad("requires a name and a value (`ENV NAME=value`)", errs, ins);
            } else if first_has_eq && w.iter().any(|(_, x)| !x.contains('=')) {
                bad("mixes `NAME=value` pairs with bare words", errs, ins);
            }
        }
        "COPY" | "ADD" if words_n < 2 && !matches!(&ins.args, Args::Json(v) if v.len() >= 2) => {
            bad("requires at least a source and a destination", errs, ins);
        }
        "SHELL" if !matches!(&ins.args, Args::Json(v) if !v.is_empty()) => {
            bad(
                "requires the JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]",
                errs,
                ins,
            );
        }
        "HEALTHCHECK" => {
            let first = words(&args).first().map(|(_, w)| w.to_ascii_uppercase());
            match first.as_deref() {
                Some("NONE") => {}
                Some("CMD") if words_n >= 2 => {}
                _ => bad("takes `NONE` or `CMD <command>`", errs, ins),
            }
        }
        "ONBUILD" => {
            let inner_text = args.clone();
            let lead = inner_text.len() - inner_text.trim_start().len();
            let kw_len = inner_text[lead..]
                .find(char::is_whitespace)
                .unwrap_or(inner_text.len() - lead);
            let kw = inner_text[lead..lead + kw_len].to_ascii_uppercase();
            if kw.is_empty() {
                bad("requires an instruction", errs, ins);
            } else if matches!(kw.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                bad(&format!("cannot wrap {kw}"), errs, ins);
            } else if !INSTRUCTIONS.contains(&kw.as_str()) {
                errs.push(Finding::new(
                    "DF031",
                    ins.span_at(ins.args_offset, kw_len),
                    format!("unknown instruction `{kw}` in ONBUILD"),
                ));
            } else {
                let mut inner = Instruction {
                    keyword: kw,
                    logical: ins.logical.clone(),
                    args_offset: 0,
                    flags: Vec::new(),
                    args: Args::Shell(String::new()),
                    heredocs: Vec::new(),
                    onbuild: None,
                    line: ins.line,
                    end_line: ins.end_line,
                    segments: ins.segments.clone(),
                };
                fill(&mut inner, ins.args_offset + lead + kw_len, errs);
                ins.onbuild = Some(Box::new(inner));
            }
        }
        _ => {}
    }
}

/// Removes one level of surrounding quotes.
pub(crate) fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_comments_and_positions() {
        let df = parse(
            "FROM alpine:3.20\nRUN apk add \\\n# comment\n    curl \\\n\n    git\nCMD [\"sh\"]\n",
        );
        assert!(df.errors.is_empty(), "{:?}", df.errors);
        assert_eq!(df.instructions.len(), 3);
        let run = &df.instructions[1];
        assert_eq!((run.line, run.end_line), (2, 6));
        let sp = run.span_of("git");
        assert_eq!((sp.start.line, sp.start.column), (6, 5));
        assert_eq!(df.instructions[2].args, Args::Json(vec!["sh".into()]));
    }

    #[test]
    fn escape_directive_backtick() {
        let df = parse(
            "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN dir `\n  c:\\\n",
        );
        assert_eq!(df.escape, '`');
        assert!(df.errors.is_empty(), "{:?}", df.errors);
        assert_eq!(df.instructions[1].end_line, 4);
    }

    #[test]
    fn heredocs_several_dash_and_quoted() {
        let text = "FROM alpine:3\nRUN <<EOF1 <<-'EOF2' cat\necho one\nEOF1\n\techo $two\n\tEOF2\nCOPY <<\"X\" /a\nhi\nX\nUSER app\n";
        let df = parse(text);
        assert!(df.errors.is_empty(), "{:?}", df.errors);
        let run = &df.instructions[1];
        assert_eq!(run.heredocs.len(), 2);
        assert_eq!(run.heredocs[0].body, "echo one\n");
        assert!(run.heredocs[1].strip_tabs && run.heredocs[1].quoted);
        assert_eq!(run.heredocs[1].body, "echo $two\n");
        assert_eq!(run.end_line, 6);
        assert_eq!(df.instructions[2].heredocs[0].body, "hi\n");
        assert_eq!(df.instructions[3].keyword, "USER");
        assert_eq!(df.instructions[3].line, 10);
    }

    #[test]
    fn quoted_double_angle_is_not_a_heredoc() {
        let df = parse("FROM alpine:3\nRUN echo \"x <<EOF\" && cat <<< hi\nUSER app\n");
        assert!(df.instructions[1].heredocs.is_empty());
        assert_eq!(df.instructions[2].keyword, "USER");
    }

    #[test]
    fn byte_order_mark_and_crlf_are_accepted() {
        let df = parse("\u{feff}FROM alpine:3\r\nRUN echo \\\r\n  ok\r\n");
        assert!(df.errors.is_empty(), "{:?}", df.errors);
        assert_eq!(df.instructions[1].end_line, 3);
    }

    #[test]
    fn flags_and_unknown_flag() {
        let df = parse(
            "FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nRUN --mount=type=cache,target=/root/.cache --network=none go build\nCOPY --link --chmod=755 --exclude=*.md . /src\nCOPY --bogus a b\n",
        );
        assert_eq!(df.errors.len(), 1, "{:?}", df.errors);
        assert_eq!(df.errors[0].line, 4);
        assert_eq!(df.instructions[1].flags.len(), 2);
        assert_eq!(
            df.instructions[2]
                .flag("chmod")
                .and_then(|f| f.value.clone()),
            Some("755".into())
        );
    }

    #[test]
    fn one_bad_instruction_one_diagnostic_and_parsing_continues() {
        let df = parse("FROM alpine:3\nFORM x\nENV\nRUN echo ok\n");
        assert_eq!(df.errors.len(), 2);
        assert_eq!(df.errors[0].rule, "DF031");
        assert!(df.errors[0].hint.as_deref().unwrap_or("").contains("FROM"));
        assert_eq!(
            df.instructions.last().map(|i| i.keyword.as_str()),
            Some("RUN")
        );
    }

    #[test]
    fn onbuild_wraps_an_instruction() {
        let df = parse("FROM node:20\nONBUILD COPY --chown=app . /app\nONBUILD ONBUILD RUN x\n");
        assert_eq!(df.errors.len(), 1);
        let inner = df.instructions[1].onbuild.as_ref().expect("inner");
        assert_eq!(inner.keyword, "COPY");
        assert!(inner.flag("chown").is_some());
    }
}
