#![no_main]
// Raw bytes into one admin API connection of the server's own driver: HTTP heads and bodies,
// keep-alive and pipelining, the key check, routing and the calls; what it writes is checked as
// an HTTP client reads it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    huddle::fuzzing::admin_bytes(data);
});
