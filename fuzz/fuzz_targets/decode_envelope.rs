#![no_main]
// Bytes → verify + decode; whatever decodes re-encodes and decodes to the same request, the cid
// reported always matches the bounded cid read (C-5), and the codec interface agrees.
libfuzzer_sys::fuzz_target!(|data: &[u8]| huddle::fuzzing::decode_envelope(data));
