//! End-to-end tests of party history (SPEC O-3) over real loopback sockets: game clients live
//! through parties on a server started with a history file in a scratch folder, and the test
//! reads what an operator would, the file's JSON lines and `GET /v1/history`. A history line for
//! a party that went through joins, a promotion and a close has every field right; each end
//! reason is recorded (`closed`, `closed_by_admin`, `empty`, and `shutdown` for parties alive at
//! a graceful shutdown); queries filter by party, by user and by a time range that overlaps the
//! party's life, and page with a cursor; a history file in an unwritable place is counted in
//! `/metrics` while the loop and the game sessions carry on. (SIGHUP rotation needs a process of
//! its own: `tests/cli.rs`.) Waits are deadlines on the file or on responses, never sleeps.

#[path = "common/admin_http.rs"]
mod admin_http;
mod common;

use admin_http::*;
use common::*;
use huddle::client::Client;
use huddle::core::{PartyId, Presence, Reply, Request};
use huddle::limits::Limits;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn create(client: &mut Client, max_size: u32) -> PartyId {
    ok(client.party_create(true, max_size, "", false)).party_id
}

/// A scratch folder of this test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("huddle-history-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("history.jsonl")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The file's lines, each parsed as JSON.
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
}

/// Waits until the file holds `n` lines (the loop writes at the end of the turn that ended the
/// party, just after it answered the request that ended it).
fn wait_lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = lines(path);
        if lines.len() >= n {
            assert_eq!(lines.len(), n, "more lines than expected: {lines:?}");
            return lines;
        }
        assert!(Instant::now() < deadline, "waited for {n} lines, have {lines:?}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn presence_of(entry: &Value) -> (String, String, String) {
    let field = |name: &str| entry[name].as_str().unwrap_or_else(|| panic!("{name} in {entry}")).to_owned();
    (field("user_id"), field("session_id"), field("username"))
}

fn triple(presence: &Presence) -> (String, String, String) {
    (
        presence.user_id.as_str().to_owned(),
        presence.session_id.to_wire().to_string(),
        presence.username.as_str().to_owned(),
    )
}

fn history(http: &mut Http, query: &str) -> Value {
    let response = http.request("GET", &format!("/v1/history{query}"), GOOD, None);
    assert_eq!(response.status, 200, "{query}: {}", response.text());
    response.json()
}

