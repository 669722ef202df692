//! A raw HTTP/1.1 wire for tests that need the exact bytes: a buffered TCP stream
//! with the framing rules (RFC 9112) both a client and a scripted backend need.
//! Every read and write is bounded, so a hang fails the test instead of blocking.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest a connect, read or write may take by default.
pub const IO_LIMIT: Duration = Duration::from_secs(5);

pub fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("no progress {what}"))
}

pub fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("eof {what}"))
}

pub fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A request or response head: the start line and the header fields in wire order.
#[derive(Clone, Debug)]
pub struct Head {
    pub start: String,
    pub fields: Vec<(String, String)>,
}

impl Head {
    pub fn parse(raw: &[u8]) -> io::Result<Self> {
        let text = std::str::from_utf8(raw).map_err(|_| invalid("head is not utf-8"))?;
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let mut fields = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            // Kept as read, even malformed (a folded line has no colon), so a
            // test can tell that one got through.
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            fields.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(Self { start, fields })
    }

    /// Whether a field line is not `name: value` with a token name: an obs-fold
    /// continuation or whitespace before the colon (RFC 9112 §5.1, §5.2).
    pub fn has_malformed_line(&self) -> bool {
        self.fields
            .iter()
            .any(|(n, _)| n.is_empty() || n.bytes().any(|b| b == b' ' || b == b'\t'))
    }

    /// Every value of the field `name` (case-insensitive), in wire order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    pub fn has(&self, name: &str) -> bool {
        !self.all(name).is_empty()
    }

    /// Whether the comma-separated list field `name` holds `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// How a response body was delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body by the rules (HEAD, 1xx, 204, 304).
    NoBody,
    Length,
    Chunked,
    /// Read until the connection closed.
    Close,
}

/// A response as the client read it.
#[derive(Debug)]
pub struct Resp {
    pub head: Head,
    pub status: u16,
    pub body: Vec<u8>,
    pub framing: Framing,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the connection ends after this response.
    pub fn closes(&self) -> bool {
        self.framing == Framing::Close || self.head.has_token("connection", "close")
    }
}

/// A request as the backend read it.
#[derive(Clone, Debug)]
pub struct Req {
    pub head: Head,
    pub method: String,
    pub target: String,
    pub body: Vec<u8>,
}

pub struct Wire {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    /// The longest a single read or write may take (then it fails as timed out).
    pub limit: Duration,
}

impl Wire {
    pub fn new(stream: TcpStream) -> Self {
        Self::with_limit(stream, IO_LIMIT)
    }

    /// A wire whose reads and writes may each take up to `limit`.
    pub fn with_limit(stream: TcpStream, limit: Duration) -> Self {
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            buf: Vec::new(),
            limit,
        }
    }

    pub async fn connect(addr: SocketAddr) -> Self {
        let s = tokio::time::timeout(IO_LIMIT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Self::new(s)
    }

    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::time::timeout(self.limit, self.stream.write_all(bytes))
            .await
            .map_err(|_| timed_out("while writing"))?
    }

    /// Writes `bytes`, failing the test if that is not possible.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.write(bytes).await.expect("write");
    }

    /// Reads what is available into the buffer; `Ok(0)` at end of stream.
    /// Cancel-safe: bytes are only ever appended in the poll that completes it.
    pub async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(64 * 1024);
        tokio::time::timeout(self.limit, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| timed_out("while reading"))?
    }

    /// The next head, up to and including the empty line; `None` at a clean end of stream.
    pub async fn head(&mut self) -> io::Result<Option<Head>> {
        let mut searched: usize = 0;
        loop {
            let from = searched.saturating_sub(3);
            if let Some(at) = find(&self.buf[from..], b"\r\n\r\n") {
                let end = from + at + 4;
                let raw: Vec<u8> = self.buf.drain(..end).collect();
                return Head::parse(&raw).map(Some);
            }
            searched = self.buf.len();
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(eof("inside a head"))
                };
            }
        }
    }

    pub async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(at) = find(&self.buf, b"\r\n") {
                let raw: Vec<u8> = self.buf.drain(..at + 2).collect();
                return String::from_utf8(raw[..at].to_vec()).map_err(|_| invalid("line"));
            }
            if self.fill().await? == 0 {
                return Err(eof("inside a line"));
            }
        }
    }

    pub async fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(eof(&format!("after {} of {n} body bytes", self.buf.len())));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    pub async fn until_eof(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Decodes a chunked body (RFC 9112 §7.1): extensions and trailer fields
    /// are read past, only well-formed (each line `name: value`).
    pub async fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut data = Vec::new();
        loop {
            let line = self.line().await?;
            let size = line.split_once(';').map_or(line.as_str(), |(s, _)| s);
            let size = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| invalid(format!("chunk size {line:?}")))?;
            if size == 0 {
                loop {
                    let t = self.line().await?;
                    if t.is_empty() {
                        return Ok(data);
                    }
                    if !t.contains(':') {
                        return Err(invalid(format!("trailer {t:?}")));
                    }
                }
            }
            let chunk = self.exact(size + 2).await?;
            if &chunk[size..] != b"\r\n" {
                return Err(invalid("chunk data not followed by CRLF"));
            }
            data.extend_from_slice(&chunk[..size]);
        }
    }

    /// The final response to a request with `method`, decoded by RFC 9112 §6.3.
    /// Interim 1xx responses are skipped (a `101` is final). A message that is
    /// framed ambiguously (several lengths, or a length with chunked) is an error.
    pub async fn response(&mut self, method: &str) -> io::Result<Resp> {
        loop {
            let head = self.head().await?.ok_or_else(|| eof("before a response"))?;
            let status: u16 = head
                .start
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| invalid(format!("status line {:?}", head.start)))?;
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let lengths = head.all("content-length");
            let chunked = head.has_token("transfer-encoding", "chunked");
            if lengths.len() > 1 || (chunked && !lengths.is_empty()) {
                return Err(invalid(format!("ambiguous framing: {head:?}")));
            }
            let (body, framing) = if method == "HEAD" || matches!(status, 101 | 204 | 304) {
                (Vec::new(), Framing::NoBody)
            } else if chunked {
                (self.chunked().await?, Framing::Chunked)
            } else if let Some(len) = lengths.first() {
                let len = len
                    .parse()
                    .map_err(|_| invalid(format!("content-length {len:?}")))?;
                (self.exact(len).await?, Framing::Length)
            } else {
                (self.until_eof().await?, Framing::Close)
            };
            return Ok(Resp {
                head,
                status,
                body,
                framing,
            });
        }
    }

    /// Reads the response and fails the test on any error.
    pub async fn expect_response(&mut self, method: &str) -> Resp {
        self.response(method).await.expect("response")
    }

    /// The body of a request whose head was read (RFC 9112 §6.3: chunked wins over a length).
    pub async fn request_body(&mut self, head: Head) -> io::Result<Req> {
        let mut parts = head.start.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let body = if head.has_token("transfer-encoding", "chunked") {
            self.chunked().await?
        } else if let Some(len) = head.get("content-length") {
            let len = len.parse().map_err(|_| invalid("content-length"))?;
            self.exact(len).await?
        } else {
            Vec::new()
        };
        Ok(Req {
            head,
            method,
            target,
            body,
        })
    }

    /// Whether the peer closes the connection (end of stream or reset) within
    /// `limit` without sending anything more.
    pub async fn closes(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        match self.fill().await {
            Ok(n) => n == 0,
            Err(e) => e.kind() != io::ErrorKind::TimedOut,
        }
    }
}
