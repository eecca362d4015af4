//! The scenarios' worker side: each sets up its share of sessions, says it is ready, waits for
//! the common start, drives its load over one [`Fleet`], drains, and returns its counts and
//! latency histogram.
//!
//! The fan-out family (`fanout`, `game`, each sweep step) runs the same sessions code against
//! huddle or the floor: only the setup (huddle's create and join requests, or the floor's join
//! message), the encoded message ([`DataTemplate`]) and the reading of what comes back
//! ([`classify`], [`classify_json`], [`classify_floor`]) differ. Towards huddle the sessions
//! speak FlatBuffers or, with `--format json`, Nakama's JSON mode as a Nakama SDK does (SPEC
//! K-1): `party_data_send` text frames out (with a cid when acknowledged, without one when
//! fire-and-forget), `party_data` deliveries in.

use super::fleet::{Fleet, Framing, Incoming};
use super::floor;
use super::hist::Latency;
use super::pace::Schedule;
use super::procfs::{now_ns, thread_cpu_ns};
use super::{
    load_key, resolve_target, source_address, Against, Format, Link, Options, Scenario, SendMode, WorkerResult,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use flatbuffers::VerifierOptions;
use huddle::auth::{self, Claims, TokenKey};
use huddle::core::{Cid, PartyId, PartyReply, PartyRequest, Reply, Request, StatusRequest, UserId};
use huddle::wire::nakama::{parse_party_id, request_frame, CidText};
use huddle::wire::{self, fb, Encoder, ServerMessage};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Time allowed to open every connection of a worker and finish setup requests.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Scheduled messages one loop turn may send. After a stall the schedule may owe thousands;
/// sending them all in one turn would leave deliveries unread for as long, so the rest waits
/// for the next turn (and shows as send lag). 4,096 messages are well under a millisecond of
/// the harness's work, and more than a turn owes at any rate it can sustain.
const SENDS_PER_TURN_MAX: u64 = 4096;
/// huddle's error code for a request without a cid: what a server without fire-and-forget
/// party data (SPEC P-9) answers to `--mode fire`.
const ERROR_MISSING_CID: u16 = 101;
const FIRE_UNSUPPORTED: &str = "server does not support fire-and-forget party data: it answered cid 0 with error 101 \
                                (missing cid); run with --mode ack";

pub(crate) fn run_worker(o: &Options, index: usize, count: usize, link: &mut dyn Link) -> Result<WorkerResult, String> {
    let ctx = Ctx::new(o, index, count)?;
    match o.scenario {
        Scenario::Fanout | Scenario::Game | Scenario::Sweep => fanout(&ctx, link),
        Scenario::Churn => churn(&ctx, link),
        Scenario::Status => status(&ctx, link, false),
        Scenario::Idle => status(&ctx, link, true),
        Scenario::Calibrate | Scenario::FloorServer => Err(format!("{} has no workers", o.scenario.name())),
    }
}

struct Ctx<'a> {
    o: &'a Options,
    /// huddle's token key; the floor takes no tokens.
    key: Option<TokenKey>,
    /// Global user indices of this worker's sessions, in order.
    users: Vec<usize>,
    verifier: VerifierOptions,
    target: super::Target,
}

