//! The sans-IO core: every domain rule, no sockets, no clocks.
