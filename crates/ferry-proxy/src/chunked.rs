//! Finding the end of a chunked message body (RFC 9112 §7.1) without decoding it.
//!
//! The HTTP/1.1 fast path passes a chunked body through byte for byte; it only
//! needs to know where the body ends, so the connection can carry the next
//! message. [`Chunked`] is fed the bytes as they arrive and says how many of
//! them belong to the body.

/// Longest chunk-size line (size, extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;
/// Most trailer bytes accepted in all.
const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChunkError {
    /// A chunk size that is not hexadecimal or does not fit in 64 bits.
    BadSize,
    /// A line not ended by CRLF where the grammar needs one.
    BadLineEnd,
    /// A chunk-size line or the trailers are longer than this proxy accepts.
    TooLong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size; `digits` read so far.
    Size { digits: u8 },
    /// After the size: optional whitespace and extensions up to CR.
    Extension,
    /// Expecting the LF of the chunk-size line.
    SizeLf,
    /// Inside chunk data; bytes left.
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// Expecting the LF ending a trailer line.
    TrailerLf,
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// The framing state of one chunked body.
#[derive(Clone, Debug)]
pub(crate) struct Chunked {
    state: State,
    /// The current chunk size being read.
    size: u64,
    /// Bytes of the current line (size line or trailer line).
    line: usize,
    /// Trailer bytes so far.
    trailers: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
}

impl Chunked {
    /// The state at the start of a body.
    pub fn new() -> Self {
        Self {
            state: State::Size { digits: 0 },
            size: 0,
            line: 0,
            trailers: 0,
        }
    }

    /// Whether the whole body (last chunk, trailers, final CRLF) has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the bytes so far end a chunk (or nothing was fed): a last chunk
    /// written now would end the body cleanly.
    pub fn at_boundary(&self) -> bool {
        self.state == State::Size { digits: 0 }
    }

    /// Inside chunk data: how many data bytes are left in the chunk.
    pub fn data_left(&self) -> Option<u64> {
        match self.state {
            State::Data(left) => Some(left),
            _ => None,
        }
    }

    /// Feeds the next bytes; returns how many belong to the body (all of them
    /// unless the body ends inside `input`).
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => return Ok(i),
                State::Data(left) => {
                    let avail = (input.len() - i) as u64;
                    let take = left.min(avail);
                    // `take` is at most the input length, so it fits in usize.
                    i += usize::try_from(take).unwrap_or(usize::MAX);
                    self.state = if take == left {
                        State::DataCr
                    } else {
                        State::Data(left - take)
                    };
                    continue;
                }
                State::Size { digits } => match hex(b) {
                    Some(d) => {
                        if digits >= 16 {
                            return Err(ChunkError::BadSize);
                        }
                        self.size = (self.size << 4) | u64::from(d);
                        self.state = State::Size { digits: digits + 1 };
                        self.line += 1;
                    }
                    None if digits == 0 => return Err(ChunkError::BadSize),
                    None => {
                        self.state = State::Extension;
                        continue; // look at this byte again as part of the extension
                    }
                },
                State::Extension => {
                    self.line += 1;
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        b'\n' => return Err(ChunkError::BadLineEnd),
                        _ => {}
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.line = 0;
                    self.state = if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data(self.size)
                    };
                    self.size = 0;
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::TrailerStart => {
                    self.state = if b == b'\r' {
                        State::EndLf
                    } else {
                        self.trailers += 1;
                        State::Trailer
                    };
                }
                State::Trailer => {
                    self.trailers += 1;
                    self.line += 1;
                    match b {
                        b'\r' => self.state = State::TrailerLf,
                        b'\n' => return Err(ChunkError::BadLineEnd),
                        _ => {}
                    }
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.trailers += 1;
                    self.line = 0;
                    self.state = State::TrailerStart;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = State::Done;
                    return Ok(i + 1);
                }
            }
            if self.line > MAX_LINE || self.trailers > MAX_TRAILERS {
                return Err(ChunkError::TooLong);
            }
            i += 1;
        }
        Ok(i)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn whole(input: &[u8]) -> Result<Option<usize>, ChunkError> {
        let mut c = Chunked::new();
        let n = c.feed(input)?;
        Ok(c.is_done().then_some(n))
    }

    #[test]
    fn finds_the_end_and_leaves_what_follows() {
        let body =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-t: 1\r\n\r\nNEXT";
        assert_eq!(whole(body), Ok(Some(body.len() - 4)));
        assert_eq!(whole(b"0\r\n\r\n"), Ok(Some(5)));
        assert_eq!(whole(b"000\r\n\r\nGET"), Ok(Some(7)));
    }

    #[test]
    fn incomplete_bodies_are_not_done() {
        for cut in [
            b"5\r\nhel".as_slice(),
            b"5\r\nhello\r\n",
            b"0\r\n",
            b"0\r\nx: 1\r\n",
        ] {
            assert_eq!(whole(cut), Ok(None), "{:?}", String::from_utf8_lossy(cut));
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert_eq!(whole(b"g\r\n"), Err(ChunkError::BadSize));
        assert_eq!(whole(b"\r\n"), Err(ChunkError::BadSize));
        assert_eq!(
            whole(b"11111111111111111\r\n"),
            Err(ChunkError::BadSize),
            "17 hex digits overflow"
        );
        assert_eq!(whole(b"5\nhello"), Err(ChunkError::BadLineEnd));
        assert_eq!(whole(b"5\r\nhelloX\r\n"), Err(ChunkError::BadLineEnd));
        assert_eq!(whole(b"0\r\n\rX"), Err(ChunkError::BadLineEnd));
        let long = [b"1;".as_slice(), &[b'a'; MAX_LINE + 8]].concat();
        assert_eq!(whole(&long), Err(ChunkError::TooLong));
    }

    /// Encodes `chunks` (non-empty ones) with optional extensions and trailers.
    fn encode(chunks: &[Vec<u8>], ext: bool, trailers: &[(String, String)]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            out.extend_from_slice(format!("{:X}", c.len()).as_bytes());
            if ext {
                out.extend_from_slice(b" ; name=\"v\"");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        for (k, v) in trailers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    proptest! {
        /// However the bytes are split into reads, the end is found exactly
        /// where the encoder put it, and bytes after it are never consumed.
        #[test]
        fn end_found_exactly_across_any_split(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
            ext in any::<bool>(),
            trailers in proptest::collection::vec(("[a-z]{1,8}", "[ -~]{0,20}"), 0..3),
            splits in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let body = encode(&chunks, ext, &trailers);
            let mut input = body.clone();
            input.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            let mut c = Chunked::new();
            let mut pos = 0;
            let mut k = 0;
            while pos < input.len() && !c.is_done() {
                let step = splits[k % splits.len()].min(input.len() - pos);
                k += 1;
                let n = c.feed(&input[pos..pos + step]).expect("valid encoding");
                prop_assert!(n <= step);
                pos += n;
                if n < step {
                    prop_assert!(c.is_done());
                }
            }
            prop_assert!(c.is_done());
            prop_assert_eq!(pos, body.len());
        }
    }

    /// Boundaries are reported between chunks only, and data bytes by count.
    #[test]
    fn boundaries_and_data_left() {
        let mut c = Chunked::new();
        assert!(c.at_boundary());
        c.feed(b"5\r\nhe").expect("valid");
        assert!(!c.at_boundary());
        assert_eq!(c.data_left(), Some(3));
        c.feed(b"llo\r").expect("valid");
        assert!(!c.at_boundary());
        assert_eq!(c.data_left(), None);
        c.feed(b"\n").expect("valid");
        assert!(c.at_boundary());
        c.feed(b"0\r\n").expect("valid");
        assert!(!c.at_boundary(), "after the last chunk");
    }

    proptest! {
        /// A chunk boundary is reported exactly after each chunk's CRLF.
    #[test]
    fn boundaries_only_between_chunks(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..5),
        ext in any::<bool>(),
    ) {
        let body = encode(&chunks, ext, &[]);
        let mut expected = vec![0];
        let mut at = 0;
        for c in &chunks {
            let size_line = format!("{:X}", c.len()).len() + if ext { 11 } else { 0 } + 2;
            at += size_line + c.len() + 2;
            expected.push(at);
        }
        let mut c = Chunked::new();
        let mut found = vec![0];
        for (i, b) in body.iter().enumerate() {
            c.feed(std::slice::from_ref(b)).expect("valid encoding");
            if c.at_boundary() {
                found.push(i + 1);
            }
        }
        prop_assert!(c.is_done());
        prop_assert_eq!(found, expected);
    }

    /// Arbitrary bytes never panic, and never claim more than was fed.
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut c = Chunked::new();
            if let Ok(n) = c.feed(&input) {
                prop_assert!(n <= input.len());
            }
        }
    }
}
