//! `hello healthcheck [URL]`: a tiny HTTP GET for the HEALTHCHECK of a FROM scratch image.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a health check failed.
#[derive(Debug, PartialEq, Eq)]
pub enum CheckError {
    /// The URL is not `http://host[:port][/path]`.
    BadUrl(String),
    /// Connecting, sending or reading failed.
    Io(String),
    /// The server answered with a status outside 2xx.
    Status(u16),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::BadUrl(u) => write!(f, "bad url {u:?}: expected http://host[:port][/path]"),
            CheckError::Io(e) => write!(f, "request failed: {e}"),
            CheckError::Status(s) => write!(f, "unhealthy: status {s}"),
        }
    }
}

/// Splits `http://host[:port][/path]` into the address to dial, the Host header and the path.
pub fn parse_url(url: &str) -> Result<(String, String, String), CheckError> {
    let bad = || CheckError::BadUrl(url.to_owned());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad());
    }
    let has_port = if authority.starts_with('[') {
        authority.contains("]:")
    } else {
        authority.contains(':')
    };
    let dial = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((dial, authority.to_owned(), path.to_owned()))
}

/// GETs `url`; Ok when the status is 2xx.
pub fn check(url: &str, timeout: Duration) -> Result<u16, CheckError> {
    let (dial, host, path) = parse_url(url)?;
    // Literal addresses avoid the resolver, which a static glibc binary may lack.
    let addr = match dial.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => dial
            .to_socket_addrs()
            .map_err(|e| CheckError::Io(e.to_string()))?
            .next()
            .ok_or_else(|| CheckError::Io(format!("{dial} did not resolve")))?,
    };
    let io = |e: std::io::Error| CheckError::Io(e.to_string());
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hello-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).map_err(io)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| CheckError::Io("no http status line in response".to_owned()))?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(CheckError::Status(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/health").unwrap(),
            (
                "127.0.0.1:8080".into(),
                "127.0.0.1:8080".into(),
                "/health".into()
            )
        );
        assert_eq!(
            parse_url("http://example").unwrap(),
            ("example:80".into(), "example".into(), "/".into())
        );
        assert_eq!(parse_url("http://[::1]:9/x").unwrap().0, "[::1]:9");
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http:///x").is_err());
    }
}