impl<'a> Ctx<'a> {
    fn new(o: &'a Options, index: usize, count: usize) -> Result<Ctx<'a>, String> {
        let n = o.connections;
        let users: Vec<usize> = match o.scenario {
            Scenario::Fanout | Scenario::Game | Scenario::Sweep => {
                // Whole parties per worker, so every delivery stays inside one worker's clock.
                let k = o.party_size;
                let parties = n / k;
                let (p0, p1) = (index * parties / count, (index + 1) * parties / count);
                (p0 * k..p1 * k).collect()
            }
            Scenario::Churn => {
                let pairs = n / 2;
                let (p0, p1) = (index * pairs / count, (index + 1) * pairs / count);
                (p0 * 2..p1 * 2).collect()
            }
            _ => (index * n / count..(index + 1) * n / count).collect(),
        };
        if users.is_empty() {
            return Err(format!("worker {index} of {count} has no sessions: raise --connections"));
        }
        let (key, target) = match (o.against, o.floor_addr) {
            (Against::Floor, Some(addr)) => (None, super::Target { addr, host: String::new(), path: String::new() }),
            (Against::Floor, None) => return Err("a floor worker needs --floor-addr".into()),
            _ => (Some(load_key(o)?), resolve_target(&o.url)?),
        };
        Ok(Ctx { o, key, users, verifier: wire::verifier_options(1 << 20), target })
    }

    fn user_id(g: usize) -> String {
        format!("load-{g}")
    }

    /// A token for global user `g` (empty towards the floor, which takes none).
    fn token(&self, g: usize) -> String {
        let Some(key) = &self.key else {
            return String::new();
        };
        let claims =
            Claims { user_id: Ctx::user_id(g), username: format!("Load{g}"), expires_at_unix_s: unix_now_s() + 86_400 };
        auth::mint(&claims, key)
    }

    fn open(&self, fleet: &mut Fleet, status: bool) -> Result<(), String> {
        let total = self.o.connections;
        let per_source = self.o.conns_per_source;
        let started = Instant::now();
        fleet.connect_many(
            self.users.len(),
            status,
            started + SETUP_TIMEOUT,
            |i| self.token(self.users[i]),
            |i| source_address(self.users[i], total, per_source),
            &mut |_, _| {},
        )?;
        eprintln!("huddle-load: {} sessions open in {:.1} s", self.users.len(), started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Whether this worker's sessions speak Nakama's JSON: `--format json` towards huddle (the
    /// floor has its own framing whatever the format).
    fn json(&self) -> bool {
        self.o.format == Format::Json && self.o.against != Against::Floor
    }

    fn fleet(&self) -> Result<Fleet, String> {
        let framing = match self.o.against {
            Against::Floor => Framing::LengthPrefixed,
            _ => Framing::WebSocket {
                host: self.target.host.clone(),
                path: self.target.path.clone(),
                format: self.o.format,
            },
        };
        Fleet::new(self.target.addr, framing).map_err(|e| format!("poll: {e}"))
    }

    /// `(window_start, window_end)` for a start time.
    fn window(&self, go_ns: u64) -> (u64, u64) {
        let start = go_ns + self.o.warmup.as_nanos() as u64;
        (start, start + self.o.duration.as_nanos() as u64)
    }

    /// This worker's share of the aggregate rate.
    fn local_rate(&self) -> u64 {
        let share = self.o.rate as u128 * self.users.len() as u128 / self.o.connections as u128;
        (share as u64).max(1)
    }
}

fn unix_now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A server frame as the scenarios need it: the hot cases read in place, the rest decoded.
enum Msg {
    /// Party data, with the harness's send stamp (its payload's first 8 bytes).
    PartyData(u64),
    /// A status event: the first joined status, the harness's send stamp when it parses.
    StatusStamp(Option<u64>),
    Ok,
    Error {
        /// huddle refused a request for having no cid (error 101): what a server without
        /// fire-and-forget party data answers to `--mode fire`.
        missing_cid: bool,
        text: String,
    },
    Other(ServerMessage),
    /// Nothing the scenarios count (the floor's welcome, Nakama's cid-less events).
    Ignored,
}

/// The send stamp at the start of a delivered payload.
fn stamp(data: &[u8]) -> Result<u64, String> {
    let head = data.first_chunk::<8>().ok_or("party data without a send stamp")?;
    Ok(u64::from_le_bytes(*head))
}

fn classify(frame: &[u8], verifier: &VerifierOptions) -> Result<Msg, String> {
    let envelope = flatbuffers::root_with_opts::<fb::Envelope>(verifier, frame).map_err(|e| e.to_string())?;
    match envelope.message_type() {
        fb::Message::PartyData => {
            let data = envelope.message_as_party_data().and_then(|d| d.data()).ok_or("party data without data")?;
            Ok(Msg::PartyData(stamp(data.bytes())?))
        }
        fb::Message::StatusPresenceEvent => {
            let event = envelope.message_as_status_presence_event().ok_or("status event without body")?;
            let stamp = event.joins().filter(|j| !j.is_empty()).and_then(|j| j.get(0).status()?.parse().ok());
            Ok(Msg::StatusStamp(stamp))
        }
        fb::Message::PartyOk | fb::Message::StatusUpdated => Ok(Msg::Ok),
        fb::Message::Error => {
            let e = envelope.message_as_error().ok_or("error without body")?;
            let code = e.code().0;
            let text = format!("error {code}: {}", e.message().unwrap_or_default());
            Ok(Msg::Error { missing_cid: code == ERROR_MISSING_CID, text })
        }
        _ => wire::decode_server_message(frame, verifier).map(Msg::Other).map_err(|e| e.to_string()),
    }
}

/// The parts of a Nakama JSON envelope the harness reads, borrowed from the frame: reading a
/// delivery allocates nothing. Every other field and message (presence events, `party` pushed
/// after a join) is skipped by the parser.
#[derive(Deserialize)]
struct JsonEnvelope<'a> {
    #[serde(borrow, default)]
    cid: Option<&'a str>,
    #[serde(borrow, default)]
    party_data: Option<JsonPartyData<'a>>,
    #[serde(borrow, default)]
    error: Option<JsonError<'a>>,
    /// The reply to `party_create` (setup only).
    #[serde(borrow, default)]
    party: Option<JsonParty<'a>>,
}

#[derive(Deserialize)]
struct JsonPartyData<'a> {
    /// Standard base64, which needs no escapes in JSON, so it borrows.
    #[serde(borrow, default)]
    data: &'a str,
}

#[derive(Deserialize)]
struct JsonError<'a> {
    #[serde(default)]
    code: i64,
    #[serde(borrow, default)]
    message: Cow<'a, str>,
}

#[derive(Deserialize)]
struct JsonParty<'a> {
    #[serde(borrow, default)]
    party_id: &'a str,
}

impl JsonEnvelope<'_> {
    fn parse(frame: &[u8]) -> Result<JsonEnvelope<'_>, String> {
        serde_json::from_slice(frame).map_err(|e| format!("a frame that is not a Nakama envelope: {e}"))
    }

    fn error_text(&self) -> Option<String> {
        self.error.as_ref().map(|e| format!("error {}: {}", e.code, e.message))
    }
}

/// A server frame of Nakama's JSON mode, in the same terms. Party data's send stamp is its
/// payload's first 8 bytes: the first 12 characters of the base64 hold the first 9 bytes, and
/// only those are decoded. An envelope with a cid and nothing else is the ack of party data
/// sent with a cid (what FlatBuffers' `PartyOk` is).
fn classify_json(frame: &[u8]) -> Result<Msg, String> {
    let envelope = JsonEnvelope::parse(frame)?;
    if let Some(party_data) = &envelope.party_data {
        let prefix = &party_data.data.as_bytes()[..party_data.data.len().min(12)];
        let mut head = [0u8; 9];
        let len = STANDARD.decode_slice(prefix, &mut head).map_err(|e| format!("party data: {e}"))?;
        return Ok(Msg::PartyData(stamp(&head[..len])?));
    }
    if let Some(text) = envelope.error_text() {
        // Nakama's codes (3 for every party refusal) have no "missing cid": without a cid,
        // party data is fire-and-forget in the JSON mode.
        return Ok(Msg::Error { missing_cid: false, text });
    }
    Ok(match envelope.cid {
        Some(_) => Msg::Ok,
        None => Msg::Ignored,
    })
}

