#![no_main]
// Bytes → the Nakama JSON decoder (bounded, never panics); the codec interface agrees with it;
// whatever decodes re-encodes to the same request; every answer echoes the frame's cid.
libfuzzer_sys::fuzz_target!(|data: &[u8]| huddle::fuzzing::nakama_json(data));
