//! Socket handover: a new ferry process takes over the listening sockets of the running
//! one, so a restart or an upgrade loses no connection.
//!
//! Protocol, over one unix stream socket (`handover.sock` in the state directory, mode
//! 0600, peers of another user refused):
//! 1. The running (old) process listens on the socket; a successor connects.
//! 2. The old process sends one message: a 4-byte big-endian length and a JSON offer
//!    (its pid, each listener's role, configured and bound address and socket count,
//!    and its live routing table), with every listening socket attached (`SCM_RIGHTS`).
//!    The sockets are now open in both processes: the kernel keeps one accept queue per
//!    socket, so a connection waiting in it is accepted by whichever process asks first,
//!    and none is lost (unlike `SO_REUSEPORT` with separate sockets, where a closing
//!    socket drops its queue).
//! 3. The successor restores the routing table, starts accepting on the inherited
//!    sockets, then writes one byte, `R` (ready).
//! 4. The old process stops accepting (its copies of the sockets close; the successor's
//!    stay open) and drains: every HTTP/1.1 response from then on carries
//!    `connection: close`, idle keep-alive connections get `timeouts.drain_idle` to send
//!    their next request, HTTP/2 connections get GOAWAY, requests in flight finish up to
//!    `timeouts.shutdown`. Then it exits; its end of the stream closes with it, which
//!    the successor sees as end of file ([`Predecessor::exited`]).
//!
//! If the successor fails or disconnects before `R`, the old process keeps serving as if
//! nothing happened.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

use crate::config::RoutingConfig;
use crate::error::Error;
use crate::handle::ProxyHandle;

/// The role of the proxy's client listeners in an offer.
pub const ROLE_PROXY: &str = "proxy";
/// The role of the proxy's admin listener in an offer.
pub const ROLE_ADMIN: &str = "admin";

/// The offer's format version; a successor refuses any other.
const VERSION: u32 = 1;
/// At most this many sockets in one offer (the kernel's limit per message is 253).
const MAX_SOCKETS: usize = 250;
/// The largest offer accepted (the routing table is its bulk).
const MAX_OFFER: usize = 64 << 20;
/// The successor's "I accept now" byte.
const READY: u8 = b'R';
/// How long either side waits for the other while handing over.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Listening sockets of one listener, as offered to a successor.
#[derive(Debug)]
pub struct ListenerSockets {
    /// What the listener is for (`proxy`, `admin`, or a role of the embedding process).
    pub role: String,
    /// The address it was configured with (port 0 stays 0).
    pub configured: SocketAddr,
    /// The address it is bound to.
    pub local: SocketAddr,
    /// The listening sockets (several when each proxy thread has its own).
    pub sockets: Vec<OwnedFd>,
}

