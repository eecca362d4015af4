//! The status half of the simulation's grammar and checks (SPEC C-3, C-6, S-1 … S-3): status
//! updates (new, repeated, empty, offline, oversize), follows (by id, by username, own user,
//! unknown users, ghosts, over the limits, bad ids) and unfollows. A plain model (the
//! simulation's connected sessions with their statuses and follows) predicts every status
//! output exactly: the reply, each event's content and its recipients (the followers of the
//! user and the user's own sessions, nobody else, nobody twice). After each request the core
//! must agree with the model about the session's status and follows, so a refused request
//! that changed anything is caught.

use super::{ModelSession, Sim};
use crate::core::{
    CoreError, Event, Output, Reply, Request, SessionId, StatusEvent, StatusPresence, StatusReply, StatusRequest,
    UserId, Username,
};
use std::collections::BTreeSet;

/// What the harness expects one output to be.
pub(super) enum Expected {
    Reply { to: SessionId, cid: crate::core::Cid, result: Result<Reply, CoreError> },
    Event { recipients: BTreeSet<SessionId>, event: Event },
}

impl Sim {
    /// Who must receive a status event of `user`: its followers and its own sessions.
    fn status_recipients(&self, user: &UserId) -> BTreeSet<SessionId> {
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
            .map(|s| StatusPresence { presence: s.presence.clone(), status: s.status.clone().unwrap_or_default() })
            .collect()
    }

    /// C-3: what a connect shows after the welcome (the session is in the model already).
    pub(super) fn status_connected(&mut self, session: SessionId, visible: bool) -> Vec<Expected> {
        if !visible {
            return vec![];
        }
        let entry = self.sessions.get_mut(&session).expect("just connected");
        entry.status = Some(String::new());
        let presence = entry.presence.clone();
        vec![Expected::Event {
            recipients: self.status_recipients(&presence.user_id),
            event: Event::Status(StatusEvent {
                joins: vec![StatusPresence { presence, status: String::new() }],
                leaves: vec![],
            }),
        }]
    }

    /// C-6: what a disconnect shows after the party events (the session is out of the model).
    pub(super) fn status_disconnected(&mut self, gone: ModelSession) -> Vec<Expected> {
        let Some(status) = gone.status else { return vec![] };
        vec![Expected::Event {
            recipients: self.status_recipients(&gone.presence.user_id),
            event: Event::Status(StatusEvent {
                joins: vec![],
                leaves: vec![StatusPresence { presence: gone.presence, status }],
            }),
        }]
    }

    pub(super) fn status_update(&mut self) {
        let session = self.pick_session();
        let status = match self.rng.below(10) {
            0 | 1 => None,
            2 => Some(String::new()),
            // Over the limit, or not display text: must be refused and change nothing. Tab, line
            // feed and carriage return are display text and must be taken.
            3 => Some(match self.rng.below(3) {
                0 => "o".repeat(self.limits.status_bytes_max + 1),
                1 => ["a\u{1}", "\u{7f}", "b\u{1b}[0m"][self.rng.below(3)].to_owned(),
                _ => ["\t", "a\r\n", "\n"][self.rng.below(3)].to_owned(),
            }),
            // A small alphabet, so "the same status again" happens often.
            _ => {
                let len = self.rng.below(self.limits.status_bytes_max + 1).min(2);
                Some((0..len).map(|_| if self.rng.chance(50) { 'a' } else { 'b' }).collect())
            }
        };
        self.status_request(session, StatusRequest::Update { status });
    }

    pub(super) fn follow(&mut self) {
        let session = self.pick_session();
        let (user_ids, usernames) = self.random_names();
        self.status_request(session, StatusRequest::Follow { user_ids, usernames });
    }

