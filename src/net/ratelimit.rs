//! Per-connection request budget: a token bucket, plus the rule that a client refused
//! continuously for too long is closed rather than answered forever. The bucket itself is
//! [`TokenBucket`], also used for the extra-frame budget (`net::inbound`) and per-address
//! handshakes (`net::per_ip`).

use crate::core::{ErrorCode, Millis};

/// A request the driver refused before the core saw it. Its [`RequestRefusal::code`] is what the
/// client reads, whatever the connection's codec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestRefusal {
    RateLimited { requests_per_second_max: u32 },
}

impl RequestRefusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestRefusal::RateLimited { .. } => ErrorCode::LimitExceeded,
        }
    }
}

impl std::fmt::Display for RequestRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestRefusal::RateLimited { requests_per_second_max } => write!(
                f,
                "rate limited: more than requests_per_second_max {requests_per_second_max} requests per second; slow down"
            ),
        }
    }
}

/// What to do with one request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Answer with a LimitExceeded error; the connection stays.
    Refused,
    /// Refused without pause for `rate_limited_close_ms`: close the connection.
    Abusive,
}

/// A token bucket: `burst` tokens at most, refilled at `per_second`, one taken per event. The
/// rate and size are passed to each call rather than stored, so a bucket costs 12 bytes.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: u32,
    refilled_at: Millis,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens at `now`.
    pub fn new(burst: u32, now: Millis) -> TokenBucket {
        TokenBucket { tokens: burst, refilled_at: now }
    }

    /// Takes one token if there is one (after refilling for the time since the last refill).
    pub fn try_take(&mut self, now: Millis, per_second: u32, burst: u32) -> bool {
        self.refill(now, per_second, burst);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// Whether the bucket would be full at `now`: it remembers nothing a new bucket would not.
    pub fn is_full(&self, now: Millis, per_second: u32, burst: u32) -> bool {
        let missing = u64::from(burst.saturating_sub(self.tokens));
        now.saturating_sub(self.refilled_at).saturating_mul(u64::from(per_second)) / 1000 >= missing
    }

    fn refill(&mut self, now: Millis, per_second: u32, burst: u32) {
        let elapsed_ms = now.saturating_sub(self.refilled_at);
        let earned = elapsed_ms.saturating_mul(u64::from(per_second)) / 1000;
        if earned == 0 {
            return;
        }
        self.tokens = (u64::from(self.tokens) + earned).min(u64::from(burst)) as u32;
        // Advance by the time the earned tokens took, keeping the fraction for the next refill.
        self.refilled_at =
            Millis(self.refilled_at.0.saturating_add(earned.saturating_mul(1000) / u64::from(per_second.max(1))));
    }
}

#[derive(Clone, Debug)]
pub struct RequestBudget {
    bucket: TokenBucket,
    /// Start of the current run of refusals; a run ends when none come for `REFUSAL_GAP_MS`.
    refusing_since: Option<Millis>,
    last_refused_at: Millis,
}

/// A gap in refusals this long ends a run of refusals: the client backed off.
const REFUSAL_GAP_MS: u64 = 1_000;

impl RequestBudget {
    pub fn new(burst: u32, now: Millis) -> RequestBudget {
        RequestBudget { bucket: TokenBucket::new(burst, now), refusing_since: None, last_refused_at: now }
    }

    pub fn admit(&mut self, now: Millis, per_second: u32, burst: u32, close_after_ms: u64) -> Admission {
        if self.bucket.try_take(now, per_second, burst) {
            // A token trickling in does not end a run of refusals: only a pause does (below).
            return Admission::Allowed;
        }
        let since = match self.refusing_since {
            Some(since) if now.saturating_sub(self.last_refused_at) < REFUSAL_GAP_MS => since,
            _ => now,
        };
        self.refusing_since = Some(since);
        self.last_refused_at = now;
        if now.saturating_sub(since) >= close_after_ms {
            Admission::Abusive
        } else {
            Admission::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let mut budget = RequestBudget::new(3, Millis(0));
        let admit = |b: &mut RequestBudget, t| b.admit(Millis(t), 10, 3, 10_000);
        assert_eq!([admit(&mut budget, 0), admit(&mut budget, 0), admit(&mut budget, 0)], [Admission::Allowed; 3]);
        assert_eq!(admit(&mut budget, 0), Admission::Refused);
        assert_eq!(admit(&mut budget, 99), Admission::Refused, "a token takes 100 ms at 10/s");
        assert_eq!(admit(&mut budget, 100), Admission::Allowed);
        // Fractions carry over: 150 ms then 50 ms earn two tokens, not one.
        assert_eq!(admit(&mut budget, 250), Admission::Allowed);
        assert_eq!(admit(&mut budget, 300), Admission::Allowed);
        assert_eq!(admit(&mut budget, 300), Admission::Refused);
        // Never more than the burst, however long the pause.
        let allowed = (0..10).filter(|_| admit(&mut budget, 1_000_000) == Admission::Allowed).count();
        assert_eq!(allowed, 3);
    }

    #[test]
    fn a_bucket_is_full_again_once_its_missing_tokens_are_earned() {
        let mut bucket = TokenBucket::new(2, Millis(0));
        assert!(bucket.is_full(Millis(0), 10, 2));
        assert!(bucket.try_take(Millis(0), 10, 2) && bucket.try_take(Millis(0), 10, 2));
        assert!(!bucket.try_take(Millis(0), 10, 2), "empty");
        assert!(!bucket.is_full(Millis(199), 10, 2));
        assert!(bucket.is_full(Millis(200), 10, 2), "two tokens at 10/s take 200 ms");
    }

    #[test]
    fn continuous_refusal_becomes_abusive_but_a_pause_resets_it() {
        let mut budget = RequestBudget::new(1, Millis(0));
        let admit = |b: &mut RequestBudget, t| b.admit(Millis(t), 1, 1, 5_000);
        assert_eq!(admit(&mut budget, 0), Admission::Allowed);
        // Hammering every 100 ms: tokens trickle in at 1/s, refusals continue in between.
        let mut verdicts = Vec::new();
        for t in (100..6_000).step_by(100) {
            verdicts.push(admit(&mut budget, t));
        }
        assert!(verdicts.contains(&Admission::Abusive), "five seconds of refusals closes it");
        let mut calm = RequestBudget::new(1, Millis(0));
        assert_eq!(admit(&mut calm, 0), Admission::Allowed);
        assert_eq!(admit(&mut calm, 10), Admission::Refused);
        // A client that backs off and comes back is not abusive.
        assert_eq!(admit(&mut calm, 4_000), Admission::Allowed);
        assert_eq!(admit(&mut calm, 4_010), Admission::Refused);
        assert_eq!(admit(&mut calm, 8_000), Admission::Allowed);
    }
}
