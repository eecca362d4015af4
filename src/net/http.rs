//! A bounded HTTP/1.1 request-head reader, shared by every listener kind: the WebSocket upgrade
//! of game clients and the admin API (which also reads `Content-Length` bodies through it, and
//! starts the next keep-alive request from the bytes left over). It reads from an edge-triggered socket into a
//! buffer that never grows past the listener's byte bound, finds the end of the head without
//! re-scanning what it already saw (a slow sender costs linear, not quadratic, CPU), and parses
//! it with `httparse` into a borrowed [`Head`]. The head's deadline travels with it, so the
//! driver's deadline queue can tell a stale entry (an earlier request on the same connection)
//! from the current one.

use crate::core::Millis;
use std::io::{self, Read};

/// Headers a head may carry; browsers send about 15. More is answered like an oversize head.
pub const HEADERS_MAX: usize = 32;
/// Bytes asked of the socket per read while a head grows.
const READ_CHUNK_BYTES: usize = 2048;

/// One request head being read: the bytes so far, the bound they may not pass, and when the
/// whole head must have arrived.
#[derive(Debug)]
pub struct HeadReader {
    received: Vec<u8>,
    bytes_max: usize,
    deadline: Millis,
}

/// How reading from the socket went.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadProgress {
    /// The head ended (or the byte bound was reached): parse it with [`HeadReader::parse`].
    Ready,
    /// Nothing more to read until the next readable edge.
    Waiting,
    /// The peer closed or the socket failed before a head arrived: drop the connection.
    Gone,
}

/// Why a head was refused; [`HeadError::status`] is the response it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Longer than the listener's bound, or more than [`HEADERS_MAX`] headers.
    TooLarge,
    /// Not an HTTP/1.x request head.
    Malformed,
}

impl HeadError {
    pub fn status(self) -> Status {
        match self {
            HeadError::TooLarge => Status::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HeadError::Malformed => Status::BAD_REQUEST,
        }
    }
}

/// A parsed request head, borrowing the reader's bytes.
pub struct Head<'b> {
    pub method: &'b str,
    /// The target's path, without the query.
    pub path: &'b str,
    /// The target's query, without the `?` (empty when there is none).
    pub query: &'b str,
    headers: [httparse::Header<'b>; HEADERS_MAX],
    header_count: usize,
    /// Bytes of the head, its final blank line included: whatever follows belongs to the body or
    /// to the protocol the connection upgrades to.
    pub len: usize,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
}

impl<'b> Head<'b> {
    /// The first header called `name` (case-insensitive), as text; a value that is not UTF-8
    /// reads as empty.
    pub fn header(&self, name: &str) -> Option<&'b str> {
        self.headers[..self.header_count]
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).unwrap_or(""))
    }

    /// Every header called `name`, in order (a request may repeat one, as a smuggling attempt
    /// repeats `Content-Length`).
    pub fn header_values<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'b str> + 'h {
        self.headers[..self.header_count]
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).unwrap_or(""))
    }

    /// Whether header `name` lists `token` among its comma-separated values (case-insensitive),
    /// as `Connection: keep-alive, Upgrade` does.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

impl HeadReader {
    /// A reader that refuses heads over `bytes_max` and whose head is due by `deadline`.
    pub fn new(bytes_max: usize, deadline: Millis) -> HeadReader {
        HeadReader { received: Vec::new(), bytes_max, deadline }
    }

    /// A reader that starts with `received`: the bytes a keep-alive connection sent after its
    /// previous request (pipelining). They may already hold a whole request, so parse before
    /// reading.
    pub fn with_received(received: Vec<u8>, bytes_max: usize, deadline: Millis) -> HeadReader {
        HeadReader { received, bytes_max, deadline }
    }

    pub fn deadline(&self) -> Millis {
        self.deadline
    }

    /// Bytes received so far.
    pub fn len(&self) -> usize {
        self.received.len()
    }

    pub fn is_empty(&self) -> bool {
        self.received.is_empty()
    }

    /// The received bytes in `range` (a request's body after its head).
    pub fn bytes(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.received[range]
    }

    /// Reads what the socket has, up to the byte bound, until the head ends or the socket has
    /// nothing more. `drained` is the connection's edge state (see `read::read_until_short`).
    pub fn read_from(&mut self, socket: &mut impl Read, drained: &mut bool) -> HeadProgress {
        self.read_until(socket, drained, self.bytes_max, |received, start| {
            // Look for the blank line only in the new bytes (and the three before them).
            received[start.saturating_sub(3)..].windows(4).any(|w| w == b"\r\n\r\n")
        })
    }

    /// Reads until `total_len` bytes are held (a head and its `Content-Length` body; the caller
    /// bounds `total_len`), never past it: what follows is the next request's.
    pub fn read_body_from(&mut self, socket: &mut impl Read, drained: &mut bool, total_len: usize) -> HeadProgress {
        self.read_until(socket, drained, total_len, |_, _| false)
    }

