//! Server-sent event boundaries (`text/event-stream`), so a draining event stream ends after a whole event.
//!
//! An event ends with an empty line (WHATWG HTML, "Server-sent events"): two line
//! ends in a row, each CRLF, LF or CR. [`EventTail`] remembers the last bytes of a
//! stream's data and says whether they end an event; a stream ended there loses
//! nothing, and the client's `EventSource` reconnects (to a backend that is not
//! draining).

/// Whether a `content-type` value is `text/event-stream` (parameters ignored).
pub(crate) fn is_event_stream(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.eq_ignore_ascii_case(b"text/event-stream")
}

/// The last bytes of an event stream's data.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EventTail {
    /// The last (up to) four bytes, the latest in the low byte.
    last: u32,
    /// How many bytes have been seen, capped at 4.
    seen: u8,
}

impl EventTail {
    /// Notes the next data bytes.
    pub fn push(&mut self, data: &[u8]) {
        let tail = &data[data.len().saturating_sub(4)..];
        for b in tail {
            self.last = (self.last << 8) | u32::from(*b);
        }
        self.seen = self.seen.saturating_add(tail.len() as u8).min(4);
    }

    /// Whether the data so far ends with a whole event (or is empty).
    pub fn at_event_end(&self) -> bool {
        let lf_lf = self.seen >= 2 && self.last & 0xffff == 0x0a0a;
        let cr_cr = self.seen >= 2 && self.last & 0xffff == 0x0d0d;
        let crlf_crlf = self.seen >= 4 && self.last == 0x0d0a_0d0a;
        self.seen == 0 || lf_lf || cr_cr || crlf_crlf
    }

    /// The length of the first prefix of `data` after which the stream is at an
    /// event end, noting the bytes up to there (`None`: no event ends in `data`,
    /// all of it noted).
    pub fn first_event_end(&mut self, data: &[u8]) -> Option<usize> {
        for (i, b) in data.iter().enumerate() {
            self.push(std::slice::from_ref(b));
            if self.at_event_end() {
                return Some(i + 1);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(is_event_stream(b"text/event-stream"));
        assert!(is_event_stream(b"Text/Event-Stream; charset=utf-8"));
        assert!(!is_event_stream(b"text/plain"));
        assert!(!is_event_stream(b""));
    }

    #[test]
    fn event_ends_by_each_line_ending() {
        let ends = |chunks: &[&[u8]]| {
            let mut t = EventTail::default();
            for c in chunks {
                t.push(c);
            }
            t.at_event_end()
        };
        assert!(ends(&[]));
        assert!(ends(&[b"data: 1\n\n"]));
        assert!(ends(&[b"data: 1\r\n\r\n"]));
        assert!(ends(&[b"data: 1\r\r"]));
        assert!(ends(&[b"data: 1\n", b"\n"]));
        assert!(ends(&[b"data: 1\r\n\r", b"\n"]));
        assert!(!ends(&[b"data: 1\n"]));
        assert!(!ends(&[b"data: 1\r\n"]));
        assert!(!ends(&[b"data: 1\n\ndata: 2"]));
        let mut t = EventTail::default();
        assert_eq!(t.first_event_end(b"data: 1\n\ndata: 2\n\n"), Some(9));
        assert_eq!(t.first_event_end(b"data: 2"), None);
        assert_eq!(t.first_event_end(b"\n\nx"), Some(2));
    }
}
