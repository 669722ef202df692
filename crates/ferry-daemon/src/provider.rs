//! Analysis providers beyond the proxy's own statistics: PromQL queries against a
//! Prometheus server, and checks (a command, an HTTP call) whose outcome decides alone.
//!
//! Design note. Every measurement, the proxy's per-revision deltas give both arms'
//! requests, errors and latencies; this module adds to the same `Observation` the value
//! of each `query` metric for each arm (`/api/v1/query`, `{{revision}}` rendered once per
//! arm) and the outcome of each check run against the new revision. What a provider
//! cannot deliver (Prometheus down, an empty vector, a NaN) is left out, so the judge
//! holds ("no value: holding") instead of failing or passing; the reason goes to the
//! rollout's timeline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferry_analysis::prometheus::{
    QueryVars, parse_query_response, promql_duration, render_for_arms,
};
use ferry_analysis::{CheckRun, Observation};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::controller::Shared;

/// The default time a command check may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The default time an HTTP check (or a Prometheus query) may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many trailing output lines a command check's verdict quotes.
const TAIL_LINES: usize = 5;
/// The longest output tail quoted, in characters.
const TAIL_CHARS: usize = 400;

/// The providers one analysis needs besides the proxy.
#[derive(Clone, Debug, Default)]
pub(crate) struct Providers {
    /// The Prometheus base URL, when the analysis has `query` metrics.
    prometheus: Option<String>,
    /// `query` metrics: (name, PromQL template).
    queries: Vec<(String, String)>,
    /// Checks, by name.
    checks: Vec<(String, Check)>,
}

/// A check run against the new revision.
#[derive(Clone, Debug)]
pub(crate) enum Check {
    /// A command: in a one-off container of the new revision's image, or on this host.
    Command {
        argv: Vec<String>,
        local: bool,
        timeout: Duration,
    },
    /// An HTTP call to a URL, or to a path on a replica of the new revision.
    Http {
        url: String,
        method: http::Method,
        body: Option<String>,
        status: u16,
        body_contains: Option<String>,
        timeout: Duration,
    },
}

/// What the providers need to know about the rollout being judged.
pub(crate) struct Target<'a> {
    pub app: &'a str,
    pub env: &'a str,
    pub canary: &'a str,
    pub stable: Option<&'a str>,
    pub interval: Duration,
    /// The new revision's image (command checks run in it).
    pub image: &'a str,
    pub spec: &'a ferry_spec::Spec,
    /// A healthy replica of the new revision: its container name and published address.
    pub replica: Option<(String, SocketAddr)>,
}

impl Providers {
    /// The providers of `[analysis.<name>]`; an error names what ferry serve cannot run.
    pub(crate) fn new(name: &str, spec: &ferry_spec::Analysis) -> Result<Self, String> {
        let mut providers = Self::default();
        for metric in &spec.metrics {
            match metric.kind {
                ferry_spec::MetricKind::Query => {
                    let Some(prometheus) = spec
                        .prometheus
                        .as_ref()
                        .filter(|_| spec.provider == ferry_spec::Provider::Prometheus)
                    else {
                        return Err(format!(
                            "analysis {name}: metric {} is a \"query\" metric, which needs \
                             provider = \"prometheus\" and a prometheus.url",
                            metric.name
                        ));
                    };
                    if !prometheus.url.starts_with("http://") {
                        return Err(format!(
                            "analysis {name}: prometheus.url {} is not an http:// URL; ferry \
                             serve queries Prometheus over plain HTTP (put it on loopback or \
                             a private network)",
                            prometheus.url
                        ));
                    }
                    let template = metric.query.clone().unwrap_or_default();
                    // Placeholders are checked now, so a typo fails the deploy, not the
                    // analysis.
                    let probe = QueryVars {
                        app: "app",
                        revision: "r1",
                        stable: "r0",
                        env: "env",
                        interval: "30s",
                    };
                    render_for_arms(&template, &probe).map_err(|e| {
                        format!("analysis {name}: the query of metric {}: {e}", metric.name)
                    })?;
                    providers.prometheus = Some(prometheus.url.trim_end_matches('/').to_owned());
                    providers.queries.push((metric.name.clone(), template));
                }
                ferry_spec::MetricKind::Command => {
                    let argv = metric.command.clone().unwrap_or_default();
                    if argv.is_empty() {
                        return Err(format!(
                            "analysis {name}: check {} has no command",
                            metric.name
                        ));
                    }
                    providers.checks.push((
                        metric.name.clone(),
                        Check::Command {
                            argv,
                            local: metric.local,
                            timeout: metric.timeout.map_or(COMMAND_TIMEOUT, |t| t.as_std()),
                        },
                    ));
                }
                ferry_spec::MetricKind::Http => {
                    let url = metric.url.clone().unwrap_or_default();
                    if !(url.starts_with('/') || url.starts_with("http://")) {
                        return Err(format!(
                            "analysis {name}: check {} url {url:?} is neither a path nor an \
                             http:// URL",
                            metric.name
                        ));
                    }
                    let method = match metric.method.unwrap_or_default() {
                        ferry_spec::CheckMethod::Get => http::Method::GET,
                        ferry_spec::CheckMethod::Post => http::Method::POST,
                    };
                    providers.checks.push((
                        metric.name.clone(),
                        Check::Http {
                            url,
                            method,
                            body: metric.body.clone(),
                            status: metric.status.unwrap_or(200),
                            body_contains: metric.body_contains.clone(),
                            timeout: metric.timeout.map_or(HTTP_TIMEOUT, |t| t.as_std()),
                        },
                    ));
                }
                _ => {}
            }
        }
        Ok(providers)
    }

