//! Latency histograms: HDR histograms of nanoseconds (3 significant digits, 1 ns to 100 s),
//! serialized as text so worker processes can send theirs to the parent, which merges them.
//! Merging recorded counts loses nothing: the merged percentiles are those of all samples.

use hdrhistogram::Histogram;

/// Largest latency recorded; larger values are clamped (a run is bounded far below this).
const LATENCY_NS_MAX: u64 = 100_000_000_000;

pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

/// Percentiles in microseconds, as reported.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub count: u64,
}

impl Latency {
    pub fn new() -> Latency {
        // Bounds and precision are constants that are known to be valid.
        let hist = Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds");
        Latency { hist }
    }

    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record(ns.clamp(1, LATENCY_NS_MAX));
    }

    /// Records `count` samples of `ns` at once.
    pub fn record_n_ns(&mut self, ns: u64, count: u64) {
        // Clamped into the bounds, so only a count overflow could fail: saturate instead.
        let _ = self.hist.record_n(ns.clamp(1, LATENCY_NS_MAX), count);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        self.hist.add(&other.hist).expect("histograms with equal bounds");
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.hist.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            p50: us(self.hist.value_at_quantile(0.5)),
            p90: us(self.hist.value_at_quantile(0.9)),
            p99: us(self.hist.value_at_quantile(0.99)),
            p999: us(self.hist.value_at_quantile(0.999)),
            max: us(self.hist.max()),
            count: self.hist.len(),
        }
    }

    /// `value:count` pairs of every recorded bucket, comma-separated.
    pub fn serialize(&self) -> String {
        let pairs: Vec<String> =
            self.hist.iter_recorded().map(|v| format!("{}:{}", v.value_iterated_to(), v.count_at_value())).collect();
        pairs.join(",")
    }

    pub fn deserialize(text: &str) -> Result<Latency, String> {
        let mut latency = Latency::new();
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let (value, count) = pair.split_once(':').ok_or_else(|| format!("bad histogram pair {pair:?}"))?;
            let value: u64 = value.parse().map_err(|_| format!("bad histogram value {value:?}"))?;
            let count: u64 = count.parse().map_err(|_| format!("bad histogram count {count:?}"))?;
            latency
                .hist
                .record_n(value.clamp(1, LATENCY_NS_MAX), count)
                .map_err(|e| format!("histogram record: {e:?}"))?;
        }
        Ok(latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_serialized_workers_equals_recording_everything_in_one() {
        let mut all = Latency::new();
        let mut workers = [Latency::new(), Latency::new(), Latency::new()];
        // Different shapes per worker: a merge must not average percentiles.
        for i in 0..30_000u64 {
            let ns = match i % 3 {
                0 => 10_000 + i,
                1 => 50_000 + 7 * i,
                _ => 1_000_000 + 100 * i,
            };
            all.record_ns(ns);
            workers[(i % 3) as usize].record_ns(ns);
        }
        let mut merged = Latency::new();
        for w in &workers {
            let wire = w.serialize();
            merged.merge(&Latency::deserialize(&wire).unwrap());
        }
        assert_eq!(merged.count(), 30_000);
        assert_eq!(merged.percentiles(), all.percentiles());
        // The slow worker alone decides p90 and up.
        assert!(merged.percentiles().p90 > 1000.0);
    }

    #[test]
    fn empty_and_bad_input() {
        assert_eq!(Latency::deserialize("").unwrap().count(), 0);
        assert_eq!(Latency::new().percentiles(), Percentiles::default());
        assert!(Latency::deserialize("12").is_err());
        assert!(Latency::deserialize("a:1").is_err());
    }

    #[test]
    fn percentiles_are_microseconds_within_precision() {
        let mut l = Latency::new();
        for us in 1..=1000u64 {
            l.record_ns(us * 1000);
        }
        let p = l.percentiles();
        assert!((p.p50 - 500.0).abs() <= 1.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() <= 1.0, "{p:?}");
        assert!((p.max - 1000.0).abs() <= 1.0, "{p:?}");
    }
}
