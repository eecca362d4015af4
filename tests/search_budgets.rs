//! Issue 14, items 1 and 2, over real loopback sockets: one client cannot make the search
//! index do unbounded work or hold unbounded memory, and everybody else is served while it
//! tries. A search past its cost budget is refused with 234, a session whose search budget is
//! spent with 235 (and the wait), a label past its value, field or path bounds with 236, and
//! any label while the index is at its memory budget with 237; each refusal leaves the
//! offender's connection usable and changes nothing.
//!
//! Every test keeps a bystander connection busy throughout: between the offender's requests it
//! sends a batch of pings without waiting and must get every pong back, in order (cids in the
//! order sent), with nothing else in between. How long anything takes is never asserted: the
//! bystander's round trip under the costliest searches is measured by `examples/search_stall.rs`
//! and `cargo bench --bench search`, not here.

mod common;

use common::*;
use huddle::client::{Client, PartyResult};
use huddle::core::{PartyId, Reply, Request};
use huddle::limits::Limits;
use huddle::wire::{ErrorCode, ErrorReply, ServerMessage};
use std::time::Duration;

fn ok<T: std::fmt::Debug>(result: PartyResult<T>) -> T {
    match result {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("request failed: {error:?}"),
        Err(e) => panic!("transport failed: {e}"),
    }
}

fn error<T: std::fmt::Debug>(result: PartyResult<T>) -> ErrorReply {
    match result {
        Ok(Ok(value)) => panic!("request should have failed, got {value:?}"),
        Ok(Err(error)) => error,
        Err(e) => panic!("transport failed: {e}"),
    }
}

/// The bystander's turn: `BATCH` pings sent back to back, then every pong, in the order sent.
fn bystander_served(bystander: &mut Client) {
    const BATCH: usize = 8;
    let cids: Vec<_> = (0..BATCH).map(|_| bystander.send(&Request::Ping).expect("send a ping")).collect();
    for cid in cids {
        match bystander.next(WAIT).expect("every ping is answered") {
            ServerMessage::Reply { cid: got, result: Ok(Reply::Pong) } => assert_eq!(got, cid, "pongs come in order"),
            other => panic!("the bystander expected its pong, got {other:?}"),
        }
    }
}

