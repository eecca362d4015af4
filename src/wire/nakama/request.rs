//! Requests as a Nakama client writes them: the mirror image of the decoder, for huddle's own
//! tools that speak the JSON mode as a client (the load harness's JSON sessions, the
//! `nakama_json` fuzz target's round trip). Not on the server's path.

use super::decode::CidText;
use super::ids::{NakamaPartyId, NakamaSessionId};
use crate::core::{PartyRequest, Presence, Request, StatusRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

/// `request` as the text frame a Nakama SDK sends, under `cid` (none when absent: party data so
/// sent is fire-and-forget). `None` for requests Nakama's realtime API has no message for
/// (`PartyGet`, `PartyMyList`, `PartySearch`). Nakama's update is a full replace, so an update
/// field left as `None` is written as its default (`false`, no label).
pub fn request_frame(cid: &CidText, request: &Request) -> Option<String> {
    let (name, body) = match request {
        Request::Ping => ("ping", json!({})),
        Request::Party(request) => party(request)?,
        // Invitations and codes are huddle's own; Nakama's realtime API has no message for them.
        Request::Lobby(_) => return None,
        Request::Status(StatusRequest::Update { status }) => {
            ("status_update", status.as_ref().map_or_else(|| json!({}), |status| json!({ "status": status })))
        }
        Request::Status(StatusRequest::Follow { user_ids, usernames }) => (
            "status_follow",
            json!({
                "user_ids": user_ids.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
                "usernames": usernames.iter().map(|name| name.as_str()).collect::<Vec<_>>(),
            }),
        ),
        Request::Status(StatusRequest::Unfollow { user_ids }) => {
            ("status_unfollow", json!({ "user_ids": user_ids.iter().map(|id| id.as_str()).collect::<Vec<_>>() }))
        }
    };
    let mut envelope = Map::new();
    if !cid.is_absent() {
        envelope.insert("cid".into(), Value::String(cid.to_string()));
    }
    envelope.insert(name.into(), body);
    Some(Value::Object(envelope).to_string())
}

fn party(request: &PartyRequest) -> Option<(&'static str, Value)> {
    let id = |party_id| NakamaPartyId(party_id).to_string();
    Some(match request {
        // Strategies are huddle's own: a Nakama client cannot ask for other than the defaults.
        PartyRequest::Create { lobby, .. } if *lobby != Default::default() => return None,
        PartyRequest::Update { lobby, .. } if *lobby != Default::default() => return None,
        PartyRequest::Create { open, max_size, label, hidden, .. } => {
            ("party_create", json!({ "open": open, "max_size": max_size, "label": label, "hidden": hidden }))
        }
        PartyRequest::Join { party_id } => ("party_join", json!({ "party_id": id(*party_id) })),
        PartyRequest::Leave { party_id } => ("party_leave", json!({ "party_id": id(*party_id) })),
        PartyRequest::Close { party_id } => ("party_close", json!({ "party_id": id(*party_id) })),
        PartyRequest::JoinRequests { party_id } => ("party_join_request_list", json!({ "party_id": id(*party_id) })),
        PartyRequest::Promote { party_id, presence } => ("party_promote", with_presence(id(*party_id), presence)),
        PartyRequest::Accept { party_id, presence } => ("party_accept", with_presence(id(*party_id), presence)),
        PartyRequest::Remove { party_id, presence } => ("party_remove", with_presence(id(*party_id), presence)),
        PartyRequest::Data { party_id, op_code, data } => (
            "party_data_send",
            json!({ "party_id": id(*party_id), "op_code": op_code.to_string(), "data": STANDARD.encode(data) }),
        ),
        PartyRequest::Update { party_id, open, hidden, label, .. } => (
            "party_update",
            json!({
                "party_id": id(*party_id),
                "label": label.as_deref().unwrap_or(""),
                "open": open.unwrap_or(false),
                "hidden": hidden.unwrap_or(false),
            }),
        ),
        PartyRequest::Get { .. } | PartyRequest::MyParties | PartyRequest::Search { .. } => return None,
    })
}

fn with_presence(party_id: String, presence: &Presence) -> Value {
    json!({
        "party_id": party_id,
        "presence": {
            "user_id": presence.user_id.as_str(),
            "session_id": NakamaSessionId(presence.session_id).to_string(),
            "username": presence.username.as_str(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::decode::{decode_request, NakamaLimits};
    use super::*;
    use crate::core::{PartyId, SessionId, UserId, Username};
    use crate::limits::Limits;
    use bytes::Bytes;

    #[test]
    fn every_nakama_request_decodes_back_to_itself() {
        let presence =
            Presence { user_id: UserId::new("u\"1"), session_id: SessionId::new(3, 9), username: Username::new("Ü") };
        let party_id = PartyId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let requests = [
            Request::Ping,
            Request::Party(PartyRequest::Create {
                open: true,
                max_size: 4,
                label: "l".into(),
                hidden: false,
                lobby: Default::default(),
            }),
            Request::Party(PartyRequest::Join { party_id }),
            Request::Party(PartyRequest::Leave { party_id }),
            Request::Party(PartyRequest::Close { party_id }),
            Request::Party(PartyRequest::JoinRequests { party_id }),
            Request::Party(PartyRequest::Promote { party_id, presence: presence.clone() }),
            Request::Party(PartyRequest::Accept { party_id, presence: presence.clone() }),
            Request::Party(PartyRequest::Remove { party_id, presence }),
            Request::Party(PartyRequest::Data { party_id, op_code: -5, data: Bytes::from_static(&[0, 255, 7]) }),
            Request::Party(PartyRequest::Update {
                party_id,
                open: Some(true),
                hidden: Some(false),
                label: Some("x".into()),
                lobby: Default::default(),
            }),
            Request::Status(StatusRequest::Update { status: Some("s".into()) }),
            Request::Status(StatusRequest::Update { status: None }),
            Request::Status(StatusRequest::Follow {
                user_ids: vec![UserId::new("a")],
                usernames: vec![Username::new("B")],
            }),
            Request::Status(StatusRequest::Unfollow { user_ids: vec![UserId::new("a")] }),
        ];
        let limits = NakamaLimits::new(&Limits::default());
        for request in requests {
            let frame = request_frame(&CidText::Number(12), &request).expect("a Nakama request");
            let decoded = decode_request(frame.as_bytes(), &limits).unwrap_or_else(|e| panic!("{frame}: {e:?}"));
            assert_eq!(decoded.request, request, "{frame}");
            assert_eq!(decoded.reply_to.cid, CidText::Number(12));
        }
        assert_eq!(request_frame(&CidText::Number(1), &Request::Party(PartyRequest::MyParties)), None);
        let data = Request::Party(PartyRequest::Data { party_id, op_code: 1, data: Bytes::new() });
        assert!(!request_frame(&CidText::Absent, &data).unwrap().contains("cid"), "fire-and-forget has no cid");
    }
}