    /// Reads until `ended` says so (given the bytes and where this read's bytes start) or
    /// `bytes_max` bytes are held.
    fn read_until(
        &mut self,
        socket: &mut impl Read,
        drained: &mut bool,
        bytes_max: usize,
        ended: impl Fn(&[u8], usize) -> bool,
    ) -> HeadProgress {
        if self.received.len() >= bytes_max {
            return HeadProgress::Ready;
        }
        loop {
            let start = self.received.len();
            // Room is never zero: at the bound the head is Ready before another read.
            let room = bytes_max.saturating_sub(start).clamp(1, READ_CHUNK_BYTES);
            self.received.resize(start + room, 0);
            let read = super::read::read_until_short(socket, &mut self.received[start..], drained);
            self.received.truncate(start + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return HeadProgress::Gone,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return HeadProgress::Waiting,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return HeadProgress::Gone,
            }
            if ended(&self.received, start) || self.received.len() >= bytes_max {
                return HeadProgress::Ready;
            }
        }
    }

    /// Parses the bytes received so far. `Ok(None)`: the head is not complete yet.
    pub fn parse(&self) -> Result<Option<Head<'_>>, HeadError> {
        parse_head(&self.received, self.bytes_max)
    }

    /// Everything received after a head of `head_len` bytes (the first bytes of the protocol the
    /// connection switches to), leaving the reader empty.
    pub fn take_rest(&mut self, head_len: usize) -> Vec<u8> {
        let rest = self.received.split_off(head_len.min(self.received.len()));
        self.received = Vec::new();
        rest
    }
}

/// Parses `received` as an HTTP/1.x request head of at most `bytes_max` bytes.
pub fn parse_head(received: &[u8], bytes_max: usize) -> Result<Option<Head<'_>>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(received) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if received.len() >= bytes_max => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if len > bytes_max {
        return Err(HeadError::TooLarge);
    }
    let method = request.method.unwrap_or("");
    let target = request.path.unwrap_or("");
    let header_count = request.headers.len();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let minor_version = request.version.unwrap_or(1);
    Ok(Some(Head { method, path, query, headers, header_count, len, minor_version }))
}

/// What `+` means in a percent-encoded string.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PlusSign {
    /// A space, as HTML forms encode query strings.
    Space,
    /// Itself, as in a path segment.
    Literal,
}

/// Decodes `%XX` escapes (and `+` as `plus` says). `None` on a broken escape or bytes that are
/// not UTF-8.
pub fn percent_decode(value: &str, plus: PlusSign) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus == PlusSign::Space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A response status: code and reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

impl Status {
    pub const CONTINUE: Status = Status(100, "Continue");
    pub const SWITCHING_PROTOCOLS: Status = Status(101, "Switching Protocols");
    pub const OK: Status = Status(200, "OK");
    pub const BAD_REQUEST: Status = Status(400, "Bad Request");
    pub const UNAUTHORIZED: Status = Status(401, "Unauthorized");
    pub const FORBIDDEN: Status = Status(403, "Forbidden");
    pub const NOT_FOUND: Status = Status(404, "Not Found");
    pub const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
    pub const REQUEST_TIMEOUT: Status = Status(408, "Request Timeout");
    pub const CONFLICT: Status = Status(409, "Conflict");
    pub const CONTENT_TOO_LARGE: Status = Status(413, "Content Too Large");
    pub const UPGRADE_REQUIRED: Status = Status(426, "Upgrade Required");
    pub const TOO_MANY_REQUESTS: Status = Status(429, "Too Many Requests");
    pub const REQUEST_HEADER_FIELDS_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
    pub const NOT_IMPLEMENTED: Status = Status(501, "Not Implemented");
    pub const SERVICE_UNAVAILABLE: Status = Status(503, "Service Unavailable");
    pub const INSUFFICIENT_STORAGE: Status = Status(507, "Insufficient Storage");
}

