//! Deterministic simulation of statuses and follows (SPEC C-3, C-6, S-1 … S-3), driving the
//! sans-IO `Core` directly: no sockets, no clock, no threads.
//!
//! Each seed picks small random limits (statuses of a few bytes, a handful of follows and ids
//! per request) and a population of users, some sharing usernames, then runs a random sequence
//! of connects (visible or not), disconnects (some of stale sessions), status updates (new,
//! repeated, empty, offline, oversize), follows (by id, by username, own user, unknown users,
//! over the limits, bad ids) and unfollows. A plain model (who is connected, each session's
//! status and follows) predicts every output exactly: one reply per request with its cid, to
//! the requester and first; each event's content; each event's recipients (the followers of
//! the user and the user's own sessions, nobody else, nobody twice). After every step the core
//! checks its own invariants, and the harness compares the touched session's status and follows
//! with the model, so a rejected request that changed anything is caught. At the end everyone
//! disconnects and every table must be empty.
//!
//! `tests/sim_status.rs` runs SEEDS seeds of STEPS steps. A failure names its seed; replay it alone with
//! `HUDDLE_SIM_SEED=<seed> cargo test --test sim_status` (`HUDDLE_SIM_STEPS` overrides the
//! step count). A canary proves the invariant checker does catch a corrupted index.

use super::Rng;
use crate::core::{
    Cid, ConnectOptions, Core, CoreError, Event, Identity, Millis, Now, Outbox, Output, Presence, Reply, Request,
    SessionId, StatusEvent, StatusPresence, StatusReply, StatusRequest, UserId, Username,
};
use crate::limits::Limits;
use std::collections::{BTreeMap, BTreeSet};

pub struct ModelSession {
    pub presence: Presence,
    pub status: Option<String>,
    pub follows: BTreeSet<UserId>,
    /// Connect order, which the core's follow replies follow.
    order: u64,
}

#[derive(Default)]
pub struct Model {
    pub sessions: BTreeMap<SessionId, ModelSession>,
    connects: u64,
}

impl Model {
    /// Who must receive a status event of `user`: its followers and its own sessions.
    fn recipients(&self, user: &UserId) -> BTreeSet<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.follows.contains(user) || &s.presence.user_id == user)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The visible sessions of `user`, in connect order, with their statuses.
    fn visible_of(&self, user: &UserId) -> Vec<StatusPresence> {
        let mut sessions: Vec<&ModelSession> =
            self.sessions.values().filter(|s| &s.presence.user_id == user && s.status.is_some()).collect();
        sessions.sort_by_key(|s| s.order);
        sessions
            .into_iter()
            .map(|s| StatusPresence { presence: s.presence.clone(), status: s.status.clone().unwrap() })
            .collect()
    }
}

/// What the harness expects one output to be.
enum Expected {
    Reply { to: SessionId, cid: Cid, result: Result<Reply, CoreError> },
    Event { recipients: BTreeSet<SessionId>, event: Event },
}

pub struct Sim {
    rng: Rng,
    pub core: Core,
    pub model: Model,
    limits: Limits,
    out: Outbox,
    users: Vec<UserId>,
    /// Users that never connect: followed anyway (S-2), never heard from.
    ghosts: Vec<UserId>,
    usernames: Vec<Username>,
    sessions_max: usize,
    /// Driver-like slot allocation: free slots and the next generation of each slot.
    free_slots: Vec<u32>,
    generations: Vec<u32>,
    /// Sessions that were connected once and are gone (for stale disconnects).
    gone: Vec<SessionId>,
    next_cid: u64,
    now: Millis,
    stats: Stats,
}

#[derive(Default, Debug)]
pub struct Stats {
    pub events: u64,
    pub rejected: u64,
    pub follows: u64,
}

impl Sim {
    pub fn new(seed: u64) -> Sim {
        Sim::with_rng(Rng::seeded(seed), seed)
    }

