//! Inbound frame accounting: a peek at every client frame header as its bytes pass from the
//! connection to tungstenite. tungstenite assembles fragmented messages and answers control
//! frames inside one `read`, so neither reaches the request budget: an endless run of
//! continuation frames (or pings) would cost the loop without ever producing a request. So
//! frames are counted here, before tungstenite sees them:
//! - frames per message (`message_fragments_max`);
//! - time from a message's first fragment to its last (`message_assembly_ms_max`), checked on
//!   every frame and by a deadline the driver arms (one per connection at most), so a client
//!   that goes quiet mid-message, answering keepalive pings, is caught too;
//! - frames beyond one per message, that is control frames and continuation frames, against a
//!   token bucket (`extra_frames_per_second_max`, `extra_frames_burst_max`). The first frame of
//!   a message is the message's own and is charged to the request budget when it completes.
//!
//! A frame that breaks a limit never reaches tungstenite: the bytes before it do (so whole
//! requests ahead of it are still answered; when its header straddles two reads, the header's
//! first bytes went on with the earlier one and stay an incomplete header), then the reader
//! fails and the driver closes the connection with 1008 and a reason naming the limit.
//!
//! The hot path, one whole binary frame per message, costs a copy of its 2–14 header bytes and
//! skipping its payload by arithmetic: no bucket, no clock, no other state.

use super::conn::Transport;
use super::driver::Driver;
use super::metrics::Limit;
use super::ratelimit::TokenBucket;
use super::ws::CLOSE_POLICY;
use crate::core::{Millis, SessionId};
use crate::limits::Limits;

/// The longest frame header: 2 bytes, an 8-byte extended length, a 4-byte mask (RFC 6455 §5.2).
const HEADER_BYTES_MAX: usize = 14;
const OPCODE_CONTINUATION: u8 = 0x0;
/// Opcodes with this bit set are control frames (close, ping, pong and reserved ones).
const OPCODE_CONTROL_BIT: u8 = 0x8;

/// Which frame limit a connection broke.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum FrameLimit {
    /// More frames in one message than `message_fragments_max`.
    Fragments,
    /// A message still incomplete `message_assembly_ms_max` after its first frame.
    AssemblyTime,
    /// Control and continuation frames faster than `extra_frames_per_second_max` allows.
    ExtraFrames,
}

impl FrameLimit {
    /// The close frame's reason: the limit's name (well within the 123 bytes a reason may have).
    pub fn close_reason(self) -> &'static str {
        match self {
            FrameLimit::Fragments => "message_fragments_max exceeded",
            FrameLimit::AssemblyTime => "message_assembly_ms_max exceeded",
            FrameLimit::ExtraFrames => "extra_frames_per_second_max exceeded",
        }
    }

    /// The `Limits` field this is, for `/metrics`.
    fn limit(self) -> Limit {
        match self {
            FrameLimit::Fragments => Limit::message_fragments_max,
            FrameLimit::AssemblyTime => Limit::message_assembly_ms_max,
            FrameLimit::ExtraFrames => Limit::extra_frames_per_second_max,
        }
    }

    /// The limit with its configured value, for the warning.
    fn describe(self, limits: &Limits) -> String {
        match self {
            FrameLimit::Fragments => format!("message_fragments_max {}", limits.message_fragments_max),
            FrameLimit::AssemblyTime => format!("message_assembly_ms_max {}", limits.message_assembly_ms_max),
            FrameLimit::ExtraFrames => format!(
                "extra_frames_per_second_max {} (burst {})",
                limits.extra_frames_per_second_max, limits.extra_frames_burst_max
            ),
        }
    }
}

/// One connection's view of the frames it has sent so far.
pub(crate) struct InboundFrames {
    /// The header being read, when it straddles reads (`header_len` bytes of it so far).
    header: [u8; HEADER_BYTES_MAX],
    header_len: u8,
    /// Payload bytes of the current frame not yet passed on.
    payload_left: u64,
    /// Frames so far of the message being assembled; 0 when none is.
    fragments: u32,
    /// When that message's first frame arrived.
    assembly_started_at: Millis,
    /// The driver's deadline queue holds an assembly deadline for this connection.
    assembly_deadline_armed: bool,
    /// Charged by every control and continuation frame.
    extra_frames: TokenBucket,
    /// Set once a limit is broken; nothing is passed on after it.
    tripped: Option<FrameLimit>,
}

