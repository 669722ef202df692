//! Starting and stopping the proxy: listeners, connections, graceful shutdown, and the shared state.
//!
//! Shutdown protocol: the accept loops stop first (no new connections), every
//! open connection is told to finish its in-flight request and close
//! (HTTP/1.1 `connection: close`, HTTP/2 GOAWAY), and `wait` returns when all
//! connections are gone or the shutdown deadline passes. After a socket handover
//! (see `handover`), idle HTTP/1.1 connections first get `timeouts.drain_idle` to send
//! their next request, which is answered with `connection: close`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::body::ProxyBody;
use crate::config::{ListenerConfig, ProxyConfig, RoutingConfig};
use crate::error::Error;
use crate::error_page::ErrorPages;
use crate::forward::{self, ConnInfo};
use crate::handle::ProxyHandle;
use crate::handover::{self, ListenerSockets, Takeover};
use crate::health;
use crate::route_table::{BackendSettings, Registry, RouteTable};

/// State shared by every connection and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub table: ArcSwap<RouteTable>,
    /// Bumped after every table swap: requests held while their service is in
    /// maintenance wait on it.
    pub table_swaps: watch::Sender<u64>,
    /// Bodies for proxy-generated responses, by status.
    pub error_pages: ErrorPages,
    /// Held while a new table is compiled and swapped, so updates never interleave.
    pub registry: Mutex<Registry>,
    pub settings: BackendSettings,
    pub upstream_timeout: Duration,
    pub max_body_bytes: u64,
    pub rate_limiter: Option<crate::rate_limit::RateLimiter>,
    pub security_headers: bool,
    pub state_file: Option<std::path::PathBuf>,
    /// What requests earned for retries (see `forward::RetryBudget`).
    pub retry_budget: crate::forward::RetryBudget,
    /// Requests in progress that are being retried.
    pub retrying: std::sync::atomic::AtomicU64,
    pub runtime: tokio::runtime::Handle,
    pub shutdown: watch::Sender<bool>,
    pub connections: AtomicUsize,
    pub connections_done: Notify,
    pub shutdown_timeout: Duration,
    /// Set once shutdown starts: HTTP/1.1 responses then carry `connection: close`.
    pub draining: AtomicBool,
    /// Set when the shutdown follows a handover: idle connections get `drain_idle`.
    pub handed_over: AtomicBool,
    pub drain_idle: Duration,
    /// The budget of a draining backend's long-lived streams (`timeouts.stream_drain`).
    pub stream_drain: Duration,
    /// Largest request head (`limits.max_header_bytes`; larger: 431).
    pub max_header_bytes: usize,
    /// Copies of the listening sockets, for a successor; emptied on shutdown.
    pub listeners: Mutex<Vec<(String, SocketAddr, Vec<std::net::TcpListener>)>>,
}

