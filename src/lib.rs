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
//!   [`core::Output`]s it gets back, in order. Feature rules live one file each
//!   (`core/party.rs`, `core/status.rs`), the label query language and search index in
//!   `core/search/`; identities are newtypes (`core/ids.rs`).
//! - [`wire`] is the only module that knows the schema (`schema/huddle.fbs`): verify-with-bounds
//!   decode of client frames, one reusable encoder, client-side decoding, and the single mapping of
//!   every error enum to a wire code (`wire/errors.rs`).
//! - [`net`] is the mio driver: one `Poll` on one thread, a `Slab` of connections with a
//!   generation per slot, the HTTP upgrade with authentication ([`auth`]), tungstenite framing
//!   over the connection's own buffers, byte-counted outbound queues flushed with `writev`,
//!   request rate limits, keepalive, slow-consumer cut-off and graceful shutdown. It decides
//!   nothing about parties or statuses.
//! - [`limits`] holds every bound in one struct; [`client`] is a blocking client for tests,
//!   examples and tools; [`sim`] and [`fuzzing`] hold the simulations and fuzz entry points that
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
//! before any event that request caused) and [`core::Core::disconnect`] exactly once when the
//! connection ends for any reason. Outputs are executed in order; an event is encoded and framed
//! once and the same bytes are queued for each recipient.
pub mod auth;
pub mod client;
pub mod core;
pub mod fuzzing;
pub mod limits;
pub mod net;
pub mod sim;
pub mod wire;
