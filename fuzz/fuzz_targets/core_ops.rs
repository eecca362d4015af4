#![no_main]
// Operation sequences read from the fuzz bytes drive the core through the simulations'
// grammar, with every simulation check and the core's invariant sweep after each step.
libfuzzer_sys::fuzz_target!(|data: &[u8]| huddle::sim::fuzz_core_ops(data));
