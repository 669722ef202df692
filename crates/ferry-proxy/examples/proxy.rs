//! Runs the proxy from a routes file until SIGINT or SIGTERM: `proxy ROUTES.toml`.
//!
//! The stand-alone entry used by `bench/proxy/run.sh` and the docs; the product
//! command is `ferry proxy`.

use std::error::Error;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args().nth(1).ok_or("usage: proxy ROUTES.toml")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let config = ferry_proxy::ProxyConfig::from_toml_str(&text)?;
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    ferry_proxy::serve(config, shutdown).await?;
    Ok(())
}
