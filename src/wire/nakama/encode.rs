//! The encoder: huddle's replies, events and errors as Nakama's realtime envelopes, rendered as
//! Nakama's server renders them (protojson with proto field names, enums as numbers, int64 as
//! strings, bytes as standard base64, and no field at its default value: `false`, `0`, `""`, an
//! empty list and an absent message are left out).
//!
//! One output may be several frames or none ([`Frames`]): a join is a bare ack followed by the
//! `party` message and the joiner's own presence event, and a kicked member hears `party_close`,
//! while huddle-only events (the welcome, a rejected join request) have no Nakama form and are
//! not sent. `docs/nakama-compat.md` has the whole table.

use super::decode::{CidText, DecodeFailure, ReplyTo};
use super::errors::{core_refusal_text, nakama_error, NakamaError, NakamaOp};
use super::ids::{NakamaPartyId, NakamaSessionId};
use crate::core::{
    CoreError, ErrorCode, Event, PartyEvent, PartyId, PartyReply, PartySnapshot, Presence, RemovedReason, Reply,
    StatusPresence, StatusReply,
};
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::ser::Serializer;
use serde::Serialize;
use std::io::Write;

/// Most frames one reply or event becomes (a create: its reply, the `party` message Nakama also
/// pushes, and the creator's own presence event).
pub const FRAMES_PER_OUTPUT_MAX: usize = 3;

/// The text frames one reply or event became, in sending order; borrowed from the encoder until
/// its next call. Each frame is one JSON object, UTF-8.
#[derive(Clone, Copy, Debug)]
pub struct Frames<'a> {
    buf: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Frames<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let frame = &buf[start..end];
            start = end;
            frame
        })
    }
}

/// Encodes Nakama envelopes into one reused buffer, so steady-state encoding allocates nothing
/// but what the caller copies out. An event is encoded once for all its JSON recipients: nothing
/// in an event's frames depends on who receives it.
#[derive(Debug, Default)]
pub struct NakamaEncoder {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl NakamaEncoder {
    pub fn new() -> NakamaEncoder {
        NakamaEncoder { buf: Vec::with_capacity(1024), ends: Vec::with_capacity(FRAMES_PER_OUTPUT_MAX) }
    }

    /// The frames answering a request: `to` is what [`super::decode_request`] returned with it,
    /// `me` the requesting session (Nakama's `party` message names its recipient as `self`).
    /// An ack without a `cid` (party data sent fire-and-forget, or any request sent without one)
    /// is no frame at all.
    pub fn reply(&mut self, to: &ReplyTo, me: &Presence, result: &Result<Reply, CoreError>) -> Frames<'_> {
        self.start();
        let cid = &to.cid;
        match result {
            // Nakama's leave succeeds whatever the party's state; a party that is already gone
            // is a leave that happened.
            Err(error) if to.op == NakamaOp::PartyLeave && error.code() == ErrorCode::PartyNotFound => self.ack(cid),
            Err(error) => {
                let text = core_refusal_text(error);
                self.error_frame(cid, &nakama_error(Some(to.op), error.code(), &text));
            }
            Ok(Reply::Pong) => self.frame(cid, "pong", &Empty {}),
            Ok(Reply::Party(reply)) => self.party_reply(to, me, reply),
            Ok(Reply::Status(StatusReply::Updated | StatusReply::Unfollowed)) => self.ack(cid),
            Ok(Reply::Status(StatusReply::Followed { presences })) => {
                self.frame(cid, "status", &Status { presences: Presences(presences) })
            }
            // No Nakama request asks for a lobby reply (invitations and codes are huddle-only);
            // only a driver bug routes one here.
            Ok(Reply::Lobby(_)) => {
                debug_assert!(false, "huddle-only lobby reply to Nakama request {:?}", to.op);
                let error = NakamaError {
                    code: super::errors::NakamaCode::RuntimeException,
                    message: "this reply has no Nakama form".into(),
                };
                self.error_frame(cid, &error);
            }
        }
        self.finish()
    }