impl InboundFrames {
    pub fn new(limits: &Limits, now: Millis) -> InboundFrames {
        InboundFrames {
            header: [0; HEADER_BYTES_MAX],
            header_len: 0,
            payload_left: 0,
            fragments: 0,
            assembly_started_at: now,
            assembly_deadline_armed: false,
            extra_frames: TokenBucket::new(limits.extra_frames_burst_max, now),
            tripped: None,
        }
    }

    /// Scans `bytes`, the next bytes of the client's stream in order, and returns how many of
    /// them may go on to tungstenite: all of them, or those before the first frame that breaks a
    /// limit (then [`InboundFrames::tripped`] says which, and every later call returns 0). A
    /// header is judged once complete, so the first bytes of a header that straddles reads have
    /// been passed on already. Bytes not passed on must not be offered again.
    pub fn pass(&mut self, bytes: &[u8], now: Millis, limits: &Limits) -> usize {
        if self.tripped.is_some() {
            return 0;
        }
        let mut at = 0;
        while at < bytes.len() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min((bytes.len() - at) as u64);
                self.payload_left -= skip;
                at += skip as usize; // at most bytes.len() - at, so it fits
                continue;
            }
            // A header starts here, or started in an earlier read (then before these bytes).
            let frame_start = if self.header_len == 0 { at } else { 0 };
            loop {
                let have = usize::from(self.header_len);
                let need = header_bytes(&self.header[..have]);
                if have == need {
                    break;
                }
                if at == bytes.len() {
                    return at; // the rest of the header comes with a later read
                }
                let take = (need - have).min(bytes.len() - at);
                self.header[have..have + take].copy_from_slice(&bytes[at..at + take]);
                self.header_len += take as u8; // at most HEADER_BYTES_MAX
                at += take;
            }
            let header = &self.header[..usize::from(self.header_len)];
            let (fin, opcode, payload_len) = (header[0] & 0x80 != 0, header[0] & 0x0F, payload_len(header));
            self.header_len = 0;
            self.payload_left = payload_len;
            if let Err(limit) = self.on_frame(fin, opcode, now, limits) {
                self.tripped = Some(limit);
                return frame_start;
            }
        }
        at
    }

    /// Counts one frame whose header is complete.
    fn on_frame(&mut self, fin: bool, opcode: u8, now: Millis, limits: &Limits) -> Result<(), FrameLimit> {
        if self.assembly_overdue(now, limits.message_assembly_ms_max) {
            return Err(FrameLimit::AssemblyTime);
        }
        if opcode == OPCODE_CONTINUATION {
            if self.fragments == 0 {
                // No message to continue: tungstenite closes with 1002 "bad fragmentation".
                return Ok(());
            }
            self.fragments = self.fragments.saturating_add(1);
            if self.fragments as usize > limits.message_fragments_max {
                return Err(FrameLimit::Fragments);
            }
            self.charge_extra_frame(now, limits)?;
            if fin {
                self.fragments = 0;
            }
            return Ok(());
        }
        if opcode & OPCODE_CONTROL_BIT != 0 {
            return self.charge_extra_frame(now, limits);
        }
        // A data frame: the first of a message (inside a fragmented one, tungstenite closes with
        // 1002). A whole message in one frame, the hot path, changes nothing here.
        if !fin && self.fragments == 0 {
            self.fragments = 1;
            self.assembly_started_at = now;
        }
        Ok(())
    }

    fn charge_extra_frame(&mut self, now: Millis, limits: &Limits) -> Result<(), FrameLimit> {
        let (per_second, burst) = (limits.extra_frames_per_second_max, limits.extra_frames_burst_max);
        if self.extra_frames.try_take(now, per_second, burst) {
            Ok(())
        } else {
            Err(FrameLimit::ExtraFrames)
        }
    }

    /// The limit this connection broke, if any.
    pub fn tripped(&self) -> Option<FrameLimit> {
        self.tripped
    }

    /// A message has been incomplete for `assembly_ms_max` or longer.
    pub fn assembly_overdue(&self, now: Millis, assembly_ms_max: u64) -> bool {
        self.fragments > 0 && now.saturating_sub(self.assembly_started_at) >= assembly_ms_max
    }

    /// When the assembly deadline of the message being assembled falls, if a deadline must be
    /// armed for it now (none is in the driver's queue for this connection): at most one is, so
    /// a client sending many fragmented messages cannot grow the queue.
    #[must_use]
    pub fn assembly_deadline_to_arm(&mut self, assembly_ms_max: u64) -> Option<Millis> {
        if self.fragments == 0 || self.assembly_deadline_armed {
            return None;
        }
        self.assembly_deadline_armed = true;
        Some(self.assembly_started_at.saturating_add(assembly_ms_max))
    }

    /// The armed deadline came due (whatever message it was armed for).
    fn assembly_deadline_passed(&mut self) {
        self.assembly_deadline_armed = false;
    }
}

