//! The API client the CLI uses: JSON over HTTP/1.1 with the bearer token.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::DaemonError;
use crate::protocol::{
    Ack, AppStatus, DeployAccepted, DeployRequest, ErrorBody, PromoteRequest, RevisionDetail,
};

/// A client of one daemon's API.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the API at `addr` (`host:port`) with `token`.
    pub fn new(addr: &str, token: impl Into<String>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        Self {
            base: format!("http://{addr}"),
            token: token.into(),
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, DaemonError> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| DaemonError::Protocol(e.to_string()))?;
        let response = self.http.request(request).await.map_err(|e| {
            if e.is_connect() {
                DaemonError::Unreachable {
                    addr: self.base.trim_start_matches("http://").to_owned(),
                    source: Box::new(e),
                }
            } else {
                DaemonError::Protocol(e.to_string())
            }
        })?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| DaemonError::Protocol(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(DaemonError::Api {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| DaemonError::Protocol(e.to_string()))
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, DaemonError> {
        let body = serde_json::to_vec(body).map_err(|e| DaemonError::Protocol(e.to_string()))?;
        self.call(http::Method::POST, path, Some(body)).await
    }

    /// `POST /v1/deploy`.
    pub async fn deploy(&self, request: &DeployRequest) -> Result<DeployAccepted, DaemonError> {
        self.post("/v1/deploy", request).await
    }

    /// `GET /v1/apps/{app}/{env}/status`.
    pub async fn status(&self, app: &str, env: &str) -> Result<AppStatus, DaemonError> {
        self.call(
            http::Method::GET,
            &format!("/v1/apps/{app}/{env}/status"),
            None,
        )
        .await
    }

    /// `GET /v1/apps/{app}/{env}/status?since=V&wait=S`: the status once its version
    /// differs from `since`, or after `wait` (the daemon caps it at 60 s) either way.
    pub async fn status_after(
        &self,
        app: &str,
        env: &str,
        since: u64,
        wait: Duration,
    ) -> Result<AppStatus, DaemonError> {
        self.call(
            http::Method::GET,
            &format!(
                "/v1/apps/{app}/{env}/status?since={since}&wait={}",
                wait.as_secs()
            ),
            None,
        )
        .await
    }

    /// `GET /v1/apps/{app}/{env}/revisions`: the store's revisions, newest first.
    pub async fn history(
        &self,
        app: &str,
        env: &str,
    ) -> Result<Vec<ferry_store::Revision>, DaemonError> {
        self.call(
            http::Method::GET,
            &format!("/v1/apps/{app}/{env}/revisions"),
            None,
        )
        .await
    }

    /// `GET /v1/apps/{app}/{env}/revisions/{number}`: one revision with its rollouts,
    /// timelines and analysis verdicts.
    pub async fn revision(
        &self,
        app: &str,
        env: &str,
        number: i64,
    ) -> Result<RevisionDetail, DaemonError> {
        self.call(
            http::Method::GET,
            &format!("/v1/apps/{app}/{env}/revisions/{number}"),
            None,
        )
        .await
    }

    /// `POST /v1/apps/{app}/{env}/{action}` for promote, pause, resume, abort and rollback.
    pub async fn action(
        &self,
        app: &str,
        env: &str,
        action: &str,
        promote: &PromoteRequest,
    ) -> Result<Ack, DaemonError> {
        self.post(&format!("/v1/apps/{app}/{env}/{action}"), promote)
            .await
    }
}

/// A plain HTTP/1.1 GET of `path` on `addr` (smoke checks): status and body.
pub(crate) async fn get_plain(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| "no HTTP status line".to_owned())?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "timed out after 10s".to_owned())?
}
