//! The deterministic simulation of the whole core (`huddle::sim`; its module docs list every
//! check): parties, party search, statuses and follows and core timers in one shared world,
//! seeded random operations from one grammar over dozens of sessions (several per user, some
//! users sharing a username), small randomized limits and operation weights per seed, time
//! advancing step by step, and after every step the core's own invariant sweep plus the
//! harness's checks: one reply first per request (none for party data without a cid), refusals
//! change nothing anywhere, no event reaches a non-member or a disconnected session, party data
//! reaches every other member once, searches agree with a brute-force evaluation, a model
//! predicts every status output exactly, timers fire when and in the order the model says, the
//! lobby's models (invitations, codes, versions; friends and blocks deciding who may join, custom
//! data, chat, attributes, names) predict their outcomes and events, and disconnecting everyone
//! leaves empty tables.
//!
//! `cargo test` runs `SEEDS` seeds × `STEPS` steps (a few seconds). Replay one seed with
//! `HUDDLE_SIM_SEED=<n> cargo test --test sim -- --nocapture` (optionally `HUDDLE_SIM_STEPS`).
//! Canaries prove that the invariant sweep catches a planted corruption of the party index,
//! the search index, the follow index, the session table, the invitation index, the code
//! index and the social table, and that the simulation's version check catches a version moved
//! without a change.

use huddle::sim::{run, run_counting, Sim, Stats};

const SEEDS: u64 = 120;
const STEPS: usize = 1_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be an integer")))
}

#[test]
fn simulation_keeps_every_invariant_over_many_seeds() {
    let steps = env_u64("HUDDLE_SIM_STEPS").map_or(STEPS, |s| s as usize);
    if let Some(seed) = env_u64("HUDDLE_SIM_SEED") {
        let stats = run(seed, steps);
        eprintln!("seed {seed}: {stats:?}");
        return;
    }
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    for seed in 0..SEEDS {
        total = run_counting(seed, steps, total);
    }
    eprintln!("{SEEDS} seeds x {steps} steps in {:?}: {total:?}", started.elapsed());
    // The workload must exercise both paths of every feature, or the checks above prove little.
    assert!(total.refused > total.requests / 20, "too few refused requests: {total:?}");
    assert!(total.requests - total.refused > total.requests / 4, "too few successful requests: {total:?}");
    assert!(total.deliveries > total.events, "events reached several recipients: {total:?}");
    // Searches ran, returned parties, and were refused for each reason the workload provokes.
    // (About one party per search: the lobby's one party per user and admin closes keep fewer
    // parties alive than parties alone did, and the budgets refuse some searches.)
    assert!(total.search_results > total.searches / 3, "searches returned parties: {total:?}");
    for error in [
        "SearchQueryInvalid",
        "SearchCursorMismatch",
        "SearchQueryTooBroad",
        "SearchQueryTooCostly",
        "SearchBudgetExhausted",
        "LabelTooComplex",
        "SearchIndexFull",
    ] {
        assert!(total.errors.get(error).is_some_and(|n| *n > 0), "no {error}: {total:?}");
    }
    // Statuses and follows.
    assert!(total.status_events > 1000, "too few status events: {total:?}");
    assert!(total.status_rejected > 100, "too few rejected status requests: {total:?}");
    assert!(total.follows > 1000, "too few follows: {total:?}");
    // Fire-and-forget party data, accepted and refused; timers fired.
    assert!(total.data_without_cid_refused > 0, "no refused fire-and-forget data: {total:?}");
    assert!(total.data_without_cid > 2 * total.data_without_cid_refused, "too little accepted fire-and-forget data");
    assert!(total.probes_fired > 1000, "too few timers fired: {total:?}");
    // The lobby: every way an invitation ends, moves, codes and their guard, snapshots.
    let lobby = &total.lobby;
    for (what, count, least) in [
        ("invitations", lobby.invites, 500),
        ("refreshes", lobby.refreshes, 5),
        ("accepted invitations", lobby.accepted, 20),
        ("rejected invitations", lobby.rejected, 20),
        ("cancelled invitations", lobby.cancelled, 20),
        ("expired invitations", lobby.expired, 100),
        ("invitations ended with their party", lobby.party_gone, 20),
        ("invitations told on connect", lobby.told_on_connect, 20),
        ("moves (one party per user)", lobby.moves, 5),
        ("code joins", lobby.code_joins, 100),
        ("code misses", lobby.code_misses, 100),
        ("code guard refusals", lobby.code_guard_refusals, 20),
        ("snapshot events", lobby.snapshots, 1000),
    ] {
        assert!(count >= least, "too few {what} ({count}): {total:?}");
    }
    for error in [
        "PartyAlreadyInParty",
        "PartyJoinNotAllowed",
        "PartyNotInvited",
        "InviteeIsSelf",
        "InviteeInvalid",
        "InviteeInParty",
        "InvitationNotFound",
        "PartyCodeNotFound",
        "InvitationCancelNotAllowed",
        "PartyJoinBlocked",
        "PartyNotFriendOfLeader",
        "PartyNotFriendOfMembers",
        "InviteeBlocked",
        "PartyChatDisabled",
        "PartyNameDenied",
    ] {
        assert!(total.errors.get(error).is_some_and(|n| *n > 0), "no {error}: {total:?}");
    }
    // Lobby II: social writes (some refused), who may join by friends and blocks, custom data,
    // chat (its rate limit, and times held against a wall clock that went back), attributes
    // (some out of order), names (some denied).
    // The rarest (a window overrun, a clock jump between two messages) need only happen: the
    // core's checks on them run at every step either way.
    let lobby2 = &total.lobby2;
    for (what, count, least) in [
        ("social writes", lobby2.social_writes, 1000),
        ("refused social writes", lobby2.social_refused, 300),
        ("joins refused by a block", lobby2.joins_blocked, 50),
        ("joins refused by a friend strategy", lobby2.joins_not_friend, 30),
        ("joins let in as a friend", lobby2.joins_as_friend, 10),
        ("custom data writes", lobby2.custom_data_set, 500),
        ("chat messages", lobby2.chat_sent, 250),
        ("chat messages over the rate", lobby2.chat_rate_limited, 2),
        ("chat times held against the clock", lobby2.chat_time_held, 1),
        ("attribute writes", lobby2.attributes_written, 400),
        ("stale attribute writes", lobby2.attributes_stale, 8),
        ("names set", lobby2.names_set, 200),
        ("names denied", lobby2.names_denied, 300),
    ] {
        assert!(count >= least, "too few {what} ({count}): {total:?}");
    }
    // Operators closed and kicked; parties ended and were recorded, some past their bound.
    assert!(total.admin_closes > 100 && total.admin_kicks > 100, "too little moderation: {total:?}");
    assert!(total.history_records > 1000, "too few history records: {total:?}");
    assert!(total.history_truncated > 0, "no history record was ever truncated: {total:?}");
}

