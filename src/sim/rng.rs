//! The simulations' one source of choices: a seeded splitmix64 for `cargo test`, or a fuzzer's
//! bytes for `fuzz/core_ops`, so both drive the core through the same operation grammar.

pub struct Rng {
    source: Source,
}

enum Source {
    Seeded(u64),
    /// Bytes read 8 at a time; zeros once they run out (and `exhausted` says so).
    Bytes {
        data: Vec<u8>,
        at: usize,
    },
}

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng { source: Source::Seeded(seed) }
    }

    pub fn from_bytes(data: &[u8]) -> Rng {
        Rng { source: Source::Bytes { data: data.to_vec(), at: 0 } }
    }

    /// True once a byte source has been read to its end (never for a seed).
    pub fn exhausted(&self) -> bool {
        match &self.source {
            Source::Seeded(_) => false,
            Source::Bytes { data, at } => *at >= data.len(),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        match &mut self.source {
            Source::Seeded(state) => {
                // splitmix64: tiny, seedable, good enough to pick operations.
                *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            }
            Source::Bytes { data, at } => {
                let mut word = [0u8; 8];
                let end = (*at + 8).min(data.len());
                let taken = end.saturating_sub(*at);
                word[..taken].copy_from_slice(&data[*at..end]);
                *at = end;
                u64::from_le_bytes(word)
            }
        }
    }

    /// Uniform-ish in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn range(&mut self, lo: usize, hi_inclusive: usize) -> usize {
        lo + self.below(hi_inclusive - lo + 1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_source_reads_words_then_zeros_and_reports_exhaustion() {
        let mut rng = Rng::from_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert!(!rng.exhausted());
        assert_eq!(rng.next_u64(), 1);
        assert_eq!(rng.next_u64(), 2);
        assert!(rng.exhausted());
        assert_eq!(rng.next_u64(), 0);
        assert_eq!(Rng::seeded(3).next_u64(), Rng::seeded(3).next_u64());
    }
}