/// `count` parties labelled `{"n": i}`, created by as many sessions as the per-session limit
/// needs; the sessions are returned so the parties live on.
fn numbered_parties(server: &TestServer, count: usize) -> (Vec<Client>, Vec<PartyId>) {
    let per_session = Limits::default().parties_per_session_max;
    let mut owners = Vec::new();
    let mut parties = Vec::new();
    for s in 0..count.div_ceil(per_session) {
        let mut owner = server.connect(&format!("owner{s}"));
        for i in s * per_session..((s + 1) * per_session).min(count) {
            parties.push(ok(owner.party_create(true, 8, &format!(r#"{{"n":{i}}}"#), false)).party_id);
        }
        owners.push(owner);
    }
    (owners, parties)
}

/// 64 different ranges over `label.n`: the costliest query shape within the query limits.
fn ranges_query() -> String {
    (0..64).map(|i| format!("label.n:>={i}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn a_search_past_its_cost_budget_is_refused_with_234_and_the_issues_query_is_cheap() {
    let limits = Limits { search_query_cost_max: 2_000, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let (_owners, parties) = numbered_parties(&server, 200);
    let mut bystander = server.connect("bystander");
    let mut attacker = server.connect("attacker");
    bystander_served(&mut bystander);

    let refused = error(attacker.party_search(&ranges_query(), None, Some(100), None));
    assert_eq!(refused.code, ErrorCode::SearchQueryTooCostly, "{refused:?}");
    assert!(refused.message.contains("search_query_cost_max"), "the message names the limit: {}", refused.message);
    bystander_served(&mut bystander);

    // The issue's query (one range written 64 times) is one term: answered, first page full.
    let issue = vec!["label.n:>=0"; 64].join(" ");
    let (page, cursor) = ok(attacker.party_search(&issue, None, Some(100), None));
    assert_eq!((page.len(), cursor.is_some()), (100, true));
    bystander_served(&mut bystander);

    // A selective query still answers exactly, on the same connection.
    let (page, _) = ok(attacker.party_search("+label.n:17", None, None, None));
    assert_eq!(page.iter().map(|p| p.party_id).collect::<Vec<_>>(), [parties[17]]);
    bystander_served(&mut bystander);
}

#[test]
fn a_session_that_spent_its_search_budget_gets_235_with_the_wait_and_others_keep_searching() {
    // One costly search (refused or not, its work is charged) leaves the attacker's bucket
    // tens of seconds in debt at one unit a millisecond; the bystander's bucket is its own.
    let limits = Limits { search_budget_cost_per_ms: 1, search_budget_burst_cost: 1_000, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let (_owners, parties) = numbered_parties(&server, 1_000);
    let mut bystander = server.connect("bystander");
    let mut attacker = server.connect("attacker");
    bystander_served(&mut bystander);

    let first = attacker.party_search(&ranges_query(), None, Some(100), None);
    assert!(
        matches!(first, Ok(Ok(_)) | Ok(Err(ErrorReply { code: ErrorCode::SearchQueryTooCostly, .. }))),
        "{first:?}"
    );
    bystander_served(&mut bystander);
    for query in [ranges_query().as_str(), "+label.n:3"] {
        let spent = error(attacker.party_search(query, None, None, None));
        assert_eq!(spent.code, ErrorCode::SearchBudgetExhausted, "{spent:?}");
        assert!(spent.message.contains("search again in"), "the message says when: {}", spent.message);
        bystander_served(&mut bystander);
    }
    // Everything else the attacker does is served; so is everybody else's search.
    assert_eq!(attacker.request(&Request::Ping).expect("transport"), Ok(Reply::Pong));
    let (page, _) = ok(bystander.party_search("+label.n:3", None, None, None));
    assert_eq!(page.iter().map(|p| p.party_id).collect::<Vec<_>>(), [parties[3]]);
    bystander_served(&mut bystander);
}

/// A label of `values` numbers spread over `fields` fields (`{"f0":[0,1],"f1":[2],…}`).
fn label_of(values: usize, fields: usize) -> String {
    let field = |f: usize| {
        let numbers: Vec<String> = (f..values).step_by(fields).map(|v| v.to_string()).collect();
        format!(r#""f{f}":[{}]"#, numbers.join(","))
    };
    format!("{{{}}}", (0..fields).map(field).collect::<Vec<_>>().join(","))
}

#[test]
fn labels_are_refused_with_236_one_past_their_value_field_and_path_bounds() {
    let limits = Limits::default();
    let (values_max, fields_max) = (limits.party_label_values_max, limits.party_label_fields_max);
    let server = TestServer::start();
    let mut bystander = server.connect("bystander");
    let mut alice = server.connect("alice");

    let at = label_of(values_max, fields_max);
    let party = ok(alice.party_create(true, 4, &at, false)).party_id;
    bystander_served(&mut bystander);
    let cases = [
        (label_of(values_max + 1, fields_max), "party_label_values_max"),
        (label_of(values_max, fields_max + 1), "party_label_fields_max"),
        // A long key above three leaves: its path repeats in each of their fields.
        (format!(r#"{{"{}":{{"a":1,"b":2,"c":3}}}}"#, "k".repeat(700)), "party_label_bytes_max"),
    ];
    for (label, limit) in &cases {
        assert!(label.len() <= limits.party_label_bytes_max, "the label itself is within its size");
        for refused in [
            error(alice.party_create(true, 4, label, false)),
            error(alice.party_update(party, None, None, Some(label))),
        ] {
            assert_eq!(refused.code, ErrorCode::LabelTooComplex, "{label}: {refused:?}");
            assert!(refused.message.contains(limit), "{label}: the message names {limit}: {}", refused.message);
        }
        bystander_served(&mut bystander);
    }
    // Nothing changed: the party keeps the label at the bounds, and search finds it by it.
    assert_eq!(ok(alice.party_get(party)).label, at);
    let (page, _) = ok(bystander.party_search(&format!("+label.f0:{}", 0), None, None, None));
    assert_eq!(page.iter().map(|p| p.party_id).collect::<Vec<_>>(), [party]);
    assert_eq!(ok(alice.party_my_parties()).len(), 1, "no refused create made a party");
}

#[test]
fn a_full_search_index_refuses_labels_with_237_until_parties_end_and_parties_without_one_still_come() {
    let limits = Limits { search_index_bytes_max: 24 * 1024, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let mut bystander = server.connect("bystander");
    let mut owners: Vec<Client> = (0..8).map(|i| server.connect(&format!("owner{i}"))).collect();
    let mut labelled: Vec<(usize, PartyId)> = Vec::new();
    let full = 'fill: {
        for (o, owner) in owners.iter_mut().enumerate() {
            for i in 0..Limits::default().parties_per_session_max {
                let label = format!(r#"{{"o{o}":"{}","n{i}":[1,2,3],"t":"{o}-{i}"}}"#, "x".repeat(100));
                match owner.party_create(true, 4, &label, false) {
                    Ok(Ok(party)) => labelled.push((o, party.party_id)),
                    Ok(Err(error)) => break 'fill error,
                    Err(e) => panic!("transport failed: {e}"),
                }
            }
            bystander_served(&mut bystander);
        }
        panic!("24 KiB of index never filled");
    };
    assert_eq!(full.code, ErrorCode::SearchIndexFull, "{full:?}");
    assert!(full.message.contains("search_index_bytes_max"), "{}", full.message);
    assert!(!labelled.is_empty(), "labels were accepted until the index was full");
    bystander_served(&mut bystander);

    // Parties without a label (or hidden ones) are still created, and are found.
    let mut late = server.connect("late");
    let plain = ok(late.party_create(true, 4, "", false)).party_id;
    ok(late.party_create(true, 4, "", true));
    let found = ok(late.party_search("+open:true", None, Some(100), None)).0;
    assert!(found.iter().any(|p| p.party_id == plain));
    bystander_served(&mut bystander);

    // Once labelled parties end, labels are accepted again.
    for &(owner, party) in labelled.iter().take(4) {
        ok(owners[owner].party_close(party));
    }
    ok(late.party_create(true, 4, r#"{"again":true}"#, false));
    bystander_served(&mut bystander);
    // The bystander's own connection saw nothing of all this.
    assert!(bystander.next(Duration::from_millis(50)).is_err(), "no stray message reached the bystander");
}