#[test]
fn same_seed_same_outcome() {
    let a = run(7, 300);
    let b = run(7, 300);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

/// Runs `sim` until `plant` succeeds (it returns whether there was something to corrupt),
/// then requires the full sweep to notice. The sweep is called directly, so the canaries also
/// work in release builds.
fn canary(seed: u64, what: &str, mut plant: impl FnMut(&mut Sim) -> bool) {
    let mut sim = Sim::new(seed);
    let mut planted = false;
    for _ in 0..2_000 {
        sim.step();
        planted = plant(&mut sim);
        if planted {
            break;
        }
    }
    assert!(planted, "the simulation never had a {what} to corrupt");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.core.assert_invariants()));
    assert!(caught.is_err(), "a corrupted {what} went unnoticed");
}

#[test]
fn canary_the_invariant_sweep_catches_a_corrupted_index() {
    canary(1, "party index", |sim| sim.core.debug_party_table_sizes().0 > 0 && sim.core.debug_corrupt_party_index());
}

#[test]
fn canary_the_invariant_sweep_catches_a_search_index_out_of_step() {
    canary(2, "search index", |sim| sim.core.debug_corrupt_search_index());
}

#[test]
fn canary_a_corrupted_follow_index_is_caught() {
    canary(3, "follow index", |sim| {
        let ready = sim.has_follows();
        if ready {
            sim.core.corrupt_status_index_for_test();
        }
        ready
    });
}

#[test]
fn canary_a_corrupted_session_table_is_caught() {
    canary(4, "session table", |sim| sim.core.debug_corrupt_session_index());
}

#[test]
fn canary_a_corrupted_invitation_index_is_caught() {
    canary(5, "invitation index", |sim| sim.core.debug_corrupt_invitation_index());
}

#[test]
fn canary_a_party_code_filed_twice_is_caught() {
    canary(6, "code index", |sim| sim.core.debug_corrupt_code_index());
}

#[test]
fn canary_a_social_list_naming_its_own_user_is_caught() {
    canary(8, "social table", |sim| sim.core.debug_corrupt_social_table());
}

/// The version invariant (1 + the steps that changed a party) is the simulation's, not the
/// core's (the core keeps no history): a version moved without a change must fail the next
/// step's check.
#[test]
fn canary_a_version_moved_without_a_change_fails_the_next_step() {
    let mut sim = Sim::new(7);
    // The next step may end the corrupted party (then nothing is left to check): corrupt again.
    for _ in 0..50 {
        for _ in 0..2_000 {
            sim.step();
            if sim.core.party_count() >= 3 {
                break;
            }
        }
        let corrupted = sim.core.debug_party_ids()[0];
        assert!(sim.core.debug_corrupt_party_version(), "the simulation never had a party");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step()));
        match caught {
            Err(message) => {
                let text = message.downcast_ref::<String>().map(String::as_str).unwrap_or_default();
                assert!(text.contains("version"), "caught for another reason: {text}");
                return;
            }
            Ok(()) => {
                assert!(sim.core.debug_party(corrupted).is_none(), "a version moved without a change went unnoticed")
            }
        }
    }
    panic!("the corrupted party always ended in the next step");
}