impl Shared {
    /// The state before any routing table is applied (the table is empty): what
    /// `start` serves from, and what the fuzz targets drive `h1::plan` with
    /// (`crate::fuzzing`), so both build it the same way.
    pub fn new(
        config: &ProxyConfig,
        settings: BackendSettings,
        error_pages: ErrorPages,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, Error> {
        let (shutdown, _) = watch::channel(false);
        Ok(Shared {
            table: ArcSwap::from_pointee(RouteTable::compile(
                RoutingConfig {
                    routes: Vec::new(),
                    services: Default::default(),
                },
                &mut Registry::default(),
                settings,
                false,
            )?),
            table_swaps: watch::channel(0).0,
            error_pages,
            registry: Mutex::new(Registry::default()),
            settings,
            upstream_timeout: config.timeouts.upstream_response.0,
            max_body_bytes: config.limits.max_body_bytes,
            rate_limiter: config
                .limits
                .rate_limit
                .as_ref()
                .and_then(crate::rate_limit::RateLimiter::new),
            security_headers: config.limits.security_headers,
            state_file: config.state_file.clone(),
            retry_budget: Default::default(),
            retrying: Default::default(),
            runtime,
            shutdown,
            connections: AtomicUsize::new(0),
            connections_done: Notify::new(),
            shutdown_timeout: config.timeouts.shutdown.0,
            draining: AtomicBool::new(false),
            handed_over: AtomicBool::new(false),
            drain_idle: config.timeouts.drain_idle.0,
            stream_drain: config.timeouts.stream_drain.0,
            max_header_bytes: config.limits.max_header_bytes,
            listeners: Mutex::new(Vec::new()),
        })
    }

    /// Validates, compiles and swaps in a new routing table; the live one stays on error.
    pub fn apply(&self, routing: RoutingConfig) -> Result<(), Error> {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Slow start applies to backends added to a running proxy, not to the first table.
        let ramp = !self.table.load().services.is_empty();
        let table = match RouteTable::compile(routing, &mut registry, self.settings, ramp) {
            Ok(t) => t,
            Err(e) => {
                let live = self.table.load_full();
                retain_referenced(&mut registry, &live, self.stream_drain);
                return Err(e);
            }
        };
        for service in &table.services {
            for pool in &service.pools {
                for b in &pool.backends {
                    *b.health.lock().unwrap_or_else(|e| e.into_inner()) =
                        service.config.health.clone();
                    health::ensure_task(b, &self.runtime);
                }
            }
        }
        retain_referenced(&mut registry, &table, self.stream_drain);
        if let Some(path) = &self.state_file {
            save_state(path, &table.config)?;
        }
        self.table.store(Arc::new(table));
        self.table_swaps.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

/// Saves the routing table: written to a temporary file, then renamed over the old one.
fn save_state(path: &std::path::Path, routing: &RoutingConfig) -> Result<(), Error> {
    let json =
        serde_json::to_vec_pretty(routing).map_err(|e| Error::Io(std::io::Error::other(e)))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| Error::State {
            path: path.to_owned(),
            source,
        })
}

/// The saved routing table, if the file exists.
fn load_state(path: &std::path::Path) -> Result<Option<RoutingConfig>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::InvalidTable(format!("saved table {} is not valid: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::State {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Drops backends and statistics the table no longer uses (their health tasks end).
/// A dropped backend drains: it takes no new request, and its long-lived streams
/// get `stream_drain` to end.
fn retain_referenced(registry: &mut Registry, table: &RouteTable, stream_drain: Duration) {
    let mut addrs = std::collections::HashSet::new();
    let mut revisions = std::collections::HashSet::new();
    for s in &table.services {
        for p in &s.pools {
            revisions.insert((s.name.clone(), p.revision.clone()));
            addrs.extend(p.backends.iter().map(|b| b.addr));
        }
    }
    let streams_end = tokio::time::Instant::now() + stream_drain;
    registry.backends.retain(|a, b| {
        let keep = addrs.contains(a);
        if !keep {
            b.set_draining(true);
            b.end_streams_at(streams_end);
            b.pool.clear();
        }
        keep
    });
    registry.stats.retain(|k, _| revisions.contains(k));
}

/// A started proxy: its handle and the task that ends after shutdown.
#[derive(Debug)]
pub struct RunningProxy {
    /// Controls the running proxy.
    pub handle: ProxyHandle,
    task: JoinHandle<()>,
}

impl RunningProxy {
    /// Waits until the proxy has shut down (after [`ProxyHandle::shutdown`]) and its
    /// connections have finished or the shutdown deadline has passed.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

impl Shared {
    /// Copies of the listening sockets, to offer a successor.
    pub fn listener_sockets(&self) -> Result<Vec<ListenerSockets>, Error> {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners
            .iter()
            .map(|(role, configured, sockets)| {
                ListenerSockets::of(role, *configured, &sockets.iter().collect::<Vec<_>>())
            })
            .collect()
    }

    /// Starts the shutdown: accept loops end, connections drain.
    pub fn begin_shutdown(&self, handed_over: bool) {
        if handed_over {
            self.handed_over.store(true, Ordering::Release);
        }
        self.draining.store(true, Ordering::Release);
        // Long-lived streams (WebSockets, event streams) end cleanly within their
        // budget — a Close 1001 tells a WebSocket client to reconnect, to the
        // successor after a handover — instead of being cut when the process exits.
        let deadline = tokio::time::Instant::now() + self.stream_drain.min(self.shutdown_timeout);
        for b in self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .backends
            .values()
        {
            b.end_streams_at(deadline);
        }
        // Our copies close; after a handover the successor's stay open.
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.shutdown.send_replace(true);
    }
}

/// Binds every listener, applies the routing table and starts serving.
pub async fn start(config: ProxyConfig) -> Result<RunningProxy, Error> {
    start_inner(config, None).await
}

/// Starts like [`start`], but on the listening sockets the running process handed over
/// (binding only the listeners it did not have) and with its routing table unless a
/// state file holds one. Call [`Takeover::ready`] afterwards so the old process drains.
pub async fn start_taking_over(
    config: ProxyConfig,
    takeover: &mut Takeover,
) -> Result<RunningProxy, Error> {
    start_inner(config, Some(takeover)).await
}

async fn start_inner(
    config: ProxyConfig,
    mut takeover: Option<&mut Takeover>,
) -> Result<RunningProxy, Error> {
    let settings = BackendSettings {
        connect_timeout: config.timeouts.connect.0,
        idle_timeout: config.timeouts.idle.0,
        threads: config.threads,
    };
    config.routing().validate()?;
    let error_pages = ErrorPages::load(&config.error_pages)?;
    let tls = if config.listeners.iter().any(|l| l.tls) {
        if config.certificates.is_empty() {
            return Err(Error::InvalidTable(
                "a tls listener needs at least one certificate".into(),
            ));
        }
        Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            &config.certificates,
        )?))
    } else {
        None
    };
    // Without threads, listeners run on the caller's runtime. With threads,
    // each listener is bound once per thread with SO_REUSEPORT and every thread
    // runs its own single-threaded runtime: a connection and its upstream
    // connections then live on one thread (no work stealing, no cross-thread
    // wake-ups), like nginx workers.
    let threads = config.threads;
    let mut listeners = Vec::new();
    let mut per_thread: Vec<Vec<(ListenerConfig, std::net::TcpListener)>> =
        (0..threads).map(|_| Vec::new()).collect();
    let mut addrs = Vec::new();
    let mut offered = Vec::new();
    for l in &config.listeners {
        let bind_err = |source| Error::Bind {
            addr: l.addr,
            source,
        };
        let inherited = takeover
            .as_deref_mut()
            .and_then(|t| t.take_listener(handover::ROLE_PROXY, l.addr))
            .transpose()?;
        let fresh = inherited.is_none();
        let sockets = match inherited {
            Some(sockets) => sockets,
            None if threads == 0 => vec![bind_listener(l.addr, false).map_err(bind_err)?],
            None => vec![bind_listener(l.addr, true).map_err(bind_err)?],
        };
        let local = sockets[0].local_addr().map_err(Error::Io)?;
        addrs.push(local);
        offered.push((
            handover::ROLE_PROXY.to_owned(),
            l.addr,
            sockets
                .iter()
                .map(std::net::TcpListener::try_clone)
                .collect::<Result<Vec<_>, _>>()
                .map_err(Error::Io)?,
        ));
        if threads == 0 {
            for socket in sockets {
                listeners.push((l.clone(), TcpListener::from_std(socket).map_err(Error::Io)?));
            }
        } else {
            // Inherited sockets are spread over the threads; a thread left without one
            // gets its own SO_REUSEPORT socket when the inherited ones allow it.
            let count = sockets.len();
            for (i, socket) in sockets.into_iter().enumerate() {
                per_thread[i % threads].push((l.clone(), socket));
            }
            for set in per_thread.iter_mut().skip(count) {
                match bind_listener(local, true) {
                    Ok(more) => {
                        // Offered to a successor too: a SO_REUSEPORT socket closed with
                        // connections in its accept queue resets them.
                        if let Some((_, _, offer)) = offered.last_mut() {
                            offer.push(more.try_clone().map_err(Error::Io)?);
                        }
                        set.push((l.clone(), more));
                    }
                    Err(e) if fresh => return Err(bind_err(e)),
                    Err(e) => tracing::debug!(error = %e, "one proxy thread fewer accepts"),
                }
            }
        }
    }
    let shared = Arc::new(Shared::new(
        &config,
        settings,
        error_pages,
        tokio::runtime::Handle::current(),
    )?);
    // Applying through `apply` starts the health tasks before any traffic is accepted.
    // A saved table wins, then the one a predecessor was serving, then the config's.
    let routing = match config.state_file.as_deref().map(load_state).transpose()? {
        Some(Some(saved)) => saved,
        _ => match takeover.as_deref_mut().and_then(Takeover::take_routing) {
            Some(live) => live,
            None => config.routing(),
        },
    };
    shared.apply(routing)?;

    let http1 = {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(config.timeouts.header_read.0)
            .max_buf_size(config.limits.max_header_bytes.max(8192))
            .keep_alive(true);
        b
    };
    let http2 = {
        let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new());
        b
    };
    let proto = Arc::new(Protocols {
        http1,
        http2,
        tls,
        header_timeout: config.timeouts.header_read.0,
        max_header_bytes: config.limits.max_header_bytes,
    });

    let mut accept_tasks = Vec::new();
    for (cfg, listener) in listeners {
        accept_tasks.push(tokio::spawn(accept_loop(
            Arc::clone(&shared),
            Arc::clone(&proto),
            cfg,
            listener,
        )));
    }
    let mut thread_done = Vec::new();
    for (i, set) in per_thread.into_iter().enumerate() {
        let (shared, proto) = (Arc::clone(&shared), Arc::clone(&proto));
        let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
        thread_done.push(done_rx);
        std::thread::Builder::new()
            .name(format!("ferry-proxy-{i}"))
            .spawn(move || {
                crate::conn_pool::set_thread_slot(i + 1);
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a proxy thread runtime");
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut tasks = Vec::new();
                    for (cfg, std_listener) in set {
                        match TcpListener::from_std(std_listener) {
                            Ok(l) => tasks.push(tokio::spawn(accept_loop(
                                Arc::clone(&shared),
                                Arc::clone(&proto),
                                cfg,
                                l,
                            ))),
                            Err(e) => tracing::error!(error = %e, "cannot register a listener"),
                        }
                    }
                    for t in tasks {
                        let _ = t.await;
                    }
                    wait_connections(&shared).await;
                });
                let _ = done.send(());
            })
            .map_err(Error::Io)?;
    }
    let admin = match &config.admin {
        Some(a) => {
            let bind_err = |source| Error::Bind {
                addr: a.addr,
                source,
            };
            let inherited = takeover
                .and_then(|t| t.take_listener(handover::ROLE_ADMIN, a.addr))
                .transpose()?
                .and_then(|mut sockets| (!sockets.is_empty()).then(|| sockets.swap_remove(0)));
            let socket = match inherited {
                Some(socket) => socket,
                None => bind_listener(a.addr, false).map_err(bind_err)?,
            };
            offered.push((
                handover::ROLE_ADMIN.to_owned(),
                a.addr,
                vec![socket.try_clone().map_err(Error::Io)?],
            ));
            let listener = TcpListener::from_std(socket).map_err(Error::Io)?;
            Some((
                listener.local_addr().map_err(Error::Io)?,
                listener,
                Arc::<str>::from(a.token.as_str()),
            ))
        }
        None => None,
    };
    *shared.listeners.lock().unwrap_or_else(|e| e.into_inner()) = offered;
    let handle = ProxyHandle::new(Arc::clone(&shared), addrs, admin.as_ref().map(|a| a.0));
    if let Some((_, listener, token)) = admin {
        accept_tasks.push(tokio::spawn(crate::admin::serve(
            listener,
            handle.clone(),
            token,
        )));
    }
    let waiter = Arc::clone(&shared);
    let task = tokio::spawn(async move {
        for t in accept_tasks {
            let _ = t.await;
        }
        wait_connections(&waiter).await;
        for d in thread_done {
            let _ = d.await;
        }
    });
    Ok(RunningProxy { handle, task })
}

