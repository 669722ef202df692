//! `ferry healthcheck URL`: a dependency-free HTTP/1.1 GET probe, so an image
//! built FROM scratch around the ferry binary can declare a HEALTHCHECK.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::cli::HealthcheckArgs;
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;

pub fn run(args: &HealthcheckArgs, printer: &Printer) -> anyhow::Result<u8> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let status = probe(&args.url, timeout)?;
    if (200..300).contains(&status) {
        printer.line(format!("{} answered {status}", args.url))?;
        Ok(exit::OK)
    } else {
        Err(Expected::Failed(format!("{} answered {status}", args.url)).into())
    }
}

/// GETs `url` (http only) and returns the status code.
pub fn probe(url: &str, timeout: Duration) -> anyhow::Result<u16> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        Expected::Usage(format!(
            "healthcheck supports http:// URLs only, got `{url}`"
        ))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr_text = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = addr_text
        .to_socket_addrs()
        .map_err(|e| Expected::Failed(format!("cannot resolve {authority}: {e}")))?
        .next()
        .ok_or_else(|| Expected::Failed(format!("{authority} resolves to no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| Expected::Failed(format!("cannot connect to {addr}: {e}")))?;
    let unreachable = |e: std::io::Error| Expected::Failed(format!("no answer from {addr}: {e}"));
    stream
        .set_read_timeout(Some(timeout))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(unreachable)?;
    // One write: a server may answer and close after the first segment it reads.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: ferry-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(unreachable)?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..]).map_err(unreachable)?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| Expected::Failed(format!("{addr} did not answer HTTP")).into())
}
