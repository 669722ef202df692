//! The compose target against the real tools: `docker-compose config -q` and
//! check-jsonschema's built-in compose-spec schema accept the file for both environments.

mod common;

use common::{rendered, tool_ok, tree, write};
use ferry_render::Target;

#[test]
fn compose_file_passes_docker_compose_config_and_the_compose_schema() {
    for env in ["staging", "production"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = rendered(Target::Compose, env);
        write(dir.path(), &r);
        let file = dir.path().join(format!("compose.{env}.yaml"));
        let file = file.to_str().expect("utf-8");
        // The secrets come from the deploying environment; give them dummy values here.
        let out = std::process::Command::new("docker-compose")
            .args(["-f", file, "config", "-q"])
            .env("DATABASE_URL", "x")
            .env("SESSION_KEY", "x")
            .env("POSTGRES_PASSWORD", "x")
            .output()
            .expect("docker-compose (Debian package docker-compose) is installed");
        assert!(
            out.status.success(),
            "docker-compose config rejected {env}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tool_ok(
            "check-jsonschema",
            &["--builtin-schema", "vendor.compose-spec", file],
            "the PyPI package check-jsonschema",
        );
    }
}

#[test]
fn compose_refuses_to_start_without_the_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &rendered(Target::Compose, "staging"));
    let out = std::process::Command::new("docker-compose")
        .args([
            "-f",
            dir.path()
                .join("compose.staging.yaml")
                .to_str()
                .expect("utf-8"),
            "config",
            "-q",
        ])
        .env_remove("DATABASE_URL")
        .env_remove("SESSION_KEY")
        .env_remove("POSTGRES_PASSWORD")
        .output()
        .expect("docker-compose (Debian package docker-compose) is installed");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_snapshot_production() {
    insta::assert_snapshot!(tree(&rendered(Target::Compose, "production")));
}
