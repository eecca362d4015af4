//! The JSON the party and history routes answer with (SPEC O-1, O-3), and the history file's
//! lines, which are the same objects the history route lists. Built from the core's views
//! (`core::PartyAdminView`, `core::HistoryRecord`, …); a field the lobby features add to those
//! gets one line here.
//!
//! Conventions: party ids in huddle's 32-hex form; session ids as decimal strings (their 64-bit
//! wire form: JSON numbers past 2^53 lose precision in JavaScript); times as Unix milliseconds,
//! named `…_ms`; a label as the JSON object it is (null when there is none).
//!
//! Lists are pages: at most the request's `limit` items and, beyond the first item, no more than
//! `admin_response_bytes_max` bytes of them ([`json_items`]); the response says how to go on.

use super::json;
use crate::core::{
    AdminClosed, AdminKicked, HistoryRecord, PartyAdminSummary, PartyAdminView, PartyId, Presence, UserId, UserParties,
};
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Serialize)]
struct PresenceJson<'a> {
    user_id: &'a str,
    session_id: String,
    username: &'a str,
}

impl<'a> PresenceJson<'a> {
    fn of(presence: &'a Presence) -> PresenceJson<'a> {
        PresenceJson {
            user_id: presence.user_id.as_str(),
            session_id: presence.session_id.to_wire().to_string(),
            username: presence.username.as_str(),
        }
    }
}

/// A stored label as its JSON object (labels are validated JSON when set); none as null.
fn label_json(label: &str) -> Option<&RawValue> {
    if label.is_empty() {
        return None;
    }
    serde_json::from_str(label).ok()
}

/// One party in `GET /v1/parties` and `GET /v1/users/{user_id}/parties`.
#[derive(Serialize)]
struct SummaryJson<'a> {
    party_id: String,
    open: bool,
    hidden: bool,
    max_size: u16,
    member_count: u16,
    pending_count: usize,
    label: Option<&'a RawValue>,
    leader: PresenceJson<'a>,
    created_at_ms: u64,
    /// The user's sessions in the party (`GET /v1/users/{user_id}/parties` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<Vec<String>>,
}

impl<'a> SummaryJson<'a> {
    fn of(party: &'a PartyAdminSummary) -> SummaryJson<'a> {
        let summary = &party.summary;
        SummaryJson {
            party_id: summary.party_id.to_string(),
            open: summary.open,
            hidden: summary.hidden,
            max_size: summary.max_size,
            member_count: summary.member_count,
            pending_count: party.pending_count,
            label: label_json(&summary.label),
            leader: PresenceJson::of(&summary.leader),
            created_at_ms: party.created_at.0,
            sessions: None,
        }
    }
}

#[derive(Serialize)]
struct MemberJson<'a> {
    #[serde(flatten)]
    presence: PresenceJson<'a>,
    joined_at_ms: u64,
}

/// `GET /v1/parties/{party_id}`.
#[derive(Serialize)]
struct PartyJson<'a> {
    party_id: String,
    open: bool,
    hidden: bool,
    max_size: u16,
    member_count: usize,
    label: Option<&'a RawValue>,
    leader: PresenceJson<'a>,
    created_at_ms: u64,
    /// Join order, with when each joined.
    members: Vec<MemberJson<'a>>,
    /// Pending join requests, oldest first.
    pending: Vec<PresenceJson<'a>>,
}

pub fn party(view: &PartyAdminView) -> Vec<u8> {
    let snapshot = &view.snapshot;
    let members = snapshot
        .members
        .iter()
        .zip(&view.joined_at)
        .map(|(presence, joined_at)| MemberJson { presence: PresenceJson::of(presence), joined_at_ms: joined_at.0 })
        .collect();
    json(&PartyJson {
        party_id: snapshot.party_id.to_string(),
        open: snapshot.open,
        hidden: snapshot.hidden,
        max_size: snapshot.max_size,
        member_count: snapshot.members.len(),
        label: label_json(&snapshot.label),
        leader: PresenceJson::of(&snapshot.leader),
        created_at_ms: view.created_at.0,
        members,
        pending: view.pending.iter().map(PresenceJson::of).collect(),
    })
}

/// Items rendered as one JSON array, for a page.
pub struct Items<T> {
    /// `[…]`.
    pub array: Box<RawValue>,
    pub count: usize,
    /// Items matched beyond the page.
    pub more: bool,
    /// The last item on the page (for a cursor).
    pub last: Option<T>,
}

/// Renders up to `limit` of `items` as a JSON array, stopping before the array would pass
/// `bytes_max` (but always taking the first item, however large).
pub fn json_items<T>(
    items: impl IntoIterator<Item = T>,
    limit: usize,
    bytes_max: usize,
    mut render: impl FnMut(&T) -> Vec<u8>,
) -> Items<T> {
    let mut array = String::from("[");
    let mut count = 0;
    let mut last = None;
    let mut more = false;
    for item in items {
        if count == limit {
            more = true;
            break;
        }
        let rendered = render(&item);
        if count > 0 && array.len() + 1 + rendered.len() + 1 > bytes_max {
            more = true;
            break;
        }
        if count > 0 {
            array.push(',');
        }
        // serde_json writes UTF-8; the fallback keeps the array valid should that ever change.
        array.push_str(std::str::from_utf8(&rendered).unwrap_or("null"));
        count += 1;
        last = Some(item);
    }
    array.push(']');
    // Invariant: an array of serde_json values is JSON.
    let array = RawValue::from_string(array).unwrap_or_else(|_| empty_array());
    Items { array, count, more, last }
}

