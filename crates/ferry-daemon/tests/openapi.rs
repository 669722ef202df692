//! docs/openapi.json against the validator and against the running daemon's router.
//!
//! The router is probed from outside (api.rs stays untouched): every documented
//! (method, path) must be served, every other method on those paths must be refused with
//! 405, and paths the document does not name must be 404. Real answers are validated
//! against the document's component schemas.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_daemon::{Config, Started};
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

fn document() -> Value {
    let text = std::fs::read_to_string(document_path()).expect("docs/openapi.json reads");
    serde_json::from_str(&text).expect("docs/openapi.json is JSON")
}

/// Runs a PyPI tool from xtask/deps/pypi.txt; a missing tool fails with what to install.
fn run_tool(program: &str, args: &[&Path]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): `pip install` it (listed in xtask/deps/pypi.txt)")
        })
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

#[test]
fn openapi_document_passes_the_openapi_validator() {
    let out = run_tool("openapi-spec-validator", &[&document_path()]);
    assert!(
        out.status.success(),
        "openapi-spec-validator rejects docs/openapi.json:\n{}{}",
        tail(&out.stdout),
        tail(&out.stderr)
    );
    assert_eq!(document()["openapi"], "3.1.0");
}

/// One (method, concrete path) per documented operation, with whether it needs the token
/// and the status codes it documents.
struct Operation {
    method: String,
    path: String,
    protected: bool,
    statuses: Vec<u16>,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let global = doc["security"].as_array().is_some_and(|s| !s.is_empty());
    let mut ops = Vec::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let path = template
            .replace("{app}", "demo")
            .replace("{env}", "prod")
            .replace("{number}", "1");
        assert!(!path.contains('{'), "unexpected parameter in {template}");
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let protected = match op.get("security") {
                Some(s) => s.as_array().is_some_and(|s| !s.is_empty()),
                None => global,
            };
            let statuses = op["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .map(|k| k.parse().expect("numeric status"))
                .collect();
            ops.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                protected,
                statuses,
            });
        }
    }
    ops
}

/// Starts the real daemon (Docker engine, SQLite store in `state`) on loopback port 0.
fn start_daemon(state: &Path) -> (SocketAddr, String) {
    let (tx, rx) = std::sync::mpsc::channel::<Result<Started, String>>();
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        api: "127.0.0.1:0".parse().expect("addr"),
        state_dir: state.to_owned(),
        store: None,
        takeover: false,
        webhook_ca: None,
    };
    // The daemon runs until the test process exits.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let ready = tx.clone();
        let result = runtime.block_on(ferry_daemon::serve(config, move |s| {
            let _ = ready.send(Ok(s.clone()));
        }));
        let _ = tx.send(Err(format!("the daemon stopped: {result:?}")));
    });
    let started = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the daemon starts within 15 s")
        .unwrap_or_else(|e| panic!("{e} (the test needs a running Docker engine)"));
    let token = std::fs::read_to_string(&started.token_file).expect("token file");
    (started.api, token.trim().to_owned())
}

/// One HTTP/1.1 request without a body; returns the status and the body.
fn request(api: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(api).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read the answer");
    let answer = String::from_utf8(answer).expect("UTF-8 answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[test]
fn docker_router_serves_exactly_the_documented_operations() {
    let doc = document();
    let ops = operations(&doc);
    assert!(!ops.is_empty(), "the document names no operations");
    let state = tempfile::tempdir().expect("temp dir");
    let (api, token) = start_daemon(state.path());

    for op in &ops {
        let (status, body) = request(api, &op.method, &op.path, None);
        if op.protected {
            assert_eq!(status, 401, "{} {} without a token", op.method, op.path);
            let error: Value = serde_json::from_str(&body).expect("401 body is JSON");
            assert!(error["error"].is_string(), "401 body {body}");
        } else {
            assert_ne!(
                status, 401,
                "{} {} is documented as public",
                op.method, op.path
            );
        }
        let (status, body) = request(api, &op.method, &op.path, Some(&token));
        // A documented 404 (say an unknown revision) comes from the handler, with a JSON
        // error; the router's own 404 for an unserved path has an empty body.
        let handler_404 = status == 404
            && op.statuses.contains(&404)
            && serde_json::from_str::<Value>(&body).is_ok_and(|b| b["error"].is_string());
        assert!(
            handler_404 || (status != 404 && status != 405),
            "{} {} is documented but the router answers {status} {body}",
            op.method,
            op.path
        );
        assert!(
            op.statuses.contains(&status),
            "{} {} answers {status} ({body}), not among its documented statuses {:?}",
            op.method,
            op.path,
            op.statuses
        );
    }

    // Every other method on a documented path is not served.
    let mut paths: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
    paths.dedup();
    for path in paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if ops.iter().any(|o| o.path == path && o.method == method) {
                continue;
            }
            let (status, _) = request(api, method, path, Some(&token));
            assert_eq!(status, 405, "{method} {path} is served but not documented");
        }
    }

    // Paths the document does not name are not served: 404, or 405 where the router's
    // `POST /v1/apps/{app}/{env}/{action}` matches the shape (its handler answers 404 for
    // an action it does not know).
    // Candidates are every word an endpoint is or might be named, so an operation left
    // out of the document (say `pause`) fails here.
    let words = [
        "health",
        "deploy",
        "status",
        "revisions",
        "promote",
        "pause",
        "resume",
        "abort",
        "rollback",
        "logs",
        "lock",
        "history",
        "secrets",
        "frobnicate",
    ];
    let mut candidates = vec![
        ("GET".to_owned(), "/v1/apps".to_owned()),
        ("GET".to_owned(), "/v1/apps/demo/prod".to_owned()),
        ("GET".to_owned(), "/v2/health".to_owned()),
        ("GET".to_owned(), "/health".to_owned()),
    ];
    for word in words {
        for method in ["GET", "POST"] {
            candidates.push((method.to_owned(), format!("/v1/{word}")));
            candidates.push((method.to_owned(), format!("/v1/apps/demo/prod/{word}")));
        }
    }
    for (method, path) in &candidates {
        if ops.iter().any(|o| &o.path == path && &o.method == method) {
            continue;
        }
        let (status, body) = request(api, method, path, Some(&token));
        assert!(
            status == 404 || status == 405,
            "{method} {path} is not documented but answers {status}: {body}"
        );
    }
}

