//! When the slow deliveries happened: a p99 that jumps from run to run may come from something
//! periodic (a timer, a stats pass, the kernel's housekeeping, the host), and a periodic cause
//! shows as slow deliveries spaced evenly in time. Deliveries slower than [`SLOW_NS`] are
//! counted per [`BIN_NS`] bin of their intended send time; a spike is a run of adjacent bins
//! with slow deliveries, and the most common spacings between spike starts name the period
//! (100 ms would point at the server's stats pass, 15 s at its keepalive checks, 1 s or 4 ms at
//! the kernel). Cheap while measuring: one comparison per delivery, and a bin count only for a
//! slow one.

use std::collections::BTreeMap;

/// A delivery slower than this is counted.
pub const SLOW_NS: u64 = 1_000_000;
/// Bin width: fine enough to tell a 100-ms period from its neighbours.
pub const BIN_NS: u64 = 10_000_000;
/// Bins kept (10 minutes of window); slow deliveries later than that are not binned.
const BINS_MAX: usize = 60_000;

/// Slow deliveries per bin of intended send time, from the window's start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlowBins {
    counts: Vec<u32>,
}

/// What [`SlowBins::summary`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spikes {
    /// Deliveries slower than [`SLOW_NS`].
    pub slow: u64,
    /// Runs of adjacent bins with slow deliveries.
    pub spikes: u64,
    /// The most common spacings between spike starts, in ms, with how often each occurred;
    /// most common first, at most three.
    pub spacings_ms: Vec<(u64, u64)>,
}

impl SlowBins {
    /// A delivery meant to be sent `at_ns` into the window took `latency_ns`.
    pub fn record(&mut self, at_ns: u64, latency_ns: u64) {
        if latency_ns <= SLOW_NS {
            return;
        }
        let bin = (at_ns / BIN_NS) as usize;
        if bin >= BINS_MAX {
            return;
        }
        if self.counts.len() <= bin {
            self.counts.resize(bin + 1, 0);
        }
        self.counts[bin] = self.counts[bin].saturating_add(1);
    }

    pub fn merge(&mut self, other: &SlowBins) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    /// `bin:count` pairs for the bins with slow deliveries, comma-separated (a worker's report).
    pub fn serialize(&self) -> String {
        let pairs = self.counts.iter().enumerate().filter(|(_, c)| **c > 0);
        pairs.map(|(bin, count)| format!("{bin}:{count}")).collect::<Vec<_>>().join(",")
    }

    pub fn deserialize(text: &str) -> Result<SlowBins, String> {
        let mut bins = SlowBins::default();
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let bad = || format!("slow bins: bad pair {pair:?}");
            let (bin, count) = pair.split_once(':').ok_or_else(bad)?;
            let bin: usize = bin.parse().map_err(|_| bad())?;
            let count: u32 = count.parse().map_err(|_| bad())?;
            if bin >= BINS_MAX {
                return Err(bad());
            }
            if bins.counts.len() <= bin {
                bins.counts.resize(bin + 1, 0);
            }
            bins.counts[bin] = count;
        }
        Ok(bins)
    }

    pub fn summary(&self) -> Spikes {
        let slow = self.counts.iter().map(|&c| u64::from(c)).sum();
        let starts: Vec<usize> = (0..self.counts.len())
            .filter(|&bin| self.counts[bin] > 0 && (bin == 0 || self.counts[bin - 1] == 0))
            .collect();
        let mut spacings: BTreeMap<u64, u64> = BTreeMap::new();
        for pair in starts.windows(2) {
            let ms = (pair[1] - pair[0]) as u64 * BIN_NS / 1_000_000;
            *spacings.entry(ms).or_default() += 1;
        }
        let mut spacings_ms: Vec<(u64, u64)> = spacings.into_iter().collect();
        // Most common first; among equals the shorter spacing.
        spacings_ms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        spacings_ms.truncate(3);
        Spikes { slow, spikes: starts.len() as u64, spacings_ms }
    }
}

impl Spikes {
    /// One line: how many, and their most common spacings.
    pub fn line(&self) -> String {
        if self.slow == 0 {
            return format!("none over {} ms", SLOW_NS / 1_000_000);
        }
        let spacings: Vec<String> = self.spacings_ms.iter().map(|(ms, n)| format!("{ms} ms ×{n}")).collect();
        format!(
            "{} deliveries over {} ms in {} spikes ({} ms bins); most common spacing {}",
            self.slow,
            SLOW_NS / 1_000_000,
            self.spikes,
            BIN_NS / 1_000_000,
            if spacings.is_empty() { "-".to_owned() } else { spacings.join(", ") }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spikes_every_100_ms_show_a_100_ms_spacing() {
        let mut bins = SlowBins::default();
        for i in 0..20u64 {
            // Two slow deliveries straddling two bins each time: one spike, not two.
            bins.record(i * 100_000_000 + 9_000_000, 3_000_000);
            bins.record(i * 100_000_000 + 11_000_000, 2_000_000);
            bins.record(i * 100_000_000 + 50_000_000, 900_000); // fast: not counted
        }
        let spikes = bins.summary();
        assert_eq!((spikes.slow, spikes.spikes), (40, 20));
        assert_eq!(spikes.spacings_ms[0], (100, 19));
    }

    #[test]
    fn bins_survive_a_worker_report_and_merge() {
        let (mut a, mut b) = (SlowBins::default(), SlowBins::default());
        a.record(5_000_000, 2_000_000);
        b.record(5_000_000, 2_000_000);
        b.record(1_005_000_000, 2_000_000);
        let mut merged = SlowBins::deserialize(&a.serialize()).unwrap();
        merged.merge(&SlowBins::deserialize(&b.serialize()).unwrap());
        let spikes = merged.summary();
        assert_eq!((spikes.slow, spikes.spikes, spikes.spacings_ms.clone()), (3, 2, vec![(1000, 1)]));
        assert!(SlowBins::deserialize("3").is_err());
        assert_eq!(SlowBins::default().summary().line(), "none over 1 ms");
    }
}
