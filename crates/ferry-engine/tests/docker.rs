//! Integration tests against the real Docker engine (test names contain `docker`, so
//! nextest runs them one at a time). Every test creates uniquely named images,
//! containers and networks and removes them, even when it fails.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ferry_engine::{
    BuildEvent, BuildRequest, ContainerSpec, Engine, EngineError, HealthSource, HealthWait,
    Healthcheck, HttpProbe, Identity, Publish, Restart, Secret, SecretMode, UnhealthyReason,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate lives two levels below the workspace root")
        .to_path_buf()
}

/// Builds the static hello binary into examples/hello/dist (fast when up to date).
fn hello_context() -> PathBuf {
    let root = workspace_root();
    let script = root.join("examples/hello/build-static.sh");
    let out = Command::new("sh")
        .arg(&script)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run examples/hello/build-static.sh");
    assert!(
        out.status.success(),
        "building the static hello binary failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root.join("examples/hello")
}

/// A name unique to this test run.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "ferry-test-{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

async fn engine() -> Engine {
    match Engine::connect().await {
        Ok(e) => e,
        Err(e) => panic!(
            "these tests need a running Docker engine (install docker.io and start dockerd): {e}"
        ),
    }
}

/// Removes what a test created through the docker CLI, also when the test panics.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let run = |args: &[&str], names: &[String]| {
            if !names.is_empty() {
                let _ = Command::new("docker").args(args).args(names).output();
            }
        };
        run(&["rm", "-f", "-v"], &self.containers);
        run(&["rmi", "-f"], &self.images);
        run(&["network", "rm"], &self.networks);
    }
}

