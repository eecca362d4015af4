#![no_main]
// Raw bytes into one connection of the server's own driver (the read path it runs on sockets):
// request head and upgrade, WebSocket frames, dispatch, the core; what it writes is checked as a
// client reads it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    huddle::fuzzing::connection_bytes(data);
});
