//! Entry points for the cargo-fuzz targets in `fuzz/` and their regression tests
//! (`tests/fuzz_regressions.rs`). Each runs the crate's own code paths, not copies, and asserts
//! the properties the fuzzer hunts for: nothing panics on network input, whatever decodes
//! re-encodes to the same value, and the core's invariants hold.
#![doc(hidden)]

use crate::auth::{self, Claims, TokenKey};
use crate::core::{Cid, Core, Identity, Millis, Now, Outbox, Output, SessionId, UserId, Username};
use crate::limits::Limits;
use crate::net::conn::{classify, ConnReader, Inbound, ReadScratch, WsIo};
use crate::net::handshake::{self, Outcome};
use crate::net::outbound::OutboundQueue;
use crate::wire::{self, Encoder, ServerMessage};
use bytes::Bytes;
use std::io::{self, Read};
use tungstenite::protocol::{Role, WebSocketContext};

const FUZZ_KEY: &str = "fuzz-key";
/// The clock the fuzz harness pretends it is (tokens minted for it never expire).
const FUZZ_NOW_UNIX_S: u64 = 1_000_000;
/// Frames one input may drive, so a fuzz case always ends.
const FRAMES_PER_INPUT_MAX: usize = 4096;

fn fuzz_limits() -> Limits {
    // Small limits make the fuzzer reach the edges quickly.
    Limits { message_bytes_max: 4096, handshake_bytes_max: 2048, connections_max: 16, ..Limits::default() }
}

