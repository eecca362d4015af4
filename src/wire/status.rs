//! Status messages on the wire (SPEC S-1 … S-3): server-side decode of requests and encode of
//! replies and events, and the client-side mirrors. Lists from clients are bounded before
//! anything is allocated for them.

use super::dispatch::{Claim, Claims};
use super::fields::presence_from_wire;
use super::{fb, Body, DecodeError, Encoder, ServerMessage};
use crate::core::{Cid, Event, Reply, Request, UserId, Username};
use crate::core::{StatusEvent, StatusPresence, StatusReply, StatusRequest};
use crate::limits::FOLLOW_IDS_PER_REQUEST_CEILING;
use bytes::Bytes;
use flatbuffers::{ForwardsUOffset, Vector, WIPOffset};

pub(super) const CLAIMS: Claims = &[
    (fb::Message::StatusUpdate, Claim::Request(decode_update)),
    (fb::Message::StatusUpdated, Claim::Server(decode_updated)),
    (fb::Message::StatusFollow, Claim::Request(decode_follow)),
    (fb::Message::StatusFollowed, Claim::Server(decode_followed)),
    (fb::Message::StatusUnfollow, Claim::Request(decode_unfollow)),
    (fb::Message::StatusUnfollowed, Claim::Server(decode_unfollowed)),
    (fb::Message::StatusPresenceEvent, Claim::Server(decode_presence_event)),
];

fn body<T>(message: Option<T>) -> Result<T, DecodeError> {
    message.ok_or(DecodeError::MissingField("message"))
}

fn decode_update(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let update = body(envelope.message_as_status_update())?;
    Ok(Request::Status(StatusRequest::Update { status: update.status().map(str::to_owned) }))
}

fn decode_follow(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let follow = body(envelope.message_as_status_follow())?;
    let user_ids = bounded(follow.user_ids(), "user_ids", 0)?;
    let usernames = bounded(follow.usernames(), "usernames", user_ids.map_or(0, |v| v.len()))?;
    Ok(Request::Status(StatusRequest::Follow {
        user_ids: user_ids.iter().flatten().map(UserId::new).collect(),
        usernames: usernames.iter().flatten().map(Username::new).collect(),
    }))
}

fn decode_unfollow(envelope: &fb::Envelope<'_>, _: &Bytes) -> Result<Request, DecodeError> {
    let unfollow = body(envelope.message_as_status_unfollow())?;
    let user_ids = bounded(unfollow.user_ids(), "user_ids", 0)?;
    Ok(Request::Status(StatusRequest::Unfollow { user_ids: user_ids.iter().flatten().map(UserId::new).collect() }))
}

/// A string list of at most the decoder's ceiling (counting `before` entries of the same
/// request), checked on the vector's length before any element is copied.
fn bounded<'a>(
    list: Option<Vector<'a, ForwardsUOffset<&'a str>>>,
    field: &'static str,
    before: usize,
) -> Result<Option<Vector<'a, ForwardsUOffset<&'a str>>>, DecodeError> {
    let len = list.map_or(0, |v| v.len());
    if before + len > FOLLOW_IDS_PER_REQUEST_CEILING {
        return Err(DecodeError::TooMany { field, len: before + len, max: FOLLOW_IDS_PER_REQUEST_CEILING });
    }
    Ok(list)
}

impl Encoder {
    pub(super) fn status_request(&mut self, request: &StatusRequest) -> Body {
        match request {
            StatusRequest::Update { status } => {
                let status = status.as_deref().map(|s| self.builder.create_string(s));
                let update = fb::StatusUpdate::create(&mut self.builder, &fb::StatusUpdateArgs { status });
                (fb::Message::StatusUpdate, update.as_union_value())
            }
            StatusRequest::Follow { user_ids, usernames } => {
                let user_ids = self.strings(user_ids.iter().map(UserId::as_str));
                let usernames = self.strings(usernames.iter().map(Username::as_str));
                let follow = fb::StatusFollow::create(
                    &mut self.builder,
                    &fb::StatusFollowArgs { user_ids: Some(user_ids), usernames: Some(usernames) },
                );
                (fb::Message::StatusFollow, follow.as_union_value())
            }
            StatusRequest::Unfollow { user_ids } => {
                let user_ids = self.strings(user_ids.iter().map(UserId::as_str));
                let unfollow =
                    fb::StatusUnfollow::create(&mut self.builder, &fb::StatusUnfollowArgs { user_ids: Some(user_ids) });
                (fb::Message::StatusUnfollow, unfollow.as_union_value())
            }
        }
    }

