//! Hard-coded secret detection on file text: known token formats, private keys, connection
//! strings with passwords, and literal values of password-like variables. Matched values
//! are never echoed: messages carry a masked form only.

use crate::finding::Span;
use crate::{FileKind, Finding};

/// Masks a secret: keeps at most the first 4 characters of long values and the length.
pub fn mask(value: &str) -> String {
    let n = value.chars().count();
    if n >= 16 {
        format!(
            "`{}…` ({n} chars, redacted)",
            value.chars().take(4).collect::<String>()
        )
    } else {
        format!("{n} chars, redacted")
    }
}

/// True when `name` looks like it holds a secret and `value` is a literal (not a
/// reference, placeholder or file path).
pub fn is_secret_assignment(name: &str, value: &str) -> bool {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if !crate::dockerfile::secret_name(name) || v.is_empty() {
        return false;
    }
    let placeholder = v.starts_with('$')
        || v.starts_with("{{")
        || v.starts_with('/')
        || v.starts_with("<")
        || v.starts_with("file:")
        || matches!(
            v.to_ascii_lowercase().as_str(),
            "changeme"
                | "change-me"
                | "xxx"
                | "none"
                | "null"
                | "true"
                | "false"
                | "secret"
                | "password"
                | "example"
                | "placeholder"
        );
    // `GOOGLE_API_KEY_VAL`-style tokens are substitution placeholders, not credentials.
    let token_placeholder = v.len() > 3
        && v.contains('_')
        && v.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    !placeholder && !token_placeholder
}