    /// A refusal from outside the core (the driver's rate limit): `message` is final.
    pub fn refusal(&mut self, cid: &CidText, code: ErrorCode, message: &str) -> Frames<'_> {
        self.start();
        self.error_frame(cid, &nakama_error(None, code, message));
        self.finish()
    }

    /// The error answering a frame that did not decode; under its `cid` when it had a readable one.
    pub fn decode_failure(&mut self, failure: &DecodeFailure) -> Frames<'_> {
        self.start();
        let text = failure.error.to_string();
        self.error_frame(&failure.cid, &nakama_error(None, failure.error.code(), &text));
        self.finish()
    }

    /// An event's frames for every JSON session that receives it; none for events Nakama's
    /// clients have no message for.
    pub fn event(&mut self, event: &Event) -> Frames<'_> {
        self.start();
        let none = &CidText::Absent;
        match event {
            // huddle's own greeting; Nakama's clients know who they are from their session.
            Event::Welcome { .. } => {}
            Event::Party(event) => self.party_event(event),
            // Invitations and snapshots are huddle-only (SPEC K-1): Nakama has no message for them.
            Event::Lobby(_) => {}
            Event::Status(event) => self.frame(
                none,
                "status_presence_event",
                &StatusPresenceEvent { joins: Presences(&event.joins), leaves: Presences(&event.leaves) },
            ),
            // Nakama answers failed cid-less party data with a cid-less error envelope.
            Event::PartyDataRefused { party_id: _, error } => {
                let text = core_refusal_text(error);
                self.error_frame(none, &nakama_error(Some(NakamaOp::PartyDataSend), error.code(), &text));
            }
        }
        self.finish()
    }

    fn party_reply(&mut self, to: &ReplyTo, me: &Presence, reply: &PartyReply) {
        let cid = &to.cid;
        let none = &CidText::Absent;
        match reply {
            PartyReply::Info(snapshot) => {
                let party = Party::new(snapshot, me);
                let joined = PartyPresenceEvent::joins(snapshot.party_id, std::slice::from_ref(me));
                match to.op {
                    // Nakama 3.40 answers a create with the party, and also pushes the party and
                    // the creator's own join like any joiner's (the recorded frames show both).
                    NakamaOp::PartyCreate => {
                        self.frame(cid, "party", &party);
                        self.frame(none, "party", &party);
                        self.frame(none, "party_presence_event", &joined);
                    }
                    // Nakama's join is a bare ack; the joiner then gets the party and its own join.
                    NakamaOp::PartyJoin => {
                        self.ack(cid);
                        self.frame(none, "party", &party);
                        self.frame(none, "party_presence_event", &joined);
                    }
                    _ => self.frame(cid, "party", &party),
                }
            }
            // A closed party queued the request: the requester hears only the ack, as in Nakama.
            PartyReply::JoinPending { .. } | PartyReply::Ok { .. } => self.ack(cid),
            PartyReply::JoinRequests { party_id, presences } => self.frame(
                cid,
                "party_join_request",
                &PartyJoinRequest { party_id: NakamaPartyId(*party_id), presences: Presences(presences) },
            ),
            // No Nakama request asks for these; only a driver bug routes them here.
            PartyReply::MyParties(_) | PartyReply::SearchResult { .. } => {
                debug_assert!(false, "huddle-only party reply to Nakama request {:?}", to.op);
                let error = NakamaError {
                    code: super::errors::NakamaCode::RuntimeException,
                    message: "this reply has no Nakama form".into(),
                };
                self.error_frame(cid, &error);
            }
        }
    }

    fn party_event(&mut self, event: &PartyEvent) {
        let none = &CidText::Absent;
        match event {
            PartyEvent::Presence { party_id, joins, leaves, version: _ } => self.frame(
                none,
                "party_presence_event",
                &PartyPresenceEvent {
                    party_id: NakamaPartyId(*party_id),
                    joins: Presences(joins),
                    leaves: Presences(leaves),
                },
            ),
            PartyEvent::JoinRequest { party_id, presences } => self.frame(
                none,
                "party_join_request",
                &PartyJoinRequest { party_id: NakamaPartyId(*party_id), presences: Presences(presences) },
            ),
            PartyEvent::Leader { party_id, leader, version: _ } => self.frame(
                none,
                "party_leader",
                &PartyLeader { party_id: NakamaPartyId(*party_id), presence: UserPresence::of(leader) },
            ),
            // Nakama tells a kicked member, and every member of a closed party, `party_close`; a
            // session moved out by one-party-per-user (L-1), or a party an operator closed, is out just the
            // same.
            // A rejected join request goes unannounced in Nakama.
            PartyEvent::Removed {
                party_id,
                reason:
                    RemovedReason::Kicked | RemovedReason::Closed | RemovedReason::Moved | RemovedReason::ClosedByAdmin,
                ..
            } => self.frame(none, "party_close", &PartyClose { party_id: NakamaPartyId(*party_id) }),
            PartyEvent::Removed { reason: RemovedReason::Rejected, .. } => {}
            PartyEvent::Data { party_id, sender, op_code, data } => self.frame(
                none,
                "party_data",
                &PartyData {
                    party_id: NakamaPartyId(*party_id),
                    presence: UserPresence::of(sender),
                    op_code: Int64(*op_code),
                    data: Base64(data),
                },
            ),
            PartyEvent::Updated { party_id, open, hidden, label, .. } => self.frame(
                none,
                "party_update",
                &PartyUpdate { party_id: NakamaPartyId(*party_id), label, open: *open, hidden: *hidden },
            ),
            // Sent only to the session whose join request was accepted, which the core appends to
            // the members last: the snapshot's newest member is the recipient, Nakama's `self`.
            PartyEvent::Joined(snapshot) => {
                let Some(joiner) = snapshot.members.last() else {
                    debug_assert!(false, "a joined party has at least its joiner");
                    return;
                };
                self.frame(none, "party", &Party::new(snapshot, joiner));
                let joined = PartyPresenceEvent::joins(snapshot.party_id, std::slice::from_ref(joiner));
                self.frame(none, "party_presence_event", &joined);
            }
        }
    }

    // ---- envelope writing ----

    fn start(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    fn finish(&self) -> Frames<'_> {
        debug_assert!(self.ends.len() <= FRAMES_PER_OUTPUT_MAX, "{} frames for one output", self.ends.len());
        Frames { buf: &self.buf, ends: &self.ends }
    }

    /// `{"cid":"…"}`: Nakama's bare acknowledgement. Without a cid it would be `{}`, which no SDK
    /// reads, so nothing is sent.
    fn ack(&mut self, cid: &CidText) {
        if !cid.is_absent() {
            self.envelope(cid, None::<(&str, &Empty)>);
        }
    }

    fn error_frame(&mut self, cid: &CidText, error: &NakamaError<'_>) {
        self.frame(cid, "error", &ErrorBody { code: error.code.number(), message: &error.message });
    }

    fn frame(&mut self, cid: &CidText, name: &str, body: &impl Serialize) {
        self.envelope(cid, Some((name, body)));
    }

    /// One envelope: the cid first (field 1, as protojson orders fields), then the message.
    fn envelope<T: Serialize>(&mut self, cid: &CidText, message: Option<(&str, &T)>) {
        self.buf.push(b'{');
        match cid {
            CidText::Absent => {}
            CidText::Number(number) => {
                // Writing into a Vec cannot fail.
                let _ = write!(self.buf, "\"cid\":\"{number}\"");
            }
            CidText::Text(text) => {
                self.buf.extend_from_slice(b"\"cid\":");
                write_json(&mut self.buf, &&**text);
            }
        }
        if let Some((name, body)) = message {
            if !cid.is_absent() {
                self.buf.push(b',');
            }
            self.buf.push(b'"');
            self.buf.extend_from_slice(name.as_bytes());
            self.buf.extend_from_slice(b"\":");
            write_json(&mut self.buf, body);
        }
        self.buf.push(b'}');
        self.ends.push(self.buf.len());
    }
}

