//! The command line grammar: global options and every subcommand (clap derive).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The version line: crate version plus the git commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FERRY_GIT_SHA"), ")");

/// ferry ships containerized services to production safely.
#[derive(Debug, Parser)]
#[command(name = "ferry", version = VERSION, propagate_version = true)]
#[command(about = "Ship containerized services to production safely")]
#[command(
    after_help = "Exit codes: 0 ok, 1 the operation failed, 2 usage or configuration \
error, 3 the Docker engine or the ferry daemon is unreachable."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct Global {
    /// Output format: human text, or JSON for machines.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "FERRY_OUTPUT",
        default_value = "human"
    )]
    pub output: OutputFormat,
    /// When to use colors.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "FERRY_COLOR",
        default_value = "auto"
    )]
    pub color: ColorChoice,
    /// Print only errors.
    #[arg(short, long, global = true, env = "FERRY_QUIET")]
    pub quiet: bool,
    /// More diagnostics on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Environment whose overrides apply (e.g. staging, production).
    #[arg(long = "env", global = true, env = "FERRY_ENV", value_name = "NAME")]
    pub env: Option<String>,
    /// Path of ferry.toml (default: found upward from the current directory).
    #[arg(long, global = true, env = "FERRY_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a ferry.toml (and a hardened Dockerfile when there is none).
    Init(InitArgs),
    /// Validate, show or describe ferry.toml.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Lint ferry.toml, Dockerfiles, compose files, Kubernetes YAML and secrets.
    Check(CheckArgs),
    /// Build the image through the Docker engine.
    Build(BuildArgs),
    /// List recorded builds.
    Builds(BuildsArgs),
    /// Build the image and run it, hardened and healthy, on the local engine.
    Run(RunArgs),
    /// Stop and remove the containers `ferry run` started.
    Down,
    /// Render Kubernetes, Argo CD, compose, monitoring, CI or ECS files from ferry.toml.
    Render(RenderArgs),
    /// Show the output of the app's containers (all replicas, or one revision's).
    Logs(LogsArgs),
    /// Inspect or release the deploy lock of the app and environment.
    #[command(subcommand)]
    Lock(LockCommand),
    /// Set, list or remove the app's secrets for the environment (values are encrypted).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Run the reverse proxy in the foreground.
    Proxy(ProxyArgs),
    /// Run the ferry daemon in the foreground: proxy, rollout controller, store and API.
    ///
    /// `ferry serve stop [--remove-containers]` stops the one of the state directory.
    Serve(ServeArgs),
    /// Build the image and roll it out through the daemon (`ferry serve`).
    Deploy(DeployArgs),
    /// Show URLs, stable and canary revisions, weights and the rollout's current step.
    ///
    /// `--watch` keeps showing it live until Ctrl-C (or `--timeout`).
    Status(StatusArgs),
    /// List the app's revisions, newest first; `--rev N` shows one in full.
    ///
    /// `--rev N`: image, digest, spec hash, git SHA, who, when, outcome and reason, each
    /// rollout's timeline and its analysis verdicts in plain words.
    History(HistoryArgs),
    /// End the current pause or analysis of the running rollout (--full: promote now).
    Promote(PromoteArgs),
    /// Hold the running rollout where it is.
    Pause(PromoteArgs),
    /// Resume a paused rollout.
    Resume(PromoteArgs),
    /// Abort the running rollout: traffic back to stable, new replicas removed.
    Abort(PromoteArgs),
    /// Roll back: the running rollout to stable, or (none running) to an earlier revision.
    ///
    /// Waits until it is done, with live progress (`--detach` returns at once).
    Rollback(PromoteArgs),
    /// Probe an HTTP URL; exit 0 on a 2xx answer (a HEALTHCHECK for scratch images).
    Healthcheck(HealthcheckArgs),
    /// Print shell completions.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to initialise (default: the current directory).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// App name (default: the directory name).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check ferry.toml and report every problem with file:line:col.
    Validate {
        /// Treat production-policy warnings as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Print the merged spec for an environment (secret names only, never values).
    Show,
    /// Print the JSON schema of ferry.toml.
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Human,
    Json,
    Sarif,
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum FailOn {
    Info,
    Warning,
    Error,
    Never,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or directories (default: the project directory).
    pub paths: Vec<PathBuf>,
    /// Report format (default: follows --output).
    #[arg(long, value_enum)]
    pub format: Option<CheckFormat>,
    /// Lowest severity that makes the command exit 1.
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: FailOn,
    /// Dockerfile build argument, KEY=VALUE (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Dockerfile target stage.
    #[arg(long)]
    pub target: Option<String>,
    /// Explain a rule (id or name) with an example, instead of checking.
    #[arg(long, value_name = "RULE")]
    pub explain: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Extra tag for the image (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Skip the pre-build hooks.
    #[arg(long)]
    pub no_hooks: bool,
}

#[derive(Debug, Args)]
pub struct BuildsArgs {
    /// How many builds to list.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Host port to publish the web port on (default: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderTarget {
    K8s,
    Argocd,
    Compose,
    Prometheus,
    Grafana,
    GithubActions,
    GitlabCi,
    Ecs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RolloutsChoice {
    /// Argo Rollouts for canary and blue-green strategies, Deployments otherwise.
    Argo,
    /// Always plain Deployments (rolling update).
    None,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// What to render.
    #[arg(value_enum)]
    pub target: RenderTarget,
    /// Write the files under this directory (default: print them).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The image to deploy (default: the spec's image, else `<app>:unreleased`).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Kubernetes namespace (default: `<app>`, `<app>-<env>` per overlay).
    #[arg(long)]
    pub namespace: Option<String>,
    /// How canary/blue-green strategies render on Kubernetes.
    #[arg(long, value_enum, default_value = "argo")]
    pub rollouts: RolloutsChoice,
    /// cert-manager ClusterIssuer for the Ingress.
    #[arg(long, value_name = "ISSUER")]
    pub cert_issuer: Option<String>,
    /// Update the environment's overlay in this GitOps repository (k8s only; needs --env).
    #[arg(long, value_name = "REPO_DIR")]
    pub gitops: Option<PathBuf>,
    /// With --gitops: commit the change.
    #[arg(long, requires = "gitops")]
    pub commit: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the containers of this revision.
    #[arg(long, value_name = "N")]
    pub rev: Option<String>,
    /// Lines of past output per container.
    #[arg(long, default_value_t = 100)]
    pub tail: usize,
    /// Role (web, or a worker's name).
    #[arg(long, default_value = "web")]
    pub role: String,
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Who holds the deploy lock, why, and until when.
    Status(LockArgs),
    /// Release the lock whoever holds it (after a crashed deploy).
    Release(LockArgs),
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The daemon's store (default: `<state>/state.db`, the daemon's SQLite file).
    #[arg(long, value_name = "LOCATION")]
    pub store: Option<String>,
    /// The daemon's state directory (default: .ferry/daemon beside ferry.toml).
    #[arg(long, env = "FERRY_STATE_DIR", value_name = "DIR")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Set a secret; the value is read from stdin (never from the command line).
    Set(SecretSetArgs),
    /// List the secrets' names and when each was set (never their values).
    List(SecretStoreArgs),
    /// Remove a secret.
    Rm(SecretRmArgs),
}

#[derive(Debug, Args)]
pub struct SecretStoreArgs {
    /// The daemon's store (default: `<state>/state.db`, the daemon's SQLite file).
    #[arg(long, value_name = "LOCATION")]
    pub store: Option<String>,
    /// The daemon's state directory, holding the key file `secret.key`
    /// (default: .ferry/daemon beside ferry.toml).
    #[arg(long, env = "FERRY_STATE_DIR", value_name = "DIR")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// The secret's name, as listed in ferry.toml's `secrets` (e.g. DB_PASSWORD).
    pub name: String,
    /// Read the value from this environment variable instead of stdin.
    #[arg(long, value_name = "VAR")]
    pub from_env: Option<String>,
    #[command(flatten)]
    pub store: SecretStoreArgs,
}

#[derive(Debug, Args)]
pub struct SecretRmArgs {
    /// The secret's name.
    pub name: String,
    #[command(flatten)]
    pub store: SecretStoreArgs,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Routes file (TOML; see docs/proxy.md).
    #[arg(long, value_name = "FILE", conflicts_with = "to")]
    pub routes: Option<PathBuf>,
    /// Listen address for the quick mode.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Quick mode: upstreams, as ADDR or REVISION@WEIGHT=ADDR[,ADDR...] (repeatable),
    /// e.g. `--to v1@90=127.0.0.1:9001 --to v2@10=127.0.0.1:9002`.
    #[arg(long, value_name = "TARGET")]
    pub to: Vec<String>,
    /// Handover socket: a later `ferry proxy --takeover` with the same path takes the
    /// listening sockets over from this process without losing a connection.
    #[arg(long, value_name = "PATH")]
    pub handover: Option<PathBuf>,
    /// Take the listening sockets and the routing table over from the proxy running with
    /// the same --handover path; it stops accepting, finishes its requests and exits.
    #[arg(long, requires = "handover")]
    pub takeover: bool,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// URL to probe, e.g. http://127.0.0.1:8080/health
    pub url: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

/// How to reach the daemon (`ferry serve`).
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The daemon's API address (default: the one it wrote into its state directory,
    /// else 127.0.0.1:7878).
    #[arg(long, env = "FERRY_API", value_name = "ADDR")]
    pub api: Option<String>,
    /// The daemon's state directory (default: .ferry/daemon beside ferry.toml); the
    /// token is read from `<DIR>/token` unless FERRY_TOKEN is set.
    #[arg(long, env = "FERRY_STATE_DIR", value_name = "DIR")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show this revision in full (its rollouts' timelines and analysis verdicts).
    #[arg(long, value_name = "N")]
    pub rev: Option<i64>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Keep showing the status live: refreshed in place on a terminal, one line per
    /// change when piped, NDJSON events with --output json; ends on Ctrl-C.
    #[arg(short, long)]
    pub watch: bool,
    /// With --watch: stop after this long (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", requires = "watch", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// `30s`, `5m`, `1h30m` (ferry.toml's duration syntax).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<ferry_spec::Duration>()
        .map(|d| d.as_std())
        .map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Stop the daemon of this state directory (SIGTERM: requests in flight finish,
    /// containers keep running unless --remove-containers).
    Stop(StopArgs),
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The daemon's state directory (default: .ferry/daemon beside ferry.toml).
    #[arg(long, env = "FERRY_STATE_DIR", value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Also stop and remove the containers (and networks) this daemon started.
    #[arg(long)]
    pub remove_containers: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// The proxy's HTTP listener.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The API's listener (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub api: SocketAddr,
    /// State directory: token, API address and the SQLite store (default:
    /// .ferry/daemon beside ferry.toml).
    #[arg(long, env = "FERRY_STATE_DIR", value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Store location instead of `<state>/state.db` (a path or a postgres:// URL).
    #[arg(long, value_name = "LOCATION")]
    pub store: Option<String>,
    /// Take over from the daemon running with this state directory (its proxy and API
    /// listening sockets and its routing table, through `<state>/handover.sock`): it
    /// stops accepting, finishes its requests and exits, and no request is lost.
    #[arg(long)]
    pub takeover: bool,
    /// PEM file of CA certificates trusted for https:// webhooks, besides the public roots.
    #[arg(long, env = "FERRY_WEBHOOK_CA", value_name = "FILE")]
    pub webhook_ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Deploy this image (already on the engine) instead of building.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Return once the daemon accepted the rollout, without following it.
    #[arg(long)]
    pub detach: bool,
    /// When no daemon answers, start one for this project in the background
    /// (`ferry serve`, log in `<state>/daemon.log`) and deploy through it.
    #[arg(long, env = "FERRY_START_DAEMON")]
    pub start_daemon: bool,
    /// With --start-daemon: the started daemon's proxy listener.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub daemon_listen: SocketAddr,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// promote only: skip every remaining step.
    #[arg(long)]
    pub full: bool,
    /// rollback only: the revision to return to (default: the last good one).
    #[arg(long, value_name = "REV")]
    pub to: Option<i64>,
    /// rollback: return once the daemon accepted it, without following it.
    #[arg(long, conflicts_with = "wait")]
    pub detach: bool,
    /// promote, resume, pause, abort: follow the rollout live until it ends.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}
