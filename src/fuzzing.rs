//! Entry points for the cargo-fuzz targets in `fuzz/` and their regression tests
//! (`tests/fuzz_regressions.rs`). Each runs the crate's own code paths, not copies, and asserts
//! the properties the fuzzer hunts for: nothing panics on network input, whatever decodes
//! re-encodes to the same value, and the core's invariants hold.
#![doc(hidden)]

use crate::admin::{AdminKey, Playground};
use crate::auth::{self, Claims, TokenKey};
use crate::core::Millis;
use crate::limits::Limits;
use crate::net::{AdminState, Driver, ListenerId, ListenerKind, ListenerLimits, Transport};
use crate::wire::{self, Encoder, ErrorCode, ServerMessage};
use bytes::Bytes;
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;

const FUZZ_KEY: &str = "fuzz-key";
/// The admin key of the `admin_bytes` target's driver (its seeds carry it, so the fuzzer
/// reaches the routes behind it).
pub const FUZZ_ADMIN_KEY: &str = "fuzz-admin-key";

fn fuzz_limits() -> Limits {
    // Small limits make the fuzzer reach the edges quickly.
    Limits { message_bytes_max: 4096, handshake_bytes_max: 2048, connections_max: 16, ..Limits::default() }
}

/// bytes → verify + decode; anything that decodes re-encodes and decodes to the same request;
/// the cid a decode reports (on success or failure) is the one the bounded cid read finds (C-5),
/// and the codec interface decodes exactly what the free function does.
pub fn decode_envelope(data: &[u8]) {
    let options = wire::verifier_options(fuzz_limits().message_bytes_max);
    let frame = Bytes::copy_from_slice(data);
    let decoded = wire::decode_request(&frame, &options);
    // The hand-written party-data path says yes only where the verifier does, with its value.
    assert_eq!(decoded, wire::decode_request_verified(&frame, &options), "hot path and verifier disagree");
    let cid = match &decoded {
        Ok((cid, _)) | Err((cid, _)) => *cid,
    };
    assert_eq!(cid, wire::peek_cid(&frame, &options), "decode and the cid-only read disagree on the cid");
    let mut codecs = wire::Codecs::new(&fuzz_limits());
    let mut conn = wire::ConnCodec::new(wire::CodecKind::FlatBuffers);
    assert_eq!(
        codecs.decode_request(&mut conn, wire::ClientFrame::Binary(&frame)),
        decoded,
        "codec and free function differ"
    );
    if let Ok((cid, request)) = decoded {
        let again = Bytes::copy_from_slice(Encoder::new().request(cid, &request));
        assert_eq!(wire::decode_request(&again, &options), Ok((cid, request)), "re-encoded request differs");
    }
    // The client-side decoder sees server bytes; it must not panic either.
    let _ = wire::decode_server_message(data, &options);
}

/// The `core_ops` target: the fuzzer's bytes are the choices of the core simulation
/// ([`crate::sim`]), so it drives the same grammar with the same checks as `tests/sim.rs`; a
/// failed check panics, which the fuzzer reports. Steps are bounded so every input ends.
pub fn core_ops(data: &[u8]) {
    const STEPS_MAX: usize = 2_000;
    // The checks that cost as much as the whole world (full sweep, digests of every table)
    // every 16 steps and at the end; in between, each step's touched parties: an input of a
    // few hundred steps still gets a dozen full checks, at a fraction of the cost per step.
    const FULL_CHECK_EVERY: u64 = 16;
    let mut sim = crate::sim::Sim::with_rng(crate::sim::Rng::from_bytes(data), 0);
    sim.check_fully_every(FULL_CHECK_EVERY);
    let mut steps = 0;
    while !sim.exhausted() && steps < STEPS_MAX {
        sim.step();
        steps += 1;
    }
    sim.disconnect_everyone();
}

/// A valid upgrade request for the fuzz key, so inputs can reach the frame layer. Minted once:
/// signing per input would halve the fuzzer's speed.
pub fn canned_upgrade() -> &'static [u8] {
    static UPGRADE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    UPGRADE.get_or_init(mint_upgrade)
}

fn mint_upgrade() -> Vec<u8> {
    let claims = Claims { user_id: "fuzzer".into(), username: "Fuzzer".into(), expires_at_unix_s: u64::MAX / 2 };
    let token = auth::mint(&claims, &TokenKey::new(FUZZ_KEY));
    format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes()
}