/// Waits until every client connection has closed or the shutdown deadline passes.
async fn wait_connections(shared: &Shared) {
    let deadline = tokio::time::Instant::now() + shared.shutdown_timeout;
    loop {
        let notified = shared.connections_done.notified();
        if shared.connections.load(Ordering::Acquire) == 0 {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            tracing::warn!(
                open = shared.connections.load(Ordering::Acquire),
                "shutdown deadline passed with connections open"
            );
            return;
        }
    }
}

/// A listening socket (non-blocking); with `reuseport`, other sockets (one per proxy
/// thread) may bind the same address.
fn bind_listener(addr: SocketAddr, reuseport: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuseport {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}

/// Runs the proxy until `shutdown` completes, then shuts down gracefully.
pub async fn serve(
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let running = start(config).await?;
    shutdown.await;
    running.handle.shutdown();
    running.wait().await;
    Ok(())
}

pub(crate) struct Protocols {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
}

async fn accept_loop(
    shared: Arc<Shared>,
    proto: Arc<Protocols>,
    cfg: ListenerConfig,
    listener: TcpListener,
) {
    let mut stop = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped(&mut stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        shared.connections.fetch_add(1, Ordering::AcqRel);
        let shared = Arc::clone(&shared);
        let proto = Arc::clone(&proto);
        let cfg = cfg.clone();
        let fut = async move {
            connection(&shared, &proto, &cfg, stream, peer).await;
            if shared.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
                shared.connections_done.notify_waiters();
            }
        };
        tokio::spawn(fut);
    }
}

