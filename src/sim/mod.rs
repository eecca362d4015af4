//! One deterministic simulation of the whole core (no sockets, no clock, no threads): parties,
//! party search, statuses and follows, the lobby (invitations, codes, strategies, versions and
//! snapshots, one party per user) and core timers, in one shared world, so that bugs that
//! cross features can show. It lives in the crate so that `tests/sim.rs` (seeded, many seeds)
//! and the `core_ops` fuzz target (`fuzzing::core_ops`, the fuzzer's bytes) share one operation
//! grammar and one set of checks. Not part of the API.
//!
//! # The world
//!
//! Each run picks small random limits (parties of a few members, a few parties per session,
//! labels, data and statuses of a few bytes, a handful of follows and ids per request, small
//! search pages and wildcard budgets), a population of users (several sessions per user, some
//! users sharing a username, a few "ghost" users who never connect), random operation weights,
//! and then draws every operation from one grammar (`Op`): connects (visible or not),
//! disconnects (some of stale sessions), every party request (with and without a cid for
//! party data), searches followed to their last page, status updates, follows and unfollows,
//! pings, and timer probes armed and cancelled. Time advances a few milliseconds per step (some
//! steps not at all), and before each step the harness does what the driver does: it asks
//! `poll_timeout` and, once the deadline has passed, calls `handle_timeout` (sometimes early,
//! which must be harmless).
//!
//! # The checks, after every step
//!
//! - the core's own invariant sweep (`assert_invariants`: sessions, parties, search index,
//!   statuses, timers);
//! - every request got exactly one reply, first, to its session, with its cid; party data sent
//!   without a cid got none, and its refusal came as one `PartyDataRefused` event to the sender;
//! - a refused request changed no table of any feature and caused no event; a party request
//!   never changes a status, a status request never changes a party;
//! - no event reaches a session that is not connected, nor lists a recipient twice;
//! - parties (`party.rs`): party data reached exactly the other member sessions in join order;
//!   membership events go to members after the step, "removed" only to a session that was a
//!   member or requester before and is not after, leader events name the leader (by tenure
//!   after a rotation) before the leaves, join requests go to the leader alone;
//! - search (`party.rs`): every search, page by page, is exactly a brute-force evaluation of
//!   its query over the party table, lists only live non-hidden parties with their current
//!   values, changes nothing, and refuses a cursor replayed with another filter or limit;
//! - statuses (`status.rs`): a plain model predicts every status output exactly (reply,
//!   event contents and recipients), and the core agrees with it about the touched session's
//!   status and follows;
//! - timers (`time.rs`): `poll_timeout` is the model's earliest deadline (probes and
//!   invitations), and each `handle_timeout` fires exactly the model's due probes, in
//!   (deadline, arm order) order, and expires exactly its due invitations; cancelling reports
//!   whether the probe was still armed;
//! - the lobby (`lobby.rs`, whose docs list its checks): a model predicts every invitation and
//!   code request's outcome and events; invitations held agree with it both ways, none to a
//!   member; codes are unique; versions are 1 + the steps that changed a party; snapshot events
//!   equal the state and follow the deltas;
//! - Lobby II (`lobby2.rs`, whose docs list its checks): models of the social table and who may
//!   join, custom data, chat (sequence, time, the rate window) and attributes predict every
//!   outcome and event; names are refused exactly when the deny-list or their rules say;
//! - operators (`admin.rs`): admin close and kick tell exactly the right sessions, in the
//!   right order, and a refusal changes nothing; every party that ended has exactly one
//!   consistent history record;
//! - disconnecting everyone at the end leaves every table empty.
//!
//! A failure names its seed; `HUDDLE_SIM_SEED=<n> cargo test --test sim` replays it.
//!
//! - budgets and label bounds (issue 14): a model of each session's search budget, which
//!   learns each search's cost from the core's counters, predicts exactly when a search is
//!   refused with 235 and the wait it names; an answered search never spent more than
//!   `search_query_cost_max`; a label refused as too complex (236) exceeds one of its bounds by
//!   the harness's own flattening, an accepted one is within all of them, and after a labelled
//!   party is created the index's memory estimate is within `search_index_bytes_max` (237 is
//!   answered only for labels within their bounds).
//!
//! Cost: the checks (views of every party before and after, digests, brute-force search)
//! dominate a step, not the core. Seeded runs (`cargo test`) run all of them after every step
//! (debug builds also run the core's sweep inside the core). The fuzz target
//! ([`Sim::check_fully_every`]) runs those that cost as much as the whole world — the core's
//! sweep, digests of every table, views of every party — every 16 steps and at the end, and in
//! between checks what each step touched: the digest of the party a request names and the
//! requester's links (a refused request must not change them), views of that party alone, and
//! the sweep of every party the step named or created (a disconnect: every party the session
//! was in). That keeps an input's cost proportional to what it does, not to the world's size
//! times its steps.
#![doc(hidden)]

