//! Unguessable ids for the core, from a seed the driver draws once from the OS and injects, so
//! the core stays deterministic under a fixed seed (simulation, fuzzing) and unpredictable in
//! production.

use super::{PartyCode, PartyId};
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

    /// A party code (SPEC L-3), uniform over the 31^6 codes: from the same keyed PRF as party
    /// ids, so codes are as unpredictable as ids in production and replay exactly under a fixed
    /// seed (simulation, fuzzing).
    pub fn next_party_code(&mut self) -> PartyCode {
        const CODES: u64 = 31u64.pow(PartyCode::LEN as u32);
        let bytes = self.next_bytes();
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[..8]);
        // The modulo's bias is below CODES / 2^64 ≈ 5e-11: no code is measurably likelier.
        let mut n = u64::from_le_bytes(word) % CODES;
        let mut indexes = [0u8; PartyCode::LEN];
        for slot in &mut indexes {
            *slot = (n % 31) as u8;
            n /= 31;
        }
        PartyCode::from_indexes(indexes)
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

    #[test]
    fn party_codes_replay_under_one_seed_and_spread_over_the_alphabet() {
        let codes = |seed| {
            let mut ids = IdGenerator::new([seed; 32]);
            (0..2000).map(|_| ids.next_party_code()).collect::<Vec<_>>()
        };
        let a = codes(1);
        assert_eq!(a, codes(1));
        assert_ne!(a, codes(2));
        let mut seen = [0usize; 31];
        for code in &a {
            for byte in code.as_str().bytes() {
                seen[PartyCode::ALPHABET.iter().position(|c| *c == byte).expect("alphabet")] += 1;
            }
        }
        // 12,000 characters over 31 symbols: about 387 each; every symbol shows up plenty.
        assert!(seen.iter().all(|n| *n > 250), "{seen:?}");
    }
}
