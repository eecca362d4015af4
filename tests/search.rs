//! End-to-end tests of party search (SPEC Q-1 … Q-4) over real loopback sockets: clients create,
//! update, join, leave and close labelled parties against a server on 127.0.0.1:0 and search
//! right after, each test named after its rule.
//!
//! Every expectation is an exact list of party ids in the order the server must return them:
//! score descending, then party id ascending (ids are random, so ties are sorted here with
//! `by_id`). Q-3 is checked without sleeping: the server applies a change to the index before it
//! replies to the change, so the very next request — from any connection — sees it. Only a
//! disconnect, which the server notices after the socket closes, is awaited with a deadline.

mod common;

use common::*;
use huddle::client::{Client, PartyResult};
use huddle::core::{PartyId, PartyListing};
use huddle::limits::Limits;
use huddle::wire::{ErrorCode, ErrorReply};
use std::time::Instant;

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
        Ok(Err(error)) => {
            assert!(!error.message.is_empty(), "error replies say what is wrong");
            error
        }
        Err(e) => panic!("transport failed: {e}"),
    }
}

fn create(client: &mut Client, open: bool, max_size: u32, label: &str) -> PartyId {
    ok(client.party_create(open, max_size, label, false)).party_id
}

/// Ids of one page (the first, default limit) of `query`, in the order the server returned them.
fn search(client: &mut Client, query: &str) -> Vec<PartyId> {
    let (parties, cursor) = ok(client.party_search(query, None, None, None));
    assert_eq!(cursor, None, "the test expected a single page for {query:?}");
    parties.iter().map(|p| p.party_id).collect()
}

