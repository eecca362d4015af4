//! The scenarios' worker side: each sets up its share of sessions, says it is ready, waits for
//! the common start, drives its load over one [`Fleet`], drains, and returns its counts and
//! latency histogram.
//!
//! The fan-out family (`fanout`, `game`, each sweep step) runs the same sessions code against
//! huddle or the floor: only the setup (huddle's create and join requests, or the floor's join
//! message), the encoded message ([`DataTemplate`]) and the reading of what comes back
//! ([`classify`], [`classify_floor`]) differ.

use super::fleet::{Fleet, Framing, Incoming};
use super::floor;
use super::hist::Latency;
use super::pace::Schedule;
use super::procfs::{now_ns, thread_cpu_ns};
use super::{load_key, resolve_target, source_address, Against, Link, Options, Scenario, SendMode, WorkerResult};
use bytes::Bytes;
use flatbuffers::VerifierOptions;
use huddle::auth::{self, Claims, TokenKey};
use huddle::core::{Cid, PartyId, PartyReply, PartyRequest, Reply, Request, StatusRequest, UserId};
use huddle::wire::{self, fb, Encoder, ServerMessage};
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

    fn fleet(&self) -> Result<Fleet, String> {
        let framing = match self.o.against {
            Against::Floor => Framing::LengthPrefixed,
            _ => Framing::WebSocket { host: self.target.host.clone(), path: self.target.path.clone() },
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
enum Msg<'a> {
    PartyData(&'a [u8]),
    /// A status event: the first joined status, the harness's send stamp when it parses.
    StatusStamp(Option<u64>),
    Ok,
    Error {
        code: u16,
        text: String,
    },
    Other(ServerMessage),
    /// Nothing the scenarios count (the floor's welcome).
    Ignored,
}

fn classify<'a>(frame: &'a [u8], verifier: &VerifierOptions) -> Result<Msg<'a>, String> {
    let envelope = flatbuffers::root_with_opts::<fb::Envelope>(verifier, frame).map_err(|e| e.to_string())?;
    match envelope.message_type() {
        fb::Message::PartyData => {
            let data = envelope.message_as_party_data().and_then(|d| d.data()).ok_or("party data without data")?;
            Ok(Msg::PartyData(data.bytes()))
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
            Ok(Msg::Error { code, text: format!("error {code}: {}", e.message().unwrap_or_default()) })
        }
        _ => wire::decode_server_message(frame, verifier).map(Msg::Other).map_err(|e| e.to_string()),
    }
}

/// The floor's frames, in the same terms (see `floor.rs` for the protocol).
fn classify_floor(body: &[u8]) -> Result<Msg<'_>, String> {
    match body.first() {
        Some(&floor::KIND_DELIVERY) => Ok(Msg::PartyData(&body[1..])),
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

/// A huddle setup round: sends `request(i)` (cid = session index + 1, unique within the round)
/// for every session index `i` in `which` and waits for each reply; `on_reply(i, reply)` sees
/// each successful one.
fn huddle_setup_round(
    ctx: &Ctx<'_>,
    fleet: &mut Fleet,
    which: &[usize],
    mut request: impl FnMut(usize) -> Request,
    mut on_reply: impl FnMut(usize, Reply),
) -> Result<(), String> {
    let verifier = &ctx.verifier;
    setup_round(
        fleet,
        which,
        |fleet, i| fleet.send(i, i as u64 + 1, &request(i)),
        |i, frame| match wire::decode_server_message(frame, verifier) {
            Ok(ServerMessage::Reply { cid, result }) if cid.0 == i as u64 + 1 => Some(match result {
                Ok(reply) => {
                    on_reply(i, reply);
                    Ok(())
                }
                Err(e) => Err(format!("error {}: {}", e.code.number(), e.message)),
            }),
            Ok(_) => None,
            Err(e) => Some(Err(format!("undecodable frame: {e}"))),
        },
    )
}

/// One party's party-data message, encoded once at setup; each send writes its stamp (the
/// intended send time) into the first 8 bytes of the payload in place. Encoding per send would
/// cost the harness an allocation and a FlatBuffers build per message, time taken from reading
/// deliveries on time.
struct DataTemplate {
    body: Vec<u8>,
    stamp_at: usize,
}

impl DataTemplate {
    /// Marks where the stamp goes while the template is encoded; found once, then overwritten.
    const MARK: [u8; 8] = *b"\xA5stamp\x5A\xC3";

    /// huddle's `PartyDataSend` to `party_id`: cid 1 when acknowledged (the harness matches
    /// acks by connection, not by cid), cid 0 when fire-and-forget.
    fn huddle(encoder: &mut Encoder, party_id: PartyId, payload_bytes: usize, mode: SendMode) -> Result<Self, String> {
        let mut data = vec![0u8; payload_bytes];
        data[..8].copy_from_slice(&Self::MARK);
        let cid = match mode {
            SendMode::Ack => Cid(1),
            SendMode::Fire => Cid::NONE,
        };
        let request = Request::Party(PartyRequest::Data { party_id, op_code: 1, data: Bytes::from(data) });
        let body = encoder.request(cid, &request).to_vec();
        let found: Vec<usize> = body.windows(8).enumerate().filter(|(_, w)| *w == Self::MARK).map(|(i, _)| i).collect();
        match found[..] {
            [stamp_at] => Ok(DataTemplate { body, stamp_at }),
            _ => Err(format!("the stamp mark occurs {} times in an encoded party data request", found.len())),
        }
    }

    /// The floor's data frame body: its kind, then the payload.
    fn floor(payload_bytes: usize, mode: SendMode) -> Self {
        let mut body = vec![0u8; 1 + payload_bytes];
        body[0] = match mode {
            SendMode::Ack => floor::KIND_DATA_ACKED,
            SendMode::Fire => floor::KIND_DATA_FIRE,
        };
        DataTemplate { body, stamp_at: 1 }
    }

    fn stamped(&mut self, intended_ns: u64) -> &[u8] {
        self.body[self.stamp_at..self.stamp_at + 8].copy_from_slice(&intended_ns.to_le_bytes());
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
        |i, reply| {
            if let Reply::Party(PartyReply::Info(snapshot)) = reply {
                party_of[i / k] = Some(snapshot.party_id);
            }
        },
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
                Incoming::Frame(frame) => classify(frame, verifier),
                Incoming::Closed(why) => return tally.error(why.to_owned()),
            };
            match msg {
                Ok(Msg::PartyData(data)) if data.len() >= 8 => {
                    let intended = u64::from_le_bytes(data[..8].try_into().expect("8 bytes checked"));
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
                Ok(Msg::Error { code, text }) => {
                    refused += 1;
                    if fire && code == ERROR_MISSING_CID {
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