/// Turns the driver gets per input byte before a connection whose peer hung up counts as stuck
/// (two per chunk read, since reads alternate with WouldBlock), plus room for the close linger.
const TURNS_PER_INPUT_BYTE: usize = 4;
const TURNS_PER_INPUT_MIN: usize = 4096;
/// Simulated time of one driver turn, and the jump between inputs that lets every deadline
/// of the last input pass, so each input starts with an idle driver.
const TURN_MS: u64 = 1;
const BETWEEN_INPUTS_MS: u64 = 3_600_000;

/// Bytes a read of the in-memory stream hands out, in turn: small sizes split requests and
/// frames at many offsets, large ones keep the number of driver turns per input small (every
/// read costs a turn, and a 1-byte-per-read input of a few KiB cost thousands of them). An
/// input's mode picks where in the cycle it starts.
const READ_CHUNKS: [usize; 8] = [1024, 1, 61, 2, 256, 7, 4096, 13];
/// The loop's `recv` batch per input (the first is the server's default): frames straddle its
/// edges too.
const READ_BATCHES: [usize; 4] = [64 * 1024, 7, 64, 1024];
/// Frames read from the connection per turn (the first is the server's default).
const FRAMES_PER_TURN: [usize; 4] = [64, 1, 3, 16];

/// How many bytes each read of an in-memory stream hands out.
#[derive(Clone, Copy)]
enum ReadSizes {
    /// The same every read (the admin target's).
    Fixed(usize),
    /// `READ_CHUNKS` in turn, starting at this place (the game target's).
    Cycle(usize),
}

/// An in-memory stream in place of a socket: it hands out a chunk of bytes per read (`ReadSizes`)
/// and says WouldBlock between reads, so every parser must resume
/// mid-request and mid-frame as on a real non-blocking socket, then EOF (the peer hung up); it
/// keeps everything the server writes.
struct MemStream(Rc<RefCell<MemState>>);

struct MemState {
    input: Vec<u8>,
    at: usize,
    /// The size of the next read; a cycle advances after each.
    sizes: ReadSizes,
    block_next: bool,
    written: Vec<u8>,
    write_shut: bool,
}

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        let left = state.input.len() - state.at;
        if state.block_next && left > 0 {
            state.block_next = false;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        state.block_next = true;
        let chunk = match state.sizes {
            ReadSizes::Fixed(chunk) => chunk,
            ReadSizes::Cycle(place) => {
                state.sizes = ReadSizes::Cycle(place + 1);
                READ_CHUNKS[place % READ_CHUNKS.len()]
            }
        };
        let n = left.min(chunk).min(buf.len());
        let at = state.at;
        buf[..n].copy_from_slice(&state.input[at..at + n]);
        state.at += n;
        Ok(n)
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        assert!(!state.write_shut, "the driver wrote after half-closing");
        state.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        bufs.iter().map(|b| self.write(b)).sum()
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for MemStream {
    fn shutdown_write(&mut self) {
        self.0.borrow_mut().write_shut = true;
    }
}

/// One driver per fuzzing thread, reused by every input: building a core and encoder per input
/// was most of the cost of an execution. Each input is one connection that ends with its input
/// (EOF), after which the driver must be idle again, so no input sees another's state.
struct ConnHarness {
    driver: Driver<MemStream>,
    now: Millis,
}

thread_local! {
    static CONN_HARNESS: RefCell<Option<ConnHarness>> = const { RefCell::new(None) };
    static ADMIN_HARNESS: RefCell<Option<ConnHarness>> = const { RefCell::new(None) };
}

/// Raw bytes into one connection of the driver's own read path: the request head and upgrade,
/// then WebSocket frames, dispatch and the core, with everything the server writes checked as
/// a client would read it. The first byte picks the mode: bit 0 set = a valid upgrade is
/// prepended (so the rest are frames); bits 1–3 where the read sizes start in `READ_CHUNKS`,
/// bits 4–5 the loop's `recv` batch (`READ_BATCHES`), bits 6–7 the frames read per turn
/// (`FRAMES_PER_TURN`); mode 0 or 1 is the server's own configuration.
pub fn connection_bytes(input: &[u8]) -> ConnReport {
    let Some((&mode, rest)) = input.split_first() else { return ConnReport::default() };
    CONN_HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(|| ConnHarness {
            driver: Driver::new(fuzz_limits(), TokenKey::new(FUZZ_KEY), [7; 32]),
            now: Millis(0),
        });
        harness.run(mode, rest)
    })
}

