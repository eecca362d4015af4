#![no_main]
// Raw bytes into one connection's read path: upgrade request, WebSocket frames, decode, core.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    huddle::fuzzing::connection_bytes(data);
});