    /// A simulation whose every choice comes from `rng` (a seed, or a fuzzer's bytes).
    pub fn with_rng(mut rng: Rng, seed: u64) -> Sim {
        let limits = Limits {
            status_bytes_max: rng.below(12),
            follows_per_session_max: 1 + rng.below(8),
            follow_ids_per_request_max: 1 + rng.below(6),
            ..Limits::default()
        };
        limits.validate().expect("simulation limits are valid");
        let user_count = 2 + rng.below(14);
        let name_count = 1 + rng.below(user_count);
        let users = (0..user_count).map(|i| UserId::new(&format!("u{i}"))).collect();
        let ghosts = (0..3).map(|i| UserId::new(&format!("ghost{i}"))).collect();
        let usernames = (0..name_count).map(|i| Username::new(&format!("N{i}"))).collect();
        let sessions_max = 4 + rng.below(44);
        Sim {
            core: Core::new(limits.clone(), [seed as u8; 32]),
            rng,
            model: Model::default(),
            limits,
            out: Outbox::new(),
            users,
            ghosts,
            usernames,
            sessions_max,
            free_slots: Vec::new(),
            generations: Vec::new(),
            gone: Vec::new(),
            next_cid: 1,
            now: Millis(0),
            stats: Stats::default(),
        }
    }

    pub fn step(&mut self) {
        self.now = self.now.saturating_add(1);
        let connected = self.model.sessions.len();
        let roll = self.rng.below(100);
        if connected == 0 || (roll < 15 && connected < self.sessions_max) {
            self.connect();
        } else if roll < 25 {
            if self.rng.chance(10) && !self.gone.is_empty() {
                self.disconnect_stale();
            } else {
                let session = self.pick_session();
                self.disconnect(session);
            }
        } else if roll < 55 {
            let session = self.pick_session();
            let status = self.random_status();
            self.request(session, StatusRequest::Update { status });
        } else if roll < 85 {
            let session = self.pick_session();
            let (user_ids, usernames) = self.random_names();
            self.request(session, StatusRequest::Follow { user_ids, usernames });
        } else {
            let session = self.pick_session();
            let (user_ids, _) = self.random_names();
            self.request(session, StatusRequest::Unfollow { user_ids });
        }
        self.core.check_invariants();
    }

    fn pick_session(&mut self) -> SessionId {
        let i = self.rng.below(self.model.sessions.len());
        *self.model.sessions.keys().nth(i).unwrap()
    }

    fn random_status(&mut self) -> Option<String> {
        match self.rng.below(10) {
            0 | 1 => None,
            2 => Some(String::new()),
            // Over the limit: must be refused and change nothing.
            3 => Some("o".repeat(self.limits.status_bytes_max + 1)),
            // A small alphabet, so "the same status again" happens often.
            _ => {
                let len = self.rng.below(self.limits.status_bytes_max + 1).min(2);
                Some((0..len).map(|_| if self.rng.chance(50) { 'a' } else { 'b' }).collect())
            }
        }
    }

    fn random_names(&mut self) -> (Vec<UserId>, Vec<Username>) {
        let max = self.limits.follow_ids_per_request_max;
        // Sometimes more than a request may name.
        let total = self.rng.below(max + 2);
        let mut user_ids = Vec::new();
        let mut usernames = Vec::new();
        for _ in 0..total {
            match self.rng.below(20) {
                0 => user_ids.push(UserId::new("")), // bad: names nobody
                1 => usernames.push(Username::new("Unknown")),
                2..=4 => usernames.push(self.usernames[self.rng.below(self.usernames.len())].clone()),
                5 => user_ids.push(self.ghosts[self.rng.below(self.ghosts.len())].clone()),
                _ => user_ids.push(self.users[self.rng.below(self.users.len())].clone()),
            }
        }
        (user_ids, usernames)
    }