mod admin;
mod lobby;
mod lobby2;
mod party;
mod rng;
mod status;
mod time;

pub use rng::Rng;

use crate::core::{
    Cid, ConnectOptions, Core, CoreError, Event, Identity, Millis, Now, Outbox, Output, PartyId, Presence, Reply,
    Request, SessionId, UserId, Username,
};
use crate::limits::Limits;
use lobby::LobbyOp;
use lobby2::Lobby2Op;
use party::PartyOp;
use std::collections::{BTreeMap, BTreeSet};

/// Runs one seed for `steps` steps, then disconnects everyone. A failing check panics with
/// the seed and step named on stderr.
pub fn run(seed: u64, steps: usize) -> Stats {
    run_counting(seed, steps, Stats::default())
}

/// [`run`], counting on from `stats` (to total many seeds).
pub fn run_counting(seed: u64, steps: usize, stats: Stats) -> Stats {
    let mut sim = Sim::new(seed);
    sim.stats = stats;
    for step in 0..steps {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step()));
        if let Err(panic) = result {
            eprintln!("simulation failed: seed {seed} step {step}; replay with HUDDLE_SIM_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
    sim.disconnect_everyone();
    sim.stats
}

/// One connected session as the harness knows it: the model of the session table and of the
/// session's status and follows.
pub struct ModelSession {
    pub presence: Presence,
    pub status: Option<String>,
    pub follows: BTreeSet<UserId>,
    /// Connect order, which the core's follow replies follow.
    order: u64,
}

/// The operation grammar: one weight per entry of [`OPS`], drawn per seed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Op {
    Connect,
    Disconnect,
    /// A disconnect of a session that is already gone (the driver may race a close).
    DisconnectStale,
    Ping,
    Party(PartyOp),
    Search,
    StatusUpdate,
    Follow,
    Unfollow,
    ArmProbe,
    CancelProbe,
    /// `handle_timeout` before anything is due.
    EarlyTimeout,
    /// Invitations, codes, and time jumps (SPEC L-1 … L-9): `lobby.rs`.
    Lobby(LobbyOp),
    /// Friends and blocks, custom data, chat, attributes, wall-clock jumps (SPEC L-4 … L-8):
    /// `lobby2.rs`.
    Lobby2(Lobby2Op),
    /// Admin API moderation (O-1), through `Core::handle_admin`.
    AdminClose,
    AdminKick,
}