fn party_ids(page: &Value) -> Vec<String> {
    page["records"].as_array().unwrap().iter().map(|r| r["party_id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_party_through_joins_a_promotion_and_a_close_leaves_one_line_with_its_story() {
    let dir = TempDir::new("story");
    let server = TestServer::with_admin_and_history(Limits::default(), &dir.file());
    let mut http = Http::connect(&server);
    let (mut alice, mut bob, mut carol) = (server.connect("alice"), server.connect("bob"), server.connect("carol"));
    let started_ms = unix_now() * 1000;
    let party = create(&mut alice, 4);
    ok(bob.party_join(party));
    ok(carol.party_join(party));
    ok(alice.party_promote(party, bob.presence()));
    ok(carol.party_leave(party));
    assert!(lines(&dir.file()).is_empty(), "nothing is written while the party lives");
    ok(bob.party_close(party));

    let [line] = wait_lines(&dir.file(), 1).try_into().unwrap();
    assert_eq!(line["party_id"].as_str(), Some(party.to_string().as_str()));
    assert_eq!((line["max_size"].as_u64(), line["end_reason"].as_str()), (Some(4), Some("closed")));
    assert_eq!(line["truncated"], false);
    assert!(line.get("code").is_none() && line.get("name").is_none(), "absent until the lobby features land");
    let (created, ended) = (line["created_at_ms"].as_u64().unwrap(), line["ended_at_ms"].as_u64().unwrap());
    assert!(started_ms <= created + 1000 && created <= ended && ended <= (unix_now() + 1) * 1000, "{line}");

    let leaders: Vec<_> = line["leaders"].as_array().unwrap().iter().map(presence_of).collect();
    assert_eq!(leaders, [triple(alice.presence()), triple(bob.presence())]);
    let since: Vec<u64> = line["leaders"].as_array().unwrap().iter().map(|l| l["since_ms"].as_u64().unwrap()).collect();
    assert!(since[0] == created && since[1] >= since[0] && since[1] <= ended, "{since:?}");

    let members = line["members"].as_array().unwrap();
    let who: Vec<_> = members.iter().map(presence_of).collect();
    assert_eq!(who, [triple(alice.presence()), triple(bob.presence()), triple(carol.presence())], "join order");
    let times: Vec<(u64, u64)> =
        members.iter().map(|m| (m["joined_at_ms"].as_u64().unwrap(), m["left_at_ms"].as_u64().unwrap())).collect();
    assert_eq!(times[0].0, created, "the creator joined when the party was created");
    assert!(times.windows(2).all(|w| w[0].0 <= w[1].0), "joins in order: {times:?}");
    assert!(times.iter().all(|(joined, left)| joined <= left && *left <= ended), "{times:?}");
    assert_eq!((times[0].1, times[1].1), (ended, ended), "members at the close leave with it");
    assert!(times[2].1 <= times[0].1, "carol left before the close: {times:?}");

    // The API lists the very same record.
    let page = history(&mut http, &format!("?party_id={party}"));
    assert_eq!(page["records"], serde_json::json!([line]));
}

#[test]
fn every_end_is_recorded_with_its_reason_and_a_shutdown_records_the_parties_still_alive() {
    let dir = TempDir::new("reasons");
    // The clients never answer the shutdown's close frames: the drain ends at its deadline.
    let limits = Limits { shutdown_drain_ms: 100, ..Limits::default() };
    let server = TestServer::with_admin_and_history(limits, &dir.file());
    let mut http = Http::connect(&server);
    let (mut alice, mut bob) = (server.connect("alice"), server.connect("bob"));
    let emptied = create(&mut alice, 2);
    ok(alice.party_leave(emptied));
    let by_admin = create(&mut bob, 2);
    assert_eq!(http.request("DELETE", &format!("/v1/parties/{by_admin}"), GOOD, None).status, 200);
    let kicked_out = create(&mut bob, 2);
    assert_eq!(http.request("DELETE", &format!("/v1/parties/{kicked_out}/members/bob"), GOOD, None).status, 200);
    let reasons: Vec<(String, String)> = wait_lines(&dir.file(), 3)
        .iter()
        .map(|l| (l["party_id"].as_str().unwrap().to_owned(), l["end_reason"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        reasons,
        [
            (emptied.to_string(), "empty".to_owned()),
            (by_admin.to_string(), "closed_by_admin".to_owned()),
            (kicked_out.to_string(), "empty".to_owned()),
        ]
    );

    let alive = [create(&mut alice, 4), create(&mut bob, 4)];
    ok(bob.party_join(alive[0]));
    drop(http);
    server.stop().expect("a clean shutdown");
    let lines = wait_lines(&dir.file(), 5);
    for (line, party) in lines[3..].iter().zip(alive) {
        assert_eq!(line["party_id"].as_str(), Some(party.to_string().as_str()));
        assert_eq!(line["end_reason"].as_str(), Some("shutdown"));
        let ended = line["ended_at_ms"].as_u64().unwrap();
        let members = line["members"].as_array().unwrap();
        assert!(members.iter().all(|m| m["left_at_ms"].as_u64() == Some(ended)), "{line}");
    }
    assert_eq!(lines[3]["members"].as_array().unwrap().len(), 2, "the drain did not record the leaves again");
}

#[test]
fn history_queries_filter_by_party_user_and_overlapping_time_and_page_with_a_cursor() {
    let server = TestServer::with_admin(Limits::default());
    let mut http = Http::connect(&server);
    // alice, bob, carol.
    let mut clients = [server.connect("alice"), server.connect("bob"), server.connect("carol")];
    let mut parties = Vec::new();
    for (leader, guest) in [(0, Some(1)), (1, None), (2, Some(0)), (2, None)] {
        let party = create(&mut clients[leader], 4);
        if let Some(guest) = guest {
            ok(clients[guest].party_join(party));
        }
        ok(clients[leader].party_close(party));
        parties.push(party.to_string());
    }
    let newest_first: Vec<String> = parties.iter().rev().cloned().collect();
    assert_eq!(party_ids(&history(&mut http, "")), newest_first);
    assert_eq!(party_ids(&history(&mut http, &format!("?party_id={}", parties[1]))), [parties[1].clone()]);
    // Nakama's form of a party id is taken too.
    let nakama = huddle::wire::nakama::NakamaPartyId(huddle::wire::nakama::parse_party_id(&parties[1]).unwrap());
    assert_eq!(party_ids(&history(&mut http, &format!("?party_id={nakama}"))), [parties[1].clone()]);
    // alice led the first party and was a guest in the third.
    assert_eq!(party_ids(&history(&mut http, "?user_id=alice")), [parties[2].clone(), parties[0].clone()]);
    assert_eq!(party_ids(&history(&mut http, "?user_id=bob")), [parties[1].clone(), parties[0].clone()]);
    assert_eq!(party_ids(&history(&mut http, "?user_id=nobody")), Vec::<String>::new());

    // A range overlaps a party's life [created, ended] when it starts before the end and ends
    // after the start; each record is checked against its own times.
    let all = history(&mut http, "");
    for record in all["records"].as_array().unwrap() {
        let id = record["party_id"].as_str().unwrap().to_owned();
        let (created, ended) = (record["created_at_ms"].as_u64().unwrap(), record["ended_at_ms"].as_u64().unwrap());
        let found = |http: &mut Http, query: String| party_ids(&history(http, &query)).contains(&id);
        assert!(found(&mut http, format!("?since={created}&until={created}")), "the start overlaps");
        assert!(found(&mut http, format!("?since={ended}&until={}", ended + 10_000)), "the end overlaps");
        assert!(found(&mut http, format!("?since={}&until={}", created.saturating_sub(1), ended + 1)));
        assert!(!found(&mut http, format!("?since={}", ended + 1)), "ended before the range");
        assert!(!found(&mut http, format!("?until={}", created - 1)), "created after the range");
        assert!(found(&mut http, format!("?user_id=carol&since={created}")) == (id == parties[2] || id == parties[3]));
    }

    // Pages of two, newest first, then the rest through the cursor.
    let first = history(&mut http, "?limit=2");
    assert_eq!(party_ids(&first), newest_first[..2]);
    let cursor = first["next_cursor"].as_str().expect("more records").to_owned();
    let second = history(&mut http, &format!("?limit=2&cursor={cursor}"));
    assert_eq!(party_ids(&second), newest_first[2..]);
    assert!(second.get("next_cursor").is_none(), "the last page: {second}");

    for (query, field) in [
        ("?since=5&until=4", "until:"),
        ("?limit=0", "limit:"),
        ("?party_id=xyz", "party_id:"),
        ("?user=alice", "user: unknown parameter"),
        ("?since=yesterday", "since:"),
        ("?cursor=0", "cursor:"),
    ] {
        let response = http.request("GET", &format!("/v1/history{query}"), GOOD, None);
        assert_eq!(response.status, 400, "{query}: {}", response.text());
        assert!(response.json()["message"].as_str().unwrap().starts_with(field), "{query}: {}", response.text());
    }
}

#[test]
fn an_unwritable_history_file_is_counted_while_the_loop_and_game_sessions_carry_on() {
    let dir = TempDir::new("unwritable");
    // A path under a regular file: no process, root included, can create it.
    let blocker = dir.0.join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let server = TestServer::with_admin_and_history(Limits::default(), &blocker.join("history.jsonl"));
    let mut http = Http::connect(&server);
    let (mut alice, mut bob) = (server.connect("alice"), server.connect("bob"));
    let party = create(&mut alice, 2);
    ok(bob.party_join(party));
    ok(alice.party_close(party));

    let deadline = Instant::now() + WAIT;
    loop {
        let scrape = scrape(&mut http);
        if sample(&scrape, "huddle_history_write_errors_total", &[]) >= 1.0 {
            assert_eq!(sample(&scrape, "huddle_history_records_total", &[]), 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "the failed write was never counted");
    }
    // The loop serves on: game requests, new parties, and the record stays queryable.
    assert_eq!(alice.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    let next = create(&mut bob, 2);
    ok(alice.party_join(next));
    assert_eq!(party_ids(&history(&mut http, "")), [party.to_string()]);
    assert_eq!(http.request("GET", "/healthz", None, None).status, 200);
}
