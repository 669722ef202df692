//! Finding WebSocket frame boundaries (RFC 6455 §5.2) in a byte stream without buffering payloads.
//!
//! A draining backend's WebSocket tunnel must end with Close frames, and a Close
//! may only be written between two frames. [`Frames`] is fed the tunnelled bytes
//! of one direction as they pass and knows where each frame ends; it reads
//! headers (2 to 14 bytes) and skips payloads by their length.

/// The opcode of a Close frame.
pub(crate) const OPCODE_CLOSE: u8 = 0x8;
/// Close status "going away" (RFC 6455 §7.4.1): the server is leaving.
pub(crate) const GOING_AWAY: u16 = 1001;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading a header: `have` bytes of it so far.
    Header,
    /// Inside a payload: bytes left.
    Payload(u64),
}

/// The framing state of one direction of a WebSocket connection.
#[derive(Clone, Debug)]
pub(crate) struct Frames {
    state: State,
    header: [u8; 14],
    have: usize,
    /// The opcode of the frame in progress, or of the last one completed.
    opcode: u8,
}

impl Default for Frames {
    fn default() -> Self {
        Self::new()
    }
}

impl Frames {
    /// The state at the start of a connection (at a frame boundary).
    pub fn new() -> Self {
        Self {
            state: State::Header,
            header: [0; 14],
            have: 0,
            opcode: 0,
        }
    }

    /// Whether every byte fed so far belongs to a complete frame.
    pub fn at_boundary(&self) -> bool {
        self.state == State::Header && self.have == 0
    }

    /// The opcode of the frame in progress, or of the last completed one at a boundary.
    pub fn opcode(&self) -> u8 {
        self.opcode
    }

    /// Feeds bytes up to the end of the frame in progress; returns how many were
    /// taken (all of `input`, unless a frame ends inside it: then up to its end).
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Payload(left) => {
                    let take = left.min((input.len() - i) as u64);
                    // `take` is at most the input length, so it fits in usize.
                    i += usize::try_from(take).unwrap_or(usize::MAX);
                    if take == left {
                        self.state = State::Header;
                        return i;
                    }
                    self.state = State::Payload(left - take);
                }
                State::Header => {
                    self.header[self.have] = input[i];
                    self.have += 1;
                    i += 1;
                    if let Some(len) = self.header_done() {
                        self.have = 0;
                        if len == 0 {
                            return i;
                        }
                        self.state = State::Payload(len);
                    }
                }
            }
        }
        i
    }

    /// Feeds every byte of `input` (any number of frames).
    pub fn feed_all(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            let n = self.feed(input);
            input = &input[n..];
        }
    }

    /// The payload length once the header read so far is complete.
    fn header_done(&mut self) -> Option<u64> {
        let h = &self.header[..self.have];
        if h.len() == 1 {
            self.opcode = h[0] & 0x0f;
        }
        if h.len() < 2 {
            return None;
        }
        let mask = if h[1] & 0x80 != 0 { 4 } else { 0 };
        let (ext, len7) = match h[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        if h.len() < 2 + ext + mask {
            return None;
        }
        Some(len7.unwrap_or_else(|| {
            h[2..2 + ext]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        }))
    }
}

/// A Close frame with `code`; masked with `mask` when sent to a server
/// (client-to-server frames must be masked, server-to-client ones must not).
pub(crate) fn close_frame(code: u16, mask: Option<[u8; 4]>) -> Vec<u8> {
    let payload = code.to_be_bytes();
    let mut out = vec![0x80 | OPCODE_CLOSE, payload.len() as u8];
    match mask {
        Some(m) => {
            out[1] |= 0x80;
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(&payload),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Encodes one frame (payload bytes are arbitrary: masking does not change boundaries).
    fn encode(opcode: u8, mask: bool, len: usize) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        let m = if mask { 0x80 } else { 0 };
        if len < 126 {
            out.push(m | len as u8);
        } else if len <= 0xffff {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(m | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if mask {
            out.extend_from_slice(&[0xa5, 0x5a, 0x0f, 0xf0]);
        }
        out.extend((0..len).map(|i| (i % 251) as u8));
        out
    }

    #[test]
    fn headers_of_each_length_form() {
        for (len, header) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            for mask in [false, true] {
                let frame = encode(0x2, mask, len);
                assert_eq!(frame.len(), header + if mask { 4 } else { 0 } + len);
                let mut f = Frames::new();
                assert_eq!(f.feed(&[frame.as_slice(), b"tail"].concat()), frame.len());
                assert!(f.at_boundary());
                assert_eq!(f.opcode(), 0x2);
            }
        }
    }

    #[test]
    fn a_frame_in_progress_is_not_a_boundary() {
        let frame = encode(0x1, true, 300);
        let mut f = Frames::new();
        assert!(f.at_boundary());
        f.feed_all(&frame[..1]);
        assert!(!f.at_boundary(), "inside the header");
        f.feed_all(&frame[1..100]);
        assert!(!f.at_boundary(), "inside the payload");
        f.feed_all(&frame[100..]);
        assert!(f.at_boundary());
    }

    #[test]
    fn close_frames_encode_their_code() {
        assert_eq!(close_frame(GOING_AWAY, None), [0x88, 2, 0x03, 0xe9]);
        let masked = close_frame(GOING_AWAY, Some([1, 2, 3, 4]));
        assert_eq!(masked, [0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe9 ^ 2]);
        let mut f = Frames::new();
        assert_eq!(f.feed(&masked), masked.len());
        assert!(f.at_boundary());
        assert_eq!(f.opcode(), OPCODE_CLOSE);
    }

    proptest! {
        /// However the bytes are split into reads, every frame end is found
        /// exactly where the encoder put it, with the frame's opcode.
        #[test]
        fn boundaries_found_exactly_across_any_split(
            frames in proptest::collection::vec(
                (0u8..16, any::<bool>(), prop_oneof![0usize..130, 60_000usize..70_000]),
                0..6,
            ),
            splits in proptest::collection::vec(1usize..3000, 1..40),
        ) {
            let mut input = Vec::new();
            let mut ends = Vec::new();
            for (op, mask, len) in &frames {
                input.extend(encode(*op, *mask, *len));
                ends.push((input.len(), *op));
            }
            let mut f = Frames::new();
            let mut found = Vec::new();
            let mut pos = 0;
            let mut k = 0;
            while pos < input.len() {
                let step = splits[k % splits.len()].min(input.len() - pos);
                k += 1;
                let mut piece = &input[pos..pos + step];
                while !piece.is_empty() {
                    let n = f.feed(piece);
                    prop_assert!(n >= 1 && n <= piece.len());
                    pos += n;
                    piece = &piece[n..];
                    if f.at_boundary() {
                        found.push((pos, f.opcode()));
                    } else {
                        prop_assert!(piece.is_empty(), "stopped before a frame end");
                    }
                }
            }
            prop_assert_eq!(found, ends);
        }

        /// Arbitrary bytes never panic and every feed makes progress.
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut f = Frames::new();
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let n = f.feed(rest);
                prop_assert!(n >= 1 && n <= rest.len());
                rest = &rest[n..];
            }
        }
    }
}