const OPS: [Op; 40] = {
    use PartyOp::*;
    [
        Op::Connect,
        Op::Disconnect,
        Op::DisconnectStale,
        Op::Ping,
        Op::Party(Create),
        Op::Party(Join),
        Op::Party(JoinRequests),
        Op::Party(Accept),
        Op::Party(Remove),
        Op::Party(Leave),
        Op::Party(Promote),
        Op::Party(Close),
        Op::Party(Data),
        Op::Party(DataWithoutCid),
        Op::Party(Update),
        Op::Party(Get),
        Op::Party(MyParties),
        Op::Search,
        Op::StatusUpdate,
        Op::Follow,
        Op::Unfollow,
        Op::ArmProbe,
        Op::CancelProbe,
        Op::EarlyTimeout,
        Op::Lobby(LobbyOp::Invite),
        Op::Lobby(LobbyOp::Cancel),
        Op::Lobby(LobbyOp::Accept),
        Op::Lobby(LobbyOp::Reject),
        Op::Lobby(LobbyOp::List),
        Op::Lobby(LobbyOp::CodeGet),
        Op::Lobby(LobbyOp::CodeRegenerate),
        Op::Lobby(LobbyOp::JoinByCode),
        Op::Lobby(LobbyOp::Wait),
        Op::Lobby2(Lobby2Op::Social),
        Op::Lobby2(Lobby2Op::CustomData),
        Op::Lobby2(Lobby2Op::Chat),
        Op::Lobby2(Lobby2Op::Attributes),
        Op::Lobby2(Lobby2Op::ClockJump),
        Op::AdminClose,
        Op::AdminKick,
    ]
};

#[derive(Default, Debug)]
pub struct Stats {
    /// Requests of every kind (searches count once per page) and how many were refused.
    pub requests: u64,
    pub refused: u64,
    /// Party events and their deliveries (one per recipient).
    pub events: u64,
    pub deliveries: u64,
    /// Refusals by error code (its name), to see that the workload reaches every rule.
    pub errors: BTreeMap<String, u64>,
    /// Searches run (each followed to its last page) and parties they returned in all.
    pub searches: u64,
    pub search_results: u64,
    /// Party data sent without a cid, and how many of those were refused.
    pub data_without_cid: u64,
    pub data_without_cid_refused: u64,
    /// Status events, refused status requests, successful follows.
    pub status_events: u64,
    pub status_rejected: u64,
    pub follows: u64,
    /// Probe timers fired.
    pub probes_fired: u64,
    /// Invitations, codes, versions and snapshots.
    pub lobby: lobby::LobbyCounts,
    /// Friends and blocks, custom data, chat, attributes, names.
    pub lobby2: lobby2::Lobby2Counts,
    /// Party history records finished (one per party that ended), and those truncated.
    pub history_records: u64,
    pub history_truncated: u64,
    /// Admin closes and kicks that succeeded.
    pub admin_closes: u64,
    pub admin_kicks: u64,
}

impl Stats {
    /// Counts a refusal under its error code's name (formatting the code, not the error with
    /// its message: refusals are frequent, and this runs in the fuzz target too).
    fn refusal(&mut self, error: &CoreError) {
        self.refused += 1;
        *self.errors.entry(format!("{:?}", error.code())).or_default() += 1;
    }
}

pub struct Sim {
    rng: Rng,
    pub core: Core,
    out: Outbox,
    limits: Limits,
    now: Millis,
    /// Connected sessions: the model of the session table, statuses and follows.
    sessions: BTreeMap<SessionId, ModelSession>,
    connects: u64,
    /// Driver-like slots: which are taken, and the next generation of each.
    slot_taken: Vec<bool>,
    generations: Vec<u32>,
    /// Sessions that were connected once and are gone (for stale disconnects).
    gone: Vec<SessionId>,
    users: Vec<UserId>,
    /// Users that never connect: followed anyway (S-2), never heard from.
    ghosts: Vec<UserId>,
    usernames: Vec<Username>,
    /// Every party id ever created, so requests also name parties that are gone.
    known_parties: Vec<PartyId>,
    next_cid: u64,
    weights: [u64; OPS.len()],
    timers: time::TimerModel,
    lobby: lobby::LobbyModel,
    lobby2: lobby2::Lobby2Model,
    /// How far the simulated wall clock lags the monotonic one (`Lobby2Op::ClockJump` moves it,
    /// backwards or forwards).
    wall_lag_ms: u64,
    stats: Stats,
    /// Steps between the checks that cost as much as the whole world: the core's full sweep,
    /// digests of every table around a request, views of every party. 1 (every step) unless
    /// [`Sim::check_fully_every`] says otherwise; between full steps, a request is checked
    /// against the digest of the party it names and the requester's links, and the sweep
    /// covers the parties the step touched.
    full_check_every: u64,
    steps: u64,
    /// Whether this step runs the full checks.
    full_step: bool,
    /// Parties named or created this step, swept at its end on steps that are not full.
    touched: Vec<PartyId>,
    /// The model of each session's search budget (SPEC-less, issue 14): a token bucket the
    /// core charges with what each search spent, which the harness learns from the core's
    /// counters.
    search_budgets: BTreeMap<SessionId, party::BudgetModel>,
}

