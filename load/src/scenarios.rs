//! The scenarios' worker side: each sets up its share of sessions, says it is ready, waits for
//! the common start, drives its load over one [`Fleet`], drains, and returns its counts and
//! latency histogram.

use super::fleet::{Fleet, Incoming};
use super::hist::Latency;
use super::pace::Schedule;
use super::procfs::{now_ns, thread_cpu_ns};
use super::{load_key, resolve_target, source_address, Link, Options, Scenario, WorkerResult};
use bytes::Bytes;
use flatbuffers::VerifierOptions;
use huddle::auth::{self, Claims, TokenKey};
use huddle::core::{PartyId, PartyReply, PartyRequest, Reply, Request, StatusRequest, UserId};
use huddle::wire::{self, fb, ServerMessage};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod json_fanout;

/// Time allowed to open every connection of a worker and finish setup requests.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn run_worker(o: &Options, index: usize, count: usize, link: &mut dyn Link) -> Result<WorkerResult, String> {
    let ctx = Ctx::new(o, index, count)?;
    match o.scenario {
        Scenario::Fanout | Scenario::Sweep => match o.format {
            super::Format::FlatBuffers => fanout(&ctx, link, &mut FlatBuffersFanout::default()),
            super::Format::Json => fanout(&ctx, link, &mut json_fanout::JsonFanout::default()),
        },
        Scenario::Churn => churn(&ctx, link),
        Scenario::Status => status(&ctx, link, false),
        Scenario::Idle => status(&ctx, link, true),
        Scenario::Calibrate => Err("calibrate has no workers".into()),
    }
}

struct Ctx<'a> {
    o: &'a Options,
    key: TokenKey,
    /// Global user indices of this worker's sessions, in order.
    users: Vec<usize>,
    verifier: VerifierOptions,
    target: super::Target,
}