/// The floor's frames, in the same terms (see `floor.rs` for the protocol).
fn classify_floor(body: &[u8]) -> Result<Msg, String> {
    match body.first() {
        Some(&floor::KIND_DELIVERY) => Ok(Msg::PartyData(stamp(&body[1..])?)),
        Some(&floor::KIND_ACK) => Ok(Msg::Ok),
        Some(&floor::KIND_WELCOME) => Ok(Msg::Ignored),
        other => Err(format!("unknown floor frame kind {other:?}")),
    }
}

/// Counters shared by the scenarios' receive callbacks.
#[derive(Default)]
struct Tally {
    errors: u64,
    first_error: Option<String>,
    acked: u64,
}

impl Tally {
    fn error(&mut self, why: String) {
        self.errors += 1;
        self.first_error.get_or_insert(why);
    }
}

/// Runs one setup round: `send(fleet, i)` for every session index `i` in `which`, then turns
/// the loop until each has its reply. `reply(i, frame)` reads a frame of session `i`:
/// `Some(Ok(()))` when it is the awaited reply, `Some(Err(why))` when it refuses, `None` for
/// anything else. Any refusal or lost connection fails the setup.
fn setup_round(
    fleet: &mut Fleet,
    which: &[usize],
    mut send: impl FnMut(&mut Fleet, usize),
    mut reply: impl FnMut(usize, &[u8]) -> Option<Result<(), String>>,
) -> Result<(), String> {
    let mut waiting = vec![false; fleet.len()];
    for &i in which {
        send(fleet, i);
        waiting[i] = true;
    }
    let mut left = which.len();
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let mut failure: Option<String> = None;
    while left > 0 && failure.is_none() {
        if Instant::now() > deadline {
            return Err(format!("setup: {left} replies missing after {SETUP_TIMEOUT:?}"));
        }
        fleet.turn(Duration::from_millis(10), &mut |i, incoming| match incoming {
            Incoming::Frame(frame) if waiting[i] => {
                if let Some(result) = reply(i, frame) {
                    waiting[i] = false;
                    left -= 1;
                    if let Err(why) = result {
                        failure.get_or_insert(why);
                    }
                }
            }
            Incoming::Frame(_) => {}
            Incoming::Closed(why) => {
                failure.get_or_insert(why.to_owned());
            }
        })?;
    }
    match failure {
        Some(f) => Err(format!("setup: {f}")),
        None => Ok(()),
    }
}

/// A huddle setup round, in the fleet's format: sends `request(i)` (cid = session index + 1,
/// unique within the round) for every session index `i` in `which` and waits for each reply;
/// `on_reply(i, party_id)` sees each successful one, with the party it names, if any (a
/// create's). In Nakama's JSON mode the reply is the envelope under the cid (a join's is a bare
/// ack; the `party` pushed after it has no cid and is skipped).
fn huddle_setup_round(
    ctx: &Ctx<'_>,
    fleet: &mut Fleet,
    which: &[usize],
    mut request: impl FnMut(usize) -> Request,
    mut on_reply: impl FnMut(usize, Option<PartyId>),
) -> Result<(), String> {
    let verifier = &ctx.verifier;
    let json = ctx.json();
    setup_round(
        fleet,
        which,
        |fleet, i| fleet.send(i, i as u64 + 1, &request(i)),
        |i, frame| {
            let cid = i as u64 + 1;
            if json {
                return json_setup_reply(frame, cid).map(|reply| reply.map(|party_id| on_reply(i, party_id)));
            }
            match wire::decode_server_message(frame, verifier) {
                Ok(ServerMessage::Reply { cid: reply_cid, result }) if reply_cid.0 == cid => Some(match result {
                    Ok(reply) => {
                        let party_id = match reply {
                            Reply::Party(PartyReply::Info(snapshot)) => Some(snapshot.party_id),
                            _ => None,
                        };
                        on_reply(i, party_id);
                        Ok(())
                    }
                    Err(e) => Err(format!("error {}: {}", e.code.number(), e.message)),
                }),
                Ok(_) => None,
                Err(e) => Some(Err(format!("undecodable frame: {e}"))),
            }
        },
    )
}

/// A JSON frame read as the reply to setup request `cid`: `None` when it is not (an event:
/// presence, the `party` pushed after a join), else the refusal or the party the reply names.
fn json_setup_reply(frame: &[u8], cid: u64) -> Option<Result<Option<PartyId>, String>> {
    let envelope = match JsonEnvelope::parse(frame) {
        Ok(envelope) => envelope,
        Err(e) => return Some(Err(e)),
    };
    if envelope.cid.and_then(|c| c.parse::<u64>().ok()) != Some(cid) {
        return None;
    }
    if let Some(text) = envelope.error_text() {
        return Some(Err(text));
    }
    // The SDKs hand the printed id back as it is; it must name the party.
    Some(match envelope.party.map(|p| p.party_id) {
        None => Ok(None),
        Some(text) => parse_party_id(text).map(Some).ok_or_else(|| format!("{text:?} is not a party id")),
    })
}

/// One party's party-data message, encoded once at setup; each send writes its stamp (the
/// intended send time) into the message in place. Encoding per send would cost the harness an
/// allocation and an encoder's work per message, time taken from reading deliveries on time.
///
/// In Nakama's JSON mode the payload travels as standard base64 inside the text, and the stamp
/// is patched there: base64 turns every 3 bytes into 4 characters on their own, so the first 12
/// characters depend only on the payload's first 9 bytes (the stamp and one constant byte) and
/// always number 12; base64's alphabet needs no escape in a JSON string. The frame's text thus
/// stays valid JSON of one fixed length, and a send rewrites 12 bytes.
struct DataTemplate {
    body: Vec<u8>,
    stamp_at: usize,
    form: StampForm,
}