impl Sim {
    pub fn new(seed: u64) -> Sim {
        Sim::with_rng(Rng::seeded(seed), seed)
    }

    /// A simulation whose every choice comes from `rng` (a seed, or a fuzzer's bytes).
    pub fn with_rng(mut rng: Rng, seed: u64) -> Sim {
        let slots = rng.range(8, 40);
        let limits = Limits {
            // The driver never has more slots than connections; it also keeps the core's
            // session table (preallocated up to this) small, so a fuzz input starts cheaply.
            connections_max: slots,
            party_members_max: rng.range(2, 8),
            parties_per_session_max: rng.range(1, 4),
            party_data_bytes_max: rng.range(4, 32),
            party_label_bytes_max: rng.range(8, 64),
            search_page_limit_max: rng.range(3, 100),
            search_page_limit_default: 3,
            // Small, so that wildcards over the few label values are sometimes refused (233).
            search_wildcard_expansion_max: rng.range(1, 4),
            search_wildcard_scan_max: rng.range(2, 16),
            status_bytes_max: rng.below(12),
            follows_per_session_max: rng.range(1, 8),
            follow_ids_per_request_max: rng.range(1, 6),
            // Small on some seeds, so that labels are refused for their values, fields and
            // paths (236) and for a full index (237), and searches for their cost (234) and for
            // a spent session budget (235); roomy on the others, so labelled parties pile up
            // and searches find them (and wildcards over many values are refused, 233).
            party_label_values_max: if rng.chance(40) { rng.range(1, 8) } else { 64 },
            party_label_fields_max: if rng.chance(40) { rng.range(1, 5) } else { 32 },
            search_index_bytes_max: if rng.chance(40) { rng.range(1, 48) * 512 } else { 1 << 20 },
            // A search over the few parties here costs tens of units.
            search_query_cost_max: if rng.chance(30) { rng.range(2, 30) } else { rng.range(30, 2000) } as u64,
            search_budget_cost_per_ms: rng.range(1, 8) as u64,
            search_budget_burst_cost: if rng.chance(30) { rng.range(2, 40) } else { rng.range(40, 2000) } as u64,
            one_party_per_user: rng.chance(40),
            // Expiry within a few dozen steps; a `Wait` expires everything at once.
            invitation_ttl_ms: rng.range(5, 150) as u64,
            invitations_per_party_max: rng.range(1, 6),
            invitations_per_user_max: rng.range(1, 4),
            invitees_per_request_max: rng.range(1, 4),
            code_misses_per_minute_max: rng.range(1, 4),
            party_name_bytes_max: rng.range(6, 16),
            party_custom_data_bytes_max: rng.range(1, 6),
            chat_body_bytes_max: rng.range(1, 6),
            chat_messages_per_window_max: rng.range(1, 4),
            chat_window_ms: rng.range(5, 200) as u64,
            party_attributes_bytes_max: rng.range(8, 24),
            social_friends_per_user_max: rng.range(1, 4),
            social_blocks_per_user_max: rng.range(1, 3),
            social_entries_max: rng.range(6, 40),
            ..Limits::default()
        };
        // Small history bounds, so records truncate and memory forgets (checked per step).
        let limits = Limits {
            history_entries_per_party_max: limits.party_members_max + rng.range(1, 6),
            history_records_max: rng.range(1, 20),
            ..limits
        };
        limits.validate().expect("simulation limits are valid");
        let user_count = rng.range(2, 16);
        let name_count = rng.range(1, user_count);
        let mut weights = [0u64; OPS.len()];
        for (w, op) in weights.iter_mut().zip(OPS) {
            // Lobby II's operations are many, and an operator's close or kick ends parties the
            // other features need alive (searches must find some): lighter, so the older
            // features keep their share.
            let heaviest = match op {
                Op::AdminClose | Op::AdminKick => 3,
                Op::Lobby2(op) if op != Lobby2Op::Social => 5,
                _ => 10,
            };
            *w = rng.range(1, heaviest) as u64;
        }
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let mut core = Core::new(limits.clone(), seed_bytes);
        core.set_name_deny_list(lobby2::deny_list());
        Sim {
            core,
            rng,
            out: Outbox::new(),
            limits,
            now: Millis(0),
            sessions: BTreeMap::new(),
            connects: 0,
            slot_taken: vec![false; slots],
            generations: vec![1; slots],
            gone: Vec::new(),
            users: (0..user_count).map(|i| UserId::new(&format!("u{i}"))).collect(),
            ghosts: (0..3).map(|i| UserId::new(&format!("ghost{i}"))).collect(),
            usernames: (0..name_count).map(|i| Username::new(&format!("N{i}"))).collect(),
            known_parties: vec![PartyId(0xdead_beef)],
            next_cid: 1,
            weights,
            timers: time::TimerModel::default(),
            lobby: lobby::LobbyModel::default(),
            lobby2: lobby2::Lobby2Model::default(),
            wall_lag_ms: 0,
            stats: Stats::default(),
            full_check_every: 1,
            steps: 0,
            full_step: true,
            touched: Vec::new(),
            search_budgets: BTreeMap::new(),
        }
    }

