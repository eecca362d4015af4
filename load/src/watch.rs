//! The harness watching itself: how long each turn of a worker's loop worked (everything
//! between two polls), what share of the measured window it was busy, and how many bytes sat
//! unread in its sockets. These say whether a figure measures the server or the harness: a
//! loop with no slack left, or deliveries waiting in the harness's own receive queues, add
//! latency the server never caused.
//!
//! Cheap by construction, so watching does not change what is watched: two clock reads per
//! turn, one histogram record (no allocation), and a receive-queue probe of a few sockets at
//! most once per [`BACKLOG_PROBE_INTERVAL_NS`].

use super::hist::Latency;
use super::procfs::thread_cpu_ns;

/// How often the loop probes a few sockets' receive queues. A millisecond keeps the probe's
/// cost under 1 % of a core (16 `ioctl`s of about 0.5 µs each) while a full pass over 1,000
/// connections still takes only 63 ms, many passes per measured second.
pub(crate) const BACKLOG_PROBE_INTERVAL_NS: u64 = 1_000_000;
/// Sockets probed per probe (see [`BACKLOG_PROBE_INTERVAL_NS`]).
pub(crate) const BACKLOG_PROBE_SOCKETS: usize = 16;

/// One worker's loop, watched over the measured window.
pub(crate) struct LoopWatch {
    window_start_ns: u64,
    window_end_ns: u64,
    /// When the last poll returned: the start of the turn in progress.
    turn_started_ns: Option<u64>,
    /// Work per turn (poll return to next poll call), turns that started in the window.
    turns: Latency,
    busy_ns: u64,
    turn_max_ns: u64,
    turn_max_at_ns: u64,
    bytes_read_at_start: Option<u64>,
    bytes_read_at_end: Option<u64>,
    /// The loop thread's CPU time when the window began and ended.
    cpu_ns_at_start: Option<u64>,
    cpu_ns_at_end: Option<u64>,
    backlog_bytes_max: u64,
}

/// What a [`LoopWatch`] saw, as the worker reports it.
#[derive(Default)]
pub struct LoopFigures {
    /// Share of the window the loop spent working rather than waiting in poll, in percent
    /// (wall-clock time: a loop preempted by other processes counts as busy, it is late alike).
    pub busy_percent: f64,
    /// Share of the window the loop's thread had a CPU, in percent. Far below `busy_percent`,
    /// the loop waited for a CPU it should have had: the machine was not quiet.
    pub cpu_percent: f64,
    /// Work per loop turn.
    pub turns: Latency,
    pub turn_max_ns: u64,
    /// When the longest turn started, in ms from the window's start.
    pub turn_max_at_ms: f64,
    /// The largest total of bytes found waiting unread in this worker's sockets in one pass.
    pub recv_backlog_bytes_max: u64,
    /// The same in milliseconds of this worker's incoming traffic during the window.
    pub recv_backlog_ms: f64,
}

impl LoopWatch {
    pub(crate) fn new(window_start_ns: u64, window_end_ns: u64) -> LoopWatch {
        LoopWatch {
            window_start_ns,
            window_end_ns,
            turn_started_ns: None,
            turns: Latency::new(),
            busy_ns: 0,
            turn_max_ns: 0,
            turn_max_at_ns: 0,
            bytes_read_at_start: None,
            bytes_read_at_end: None,
            cpu_ns_at_start: None,
            cpu_ns_at_end: None,
            backlog_bytes_max: 0,
        }
    }

    fn in_window(&self, t_ns: u64) -> bool {
        (self.window_start_ns..self.window_end_ns).contains(&t_ns)
    }