impl ListenerSockets {
    /// Copies of `listeners` (each `dup`ed) offered under `role`.
    pub fn of(
        role: &str,
        configured: SocketAddr,
        listeners: &[&std::net::TcpListener],
    ) -> Result<Self, Error> {
        let first = listeners
            .first()
            .ok_or_else(|| Error::Io(std::io::Error::other("a listener without sockets")))?;
        Ok(Self {
            role: role.to_owned(),
            configured,
            local: first.local_addr().map_err(Error::Io)?,
            sockets: listeners
                .iter()
                .map(|l| l.try_clone().map(OwnedFd::from))
                .collect::<Result<_, _>>()
                .map_err(Error::Io)?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct OfferedListener {
    role: String,
    configured: SocketAddr,
    local: SocketAddr,
    sockets: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Offer {
    version: u32,
    pid: u32,
    listeners: Vec<OfferedListener>,
    routing: Option<RoutingConfig>,
}

fn handover_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Handover {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn handover_io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::HandoverIo {
        path: path.to_owned(),
        source,
    }
}

/// The running process's side: a unix socket a successor connects to.
#[derive(Debug)]
pub struct HandoverSocket {
    listener: tokio::net::UnixListener,
    path: PathBuf,
    inode: u64,
}

impl HandoverSocket {
    /// Listens on `path`. A socket file left by a process that is gone is replaced; when
    /// a process still answers there, this fails unless `replace` (a successor that has
    /// just taken over replaces its predecessor's file).
    pub fn bind(path: &Path, replace: bool) -> Result<Self, Error> {
        if path.exists() {
            if !replace && UnixStream::connect(path).is_ok() {
                return Err(handover_error(
                    path,
                    "another ferry process is running with this socket; take it over \
                     (--takeover) or stop it first",
                ));
            }
            std::fs::remove_file(path).map_err(handover_io(path))?;
        }
        let listener = tokio::net::UnixListener::bind(path).map_err(handover_io(path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(handover_io(path))?;
        let inode = std::fs::metadata(path).map_err(handover_io(path))?.ino();
        Ok(Self {
            listener,
            path: path.to_owned(),
            inode,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for a successor and hands `offer()` over to it (the sockets and the routing
    /// table, read at the time it connects). Returns once the successor accepts
    /// connections: the caller then stops accepting and drains. A failed attempt is
    /// logged and the wait goes on.
    pub async fn hand_over(
        &self,
        offer: impl Fn() -> Result<(Vec<ListenerSockets>, Option<RoutingConfig>), Error>,
    ) -> Successor {
        loop {
            let stream = match self.listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "handover socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (listeners, routing) = match offer() {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(error = %e, "handover: cannot offer the listening sockets");
                    continue;
                }
            };
            let path = self.path.clone();
            let exchange = tokio::task::spawn_blocking(move || {
                let stream = stream.into_std().map_err(handover_io(&path))?;
                stream.set_nonblocking(false).map_err(handover_io(&path))?;
                check_peer(&stream, &path)?;
                send_offer(&stream, listeners, routing, &path)?;
                stream
                    .set_read_timeout(Some(EXCHANGE_TIMEOUT))
                    .map_err(handover_io(&path))?;
                let mut ready = [0u8; 1];
                (&stream)
                    .read_exact(&mut ready)
                    .map_err(handover_io(&path))?;
                if ready[0] != READY {
                    return Err(handover_error(&path, "the successor sent an unknown reply"));
                }
                let pid = rustix::net::sockopt::socket_peercred(&stream)
                    .map(|c| c.pid.as_raw_nonzero().get().unsigned_abs())
                    .unwrap_or(0);
                Ok(Successor {
                    _stream: stream,
                    pid,
                })
            })
            .await;
            match exchange {
                Ok(Ok(successor)) => return successor,
                // A process that only checked whether this one runs (`bind`) left.
                Ok(Err(Error::HandoverIo { source, .. }))
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    tracing::debug!(error = %source, "a process left the handover socket early");
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "handover failed; still serving");
                }
                Err(e) => tracing::error!(error = %e, "handover task failed; still serving"),
            }
        }
    }
}

impl Drop for HandoverSocket {
    fn drop(&mut self) {
        // Only our own file: a successor may have replaced it with its socket.
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The process that took over; keep it until this process exits (the successor sees
/// the end of the stream as "the old process has exited").
#[derive(Debug)]
pub struct Successor {
    _stream: UnixStream,
    pid: u32,
}

impl Successor {
    /// The successor's process id (0 when unknown).
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// Refuses a peer running as another user (the file mode already keeps them out).
fn check_peer(stream: &UnixStream, path: &Path) -> Result<(), Error> {
    let cred = rustix::net::sockopt::socket_peercred(stream).map_err(|e| Error::HandoverIo {
        path: path.to_owned(),
        source: e.into(),
    })?;
    if cred.uid != rustix::process::geteuid() {
        return Err(handover_error(
            path,
            "refused a process of another user asking for the sockets",
        ));
    }
    Ok(())
}

fn send_offer(
    stream: &UnixStream,
    listeners: Vec<ListenerSockets>,
    routing: Option<RoutingConfig>,
    path: &Path,
) -> Result<(), Error> {
    let fds: Vec<OwnedFd> = listeners
        .iter()
        .flat_map(|l| l.sockets.iter().map(OwnedFd::try_clone))
        .collect::<Result<_, _>>()
        .map_err(handover_io(path))?;
    if fds.is_empty() || fds.len() > MAX_SOCKETS {
        return Err(handover_error(
            path,
            format!(
                "{} listening sockets to hand over (1 to {MAX_SOCKETS} fit in one message)",
                fds.len()
            ),
        ));
    }
    let offer = Offer {
        version: VERSION,
        pid: std::process::id(),
        listeners: listeners
            .into_iter()
            .map(|l| OfferedListener {
                role: l.role,
                configured: l.configured,
                local: l.local,
                sockets: l.sockets.len(),
            })
            .collect(),
        routing,
    };
    let json = serde_json::to_vec(&offer).map_err(|e| handover_error(path, e.to_string()))?;
    let len = u32::try_from(json.len())
        .map_err(|_| handover_error(path, "the routing table is too large to hand over"))?
        .to_be_bytes();
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(borrowed.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(handover_error(
            path,
            "the sockets do not fit in one message",
        ));
    }
    let sent = rustix::net::sendmsg(
        stream,
        &[IoSlice::new(&len), IoSlice::new(&json)],
        &mut control,
        SendFlags::empty(),
    )
    .map_err(|e| Error::HandoverIo {
        path: path.to_owned(),
        source: e.into(),
    })?;
    // The sockets went with the first byte; the rest of a long table follows plainly.
    let mut whole = Vec::with_capacity(len.len() + json.len());
    whole.extend_from_slice(&len);
    whole.extend_from_slice(&json);
    if sent < whole.len() {
        (&*stream)
            .write_all(&whole[sent..])
            .map_err(handover_io(path))?;
    }
    Ok(())
}

fn receive_offer(stream: &UnixStream, path: &Path) -> Result<(Offer, Vec<OwnedFd>), Error> {
    let mut first = vec![0u8; 64 * 1024];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut first)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| Error::HandoverIo {
        path: path.to_owned(),
        source: e.into(),
    })?;
    if got.flags.contains(ReturnFlags::CTRUNC) {
        return Err(handover_error(path, "too many sockets offered"));
    }
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    let mut bytes = first[..got.bytes].to_vec();
    if bytes.len() < 4 {
        let mut rest = vec![0u8; 4 - bytes.len()];
        (&*stream)
            .read_exact(&mut rest)
            .map_err(handover_io(path))?;
        bytes.extend(rest);
    }
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if len > MAX_OFFER {
        return Err(handover_error(path, "the offer is too large"));
    }
    if bytes.len() < 4 + len {
        let mut rest = vec![0u8; 4 + len - bytes.len()];
        (&*stream)
            .read_exact(&mut rest)
            .map_err(handover_io(path))?;
        bytes.extend(rest);
    }
    let offer: Offer = serde_json::from_slice(&bytes[4..4 + len])
        .map_err(|e| handover_error(path, format!("unreadable offer: {e}")))?;
    if offer.version != VERSION {
        return Err(handover_error(
            path,
            format!(
                "the running process speaks handover version {}, this one {VERSION}",
                offer.version
            ),
        ));
    }
    let wanted: usize = offer.listeners.iter().map(|l| l.sockets).sum();
    if wanted != fds.len() {
        return Err(handover_error(
            path,
            format!("offered {wanted} sockets but {} arrived", fds.len()),
        ));
    }
    Ok((offer, fds))
}

/// A listener received from the running process, not yet claimed.
#[derive(Debug)]
struct Inherited {
    role: String,
    configured: SocketAddr,
    local: SocketAddr,
    sockets: Vec<OwnedFd>,
}

/// The successor's side: what it received from the running process, until it is ready.
#[derive(Debug)]
pub struct Takeover {
    stream: UnixStream,
    path: PathBuf,
    pid: u32,
    listeners: Vec<Inherited>,
    routing: Option<RoutingConfig>,
}

/// Connects to the running process at `path` and receives its listening sockets and its
/// routing table. The running process keeps serving until [`Takeover::ready`].
pub async fn take_over(path: &Path) -> Result<Takeover, Error> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let stream = UnixStream::connect(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                handover_error(&path, "no running ferry process listens there to take over")
            }
            _ => Error::HandoverIo {
                path: path.clone(),
                source: e,
            },
        })?;
        stream
            .set_read_timeout(Some(EXCHANGE_TIMEOUT))
            .map_err(handover_io(&path))?;
        let (offer, fds) = receive_offer(&stream, &path)?;
        let mut fds = fds.into_iter();
        let listeners = offer
            .listeners
            .into_iter()
            .map(|l| Inherited {
                sockets: fds.by_ref().take(l.sockets).collect(),
                role: l.role,
                configured: l.configured,
                local: l.local,
            })
            .collect();
        Ok(Takeover {
            stream,
            path,
            pid: offer.pid,
            listeners,
            routing: offer.routing,
        })
    })
    .await
    .map_err(|e| Error::Io(std::io::Error::other(e)))?
}

impl Takeover {
    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The routing table the running process serves.
    pub fn routing(&self) -> Option<&RoutingConfig> {
        self.routing.as_ref()
    }

    pub(crate) fn take_routing(&mut self) -> Option<RoutingConfig> {
        self.routing.take()
    }

    /// Claims the sockets of the first unclaimed listener of `role` that was configured
    /// with, or is bound to, `addr`.
    pub fn take_listener(
        &mut self,
        role: &str,
        addr: SocketAddr,
    ) -> Option<Result<Vec<std::net::TcpListener>, Error>> {
        let i = self
            .listeners
            .iter()
            .position(|l| l.role == role && (l.configured == addr || l.local == addr))?;
        let inherited = self.listeners.remove(i);
        let local = inherited.local;
        Some(
            inherited
                .sockets
                .into_iter()
                .map(|fd| {
                    let listener = std::net::TcpListener::from(fd);
                    listener.set_nonblocking(true)?;
                    // A socket that is not a TCP listener bound where offered is refused.
                    if listener.local_addr()? != local {
                        return Err(std::io::Error::other(
                            "an offered socket is not the listener",
                        ));
                    }
                    Ok(listener)
                })
                .collect::<Result<_, _>>()
                .map_err(|source| Error::Bind { addr, source }),
        )
    }

    /// Tells the running process that this one accepts connections now: it stops
    /// accepting and drains. Listeners nobody claimed close here (still open there until
    /// it exits).
    pub async fn ready(self) -> Result<Predecessor, Error> {
        for l in &self.listeners {
            tracing::warn!(role = %l.role, addr = %l.local, "an inherited listener is not in the new configuration; closing it");
        }
        let Takeover {
            stream, path, pid, ..
        } = self;
        tokio::task::spawn_blocking(move || {
            (&stream).write_all(&[READY]).map_err(handover_io(&path))?;
            Ok(Predecessor { stream, pid })
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
    }

    /// The handover socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The process that was taken over, now draining.
#[derive(Debug)]
pub struct Predecessor {
    stream: UnixStream,
    pid: u32,
}

impl Predecessor {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until it has exited (or `timeout` passes); true when it has.
    pub async fn exited(self, timeout: Duration) -> bool {
        tokio::task::spawn_blocking(move || {
            if self.stream.set_read_timeout(Some(timeout)).is_err() {
                return false;
            }
            let mut byte = [0u8; 1];
            matches!((&self.stream).read(&mut byte), Ok(0))
        })
        .await
        .unwrap_or(false)
    }
}

/// What `handle`'s proxy offers a successor: its listeners and its live routing table.
pub fn proxy_offer(
    handle: &ProxyHandle,
) -> Result<(Vec<ListenerSockets>, Option<RoutingConfig>), Error> {
    Ok((handle.listener_sockets()?, Some(handle.routing())))
}