/// Bytes of a frame header given its first bytes: 2 until those two are known, then the whole
/// header's length (extended length and mask included).
fn header_bytes(first: &[u8]) -> usize {
    let [_, second, ..] = *first else { return 2 };
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// The payload length a complete header announces.
fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => u64::from_be_bytes(header[2..10].try_into().expect("Invariant: a 127-length header has 8 length bytes")),
        len => u64::from(len),
    }
}

impl<S: Transport> Driver<S> {
    /// Arms the connection's assembly deadline when a fragmented message has started and none is
    /// armed; called after each read of the connection.
    pub(super) fn arm_assembly_deadline(&mut self, id: SessionId) {
        let Some(conn) = self.conns.get_mut(id) else { return };
        if let Some(deadline) = conn.inbound.assembly_deadline_to_arm(self.limits.message_assembly_ms_max) {
            self.deadlines.assemblies.push(deadline, id);
        }
    }

    /// An assembly deadline came due: close the connection if its message is overdue, else
    /// (that message completed, and perhaps another started since) arm the next one.
    pub(super) fn check_assembly(&mut self, id: SessionId, now: Millis) {
        let Some(conn) = self.conns.get_mut(id) else { return };
        if !conn.is_open() {
            return;
        }
        conn.inbound.assembly_deadline_passed();
        if conn.inbound.assembly_overdue(now, self.limits.message_assembly_ms_max) {
            return self.close_for_frame_limit(id, FrameLimit::AssemblyTime, now);
        }
        self.arm_assembly_deadline(id);
    }

