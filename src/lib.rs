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
//!     versions moved as changes are recorded, the sweep), `changes.rs` (the per-request change
//!     list whose commit alone keeps the search index in step, ends the invitations a join or a
//!     party's end takes along, and sends snapshot events; history will hang there too),
//!     `membership.rs` (P-2 join with strategies and one party per user, P-4 … P-8, P-11, C-6),
//!     `requests.rs` (P-2 closed, P-3), `settings.rs` (P-1, P-10, strategies), `data.rs` (P-9,
//!     the hot path), `search.rs` (Q-1 … Q-4 through `core/search/`, the label query language
//!     and inverted index), and the lobby extensions: `lobby.rs` (their vocabulary and
//!     huddle-only events), `invites.rs` (L-2 invitations, expiring through the core's timers),
//!     `codes.rs` (L-3 party codes and the guessing guard);
//!   - `core/status.rs`: statuses and follows (S-1 … S-3, C-3);
//!   - `core/timers.rs`: deadlines fired by `handle_timeout`; `core/error.rs`: `CoreError` and
//!     the codec-neutral `ErrorCode`; `core/ids.rs`: identities (with their byte bounds) and time.
//! - [`wire`] is the only module that knows the schema (`schema/huddle.fbs`): verify-with-bounds
//!   decode of client frames, one reusable encoder, client-side decoding, and the single mapping of
//!   the codec-neutral [`core::ErrorCode`] to the schema's codes (`wire/errors.rs`). One file per
//!   message family as the core has them (`connection.rs`: welcome, errors, ping; `party.rs`,
//!   `status.rs`, `search.rs`, `lobby.rs`), each listing the union members it claims; `dispatch.rs` joins the
//!   lists into one table by union tag, and a test fails when a member of the schema's `Message`
//!   is claimed by no family or by two. `envelope.rs` writes the file identifier `HUDL` on every
//!   frame (optional on input) and reads the cid of a frame whose body does not verify, so its
//!   error still carries the request's cid (C-5). Party data may come with cid 0,
//!   fire-and-forget (P-9); every other request needs a cid. `codec.rs` is the interface a
//!   connection's codec implements ([`wire::Codec`]: decode a binary or text message, encode a
//!   reply, an event or an error into zero or more frames, with per-connection state), chosen per
//!   connection ([`wire::ConnCodec`]) and dispatched by [`wire::Codecs`]: huddle's FlatBuffers,
//!   and Nakama's realtime JSON (`wire/nakama/`, SPEC K-1), which the upgrade chooses when the URL
//!   says `format=json` or names `lang` without a `format`, as every Nakama SDK does.
//! - [`net`] is the mio driver: one `Poll` on one thread, a table of listeners (each with a
//!   kind and its own limits: game clients today, the admin API next), one table of connections
//!   named by their core `SessionId` (slab slot + generation, one checked lookup), and one turn
//!   of work: read (a bounded HTTP/1.1 head reader shared by every listener kind, then
//!   tungstenite framing over the connection's own buffers), dispatch (frame → codec → core →
//!   outputs, the one place in `net` that calls [`wire`]), the core's timers, deadlines (head, linger,
//!   keepalive), byte-counted outbound queues flushed with `writev` (slow-consumer limits), and
//!   the reap. The HTTP upgrade authenticates with [`auth`]; request rate limits, keepalive and
//!   graceful shutdown live there too. It decides nothing about parties or statuses. The
//!   socket-independent half (`Driver`) also runs under the `conn_bytes` fuzz target over
//!   in-memory streams, so the fuzzer tests the server's own read path.
//! - [`os`] holds every OS call beyond `std` and `mio` (CPU pinning, the open-file limit,
//!   shutdown signals): the crate's only `unsafe`, behind `cfg(target_os = "linux")`, so the
//!   server builds on macOS and Windows too (tested on Linux only).
//! - [`limits`] holds every bound in one struct; [`client`] is a blocking client for tests,
//!   examples and tools; [`sim`] (the one simulation of the whole core, whose grammar the
//!   `core_ops` fuzz target shares) and [`fuzzing`] (the other fuzz entry points) are what
//!   `tests/` and `fuzz/` drive.
//!
//! The load harness is its own crate in this workspace (`load/`, `huddle-load`); it speaks the
//! protocol through the public [`auth`], [`core`], [`wire`] and [`net`] items, so this library
//! carries no harness code and no histogram dependency.
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
#![deny(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod client;
pub mod core;
pub mod fuzzing;
pub mod limits;
pub mod net;
pub mod os;
pub mod sim;
pub mod wire;