    fn connect(&mut self) {
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.generations.push(1);
            (self.generations.len() - 1) as u32
        });
        let session = SessionId::new(slot, self.generations[slot as usize]);
        let user = self.rng.below(self.users.len());
        // Mostly a user's usual name; sometimes another (tokens decide, so one user may carry
        // several usernames and several users one username).
        let name = if self.rng.chance(80) { user % self.usernames.len() } else { self.rng.below(self.usernames.len()) };
        let presence =
            Presence { user_id: self.users[user].clone(), session_id: session, username: self.usernames[name].clone() };
        let visible = self.rng.chance(40);
        let identity = Identity { user_id: presence.user_id.clone(), username: presence.username.clone() };
        self.core.connect(
            session,
            identity,
            ConnectOptions { status_visible: visible },
            Now::simulated(self.now),
            &mut self.out,
        );

        self.model.connects += 1;
        self.model.sessions.insert(
            session,
            ModelSession {
                presence: presence.clone(),
                status: None,
                follows: BTreeSet::new(),
                order: self.model.connects,
            },
        );
        let mut expected = vec![Expected::Event {
            recipients: BTreeSet::from([session]),
            event: Event::Welcome { presence: presence.clone() },
        }];
        if visible {
            self.model.sessions.get_mut(&session).unwrap().status = Some(String::new());
            expected.push(Expected::Event {
                recipients: self.model.recipients(&presence.user_id),
                event: Event::Status(StatusEvent {
                    joins: vec![StatusPresence { presence, status: String::new() }],
                    leaves: vec![],
                }),
            });
        }
        self.compare(expected, "connect");
        self.compare_session(session);
    }

    fn disconnect(&mut self, session: SessionId) {
        self.core.disconnect(session, Now::simulated(self.now), &mut self.out);
        let gone = self.model.sessions.remove(&session).unwrap();
        let mut expected = Vec::new();
        if let Some(status) = gone.status {
            expected.push(Expected::Event {
                recipients: self.model.recipients(&gone.presence.user_id),
                event: Event::Status(StatusEvent {
                    joins: vec![],
                    leaves: vec![StatusPresence { presence: gone.presence, status }],
                }),
            });
        }
        self.compare(expected, "disconnect");
        assert_eq!(self.core.status_of(session), None);
        self.free_slots.push(session.slot());
        let generation = &mut self.generations[session.slot() as usize];
        *generation = generation.wrapping_add(1).max(1);
        self.gone.push(session);
    }

    fn disconnect_stale(&mut self) {
        let stale = self.gone[self.rng.below(self.gone.len())];
        self.core.disconnect(stale, Now::simulated(self.now), &mut self.out);
        self.compare(vec![], "stale disconnect");
    }

    fn request(&mut self, session: SessionId, request: StatusRequest) {
        let cid = Cid(self.next_cid);
        self.next_cid += 1;
        self.core.handle_request(
            session,
            cid,
            Request::Status(request.clone()),
            Now::simulated(self.now),
            &mut self.out,
        );
        let (result, events) = self.predict(session, request);
        if result.is_err() {
            self.stats.rejected += 1;
        }
        let mut expected = vec![Expected::Reply { to: session, cid, result }];
        expected.extend(events);
        self.compare(expected, "request");
        self.compare_session(session);
    }

    /// The model's answer to a request: the reply and the events after it. Mutates the model
    /// only when the request succeeds.
    fn predict(&mut self, session: SessionId, request: StatusRequest) -> (Result<Reply, CoreError>, Vec<Expected>) {
        let limits = &self.limits;
        let limit = || Err(CoreError::LimitExceeded(String::new()));
        let bad = || Err(CoreError::BadInput(String::new()));
        match request {
            StatusRequest::Update { status } => {
                if status.as_ref().is_some_and(|s| s.len() > limits.status_bytes_max) {
                    return (limit(), vec![]);
                }
                let entry = self.model.sessions.get_mut(&session).unwrap();
                if entry.status == status {
                    return (Ok(Reply::Status(StatusReply::Updated)), vec![]);
                }
                let old = std::mem::replace(&mut entry.status, status.clone());
                let presence = entry.presence.clone();
                let with = |s: Option<String>| {
                    s.map(|status| StatusPresence { presence: presence.clone(), status }).into_iter().collect()
                };
                let event = Event::Status(StatusEvent { joins: with(status), leaves: with(old) });
                let recipients = self.model.recipients(&presence.user_id);
                (Ok(Reply::Status(StatusReply::Updated)), vec![Expected::Event { recipients, event }])
            }
            StatusRequest::Follow { user_ids, usernames } => {
                if user_ids.iter().any(|u| u.as_str().is_empty()) {
                    return (bad(), vec![]);
                }
                let own = self.model.sessions[&session].presence.user_id.clone();
                let mut targets: Vec<UserId> = Vec::new();
                let mut consider = |u: &UserId| {
                    if u != &own && !targets.contains(u) {
                        targets.push(u.clone());
                    }
                };
                user_ids.iter().for_each(&mut consider);
                for name in &usernames {
                    let resolved: BTreeSet<UserId> = self
                        .model
                        .sessions
                        .values()
                        .filter(|s| &s.presence.username == name)
                        .map(|s| s.presence.user_id.clone())
                        .collect();
                    resolved.iter().for_each(&mut consider);
                }
                // SPEC S-2: the users resolved, not the names given, count against the limit.
                if targets.len() > limits.follow_ids_per_request_max {
                    return (limit(), vec![]);
                }
                let follows = &self.model.sessions[&session].follows;
                let adding = targets.iter().filter(|u| !follows.contains(*u)).count();
                if follows.len() + adding > limits.follows_per_session_max {
                    let error = CoreError::FollowLimitReached {
                        following: follows.len(),
                        adding,
                        max: limits.follows_per_session_max,
                    };
                    return (Err(error), vec![]);
                }
                let presences = targets.iter().flat_map(|u| self.model.visible_of(u)).collect();
                let entry = self.model.sessions.get_mut(&session).unwrap();
                entry.follows.extend(targets);
                self.stats.follows += 1;
                (Ok(Reply::Status(StatusReply::Followed { presences })), vec![])
            }
            StatusRequest::Unfollow { user_ids } => {
                if user_ids.len() > limits.follow_ids_per_request_max {
                    return (limit(), vec![]);
                }
                if user_ids.iter().any(|u| u.as_str().is_empty()) {
                    return (bad(), vec![]);
                }
                let entry = self.model.sessions.get_mut(&session).unwrap();
                for user in &user_ids {
                    entry.follows.remove(user);
                }
                (Ok(Reply::Status(StatusReply::Unfollowed)), vec![])
            }
        }
    }

    /// The outbox must hold exactly `expected`, in order; it is cleared afterwards.
    fn compare(&mut self, expected: Vec<Expected>, what: &str) {
        // Events with nobody to receive them are never queued (Outbox::event drops them).
        let expected: Vec<Expected> = expected
            .into_iter()
            .filter(|e| !matches!(e, Expected::Event { recipients, .. } if recipients.is_empty()))
            .collect();
        let outputs = self.out.outputs();
        assert_eq!(outputs.len(), expected.len(), "{what}: wrong number of outputs: {outputs:?}");
        for (output, expected) in outputs.iter().zip(&expected) {
            match (output, expected) {
                (Output::Reply { to, cid, result }, Expected::Reply { to: want_to, cid: want_cid, result: want }) => {
                    assert_eq!((to, cid), (want_to, want_cid), "{what}: reply to the wrong request");
                    match (result, want) {
                        (Err(CoreError::LimitExceeded(_)), Err(CoreError::LimitExceeded(_)))
                        | (Err(CoreError::BadInput(_)), Err(CoreError::BadInput(_))) => {}
                        _ => assert_eq!(result, want, "{what}: reply"),
                    }
                }
                (Output::Event { recipients, event }, Expected::Event { recipients: want, event: want_event }) => {
                    let got = self.out.recipients(recipients.clone());
                    let unique: BTreeSet<SessionId> = got.iter().copied().collect();
                    assert_eq!(unique.len(), got.len(), "{what}: a recipient listed twice: {got:?}");
                    assert_eq!(&unique, want, "{what}: recipients of {event:?}");
                    assert_eq!(event, want_event, "{what}: event");
                    if matches!(event, Event::Status(_)) {
                        self.stats.events += 1;
                    }
                }
                (output, _) => panic!("{what}: unexpected output {output:?}"),
            }
        }
        self.out.clear();
    }

    /// The core agrees with the model about one session's status and follows.
    fn compare_session(&self, session: SessionId) {
        let entry = &self.model.sessions[&session];
        assert_eq!(self.core.status_of(session), entry.status.as_deref(), "status of {session}");
        for user in self.users.iter().chain(&self.ghosts) {
            assert_eq!(
                self.core.status_follows(session, user),
                entry.follows.contains(user),
                "does {session} follow {user:?}?"
            );
        }
    }

    pub fn disconnect_everyone(&mut self) {
        while let Some(&session) = self.model.sessions.keys().next() {
            self.disconnect(session);
            self.core.check_invariants();
        }
        assert_eq!(self.core.session_count(), 0);
        assert_eq!(self.core.status_session_count(), 0, "status tables kept a session");
    }
}

pub fn run_seed(seed: u64, steps: usize) -> Stats {
    let mut sim = Sim::new(seed);
    for _ in 0..steps {
        sim.step();
    }
    sim.disconnect_everyone();
    sim.stats
}

impl Sim {
    /// Whether the choices are used up (a fuzz input ends).
    pub fn exhausted(&self) -> bool {
        self.rng.exhausted()
    }
}
