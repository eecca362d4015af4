//! The sans-IO core: every domain rule, no sockets, no clocks.
pub mod search;