    pub(super) fn status_reply(&mut self, reply: &StatusReply) -> Body {
        match reply {
            StatusReply::Updated => (
                fb::Message::StatusUpdated,
                fb::StatusUpdated::create(&mut self.builder, &fb::StatusUpdatedArgs {}).as_union_value(),
            ),
            StatusReply::Followed { presences } => {
                let presences = self.status_presences(presences);
                let followed = fb::StatusFollowed::create(
                    &mut self.builder,
                    &fb::StatusFollowedArgs { presences: Some(presences) },
                );
                (fb::Message::StatusFollowed, followed.as_union_value())
            }
            StatusReply::Unfollowed => (
                fb::Message::StatusUnfollowed,
                fb::StatusUnfollowed::create(&mut self.builder, &fb::StatusUnfollowedArgs {}).as_union_value(),
            ),
        }
    }

    pub(super) fn status_event(&mut self, event: &StatusEvent) -> Body {
        let joins = self.status_presences(&event.joins);
        let leaves = self.status_presences(&event.leaves);
        let event = fb::StatusPresenceEvent::create(
            &mut self.builder,
            &fb::StatusPresenceEventArgs { joins: Some(joins), leaves: Some(leaves) },
        );
        (fb::Message::StatusPresenceEvent, event.as_union_value())
    }

    fn status_presences(
        &mut self,
        presences: &[StatusPresence],
    ) -> WIPOffset<Vector<'static, ForwardsUOffset<fb::StatusPresence<'static>>>> {
        let offsets: Vec<_> = presences
            .iter()
            .map(|p| {
                let presence = self.presence(&p.presence);
                let status = self.builder.create_string(&p.status);
                fb::StatusPresence::create(
                    &mut self.builder,
                    &fb::StatusPresenceArgs { presence: Some(presence), status: Some(status) },
                )
            })
            .collect();
        self.builder.create_vector(&offsets)
    }

    fn strings<'s>(
        &mut self,
        items: impl Iterator<Item = &'s str>,
    ) -> WIPOffset<Vector<'static, ForwardsUOffset<&'static str>>> {
        let offsets: Vec<_> = items.map(|s| self.builder.create_string(s)).collect();
        self.builder.create_vector(&offsets)
    }
}

fn reply(envelope: &fb::Envelope<'_>, reply: StatusReply) -> Result<ServerMessage, DecodeError> {
    Ok(ServerMessage::Reply { cid: Cid(envelope.cid()), result: Ok(Reply::Status(reply)) })
}

fn decode_updated(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    reply(envelope, StatusReply::Updated)
}

fn decode_unfollowed(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    reply(envelope, StatusReply::Unfollowed)
}

fn decode_followed(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let followed = body(envelope.message_as_status_followed())?;
    reply(envelope, StatusReply::Followed { presences: decode_status_presences(followed.presences())? })
}

fn decode_presence_event(envelope: &fb::Envelope<'_>) -> Result<ServerMessage, DecodeError> {
    let event = body(envelope.message_as_status_presence_event())?;
    Ok(ServerMessage::Event(Event::Status(StatusEvent {
        joins: decode_status_presences(event.joins())?,
        leaves: decode_status_presences(event.leaves())?,
    })))
}