struct Pattern {
    prefix: &'static str,
    /// Characters allowed after the prefix and the minimum number of them.
    min: usize,
    charset: fn(char) -> bool,
    what: &'static str,
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}
fn upper_alnum(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
fn token(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

const PATTERNS: &[Pattern] = &[
    Pattern {
        prefix: "AKIA",
        min: 16,
        charset: upper_alnum,
        what: "AWS access key id",
    },
    Pattern {
        prefix: "ASIA",
        min: 16,
        charset: upper_alnum,
        what: "AWS temporary access key id",
    },
    Pattern {
        prefix: "ghp_",
        min: 36,
        charset: alnum,
        what: "GitHub personal access token",
    },
    Pattern {
        prefix: "gho_",
        min: 36,
        charset: alnum,
        what: "GitHub OAuth token",
    },
    Pattern {
        prefix: "ghs_",
        min: 36,
        charset: alnum,
        what: "GitHub app token",
    },
    Pattern {
        prefix: "ghu_",
        min: 36,
        charset: alnum,
        what: "GitHub user token",
    },
    Pattern {
        prefix: "github_pat_",
        min: 60,
        charset: token,
        what: "GitHub fine-grained token",
    },
    Pattern {
        prefix: "glpat-",
        min: 20,
        charset: token,
        what: "GitLab personal access token",
    },
    Pattern {
        prefix: "xoxb-",
        min: 20,
        charset: token,
        what: "Slack bot token",
    },
    Pattern {
        prefix: "xoxp-",
        min: 20,
        charset: token,
        what: "Slack user token",
    },
    Pattern {
        prefix: "xoxa-",
        min: 20,
        charset: token,
        what: "Slack app token",
    },
    Pattern {
        prefix: "sk_live_",
        min: 20,
        charset: alnum,
        what: "Stripe secret key",
    },
    Pattern {
        prefix: "rk_live_",
        min: 20,
        charset: alnum,
        what: "Stripe restricted key",
    },
    Pattern {
        prefix: "AIza",
        min: 35,
        charset: token,
        what: "Google API key",
    },
    Pattern {
        prefix: "SG.",
        min: 60,
        charset: |c| token(c) || c == '.',
        what: "SendGrid API key",
    },
    Pattern {
        prefix: "npm_",
        min: 36,
        charset: alnum,
        what: "npm token",
    },
];

/// Scans text for hard-coded secrets. Generic `NAME=value` assignments are only looked for
/// in files without structure-aware checks ([`FileKind::Other`]).
pub fn scan(text: &str, kind: FileKind) -> Vec<Finding> {
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line_no = ln as u32 + 1;
        // Byte offsets from the matchers may land inside a multi-byte character (found by
        // fuzzing); count columns up to the character that holds the offset.
        let col = |byte: usize| {
            let mut b = byte.min(line.len());
            while !line.is_char_boundary(b) {
                b -= 1;
            }
            line[..b].chars().count() as u32 + 1
        };
        if line.contains("PRIVATE KEY-----") {
            if let Some(b) = line.find("-----BEGIN") {
                out.push(
                    Finding::new(
                        "SEC002",
                        Span::on_line(line_no, col(b), (line.len() - b) as u32),
                        "a private key is embedded in this file",
                    )
                    .with_hint(
                        "load keys from a secret store or a mounted file that is not committed",
                    ),
                );
            }
            continue;
        }
        for p in PATTERNS {
            let mut from = 0;
            while let Some(i) = line[from..].find(p.prefix) {
                let start = from + i;
                from = start + p.prefix.len();
                // Must start a token.
                if start > 0
                    && line[..start]
                        .chars()
                        .last()
                        .is_some_and(|c| c.is_ascii_alphanumeric())
                {
                    continue;
                }
                let rest = &line[start + p.prefix.len()..];
                let n = rest.chars().take_while(|c| (p.charset)(*c)).count();
                if n >= p.min {
                    let len = p.prefix.len() + n;
                    let value = &line[start..start + len];
                    out.push(
                        Finding::new(
                            "SEC001",
                            Span::on_line(line_no, col(start), len as u32),
                            format!("hard-coded {} ({})", p.what, mask(value)),
                        )
                        .with_hint(
                            "revoke it, then load it from a secret store or the environment",
                        ),
                    );
                    from = start + len;
                }
            }
        }
        if let Some(i) = jwt(line) {
            out.push(
                Finding::new(
                    "SEC001",
                    Span::on_line(line_no, col(i.0), i.1 as u32),
                    "hard-coded JSON Web Token (redacted)",
                )
                .with_hint("load tokens at run time"),
            );
        }
        if let Some((start, len)) = url_password(line) {
            out.push(
                Finding::new(
                    "SEC003",
                    Span::on_line(line_no, col(start), len as u32),
                    "connection string with a hard-coded password (redacted)",
                )
                .with_hint("take the password from a secret or environment variable"),
            );
        }
        if kind == FileKind::Other
            && let Some((name, value, start)) = assignment(line)
            && is_secret_assignment(name, value)
        {
            out.push(Finding::new(
                "SEC003",
                Span::on_line(line_no, col(start), name.len() as u32),
                format!("`{name}` is assigned a hard-coded secret ({})", mask(value)),
            ));
        } else if let Some((name, value, start)) = assignment(line)
            && high_entropy_key(name, value)
            && !out.iter().any(|f| f.line == line_no)
        {
            let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
            let vstart = line[start..].find(v).map_or(start, |i| start + i);
            out.push(
                Finding::new(
                    "SEC001",
                    Span::on_line(line_no, col(vstart), v.chars().count() as u32),
                    format!(
                        "`{name}` holds a high-entropy literal that looks like a credential ({})",
                        mask(v)
                    ),
                )
                .with_hint("load it from a secret store or the environment"),
            );
        }
    }
    out
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// A key-like name (`*KEY*`, `*SECRET*`, `*TOKEN*`, ...) with a long random-looking literal:
/// letters and digits mixed, at least 20 characters, more than 3.5 bits of entropy per
/// character. Checksums, fingerprints and public keys are not credentials.
fn high_entropy_key(name: &str, value: &str) -> bool {
    let u = name.to_ascii_uppercase();
    let keyish = ["KEY", "SECRET", "TOKEN", "PASS", "CREDENTIAL", "AUTH"]
        .iter()
        .any(|w| u.contains(w));
    let public = [
        "SHA",
        "HASH",
        "CHECKSUM",
        "FINGERPRINT",
        "GPG",
        "PGP",
        "PUBLIC",
        "PUB_KEY",
        "_ID",
        "KEYRING",
        "KEYSERVER",
        "KEY_URL",
        "KEY_FILE",
        "KEY_PATH",
    ]
    .iter()
    .any(|w| u.contains(w));
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    let token_chars = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.'));
    let mixed = v.chars().any(|c| c.is_ascii_digit()) && v.chars().any(|c| c.is_ascii_alphabetic());
    keyish
        && !public
        && v.len() >= 20
        && token_chars
        && mixed
        && !v.starts_with('$')
        && entropy(v) > 3.5
}

fn jwt(line: &str) -> Option<(usize, usize)> {
    let i = line.find("eyJ")?;
    let tok: String = line[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let parts: Vec<&str> = tok.split('.').collect();
    (parts.len() == 3 && parts.iter().all(|p| p.len() >= 8) && parts[1].starts_with("eyJ"))
        .then_some((i, tok.len()))
}

/// `scheme://user:password@host` with a literal password.
fn url_password(line: &str) -> Option<(usize, usize)> {
    let i = line.find("://")?;
    let scheme_start = line[..i]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+'))
        .map_or(0, |p| p + 1);
    let rest = &line[i + 3..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '/')
        .unwrap_or(rest.len());
    let auth = &rest[..end];
    let at = auth.rfind('@')?;
    let (_, pass) = auth[..at].split_once(':')?;
    let literal = !pass.is_empty()
        && !pass.starts_with('$')
        && !pass.starts_with("{{")
        && !pass.starts_with('%')
        && !matches!(pass, "password" | "pass" | "***" | "xxx");
    literal.then_some((scheme_start, i + 3 + end - scheme_start))
}

/// `NAME=value`, `NAME: value` or `"name": "value"` on one line.
fn assignment(line: &str) -> Option<(&str, &str, usize)> {
    let t = line.trim_start();
    let lead = line.len() - t.len();
    let t2 = t.strip_prefix("export ").unwrap_or(t);
    let lead = lead + (t.len() - t2.len());
    let sep = t2.find(['=', ':'])?;
    let name = t2[..sep].trim().trim_matches('"');
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return None;
    }
    let value = t2[sep + 1..].trim().trim_end_matches(',');
    Some((name, value, lead))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_tokens_are_found_and_masked() {
        let key = ["AKIA", "IOSFODNN7EXAMPLE"].concat();
        let f = scan(
            &format!("aws_access_key_id = {key}\n"),
            FileKind::Kubernetes,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "SEC001");
        assert_eq!(f[0].column, 21);
        assert!(!f[0].message.contains(&key));
    }

    #[test]
    fn passwords_in_urls_and_assignments() {
        let f = scan(
            "DATABASE_URL=postgres://app:s3cretpw@db:5432/app\n",
            FileKind::Other,
        );
        assert!(
            f.iter()
                .any(|f| f.rule == "SEC003" && !f.message.contains("s3cretpw"))
        );
        assert!(
            scan(
                "DATABASE_URL=postgres://app:${PW}@db/app\n",
                FileKind::Other
            )
            .is_empty()
        );
        let f = scan("DB_PASSWORD=hunter2hunter2\n", FileKind::Other);
        assert_eq!(f.len(), 1);
        assert!(!f[0].message.contains("hunter2"));
        assert!(scan("DB_PASSWORD_FILE=/run/secrets/db\n", FileKind::Other).is_empty());
    }

    #[test]
    fn high_entropy_keys_but_not_checksums() {
        let f = scan(
            "STRIPE_KEY=q8Zr4Lw0Pm2Xv7Tb9Nc3Hs6Jd1Kf5Ga\n",
            FileKind::Dockerfile,
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].rule, f[0].column), ("SEC001", 12));
        assert!(!f[0].message.contains("q8Zr4Lw0Pm2Xv7Tb9Nc3Hs6Jd1Kf5Ga"));
        assert!(
            scan(
                "PYTHON_SHA256 c54d9b9bbb8a36e6489363ddd01139707fd781d72f1f9e90c7ec65d0061368e0\n",
                FileKind::Dockerfile
            )
            .is_empty()
        );
        assert!(
            scan(
                "GPG_KEY=7169605F62C751356D054A26A821E680E5FA6305\n",
                FileKind::Dockerfile
            )
            .is_empty()
        );
        assert!(scan("CACHE_KEY=v1\n", FileKind::Other).is_empty());
    }

    #[test]
    fn private_keys() {
        let f = scan(
            &["-----BEGIN RSA ", "PRIVATE KEY-----\nMIIE\n"].concat(),
            FileKind::Kubernetes,
        );
        assert_eq!(f[0].rule, "SEC002");
    }
}