fn empty_array() -> Box<RawValue> {
    // Invariant: "[]" is JSON.
    RawValue::from_string("[]".to_owned()).expect("[] is JSON")
}

/// `GET /v1/parties`.
#[derive(Serialize)]
struct PartiesPage {
    total: usize,
    offset: usize,
    parties: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_offset: Option<usize>,
}

pub fn parties_page(
    parties: impl Iterator<Item = PartyAdminSummary>,
    total: usize,
    offset: usize,
    limit: usize,
    bytes_max: usize,
) -> Vec<u8> {
    let items = json_items(parties, limit, bytes_max, |party| json(&SummaryJson::of(party)));
    let next_offset = items.more.then_some(offset + items.count);
    json(&PartiesPage { total, offset, parties: items.array, next_offset })
}

#[derive(Serialize)]
struct RequestJson {
    party_id: String,
    session_id: String,
}

/// `GET /v1/users/{user_id}/parties`.
#[derive(Serialize)]
struct UserPartiesJson<'a> {
    user_id: &'a str,
    parties: Box<RawValue>,
    /// The user's pending join requests.
    requests: Vec<RequestJson>,
    /// More parties than one page holds (a user with many sessions in many parties).
    truncated: bool,
}

pub fn user_parties(user_id: &UserId, parties: &UserParties, limit: usize, bytes_max: usize) -> Vec<u8> {
    let items = json_items(&parties.memberships, limit, bytes_max, |(summary, sessions)| {
        let sessions = sessions.iter().map(|s| s.to_wire().to_string()).collect();
        json(&SummaryJson { sessions: Some(sessions), ..SummaryJson::of(summary) })
    });
    let requests = parties
        .requests
        .iter()
        .take(limit)
        .map(|(party_id, session)| RequestJson {
            party_id: party_id.to_string(),
            session_id: session.to_wire().to_string(),
        })
        .collect();
    json(&UserPartiesJson {
        user_id: user_id.as_str(),
        parties: items.array,
        requests,
        truncated: items.more || parties.requests.len() > limit,
    })
}

#[derive(Serialize)]
struct ClosedJson {
    party_id: String,
    members_removed: usize,
    requests_removed: usize,
}

pub fn party_closed(party_id: PartyId, closed: &AdminClosed) -> Vec<u8> {
    json(&ClosedJson {
        party_id: party_id.to_string(),
        members_removed: closed.members_removed,
        requests_removed: closed.requests_removed,
    })
}

#[derive(Serialize)]
struct KickedJson<'a> {
    party_id: String,
    user_id: &'a str,
    sessions_kicked: Vec<String>,
    /// The leader after rotation, when the kicked user led the party.
    new_leader: Option<PresenceJson<'a>>,
    /// The kicked sessions were the last members: the party ended.
    party_ended: bool,
}

pub fn members_kicked(party_id: PartyId, user_id: &UserId, kicked: &AdminKicked) -> Vec<u8> {
    json(&KickedJson {
        party_id: party_id.to_string(),
        user_id: user_id.as_str(),
        sessions_kicked: kicked.sessions.iter().map(|s| s.to_wire().to_string()).collect(),
        new_leader: kicked.new_leader.as_ref().map(PresenceJson::of),
        party_ended: kicked.party_ended,
    })
}

#[derive(Serialize)]
struct LeaderJson<'a> {
    #[serde(flatten)]
    presence: PresenceJson<'a>,
    since_ms: u64,
}

#[derive(Serialize)]
struct HistoryMemberJson<'a> {
    #[serde(flatten)]
    presence: PresenceJson<'a>,
    joined_at_ms: u64,
    left_at_ms: u64,
}

/// One history record: a line of the history file, an item of `GET /v1/history`.
#[derive(Serialize)]
struct RecordJson<'a> {
    party_id: String,
    max_size: u16,
    created_at_ms: u64,
    ended_at_ms: u64,
    end_reason: &'static str,
    leaders: Vec<LeaderJson<'a>>,
    members: Vec<HistoryMemberJson<'a>>,
    truncated: bool,
}

