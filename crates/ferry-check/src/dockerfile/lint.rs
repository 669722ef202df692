//! Dockerfile rules (DF001–DF030). Rules about the shipped image look only at the target
//! stage and the stages it inherits from; hygiene rules look at every stage, as hadolint does.

use super::parse::{Args, Dockerfile, Instruction, words};
use super::shell::{self, Command};
use super::stage::{Graph, arg_decls};
use crate::finding::{Finding, Severity};

pub(crate) fn lint(df: &Dockerfile, g: &Graph, has_dockerignore: Option<bool>) -> Vec<Finding> {
    let mut out = Vec::new();
    let ins = &df.instructions;
    if has_dockerignore == Some(false) && !ins.is_empty() {
        out.push(
            Finding::new(
                "DF027",
                ins[0].span(),
                "no .dockerignore next to this Dockerfile",
            )
            .with_hint(
                "add a .dockerignore listing .git, build output, local env files and secrets",
            ),
        );
    }
    for i in ins.iter().filter(|i| i.keyword == "MAINTAINER") {
        out.push(
            Finding::new("DF022", i.span(), "MAINTAINER is deprecated")
                .with_hint("use LABEL org.opencontainers.image.authors=\"...\""),
        );
    }
    // Global ARGs can hold secrets too.
    let first_from = g.stages.first().map_or(ins.len(), |s| s.from);
    for i in &ins[..first_from] {
        secret_env_arg(i, &mut out);
    }
    let mut seen_names: Vec<(&str, u32)> = Vec::new();
    for st in &g.stages {
        let from = &ins[st.from];
        if let Some(name) = st.name.as_deref() {
            if let Some((_, line)) = seen_names.iter().find(|(n, _)| *n == name) {
                out.push(Finding::new(
                    "DF029",
                    from.span_of(name),
                    format!("stage name `{name}` is already used on line {line}"),
                ));
            } else {
                seen_names.push((name, from.line));
            }
        }
        if st.parent.is_none() {
            base_image(from, &st.base, st.base_resolved, &mut out);
        }
        let raw = words(&from.args_text())
            .first()
            .map(|(_, w)| w.to_string())
            .unwrap_or_default();
        for var in variables(&raw) {
            if !g.global_args.contains_key(&var) {
                out.push(
                    Finding::new(
                        "DF032",
                        from.span_of(&var),
                        format!("`{var}` is not declared by an ARG before the first FROM"),
                    )
                    .with_hint(format!(
                        "add `ARG {var}=<default>` at the top of the Dockerfile"
                    )),
                );
            }
        }
        let body: Vec<&Instruction> = ins[st.body.clone()].iter().collect();
        lint_stage(g, st.index, &body, &mut out);
    }
    final_image(df, g, &mut out);
    out
}