/// bytes → verify + decode; anything that decodes re-encodes and decodes to the same request.
pub fn decode_envelope(data: &[u8]) {
    let options = wire::verifier_options(fuzz_limits().message_bytes_max);
    let frame = Bytes::copy_from_slice(data);
    if let Ok((cid, request)) = wire::decode_request(&frame, &options) {
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
    let mut sim = crate::sim::Sim::with_rng(crate::sim::Rng::from_bytes(data), 0);
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

/// An in-memory socket that hands out `chunk` bytes per read and says WouldBlock between reads,
/// so every parser must resume mid-request and mid-frame, as on a real non-blocking socket.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
    block_next: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.block_next && !self.data.is_empty() {
            self.block_next = false;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.block_next = true;
        let n = self.data.len().min(self.chunk).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Raw bytes into one connection's read path: the upgrade request, then WebSocket frames, then
/// decode and the core, with replies encoded as the driver would. The first byte picks the mode:
/// bit 0 set = a valid upgrade is prepended (so the rest are frames); the other bits pick the
/// read chunk size.
pub fn connection_bytes(input: &[u8]) -> ConnReport {
    let mut report = ConnReport::default();
    let Some((&mode, rest)) = input.split_first() else { return report };
    let stream = if mode & 1 == 1 { [canned_upgrade(), rest].concat() } else { rest.to_vec() };
    let mut socket = Trickle { data: &stream, chunk: 1 + usize::from(mode >> 1) * 7, block_next: false };
    let limits = fuzz_limits();
    let key = TokenKey::new(FUZZ_KEY);

    // The handshake, grown read by read as the driver grows it.
    let mut received = Vec::new();
    let (consumed, claims, options) = loop {
        let start = received.len();
        let room = limits.handshake_bytes_max.saturating_sub(start).clamp(1, 2048);
        received.resize(start + room, 0);
        let read = socket.read(&mut received[start..]);
        received.truncate(start + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => return report,
            Ok(_) => {}
            Err(_) => continue,
        }
        match handshake::evaluate(&received, limits.handshake_bytes_max, &key, FUZZ_NOW_UNIX_S) {
            Outcome::Incomplete => continue,
            Outcome::Reject { response, .. } => {
                assert!(response.starts_with(b"HTTP/1.1 4"), "a refusal is a 4xx response");
                report.rejected = true;
                return report;
            }
            Outcome::Accept { response, consumed, claims, options } => {
                assert!(response.starts_with(b"HTTP/1.1 101 "));
                report.upgraded = true;
                break (consumed, claims, options);
            }
        }
    };

    let mut ws = WebSocketContext::from_partially_read(
        received[consumed..].to_vec(),
        Role::Server,
        Some(crate::net::websocket_config(&limits)),
    );
    let verifier = wire::verifier_options(limits.message_bytes_max);
    let mut core = Core::new(limits.clone(), [7; 32]);
    let mut outbox = Outbox::new();
    let mut encoder = Encoder::new();
    let mut out = OutboundQueue::default();
    let mut drained = false;
    let mut pending = bytes::BytesMut::new();
    let mut recvs_left = 1u32;
    // The loop-wide read batch, sized by the input so frames straddle its edges; and after
    // every `frames_per_turn` frames the loop "moves on" and leftovers go to `pending`, as the
    // driver does when a connection's frame budget is spent.
    let mut scratch = ReadScratch::new(1 + usize::from(mode >> 3) * 13);
    let frames_per_turn = 1 + usize::from(mode >> 5);
    let session = SessionId::new(0, 1);
    let identity = Identity { user_id: UserId::new(&claims.user_id), username: Username::new(&claims.username) };
    core.connect(session, identity, options, Now::simulated(Millis(0)), &mut outbox);
    check_outputs(&mut outbox, &mut encoder, &verifier);

    for step in 0..FRAMES_PER_INPUT_MAX {
        if step % frames_per_turn == 0 {
            // A new turn for this connection: leftovers stashed, one `recv` allowed again.
            scratch.stash_into(&mut pending);
            recvs_left = 1;
        }
        let reader = ConnReader {
            socket: &mut socket,
            drained: &mut drained,
            recvs_left: &mut recvs_left,
            pending: &mut pending,
            scratch: &mut scratch,
        };
        let result = ws.read(&mut WsIo { reader, out: &mut out });
        match classify(result) {
            Inbound::Binary(frame) => match wire::decode_request(&frame, &verifier) {
                Ok((cid, request)) => {
                    report.requests += 1;
                    core.handle_request(session, cid, request, Now::simulated(Millis(step as u64)), &mut outbox);
                    assert_eq!(outbox.reply_count(), 1, "exactly one reply per request");
                    check_outputs(&mut outbox, &mut encoder, &verifier);
                }
                Err((cid, error)) => {
                    report.decode_errors += 1;
                    let reply = encoder.decode_error(cid, &error).to_vec();
                    assert!(matches!(
                        wire::decode_server_message(&reply, &verifier),
                        Ok(ServerMessage::Reply { result: Err(_), .. })
                    ));
                }
            },
            Inbound::Text => {
                let _ = encoder.decode_error(Cid::NONE, &wire::DecodeError::TextFrame);
            }
            Inbound::Control | Inbound::Interrupted => {}
            // More bytes "arrive": a new readable edge, as the driver sees it.
            Inbound::Drained if !socket.data.is_empty() => {
                drained = false;
                recvs_left = 1;
            }
            Inbound::CloseWith(_, reason) => {
                report.closed_with = Some(reason);
                break;
            }
            Inbound::Drained | Inbound::PeerClosed | Inbound::Gone => break,
        }
    }
    core.disconnect(session, Now::simulated(Millis(0)), &mut outbox);
    check_outputs(&mut outbox, &mut encoder, &verifier);
    assert_eq!(core.session_count(), 0);
    core.check_invariants();
    report
}

/// How far one `connection_bytes` input got, so tests can prove their seeds reach each layer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConnReport {
    pub rejected: bool,
    pub upgraded: bool,
    pub requests: usize,
    pub decode_errors: usize,
    pub closed_with: Option<&'static str>,
}

/// Encodes every output as the driver would and checks the client can decode it.
fn check_outputs(outbox: &mut Outbox, encoder: &mut Encoder, verifier: &flatbuffers::VerifierOptions) {
    outbox.drain(|output, _recipients| {
        let bytes = match &output {
            Output::Reply { cid, result, .. } => encoder.reply(*cid, result).to_vec(),
            Output::Event { event, .. } => encoder.event(event).to_vec(),
            Output::Close { .. } => return,
        };
        if let Err(e) = wire::decode_server_message(&bytes, verifier) {
            panic!("server output does not decode: {e}: {output:?}");
        }
    });
}