    /// The loop is about to wait in poll: the turn that began when the last poll returned
    /// ends now. `bytes_read_total` is everything the worker has read so far.
    pub(crate) fn before_poll(&mut self, now_ns: u64, bytes_read_total: u64) {
        if now_ns >= self.window_start_ns && self.bytes_read_at_start.is_none() {
            self.bytes_read_at_start = Some(bytes_read_total);
            self.cpu_ns_at_start = Some(thread_cpu_ns());
        }
        if now_ns >= self.window_end_ns && self.bytes_read_at_end.is_none() {
            self.bytes_read_at_end = Some(bytes_read_total);
            self.cpu_ns_at_end = Some(thread_cpu_ns());
        }
        let Some(started) = self.turn_started_ns.take() else {
            return;
        };
        if !self.in_window(started) {
            return;
        }
        let worked = now_ns.saturating_sub(started);
        self.busy_ns += worked;
        self.turns.record_ns(worked);
        if worked > self.turn_max_ns {
            self.turn_max_ns = worked;
            self.turn_max_at_ns = started - self.window_start_ns;
        }
    }

    pub(crate) fn after_poll(&mut self, now_ns: u64) {
        self.turn_started_ns = Some(now_ns);
    }

    /// Whether a receive-queue probe is worth taking now (only inside the window).
    pub(crate) fn probing(&self, now_ns: u64) -> bool {
        self.in_window(now_ns)
    }

    /// One full pass over the worker's sockets found `bytes` waiting unread.
    pub(crate) fn backlog_pass(&mut self, bytes: u64) {
        self.backlog_bytes_max = self.backlog_bytes_max.max(bytes);
    }

    /// The figures, with `bytes_read_total` (and the thread's CPU time now) as the counts at
    /// the window's end if no turn began after it (a run that drained at once). Called on the
    /// loop's own thread.
    pub(crate) fn figures(self, bytes_read_total: u64) -> LoopFigures {
        let cpu_ns = match self.cpu_ns_at_start {
            Some(start) => self.cpu_ns_at_end.unwrap_or_else(thread_cpu_ns).saturating_sub(start),
            None => 0,
        };
        let window_ns = self.window_end_ns.saturating_sub(self.window_start_ns).max(1);
        let window_ms = window_ns as f64 / 1e6;
        let read_in_window = match (self.bytes_read_at_start, self.bytes_read_at_end) {
            (Some(a), end) => end.unwrap_or(bytes_read_total).saturating_sub(a),
            (None, _) => 0,
        };
        let recv_backlog_ms =
            if read_in_window > 0 { self.backlog_bytes_max as f64 / (read_in_window as f64 / window_ms) } else { 0.0 };
        LoopFigures {
            busy_percent: (self.busy_ns as f64 / window_ns as f64 * 100.0).min(100.0),
            cpu_percent: (cpu_ns as f64 / window_ns as f64 * 100.0).min(100.0),
            turns: self.turns,
            turn_max_ns: self.turn_max_ns,
            turn_max_at_ms: self.turn_max_at_ns as f64 / 1e6,
            recv_backlog_bytes_max: self.backlog_bytes_max,
            recv_backlog_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn turns_inside_the_window_count_and_the_longest_is_located() {
        let mut w = LoopWatch::new(100 * MS, 200 * MS);
        // A turn before the window: not counted.
        w.after_poll(50 * MS);
        w.before_poll(60 * MS, 0);
        // In the window: 10 ms and 30 ms of work, waits in between.
        w.after_poll(110 * MS);
        w.before_poll(120 * MS, 1_000);
        w.after_poll(150 * MS);
        w.before_poll(180 * MS, 2_000);
        // After: not counted; closes the bytes-read window.
        w.after_poll(200 * MS);
        w.before_poll(250 * MS, 11_000);
        w.backlog_pass(500);
        w.backlog_pass(100);
        let f = w.figures(99_999);
        assert_eq!(f.turns.count(), 2);
        assert!((f.busy_percent - 40.0).abs() < 1e-9, "{}", f.busy_percent);
        assert!((0.0..=100.0).contains(&f.cpu_percent), "{}", f.cpu_percent);
        assert_eq!(f.turn_max_ns, 30 * MS);
        assert!((f.turn_max_at_ms - 50.0).abs() < 1e-9);
        assert_eq!(f.recv_backlog_bytes_max, 500);
        // 10,000 bytes read over the 100 ms window: 100 bytes per ms, so 500 bytes are 5 ms.
        assert!((f.recv_backlog_ms - 5.0).abs() < 1e-9, "{}", f.recv_backlog_ms);
    }
}