/// Raw bytes into one admin API connection of the driver: request heads, bodies, keep-alive
/// and pipelining, routing behind the admin key, and the calls (tokens, bans, disconnects,
/// metrics, health, the party and history routes), with everything the server writes read back as HTTP responses whose error
/// bodies are JSON. The first byte picks the read chunk size.
pub fn admin_bytes(input: &[u8]) -> AdminReport {
    let Some((&mode, rest)) = input.split_first() else { return AdminReport::default() };
    ADMIN_HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(|| {
            let mut driver = Driver::new(fuzz_limits(), TokenKey::new(FUZZ_KEY), [7; 32]);
            let key = AdminKey::new(FUZZ_ADMIN_KEY.as_bytes());
            // The playground on, with its mint (loopback), so the fuzzer reaches those paths too.
            let playground = Playground::new(([127, 0, 0, 1], 7350).into(), ([127, 0, 0, 1], 7351).into());
            driver.serve_admin(AdminState {
                key,
                instance_id: "fuzz".into(),
                started_at_ms: 0,
                playground: Some(playground),
            });
            ConnHarness { driver, now: Millis(0) }
        });
        let written = harness.drive(ListenerKind::Admin, ReadSizes::Fixed(1 + usize::from(mode) * 3), rest.to_vec());
        harness.driver.forget_admin_state_for_fuzzing();
        read_admin_responses(&written)
    })
}

/// The statuses of the responses an `admin_bytes` input got, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AdminReport {
    pub statuses: Vec<u16>,
}

/// Reads what the server wrote to an admin connection: whole HTTP/1.1 responses, each with a
/// `Content-Length` body (none for `100 Continue`), every `application/json` body valid JSON.
fn read_admin_responses(mut written: &[u8]) -> AdminReport {
    let mut report = AdminReport::default();
    while !written.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(written) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!("not a whole HTTP response ({other:?}): {:?}", String::from_utf8_lossy(written)),
        };
        let status = response.code.expect("a parsed response has a status");
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value))
        };
        let body_len: usize = match header("content-length") {
            Some(len) => len.parse().expect("Content-Length is a number"),
            None => {
                assert_eq!(status, 100, "every final response has a Content-Length");
                0
            }
        };
        assert!(written.len() >= head_len + body_len, "a truncated response body");
        let body = &written[head_len..head_len + body_len];
        if header("content-type").is_some_and(|t| t == "application/json") {
            let json: serde_json::Value = serde_json::from_slice(body).expect("JSON bodies are JSON");
            if status >= 400 {
                assert!(json["code"].is_string() && json["message"].is_string(), "errors are {{code, message}}");
            }
        }
        report.statuses.push(status);
        written = &written[head_len + body_len..];
    }
    report
}

impl ConnHarness {
    fn run(&mut self, mode: u8, rest: &[u8]) -> ConnReport {
        let stream = if mode & 1 == 1 { [canned_upgrade(), rest].concat() } else { rest.to_vec() };
        // The loop-wide read batch, sized by the input so frames straddle its edges; and a
        // frame budget per turn, after which leftovers wait in the connection's stash.
        let (batch, frames) = (READ_BATCHES[usize::from(mode >> 4) & 3], FRAMES_PER_TURN[usize::from(mode >> 6)]);
        self.driver.reshape_reads_for_fuzzing(batch, frames);
        let before = *self.driver.counters();
        let written = self.drive(ListenerKind::Game, ReadSizes::Cycle(usize::from(mode >> 1) & 7), stream);
        let after = *self.driver.counters();
        let mut report = read_server_bytes(&written);
        report.requests = (after.requests_total - before.requests_total) as usize;
        report.decode_errors = (after.decode_errors_total - before.decode_errors_total) as usize - report.text_replies;
        report
    }

