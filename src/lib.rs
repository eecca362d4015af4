//! huddle: a real-time party and presence server for games.
pub mod core;