/// How the stamp is written into a template.
#[derive(Copy, Clone)]
enum StampForm {
    /// 8 bytes, little-endian (FlatBuffers' byte vector, the floor's body).
    Raw,
    /// The base64 of the stamp and the payload's 9th byte (when it has one): 12 characters.
    Base64 { ninth: Option<u8> },
}

impl DataTemplate {
    /// Marks where the stamp goes while the template is encoded; found once, then overwritten.
    const MARK: [u8; 8] = *b"\xA5stamp\x5A\xC3";
    /// Base64 characters holding the stamp (its 8 bytes and one more).
    const STAMP_BASE64_CHARS: usize = 12;

    /// The payload with the mark where the stamp goes.
    fn marked_payload(payload_bytes: usize) -> Vec<u8> {
        let mut data = vec![0u8; payload_bytes];
        data[..8].copy_from_slice(&Self::MARK);
        data
    }

    /// A template whose stamp is where `marker` occurs in `body`, which must be exactly once.
    fn find(body: Vec<u8>, marker: &[u8], form: StampForm) -> Result<Self, String> {
        let found: Vec<usize> =
            body.windows(marker.len()).enumerate().filter(|(_, w)| *w == marker).map(|(i, _)| i).collect();
        match found[..] {
            [stamp_at] => Ok(DataTemplate { body, stamp_at, form }),
            _ => Err(format!("the stamp mark occurs {} times in an encoded party data request", found.len())),
        }
    }

    /// huddle's `PartyDataSend` to `party_id`: cid 1 when acknowledged (the harness matches
    /// acks by connection, not by cid), cid 0 when fire-and-forget.
    fn huddle(encoder: &mut Encoder, party_id: PartyId, payload_bytes: usize, mode: SendMode) -> Result<Self, String> {
        let data = Self::marked_payload(payload_bytes);
        let cid = match mode {
            SendMode::Ack => Cid(1),
            SendMode::Fire => Cid::NONE,
        };
        let request = Request::Party(PartyRequest::Data { party_id, op_code: 1, data: Bytes::from(data) });
        let body = encoder.request(cid, &request).to_vec();
        Self::find(body, &Self::MARK, StampForm::Raw)
    }

    /// Nakama's `party_data_send` to `party_id`, as the server crate's [`request_frame`] writes
    /// it: with cid "1" when acknowledged (the server acks it as FlatBuffers' `PartyOk`), without
    /// a cid when fire-and-forget (what the SDKs send; no reply on success).
    fn json(party_id: PartyId, payload_bytes: usize, mode: SendMode) -> Result<Self, String> {
        let data = Self::marked_payload(payload_bytes);
        let head = &data[..payload_bytes.min(9)];
        let form = StampForm::Base64 { ninth: data.get(8).copied() };
        let marker = STANDARD.encode(head);
        debug_assert_eq!(marker.len(), Self::STAMP_BASE64_CHARS);
        let cid = match mode {
            SendMode::Ack => CidText::Number(1),
            SendMode::Fire => CidText::Absent,
        };
        let request = Request::Party(PartyRequest::Data { party_id, op_code: 1, data: Bytes::from(data) });
        let body = request_frame(&cid, &request).ok_or("party data has no Nakama form")?.into_bytes();
        Self::find(body, marker.as_bytes(), form)
    }

    /// The floor's data frame body: its kind, then the payload.
    fn floor(payload_bytes: usize, mode: SendMode) -> Self {
        let mut body = vec![0u8; 1 + payload_bytes];
        body[0] = match mode {
            SendMode::Ack => floor::KIND_DATA_ACKED,
            SendMode::Fire => floor::KIND_DATA_FIRE,
        };
        DataTemplate { body, stamp_at: 1, form: StampForm::Raw }
    }

    fn stamped(&mut self, intended_ns: u64) -> &[u8] {
        let at = self.stamp_at;
        match self.form {
            StampForm::Raw => self.body[at..at + 8].copy_from_slice(&intended_ns.to_le_bytes()),
            StampForm::Base64 { ninth } => {
                let mut head = [0u8; 9];
                head[..8].copy_from_slice(&intended_ns.to_le_bytes());
                let len = match ninth {
                    Some(byte) => {
                        head[8] = byte;
                        9
                    }
                    None => 8,
                };
                let written = STANDARD.encode_slice(&head[..len], &mut self.body[at..at + Self::STAMP_BASE64_CHARS]);
                debug_assert_eq!(written, Ok(Self::STAMP_BASE64_CHARS), "8 or 9 bytes are 12 base64 characters");
            }
        }
        &self.body
    }
}

/// huddle parties: each party's first session creates it, the others join; one data template
/// per party.
fn huddle_parties(ctx: &Ctx<'_>, fleet: &mut Fleet) -> Result<Vec<DataTemplate>, String> {
    let o = ctx.o;
    let k = o.party_size;
    let n = ctx.users.len();
    let leaders: Vec<usize> = (0..n).step_by(k).collect();
    let mut party_of: Vec<Option<PartyId>> = vec![None; n / k];
    huddle_setup_round(
        ctx,
        fleet,
        &leaders,
        |_| {
            Request::Party(PartyRequest::Create {
                open: true,
                max_size: k as u32,
                label: String::new(),
                hidden: false,
                lobby: Default::default(),
            })
        },
        |i, party_id| party_of[i / k] = party_id,
    )?;
    let party_of: Vec<PartyId> =
        party_of.into_iter().map(|p| p.ok_or("a create reply without a party")).collect::<Result<_, _>>()?;
    let members: Vec<usize> = (0..n).filter(|i| i % k != 0).collect();
    huddle_setup_round(
        ctx,
        fleet,
        &members,
        |i| Request::Party(PartyRequest::Join { party_id: party_of[i / k] }),
        |_, _| {},
    )?;
    if ctx.json() {
        return party_of.iter().map(|&party_id| DataTemplate::json(party_id, o.payload_bytes, o.mode)).collect();
    }
    let mut encoder = Encoder::new();
    party_of.iter().map(|&party_id| DataTemplate::huddle(&mut encoder, party_id, o.payload_bytes, o.mode)).collect()
}