    /// Closes a connection that broke a frame limit: 1008 with the limit's name, a counter and a
    /// warning with the numbers.
    pub(super) fn close_for_frame_limit(&mut self, id: SessionId, limit: FrameLimit, now: Millis) {
        self.counters.frame_limited_total += 1;
        self.metrics.limit_trip(limit.limit());
        log::warn!("session {id} closed: broke {}", limit.describe(&self.limits));
        self.close_with(id, CLOSE_POLICY, limit.close_reason(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame with `payload_len` zero bytes of payload (the mask is irrelevant).
    fn frame(first: u8, payload_len: usize) -> Vec<u8> {
        let mut out = vec![first];
        match payload_len {
            0..=125 => out.push(0x80 | payload_len as u8),
            126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(payload_len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.resize(out.len() + payload_len, 0);
        out
    }

    const BINARY_FIN: u8 = 0x82;
    const BINARY_MORE: u8 = 0x02;
    const CONTINUATION_MORE: u8 = 0x00;
    const CONTINUATION_FIN: u8 = 0x80;
    const PING: u8 = 0x89;

    fn limits() -> Limits {
        Limits {
            message_fragments_max: 4,
            message_assembly_ms_max: 1_000,
            extra_frames_per_second_max: 10,
            extra_frames_burst_max: 5,
            ..Limits::default()
        }
    }

    /// Passes `bytes` in reads of `step` bytes, as tungstenite would ask for them; returns the
    /// bytes passed before the first refusal.
    fn pass_in_steps(frames: &mut InboundFrames, bytes: &[u8], step: usize, now: Millis) -> usize {
        let mut passed = 0;
        for chunk in bytes.chunks(step) {
            let n = frames.pass(chunk, now, &limits());
            passed += n;
            if n < chunk.len() {
                break;
            }
        }
        passed
    }

    #[test]
    fn whole_frames_of_every_length_form_pass_at_every_split_and_change_nothing() {
        let stream: Vec<u8> =
            [frame(BINARY_FIN, 0), frame(BINARY_FIN, 125), frame(BINARY_FIN, 300), frame(BINARY_FIN, 70_000)].concat();
        for step in [1, 2, 3, 7, 13, 4096, stream.len()] {
            let mut frames = InboundFrames::new(&limits(), Millis(0));
            assert_eq!(pass_in_steps(&mut frames, &stream, step, Millis(0)), stream.len(), "step {step}");
            assert_eq!((frames.fragments, frames.payload_left, frames.header_len), (0, 0, 0));
            assert_eq!(frames.tripped(), None);
        }
    }

    #[test]
    fn the_fragment_past_message_fragments_max_is_refused_before_its_header_completes() {
        let mut stream = frame(BINARY_MORE, 3);
        for _ in 0..3 {
            stream.extend(frame(CONTINUATION_MORE, 2));
        }
        let allowed = stream.len(); // four frames: the limit
        stream.extend(frame(CONTINUATION_FIN, 0));
        for step in [1, 5, stream.len()] {
            let mut frames = InboundFrames::new(&limits(), Millis(0));
            let passed = pass_in_steps(&mut frames, &stream, step, Millis(0));
            // Header bytes that came in an earlier read were passed on before the header was
            // whole; tungstenite still never sees the frame's header complete.
            assert!((allowed..allowed + 6).contains(&passed), "step {step}: {passed} of {allowed}");
            assert_eq!(frames.tripped(), Some(FrameLimit::Fragments));
            assert_eq!(frames.pass(&frame(BINARY_FIN, 1), Millis(0), &limits()), 0, "nothing after a refusal");
        }
        let mut whole = InboundFrames::new(&limits(), Millis(0));
        assert_eq!(whole.pass(&stream, Millis(0), &limits()), allowed, "in one read: up to the frame's first byte");
    }

    #[test]
    fn fragmented_messages_within_the_limits_pass_and_each_starts_a_fresh_count() {
        let message: Vec<u8> = [
            frame(BINARY_MORE, 1),
            frame(PING, 0), // control frames may come between fragments
            frame(CONTINUATION_MORE, 1),
            frame(CONTINUATION_FIN, 1),
        ]
        .concat();
        let mut frames = InboundFrames::new(&limits(), Millis(0));
        assert_eq!(frames.pass(&message, Millis(0), &limits()), message.len());
        // Three extra frames taken from a burst of five: the same message again 200 ms later
        // finds two earned back (10 a second).
        assert_eq!(frames.pass(&message, Millis(200), &limits()), message.len());
        assert_eq!(frames.tripped(), None);
        assert_eq!(frames.fragments, 0);
    }

    #[test]
    fn control_frames_past_the_burst_are_refused_until_tokens_are_earned() {
        let mut frames = InboundFrames::new(&limits(), Millis(0));
        let ping = frame(PING, 4);
        for _ in 0..5 {
            assert_eq!(frames.pass(&ping, Millis(0), &limits()), ping.len());
        }
        let two = [ping.clone(), ping.clone()].concat();
        let mut fresh = InboundFrames::new(&limits(), Millis(0));
        for _ in 0..4 {
            fresh.pass(&ping, Millis(0), &limits());
        }
        assert_eq!(fresh.pass(&two, Millis(0), &limits()), ping.len(), "the sixth is refused, the fifth passes");
        assert_eq!(fresh.tripped(), Some(FrameLimit::ExtraFrames));
        assert_eq!(frames.pass(&ping, Millis(100), &limits()), ping.len(), "one earned in 100 ms");
        assert_eq!(frames.pass(&ping, Millis(100), &limits()), 0);
        assert_eq!(frames.tripped(), Some(FrameLimit::ExtraFrames));
    }

    #[test]
    fn a_message_incomplete_for_message_assembly_ms_max_is_refused_at_its_next_frame() {
        let mut frames = InboundFrames::new(&limits(), Millis(0));
        assert_eq!(frames.pass(&frame(BINARY_MORE, 1), Millis(10), &limits()), 7);
        assert_eq!(frames.assembly_deadline_to_arm(1_000), Some(Millis(1_010)));
        assert_eq!(frames.assembly_deadline_to_arm(1_000), None, "one deadline armed at a time");
        assert!(!frames.assembly_overdue(Millis(1_009), 1_000));
        assert!(frames.assembly_overdue(Millis(1_010), 1_000));
        let late = frame(CONTINUATION_FIN, 0);
        assert_eq!(frames.pass(&late, Millis(1_010), &limits()), 0);
        assert_eq!(frames.tripped(), Some(FrameLimit::AssemblyTime));
    }

    #[test]
    fn a_completed_message_is_not_overdue_and_the_next_one_gets_its_own_deadline() {
        let mut frames = InboundFrames::new(&limits(), Millis(0));
        let message = [frame(BINARY_MORE, 1), frame(CONTINUATION_FIN, 1)].concat();
        frames.pass(&message[..7], Millis(0), &limits());
        assert_eq!(frames.assembly_deadline_to_arm(1_000), Some(Millis(1_000)));
        frames.pass(&message[7..], Millis(5), &limits());
        frames.pass(&message[..7], Millis(600), &limits());
        assert_eq!(frames.assembly_deadline_to_arm(1_000), None, "the first deadline is still armed");
        frames.assembly_deadline_passed();
        assert!(!frames.assembly_overdue(Millis(1_000), 1_000), "the message in progress began at 600");
        assert_eq!(frames.assembly_deadline_to_arm(1_000), Some(Millis(1_600)));
    }
}
