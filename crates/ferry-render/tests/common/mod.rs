//! Shared helpers of the integration tests: the demo spec in two environments, writing a
//! rendered tree to disk, and running the real validators (with a clear message naming the
//! package to install when one is missing — never a silent skip).

#![allow(dead_code, reason = "each test binary uses a subset of the helpers")]

use std::path::Path;
use std::process::{Command, Output};

use ferry_render::{RenderOptions, Rendered, Target, render};
use ferry_spec::Spec;

/// The demo spec (tests/fixtures/hello.toml).
pub fn hello() -> Spec {
    let text = include_str!("../fixtures/hello.toml");
    toml::from_str(text).expect("the demo spec deserialises")
}

/// The demo spec resolved for an environment: production runs more replicas (web and
/// workers) and logs less.
pub fn hello_for(env: &str) -> Spec {
    let mut spec = hello();
    if env == "production" {
        spec.web.as_mut().expect("web").replicas = 3;
        spec.env
            .insert("LOG_LEVEL".parse().expect("name"), "warn".to_owned());
        spec.autoscale.as_mut().expect("autoscale").min_replicas = 3;
        for worker in spec.workers.values_mut() {
            worker.replicas = 2;
        }
    }
    spec
}

/// The options the snapshots use: a pinned image and a cert-manager issuer.
pub fn options() -> RenderOptions {
    RenderOptions {
        image: Some("registry.example.com/hello:3f2a1c9".to_owned()),
        cert_manager_issuer: Some("letsencrypt".to_owned()),
        ..RenderOptions::default()
    }
}

/// Renders the demo spec for `env`.
pub fn rendered(target: Target, env: &str) -> Rendered {
    render(target, &hello_for(env), Some(env), &options()).expect("the demo spec renders")
}

/// Writes the files under `dir`.
pub fn write(dir: &Path, rendered: &Rendered) {
    for (path, content) in &rendered.files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
    }
}

/// All files as one text, for a snapshot.
pub fn tree(rendered: &Rendered) -> String {
    let mut out = String::new();
    for (path, content) in &rendered.files {
        out.push_str(&format!("=== {}\n{content}", path.display()));
    }
    if !rendered.notes.is_empty() {
        out.push_str("=== notes\n");
        for n in &rendered.notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out
}

/// Runs a validator; fails the test naming the package when the tool is not installed.
pub fn tool(program: &str, args: &[&str], package: &str) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install {package} (see xtask/deps)")
        })
}

/// Runs a validator and asserts it succeeded, showing its output otherwise.
pub fn tool_ok(program: &str, args: &[&str], package: &str) -> String {
    let out = tool(program, args, package);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}
