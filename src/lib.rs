//! huddle: a real-time party and presence server for games.
pub mod auth;
pub mod client;
pub mod core;
pub mod fuzzing;
pub mod limits;
pub mod load;
pub mod net;
pub mod wire;