/// A complete response head (and body): `status`, the `headers` lines as given (each ending in
/// CRLF), then `Content-Length` and the body when `body` is `Some`. Used for upgrade refusals,
/// the 101 and every admin API response.
pub fn response(status: Status, headers: &str, body: Option<(&str, &[u8])>) -> Vec<u8> {
    let Status(code, reason) = status;
    let mut out = format!("HTTP/1.1 {code} {reason}\r\n{headers}").into_bytes();
    if let Some((content_type, body)) = body {
        out.extend_from_slice(format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that hands out its chunks one per read, then WouldBlock (or EOF when `eof`).
    struct Chunks {
        chunks: Vec<&'static [u8]>,
        eof: bool,
    }

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.chunks.is_empty() {
                return if self.eof { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
            }
            let chunk = self.chunks.remove(0);
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                self.chunks.insert(0, &chunk[n..]);
            }
            Ok(n)
        }
    }

    /// Reads as the driver does, with a fresh readable edge while the socket has chunks left.
    fn read_edges(reader: &mut HeadReader, socket: &mut Chunks) -> HeadProgress {
        loop {
            match reader.read_from(socket, &mut false) {
                HeadProgress::Waiting if !socket.chunks.is_empty() => continue,
                progress => return progress,
            }
        }
    }

    #[test]
    fn a_head_split_anywhere_is_found_and_parsed_with_its_query_and_headers() {
        let mut socket = Chunks {
            chunks: vec![b"GET /ws?a=1&b HTTP/1.1\r\nHo", b"st: x\r\nX-Y: 1, Two\r", b"\n\r\nrest"],
            eof: false,
        };
        let mut reader = HeadReader::new(1024, Millis(5));
        assert_eq!(read_edges(&mut reader, &mut socket), HeadProgress::Ready);
        let head = reader.parse().unwrap().expect("complete");
        assert_eq!((head.method, head.path, head.query), ("GET", "/ws", "a=1&b"));
        assert_eq!(head.header("host"), Some("x"));
        assert!(head.header_has_token("x-y", "two"));
        assert!(!head.header_has_token("x-y", "three"));
        let len = head.len;
        assert_eq!(reader.take_rest(len), b"rest");
        assert_eq!(reader.deadline(), Millis(5));
    }

    #[test]
    fn an_unfinished_head_waits_and_a_closed_peer_is_gone() {
        let mut reader = HeadReader::new(1024, Millis(0));
        let mut socket = Chunks { chunks: vec![b"GET / HTTP/1.1\r\n"], eof: false };
        assert_eq!(reader.read_from(&mut socket, &mut false), HeadProgress::Waiting);
        assert!(reader.parse().unwrap().is_none());
        socket.eof = true;
        assert_eq!(reader.read_from(&mut socket, &mut false), HeadProgress::Gone);
    }

    #[test]
    fn the_byte_bound_stops_reading_and_refuses_the_head() {
        let mut reader = HeadReader::new(300, Millis(0));
        let mut socket = Chunks { chunks: vec![b"GET / HTTP/1.1\r\nX-Pad: ", &[b'p'; 4096]], eof: false };
        assert_eq!(read_edges(&mut reader, &mut socket), HeadProgress::Ready);
        assert_eq!(reader.received.len(), 300, "never more than the bound is read");
        assert_eq!(reader.parse().err(), Some(HeadError::TooLarge));
        assert_eq!(reader.parse().err().map(HeadError::status), Some(Status::REQUEST_HEADER_FIELDS_TOO_LARGE));
    }

    #[test]
    fn a_body_is_read_to_its_length_and_never_past_it() {
        let mut socket =
            Chunks { chunks: vec![b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", b"cdeGET /next"], eof: false };
        let mut reader = HeadReader::new(1024, Millis(0));
        assert_eq!(read_edges(&mut reader, &mut socket), HeadProgress::Ready);
        let head_len = reader.parse().unwrap().expect("complete").len;
        let total = head_len + 5;
        assert_eq!(reader.read_body_from(&mut socket, &mut false, total), HeadProgress::Ready);
        assert_eq!(reader.bytes(head_len..total), b"abcde");
        assert_eq!(reader.len(), total, "the next request's bytes stay unread");
        let next = HeadReader::with_received(reader.take_rest(total), 1024, Millis(9));
        assert!(next.is_empty() && next.deadline() == Millis(9));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Eb+c", PlusSign::Space).as_deref(), Some("a.b c"));
        assert_eq!(percent_decode("a%2Eb+c", PlusSign::Literal).as_deref(), Some("a.b+c"));
        assert_eq!(percent_decode("%zz", PlusSign::Space), None);
        assert_eq!(percent_decode("%4", PlusSign::Space), None);
        assert_eq!(percent_decode("%ff", PlusSign::Space), None);
    }

    #[test]
    fn garbage_and_too_many_headers_are_refused() {
        assert_eq!(parse_head(b"\x16\x03\x01 garbage\r\n\r\n", 1024).err(), Some(HeadError::Malformed));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(HEADERS_MAX + 1));
        assert_eq!(parse_head(many.as_bytes(), 8192).err(), Some(HeadError::TooLarge));
    }

    #[test]
    fn responses_carry_status_headers_and_a_counted_body() {
        let with_body = response(Status::NOT_FOUND, "Connection: close\r\n", Some(("text/plain", b"no\n")));
        assert_eq!(
            String::from_utf8(with_body).unwrap(),
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nno\n"
        );
        assert_eq!(
            response(Status::SWITCHING_PROTOCOLS, "Upgrade: websocket\r\n", None),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        );
    }
}
