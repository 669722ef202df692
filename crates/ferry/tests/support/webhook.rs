//! Webhook receivers on 127.0.0.1 for the notify tests: each records the JSON body of
//! every POST it gets and answers 200.
//!
//! ferry-daemon's `notify` unit tests include this file by path as well, so it uses
//! nothing but std, rcgen, rustls and serde_json, and panics with `expect`.

#![allow(dead_code, reason = "each includer uses a subset of these receivers")]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The JSON bodies a receiver got, in the order they arrived.
pub type Bodies = Arc<Mutex<Vec<serde_json::Value>>>;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Reads one request: its request line (trimmed) and its body of `content-length` bytes;
/// `None` when the connection fails before the body is read.
fn read_request(reader: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((request_line.trim().to_owned(), body))
}

/// A plain HTTP receiver; each recorded body (`null` when it is no JSON) also holds its
/// request line under `_request`. Returns its address and the bodies.
pub fn receiver() -> (SocketAddr, Bodies) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Bodies::default();
    let bodies = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream);
            let Some((request_line, body)) = read_request(&mut reader) else {
                continue;
            };
            let mut value: serde_json::Value =
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            value["_request"] = serde_json::Value::String(request_line);
            bodies.lock().expect("lock").push(value);
            let _ = reader.get_mut().write_all(OK);
        }
    });
    (addr, seen)
}

/// An HTTPS receiver with a fresh self-signed certificate for 127.0.0.1, written to
/// `dir/webhook-ca.pem`; it records JSON bodies only, and serves at most 200 connections.
/// Returns its URL (`https://127.0.0.1:PORT/hook`), the certificate file and the bodies.
pub fn tls_receiver(dir: &Path) -> (String, PathBuf, Bodies) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let ca = dir.join("webhook-ca.pem");
    std::fs::write(&ca, ck.cert.pem()).expect("write cert");
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).expect("key");
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Bodies::default();
    let bodies = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().take(200) {
            let Ok(tcp) = tcp else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
            let Some((_, body)) = read_request(&mut reader) else {
                continue;
            };
            if body.is_empty() {
                continue;
            }
            if let Ok(value) = serde_json::from_slice(&body) {
                bodies.lock().expect("lock").push(value);
            }
            let stream = reader.get_mut();
            let _ = stream.write_all(OK);
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    (format!("https://127.0.0.1:{port}/hook"), ca, seen)
}