fn identity(app: &str) -> Identity {
    Identity {
        app: app.to_owned(),
        env: "test".to_owned(),
        role: "web".to_owned(),
        revision: "1".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

async fn build_hello(
    engine: &Engine,
    tag: &str,
    label: &str,
) -> (ferry_engine::BuildReport, Vec<BuildEvent>) {
    let req = BuildRequest {
        context: hello_context(),
        dockerfile: PathBuf::from("Dockerfile"),
        tags: vec![tag.to_owned()],
        labels: BTreeMap::from([
            ("ferry.test".to_owned(), label.to_owned()),
            (
                "org.opencontainers.image.revision".to_owned(),
                "test".to_owned(),
            ),
        ]),
        ..Default::default()
    };
    let mut events = Vec::new();
    let report = engine
        .build(&req, |e| events.push(e))
        .await
        .expect("hello image builds");
    (report, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hello_builds_from_scratch_runs_hardened_and_serves() {
    let engine = engine().await;
    assert!(!engine.server_version().await.unwrap().is_empty());
    let api: Vec<u32> = engine
        .api_version()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(api >= vec![1, 41], "negotiated API {api:?}");
    let app = unique("hello");
    let tag = format!("{app}:v1");
    let mut cleanup = Cleanup::default();
    cleanup.images.push(tag.clone());

    let (report, events) = build_hello(&engine, &tag, &app).await;
    assert!(report.image_id.starts_with("sha256:"), "{report:?}");
    assert!(report.steps_total >= 5, "{report:?}");
    assert!(
        report.layers >= 1 && report.size_bytes > 500_000,
        "{report:?}"
    );
    assert_eq!(
        report.context_files, 3,
        ".dockerignore keeps the context to Dockerfile, .dockerignore and dist/hello"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BuildEvent::Step { n: 1, .. }))
    );

    // The same build again reuses every step.
    let (again, _) = build_hello(&engine, &tag, &app).await;
    assert_eq!(again.steps_cached, again.steps_total, "{again:?}");
    assert_eq!(again.image_id, report.image_id);

    let info = engine.inspect_image(&tag).await.unwrap();
    assert_eq!(info.labels["ferry.test"], app);
    assert!(info.has_healthcheck);
    assert_eq!(info.user, "65532:65532");
    assert_eq!(
        engine
            .list_images(&[("ferry.test", &app)])
            .await
            .unwrap()
            .len(),
        1
    );

    let secrets = tempfile::tempdir().unwrap();
    let network = format!("{app}-net");
    let name = format!("{app}-web-1");
    cleanup.containers.push(name.clone());
    cleanup.networks.push(network.clone());
    let mut spec = ContainerSpec::new(&name, &tag, identity(&app));
    spec.env.insert("VERSION".into(), "v-test-1".into());
    spec.secrets
        .push(Secret::new("API_TOKEN", "s3cr3t-value-for-test"));
    spec.secret_mode = SecretMode::Files {
        dir: secrets.path().to_path_buf(),
    };
    spec.publish = Some(Publish::loopback(8080));
    spec.network = Some(network.clone());
    spec.aliases = vec!["web".into()];
    spec.resources.memory_bytes = 64 * 1024 * 1024;
    spec.resources.nano_cpus = 500_000_000;
    spec.resources.pids = 64;
    spec.stop_timeout = Duration::from_secs(5);
    let running = engine.run(&spec).await.expect("container starts");
    assert_eq!(running.user, "65532:65532");
    assert!(running.network_ip.is_some());
    let addr = running.host_addr.expect("published port");
    assert!(addr.ip().is_loopback());

    let wait = HealthWait {
        timeout: Duration::from_secs(60),
        probe: None,
    };
    let source = engine.wait_healthy(&name, &wait).await.expect("healthy");
    assert_eq!(source, HealthSource::DockerHealthcheck);

    let body = http_get(addr, "/").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("version v-test-1"), "{body}");
    // The service (user 65532) can read its secret file: `/` lists readable secret names.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut json = String::new();
    s.read_to_string(&mut json).await.unwrap();
    assert!(json.contains(r#""secrets":["API_TOKEN"]"#), "{json}");

    // What `docker inspect` shows: hardened, limited, labelled, no secret value.
    let inspect = engine
        .docker()
        .inspect_container(
            &name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    let hc = inspect.host_config.clone().unwrap();
    assert_eq!(hc.readonly_rootfs, Some(true));
    assert_eq!(hc.cap_drop, Some(vec!["ALL".to_owned()]));
    assert!(
        hc.security_opt
            .unwrap()
            .contains(&"no-new-privileges".to_owned())
    );
    assert_eq!(hc.memory, Some(64 * 1024 * 1024));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.pids_limit, Some(64));
    assert!(hc.tmpfs.unwrap().contains_key("/tmp"));
    let config = inspect.config.clone().unwrap();
    assert_eq!(config.user.as_deref(), Some("65532:65532"));
    assert_eq!(config.labels.as_ref().unwrap()["ferry.app"], app);
    let dump = serde_json::to_string(&inspect).unwrap();
    assert!(
        !dump.contains("s3cr3t-value-for-test"),
        "secret value in docker inspect"
    );
    assert!(dump.contains("/run/secrets/API_TOKEN"));

    // The secret file on the host: 0600, owned by the container user.
    let secret_file = secrets.path().join(&name).join("API_TOKEN");
    let meta = std::fs::metadata(&secret_file).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), 65532);

    let listed = engine
        .list_containers(&[("ferry.app", &app)])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, name);

    // SIGTERM: hello drains and exits 0.
    engine.stop(&name, spec.stop_timeout).await.unwrap();
    let state = engine
        .docker()
        .inspect_container(
            &name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(state.exit_code, Some(0), "graceful stop exits 0");
    let logs: Vec<String> = engine
        .logs(&name, false, None)
        .filter_map(|l| async move { l.ok().map(|l| l.text) })
        .collect()
        .await;
    assert!(logs.concat().contains("draining"), "{logs:?}");

    engine.remove(&name, false).await.unwrap();
    assert!(
        !secret_file.exists(),
        "secret files are removed with the container"
    );
    engine.remove_network(&network).await.unwrap();
    let removed = engine
        .remove_images(&[("ferry.test", &app)], true)
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
}

fn write_context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_build_failure_reports_the_failing_step_and_output() {
    let engine = engine().await;
    let tag = format!("{}:x", unique("fail"));
    let _cleanup = Cleanup {
        images: vec![tag.clone()],
        containers: Vec::new(),
        networks: Vec::new(),
    };
    let ctx = write_context(&[
        (
            "Dockerfile",
            "FROM scratch\nCOPY a.txt /a.txt\nRUN /does-not-exist\n",
        ),
        ("a.txt", "a"),
    ]);
    let req = BuildRequest {
        context: ctx.path().to_path_buf(),
        tags: vec![tag],
        ..Default::default()
    };
    let mut events = Vec::new();
    let err = engine.build(&req, |e| events.push(e)).await.unwrap_err();
    let EngineError::BuildFailed(failure) = err else {
        panic!("expected a build failure, got {err:?}");
    };
    assert_eq!(failure.step, Some(3), "{failure:?}");
    assert_eq!(failure.steps_total, Some(3));
    assert_eq!(failure.instruction.as_deref(), Some("RUN /does-not-exist"));
    assert!(!failure.message.is_empty());
    assert!(failure.to_string().contains("step 3/3"), "{failure}");
    assert_eq!(failure.intermediate_images.len(), 1, "{failure:?}");
    for id in &failure.intermediate_images {
        engine.remove_image(id, true).await.unwrap();
    }
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BuildEvent::Failed { step: Some(3), .. })),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_build_uses_args_and_stops_at_the_target_stage() {
    let engine = engine().await;
    let tag = format!("{}:x", unique("target"));
    let _cleanup = Cleanup {
        images: vec![tag.clone()],
        containers: Vec::new(),
        networks: Vec::new(),
    };
    // Stage `app` needs the ARG (an empty source is an error); stage `broken` would fail.
    let ctx = write_context(&[
        (
            "Dockerfile",
            "FROM scratch AS app\nARG SRC\nCOPY ${SRC} /x\n\nFROM scratch AS broken\nCOPY missing.txt /y\n",
        ),
        ("a.txt", "a"),
    ]);
    let req = BuildRequest {
        context: ctx.path().to_path_buf(),
        tags: vec![tag.clone()],
        build_args: BTreeMap::from([("SRC".to_owned(), "a.txt".to_owned())]),
        target: Some("app".to_owned()),
        ..Default::default()
    };
    let report = engine
        .build(&req, |_| {})
        .await
        .expect("target stage builds");
    assert_eq!(report.layers, 1, "{report:?}");
    // Without the target, the broken stage fails the build at its step.
    let req = BuildRequest {
        target: None,
        ..req
    };
    let err = engine.build(&req, |_| {}).await.unwrap_err();
    let EngineError::BuildFailed(failure) = err else {
        panic!("expected a build failure, got {err:?}");
    };
    assert_eq!(failure.instruction.as_deref(), Some("COPY missing.txt /y"));
    engine.remove_image(&tag, true).await.unwrap();
    for id in &failure.intermediate_images {
        let _ = engine.remove_image(id, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_build_honours_dockerignore() {
    let engine = engine().await;
    let name = unique("ignore");
    let tag = format!("{name}:x");
    let container = format!("{name}-c");
    let _cleanup = Cleanup {
        images: vec![tag.clone()],
        containers: vec![container.clone()],
        networks: Vec::new(),
    };
    let ctx = write_context(&[
        ("Dockerfile", "FROM scratch\nCOPY . /ctx/\n"),
        (".dockerignore", "*.txt\n!keep.txt\n"),
        ("keep.txt", "kept"),
        ("secret.txt", "must not reach the image"),
        ("notes.txt", "excluded"),
    ]);
    let req = BuildRequest {
        context: ctx.path().to_path_buf(),
        tags: vec![tag.clone()],
        ..Default::default()
    };
    let report = engine.build(&req, |_| {}).await.expect("build");
    assert_eq!(report.context_files, 3, "{report:?}");

    // Read the image's /ctx through a created (never started) container.
    engine
        .docker()
        .create_container(
            Some(bollard::query_parameters::CreateContainerOptions {
                name: Some(container.clone()),
                platform: String::new(),
            }),
            bollard::models::ContainerCreateBody {
                image: Some(tag.clone()),
                cmd: Some(vec!["none".to_owned()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = engine
        .docker()
        .download_from_container(
            &container,
            Some(bollard::query_parameters::DownloadFromContainerOptions {
                path: "/ctx".to_owned(),
            }),
        )
        .map(|c| c.unwrap())
        .collect()
        .await;
    let tar_bytes: Vec<u8> = chunks.concat();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .filter(|p| !p.ends_with('/'))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ctx/.dockerignore", "ctx/Dockerfile", "ctx/keep.txt"]
    );
    engine.remove(&container, true).await.unwrap();
    engine.remove_image(&tag, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_refuses_root_and_explains_unhealthy_and_crashed_containers() {
    let engine = engine().await;
    let app = unique("unhealthy");
    let tag = format!("{app}:v1");
    let mut cleanup = Cleanup::default();
    cleanup.images.push(tag.clone());
    build_hello(&engine, &tag, &app).await;

    // Root is refused before anything is created.
    let mut root = ContainerSpec::new(format!("{app}-root"), &tag, identity(&app));
    root.user = Some("0".into());
    let err = engine.run(&root).await.unwrap_err();
    assert!(matches!(err, EngineError::RootRefused { .. }), "{err:?}");
    assert!(
        engine
            .list_containers(&[("ferry.app", &app)])
            .await
            .unwrap()
            .is_empty()
    );

    // HEALTH=fail: the image's HEALTHCHECK turns unhealthy, with its output as evidence.
    let sick = format!("{app}-sick");
    cleanup.containers.push(sick.clone());
    let mut spec = ContainerSpec::new(&sick, &tag, identity(&app));
    spec.env.insert("HEALTH".into(), "fail".into());
    spec.restart = Restart::No;
    // Faster than the image's own timing, so the test stays short.
    spec.healthcheck = Some(Healthcheck {
        test: None,
        interval: Duration::from_millis(300),
        timeout: Duration::from_secs(3),
        retries: 2,
        start_period: Duration::from_millis(1),
    });
    engine.run(&spec).await.unwrap();
    let wait = HealthWait {
        timeout: Duration::from_secs(60),
        probe: None,
    };
    let EngineError::Unhealthy(report) = engine.wait_healthy(&sick, &wait).await.unwrap_err()
    else {
        panic!("expected unhealthy");
    };
    assert!(
        matches!(report.reason, UnhealthyReason::HealthcheckFailed { .. }),
        "{report:?}"
    );
    assert!(
        report.health_output.iter().any(|l| l.contains("503")),
        "{report:?}"
    );

    // CRASH_AFTER_S=0: the exit code and the container's last words are reported.
    let crash = format!("{app}-crash");
    cleanup.containers.push(crash.clone());
    let mut spec = ContainerSpec::new(&crash, &tag, identity(&app));
    spec.env.insert("CRASH_AFTER_S".into(), "0".into());
    spec.restart = Restart::No;
    engine.run(&spec).await.unwrap();
    let EngineError::Unhealthy(report) = engine.wait_healthy(&crash, &wait).await.unwrap_err()
    else {
        panic!("expected an exit");
    };
    assert_eq!(
        report.reason,
        UnhealthyReason::Exited {
            exit_code: 1,
            oom_killed: false
        }
    );
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.contains("crashing on purpose")),
        "{report:?}"
    );

    // ALLOC_MB above the memory limit: the kernel kills it, and the report says so.
    let oom = format!("{app}-oom");
    cleanup.containers.push(oom.clone());
    let mut spec = ContainerSpec::new(&oom, &tag, identity(&app));
    spec.env.insert("ALLOC_MB".into(), "128".into());
    spec.resources.memory_bytes = 32 * 1024 * 1024;
    spec.restart = Restart::No;
    engine.run(&spec).await.unwrap();
    let EngineError::Unhealthy(report) = engine.wait_healthy(&oom, &wait).await.unwrap_err() else {
        panic!("expected an OOM kill");
    };
    assert!(
        matches!(
            report.reason,
            UnhealthyReason::Exited {
                oom_killed: true,
                ..
            }
        ),
        "{report:?}"
    );
    assert!(report.to_string().contains("memory limit"), "{report}");

    for c in [&sick, &crash, &oom] {
        engine.remove(c, true).await.unwrap();
    }
    engine.remove_image(&tag, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_http_probe_is_used_when_the_image_has_no_healthcheck() {
    let engine = engine().await;
    let app = unique("probe");
    let tag = format!("{app}:v1");
    let name = format!("{app}-web");
    let _cleanup = Cleanup {
        images: vec![tag.clone()],
        containers: vec![name.clone()],
        networks: Vec::new(),
    };
    let hello = hello_context().join("dist/hello");
    let ctx = write_context(&[(
        "Dockerfile",
        "FROM scratch\nCOPY hello /hello\nUSER 65532:65532\nENTRYPOINT [\"/hello\"]\n",
    )]);
    std::fs::copy(&hello, ctx.path().join("hello")).unwrap();
    let req = BuildRequest {
        context: ctx.path().to_path_buf(),
        tags: vec![tag.clone()],
        ..Default::default()
    };
    engine.build(&req, |_| {}).await.unwrap();
    assert!(!engine.inspect_image(&tag).await.unwrap().has_healthcheck);

    let mut spec = ContainerSpec::new(&name, &tag, identity(&app));
    spec.env.insert("READY_DELAY_MS".into(), "1500".into());
    spec.publish = Some(Publish::loopback(8080));
    spec.restart = Restart::No;
    let running = engine.run(&spec).await.unwrap();
    let mut probe = HttpProbe::new(running.host_addr.unwrap(), "/health/ready");
    probe.interval = Duration::from_millis(200);
    probe.healthy_threshold = 2;
    let wait = HealthWait {
        timeout: Duration::from_secs(30),
        probe: Some(probe),
    };
    assert_eq!(
        engine.wait_healthy(&name, &wait).await.unwrap(),
        HealthSource::HttpProbe
    );
    // Healthy means ready: the endpoint answers 200 now.
    assert!(
        http_get(running.host_addr.unwrap(), "/health/ready")
            .await
            .starts_with("HTTP/1.1 200")
    );
    // A followed log stream delivers output as it happens and ends when the container stops.
    let follower = {
        let engine = engine.clone();
        let name = name.clone();
        tokio::spawn(async move {
            engine
                .logs(&name, true, None)
                .filter_map(|l| async move { l.ok().map(|l| l.text) })
                .collect::<Vec<String>>()
                .await
        })
    };
    engine.stop(&name, Duration::from_secs(5)).await.unwrap();
    let followed = tokio::time::timeout(Duration::from_secs(20), follower)
        .await
        .expect("the followed log stream ends when the container stops")
        .unwrap()
        .concat();
    assert!(followed.contains("listening"), "{followed:?}");
    assert!(followed.contains("hello: stopped"), "{followed:?}");
    engine.remove(&name, false).await.unwrap();
    engine.remove_image(&tag, true).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_engine_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("unix://{}/docker.sock", dir.path().display());
    let err = Engine::connect_to(&endpoint).await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains(&endpoint), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_one_off_containers_report_exit_code_and_output() {
    let engine = engine().await;
    let app = unique("oneoff");
    let tag = format!("{app}:v1");
    let mut cleanup = Cleanup::default();
    cleanup.images.push(tag.clone());
    build_hello(&engine, &tag, &app).await;

    // `hello healthcheck` against a port where nothing listens: exit 1, reason on stderr.
    let name = format!("{app}-hook");
    cleanup.containers.push(name.clone());
    let mut spec = ContainerSpec::new(&name, &tag, identity(&app));
    spec.command = Some(vec!["healthcheck".into(), "http://127.0.0.1:9/x".into()]);
    let done = engine
        .run_once(&spec, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.exit_code, 1, "{done:?}");
    assert!(
        done.output.iter().any(|l| l.contains("request failed")),
        "{done:?}"
    );
    assert!(
        matches!(
            engine.status(&name).await,
            Err(EngineError::NotFound { .. })
        ),
        "a one-off container is removed"
    );

    // Events: a container of this app that exits is reported with its exit code.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 1;
    let crash = format!("{app}-crash");
    cleanup.containers.push(crash.clone());
    let mut spec = ContainerSpec::new(&crash, &tag, identity(&app));
    spec.env.insert("CRASH_AFTER_S".into(), "0.2".into());
    spec.restart = Restart::No;
    engine.run(&spec).await.unwrap();
    // Subscribed after the fact: `since` replays what already happened.
    let mut events = Box::pin(engine.container_events(&[("ferry.app", &app)], Some(since)));
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        let mut seen = Vec::new();
        while let Some(ev) = events.next().await {
            let ev = ev.unwrap();
            if ev.name != crash {
                continue;
            }
            let done = matches!(ev.kind, ferry_engine::ContainerEventKind::Die { .. });
            seen.push(ev);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .expect("a die event within 30 s");
    assert_eq!(
        seen.last().unwrap().kind,
        ferry_engine::ContainerEventKind::Die { exit_code: Some(1) }
    );
    assert!(
        seen.iter()
            .any(|e| e.kind == ferry_engine::ContainerEventKind::Start),
        "{seen:?}"
    );
    engine.remove(&crash, true).await.unwrap();

    // A long-running one is stopped at its timeout.
    let mut spec = ContainerSpec::new(&name, &tag, identity(&app));
    spec.stop_timeout = Duration::from_secs(5);
    let err = engine
        .run_once(&spec, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::OneOffTimeout { .. }), "{err:?}");
    assert!(matches!(
        engine.status(&name).await,
        Err(EngineError::NotFound { .. })
    ));

    // status() of a running container: running, published address, labels.
    let web = format!("{app}-web");
    cleanup.containers.push(web.clone());
    let mut spec = ContainerSpec::new(&web, &tag, identity(&app));
    spec.publish = Some(Publish::loopback(8080));
    let running = engine.run(&spec).await.unwrap();
    let status = engine.status(&web).await.unwrap();
    assert!(status.running, "{status:?}");
    assert_eq!(status.published.get("8080/tcp"), running.host_addr.as_ref());
    assert_eq!(status.labels["ferry.role"], "web");
    assert_eq!(status.restart_count, 0);
    engine
        .stop_and_remove(&web, Duration::from_secs(5))
        .await
        .unwrap();
    engine.remove_image(&tag, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_prune_keeps_the_newest_protected_and_in_use_images() {
    let engine = engine().await;
    let app = unique("prune");
    let mut cleanup = Cleanup::default();
    let mut ids = Vec::new();
    for i in 0..4 {
        if i == 3 {
            // Image times have one-second resolution: make r3 strictly the newest.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let tag = format!("{app}:r{i}");
        cleanup.images.push(tag.clone());
        let ctx = write_context(&[
            ("Dockerfile", "FROM scratch\nCOPY f /f\n"),
            ("f", &format!("revision {i}")),
        ]);
        let req = BuildRequest {
            context: ctx.path().to_path_buf(),
            tags: vec![tag],
            labels: BTreeMap::from([("dev.ferry.app".to_owned(), app.clone())]),
            ..Default::default()
        };
        ids.push(engine.build(&req, |_| {}).await.unwrap().image_id);
    }
    // r0 is protected (say, the warm previous revision); r1 is used by a container.
    let user = format!("{app}-user");
    cleanup.containers.push(user.clone());
    engine
        .docker()
        .create_container(
            Some(bollard::query_parameters::CreateContainerOptions {
                name: Some(user.clone()),
                platform: String::new(),
            }),
            bollard::models::ContainerCreateBody {
                image: Some(ids[1].clone()),
                cmd: Some(vec!["none".to_owned()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let removed = engine
        .prune_images(&[("dev.ferry.app", &app)], 1, std::slice::from_ref(&ids[0]))
        .await
        .unwrap();
    let left: Vec<String> = engine
        .list_images(&[("dev.ferry.app", &app)])
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(left.len() + removed.len(), 4, "{left:?} {removed:?}");
    assert!(left.contains(&ids[0]), "protected image pruned");
    assert!(left.contains(&ids[1]), "image in use pruned");
    assert!(left.contains(&ids[3]), "the newest image pruned");
    assert_eq!(removed, [ids[2].clone()]);
    engine.remove(&user, true).await.unwrap();
    engine
        .remove_images(&[("dev.ferry.app", &app)], true)
        .await
        .unwrap();
}