impl<'a> Ctx<'a> {
    fn new(o: &'a Options, index: usize, count: usize) -> Result<Ctx<'a>, String> {
        let n = o.connections;
        let users: Vec<usize> = match o.scenario {
            Scenario::Fanout | Scenario::Sweep => {
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
        Ok(Ctx {
            o,
            key: load_key(o)?,
            users,
            verifier: wire::verifier_options(1 << 20),
            target: resolve_target(&o.url)?,
        })
    }

    fn user_id(g: usize) -> String {
        format!("load-{g}")
    }

    fn token(&self, g: usize) -> String {
        let claims =
            Claims { user_id: Ctx::user_id(g), username: format!("Load{g}"), expires_at_unix_s: unix_now_s() + 86_400 };
        auth::mint(&claims, &self.key)
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
        let mut fleet =
            Fleet::new(self.target.addr, &self.target.host, &self.target.path).map_err(|e| format!("poll: {e}"))?;
        if self.o.format == super::Format::Json {
            fleet.speak_json();
        }
        Ok(fleet)
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
    Error(String),
    Other(ServerMessage),
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
            Ok(Msg::Error(format!("error {}: {}", e.code().0, e.message().unwrap_or_default())))
        }
        _ => wire::decode_server_message(frame, verifier).map(Msg::Other).map_err(|e| e.to_string()),
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

/// Runs setup requests: sends `request(i)` for every session index `i` in `which`, then waits
/// until each has its reply; `on_reply(i, reply)` sees each successful one. Any error reply or
/// lost connection fails the setup.
fn setup_round(
    ctx: &Ctx<'_>,
    fleet: &mut Fleet,
    which: &[usize],
    mut request: impl FnMut(usize) -> Request,
    mut on_reply: impl FnMut(usize, Reply),
) -> Result<(), String> {
    let mut waiting = vec![false; fleet.len()];
    for &i in which {
        // cid = session index + 1: unique within the round.
        fleet.send(i, i as u64 + 1, &request(i));
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
            Incoming::Frame(frame) => match wire::decode_server_message(frame, &ctx.verifier) {
                Ok(ServerMessage::Reply { cid, result }) if waiting[i] && cid.0 == i as u64 + 1 => {
                    waiting[i] = false;
                    left -= 1;
                    match result {
                        Ok(reply) => on_reply(i, reply),
                        Err(e) => {
                            failure.get_or_insert(format!("error {}: {}", e.code.number(), e.message));
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    failure.get_or_insert(format!("undecodable frame: {e}"));
                }
            },
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

/// What the fan-out loop needs of a wire format: huddle's FlatBuffers, or Nakama's JSON
/// (`--format json`, in `json_fanout.rs`).
trait FanoutWire {
    /// Creates a party per K sessions (the first of each K leads) and joins the others to it.
    fn setup(&mut self, ctx: &Ctx<'_>, fleet: &mut Fleet) -> Result<(), String>;
    /// Queues `data` as party data from session `conn` to its party, under `cid`.
    fn send_data(&mut self, fleet: &mut Fleet, conn: usize, cid: u64, data: &[u8]);
    /// What a frame from the server means to the loop.
    fn classify(&self, ctx: &Ctx<'_>, frame: &[u8]) -> Seen;
}

/// A server frame as the fan-out loop sees it.
enum Seen {
    /// Party data carrying the harness's send stamp (its first 8 bytes).
    Data(u64),
    /// The reply to a party data request.
    Ok,
    Error(String),
    Other,
}

/// The send stamp at the start of a delivered payload.
fn stamp(data: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(..8)?.try_into().ok()?))
}

#[derive(Default)]
struct FlatBuffersFanout {
    party_size: usize,
    /// Each party's id, by session index / party size.
    party_of: Vec<PartyId>,
}

impl FanoutWire for FlatBuffersFanout {
    fn setup(&mut self, ctx: &Ctx<'_>, fleet: &mut Fleet) -> Result<(), String> {
        let k = ctx.o.party_size;
        let n = ctx.users.len();
        self.party_size = k;
        let leaders: Vec<usize> = (0..n).step_by(k).collect();
        let mut party_of: Vec<Option<PartyId>> = vec![None; n / k];
        setup_round(
            ctx,
            fleet,
            &leaders,
            |_| {
                Request::Party(PartyRequest::Create {
                    open: true,
                    max_size: k as u32,
                    label: String::new(),
                    hidden: false,
                })
            },
            |i, reply| {
                if let Reply::Party(PartyReply::Info(snapshot)) = reply {
                    party_of[i / k] = Some(snapshot.party_id);
                }
            },
        )?;
        self.party_of =
            party_of.into_iter().map(|p| p.ok_or("a create reply without a party")).collect::<Result<_, _>>()?;
        let members: Vec<usize> = (0..n).filter(|i| i % k != 0).collect();
        let party_of = &self.party_of;
        setup_round(
            ctx,
            fleet,
            &members,
            |i| Request::Party(PartyRequest::Join { party_id: party_of[i / k] }),
            |_, _| {},
        )
    }

    fn send_data(&mut self, fleet: &mut Fleet, conn: usize, cid: u64, data: &[u8]) {
        let party_id = self.party_of[conn / self.party_size];
        let data = Bytes::copy_from_slice(data);
        fleet.send(conn, cid, &Request::Party(PartyRequest::Data { party_id, op_code: 1, data }));
    }

    fn classify(&self, ctx: &Ctx<'_>, frame: &[u8]) -> Seen {
        match classify(frame, &ctx.verifier) {
            Ok(Msg::PartyData(data)) => stamp(data).map_or(Seen::Other, Seen::Data),
            Ok(Msg::Ok) => Seen::Ok,
            Ok(Msg::Error(e)) => Seen::Error(e),
            Ok(_) => Seen::Other,
            Err(e) => Seen::Error(format!("undecodable frame: {e}")),
        }
    }
}

/// Party fan-out: parties of K, every member sends party data; latency from intended send time
/// to each delivery.
fn fanout(ctx: &Ctx<'_>, link: &mut dyn Link, wire: &mut dyn FanoutWire) -> Result<WorkerResult, String> {
    let o = ctx.o;
    let k = o.party_size;
    let n = ctx.users.len();
    let mut fleet = ctx.fleet()?;
    ctx.open(&mut fleet, false)?;
    wire.setup(ctx, &mut fleet)?;

    link.ready();
    let go = link.wait_go()?;
    let (window_start, window_end) = ctx.window(go);
    let mut schedule = (o.rate > 0).then(|| Schedule::new(go, window_end, ctx.local_rate()));
    let mut in_flight = vec![0usize; n];
    let mut payload = vec![0u8; o.payload_bytes];
    let mut latency = Latency::new();
    let mut send_lag = Latency::new();
    let mut tally = Tally::default();
    let (mut sent_total, mut sent_window, mut delivered_total, mut delivered_window) = (0u64, 0u64, 0u64, 0u64);
    let mut next_cid = 1u64 << 32;
    let mut rr = 0usize;
    let mut cpu_start = None;
    let mut cpu_end = None;
    let mut drain_deadline = None;
    loop {
        let now = now_ns();
        if cpu_start.is_none() && now >= window_start {
            cpu_start = Some(thread_cpu_ns());
        }
        if cpu_end.is_none() && now >= window_end {
            cpu_end = Some(thread_cpu_ns());
            drain_deadline = Some(now + o.drain.as_nanos() as u64);
        }
        let mut send = |fleet: &mut Fleet, conn: usize, intended: u64, in_flight: &mut [usize]| {
            payload[..8].copy_from_slice(&intended.to_le_bytes());
            next_cid += 1;
            wire.send_data(fleet, conn, next_cid, &payload);
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
                    for m in schedule.due(now) {
                        let intended = schedule.intended_ns(m);
                        send(&mut fleet, (m % n as u64) as usize, intended, &mut in_flight);
                    }
                }
                None => {
                    // As fast as possible: every sender keeps `window` requests in flight.
                    for _ in 0..n {
                        let conn = rr % n;
                        rr += 1;
                        while in_flight[conn] < o.window {
                            send(&mut fleet, conn, now, &mut in_flight);
                        }
                    }
                }
            }
        } else {
            let expected = (tally.acked) * (k as u64 - 1);
            let all_answered = tally.acked + tally.errors >= sent_total;
            if (all_answered && delivered_total >= expected) || drain_deadline.is_some_and(|d| now >= d) {
                let lost = expected.saturating_sub(delivered_total);
                let unanswered = sent_total.saturating_sub(tally.acked + tally.errors);
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
                    send_lag,
                });
            }
        }
        let timeout = if now >= window_end {
            Duration::from_millis(5)
        } else {
            poll_timeout(schedule.as_ref().and_then(Schedule::next_ns), now)
        };
        let reader = &*wire;
        fleet.turn(timeout, &mut |conn, incoming| match incoming {
            Incoming::Frame(frame) => match reader.classify(ctx, frame) {
                Seen::Data(intended) => {
                    delivered_total += 1;
                    if (window_start..window_end).contains(&intended) {
                        delivered_window += 1;
                        latency.record_ns(now_ns().saturating_sub(intended));
                    }
                }
                Seen::Ok => {
                    tally.acked += 1;
                    in_flight[conn] = in_flight[conn].saturating_sub(1);
                }
                Seen::Error(e) => {
                    tally.error(e);
                    in_flight[conn] = in_flight[conn].saturating_sub(1);
                }
                Seen::Other => {}
            },
            Incoming::Closed(why) => tally.error(why.to_owned()),
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
                    for m in s.due(now) {
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
                    let create = PartyRequest::Create { open: true, max_size: 2, label: String::new(), hidden: false };
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
                    send_lag: Latency::new(),
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
                Ok(Msg::Error(e)) => replies.push((conn, Err(e))),
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
        setup_round(
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
                for m in s.due(now) {
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
                Ok(Msg::Error(e)) => tally.error(e),
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