fn decode_status_presences(
    list: Option<Vector<'_, ForwardsUOffset<fb::StatusPresence<'_>>>>,
) -> Result<Vec<StatusPresence>, DecodeError> {
    list.iter()
        .flatten()
        .map(|p| {
            Ok(StatusPresence {
                presence: presence_from_wire(p.presence(), "status_presence.presence")?,
                status: p.status().ok_or(DecodeError::MissingField("status_presence.status"))?.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{hand_built, reply_round_trips, request_round_trips};
    use super::super::{decode_request as decode, decode_server_message, verifier_options, ServerMessage};
    use super::*;
    use crate::core::{Presence, SessionId};
    use flatbuffers::FlatBufferBuilder;

    fn options() -> flatbuffers::VerifierOptions {
        verifier_options(16 * 1024)
    }

    fn presence(user: &str, slot: u32, status: &str) -> StatusPresence {
        StatusPresence {
            presence: Presence {
                user_id: UserId::new(user),
                session_id: SessionId::new(slot, 7),
                username: Username::new(&user.to_uppercase()),
            },
            status: status.into(),
        }
    }

    fn round_trip_request(request: StatusRequest) {
        request_round_trips(Request::Status(request));
    }

    fn round_trip_reply(reply: StatusReply) {
        reply_round_trips(Reply::Status(reply));
    }

    #[test]
    fn status_update_round_trips_with_text_empty_and_absent() {
        round_trip_request(StatusRequest::Update { status: Some("in a match {\"id\":3}".into()) });
        round_trip_request(StatusRequest::Update { status: Some(String::new()) });
        round_trip_request(StatusRequest::Update { status: None });
    }

    #[test]
    fn follow_and_unfollow_round_trip() {
        round_trip_request(StatusRequest::Follow {
            user_ids: vec![UserId::new("u1"), UserId::new("u2")],
            usernames: vec![Username::new("Carol")],
        });
        round_trip_request(StatusRequest::Follow { user_ids: vec![], usernames: vec![] });
        round_trip_request(StatusRequest::Unfollow { user_ids: vec![UserId::new("u1")] });
        round_trip_request(StatusRequest::Unfollow { user_ids: vec![] });
    }

    #[test]
    fn replies_round_trip() {
        round_trip_reply(StatusReply::Updated);
        round_trip_reply(StatusReply::Unfollowed);
        round_trip_reply(StatusReply::Followed { presences: vec![] });
        round_trip_reply(StatusReply::Followed {
            presences: vec![presence("bob", 1, "lobby"), presence("bob", 2, ""), presence("carol", 3, "x")],
        });
    }

    #[test]
    fn presence_event_round_trips_with_joins_and_leaves() {
        for event in [
            StatusEvent { joins: vec![presence("a", 1, "new")], leaves: vec![presence("a", 1, "old")] },
            StatusEvent { joins: vec![presence("a", 1, "")], leaves: vec![] },
            StatusEvent { joins: vec![], leaves: vec![presence("a", 1, "last")] },
        ] {
            let event = Event::Status(event);
            let frame = Encoder::new().event(&event).to_vec();
            assert_eq!(decode_server_message(&frame, &options()), Ok(ServerMessage::Event(event)));
        }
    }

    #[test]
    fn server_only_status_messages_are_not_requests() {
        let mut encoder = Encoder::new();
        for reply in [StatusReply::Updated, StatusReply::Unfollowed, StatusReply::Followed { presences: vec![] }] {
            let frame = Bytes::copy_from_slice(encoder.reply(Cid(4), &Ok(Reply::Status(reply))));
            let (cid, error) = decode(&frame, &options()).unwrap_err();
            assert_eq!((cid, error.code()), (Cid(4), super::super::ErrorCode::NotARequest));
        }
    }

    /// A follow naming more ids than the ceiling is refused from the vector's length alone,
    /// before any id is copied. Built by hand with a large frame limit so the verifier passes.
    #[test]
    fn follow_with_too_many_ids_is_refused_before_decoding_them() {
        let mut builder = FlatBufferBuilder::new();
        let id = builder.create_string("x");
        let ids = builder.create_vector(&vec![id; FOLLOW_IDS_PER_REQUEST_CEILING + 1]);
        let follow =
            fb::StatusFollow::create(&mut builder, &fb::StatusFollowArgs { user_ids: Some(ids), usernames: None });
        let frame = hand_built(builder, 8, fb::Message::StatusFollow, follow.as_union_value());
        let (cid, error) = decode(&frame, &verifier_options(1 << 20)).unwrap_err();
        assert_eq!(cid, Cid(8));
        assert_eq!(error.code(), super::super::ErrorCode::LimitExceeded);
        assert!(error.to_string().contains("user_ids"), "{error}");
    }

    #[test]
    fn status_errors_carry_their_codes() {
        use crate::core::CoreError;
        let cases = [
            (
                CoreError::FollowLimitReached { following: 3, adding: 2, max: 4 },
                super::super::ErrorCode::FollowLimitReached,
            ),
            (CoreError::LimitExceeded("status_bytes_max".into()), super::super::ErrorCode::LimitExceeded),
        ];
        for (error, code) in cases {
            let frame = Encoder::new().reply(Cid(2), &Err(error)).to_vec();
            let Ok(ServerMessage::Reply { result: Err(reply), .. }) = decode_server_message(&frame, &options()) else {
                panic!("expected an error reply");
            };
            assert_eq!(reply.code, code);
        }
    }
}