/// Floor parties: every session joins its global party number (sessions of one party are in
/// one worker, but the floor needs no coordination either way); one data template per party.
fn floor_parties(ctx: &Ctx<'_>, fleet: &mut Fleet) -> Result<Vec<DataTemplate>, String> {
    let o = ctx.o;
    let k = o.party_size;
    let all: Vec<usize> = (0..ctx.users.len()).collect();
    let party = |i: usize| u32::try_from(ctx.users[i] / k).expect("Invariant: party numbers fit in u32");
    setup_round(
        fleet,
        &all,
        |fleet, i| fleet.send_body(i, &floor::join_body(party(i))),
        |_, body| match classify_floor(body) {
            Ok(Msg::Ok) => Some(Ok(())),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        },
    )?;
    Ok((0..ctx.users.len() / k).map(|_| DataTemplate::floor(o.payload_bytes, o.mode)).collect())
}

/// How long to wait for the next scheduled send: sleep in poll while it is far, spin (zero
/// timeout) for the last millisecond, since poll's timeout has millisecond granularity and a
/// late send would be charged to the server as latency.
fn poll_timeout(next_ns: Option<u64>, now: u64) -> Duration {
    match next_ns {
        Some(next) if next <= now + 1_200_000 => Duration::ZERO,
        Some(next) => Duration::from_nanos(next - now - 1_000_000).min(Duration::from_millis(50)),
        None => Duration::from_millis(5),
    }
}

/// Party fan-out against huddle or the floor: parties of K, every member sends party data;
/// latency from intended send time to each delivery. In fire mode nothing is acknowledged, so
/// loss is counted from what was sent: every message not refused must reach K - 1 members.
fn fanout(ctx: &Ctx<'_>, link: &mut dyn Link) -> Result<WorkerResult, String> {
    let o = ctx.o;
    let k = o.party_size;
    let n = ctx.users.len();
    let mut fleet = ctx.fleet()?;
    ctx.open(&mut fleet, false)?;
    let mut templates = match o.against {
        Against::Floor => floor_parties(ctx, &mut fleet)?,
        _ => huddle_parties(ctx, &mut fleet)?,
    };
    let side = o.against;
    let json = ctx.json();

    link.ready();
    let go = link.wait_go()?;
    let (window_start, window_end) = ctx.window(go);
    fleet.watch(window_start, window_end);
    let fire = o.mode == SendMode::Fire;
    let recipients = k as u64 - 1;
    let mut schedule = (o.rate > 0).then(|| Schedule::new(go, window_end, ctx.local_rate()));
    let mut in_flight = vec![0usize; n];
    let mut latency = Latency::new();
    let mut send_lag = Latency::new();
    let (mut latency_max_ns, mut latency_max_at_ns) = (0u64, 0u64);
    let mut tally = Tally::default();
    let (mut sent_total, mut sent_window, mut delivered_total, mut delivered_window) = (0u64, 0u64, 0u64, 0u64);
    // Data messages the server refused: never delivered, by design.
    let mut refused = 0u64;
    let outstanding =
        |sent: u64, delivered: u64, refused: u64| (sent.saturating_sub(refused) * recipients) as i64 - delivered as i64;
    let (mut outstanding_start, mut outstanding_end) = (0i64, 0i64);
    // Scheduled messages never sent, and turns in which a full connection held sends back.
    let (mut unsent, mut blocked_turns) = (0u64, 0u64);
    let mut rr = 0usize;
    let mut cpu_start = None;
    let mut cpu_end = None;
    let mut drain_deadline = None;
    loop {
        let now = now_ns();
        if cpu_start.is_none() && now >= window_start {
            cpu_start = Some(thread_cpu_ns());
            outstanding_start = outstanding(sent_total, delivered_total, refused);
        }
        if cpu_end.is_none() && now >= window_end {
            cpu_end = Some(thread_cpu_ns());
            outstanding_end = outstanding(sent_total, delivered_total, refused);
            if let Some(s) = &schedule {
                // What the schedule still owes is never sent: it counts in the send lag as
                // late as it is now, or a harness too slow to send would show no lag at all.
                unsent = s.owed();
                for (lateness_ns, count) in s.owed_lateness(window_start, now, 1000) {
                    send_lag.record_n_ns(lateness_ns, count);
                }
            }
            drain_deadline = Some(now + o.drain.as_nanos() as u64);
        }
        let mut send = |fleet: &mut Fleet, conn: usize, intended: u64, in_flight: &mut [usize]| {
            fleet.send_body(conn, templates[conn / k].stamped(intended));
            in_flight[conn] += 1;
            sent_total += 1;
            if (window_start..window_end).contains(&intended) {
                sent_window += 1;
                send_lag.record_ns(now_ns().saturating_sub(intended));
            }
        };
        if now < window_end {
            match &mut schedule {
                Some(schedule) => {
                    for m in schedule.due(now, SENDS_PER_TURN_MAX) {
                        let conn = (m % n as u64) as usize;
                        if fleet.out_full(conn) {
                            schedule.put_back(m);
                            blocked_turns += 1;
                            break;
                        }
                        let intended = schedule.intended_ns(m);
                        send(&mut fleet, conn, intended, &mut in_flight);
                    }
                }
                None => {
                    // As fast as possible: every sender keeps `window` requests in flight.
                    for _ in 0..n {
                        let conn = rr % n;
                        rr += 1;
                        while in_flight[conn] < o.window && !fleet.out_full(conn) {
                            send(&mut fleet, conn, now, &mut in_flight);
                        }
                    }
                }
            }
        } else {
            let answered = tally.acked + refused;
            // Acknowledged: each ack promises K - 1 deliveries, and every request is answered.
            // Fire-and-forget: every message not refused promises them.
            let (expected, all_answered) = if fire {
                (sent_total.saturating_sub(refused) * recipients, true)
            } else {
                (tally.acked * recipients, answered >= sent_total)
            };
            if (all_answered && delivered_total >= expected) || drain_deadline.is_some_and(|d| now >= d) {
                let lost = expected.saturating_sub(delivered_total);
                let unanswered = if fire { 0 } else { sent_total.saturating_sub(answered) };
                if unanswered > 0 {
                    tally.first_error.get_or_insert(format!("{unanswered} requests unanswered at the drain deadline"));
                }
                fleet.close_all();
                return Ok(WorkerResult {
                    connections: n as u64,
                    sent: sent_window,
                    delivered: delivered_window,
                    errors: tally.errors + unanswered,
                    lost,
                    first_error: tally.first_error,
                    harness_cpu_ns: cpu_end.unwrap_or(0).saturating_sub(cpu_start.unwrap_or(0)),
                    latency,
                    latency_max_ns,
                    latency_max_at_ms: latency_max_at_ns as f64 / 1e6,
                    send_lag,
                    outstanding_growth: outstanding_end - outstanding_start,
                    unsent,
                    blocked_turns,
                    watched: fleet.watched().unwrap_or_default(),
                });
            }
        }
        let timeout = if now >= window_end {
            Duration::from_millis(5)
        } else {
            poll_timeout(schedule.as_ref().and_then(Schedule::next_ns), now)
        };
        let verifier = &ctx.verifier;
        fleet.turn(timeout, &mut |conn, incoming| {
            let msg = match incoming {
                Incoming::Frame(frame) if side == Against::Floor => classify_floor(frame),
                Incoming::Frame(frame) if json => classify_json(frame),
                Incoming::Frame(frame) => classify(frame, verifier),
                Incoming::Closed(why) => return tally.error(why.to_owned()),
            };
            match msg {
                Ok(Msg::PartyData(intended)) => {
                    delivered_total += 1;
                    if (window_start..window_end).contains(&intended) {
                        delivered_window += 1;
                        let ns = now_ns().saturating_sub(intended);
                        latency.record_ns(ns);
                        if ns > latency_max_ns {
                            latency_max_ns = ns;
                            latency_max_at_ns = intended - window_start;
                        }
                    }
                }
                Ok(Msg::Ok) => {
                    tally.acked += 1;
                    in_flight[conn] = in_flight[conn].saturating_sub(1);
                }
                Ok(Msg::Error { missing_cid, text }) => {
                    refused += 1;
                    if fire && missing_cid {
                        tally.error(FIRE_UNSUPPORTED.to_owned());
                    } else {
                        tally.error(text);
                    }
                    in_flight[conn] = in_flight[conn].saturating_sub(1);
                }
                Ok(_) => {}
                Err(e) => tally.error(format!("undecodable frame: {e}")),
            }
        })?;
    }
}