fn write_json(buf: &mut Vec<u8>, value: &impl Serialize) {
    // Invariant: every value here is a plain struct, string or number whose Serialize cannot fail,
    // and writing to a Vec cannot fail.
    serde_json::to_writer(buf, value).expect("Invariant: serializing a Nakama message into a Vec cannot fail");
}

// ---- protojson shapes of Nakama's messages (nakama-common `rtapi/realtime.proto`), fields in
// ---- proto order, defaults left out ----

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

fn is_empty_str(value: &&str) -> bool {
    value.is_empty()
}

#[derive(Serialize)]
struct Empty {}

/// `rtapi.UserPresence`. `persistence` is always false for parties and status; `status` is set
/// only in status messages, where it is a `StringValue` and so present even when empty.
#[derive(Serialize)]
struct UserPresence<'a> {
    user_id: &'a str,
    session_id: NakamaSessionId,
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
}

impl<'a> UserPresence<'a> {
    fn of(presence: &'a Presence) -> UserPresence<'a> {
        UserPresence {
            user_id: presence.user_id.as_str(),
            session_id: NakamaSessionId(presence.session_id),
            username: presence.username.as_str(),
            status: None,
        }
    }
}

/// What a list of presences holds: members (`Presence`) or statuses (`StatusPresence`).
trait ToUserPresence {
    fn user_presence(&self) -> UserPresence<'_>;
}

impl ToUserPresence for Presence {
    fn user_presence(&self) -> UserPresence<'_> {
        UserPresence::of(self)
    }
}

impl ToUserPresence for StatusPresence {
    fn user_presence(&self) -> UserPresence<'_> {
        UserPresence { status: Some(&self.status), ..UserPresence::of(&self.presence) }
    }
}