    /// Whether there is anything to add to the proxy's statistics.
    pub(crate) fn is_empty(&self) -> bool {
        self.queries.is_empty() && self.checks.is_empty()
    }

    /// Adds the queries' values and the checks' outcomes to `observation`; returns notes
    /// for the timeline (what could not be measured, and why).
    pub(crate) async fn measure(
        &self,
        shared: &Arc<Shared>,
        target: &Target<'_>,
        observation: &mut Observation,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(base) = &self.prometheus {
            let interval = promql_duration(target.interval);
            let stable = target.stable.unwrap_or("");
            let vars = QueryVars {
                app: target.app,
                revision: target.canary,
                stable,
                env: target.env,
                interval: &interval,
            };
            for (name, template) in &self.queries {
                let queries = match render_for_arms(template, &vars) {
                    Ok(q) => q,
                    Err(e) => {
                        notes.push(format!("query {name}: {e}"));
                        continue;
                    }
                };
                match query(base, &queries.canary).await {
                    Ok(values) => {
                        observation.canary.custom.insert(name.clone(), values);
                    }
                    Err(e) => notes.push(format!("query {name} for the new revision: {e}")),
                }
                if target.stable.is_some() {
                    match query(base, &queries.stable).await {
                        Ok(values) => {
                            observation.stable.custom.insert(name.clone(), values);
                        }
                        Err(e) => notes.push(format!("query {name} for the stable revision: {e}")),
                    }
                }
            }
        }
        for (name, check) in &self.checks {
            let run = match check {
                Check::Command {
                    argv,
                    local: true,
                    timeout,
                } => local_command(argv, target, *timeout).await,
                Check::Command {
                    argv,
                    local: false,
                    timeout,
                } => container_command(shared, argv, target, *timeout).await,
                Check::Http {
                    url,
                    method,
                    body,
                    status,
                    body_contains,
                    timeout,
                } => {
                    let url = match (url.starts_with('/'), &target.replica) {
                        (false, _) => url.clone(),
                        (true, Some((_, addr))) => format!("http://{addr}{url}"),
                        (true, None) => {
                            notes.push(format!(
                                "check {name}: no healthy replica of revision {} to call",
                                target.canary
                            ));
                            continue;
                        }
                    };
                    http_check(
                        &url,
                        method,
                        body.as_deref(),
                        *status,
                        body_contains.as_deref(),
                        *timeout,
                    )
                    .await
                }
            };
            observation.canary.checks.insert(name.clone(), run);
        }
        notes
    }
}