/// Every result of a search, walking the pages with `limit`; asserts a party appears once.
fn walk(client: &mut Client, query: &str, open: Option<bool>, limit: u32) -> Vec<PartyListing> {
    let mut all: Vec<PartyListing> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let (page, next) = ok(client.party_search(query, open, Some(limit), cursor.as_deref()));
        assert!(page.len() <= limit as usize);
        if next.is_some() {
            assert_eq!(page.len(), limit as usize, "only a full page has a cursor");
        }
        for listing in page {
            assert!(!all.iter().any(|l| l.party_id == listing.party_id), "{} returned twice", listing.party_id);
            all.push(listing);
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
    panic!("pagination never ended");
}

fn by_id(mut ids: Vec<PartyId>) -> Vec<PartyId> {
    ids.sort();
    ids
}

fn ids(listings: &[PartyListing]) -> Vec<PartyId> {
    listings.iter().map(|l| l.party_id).collect()
}

// ---- Q-1: request, reply, limits, pagination, cursors ----

#[test]
fn q1_empty_query_lists_every_non_hidden_party_with_its_listing() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let a = create(&mut alice, true, 4, r#"{"mode":"ctf"}"#);
    let b = create(&mut bob, false, 2, "");
    ok(alice.party_create(true, 8, "", true)); // hidden: never listed
    let (parties, cursor) = ok(bob.party_search("", None, None, None));
    assert_eq!(cursor, None);
    let mut expected = vec![
        PartyListing {
            party_id: a,
            open: true,
            max_size: 4,
            member_count: 1,
            label: r#"{"mode":"ctf"}"#.into(),
            version: 1,
        },
        PartyListing { party_id: b, open: false, max_size: 2, member_count: 1, label: String::new(), version: 1 },
    ];
    expected.sort_by_key(|l| l.party_id);
    assert_eq!(parties, expected);
    // Anyone may search, including a session in no party.
    let mut carol = server.connect("carol");
    assert_eq!(search(&mut carol, ""), by_id(vec![a, b]));
    assert_eq!(search(&mut carol, "   "), by_id(vec![a, b]), "a blank query is the empty query");
}

#[test]
fn q1_open_filter_keeps_open_or_closed_parties() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let open1 = create(&mut alice, true, 4, r#"{"m":"x"}"#);
    let open2 = create(&mut alice, true, 4, r#"{"m":"y"}"#);
    let closed = create(&mut alice, false, 4, r#"{"m":"x"}"#);
    let page = |client: &mut Client, query: &str, open| ids(&ok(client.party_search(query, open, None, None)).0);
    assert_eq!(page(&mut alice, "", Some(true)), by_id(vec![open1, open2]));
    assert_eq!(page(&mut alice, "", Some(false)), vec![closed]);
    assert_eq!(page(&mut alice, "label.m:x", Some(true)), vec![open1]);
    assert_eq!(page(&mut alice, "label.m:x", None), by_id(vec![open1, closed]));
    // The built-in field says the same thing inside the query.
    assert_eq!(search(&mut alice, "+open:false"), vec![closed]);
}

#[test]
fn q1_limit_outside_1_to_100_is_bad_input_and_default_page_is_10() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut created = Vec::new();
    for i in 0..12 {
        let client = if i < 6 { &mut alice } else { &mut bob };
        created.push(create(client, true, 2, &format!(r#"{{"i":{i}}}"#)));
    }
    assert_eq!(error(alice.party_search("", None, Some(0), None)).code, ErrorCode::BadInput);
    let too_big = error(alice.party_search("", None, Some(101), None));
    assert_eq!(too_big.code, ErrorCode::BadInput);
    assert!(too_big.message.contains("1..=100"), "{}", too_big.message);
    ok(alice.party_search("", None, Some(100), None));
    let (first, cursor) = ok(alice.party_search("", None, None, None));
    assert_eq!(ids(&first), by_id(created.clone())[..10].to_vec(), "default page of 10, in id order");
    let cursor = cursor.expect("more results exist");
    // Omitting the limit and naming the default are the same search.
    let (rest, end) = ok(alice.party_search("", None, Some(10), Some(&cursor)));
    assert_eq!(ids(&rest), by_id(created)[10..].to_vec());
    assert_eq!(end, None, "no cursor when no more results exist");
}

#[test]
fn q1_pagination_walks_every_result_exactly_once() {
    let server = TestServer::start();
    let mut clients: Vec<Client> = (0..3).map(|i| server.connect(&format!("user{i}"))).collect();
    let mut all = Vec::new();
    let mut tagged = Vec::new();
    for i in 0..37 {
        let label = format!(r#"{{"i":{i},"tag":"{}"}}"#, if i % 3 == 0 { "a" } else { "b" });
        let id = create(&mut clients[i % 3], i % 2 == 0, 4, &label);
        all.push(id);
        if i % 3 == 0 {
            tagged.push(id);
        }
    }
    let me = &mut clients[0];
    for limit in [1, 4, 10, 36, 37, 100] {
        assert_eq!(ids(&walk(me, "", None, limit)), by_id(all.clone()), "limit {limit}");
    }
    assert_eq!(ids(&walk(me, "label.tag:a", None, 3)), by_id(tagged.clone()));
    // Scored results: boosted matches first (in id order), then the rest (in id order).
    let walked = ids(&walk(me, "label.tag:a^4 label.i:>=0", None, 5));
    let rest: Vec<PartyId> = by_id(all.iter().copied().filter(|id| !tagged.contains(id)).collect());
    assert_eq!(walked, [by_id(tagged), rest].concat());
}

#[test]
fn q1_cursor_is_refused_with_other_parameters_and_garbage_cursors_are_invalid() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    for i in 0..5 {
        create(&mut alice, true, 2, &format!(r#"{{"i":{i}}}"#));
    }
    let (_, cursor) = ok(alice.party_search("label.i:>=0", None, Some(2), None));
    let cursor = cursor.expect("more results exist");
    ok(alice.party_search("label.i:>=0", None, Some(2), Some(&cursor)));
    let mismatches = [("label.i:>=1", None, 2), ("label.i:>=0", Some(true), 2), ("label.i:>=0", None, 3)];
    for (query, open, limit) in mismatches {
        let reply = error(alice.party_search(query, open, Some(limit), Some(&cursor)));
        assert_eq!(reply.code, ErrorCode::SearchCursorMismatch, "{query} {open:?} {limit}");
    }
    assert_eq!(error(alice.party_search("", None, Some(2), Some("nonsense"))).code, ErrorCode::SearchCursorInvalid);
    let forged = "A".repeat(cursor.len());
    assert_eq!(
        error(alice.party_search("label.i:>=0", None, Some(2), Some(&forged))).code,
        ErrorCode::SearchCursorInvalid
    );
    let huge = "A".repeat(5000);
    assert_eq!(error(alice.party_search("", None, Some(2), Some(&huge))).code, ErrorCode::SearchCursorInvalid);
    // An empty cursor is no cursor (clients that always send the field get the first page).
    let (first, _) = ok(alice.party_search("label.i:>=0", None, Some(2), Some("")));
    assert_eq!(first, ok(alice.party_search("label.i:>=0", None, Some(2), None)).0);
}

// ---- Q-2: the query language ----

/// Three labelled parties and one without a label, for the query-language tests.
struct Catalog {
    a: PartyId,
    b: PartyId,
    c: PartyId,
    plain: PartyId,
}

fn catalog(client: &mut Client) -> Catalog {
    Catalog {
        a: create(
            client,
            true,
            4,
            r#"{"mode":"ctf","map":{"name":"dust"},"tags":["ranked","eu"],"ranked":true,"skill":1200,"n":"7"}"#,
        ),
        b: create(
            client,
            true,
            8,
            r#"{"mode":"dm","map":{"name":"nuke"},"tags":["casual","eu"],"ranked":false,"skill":800,"n":7}"#,
        ),
        c: create(
            client,
            false,
            8,
            r#"{"mode":"capture the flag","map.name":"dustbowl","tags":["casual","us"],"ranked":false,"skill":1500.5}"#,
        ),
        plain: create(client, true, 2, ""),
    }
}

#[test]
fn q2_fields_nested_objects_arrays_booleans_and_numbers() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let Catalog { a, b, c, plain } = catalog(&mut alice);
    let cases: Vec<(&str, Vec<PartyId>)> = vec![
        ("label.mode:ctf", vec![a]),
        ("label.mode:CTF", vec![] /* keywords are case-sensitive */),
        ("label.map.name:dust", vec![a]),
        // {"map.name": ...} and {"map": {"name": ...}} are the same field.
        ("label.map.name:dustbowl", vec![c]),
        ("label.tags:eu", by_id(vec![a, b])),
        ("label.tags:casual", by_id(vec![b, c])),
        ("label.ranked:true", vec![a]),
        ("label.ranked:false", by_id(vec![b, c])),
        ("label.skill:>=1200", by_id(vec![a, c])),
        ("label.skill:>1200", vec![c]),
        ("label.skill:<1000", vec![b]),
        ("label.skill:<=800", vec![b]),
        ("label.skill:1500.5", vec![c]),
        ("label.skill:800.0", vec![b]),
        // A string that looks like a number stays a keyword; a number also matches its text.
        ("label.n:7", by_id(vec![a, b])),
        ("label.n:>5", vec![b]),
        ("label.missing:x", vec![]),
        // Bare terms match any label field (keyword or number), never the built-in fields.
        ("eu", by_id(vec![a, b])),
        ("1200", vec![a]),
        ("true", vec![a]),
        // Built-in fields.
        ("max_size:8", by_id(vec![b, c])),
        ("+max_size:<=4", by_id(vec![a, plain])),
        ("+open:true", by_id(vec![a, b, plain])),
        ("member_count:1", by_id(vec![a, b, c, plain])),
    ];
    for (query, expected) in cases {
        assert_eq!(search(&mut alice, query), expected, "{query}");
    }
}

#[test]
fn q2_must_must_not_should_phrases_wildcards_and_escapes() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let Catalog { a, b, c, plain } = catalog(&mut alice);
    let cases: Vec<(&str, Vec<PartyId>)> = vec![
        ("+label.tags:eu -label.mode:dm", vec![a]),
        ("+label.tags:casual +label.tags:us", vec![c]),
        ("-label.tags:eu", by_id(vec![c, plain]) /* only must-not: everything not excluded */),
        ("label.mode:dm label.mode:ctf", by_id(vec![a, b])),
        ("label.mode:dm label.mode:ctf -label.tags:ranked", vec![b]),
        ("+label.tags:eu label.mode:nothing", by_id(vec![a, b]) /* with a must, shoulds are optional */),
        (r#"label.mode:"capture the flag""#, vec![c]),
        (r#"label.mode:"capture""#, vec![]),
        (r"label.mode:capture\ the\ flag", vec![c]),
        ("label.map.name:dust*", by_id(vec![a, c])),
        ("label.map.name:d?st", vec![a]),
        ("label.map.name:*", by_id(vec![a, b, c])),
        ("label.tags:?u", by_id(vec![a, b])),
        ("label.mode:*flag", vec![c]),
    ];
    for (query, expected) in cases {
        assert_eq!(search(&mut alice, query), expected, "{query}");
    }
}

#[test]
fn q2_boosts_reorder_results_by_score_then_id() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let Catalog { a, b, c, .. } = catalog(&mut alice);
    let cases: Vec<(&str, Vec<PartyId>)> = vec![
        // Unboosted: A and B score 1, C scores 1: id order.
        ("label.tags:eu label.tags:us", by_id(vec![a, b, c])),
        // C scores 5, A and B 1 (in id order after it).
        ("label.tags:us^5 label.tags:eu", [vec![c], by_id(vec![a, b])].concat()),
        // A: 1 + 3 = 4, C: 3, B: 1.
        ("label.tags:eu label.skill:>1000^3", vec![a, c, b]),
        // A: 5 + 1 = 6, B: 5, C: 1.
        ("label.tags:eu^5 label.skill:>1000", vec![a, b, c]),
        // B: 0.5 + 2 = 2.5 (must + should), A: 0.5 + 1 + 0.5 = 2, C: 0.5; no skill, no match.
        ("+label.skill:>0^0.5 label.mode:dm^2 label.ranked:true^1 label.tags:ranked^0.5", vec![b, a, c]),
    ];
    for (query, expected) in cases {
        assert_eq!(search(&mut alice, query), expected, "{query}");
    }
}

#[test]
fn q2_malformed_query_is_refused_with_what_and_where() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    create(&mut alice, true, 4, r#"{"a":1}"#);
    let cases = [
        ("label.mode:", "missing value after ':' at byte 11"),
        ("+", "at byte 0"),
        ("label.a:1 -", "at byte 10"),
        (r#"label.mode:"open"#, "unterminated quoted phrase at byte 11"),
        ("mode:ctf", "unknown field 'mode'"),
        ("open:maybe", "field 'open' expects"),
        ("label.a:>x", "expected a number at byte 9"),
        ("label.a:1^", "boost"),
        ("label.a:1~2", "not supported"),
    ];
    for (query, expected) in cases {
        let reply = error(alice.party_search(query, None, None, None));
        assert_eq!(reply.code, ErrorCode::SearchQueryInvalid, "{query}: {}", reply.message);
        assert!(reply.message.contains(expected), "{query}: {:?} lacks {expected:?}", reply.message);
    }
    // Length and breadth are limits, not syntax.
    let long = "a ".repeat(600);
    assert_eq!(error(alice.party_search(&long, None, None, None)).code, ErrorCode::LimitExceeded);
    let many_terms = "a ".repeat(65);
    let reply = error(alice.party_search(&many_terms, None, None, None));
    assert_eq!(reply.code, ErrorCode::SearchQueryInvalid);
    assert!(reply.message.contains("more than 64 terms at byte 128"), "{}", reply.message);
}

#[test]
fn q2_too_broad_wildcard_is_refused_not_capped() {
    let limits = Limits { search_wildcard_expansion_max: 3, search_wildcard_scan_max: 6, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let mut alice = server.connect("alice");
    let mut parties = Vec::new();
    for name in ["aa", "ab", "ac", "ad", "ba"] {
        parties.push(create(&mut alice, true, 2, &format!(r#"{{"name":"{name}"}}"#)));
    }
    let reply = error(alice.party_search("label.name:a*", None, None, None));
    assert_eq!(reply.code, ErrorCode::SearchQueryTooBroad);
    assert!(reply.message.contains("byte 0"), "{}", reply.message);
    assert_eq!(search(&mut alice, "label.name:b*"), vec![parties[4]]);
    // `a?` inspects few values but expands to four, one more than allowed.
    assert_eq!(error(alice.party_search("label.name:a?", None, None, None)).code, ErrorCode::SearchQueryTooBroad);
    assert_eq!(search(&mut alice, "label.name:a"), vec![], "exact terms are never too broad");
}

// ---- Q-3: the very next search sees every change ----

#[test]
fn q3_create_update_close_are_visible_to_the_very_next_search() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let party = create(&mut alice, true, 4, r#"{"mode":"ctf"}"#);
    assert_eq!(search(&mut bob, "label.mode:ctf"), vec![party], "created: visible at once, to anyone");

    ok(alice.party_update(party, None, None, Some(r#"{"mode":"dm"}"#)));
    assert_eq!(search(&mut bob, "label.mode:ctf"), vec![]);
    assert_eq!(search(&mut bob, "label.mode:dm"), vec![party]);

    ok(alice.party_update(party, Some(false), None, None));
    assert_eq!(ids(&ok(bob.party_search("", Some(true), None, None)).0), vec![]);
    assert_eq!(ids(&ok(bob.party_search("label.mode:dm", Some(false), None, None)).0), vec![party]);

    // Hidden parties never appear, whatever the query; unhiding brings the party back.
    ok(alice.party_update(party, None, Some(true), Some("")));
    for query in ["", "open:false", "max_size:4", "-label.mode:x"] {
        assert_eq!(search(&mut bob, query), vec![], "{query}");
    }
    ok(alice.party_update(party, Some(true), Some(false), Some(r#"{"mode":"koth"}"#)));
    assert_eq!(search(&mut bob, "label.mode:koth +open:true"), vec![party]);

    // A refused update changes nothing in the index either.
    error(alice.party_update(party, None, None, Some("[1]")));
    assert_eq!(search(&mut bob, "label.mode:koth"), vec![party]);

    ok(alice.party_update(party, None, None, Some("")));
    assert_eq!(search(&mut bob, "label.mode:koth"), vec![]);
    assert_eq!(search(&mut bob, ""), vec![party], "a cleared label is still listed");

    ok(alice.party_close(party));
    assert_eq!(search(&mut bob, ""), vec![], "closed: gone at once");
}

#[test]
fn q3_member_count_follows_join_accept_leave_kick_and_disconnect() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let mut dave = server.connect("dave");
    let party = create(&mut alice, true, 3, r#"{"m":1}"#);
    let count = |client: &mut Client| -> Vec<u16> {
        ok(client.party_search("", None, None, None)).0.iter().map(|l| l.member_count).collect()
    };
    bob.party_join(party).unwrap().unwrap();
    assert_eq!(count(&mut dave), vec![2]);
    assert_eq!(search(&mut dave, "+member_count:2 +label.m:1"), vec![party]);
    carol.party_join(party).unwrap().unwrap();
    assert_eq!(search(&mut dave, "+member_count:>=3"), vec![party], "full");
    ok(carol.party_leave(party));
    assert_eq!(count(&mut dave), vec![2]);
    ok(alice.party_remove(party, bob.presence()));
    assert_eq!(count(&mut dave), vec![1]);

    // Accepting a request into a closed party.
    ok(alice.party_update(party, Some(false), None, None));
    bob.party_join(party).unwrap().unwrap();
    assert_eq!(count(&mut dave), vec![1], "a pending request is not a member");
    ok(alice.party_accept(party, bob.presence()));
    assert_eq!(count(&mut dave), vec![2]);

    // A disconnect is processed when the server notices the closed socket: wait for it.
    bob.close();
    let deadline = Instant::now() + WAIT;
    while count(&mut dave) != vec![1] {
        assert!(Instant::now() < deadline, "bob's disconnect never reached the index");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The last member leaving removes the party from the index.
    ok(alice.party_leave(party));
    assert_eq!(search(&mut dave, ""), vec![]);
}

// ---- Q-4: an index, not a scan ----

#[test]
fn q4_selective_and_broad_queries_over_many_parties_are_exact() {
    let limits = Limits { parties_per_session_max: 400, ..Limits::default() };
    let server = TestServer::with_limits(limits);
    let mut alice = server.connect("alice");
    let mut parties = Vec::new();
    for i in 0..300 {
        let label = format!(r#"{{"i":{i},"region":"{}","tier":"t{}"}}"#, ["eu", "us", "ap"][i % 3], i % 10);
        parties.push(create(&mut alice, i % 4 != 0, 8, &label));
    }
    assert_eq!(search(&mut alice, "label.i:42"), vec![parties[42]]);
    let range: Vec<PartyId> = (290..300).map(|i| parties[i]).collect();
    assert_eq!(search(&mut alice, "+label.i:>=290"), by_id(range));
    let selective: Vec<PartyId> = (0..300).filter(|i| i % 30 == 7).map(|i| parties[i]).collect();
    assert_eq!(search(&mut alice, "+label.region:us +label.tier:t7"), by_id(selective));
    let broad: Vec<PartyId> = (0..300).filter(|i| i % 3 == 0 && i % 4 != 0).map(|i| parties[i]).collect();
    assert_eq!(ids(&walk(&mut alice, "+label.region:eu", Some(true), 100)), by_id(broad));
    assert_eq!(walk(&mut alice, "", None, 100).len(), 300);
}