async fn connection(
    shared: &Arc<Shared>,
    proto: &Protocols,
    cfg: &ListenerConfig,
    stream: TcpStream,
    peer: SocketAddr,
) {
    if cfg.tls {
        // Boxed: the TLS state is large, and an inline one would size every
        // plain connection's task after it too.
        Box::pin(tls_connection(shared, proto, cfg, stream, peer)).await;
    } else {
        // Nothing is allocated for a connection until its client sends something;
        // a client that opens with the HTTP/2 preface speaks h2c (prior knowledge).
        let Ok(Ok(h2)) = tokio::time::timeout(proto.header_timeout, h2c_preface(&stream)).await
        else {
            return;
        };
        if !h2 && cfg.redirect_https_port.is_none() {
            crate::h1::serve(shared, proto, cfg, stream, ConnInfo { peer, tls: false }).await;
            return;
        }
        Box::pin(serve_io(
            shared,
            proto,
            cfg,
            stream,
            ConnInfo { peer, tls: false },
            h2,
        ))
        .await;
    }
}

async fn tls_connection(
    shared: &Arc<Shared>,
    proto: &Protocols,
    cfg: &ListenerConfig,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let Some(acceptor) = &proto.tls else { return };
    let Ok(Ok(tls)) = tokio::time::timeout(proto.header_timeout, acceptor.accept(stream)).await
    else {
        return;
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    serve_io(shared, proto, cfg, tls, ConnInfo { peer, tls: true }, h2).await;
}

/// Waits for the client's first bytes and tells whether they are the HTTP/2
/// connection preface (RFC 9113 §3.4), without consuming them.
async fn h2c_preface(stream: &TcpStream) -> std::io::Result<bool> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = [0u8; PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != PREFACE[..n] {
            return Ok(false);
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        // A prefix of the preface so far: wait for more.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub(crate) async fn serve_io<I>(
    shared: &Arc<Shared>,
    proto: &Protocols,
    cfg: &ListenerConfig,
    io: I,
    info: ConnInfo,
    h2: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let mut stop = shared.shutdown.subscribe();
    let redirect = cfg.redirect_https_port;
    let s = Arc::clone(shared);
    let svc = service_fn(move |req| {
        let s = Arc::clone(&s);
        async move {
            let mut resp = match redirect {
                Some(port) => redirect_https(&req, port),
                None => forward::handle(Arc::clone(&s), info, req).await?,
            };
            // Draining: the client's next request goes to a new connection (and so, after
            // a handover, to the successor) instead of racing a close of this one.
            if !h2
                && s.draining.load(Ordering::Relaxed)
                && resp.status() != StatusCode::SWITCHING_PROTOCOLS
            {
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    macro_rules! drive {
        ($conn:expr) => {{
            let mut conn = $conn;
            tokio::select! {
                r = conn.as_mut() => { let _ = r; }
                _ = stopped(&mut stop) => {
                    // After a handover an idle HTTP/1.1 client gets a moment to send its
                    // next request (answered with `connection: close`, which ends the
                    // connection) before an idle close could race it.
                    let grace = if !h2 && shared.handed_over.load(Ordering::Acquire) {
                        shared.drain_idle
                    } else {
                        Duration::ZERO
                    };
                    if grace.is_zero()
                        || tokio::time::timeout(grace, conn.as_mut()).await.is_err()
                    {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            }
        }};
    }
    if h2 {
        // Boxed for the same reason: HTTP/1.1 connections stay small.
        drive!(Box::pin(proto.http2.serve_connection(io, svc)));
    } else {
        let conn = proto.http1.serve_connection(io, svc).with_upgrades();
        tokio::pin!(conn);
        drive!(conn);
    }
}

fn redirect_https(req: &http::Request<hyper::body::Incoming>, port: u16) -> Response<ProxyBody> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(h, _)| h))
        .unwrap_or("localhost");
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if port == 443 {
        format!("https://{host}{pq}")
    } else {
        format!("https://{host}:{port}{pq}")
    };
    let mut r = forward::plain(StatusCode::PERMANENT_REDIRECT, "moved to https");
    if let Ok(v) = http::HeaderValue::from_str(&location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

/// Resolves once shutdown has been requested.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