/// Party churn: pairs cycle create (a) → join (b) → leave (b) → close (a). Each operation's
/// reply latency is recorded; the first of a cycle from its intended start (open loop).
fn churn(ctx: &Ctx<'_>, link: &mut dyn Link) -> Result<WorkerResult, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Step {
        Idle,
        Create,
        Join,
        Leave,
        Close,
    }
    struct Pair {
        step: Step,
        party: Option<PartyId>,
        op_start_ns: u64,
        backlog: VecDeque<u64>,
    }
    let o = ctx.o;
    let n = ctx.users.len();
    let mut fleet = ctx.fleet()?;
    ctx.open(&mut fleet, false)?;
    link.ready();
    let go = link.wait_go()?;
    let (window_start, window_end) = ctx.window(go);
    fleet.watch(window_start, window_end);
    // Four operations per cycle.
    let mut schedule = (o.rate > 0).then(|| Schedule::new(go, window_end, (ctx.local_rate() / 4).max(1)));
    let mut pairs: Vec<Pair> =
        (0..n / 2).map(|_| Pair { step: Step::Idle, party: None, op_start_ns: 0, backlog: VecDeque::new() }).collect();
    let mut latency = Latency::new();
    let mut tally = Tally::default();
    let (mut started_window, mut done_window) = (0u64, 0u64);
    let (mut cpu_start, mut cpu_end, mut drain_deadline) = (None, None, None);
    let mut replies: Vec<(usize, Result<Option<PartyId>, String>)> = Vec::new();
    let mut cid = 0u64;
    loop {
        let now = now_ns();
        if cpu_start.is_none() && now >= window_start {
            cpu_start = Some(thread_cpu_ns());
        }
        if cpu_end.is_none() && now >= window_end {
            cpu_end = Some(thread_cpu_ns());
            drain_deadline = Some(now + o.drain.as_nanos() as u64);
        }
        if now < window_end {
            match &mut schedule {
                Some(s) => {
                    let count = pairs.len() as u64;
                    for m in s.due(now, SENDS_PER_TURN_MAX) {
                        pairs[(m % count) as usize].backlog.push_back(s.intended_ns(m));
                    }
                }
                None => {
                    for p in pairs.iter_mut().filter(|p| p.step == Step::Idle && p.backlog.is_empty()) {
                        p.backlog.push_back(now);
                    }
                }
            }
        }
        // Replies of the last turn advance their pair's cycle.
        for (conn, result) in replies.drain(..) {
            let pair = &mut pairs[conn / 2];
            let t = now_ns();
            if (window_start..window_end).contains(&pair.op_start_ns) {
                latency.record_ns(t.saturating_sub(pair.op_start_ns));
                done_window += 1;
            }
            pair.op_start_ns = t;
            let a = conn & !1;
            let b = a + 1;
            cid += 1;
            match (result, pair.step) {
                (Err(e), _) => {
                    tally.error(e);
                    pair.step = Step::Idle;
                }
                (Ok(Some(party_id)), Step::Create) => {
                    pair.party = Some(party_id);
                    pair.step = Step::Join;
                    fleet.send(b, cid, &Request::Party(PartyRequest::Join { party_id }));
                }
                (Ok(_), Step::Join) => {
                    pair.step = Step::Leave;
                    let party_id = pair.party.expect("set at create");
                    fleet.send(b, cid, &Request::Party(PartyRequest::Leave { party_id }));
                }
                (Ok(_), Step::Leave) => {
                    pair.step = Step::Close;
                    let party_id = pair.party.expect("set at create");
                    fleet.send(a, cid, &Request::Party(PartyRequest::Close { party_id }));
                }
                (Ok(_), _) => pair.step = Step::Idle,
            }
        }
        for (i, pair) in pairs.iter_mut().enumerate() {
            if pair.step == Step::Idle {
                if let Some(intended) = pair.backlog.pop_front() {
                    pair.step = Step::Create;
                    pair.op_start_ns = intended;
                    if (window_start..window_end).contains(&intended) {
                        started_window += 1;
                    }
                    cid += 1;
                    let create = PartyRequest::Create {
                        open: true,
                        max_size: 2,
                        label: String::new(),
                        hidden: false,
                        lobby: Default::default(),
                    };
                    fleet.send(2 * i, cid, &Request::Party(create));
                }
            }
        }
        if now >= window_end {
            let busy = pairs.iter().any(|p| p.step != Step::Idle);
            if !busy || drain_deadline.is_some_and(|d| now >= d) {
                let unfinished = pairs.iter().filter(|p| p.step != Step::Idle).count() as u64;
                fleet.close_all();
                return Ok(WorkerResult {
                    connections: n as u64,
                    sent: started_window * 4,
                    delivered: done_window,
                    errors: tally.errors,
                    lost: unfinished,
                    first_error: tally.first_error,
                    harness_cpu_ns: cpu_end.unwrap_or(0).saturating_sub(cpu_start.unwrap_or(0)),
                    latency,
                    watched: fleet.watched().unwrap_or_default(),
                    ..WorkerResult::default()
                });
            }
        }
        let timeout = if now >= window_end {
            Duration::from_millis(5)
        } else {
            poll_timeout(schedule.as_ref().and_then(Schedule::next_ns), now)
        };
        let verifier = &ctx.verifier;
        fleet.turn(timeout, &mut |conn, incoming| match incoming {
            Incoming::Frame(frame) => match classify(frame, verifier) {
                Ok(Msg::Ok) => replies.push((conn, Ok(None))),
                Ok(Msg::Error { text, .. }) => replies.push((conn, Err(text))),
                Ok(Msg::Other(ServerMessage::Reply { result: Ok(Reply::Party(PartyReply::Info(s))), .. })) => {
                    replies.push((conn, Ok(Some(s.party_id))))
                }
                Ok(Msg::Other(ServerMessage::Reply { result, .. })) => {
                    replies.push((conn, Err(format!("unexpected reply {result:?}"))))
                }
                Ok(_) => {}
                Err(e) => tally.error(format!("undecodable frame: {e}")),
            },
            Incoming::Closed(why) => tally.error(why.to_owned()),
        })?;
    }
}