    /// Runs the checks that cost as much as the whole world (see `full_check_every`) only every
    /// `steps` steps (and at the end), checking what each step touched in between. The fuzz
    /// target's schedule: `cargo test` checks everything after every step.
    pub fn check_fully_every(&mut self, steps: u64) {
        self.full_check_every = steps.max(1);
    }

    /// Whether the choices are used up (a fuzz input ends).
    pub fn exhausted(&self) -> bool {
        self.rng.exhausted()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether any session follows anyone (the follow canary needs some).
    pub fn has_follows(&self) -> bool {
        self.sessions.values().any(|s| !s.follows.is_empty())
    }

    /// One step: time moves on, due timers run as the driver runs them, then one operation.
    pub fn step(&mut self) {
        self.full_step = self.steps.is_multiple_of(self.full_check_every);
        self.steps += 1;
        self.now = self.now.saturating_add(self.rng.below(4) as u64);
        self.lobby_step_begins();
        let parties_before = self.live_parties();
        self.run_due_timers(false);
        let op = self.pick_op();
        if self.sessions.len() < 2 || op == Op::Connect {
            self.connect();
        } else {
            match op {
                Op::Connect => unreachable!("handled above"),
                Op::Disconnect => {
                    let session = self.pick_session();
                    self.disconnect(session);
                }
                Op::DisconnectStale => self.disconnect_stale(),
                Op::Ping => self.ping(),
                Op::Party(op) => self.party_op(op),
                Op::Search => {
                    let me = self.pick_presence_any();
                    self.search(me);
                }
                Op::StatusUpdate => self.status_update(),
                Op::Follow => self.follow(),
                Op::Unfollow => self.unfollow(),
                Op::ArmProbe => self.arm_probe(),
                Op::CancelProbe => self.cancel_probe(),
                Op::EarlyTimeout => self.run_due_timers(true),
                Op::Lobby(op) => self.lobby_op(op),
                Op::Lobby2(op) => self.lobby2_op(op),
                Op::AdminClose => self.admin_close(),
                Op::AdminKick => self.admin_kick(),
            }
        }
        self.lobby_step_ends();
        self.check_history(&parties_before);
        self.sweep();
    }

    fn pick_op(&mut self) -> Op {
        let total: u64 = self.weights.iter().sum();
        let mut roll = self.rng.next_u64() % total;
        let mut op = 0;
        while roll >= self.weights[op] {
            roll -= self.weights[op];
            op += 1;
        }
        let op = OPS[op];
        // Keep a few parties alive, or most party requests would only exercise "not found".
        if matches!(op, Op::Party(_)) && self.core.party_count() < 3 && self.rng.chance(70) {
            return Op::Party(PartyOp::Create);
        }
        op
    }

    /// The core's full sweep on full steps (debug builds already ran it inside every entry
    /// point); otherwise the sweep of each party the step touched.
    fn sweep(&mut self) {
        if self.full_step {
            if !cfg!(debug_assertions) {
                self.core.assert_invariants();
            }
        } else {
            for party_id in &self.touched {
                self.core.debug_check_party(*party_id);
            }
        }
        self.touched.clear();
    }

    /// Both clocks; the wall clock lags by `wall_lag_ms`, which jumps now and then.
    fn now(&self) -> Now {
        let simulated = Now::simulated(self.now);
        Now::new(self.now, crate::core::UnixMillis(simulated.wall.0 - self.wall_lag_ms))
    }

    /// (party tables, status tables) digests on full steps: what a request that must change
    /// nothing is checked against. `None` between full steps.
    fn digests(&self) -> Option<(u64, u64)> {
        self.full_step.then(|| (self.core.debug_party_digest(), self.core.debug_status_digest()))
    }

    fn next_cid(&mut self) -> Cid {
        let cid = Cid(self.next_cid);
        self.next_cid += 1;
        cid
    }

    fn pick_session(&mut self) -> SessionId {
        let i = self.rng.below(self.sessions.len());
        *self.sessions.keys().nth(i).expect("index below len")
    }

    fn pick_presence_any(&mut self) -> Presence {
        let session = self.pick_session();
        self.sessions[&session].presence.clone()
    }

    fn connect(&mut self) {
        let free: Vec<usize> = (0..self.slot_taken.len()).filter(|s| !self.slot_taken[*s]).collect();
        let Some(slot) = self.rng.pick(&free) else {
            return;
        };
        let session = SessionId::new(slot as u32, self.generations[slot]);
        self.generations[slot] += 1;
        self.slot_taken[slot] = true;
        let user = self.rng.below(self.users.len());
        // Mostly a user's usual name; sometimes another (tokens decide, so one user may carry
        // several usernames and several users one username).
        let name = if self.rng.chance(80) { user % self.usernames.len() } else { self.rng.below(self.usernames.len()) };
        let presence =
            Presence { user_id: self.users[user].clone(), session_id: session, username: self.usernames[name].clone() };
        let visible = self.rng.chance(40);
        let identity = Identity { user_id: presence.user_id.clone(), username: presence.username.clone() };
        let options = ConnectOptions { status_visible: visible, snapshots: self.rng.chance(50) };
        self.core.connect(session, identity, options, self.now(), &mut self.out);
        self.lobby.watch(session, options.snapshots);

        self.connects += 1;
        let model =
            ModelSession { presence: presence.clone(), status: None, follows: BTreeSet::new(), order: self.connects };
        self.sessions.insert(session, model);
        let mut expected = vec![status::Expected::Event {
            recipients: BTreeSet::from([session]),
            event: Event::Welcome { presence: presence.clone() },
        }];
        expected.extend(self.status_connected(session, visible));
        expected.extend(self.invitations_on_connect(session, &presence.user_id));
        self.check_recipients_connected();
        self.compare_outputs(0, expected, "connect");
        self.out.clear();
        self.compare_session(session);
    }

    fn disconnect(&mut self, session: SessionId) {
        // A disconnect may touch every party of the session: always a full view.
        let before = party::View::of(&self.core);
        let gone = self.sessions.remove(&session).expect("picked among the connected");
        self.slot_taken[session.slot() as usize] = false;
        self.gone.push(session);
        self.lobby.forget(session);
        self.lobby2.forget(session);
        self.core.disconnect(session, self.now(), &mut self.out);
        let after = party::View::of(&self.core);
        assert!(!after.in_any(session), "a disconnected session is in no party");
        assert_eq!(self.out.reply_count(), 0, "a disconnect is not a request");
        self.check_recipients_connected();
        // Party events first (C-6: the session leaves its parties, with the lobby's snapshots
        // and invitation ends), then the status leave.
        let outputs = self.out.outputs();
        let split = outputs
            .iter()
            .position(|o| !matches!(o, Output::Event { event: Event::Party(_) | Event::Lobby(_), .. }))
            .unwrap_or(outputs.len());
        self.check_party_events(0..split, None, false, &before, &after);
        self.touched.extend(before.parties_of(session));
        self.search_budgets.remove(&session);
        let expected = self.status_disconnected(gone);
        self.compare_outputs(split, expected, "disconnect");
        self.out.clear();
        assert_eq!(self.core.status_of(session), None);
    }

    fn disconnect_stale(&mut self) {
        let Some(stale) = self.rng.pick(&self.gone) else { return };
        let digests = self.digests();
        self.core.disconnect(stale, self.now(), &mut self.out);
        assert!(self.out.is_empty(), "a stale disconnect causes nothing: {:?}", self.out.outputs());
        assert_eq!(self.digests(), digests, "a stale disconnect changed a table");
    }

    fn ping(&mut self) {
        let me = self.pick_presence_any();
        let digests = self.digests();
        let cid = self.next_cid();
        self.core.handle_request(me.session_id, cid, Request::Ping, self.now(), &mut self.out);
        self.stats.requests += 1;
        assert!(
            matches!(self.out.outputs(), [Output::Reply { to, cid: got, result: Ok(Reply::Pong) }] if *to == me.session_id && *got == cid),
            "a ping gets one pong: {:?}",
            self.out.outputs()
        );
        assert_eq!(self.digests(), digests, "a ping changed a table");
        self.out.clear();
    }

    /// The outbox starts with exactly one reply, to `me`, with `cid`; returns its result.
    fn reply_first(&self, me: SessionId, cid: Cid, what: &dyn std::fmt::Debug) -> Result<Reply, CoreError> {
        assert_eq!(self.out.reply_count(), 1, "exactly one reply to {what:?}: {:?}", self.out.outputs());
        let Some(Output::Reply { to, cid: got, result }) = self.out.outputs().first() else {
            panic!("the reply comes first: {:?}", self.out.outputs())
        };
        assert_eq!((*to, *got), (me, cid), "the reply goes to the requester with its cid");
        result.clone()
    }

    /// No output names a session that is not connected (as the model says after the step),
    /// and no event lists a recipient twice.
    fn check_recipients_connected(&self) {
        for output in self.out.outputs() {
            match output {
                Output::Reply { to, .. } => assert!(self.sessions.contains_key(to), "reply to a gone session {to}"),
                Output::Event { recipients, event } => {
                    let recipients = self.out.recipients(recipients.clone());
                    assert!(!recipients.is_empty(), "an event with no recipient");
                    let unique: BTreeSet<&SessionId> = recipients.iter().collect();
                    assert_eq!(unique.len(), recipients.len(), "a recipient listed twice: {event:?}");
                    for to in recipients {
                        assert!(self.sessions.contains_key(to), "{event:?} to a disconnected session {to}");
                    }
                }
                Output::Close { session, .. } => panic!("the core closed {session} in a simulation without abuse"),
            }
        }
    }

    /// Disconnects every session, checking each, and requires every table to be empty.
    pub fn disconnect_everyone(&mut self) {
        // Every disconnect is checked as a step of the current schedule; the full sweep below
        // closes the run.
        self.full_step = self.full_check_every == 1;
        while let Some(&session) = self.sessions.keys().next() {
            self.lobby_step_begins();
            let parties_before = self.live_parties();
            self.disconnect(session);
            self.lobby_step_ends();
            self.check_history(&parties_before);
            self.sweep();
        }
        assert_eq!(self.core.session_count(), 0);
        assert_eq!(self.core.debug_party_table_sizes(), (0, 0), "disconnecting everyone empties the party tables");
        assert_eq!(self.core.party_count(), 0);
        assert_eq!(self.core.status_session_count(), 0, "status tables kept a session");
        self.core.assert_invariants();
    }
}
