#![no_main]
// The fuzzer's bytes are the choices of the core simulation (`huddle::sim`): one world of
// parties, search, statuses and timers driven through the simulation's one grammar, with every
// simulation check and the core's invariant sweep after each step.
libfuzzer_sys::fuzz_target!(|data: &[u8]| huddle::fuzzing::core_ops(data));