/// Status fan-out (`idle == false`): every session follows the next `--follows` users and
/// changes its status on an open-loop schedule; each status carries its intended time, and
/// every event delivered (to followers and the user's own session) is timed. `idle`: the same
/// setup, then the sessions are only held.
fn status(ctx: &Ctx<'_>, link: &mut dyn Link, idle: bool) -> Result<WorkerResult, String> {
    let o = ctx.o;
    let n = ctx.users.len();
    let total = o.connections;
    let mut fleet = ctx.fleet()?;
    ctx.open(&mut fleet, true)?;
    let follows = o.follows.min(total - 1);
    let all: Vec<usize> = (0..n).collect();
    if follows > 0 {
        huddle_setup_round(
            ctx,
            &mut fleet,
            &all,
            |i| {
                let g = ctx.users[i];
                let user_ids = (1..=follows).map(|d| UserId::new(&Ctx::user_id((g + d) % total))).collect();
                Request::Status(StatusRequest::Follow { user_ids, usernames: Vec::new() })
            },
            |_, _| {},
        )?;
    }
    link.ready();
    let go = link.wait_go()?;
    let (window_start, window_end) = ctx.window(go);
    fleet.watch(window_start, window_end);
    let mut schedule = (!idle && o.rate > 0).then(|| Schedule::new(go, window_end, ctx.local_rate()));
    let mut latency = Latency::new();
    let mut send_lag = Latency::new();
    let mut tally = Tally::default();
    let (mut sent_total, mut sent_window, mut delivered_total, mut delivered_window) = (0u64, 0u64, 0u64, 0u64);
    let (mut cpu_start, mut cpu_end, mut drain_deadline) = (None, None, None);
    let mut cid = 1u64 << 32;
    loop {
        let now = now_ns();
        if cpu_start.is_none() && now >= window_start {
            cpu_start = Some(thread_cpu_ns());
        }
        if cpu_end.is_none() && now >= window_end {
            cpu_end = Some(thread_cpu_ns());
            drain_deadline = Some(now + o.drain.as_nanos() as u64);
        }
        if now < window_end {
            if let Some(s) = &mut schedule {
                for m in s.due(now, SENDS_PER_TURN_MAX) {
                    let intended = s.intended_ns(m);
                    cid += 1;
                    let update = StatusRequest::Update { status: Some(intended.to_string()) };
                    fleet.send((m % n as u64) as usize, cid, &Request::Status(update));
                    sent_total += 1;
                    if (window_start..window_end).contains(&intended) {
                        sent_window += 1;
                        send_lag.record_ns(now_ns().saturating_sub(intended));
                    }
                }
            }
        } else {
            // Every update reaches its followers and the user's own session.
            let expected = if idle { 0 } else { tally.acked * (follows as u64 + 1) };
            let all_answered = tally.acked + tally.errors >= sent_total;
            if idle || (all_answered && delivered_total >= expected) || drain_deadline.is_some_and(|d| now >= d) {
                let lost = expected.saturating_sub(delivered_total);
                let open = (0..fleet.len()).filter(|&i| fleet.state(i) == super::fleet::ConnState::Open).count();
                fleet.close_all();
                return Ok(WorkerResult {
                    connections: if idle { open as u64 } else { n as u64 },
                    sent: sent_window,
                    delivered: delivered_window,
                    errors: tally.errors,
                    lost,
                    first_error: tally.first_error,
                    harness_cpu_ns: cpu_end.unwrap_or(0).saturating_sub(cpu_start.unwrap_or(0)),
                    latency,
                    send_lag,
                    watched: fleet.watched().unwrap_or_default(),
                    ..WorkerResult::default()
                });
            }
        }
        let timeout = if now >= window_end || idle {
            Duration::from_millis(if idle { 100 } else { 5 })
        } else {
            poll_timeout(schedule.as_ref().and_then(Schedule::next_ns), now)
        };
        let verifier = &ctx.verifier;
        fleet.turn(timeout, &mut |_, incoming| match incoming {
            Incoming::Frame(frame) => match classify(frame, verifier) {
                Ok(Msg::Ok) => tally.acked += 1,
                Ok(Msg::Error { text, .. }) => tally.error(text),
                Ok(Msg::StatusStamp(stamp)) => {
                    if let Some(intended) = stamp {
                        delivered_total += 1;
                        if (window_start..window_end).contains(&intended) {
                            delivered_window += 1;
                            latency.record_ns(now_ns().saturating_sub(intended));
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tally.error(format!("undecodable frame: {e}")),
            },
            Incoming::Closed(why) => tally.error(why.to_owned()),
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huddle::core::{ErrorCode, Event, PartyEvent, Presence, SessionId, Username};
    use huddle::limits::Limits;
    use huddle::wire::nakama::{decode_request, NakamaEncoder, NakamaLimits};

    const PARTY: PartyId = PartyId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);

    /// What huddle's JSON decoder reads from a stamped template: the cid, and the stamp.
    fn decoded(frame: &[u8]) -> (CidText, u64) {
        let text = std::str::from_utf8(frame).expect("a text frame");
        let request = decode_request(frame, &NakamaLimits::new(&Limits::default()))
            .unwrap_or_else(|e| panic!("huddle refuses {text}: {e:?}"));
        match request.request {
            Request::Party(PartyRequest::Data { party_id, data, .. }) => {
                assert_eq!(party_id, PARTY, "{text}");
                (request.reply_to.cid, stamp(&data).expect("a stamp"))
            }
            other => panic!("{text} decodes to {other:?}"),
        }
    }

    #[test]
    fn json_templates_carry_each_stamp_in_place_and_decode_as_huddle_reads_them() {
        for payload_bytes in [8, 9, 10, 11, 64, 1000] {
            for (mode, cid) in [(SendMode::Ack, CidText::Number(1)), (SendMode::Fire, CidText::Absent)] {
                let mut template = DataTemplate::json(PARTY, payload_bytes, mode).expect("a template");
                let len = template.body.len();
                for intended in [0, 1, u64::MAX, 1_732_000_000_123_456_789, 0xFFFF_FFFF] {
                    let frame = template.stamped(intended).to_vec();
                    assert_eq!(frame.len(), len, "the stamp keeps the frame's length");
                    assert_eq!(decoded(&frame), (cid.clone(), intended), "{payload_bytes} bytes, {mode:?}");
                }
            }
        }
    }

    #[test]
    fn json_deliveries_acks_and_refusals_read_as_flatbuffers_ones() {
        let sender =
            Presence { user_id: UserId::new("u"), session_id: SessionId::new(1, 2), username: Username::new("U") };
        let mut encoder = NakamaEncoder::new();
        for payload_bytes in [8, 9, 64] {
            let intended = 1_732_000_000_987_654_321u64;
            let mut data = vec![7u8; payload_bytes];
            data[..8].copy_from_slice(&intended.to_le_bytes());
            let event = Event::Party(PartyEvent::Data {
                party_id: PARTY,
                sender: sender.clone(),
                op_code: 1,
                data: Bytes::from(data),
            });
            let frames = encoder.event(&event);
            let frame = frames.iter().next().expect("one party_data frame");
            assert!(matches!(classify_json(frame), Ok(Msg::PartyData(stamp)) if stamp == intended));
        }
        assert!(matches!(classify_json(br#"{"cid":"1"}"#), Ok(Msg::Ok)));
        let refusal = encoder.refusal(&CidText::Absent, ErrorCode::PartyNotMember, "not a member");
        let refusal = refusal.iter().next().expect("one error frame");
        assert!(matches!(classify_json(refusal), Ok(Msg::Error { missing_cid: false, .. })));
        assert!(matches!(classify_json(br#"{"party_presence_event":{"joins":[]}}"#), Ok(Msg::Ignored)));
        assert!(classify_json(br#"{"party_data":{"data":"AAAA"}}"#).is_err(), "no stamp in 3 bytes");
        assert!(classify_json(b"not json").is_err());
    }
}
