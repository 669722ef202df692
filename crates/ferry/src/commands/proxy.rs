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
        let running = ferry_proxy::start(config)
            .await
            .map_err(|e| Expected::Failed(format!("cannot start the proxy: {e}")))?;
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
        shutdown_signal().await;
        printer.status("shutting down: finishing in-flight requests");
        running.handle.shutdown();
        running.wait().await;
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
