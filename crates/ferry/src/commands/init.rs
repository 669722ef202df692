//! `ferry init`: infer a commented ferry.toml from a Dockerfile, or detect the
//! language and also write a hardened multi-stage Dockerfile and .dockerignore.
//! Never overwrites a file unless `--force`.

use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;

/// What `init` learned about the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    pub name: String,
    pub port: u16,
    pub health_path: Option<String>,
    pub language: Option<Language>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    Go,
    Node,
    Python,
}

impl Language {
    fn label(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Go => "Go",
            Language::Node => "Node.js",
            Language::Python => "Python",
        }
    }
}

pub fn run(args: &InitArgs, printer: &Printer) -> anyhow::Result<u8> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(Expected::Usage(format!("{} is not a directory", dir.display())).into());
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => app_name_from_dir(dir),
    };
    let dockerfile = dir.join("Dockerfile");
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let inferred = if dockerfile.is_file() {
        let text =
            std::fs::read_to_string(&dockerfile).map_err(|source| Expected::ConfigUnreadable {
                path: dockerfile.clone(),
                source,
            })?;
        infer_from_dockerfile(&name, &text)
    } else {
        let language = detect_language(dir).ok_or_else(|| {
            Expected::Usage(format!(
                "{} has no Dockerfile and no Cargo.toml, go.mod, package.json, pyproject.toml or \
                 requirements.txt to infer one from; write a Dockerfile first",
                dir.display()
            ))
        })?;
        let inferred = Inferred {
            name: name.clone(),
            port: default_port(language),
            health_path: Some("/health".to_owned()),
            language: Some(language),
        };
        files.push((dockerfile.clone(), dockerfile_for(language, &name)));
        files.push((dir.join(".dockerignore"), dockerignore_for(language)));
        inferred
    };
    files.insert(0, (dir.join("ferry.toml"), ferry_toml(&inferred)));

    let existing: Vec<String> = files
        .iter()
        .filter(|(path, _)| path.exists())
        .map(|(path, _)| path.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(Expected::Usage(format!(
            "{} already exist(s); pass --force to overwrite",
            existing.join(", ")
        ))
        .into());
    }
    for (path, text) in &files {
        std::fs::write(path, text)?;
    }
    if printer.json_output() {
        printer.json(&serde_json::json!({
            "app": inferred.name,
            "port": inferred.port,
            "health_path": inferred.health_path,
            "language": inferred.language.map(Language::label),
            "written": files.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>(),
        }))?;
    } else {
        for (path, _) in &files {
            printer.line(format!("wrote {}", path.display()))?;
        }
        if let Some(language) = inferred.language {
            printer.line(format!(
                "detected {}; the Dockerfile is multi-stage, pinned and runs as non-root",
                language.label()
            ))?;
        }
        printer.line("next: ferry config validate && ferry build")?;
    }
    Ok(exit::OK)
}

/// A DNS-label app name from the directory name.
pub fn app_name_from_dir(dir: &Path) -> String {
    let raw = std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".to_owned());
    let mut name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_matches('-');
    let name = if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("app-{name}")
    } else {
        name.to_owned()
    };
    let mut name: String = name.chars().take(50).collect();
    name = name.trim_end_matches('-').to_owned();
    if name.is_empty() {
        "app".to_owned()
    } else {
        name
    }
}

/// EXPOSE → port, a recognisable HEALTHCHECK URL → health path.
pub fn infer_from_dockerfile(name: &str, text: &str) -> Inferred {
    let mut port = None;
    let mut health_path = None;
    for line in logical_lines(text) {
        let mut words = line.split_whitespace();
        let Some(instruction) = words.next() else {
            continue;
        };
        match instruction.to_ascii_uppercase().as_str() {
            "EXPOSE" if port.is_none() => {
                port = words
                    .filter_map(|w| w.split('/').next()?.parse::<u16>().ok())
                    .find(|p| *p > 0);
            }
            "HEALTHCHECK" => health_path = health_path.or_else(|| health_path_in(&line)),
            _ => {}
        }
    }
    Inferred {
        name: name.to_owned(),
        port: port.unwrap_or(8080),
        health_path,
        language: None,
    }
}

/// Joins backslash continuations and drops comments.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let trimmed = raw.trim();
        if current.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            lines.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// Finds `http://host[:port]/path` in a HEALTHCHECK line and returns `/path`.
fn health_path_in(line: &str) -> Option<String> {
    let start = line.find("http://").or_else(|| line.find("https://"))?;
    let url = &line[start..];
    let after_scheme = &url[url.find("://")? + 3..];
    let slash = after_scheme.find('/')?;
    let path: String = after_scheme[slash..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ',' | ']' | '|' | ';'))
        .collect();
    (path.len() > 1).then_some(path)
}

