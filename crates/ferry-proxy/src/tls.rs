//! TLS termination: certificates per host chosen by SNI (exact, then wildcard, then the first as default).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::CertificateConfig;
use crate::error::Error;

#[derive(Debug)]
struct SniResolver {
    /// (lowercase host or `.suffix` for wildcards, key)
    exact: Vec<(String, Arc<CertifiedKey>)>,
    wildcard: Vec<(String, Arc<CertifiedKey>)>,
    default: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name().map(str::to_ascii_lowercase) else {
            return self.default.clone();
        };
        self.exact
            .iter()
            .find(|(h, _)| *h == name)
            .or_else(|| {
                self.wildcard
                    .iter()
                    .filter(|(s, _)| name.ends_with(s.as_str()) && name.len() > s.len())
                    .max_by_key(|(s, _)| s.len())
            })
            .map(|(_, k)| Arc::clone(k))
            .or_else(|| self.default.clone())
    }
}

fn tls_err(path: &Path, reason: impl ToString) -> Error {
    Error::Tls {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn load_key(cert: &CertificateConfig) -> Result<Arc<CertifiedKey>, Error> {
    let mut reader = BufReader::new(File::open(&cert.cert).map_err(|e| tls_err(&cert.cert, e))?);
    let chain = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(&cert.cert, e))?;
    if chain.is_empty() {
        return Err(tls_err(&cert.cert, "no certificate found in file"));
    }
    let mut reader = BufReader::new(File::open(&cert.key).map_err(|e| tls_err(&cert.key, e))?);
    let key = rustls_pemfile::private_key(&mut reader)
        .map_err(|e| tls_err(&cert.key, e))?
        .ok_or_else(|| tls_err(&cert.key, "no private key found in file"))?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| tls_err(&cert.key, e))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// A rustls server config (ring provider, ALPN h2 and http/1.1) serving `certs` by SNI.
pub(crate) fn server_config(certs: &[CertificateConfig]) -> Result<Arc<ServerConfig>, Error> {
    let mut resolver = SniResolver {
        exact: Vec::new(),
        wildcard: Vec::new(),
        default: None,
    };
    for c in certs {
        let key = load_key(c)?;
        if resolver.default.is_none() {
            resolver.default = Some(Arc::clone(&key));
        }
        for h in &c.hosts {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix('*') {
                Some(suffix) => resolver
                    .wildcard
                    .push((suffix.to_owned(), Arc::clone(&key))),
                None => resolver.exact.push((h, Arc::clone(&key))),
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            path: Default::default(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
