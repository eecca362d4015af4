#![no_main]
// Bytes → verify + decode; whatever decodes re-encodes and decodes to the same request.
libfuzzer_sys::fuzz_target!(|data: &[u8]| huddle::fuzzing::decode_envelope(data));