/// Replaces `{{app}}`, `{{env}}`, `{{revision}}`, `{{stable}}` and `{{canary_url}}` in
/// a command's arguments (no shell is involved, so a value stays one argument).
fn fill(arg: &str, target: &Target<'_>, canary_url: &str) -> String {
    arg.replace("{{app}}", target.app)
        .replace("{{env}}", target.env)
        .replace("{{revision}}", target.canary)
        .replace("{{stable}}", target.stable.unwrap_or(""))
        .replace("{{canary_url}}", canary_url)
}

/// The variables every command check gets.
fn check_env(target: &Target<'_>, canary_url: &str) -> Vec<(String, String)> {
    vec![
        ("FERRY_APP".into(), target.app.into()),
        ("FERRY_ENV".into(), target.env.into()),
        ("FERRY_REVISION".into(), target.canary.into()),
        ("FERRY_STABLE".into(), target.stable.unwrap_or("").into()),
        ("FERRY_CANARY_URL".into(), canary_url.into()),
    ]
}

/// The last lines of `output`, short enough for a verdict line.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let text = lines[lines.len().saturating_sub(TAIL_LINES)..].join(" | ");
    let count = text.chars().count();
    if count > TAIL_CHARS {
        let skip = count - TAIL_CHARS;
        format!("…{}", text.chars().skip(skip).collect::<String>())
    } else {
        text
    }
}

fn exit_detail(code: Option<i64>, output: &str) -> CheckRun {
    let tail = tail(output);
    let output = if tail.is_empty() {
        "no output".to_owned()
    } else {
        format!("output: {tail}")
    };
    match code {
        Some(0) => CheckRun {
            passed: true,
            detail: format!("exit 0, {output}"),
        },
        Some(code) => CheckRun {
            passed: false,
            detail: format!("exit {code}, {output}"),
        },
        None => CheckRun {
            passed: false,
            detail: format!("killed by a signal, {output}"),
        },
    }
}

/// Runs a command on this host, in the daemon's working directory.
async fn local_command(argv: &[String], target: &Target<'_>, timeout: Duration) -> CheckRun {
    let canary_url = target
        .replica
        .as_ref()
        .map_or_else(String::new, |(_, addr)| format!("http://{addr}"));
    let argv: Vec<String> = argv.iter().map(|a| fill(a, target, &canary_url)).collect();
    let Some((program, args)) = argv.split_first() else {
        return CheckRun {
            passed: false,
            detail: "empty command".into(),
        };
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(check_env(target, &canary_url))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(timeout, command.output()).await {
        Err(_) => CheckRun {
            passed: false,
            detail: format!("{program} did not finish within {}", human(timeout)),
        },
        Ok(Err(e)) => CheckRun {
            passed: false,
            detail: format!("cannot run {program}: {e}"),
        },
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            exit_detail(out.status.code().map(i64::from), &text)
        }
    }
}

/// Runs a command in a one-off container of the new revision's image, on the app's
/// network (so `{{canary_url}}` reaches a replica by its container name), hardened and
/// configured like a replica, then removed.
async fn container_command(
    shared: &Arc<Shared>,
    argv: &[String],
    target: &Target<'_>,
    timeout: Duration,
) -> CheckRun {
    let port = target.spec.web.as_ref().map_or(8080, |w| w.port);
    let canary_url = target
        .replica
        .as_ref()
        .map_or_else(String::new, |(name, _)| format!("http://{name}:{port}"));
    let name = format!(
        "ferry-{}-{}-check-r{}-{}",
        target.app,
        target.env,
        target.canary,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let mut container = crate::replica::container_spec(
        &shared.daemon_id,
        &name,
        target.image,
        target.env,
        target.canary,
        target.spec,
    );
    container.identity.role = "check".to_owned();
    container.aliases.clear();
    container.publish = None;
    container.healthcheck = None;
    container.command = Some(argv.iter().map(|a| fill(a, target, &canary_url)).collect());
    container.env.extend(check_env(target, &canary_url));
    if let Err(e) = crate::secret::inject(shared, target.env, target.spec, &mut container).await {
        return CheckRun {
            passed: false,
            detail: format!("cannot give the check its secrets: {e}"),
        };
    }
    match shared.engine.run_once(&container, timeout).await {
        Ok(one) => exit_detail(Some(one.exit_code), &one.output.join("\n")),
        Err(ferry_engine::EngineError::OneOffTimeout { output, .. }) => CheckRun {
            passed: false,
            detail: format!(
                "did not finish within {}, output: {}",
                human(timeout),
                tail(&output.join("\n"))
            ),
        },
        Err(e) => CheckRun {
            passed: false,
            detail: format!("cannot run the check container: {e}"),
        },
    }
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// One HTTP call; the status and (a prefix of) the body.
async fn call(
    url: &str,
    method: &http::Method,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeout));
    let client: HyperClient<HttpConnector, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(connector);
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(url)
        .header(http::header::USER_AGENT, "ferry");
    if body.is_some() {
        request = request.header(
            http::header::CONTENT_TYPE,
            if url.contains("/api/v1/query") {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            },
        );
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .map_err(|e| format!("bad URL {url}: {e}"))?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| crate::controller::error_chain(&e))?;
        let status = response.status().as_u16();
        let bytes = http_body_util::Limited::new(response.into_body(), 4 * 1024 * 1024)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {}", human(timeout)))?
}

