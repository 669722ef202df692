//! Upgraded connections (after a 101): a WebSocket relay that ends with Close frames when its backend drains, and a plain tunnel for other protocols.
//!
//! Drain protocol for a WebSocket: both directions are relayed byte for byte
//! while [`Frames`] tracks where each frame ends. When the backend's stream
//! budget expires ([`StreamsEnd`]), each direction finishes the frame in
//! progress (at most [`STREAM_GRACE`], then it is cut) and forwards nothing
//! after it; the peer it writes to then gets a Close frame with status 1001
//! (going away) — unmasked to the client, masked to the backend, as each side
//! expects. Each direction then reads and drops what its peer still sends until
//! that peer's Close frame (the answer) or end of stream, for at most
//! [`CLOSE_WAIT`], and both connections are shut down. A protocol other than
//! WebSocket has no frames to respect: its tunnel is shut down at once.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::backend::{STREAM_GRACE, StreamsEnd};
use crate::ws_frame::{Frames, GOING_AWAY, OPCODE_CLOSE, close_frame};

/// How long a drained WebSocket waits for its peers' Close frames.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(1);

const BUF: usize = 16 * 1024;

/// Relays an upgraded connection until either side ends it or the backend's
/// stream budget expires.
pub(crate) async fn relay<C, U>(client: C, upstream: U, websocket: bool, end: StreamsEnd)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    if websocket {
        relay_websocket(client, upstream, end).await;
    } else {
        tunnel(client, upstream, end).await;
    }
}

/// Copies bytes both ways; shuts both sides down when the budget expires.
async fn tunnel<C, U>(mut client: C, mut upstream: U, end: StreamsEnd)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        () = end.expired() => {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                let _ = tokio::join!(client.shutdown(), upstream.shutdown());
            })
            .await;
        }
    }
}

async fn relay_websocket<C, U>(client: C, upstream: U, end: StreamsEnd)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let mask = crate::forward::random_u64().to_le_bytes();
    let to_backend = close_frame(GOING_AWAY, Some([mask[0], mask[1], mask[2], mask[3]]));
    let to_client = close_frame(GOING_AWAY, None);
    let up = direction(&mut cr, &mut uw, &to_backend, end.clone());
    let down = direction(&mut ur, &mut cw, &to_client, end.clone());
    let both = async {
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        while !(up_done && down_done) {
            // A failed side ends the whole connection, as a plain tunnel does.
            let ok = tokio::select! {
                r = &mut up, if !up_done => { up_done = true; r }
                r = &mut down, if !down_done => { down_done = true; r }
            };
            if ok.is_err() {
                return;
            }
        }
    };
    // Every phase after the expiry is bounded by its own deadline; this bounds a
    // write that was already blocked on a peer that stopped reading.
    let hard_stop = async {
        end.expired().await;
        tokio::time::sleep(STREAM_GRACE + CLOSE_WAIT + Duration::from_millis(500)).await;
    };
    tokio::select! {
        () = both => {}
        () = hard_stop => {}
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        let _ = tokio::join!(cw.shutdown(), uw.shutdown());
    })
    .await;
}

/// One direction of a WebSocket: relays frames from `rd` to `wr`; once the
/// budget expires, finishes the frame in progress, writes `close` and waits
/// for the reader's peer's Close (see the module note). `Err`: an I/O error.
async fn direction<R, W>(rd: &mut R, wr: &mut W, close: &[u8], end: StreamsEnd) -> Result<(), ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut frames = Frames::new();
    let mut buf = vec![0u8; BUF];
    let expired = end.expired();
    tokio::pin!(expired);
    loop {
        let n = tokio::select! {
            biased;
            () = &mut expired => break,
            r = rd.read(&mut buf) => r.map_err(|_| ())?,
        };
        if n == 0 {
            // The peer finished: pass the end on, the other direction goes on.
            let _ = wr.shutdown().await;
            return Ok(());
        }
        frames.feed_all(&buf[..n]);
        wr.write_all(&buf[..n]).await.map_err(|_| ())?;
    }
    // The budget expired: finish the frame in progress, forward nothing after it.
    let grace = Instant::now() + STREAM_GRACE;
    let mut left = 0..0;
    let finished = tokio::time::timeout_at(grace, async {
        while !frames.at_boundary() {
            let n = rd.read(&mut buf).await.map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            let k = frames.feed(&buf[..n]);
            wr.write_all(&buf[..k]).await.map_err(|_| ())?;
            left = k..n;
        }
        wr.write_all(close).await.map_err(|_| ())?;
        wr.flush().await.map_err(|_| ())
    })
    .await;
    if !matches!(finished, Ok(Ok(()))) {
        // No clean point in time: cut this direction.
        let _ = tokio::time::timeout(CLOSE_WAIT, wr.shutdown()).await;
        return Ok(());
    }
    // Wait for the peer's Close (its answer to the other direction's), dropping
    // what it sends before.
    let mut answer = Frames::new();
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        let mut pending = buf[left].to_vec();
        loop {
            let mut rest = pending.as_slice();
            while !rest.is_empty() {
                let k = answer.feed(rest);
                rest = &rest[k..];
                if answer.at_boundary() && answer.opcode() == OPCODE_CLOSE {
                    return;
                }
            }
            pending.resize(BUF, 0);
            match rd.read(&mut pending).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.truncate(n),
            }
        }
    })
    .await;
    Ok(())
}