/// A record as one JSON object (no newline).
pub fn history_record(record: &HistoryRecord) -> Vec<u8> {
    let leaders = record
        .leaders
        .iter()
        .map(|l| LeaderJson { presence: PresenceJson::of(&l.presence), since_ms: l.since.0 })
        .collect();
    let members = record
        .members
        .iter()
        .map(|m| HistoryMemberJson {
            presence: PresenceJson::of(&m.presence),
            joined_at_ms: m.joined_at.0,
            // Every member of a finished record has left (at the end, for those still in).
            left_at_ms: m.left_at.unwrap_or(record.ended_at).0,
        })
        .collect();
    json(&RecordJson {
        party_id: record.party_id.to_string(),
        max_size: record.max_size,
        created_at_ms: record.created_at.0,
        ended_at_ms: record.ended_at.0,
        end_reason: record.end_reason.as_str(),
        leaders,
        members,
        truncated: record.truncated,
    })
}

/// `GET /v1/history`.
#[derive(Serialize)]
struct HistoryPage {
    records: Box<RawValue>,
    /// Ask again with `cursor=` this for older records (present only when more match).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

pub fn history_page<'a>(
    records: impl Iterator<Item = &'a std::sync::Arc<HistoryRecord>>,
    limit: usize,
    bytes_max: usize,
) -> Vec<u8> {
    let items = json_items(records, limit, bytes_max, |record| history_record(record));
    let next_cursor = items.last.filter(|_| items.more).map(|record| record.seq.to_string());
    json(&HistoryPage { records: items.array, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{HistoryEndReason, HistoryLeader, HistoryMember, SessionId, UnixMillis, Username};
    use crate::limits::HISTORY_ENTRY_JSON_BYTES_MAX;

    fn presence(id: &str, name: &str) -> Presence {
        Presence {
            user_id: UserId::new(id),
            session_id: SessionId::new(u32::MAX, u32::MAX),
            username: Username::new(name),
        }
    }

    fn record(members: Vec<HistoryMember>, leaders: Vec<HistoryLeader>) -> HistoryRecord {
        HistoryRecord {
            seq: u64::MAX,
            party_id: PartyId(u128::MAX),
            max_size: 256,
            created_at: UnixMillis(u64::MAX),
            ended_at: UnixMillis(u64::MAX),
            end_reason: HistoryEndReason::ClosedByAdmin,
            leaders,
            members,
            truncated: true,
        }
    }

    #[test]
    fn a_worst_case_history_entry_fits_its_byte_bound() {
        // The longest claims, made of the characters JSON escapes longest without control
        // characters (which claims cannot carry).
        let worst = "\"".repeat(crate::core::UserId::BYTES_MAX);
        let p = presence(&worst, &worst);
        let at = UnixMillis(u64::MAX);
        let one_member = record(vec![HistoryMember { presence: p.clone(), joined_at: at, left_at: Some(at) }], vec![]);
        let one_leader = record(vec![], vec![HistoryLeader { presence: p, since: at }]);
        let empty = history_record(&record(vec![], vec![])).len();
        for with_one in [one_member, one_leader] {
            let entry = history_record(&with_one).len() - empty;
            assert!(entry <= HISTORY_ENTRY_JSON_BYTES_MAX, "{entry} bytes");
        }
        assert!(empty <= HISTORY_ENTRY_JSON_BYTES_MAX, "the fixed fields take less than an entry: {empty}");
    }

    #[test]
    fn a_record_line_has_every_field_named_as_the_readme_says() {
        let alice = presence("alice", "Alice");
        let members =
            vec![HistoryMember { presence: alice.clone(), joined_at: UnixMillis(10), left_at: Some(UnixMillis(20)) }];
        let leaders = vec![HistoryLeader { presence: alice, since: UnixMillis(10) }];
        let line: serde_json::Value = serde_json::from_slice(&history_record(&record(members, leaders))).unwrap();
        let expected = serde_json::json!({
            "party_id": "ffffffffffffffffffffffffffffffff",
            "max_size": 256,
            "created_at_ms": u64::MAX,
            "ended_at_ms": u64::MAX,
            "end_reason": "closed_by_admin",
            "leaders": [{"user_id": "alice", "session_id": "18446744073709551615", "username": "Alice", "since_ms": 10}],
            "members": [{"user_id": "alice", "session_id": "18446744073709551615", "username": "Alice",
                         "joined_at_ms": 10, "left_at_ms": 20}],
            "truncated": true,
        });
        assert_eq!(line, expected);
    }

    #[test]
    fn pages_stop_at_the_limit_or_the_byte_bound_but_hold_one_item() {
        let items = json_items(0..10, 3, 1000, |i| i.to_string().into_bytes());
        assert_eq!((items.array.get(), items.count, items.more, items.last), ("[0,1,2]", 3, true, Some(2)));
        let items = json_items(0..3, 10, 1000, |i| i.to_string().into_bytes());
        assert_eq!((items.array.get(), items.more), ("[0,1,2]", false));
        let items = json_items(["aaaa", "bb"], 10, 4, |s| format!("\"{s}\"").into_bytes());
        assert_eq!((items.array.get(), items.count, items.more), ("[\"aaaa\"]", 1, true), "one item however large");
        let none = json_items(std::iter::empty::<u8>(), 10, 4, |_| Vec::new());
        assert_eq!((none.array.get(), none.count, none.more), ("[]", 0, false));
    }
}