async fn http_check(
    url: &str,
    method: &http::Method,
    body: Option<&str>,
    status: u16,
    body_contains: Option<&str>,
    timeout: Duration,
) -> CheckRun {
    match call(url, method, body, timeout).await {
        Err(e) => CheckRun {
            passed: false,
            detail: format!("{method} {url} failed: {e}"),
        },
        Ok((got, _)) if got != status => CheckRun {
            passed: false,
            detail: format!("{method} {url} answered {got}, expected {status}"),
        },
        Ok((got, text)) => match body_contains {
            Some(needle) if !text.contains(needle) => CheckRun {
                passed: false,
                detail: format!("{method} {url} answered {got} without {needle:?} in the body"),
            },
            _ => CheckRun {
                passed: true,
                detail: format!("{method} {url} answered {got}"),
            },
        },
    }
}

/// Percent-encodes a form value (RFC 3986 unreserved characters stay as they are).
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs one instant query; the finite values of the result (empty: no data).
async fn query(base: &str, promql: &str) -> Result<Vec<f64>, String> {
    let url = format!("{base}/api/v1/query");
    let body = format!("query={}", form_encode(promql));
    let (status, text) = call(&url, &http::Method::POST, Some(&body), HTTP_TIMEOUT).await?;
    // Prometheus answers errors (400 bad_data, 422, 503) with a JSON body that says why.
    let parsed = parse_query_response(&text).map_err(|e| {
        if (200..300).contains(&status) {
            e.to_string()
        } else {
            format!("{url} answered {status}: {e}")
        }
    })?;
    Ok(parsed.samples().values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn spec() -> ferry_spec::Spec {
        let doc = ferry_spec::parse(&ferry_spec::SourceFile::new(
            "ferry.toml",
            "app = \"web\"\nimage = \"web:1\"\n[web]\n",
        ))
        .expect("parses");
        doc.resolve(None).expect("resolves")
    }

    fn target<'a>(spec: &'a ferry_spec::Spec, replica: Option<SocketAddr>) -> Target<'a> {
        Target {
            app: "web",
            env: "production",
            canary: "2",
            stable: Some("1"),
            interval: Duration::from_secs(5),
            image: "web:2",
            spec,
            replica: replica.map(|a| ("ferry-web-production-web-r2-1-1".to_owned(), a)),
        }
    }

    /// A real HTTP server on loopback answering every request with `status` and `body`;
    /// returns its address and the request lines it saw.
    async fn server(
        status: u16,
        body: &'static str,
    ) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                log.lock().unwrap().push(text);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn http_checks_pass_on_the_expected_status_and_body_and_fail_otherwise() {
        let (ok, seen) = server(200, "hello v2").await;
        let pass = http_check(
            &format!("http://{ok}/ready"),
            &http::Method::POST,
            Some("{}"),
            200,
            Some("v2"),
            HTTP_TIMEOUT,
        )
        .await;
        assert!(pass.passed, "{pass:?}");
        assert!(seen.lock().unwrap()[0].starts_with("POST /ready HTTP/1.1"));
        let missing = http_check(
            &format!("http://{ok}/"),
            &http::Method::GET,
            None,
            200,
            Some("v3"),
            HTTP_TIMEOUT,
        )
        .await;
        assert!(!missing.passed);
        assert!(missing.detail.contains("without \"v3\""), "{missing:?}");
        let (bad, _) = server(503, "down").await;
        let failed = http_check(
            &format!("http://{bad}/"),
            &http::Method::GET,
            None,
            200,
            None,
            HTTP_TIMEOUT,
        )
        .await;
        assert!(!failed.passed);
        assert!(
            failed.detail.contains("answered 503, expected 200"),
            "{failed:?}"
        );
        // Nothing listens here any more: a connection error fails the check.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let refused = http_check(
            &format!("http://{closed}/"),
            &http::Method::GET,
            None,
            200,
            None,
            Duration::from_secs(2),
        )
        .await;
        assert!(!refused.passed);
        assert!(refused.detail.contains("failed"), "{refused:?}");
    }

    #[tokio::test]
    async fn local_commands_pass_on_exit_0_and_fail_with_their_output_tail() {
        let spec = spec();
        let t = target(&spec, Some("127.0.0.1:9".parse().unwrap()));
        let pass = local_command(
            &[
                "sh".into(),
                "-c".into(),
                "echo checking $FERRY_REVISION against {{stable}}".into(),
            ],
            &t,
            COMMAND_TIMEOUT,
        )
        .await;
        assert!(pass.passed, "{pass:?}");
        assert_eq!(pass.detail, "exit 0, output: checking 2 against 1");
        let fail = local_command(
            &[
                "sh".into(),
                "-c".into(),
                "for i in 1 2 3 4 5 6 7; do echo line $i; done; echo boom >&2; exit 3".into(),
            ],
            &t,
            COMMAND_TIMEOUT,
        )
        .await;
        assert!(!fail.passed);
        assert_eq!(
            fail.detail,
            "exit 3, output: line 4 | line 5 | line 6 | line 7 | boom"
        );
        let slow = local_command(
            &["sleep".into(), "5".into()],
            &t,
            Duration::from_millis(300),
        )
        .await;
        assert!(!slow.passed);
        assert!(
            slow.detail.contains("did not finish within 300 ms"),
            "{slow:?}"
        );
        let missing =
            local_command(&["/nonexistent/ferry-check".into()], &t, COMMAND_TIMEOUT).await;
        assert!(!missing.passed);
        assert!(
            missing
                .detail
                .starts_with("cannot run /nonexistent/ferry-check"),
            "{missing:?}"
        );
    }

    #[test]
    fn queries_need_prometheus_over_http_and_known_placeholders() {
        let q = |provider: &str, url: &str, query: &str| -> ferry_spec::Analysis {
            serde_json::from_value(serde_json::json!({
                "provider": provider,
                "prometheus": { "url": url },
                "metrics": [{ "name": "q", "kind": "query", "query": query, "max": 1.0 }]
            }))
            .unwrap()
        };
        let ok = Providers::new(
            "a",
            &q(
                "prometheus",
                "http://127.0.0.1:9090/",
                "up{rev=\"{{revision}}\"}[{{interval}}]",
            ),
        )
        .unwrap();
        assert_eq!(ok.prometheus.as_deref(), Some("http://127.0.0.1:9090"));
        let proxy = Providers::new("a", &q("proxy", "http://127.0.0.1:9090", "up")).unwrap_err();
        assert!(proxy.contains("provider = \"prometheus\""), "{proxy}");
        let tls = Providers::new("a", &q("prometheus", "https://p:9090", "up")).unwrap_err();
        assert!(tls.contains("http://"), "{tls}");
        let typo = Providers::new(
            "a",
            &q("prometheus", "http://p:9090", "up{rev=\"{{rev}}\"}"),
        )
        .unwrap_err();
        assert!(typo.contains("unknown placeholder"), "{typo}");
    }

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(
            form_encode("sum(x{a=\"b c\"})/2&y"),
            "sum%28x%7Ba%3D%22b%20c%22%7D%29%2F2%26y"
        );
    }
}
