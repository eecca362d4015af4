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
//!   the codec-neutral [`core::ErrorCode`] to the schema's codes (`wire/errors.rs`). One file per
//!   message family as the core has them (`connection.rs`: welcome, errors, ping; `party.rs`,
//!   `status.rs`, `search.rs`), each listing the union members it claims; `dispatch.rs` joins the
//!   lists into one table by union tag, and a test fails when a member of the schema's `Message`
//!   is claimed by no family or by two. `envelope.rs` writes the file identifier `HUDL` on every
//!   frame (optional on input) and reads the cid of a frame whose body does not verify, so its
//!   error still carries the request's cid (C-5). Party data may come with cid 0,
//!   fire-and-forget (P-9); every other request needs a cid. `codec.rs` is the interface a
//!   connection's codec implements ([`wire::Codec`]: decode a binary or text message, encode a
//!   reply, an event or an error into zero or more frames, with per-connection state), chosen per
//!   connection ([`wire::ConnCodec`]) and dispatched by [`wire::Codecs`]; FlatBuffers is the first
//!   codec behind it, Nakama's JSON the next.
//! - [`net`] is the mio driver: one `Poll` on one thread, a `Slab` of connections with a
//!   generation per slot, the HTTP upgrade with authentication ([`auth`]), tungstenite framing
//!   over the connection's own buffers, byte-counted outbound queues flushed with `writev`,
//!   request rate limits, keepalive, slow-consumer cut-off and graceful shutdown. It decides
//!   nothing about parties or statuses.
//! - [`limits`] holds every bound in one struct; [`client`] is a blocking client for tests,
//!   examples and tools; [`load`] is the `huddle-load` harness (its own mio client loop);
//!   [`sim`] and [`fuzzing`] hold the simulations and fuzz entry points that `tests/` and `fuzz/`
//!   drive.
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
pub mod load;
pub mod net;
pub mod sim;
pub mod wire;
