//! TLS termination with per-host certificates by SNI, HTTP/2 by ALPN, and the HTTPS redirect.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{backend, client, get};
use ferry_proxy::{CertificateConfig, ListenerConfig, ProxyConfig};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};

struct Cert {
    der: CertificateDer<'static>,
    config: CertificateConfig,
}

fn self_signed(dir: &std::path::Path, host: &str) -> Cert {
    let ck = rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("generate cert");
    let cert = dir.join(format!("{host}.crt"));
    let key = dir.join(format!("{host}.key"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    Cert {
        der: ck.cert.der().clone(),
        config: CertificateConfig {
            hosts: vec![host.to_owned()],
            cert,
            key,
        },
    }
}

async fn tls_connect(
    addr: SocketAddr,
    host: &str,
    roots: &[CertificateDer<'static>],
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).expect("add root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(host.to_owned()).expect("name"), tcp)
        .await
        .expect("tls handshake (the certificate must match the host)")
}

#[tokio::test]
async fn sni_picks_the_host_certificate_and_alpn_picks_http2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = self_signed(dir.path(), "a.test");
    let b = self_signed(dir.path(), "b.test");
    let up = backend("up").await;
    let mut cfg = ProxyConfig::single("127.0.0.1:0".parse().expect("addr"), up.addr);
    cfg.listeners[0].tls = true;
    cfg.certificates = vec![a.config.clone(), b.config.clone()];
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let roots = [a.der.clone(), b.der.clone()];

    for (host, cert) in [("a.test", &a.der), ("b.test", &b.der)] {
        // HTTP/2
        let tls = tls_connect(addr, host, &roots, b"h2").await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(
            tls.get_ref().1.peer_certificates().expect("peer cert")[0],
            *cert
        );
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        let req = http::Request::get(format!("https://{host}/headers"))
            .body(Empty::<Bytes>::new())
            .expect("req");
        let resp = send.send_request(req).await.expect("h2 response");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(&format!("host: {host}\n")), "{body}");
        assert!(body.contains("x-forwarded-proto: https\n"), "{body}");

        // HTTP/1.1
        let tls = tls_connect(addr, host, &roots, b"http/1.1").await;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("h1 handshake");
        tokio::spawn(conn);
        let req = http::Request::get("/")
            .header("host", host)
            .body(Empty::<Bytes>::new())
            .expect("req");
        let resp = send.send_request(req).await.expect("h1 response");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.into_body().collect().await.expect("body").to_bytes(),
            "up"
        );
    }
}

#[tokio::test]
async fn plain_listener_can_redirect_to_https() {
    let up = backend("up").await;
    let mut cfg = ProxyConfig::single("127.0.0.1:0".parse().expect("addr"), up.addr);
    cfg.listeners = vec![ListenerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        tls: false,
        redirect_https_port: Some(8443),
    }];
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    let resp = c
        .request(
            http::Request::get(format!("http://{addr}/path?q=1"))
                .header("host", "app.test")
                .body(Empty::new())
                .expect("req"),
        )
        .await
        .expect("resp");
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers()["location"], "https://app.test:8443/path?q=1");
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let _ = get;
}