    /// Runs one connection of `kind` that reads `stream` in reads of `sizes`, then hangs up,
    /// until the driver is idle again; returns what the server wrote.
    fn drive(&mut self, kind: ListenerKind, sizes: ReadSizes, stream: Vec<u8>) -> Vec<u8> {
        let turns_max = TURNS_PER_INPUT_MIN + TURNS_PER_INPUT_BYTE * stream.len();
        let state = Rc::new(RefCell::new(MemState {
            input: stream,
            at: 0,
            sizes,
            block_next: false,
            written: Vec::new(),
            write_shut: false,
        }));
        let limits = fuzz_limits();
        let listener_limits = match kind {
            ListenerKind::Game => ListenerLimits::game(&limits),
            ListenerKind::Admin => ListenerLimits::admin(&limits),
        };
        let id = self.driver.insert(
            MemStream(state.clone()),
            std::net::Ipv4Addr::LOCALHOST.into(),
            ListenerId(0),
            kind,
            &listener_limits,
            self.now,
        );
        let mut turns = 0;
        while self.driver.connection_count() > 0 {
            turns += 1;
            assert!(turns <= turns_max, "a connection whose peer hung up was still open after {turns_max} turns");
            // Every turn is a readable edge: bytes are left, or the EOF is.
            self.driver.note_ready(id.slot() as usize, true, true, false, false);
            self.now = self.now.saturating_add(TURN_MS);
            self.driver.turn(self.now, |_, _, _| {});
        }
        // Let every deadline of this input pass, then the driver must be idle again.
        self.now = self.now.saturating_add(BETWEEN_INPUTS_MS);
        self.driver.turn(self.now, |_, _, _| {});
        self.driver.assert_idle();
        let written = std::mem::take(&mut state.borrow_mut().written);
        written
    }
}

/// How far one `connection_bytes` input got, so tests can prove their seeds reach each layer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConnReport {
    /// The upgrade was refused with a 4xx response.
    pub rejected: bool,
    /// The server answered 101 and the session opened.
    pub upgraded: bool,
    /// Requests that decoded and reached the core.
    pub requests: usize,
    /// Binary frames that did not decode (each answered with an error reply).
    pub decode_errors: usize,
    /// Error replies to text frames.
    pub text_replies: usize,
    /// The reason of the server's close frame, when it gave one.
    pub closed_with: Option<String>,
}

/// Reads what the server wrote as a client would: the HTTP response, then unmasked frames, each
/// complete, every binary one a message the client decodes.
fn read_server_bytes(written: &[u8]) -> ConnReport {
    let mut report = ConnReport::default();
    if written.is_empty() {
        return report; // no complete head before the peer hung up: dropped without a response
    }
    let head_len = written.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4);
    let Some(head_len) = head_len else { panic!("server response without a complete head: {written:?}") };
    if written.starts_with(b"HTTP/1.1 101 ") {
        report.upgraded = true;
    } else {
        assert!(written.starts_with(b"HTTP/1.1 4"), "a refusal is a 4xx response");
        report.rejected = true;
        return report;
    }
    let verifier = wire::verifier_options(fuzz_limits().message_bytes_max);
    let mut frames = &written[head_len..];
    while !frames.is_empty() {
        let (opcode, payload, rest) = split_server_frame(frames);
        frames = rest;
        match opcode {
            0x2 => match wire::decode_server_message(payload, &verifier) {
                // A text frame's error carries no cid (nothing was decoded), so it reads as an
                // error event.
                Ok(ServerMessage::Reply { result: Err(error), .. } | ServerMessage::ErrorEvent(error))
                    if error.code == ErrorCode::TextFrameUnsupported =>
                {
                    report.text_replies += 1
                }
                Ok(_) => {}
                Err(e) => panic!("server frame does not decode: {e}"),
            },
            0x8 => {
                let reason = payload.get(2..).unwrap_or_default();
                let reason = std::str::from_utf8(reason).expect("close reasons are UTF-8");
                report.closed_with = Some(reason.to_owned()).filter(|r| !r.is_empty());
            }
            0x9 | 0xA => {}
            other => panic!("server sent opcode {other:#x}"),
        }
    }
    report
}

/// One whole server frame: final, unmasked, no reserved bits (RFC 6455 §5.2).
fn split_server_frame(bytes: &[u8]) -> (u8, &[u8], &[u8]) {
    assert!(bytes.len() >= 2, "a truncated server frame header");
    assert_eq!(bytes[0] & 0xF0, 0x80, "server frames are final with no reserved bits");
    assert_eq!(bytes[1] & 0x80, 0, "server frames are unmasked");
    let (len, header) = match bytes[1] & 0x7F {
        126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
        127 => (u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize, 10),
        len => (usize::from(len), 2),
    };
    assert!(bytes.len() >= header + len, "a truncated server frame");
    (bytes[0] & 0x0F, &bytes[header..header + len], &bytes[header + len..])
}

