//! Unguessable ids for the core, from a seed the driver draws once from the OS and injects, so
//! the core stays deterministic under a fixed seed (simulation, fuzzing) and unpredictable in
//! production.

use super::PartyId;
use sha2::{Digest, Sha256};

/// SHA-256 over (seed, counter): a PRF keyed by the secret seed, so seeing any number of ids
/// tells nothing about the next one, unlike a fast non-cryptographic PRNG whose state leaks
/// through its outputs.
pub struct IdGenerator {
    seed: [u8; 32],
    counter: u64,
}

impl IdGenerator {
    pub fn new(seed: [u8; 32]) -> IdGenerator {
        IdGenerator { seed, counter: 0 }
    }

    pub fn next_party_id(&mut self) -> PartyId {
        PartyId(u128::from_le_bytes(self.next_bytes()))
    }

    /// 16 fresh pseudo-random bytes.
    fn next_bytes(&mut self) -> [u8; 16] {
        self.counter += 1;
        let digest = Sha256::new().chain_update(self.seed).chain_update(self.counter.to_le_bytes()).finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_other_seed_other_sequence() {
        let mut a = IdGenerator::new([1; 32]);
        let mut b = IdGenerator::new([1; 32]);
        let mut c = IdGenerator::new([2; 32]);
        let ids: Vec<PartyId> = (0..100).map(|_| a.next_party_id()).collect();
        assert_eq!(ids, (0..100).map(|_| b.next_party_id()).collect::<Vec<_>>());
        assert_ne!(ids[0], c.next_party_id());
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }
}