pub fn detect_language(dir: &Path) -> Option<Language> {
    let has = |f: &str| dir.join(f).is_file();
    if has("Cargo.toml") {
        Some(Language::Rust)
    } else if has("go.mod") {
        Some(Language::Go)
    } else if has("package.json") {
        Some(Language::Node)
    } else if has("pyproject.toml") || has("requirements.txt") {
        Some(Language::Python)
    } else {
        None
    }
}

fn default_port(language: Language) -> u16 {
    match language {
        Language::Node => 3000,
        Language::Python => 8000,
        Language::Rust | Language::Go => 8080,
    }
}

/// The commented ferry.toml written by `init`.
pub fn ferry_toml(inferred: &Inferred) -> String {
    let health = match &inferred.health_path {
        Some(path) => format!("path = \"{path}\""),
        None => {
            "path = \"/health\"  # no HEALTHCHECK URL found in the Dockerfile: adjust".to_owned()
        }
    };
    format!(
        r#"# ferry.toml: how ferry builds, checks and rolls out this service.
# Reference: docs/ferry-toml.md. Validate with `ferry config validate`.
app = "{name}"

[build]
context = "."
dockerfile = "Dockerfile"

[web]
port = {port}       # the port the container listens on
replicas = 2        # production policy wants at least 2

[web.health]
{health}
interval = "5s"
timeout = "2s"
healthy_threshold = 2
unhealthy_threshold = 3

[web.resources]
cpus = 0.5
memory = "256Mi"
pids = 256

[strategy]
kind = "rolling"

[environments.production]
production = true
"#,
        name = inferred.name,
        port = inferred.port,
    )
}

fn dockerignore_for(language: Language) -> String {
    let mut text = String::from(
        "# Keep the build context small and free of secrets.\n.git\n.ferry\n.env\n*.pem\n*.key\nDockerfile\n.dockerignore\n",
    );
    text.push_str(match language {
        Language::Rust => "target/\n",
        Language::Go => "bin/\n*.test\n",
        Language::Node => "node_modules/\nnpm-debug.log\ncoverage/\n",
        Language::Python => "__pycache__/\n*.pyc\n.venv/\n.pytest_cache/\n",
    });
    text
}

/// A hardened multi-stage Dockerfile: pinned base tags, dependency manifests
/// copied before the sources (cache-friendly), non-root USER, HEALTHCHECK.
pub fn dockerfile_for(language: Language, name: &str) -> String {
    match language {
        Language::Rust => format!(
            r#"# Hardened multi-stage build written by `ferry init`.
FROM rust:1.88-slim-bookworm AS build
WORKDIR /src
# Dependency manifests first so dependency layers stay cached.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo "fn main() {{}}" > src/main.rs && cargo build --release --locked && rm -rf src
COPY . .
RUN touch src/main.rs && cargo build --release --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/{name} /app/{name}
USER 65532:65532
EXPOSE 8080
# Your binary answers `healthcheck` with exit 0 when healthy; or delete this line and
# let ferry probe web.health.path over HTTP.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/app/{name}", "healthcheck"]
ENTRYPOINT ["/app/{name}"]
"#
        ),
        Language::Go => format!(
            r#"# Hardened multi-stage build written by `ferry init`.
FROM golang:1.23-bookworm AS build
WORKDIR /src
# Module files first so the download layer stays cached.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/{name} .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/{name} /app/{name}
USER 65532:65532
EXPOSE 8080
# Your binary answers `healthcheck` with exit 0 when healthy; or delete this line and
# let ferry probe web.health.path over HTTP.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/app/{name}", "healthcheck"]
ENTRYPOINT ["/app/{name}"]
"#
        ),
        Language::Node => r#"# Hardened multi-stage build written by `ferry init`.
FROM node:22.11-bookworm-slim AS deps
WORKDIR /app
# The manifest and lock file first so `npm ci` stays cached.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM node:22.11-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:3000/health').then(r => process.exit(r.ok ? 0 : 1)).catch(() => process.exit(1))"]
CMD ["node", "server.js"]
"#
        .to_owned(),
        Language::Python => r#"# Hardened multi-stage build written by `ferry init`.
FROM python:3.12-slim-bookworm AS deps
WORKDIR /app
# Requirements first so the dependency layer stays cached.
COPY requirements.txt ./
RUN pip install --no-cache-dir --prefix=/install -r requirements.txt

FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY --from=deps /install /usr/local
COPY . .
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"]
# A production server, never a development one.
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "app:app"]
"#
        .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_and_healthcheck_are_inferred() {
        let text = "FROM scratch\nEXPOSE 9090/tcp 9091\nHEALTHCHECK --interval=5s \\\n  CMD curl -f http://localhost:9090/healthz || exit 1\n";
        let inferred = infer_from_dockerfile("web", text);
        assert_eq!(inferred.port, 9090);
        assert_eq!(inferred.health_path.as_deref(), Some("/healthz"));
    }

    #[test]
    fn names_become_dns_labels() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("My_Service.v2");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(app_name_from_dir(&sub), "my-service-v2");
    }
}
