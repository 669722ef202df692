//! `ferry proxy`: ferry's reverse proxy in the foreground, from a routes file or in
//! the quick mode that forwards everything to one upstream.

use ferry_proxy::ProxyConfig;

use crate::cli::ProxyArgs;
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;

pub fn run(args: &ProxyArgs, printer: &Printer) -> anyhow::Result<u8> {
    let config = match (&args.routes, args.to.is_empty()) {
        (Some(path), _) => {
            let text =
                std::fs::read_to_string(path).map_err(|source| Expected::ConfigUnreadable {
                    path: path.clone(),
                    source,
                })?;
            ProxyConfig::from_toml_str(&text)
                .map_err(|e| Expected::Usage(format!("{}: {e}", path.display())))?
        }
        (None, false) => {
            let mut config = ProxyConfig::quick(args.listen, &args.to)
                .map_err(|e| Expected::Usage(format!("--to: {e}")))?;
            // One serving thread per core, each with its own listener socket and
            // upstream connections (the routes file's `threads` does the same).
            config.threads = std::thread::available_parallelism().map_or(1, usize::from);
            config
        }
        (None, true) => {
            return Err(Expected::Usage(
                "give a routes file (--routes FILE) or an upstream (--to ADDR)".to_owned(),
            )
            .into());
        }
    };
    let schemes: Vec<&str> = config
        .listeners
        .iter()
        .map(|l| if l.tls { "https" } else { "http" })
        .collect();
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let handover_failed = |e: ferry_proxy::Error| Expected::Failed(e.to_string());
        // Taking over: the running proxy's sockets and table first; otherwise claim the
        // handover socket before binding, so a second proxy on it fails early.
        let mut takeover = None;
        let mut handover_socket = None;
        if let Some(path) = &args.handover {
            if args.takeover {
                takeover = Some(
                    ferry_proxy::handover::take_over(path)
                        .await
                        .map_err(handover_failed)?,
                );
            } else {
                handover_socket = Some(
                    ferry_proxy::handover::HandoverSocket::bind(path, false)
                        .map_err(handover_failed)?,
                );
            }
        }
        let started = match takeover.as_mut() {
            Some(t) => ferry_proxy::start_taking_over(config, t).await,
            None => ferry_proxy::start(config).await,
        };
        let running =
            started.map_err(|e| Expected::Failed(format!("cannot start the proxy: {e}")))?;
        if let (Some(t), Some(path)) = (takeover, &args.handover) {
            let old = t.ready().await.map_err(handover_failed)?;
            printer.status(format!(
                "took over the listening sockets of pid {}; it finishes its requests and exits",
                old.pid()
            ));
            handover_socket = Some(
                ferry_proxy::handover::HandoverSocket::bind(path, true).map_err(handover_failed)?,
            );
        }
        // The bound addresses (a configured port 0 becomes the real port).
        let listeners: Vec<String> = running
            .handle
            .listen_addrs()
            .iter()
            .zip(schemes.iter().chain(std::iter::repeat(&"http")))
            .map(|(addr, scheme)| format!("{scheme}://{addr}"))
            .collect();
        if printer.json_output() {
            let mut event = serde_json::json!({"event": "listening", "listeners": listeners});
            if let Some(admin) = running.handle.admin_addr() {
                event["admin"] = serde_json::json!(format!("http://{admin}"));
            }
            printer.event(&event)?;
        } else {
            printer.line(format!("proxy listening on {}", listeners.join(", ")))?;
        }
        let handed = async {
            match &handover_socket {
                Some(socket) => {
                    let handle = running.handle.clone();
                    Some(
                        socket
                            .hand_over(|| ferry_proxy::handover::proxy_offer(&handle))
                            .await,
                    )
                }
                None => std::future::pending().await,
            }
        };
        // Kept until this process exits: the successor waits for that.
        let mut successor = None;
        tokio::select! {
            () = shutdown_signal() => {
                printer.status("shutting down: finishing in-flight requests");
                running.handle.shutdown();
            }
            s = handed => {
                if let Some(s) = &s {
                    printer.status(format!(
                        "handed the listening sockets over to pid {}: finishing in-flight requests",
                        s.pid()
                    ));
                }
                successor = s;
                running.handle.shutdown_after_handover();
            }
        }
        running.wait().await;
        drop(successor);
        Ok(exit::OK)
    })
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
