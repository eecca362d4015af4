//! huddle: a real-time party and presence server for games.
//!
//! # Layers
//!
//! ```text
//! socket bytes ──► net (mio loop, connections, outbound queues) ──► wire (verify + decode)
//!                                                                     │ Request + Cid
//!                                                                     ▼
//!                                        core (sans-IO: sessions, parties, statuses)
//!                                                                     │ Output { Reply | Event | Close }
//! socket bytes ◄── net (frame once, queue per recipient) ◄──────── wire (encode once)
//! ```
//!
//! - [`core`] owns every domain rule and all domain state. It never touches a socket, a clock or
//!   FlatBuffers bytes: the driver passes `(session, cid, request, now)` and executes the
//!   [`core::Output`]s it gets back, in order. Every feature handler has one contract: it gets
//!   the requester, its request and one context (`core/context.rs`: limits, clocks, the session
//!   table, the id generator, an event sink) and returns its reply or a `CoreError`; the core
//!   reserved the reply's place in the outbox first (`core/outbox.rs`), so the reply precedes
//!   the request's events by construction. Who owns which rule:
//!   - `core/session.rs`: connected sessions, user → sessions, username → users;
//!   - `core/party/`: parties, a file per sub-state: `table.rs` (the tables, every mutation,
//!     the sweep), `changes.rs` (the per-request change list that alone keeps the search index
//!     in step, and where versions, snapshots and history will hang), `membership.rs` (P-2
//!     open join, P-4 … P-8, P-11, C-6), `requests.rs` (P-2 closed, P-3), `settings.rs` (P-1,
//!     P-10), `data.rs` (P-9, the hot path), `search.rs` (Q-1 … Q-4 through `core/search/`,
//!     the label query language and inverted index);
//!   - `core/status.rs`: statuses and follows (S-1 … S-3, C-3);
//!   - `core/timers.rs`: deadlines fired by `handle_timeout`; `core/error.rs`: `CoreError` and
//!     the codec-neutral `ErrorCode`; `core/ids.rs`: identities (with their byte bounds) and time.
//! - [`wire`] is the only module that knows the schema (`schema/huddle.fbs`): verify-with-bounds
//!   decode of client frames, one reusable encoder, client-side decoding, and the single mapping of
//!   every error enum to a wire code (`wire/errors.rs`).
//! - [`net`] is the mio driver: one `Poll` on one thread, a `Slab` of connections with a
//!   generation per slot, the HTTP upgrade with authentication ([`auth`]), tungstenite framing
//!   over the connection's own buffers, byte-counted outbound queues flushed with `writev`,
//!   request rate limits, keepalive, slow-consumer cut-off and graceful shutdown. It decides
//!   nothing about parties or statuses.
//! - [`limits`] holds every bound in one struct; [`client`] is a blocking client for tests,
//!   examples and tools; [`load`] is the `huddle-load` harness (its own mio client loop);
//!   [`sim`] (the one simulation of the whole core, whose grammar the `core_ops` fuzz target
//!   shares) and [`fuzzing`] (the other fuzz entry points) are what `tests/` and `fuzz/` drive.
//!
//! # Driver contract
//!
//! The driver calls [`core::Core::connect`] once a session's upgrade completes,
//! [`core::Core::handle_request`] for every decoded request (the core appends exactly one reply,
//! before any event that request caused; party data sent without a cid, SPEC P-9, gets none, and
//! a refusal of it comes as an event) and [`core::Core::disconnect`] exactly once when the
//! connection ends for any reason, each with the turn's clocks ([`core::Now`]). It sleeps no
//! later than the earliest of its own deadlines and [`core::Core::poll_timeout`], then calls
//! [`core::Core::handle_timeout`]. Outputs are executed in order; an event is encoded and framed
//! once and the same bytes are queued for each recipient.
pub mod auth;
pub mod client;
pub mod core;
pub mod fuzzing;
pub mod limits;
pub mod load;
pub mod net;
pub mod sim;
pub mod wire;