/// Validates `instance` against a component schema of the document with check-jsonschema.
fn validate(doc: &Value, schema: &str, instance: &Value, dir: &Path) -> Result<(), String> {
    let wrapper = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "$ref": format!("#/components/schemas/{schema}"),
    });
    let schema_file = dir.join(format!("{schema}.schema.json"));
    let instance_file = dir.join(format!("{schema}.instance.json"));
    std::fs::write(&schema_file, wrapper.to_string()).expect("write schema");
    std::fs::write(&instance_file, instance.to_string()).expect("write instance");
    let out = run_tool(
        "check-jsonschema",
        &[Path::new("--schemafile"), &schema_file, &instance_file],
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", tail(&out.stdout), tail(&out.stderr)))
    }
}

/// The schema of the 200 answer of a documented operation, by component name.
fn ok_schema(doc: &Value, path: &str, method: &str) -> String {
    let reference = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]
        ["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path} documents a 200 JSON answer by $ref"));
    reference
        .strip_prefix("#/components/schemas/")
        .expect("a component schema")
        .to_owned()
}

#[test]
fn docker_answers_match_the_documented_schemas() {
    let doc = document();
    let state = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
    let (api, token) = start_daemon(state.path());

    let (status, body) = request(api, "GET", "/v1/health", Some(&token));
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).expect("health is JSON");
    assert_eq!(health["message"], "ok");
    let schema = ok_schema(&doc, "/v1/health", "get");
    validate(&doc, &schema, &health, work.path())
        .unwrap_or_else(|e| panic!("health answer {body} against {schema}: {e}"));

    let (status, body) = request(api, "GET", "/v1/apps/nobody/prod/status", Some(&token));
    assert_eq!(status, 200, "{body}");
    let app_status: Value = serde_json::from_str(&body).expect("status is JSON");
    assert_eq!(app_status["stable"], Value::Null);
    let schema = ok_schema(&doc, "/v1/apps/{app}/{env}/status", "get");
    validate(&doc, &schema, &app_status, work.path())
        .unwrap_or_else(|e| panic!("status answer {body} against {schema}: {e}"));

    // An unknown revision is a documented 404 whose message says what exists.
    let (status, body) = request(api, "GET", "/v1/apps/nobody/prod/revisions/7", Some(&token));
    assert_eq!(status, 404, "{body}");
    let error: Value = serde_json::from_str(&body).expect("404 body is JSON");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("no revision 7") && e.contains("no revisions yet")),
        "{body}"
    );
    validate(&doc, "ErrorBody", &error, work.path())
        .unwrap_or_else(|e| panic!("404 answer {body} against ErrorBody: {e}"));

    // The check can fail: the same answer without a required field is rejected.
    let mut broken = app_status.clone();
    broken.as_object_mut().expect("object").remove("urls");
    assert!(
        validate(&doc, &schema, &broken, work.path()).is_err(),
        "a status without urls passes {schema}"
    );

    // The long poll: with nothing changing it answers once `wait` has passed, with the
    // same version; a query it does not understand is a documented 400.
    let version = app_status["version"].as_u64().expect("a version");
    let asked = std::time::Instant::now();
    let (status, body) = request(
        api,
        "GET",
        &format!("/v1/apps/nobody/prod/status?since={version}&wait=1"),
        Some(&token),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        asked.elapsed() >= Duration::from_millis(900),
        "the long poll answered before anything changed"
    );
    let polled: Value = serde_json::from_str(&body).expect("status is JSON");
    assert_eq!(polled["version"], version);
    validate(&doc, &schema, &polled, work.path())
        .unwrap_or_else(|e| panic!("long-poll answer {body} against {schema}: {e}"));
    let (status, body) = request(
        api,
        "GET",
        "/v1/apps/nobody/prod/status?since=soon",
        Some(&token),
    );
    assert_eq!(status, 400, "{body}");
    let documented = doc["paths"]["/v1/apps/{app}/{env}/status"]["get"]["responses"]
        .as_object()
        .expect("responses");
    assert!(documented.contains_key("400"), "the 400 is not documented");

    let (status, body) = request(api, "GET", "/v1/health", None);
    assert_eq!(status, 401);
    let error: Value = serde_json::from_str(&body).expect("401 is JSON");
    validate(&doc, "ErrorBody", &error, work.path())
        .unwrap_or_else(|e| panic!("401 answer {body} against ErrorBody: {e}"));
}