/// Names of `$VAR` / `${VAR...}` references.
fn variables(s: &str) -> Vec<String> {
    let b: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' {
            let start = if b.get(i + 1) == Some(&'{') {
                i + 2
            } else {
                i + 1
            };
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_') {
                j += 1;
            }
            if j > start {
                out.push(b[start..j].iter().collect());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn base_image(from: &Instruction, base: &str, resolved: bool, out: &mut Vec<Finding>) {
    if !resolved || base.eq_ignore_ascii_case("scratch") || base.is_empty() {
        return;
    }
    if base.contains('@') {
        return;
    }
    let raw = words(&from.args_text())
        .first()
        .map(|(_, w)| w.to_string())
        .unwrap_or_default();
    let span = from.span_of(&raw);
    let last = base.rsplit('/').next().unwrap_or(base);
    match last.split_once(':') {
        None => out.push(
            Finding::new(
                "DF001",
                span,
                format!("base image `{base}` has no tag, so it floats with `latest`"),
            )
            .with_hint(format!(
                "pin a version tag or digest, e.g. `{base}:<version>` or `{base}@sha256:...`"
            )),
        ),
        Some((_, "latest")) => out.push(
            Finding::new(
                "DF001",
                span,
                format!("base image `{base}` uses the `latest` tag"),
            )
            .with_hint("pin a version tag or a digest"),
        ),
        Some(_) => {}
    }
}

/// Whether the stage's shell is POSIX-like (shell-form rules only make sense then).
fn posix_shell(shell: Option<&Instruction>) -> bool {
    match shell.map(|s| &s.args) {
        Some(Args::Json(v)) => v.first().is_none_or(|p| {
            let p = p.to_ascii_lowercase();
            !(p.contains("powershell") || p.contains("pwsh") || p.contains("cmd"))
        }),
        _ => true,
    }
}

fn lint_stage(g: &Graph, si: usize, body: &[&Instruction], out: &mut Vec<Finding>) {
    let mut shell: Option<&Instruction> = None;
    let mut cmds = 0;
    let mut entrypoints = 0;
    let mut manifest_copied = false;
    let mut context_copy: Option<&Instruction> = None;
    for &i in body {
        // ONBUILD instructions run in child builds: lint their content, but they do not
        // change this stage's shell or count as this stage's CMD/ENTRYPOINT.
        let wrapped = i.onbuild.is_some();
        let i: &Instruction = i.onbuild.as_deref().unwrap_or(i);
        match i.keyword.as_str() {
            "SHELL" if !wrapped => shell = Some(i),
            "CMD" | "ENTRYPOINT" if !wrapped => {
                let n = if i.keyword == "CMD" {
                    &mut cmds
                } else {
                    &mut entrypoints
                };
                *n += 1;
                if *n > 1 {
                    out.push(Finding::new(
                        "DF016",
                        i.span(),
                        format!(
                            "more than one {} in this stage; only the last one takes effect",
                            i.keyword
                        ),
                    ));
                }
                if matches!(i.args, Args::Shell(_)) && posix_shell(shell) {
                    out.push(
                        Finding::new(
                            "DF028",
                            i.span(),
                            format!(
                                "{} uses the shell form, so the process does not receive SIGTERM",
                                i.keyword
                            ),
                        )
                        .with_hint(format!(
                            "use the JSON form: {} [\"executable\", \"arg\"]",
                            i.keyword
                        )),
                    );
                }
            }
            "WORKDIR" => {
                let p = super::parse::unquote(i.args_text().trim());
                let windows = p.len() > 2 && p.as_bytes()[1] == b':';
                if !p.starts_with('/') && !p.starts_with('$') && !windows {
                    out.push(
                        Finding::new(
                            "DF014",
                            i.span(),
                            format!(
                                "WORKDIR `{p}` is relative; its meaning depends on earlier WORKDIRs"
                            ),
                        )
                        .with_hint("use an absolute path"),
                    );
                }
            }
            "EXPOSE" => expose(i, out),
            "ENV" | "ARG" => secret_env_arg(i, out),
            "ADD" => add_instead_of_copy(i, out),
            "COPY" => {
                if let Some(from) = i.flag("from").and_then(|f| f.value.as_deref()) {
                    let (r, ok) = super::stage::expand(from, &g.global_args);
                    let image_like =
                        r.contains('/') || r.contains(':') || r.contains('@') || r.contains('.');
                    if ok && !image_like && g.lookup(&r, si).is_none() {
                        out.push(
                            Finding::new("DF021", i.span_of(from), format!("`COPY --from={from}` refers to no earlier stage"))
                                .with_hint("name the stage with `FROM ... AS name` before this COPY, or use a full image reference"),
                        );
                    }
                }
                let srcs = sources(i);
                if srcs.iter().any(|s| is_manifest(s)) {
                    manifest_copied = true;
                } else if i.flag("from").is_none()
                    && srcs.iter().any(|s| *s == "." || *s == "./")
                    && context_copy.is_none()
                {
                    context_copy = Some(i);
                }
            }
            "RUN" => {
                if posix_shell(shell) {
                    run(i, shell, out);
                }
                if let Some(cc) = context_copy
                    && !manifest_copied
                    && installs_deps(i)
                {
                    out.push(
                            Finding::new("DF025", cc.span(), "the whole build context is copied before dependencies are installed, so any source change re-runs the install")
                                .with_hint("copy only the dependency manifest (package.json, requirements.txt, go.mod, ...) first, install, then copy the rest"),
                        );
                    context_copy = None;
                    manifest_copied = true;
                }
            }
            _ => {}
        }
    }
}

fn sources(i: &Instruction) -> Vec<&str> {
    let text = &i.logical[i.args_offset..];
    let w: Vec<&str> = words(text)
        .into_iter()
        .map(|(_, w)| w.trim_matches(|c| c == '"' || c == '\''))
        .collect();
    match &i.args {
        Args::Json(_) => Vec::new(),
        Args::Shell(_) if w.len() >= 2 => w[..w.len() - 1].to_vec(),
        _ => Vec::new(),
    }
}

fn is_manifest(src: &str) -> bool {
    let name = src.rsplit('/').next().unwrap_or(src);
    const M: &[&str] = &[
        "package.json",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "requirements.txt",
        "pyproject.toml",
        "poetry.lock",
        "Pipfile",
        "Pipfile.lock",
        "go.mod",
        "go.sum",
        "Gemfile",
        "Gemfile.lock",
        "pom.xml",
        "build.gradle",
        "build.gradle.kts",
        "settings.gradle",
        "Cargo.toml",
        "Cargo.lock",
        "composer.json",
        "composer.lock",
        "mix.exs",
        "uv.lock",
    ];
    M.contains(&name)
        || name.ends_with(".csproj")
        || name.ends_with(".sln")
        || (name.starts_with("requirements") && name.ends_with(".txt"))
        || name.starts_with("package")
}

fn installs_deps(i: &Instruction) -> bool {
    i.scripts()
        .iter()
        .flat_map(|s| shell::commands(s))
        .any(|c| {
            c.has_subcommand("npm", "install")
                || c.has_subcommand("npm", "ci")
                || c.has_subcommand("yarn", "install")
                || c.words.first().is_some_and(|w| w == "yarn") && c.words.len() == 1
                || c.has_subcommand("pnpm", "install")
                || (c.has_subcommand("pip", "install") || c.has_subcommand("pip3", "install"))
                    && c.has_flag("-r")
                || c.has_subcommand("bundle", "install")
                || c.has_subcommand("go", "mod")
                || c.has_subcommand("composer", "install")
                || c.has_subcommand("dotnet", "restore")
                || c.words.iter().any(|w| w == "dependency:go-offline")
                || c.has_subcommand("poetry", "install")
                || c.has_subcommand("uv", "sync")
        })
}

fn expose(i: &Instruction, out: &mut Vec<Finding>) {
    let text = i.args_text();
    for (off, w) in words(&text) {
        if w.starts_with('$') {
            continue;
        }
        let port = w.split('/').next().unwrap_or(w);
        let proto_ok = w
            .split_once('/')
            .is_none_or(|(_, p)| matches!(p.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp"));
        let range_ok =
            port.split('-').all(|p| p.parse::<u16>().is_ok()) && port.split('-').count() <= 2;
        if !(proto_ok && range_ok) {
            let _ = off;
            out.push(Finding::new(
                "DF020",
                i.span_of(w),
                format!("`{w}` is not a valid port (0-65535, optionally /tcp or /udp)"),
            ));
        }
    }
}

fn add_instead_of_copy(i: &Instruction, out: &mut Vec<Finding>) {
    let srcs = sources(i);
    let remote_or_archive = |s: &str| {
        let l = s.to_ascii_lowercase();
        l.starts_with("http://")
            || l.starts_with("https://")
            || l.starts_with("git@")
            || l.starts_with('$')
            || [
                ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst",
                ".gz", ".bz2", ".xz", ".zst",
            ]
            .iter()
            .any(|e| l.ends_with(e))
    };
    if !i.heredocs.is_empty() || srcs.is_empty() || srcs.iter().any(|s| remote_or_archive(s)) {
        return;
    }
    out.push(
        Finding::new(
            "DF015",
            i.span(),
            "ADD of local files; ADD also fetches URLs and unpacks archives",
        )
        .with_hint("use COPY"),
    );
}

const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "CREDENTIAL",
    "AUTH_KEY",
];

/// True for variable names that usually hold a secret (`DB_PASSWORD`, `API_TOKEN`), but not
/// for names of files or paths holding one (`DB_PASSWORD_FILE`).
pub fn secret_name(name: &str) -> bool {
    let u = name.to_ascii_uppercase();
    let not_a_value = [
        "_FILE",
        "_PATH",
        "_DIR",
        "_NAME",
        "_URL",
        "_URI",
        "_ENDPOINT",
        "_LENGTH",
        "_TTL",
        "_EXPIRY",
        "_TYPE",
        "_HEADER",
        "_ID",
    ]
    .iter()
    .any(|s| u.ends_with(s));
    SECRET_WORDS.iter().any(|w| u.contains(w)) && !not_a_value
}

fn secret_env_arg(i: &Instruction, out: &mut Vec<Finding>) {
    let pairs: Vec<(String, Option<String>, usize)> = if i.keyword == "ARG" {
        arg_decls(i)
    } else if i.keyword == "ENV" {
        let text = i.args_text();
        let w = words(&text);
        if w.first().is_some_and(|(_, x)| x.contains('=')) {
            w.iter()
                .map(|(o, x)| {
                    let (k, v) = x.split_once('=').unwrap_or((x, ""));
                    (k.to_string(), Some(super::parse::unquote(v)), *o)
                })
                .collect()
        } else if let Some((o, k)) = w.first() {
            let v = text[o + k.len()..].trim().to_string();
            vec![(k.to_string(), Some(v), *o)]
        } else {
            Vec::new()
        }
    } else {
        return;
    };
    for (k, v, _) in pairs {
        if !secret_name(&k) {
            continue;
        }
        let span = i.span_of(&k);
        match (i.keyword.as_str(), v.as_deref()) {
            (_, Some(v)) if !v.is_empty() && !v.starts_with('$') => out.push(
                Finding::new("DF024", span, format!("{} `{k}` has a hard-coded value that is stored in the image", i.keyword))
                    .with_hint("pass secrets at build time with `RUN --mount=type=secret,id=...` and at run time through the environment or a secret store"),
            ),
            ("ARG", _) => out.push(
                Finding::new("DF024", span, format!("ARG `{k}` looks like a secret; build args are recorded in the image history"))
                    .with_severity(Severity::Warning)
                    .with_hint("use `RUN --mount=type=secret,id=...` instead of a build arg"),
            ),
            ("ENV", Some(v)) if v.starts_with('$') => out.push(
                Finding::new("DF024", span, format!("ENV `{k}` copies a build-time value into the image environment"))
                    .with_severity(Severity::Warning)
                    .with_hint("provide secrets at run time instead of baking them into ENV"),
            ),
            _ => {}
        }
    }
}

fn run(i: &Instruction, shell_ins: Option<&Instruction>, out: &mut Vec<Finding>) {
    let scripts = i.scripts();
    let cmds: Vec<Command> = scripts.iter().flat_map(|s| shell::commands(s)).collect();
    let whole = scripts.join("\n");
    let cache_mount = |path: &str| {
        i.flags.iter().any(|f| {
            f.name == "mount"
                && f.value
                    .as_deref()
                    .is_some_and(|v| v.contains("type=cache") && v.contains(path))
        })
    };
    let once =
        |rule: &'static str, needle: &str, msg: String, hint: &str, out: &mut Vec<Finding>| {
            if !out
                .iter()
                .any(|f| f.rule == rule && f.line >= i.line && f.line <= i.end_line)
            {
                out.push(Finding::new(rule, i.span_of(needle), msg).with_hint(hint.to_string()));
            }
        };
    for c in &cmds {
        let prog = c.program().unwrap_or("");
        if prog == "sudo" {
            once(
                "DF018",
                "sudo",
                "RUN uses sudo".into(),
                "drop sudo; use USER to change user",
                out,
            );
        }
        if prog == "cd" {
            once(
                "DF017",
                "cd ",
                "`cd` in RUN; later instructions do not see the change".into(),
                "use WORKDIR",
                out,
            );
        }
        if c.has_subcommand("apt", "install")
            || c.has_subcommand("apt", "upgrade")
            || c.has_subcommand("apt", "update")
        {
            once(
                "DF030",
                "apt ",
                "`apt` is for interactive use".into(),
                "use apt-get",
                out,
            );
        }
        if c.has_subcommand("apt-get", "upgrade") || c.has_subcommand("apt-get", "dist-upgrade") {
            once(
                "DF006",
                "upgrade",
                "apt-get upgrade in an image".into(),
                "rebuild on a newer base image instead",
                out,
            );
        }
        if c.has_subcommand("apt-get", "install") {
            if !c.has_flag("--no-install-recommends")
                && !c.words.iter().any(|w| {
                    w.contains("Install-Recommends=false") || w.contains("Install-Recommends=0")
                })
            {
                once(
                    "DF004",
                    "apt-get",
                    "apt-get install without --no-install-recommends".into(),
                    "add --no-install-recommends",
                    out,
                );
            }
            let unpinned: Vec<&str> = c
                .operands_after("install")
                .into_iter()
                .filter(|p| !p.contains('=') && !p.starts_with('$') && !p.ends_with(".deb"))
                .collect();
            if let Some(p) = unpinned.first() {
                once(
                    "DF003",
                    p,
                    format!("apt-get install `{p}` without a pinned version"),
                    "pin with `package=version`",
                    out,
                );
            }
        }
        if c.has_subcommand("apk", "add") {
            // `--no-network` installs from the local cache only, so no index is downloaded.
            if !c.has_flag("--no-cache")
                && !c.has_flag("--no-network")
                && !whole.contains("/var/cache/apk")
                && !cache_mount("/var/cache/apk")
            {
                once(
                    "DF007",
                    "apk",
                    "apk add without --no-cache".into(),
                    "use `apk add --no-cache`",
                    out,
                );
            }
            let unpinned: Vec<&str> = c
                .operands_after("add")
                .into_iter()
                .filter(|p| !p.contains('=') && !p.starts_with('$') && !p.starts_with('.'))
                .collect();
            if let Some(p) = unpinned.first() {
                once(
                    "DF008",
                    p,
                    format!("apk add `{p}` without a pinned version"),
                    "pin with `package=version`",
                    out,
                );
            }
        }
        let pip = ["pip", "pip3"]
            .iter()
            .any(|p| c.has_subcommand(p, "install"))
            || c.words
                .windows(3)
                .any(|w| w[0] == "-m" && w[1] == "pip" && w[2] == "install");
        if pip {
            if !c.has_flag("--no-cache-dir")
                && !cache_mount(".cache/pip")
                && !whole.contains("PIP_NO_CACHE_DIR")
            {
                once(
                    "DF009",
                    "install",
                    "pip install without --no-cache-dir".into(),
                    "add --no-cache-dir",
                    out,
                );
            }
            let has_req = c.has_flag("-r")
                || c.has_flag("--requirement")
                || c.has_flag("-c")
                || c.has_flag("--constraint")
                || c.has_flag("-e");
            let unpinned: Vec<&str> = c
                .operands_after("install")
                .into_iter()
                .filter(|p| {
                    !(p.contains("==")
                        || p.contains(">=")
                        || p.contains("~=")
                        || p.contains('@')
                        || p.contains('/')
                        || p.starts_with('.')
                        || p.starts_with('$')
                        || p.ends_with(".whl")
                        || p.ends_with(".tar.gz")
                        || p.contains('<'))
                })
                .collect();
            if !has_req && let Some(p) = unpinned.first() {
                once(
                    "DF010",
                    p,
                    format!("pip install `{p}` without a pinned version"),
                    "pin with `package==version` or use a requirements/lock file",
                    out,
                );
            }
        }
        if c.has_subcommand("npm", "install") || c.has_subcommand("npm", "i") {
            let sub = if c.words.iter().any(|w| w == "install") {
                "install"
            } else {
                "i"
            };
            let unpinned: Vec<&str> = c
                .operands_after(sub)
                .into_iter()
                .filter(|p| {
                    let name = p.strip_prefix('@').unwrap_or(p);
                    !name.contains('@')
                        && !p.contains('/')
                        && !p.starts_with('.')
                        && !p.starts_with('$')
                        && !p.ends_with(".tgz")
                })
                .collect();
            if let Some(p) = unpinned.first() {
                once(
                    "DF011",
                    p,
                    format!("npm install `{p}` without a pinned version"),
                    "pin with `package@version`",
                    out,
                );
            }
        }
        if c.has_subcommand("gem", "install")
            && !c.has_flag("-v")
            && !c.has_flag("--version")
            && let Some(p) = c
                .operands_after("install")
                .into_iter()
                .find(|p| !p.contains(':') && !p.starts_with('$'))
        {
            once(
                "DF012",
                p,
                format!("gem install `{p}` without a pinned version"),
                "pin with `gem install <name> -v <version>`",
                out,
            );
        }
        for pm in ["dnf", "yum", "microdnf"] {
            if c.has_subcommand(pm, "install") {
                if !c.has_flag("-y") && !c.has_flag("--assumeyes") && pm != "microdnf" {
                    once(
                        "DF013",
                        pm,
                        format!("{pm} install without -y"),
                        "add -y",
                        out,
                    );
                }
                if !whole.contains("clean all")
                    && !whole.contains("/var/cache/yum")
                    && !whole.contains("/var/cache/dnf")
                    && !cache_mount("/var/cache")
                {
                    once(
                        "DF013",
                        pm,
                        format!("{pm} install without `{pm} clean all` in the same RUN"),
                        "add `&& {pm} clean all`",
                        out,
                    );
                }
            }
        }
    }
    // The package lists are written by `apt-get update`; they must go in the same layer.
    let apt_update = cmds.iter().any(|c| c.has_subcommand("apt-get", "update"));
    if apt_update && !whole.contains("/var/lib/apt/lists") && !cache_mount("/var/lib/apt") {
        once(
            "DF005",
            "update",
            "apt-get update without removing /var/lib/apt/lists in the same RUN".into(),
            "end the RUN with `&& rm -rf /var/lib/apt/lists/*`",
            out,
        );
    }
    // Pipes hide failures of all but the last command unless pipefail is set.
    if matches!(i.args, Args::Shell(_)) && scripts.iter().any(|s| shell::has_pipe(s)) {
        let shell_sets = shell_ins.is_some_and(
            |s| matches!(&s.args, Args::Json(v) if v.iter().any(|a| a.contains("pipefail"))),
        );
        let script_sets = whole.contains("pipefail");
        if !shell_sets && !script_sets {
            out.push(Finding::new("DF019", i.span_of("|"), "a pipe in RUN without pipefail: a failing command before `|` is ignored")
                .with_hint("add `SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]` before this RUN, or start the command with `set -o pipefail &&`"));
        }
    }
}

fn final_image(df: &Dockerfile, g: &Graph, out: &mut Vec<Finding>) {
    let chain = g.target_chain();
    let Some(&target) = chain.first() else { return };
    let ins = &df.instructions;
    let body_of = |s: usize| ins[g.stages[s].body.clone()].iter();
    // Last USER: the target stage first, then what it inherits.
    let last_user = chain
        .iter()
        .find_map(|&s| body_of(s).rev().find(|i| i.keyword == "USER"));
    if let Some(u) = last_user {
        let who = u.args_text();
        let name = who.split(':').next().unwrap_or("").trim();
        if name == "root" || name == "0" {
            out.push(
                Finding::new("DF002", u.span(), "the final image runs as root")
                    .with_hint("create an unprivileged user and switch to it with USER"),
            );
        }
    }
    let has = |kw: &str| chain.iter().any(|&s| body_of(s).any(|i| i.keyword == kw));
    let from = &ins[g.stages[target].from];
    let exposes = has("EXPOSE");
    if exposes && !has("HEALTHCHECK") {
        out.push(
            Finding::new("DF023", from.span(), "the final stage exposes a port but has no HEALTHCHECK")
                .with_hint("add `HEALTHCHECK CMD [\"/app\", \"healthcheck\"]` (or `ferry healthcheck URL` for images without curl)"),
        );
    }
    let last_cmd = chain.iter().find_map(|&s| {
        body_of(s)
            .rev()
            .find(|i| i.keyword == "CMD" || i.keyword == "ENTRYPOINT")
    });
    if let Some(c) = last_cmd {
        let t = c.args_text().to_ascii_lowercase();
        const DEV: &[(&str, &str)] = &[
            ("npm run dev", "npm run dev"),
            ("yarn dev", "yarn dev"),
            ("pnpm dev", "pnpm dev"),
            ("runserver", "Django runserver"),
            ("flask run", "flask run"),
            ("nodemon", "nodemon"),
            ("ng serve", "ng serve"),
            ("webpack-dev-server", "webpack-dev-server"),
            ("webpack serve", "webpack serve"),
            ("next dev", "next dev"),
            ("react-scripts start", "react-scripts start"),
            ("--reload", "auto-reload"),
            ("php artisan serve", "artisan serve"),
            ("dotnet watch", "dotnet watch"),
            ("vite dev", "vite dev"),
            ("rails server", "rails server"),
        ];
        let words_t: Vec<&str> = t.split_whitespace().collect();
        let hit = DEV
            .iter()
            .find(|(n, _)| t.contains(n))
            .map(|(_, d)| *d)
            .or_else(|| {
                (words_t.first() == Some(&"vite")
                    || words_t.windows(3).any(|w| w == ["npm", "run", "start:dev"]))
                .then_some("vite dev server")
            });
        if let Some(what) = hit {
            out.push(
                Finding::new("DF026", c.span(), format!("the image starts a development server ({what})"))
                    .with_hint("build the app and run the production server; keep dev servers in a separate `dev` stage"),
            );
        }
    }
}