/// bytes → the Nakama JSON decoder, bounded whatever the bytes; as the driver calls it (a text
/// frame through the codec interface) it agrees with the free function and the cid-only read;
/// whatever decodes re-encodes as a client frame that decodes to the same request and cid; and
/// every answer (a reply, or the error for a frame that did not decode) is text frames of JSON
/// objects carrying the frame's cid exactly as the client wrote it.
pub fn nakama_json(data: &[u8]) {
    use crate::core::{CoreError, Event, Presence, SessionId, UserId, Username};
    use crate::wire::nakama::{decode_request, request_frame, CidText, NakamaDecodeError, NakamaLimits};
    use crate::wire::{ClientFrame, CodecKind, Codecs, ConnCodec, Frame, FrameKind};
    use serde_json::Value;

    let limits = fuzz_limits();
    let decoded = decode_request(data, &NakamaLimits::new(&limits));
    if let Ok(request) = &decoded {
        let again = request_frame(&request.reply_to.cid, &request.request).expect("every decoded request has a form");
        let redecoded = decode_request(again.as_bytes(), &NakamaLimits::new(&limits));
        // The client-side writer escapes as serde_json does, which may take a frame that fit
        // past the byte bound (a raw character the input wrote unescaped): then it is refused
        // as too large, as any frame over the bound is, and that is all it may be.
        if again.len() > NakamaLimits::new(&limits).frame_bytes_max {
            assert!(
                matches!(&redecoded, Err(failure) if matches!(failure.error, NakamaDecodeError::TooLarge { .. })),
                "a re-encoding over the bound must be refused as too large: {redecoded:?}"
            );
        } else {
            assert_eq!(redecoded.as_ref(), Ok(request), "re-encoded request differs: {again}");
        }
        // The cid is the frame's, as any JSON parser reads it.
        if let Ok(Value::Object(frame)) = serde_json::from_slice::<Value>(data) {
            let written = frame.get("cid").and_then(Value::as_str).unwrap_or_default();
            assert_eq!(request.reply_to.cid.to_string(), written, "the cid read differs from the frame's");
        }
    }
    // The driver hands the codec only UTF-8 text (the WebSocket layer checks it).
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut codecs = Codecs::new(&limits);
    let mut conn = ConnCodec::new(CodecKind::NakamaJson);
    let me = Presence { user_id: UserId::new("u"), session_id: SessionId::new(1, 1), username: Username::new("U") };
    codecs.encode_event(CodecKind::NakamaJson, &Event::Welcome { presence: me }, Some(&mut conn), &mut |_| {
        panic!("the welcome is not sent to JSON sessions")
    });
    let through_codec = codecs.decode_request(&mut conn, ClientFrame::Text(text));
    let cid_text = match &decoded {
        Ok(request) => request.reply_to.cid.clone(),
        Err(failure) => failure.cid.clone(),
    };
    let mut answer = Vec::new();
    let mut collect = |frame: Frame<'_>| {
        assert_eq!(frame.kind, FrameKind::Text, "JSON sessions get text frames only");
        let parsed: Value = serde_json::from_slice(frame.payload).expect("every frame is JSON");
        assert!(parsed.is_object(), "every frame is an envelope");
        answer.push(parsed);
    };
    match (&decoded, through_codec) {
        (Ok(request), Ok((cid, core_request))) => {
            assert_eq!((cid, &core_request), (request.reply_to.core_cid(), &request.request), "codec differs");
            let refusal = Err(CoreError::BadInput("fuzz".into()));
            codecs.encode_reply(&mut conn, cid, &refusal, &mut collect);
        }
        (Err(failure), Err((cid, error))) => {
            assert_eq!((cid, error.code()), (failure.cid.core_cid(), failure.error.code()), "codec differs");
            codecs.encode_error(&mut conn, cid, error.code(), &error.to_string(), &mut collect);
        }
        (free, codec) => panic!("codec and free function disagree: {free:?} vs {codec:?}"),
    }
    if let CidText::Absent = cid_text {
        assert!(answer.iter().all(|frame| frame.get("cid").is_none()), "a cid appeared: {answer:?}");
    } else {
        // An ack of party data sent without a cid is nothing; anything else answers under the cid.
        let first = answer.first().expect("a request with a cid is answered");
        assert_eq!(first["cid"].as_str(), Some(cid_text.to_string().as_str()), "the cid is not echoed: {first}");
    }
    let peeked = codecs.peek_cid(&mut conn, ClientFrame::Text(text));
    assert_eq!(peeked, cid_text.core_cid(), "the cid-only read differs");
}