/// A repeated `UserPresence` field, serialized straight from huddle's list.
struct Presences<'a, T>(&'a [T]);

impl<T> Presences<'_, T> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: ToUserPresence> Serialize for Presences<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ToUserPresence::user_presence))
    }
}

/// int64 as protojson writes it: a decimal string; 0 is left out.
struct Int64(i64);

impl Int64 {
    fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl Serialize for Int64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// bytes as protojson writes them: standard base64 with padding; empty is left out.
struct Base64<'a>(&'a [u8]);

impl Base64<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

/// `rtapi.Party`.
#[derive(Serialize)]
struct Party<'a> {
    party_id: NakamaPartyId,
    #[serde(skip_serializing_if = "is_false")]
    open: bool,
    #[serde(skip_serializing_if = "is_false")]
    hidden: bool,
    #[serde(skip_serializing_if = "is_zero")]
    max_size: i32,
    #[serde(rename = "self")]
    self_presence: UserPresence<'a>,
    leader: UserPresence<'a>,
    #[serde(skip_serializing_if = "Presences::is_empty")]
    presences: Presences<'a, Presence>,
    #[serde(skip_serializing_if = "is_empty_str")]
    label: &'a str,
}

impl<'a> Party<'a> {
    fn new(snapshot: &'a PartySnapshot, recipient: &'a Presence) -> Party<'a> {
        Party {
            party_id: NakamaPartyId(snapshot.party_id),
            open: snapshot.open,
            hidden: snapshot.hidden,
            max_size: i32::from(snapshot.max_size),
            self_presence: UserPresence::of(recipient),
            leader: UserPresence::of(&snapshot.leader),
            presences: Presences(&snapshot.members),
            label: &snapshot.label,
        }
    }
}

/// `rtapi.PartyPresenceEvent`.
#[derive(Serialize)]
struct PartyPresenceEvent<'a> {
    party_id: NakamaPartyId,
    #[serde(skip_serializing_if = "Presences::is_empty")]
    joins: Presences<'a, Presence>,
    #[serde(skip_serializing_if = "Presences::is_empty")]
    leaves: Presences<'a, Presence>,
}

impl<'a> PartyPresenceEvent<'a> {
    fn joins(party_id: PartyId, joins: &'a [Presence]) -> PartyPresenceEvent<'a> {
        PartyPresenceEvent { party_id: NakamaPartyId(party_id), joins: Presences(joins), leaves: Presences(&[]) }
    }
}

/// `rtapi.PartyJoinRequest`: the leader's list reply and the new-request event.
#[derive(Serialize)]
struct PartyJoinRequest<'a> {
    party_id: NakamaPartyId,
    #[serde(skip_serializing_if = "Presences::is_empty")]
    presences: Presences<'a, Presence>,
}

/// `rtapi.PartyLeader`.
#[derive(Serialize)]
struct PartyLeader<'a> {
    party_id: NakamaPartyId,
    presence: UserPresence<'a>,
}

/// `rtapi.PartyClose`.
#[derive(Serialize)]
struct PartyClose {
    party_id: NakamaPartyId,
}

/// `rtapi.PartyData`.
#[derive(Serialize)]
struct PartyData<'a> {
    party_id: NakamaPartyId,
    presence: UserPresence<'a>,
    #[serde(skip_serializing_if = "Int64::is_zero")]
    op_code: Int64,
    #[serde(skip_serializing_if = "Base64::is_empty")]
    data: Base64<'a>,
}

/// `rtapi.PartyUpdate`, as the event every member receives.
#[derive(Serialize)]
struct PartyUpdate<'a> {
    party_id: NakamaPartyId,
    #[serde(skip_serializing_if = "is_empty_str")]
    label: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    open: bool,
    #[serde(skip_serializing_if = "is_false")]
    hidden: bool,
}

/// `rtapi.Status`: the follow reply.
#[derive(Serialize)]
struct Status<'a> {
    #[serde(skip_serializing_if = "Presences::is_empty")]
    presences: Presences<'a, StatusPresence>,
}

/// `rtapi.StatusPresenceEvent`.
#[derive(Serialize)]
struct StatusPresenceEvent<'a> {
    #[serde(skip_serializing_if = "Presences::is_empty")]
    joins: Presences<'a, StatusPresence>,
    #[serde(skip_serializing_if = "Presences::is_empty")]
    leaves: Presences<'a, StatusPresence>,
}

/// `rtapi.Error` (its `context` map is always empty here).
#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(skip_serializing_if = "is_zero")]
    code: i32,
    #[serde(skip_serializing_if = "is_empty_str")]
    message: &'a str,
}