    pub(super) fn unfollow(&mut self) {
        let session = self.pick_session();
        let (user_ids, _) = self.random_names();
        self.status_request(session, StatusRequest::Unfollow { user_ids });
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

    fn status_request(&mut self, session: SessionId, request: StatusRequest) {
        self.stats.requests += 1;
        // A status request never touches a party: checked on full steps (see `full_check_every`).
        let party_digest = self.full_step.then(|| self.core.debug_party_digest());
        let cid = self.next_cid();
        self.core.handle_request(session, cid, Request::Status(request.clone()), self.now(), &mut self.out);
        self.check_recipients_connected();
        if let Some(party_digest) = party_digest {
            assert_eq!(self.core.debug_party_digest(), party_digest, "{request:?} changed a party");
        }
        let (result, events) = self.predict(session, request);
        if let Err(error) = &result {
            self.stats.status_rejected += 1;
            self.stats.refusal(error);
        }
        let mut expected = vec![Expected::Reply { to: session, cid, result }];
        expected.extend(events);
        self.compare_outputs(0, expected, "request");
        self.out.clear();
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
                // S-1: display text only; tab, line feed and carriage return are display text.
                let not_display = |c: char| c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r');
                if let Some((byte, character)) =
                    status.as_deref().and_then(|s| s.char_indices().find(|&(_, c)| not_display(c)))
                {
                    return (Err(CoreError::StatusControlCharacter { character, byte }), vec![]);
                }
                let entry = self.sessions.get_mut(&session).expect("requests come from connected sessions");
                if entry.status == status {
                    return (Ok(Reply::Status(StatusReply::Updated)), vec![]);
                }
                let old = std::mem::replace(&mut entry.status, status.clone());
                let presence = entry.presence.clone();
                let with = |s: Option<String>| {
                    s.map(|status| StatusPresence { presence: presence.clone(), status }).into_iter().collect()
                };
                let event = Event::Status(StatusEvent { joins: with(status), leaves: with(old) });
                let recipients = self.status_recipients(&presence.user_id);
                (Ok(Reply::Status(StatusReply::Updated)), vec![Expected::Event { recipients, event }])
            }
            StatusRequest::Follow { user_ids, usernames } => {
                if user_ids.iter().any(|u| u.as_str().is_empty()) {
                    return (bad(), vec![]);
                }
                let own = self.sessions[&session].presence.user_id.clone();
                let mut targets: Vec<UserId> = Vec::new();
                let mut consider = |u: &UserId| {
                    if u != &own && !targets.contains(u) {
                        targets.push(u.clone());
                    }
                };
                user_ids.iter().for_each(&mut consider);
                for name in &usernames {
                    let resolved: BTreeSet<UserId> = self
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
                let follows = &self.sessions[&session].follows;
                let adding = targets.iter().filter(|u| !follows.contains(*u)).count();
                if follows.len() + adding > limits.follows_per_session_max {
                    let error = CoreError::FollowLimitReached {
                        following: follows.len(),
                        adding,
                        max: limits.follows_per_session_max,
                    };
                    return (Err(error), vec![]);
                }
                let presences = targets.iter().flat_map(|u| self.visible_of(u)).collect();
                let entry = self.sessions.get_mut(&session).expect("requests come from connected sessions");
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
                let entry = self.sessions.get_mut(&session).expect("requests come from connected sessions");
                for user in &user_ids {
                    entry.follows.remove(user);
                }
                (Ok(Reply::Status(StatusReply::Unfollowed)), vec![])
            }
        }
    }

    /// The outbox from output `start` on holds exactly `expected`, in order (events with
    /// nobody to receive them are never queued, so they are not expected either).
    pub(super) fn compare_outputs(&mut self, start: usize, expected: Vec<Expected>, what: &str) {
        let expected: Vec<Expected> = expected
            .into_iter()
            .filter(|e| !matches!(e, Expected::Event { recipients, .. } if recipients.is_empty()))
            .collect();
        let outputs = &self.out.outputs()[start..];
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
                    let got: BTreeSet<SessionId> = self.out.recipients(recipients.clone()).iter().copied().collect();
                    assert_eq!(&got, want, "{what}: recipients of {event:?}");
                    assert_eq!(event, want_event, "{what}: event");
                    if matches!(event, Event::Status(_)) {
                        self.stats.status_events += 1;
                    }
                }
                (output, _) => panic!("{what}: unexpected output {output:?}"),
            }
        }
    }

    /// The core agrees with the model about one session's status and follows.
    pub(super) fn compare_session(&self, session: SessionId) {
        let entry = &self.sessions[&session];
        assert_eq!(self.core.status_of(session), entry.status.as_deref(), "status of {session}");
        for user in self.users.iter().chain(&self.ghosts) {
            assert_eq!(
                self.core.status_follows(session, user),
                entry.follows.contains(user),
                "does {session} follow {user:?}?"
            );
        }
    }
}
