//! The history file (SPEC O-3): the driver's half of party history. The core finishes records
//! as parties end (`core::HistoryRecord`); each turn the driver takes them, and this file turns
//! them into JSON lines (`admin::views::history_record`), buffers them and writes them with one
//! bounded `write` per loop turn, never one per record.
//!
//! - **Bounds**: lines wait in one buffer of at most `history_buffer_bytes_max`; a record that
//!   does not fit is dropped from the file (it stays in memory for the admin API), counted and
//!   logged. One turn writes at most `history_write_bytes_per_turn_max` bytes, cut at a line's
//!   end (a single longer line goes whole), so a burst of ended parties cannot stall a turn.
//! - **Errors** (a missing directory, a full disk, no permission) are logged once per episode and
//!   counted (`huddle_history_write_errors_total`), never fatal: the file is closed and opened
//!   again no sooner than [`RETRY_MS`] later, while the buffer keeps what it can.
//! - **Rotation**: [`HistoryFile::reopen`] (SIGHUP, from `os.rs` through the server handle)
//!   closes the file and opens the path again, so after logrotate moves the file the server
//!   writes to a new one at the path. A line half written by a short write is finished in the
//!   old file first: no line is ever split across two files.
//!
//! The file is opened for appending, created with mode 0600 on Unix (it names users). Writes
//! block the loop; on a local disk they go to the page cache, and the per-turn bound caps the
//! cost on a slow one.

use crate::admin::views;
use crate::core::{HistoryRecord, Millis};
use crate::limits::Limits;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

/// Wait after a failed open or write before trying again: long enough not to spin on a file
/// that stays broken, short enough to lose little once it works again.
pub(crate) const RETRY_MS: u64 = 1_000;

/// What became of a record handed to [`HistoryFile::push`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Buffered (or there is no history file).
    Queued,
    /// The buffer is full: not written to the file.
    Dropped,
}

pub(crate) struct HistoryFile {
    /// `None`: no history file (`--history-file` not given); records are kept in memory only.
    path: Option<PathBuf>,
    file: Option<File>,
    /// Whole lines, except that the first may have lost its start to a short write.
    buffer: Vec<u8>,
    /// The buffer starts inside a line whose start went to the open file.
    mid_line: bool,
    reopen_asked: bool,
    /// After a failure: no attempt before this.
    retry_at: Option<Millis>,
    /// In a failure episode (logged once when it starts and once when it ends).
    failing: bool,
    /// In a drop episode (the buffer was full; logged once until it drains).
    dropping: bool,
    write_errors_total: u64,
    records_dropped_total: u64,
}

impl HistoryFile {
    pub fn new(path: Option<PathBuf>) -> HistoryFile {
        HistoryFile {
            path,
            file: None,
            buffer: Vec::new(),
            mid_line: false,
            reopen_asked: false,
            retry_at: None,
            failing: false,
            dropping: false,
            write_errors_total: 0,
            records_dropped_total: 0,
        }
    }

    pub fn write_errors_total(&self) -> u64 {
        self.write_errors_total
    }

    pub fn records_dropped_total(&self) -> u64 {
        self.records_dropped_total
    }

    /// Appends the record's line to the buffer, or drops it when the buffer cannot take it.
    pub fn push(&mut self, record: &HistoryRecord, limits: &Limits) -> Pushed {
        let Some(path) = &self.path else { return Pushed::Queued };
        let line = views::history_record(record);
        if self.buffer.len() + line.len() + 1 > limits.history_buffer_bytes_max {
            self.records_dropped_total += 1;
            if !self.dropping {
                self.dropping = true;
                log::warn!(
                    "history file {}: {} bytes wait to be written (history_buffer_bytes_max {}); \
                     records are left out of the file until it catches up (they stay queryable)",
                    path.display(),
                    self.buffer.len(),
                    limits.history_buffer_bytes_max
                );
            }
            return Pushed::Dropped;
        }
        self.buffer.extend_from_slice(&line);
        self.buffer.push(b'\n');
        Pushed::Queued
    }

    /// Rotation: close the file and open the path again (at the next line boundary).
    pub fn reopen(&mut self) {
        if self.path.is_some() {
            self.reopen_asked = true;
        }
    }

    /// Whether [`HistoryFile::flush`] has work now (the loop must not sleep).
    pub fn has_work(&self) -> bool {
        self.path.is_some() && self.retry_at.is_none() && (self.reopen_asked || !self.buffer.is_empty())
    }

    /// When a failed file should be tried again, if anything waits for it.
    #[must_use]
    pub fn poll_deadline(&self) -> Option<Millis> {
        self.retry_at.filter(|_| self.reopen_asked || !self.buffer.is_empty())
    }

    /// One turn's write: reopens when asked (at a line boundary), then one `write` of at most
    /// `history_write_bytes_per_turn_max` bytes of whole lines.
    pub fn flush(&mut self, now: Millis, limits: &Limits) {
        if self.path.is_none() {
            return;
        }
        if let Some(retry_at) = self.retry_at {
            if now < retry_at {
                return;
            }
            self.retry_at = None;
        }
        if self.reopen_asked && !self.mid_line {
            self.reopen_asked = false;
            if self.file.take().is_some() {
                log::info!("history file closed for reopening (SIGHUP)");
            }
            if self.buffer.is_empty() {
                // Open at once, so the file exists at the path again right after rotation.
                self.open(now);
            }
        }
        if self.buffer.is_empty() {
            return;
        }
        let len = self.write_len(limits.history_write_bytes_per_turn_max);
        if !self.open(now) {
            return;
        }
        let Some(file) = self.file.as_mut() else { return };
        match file.write(&self.buffer[..len]) {
            Ok(0) => self.failed(io::Error::from(io::ErrorKind::WriteZero), now),
            Ok(written) => {
                self.mid_line = self.buffer[written - 1] != b'\n';
                self.buffer.drain(..written);
                if self.failing {
                    self.failing = false;
                    log::info!("history file writable again");
                }
                if self.dropping && self.buffer.is_empty() {
                    self.dropping = false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.failed(e, now),
        }
    }

    /// At exit: writes whatever the file takes, without a per-turn bound (the loop is done).
    pub fn finish(&mut self, now: Millis, limits: &Limits) {
        let mut attempts = self.buffer.len() / limits.history_write_bytes_per_turn_max.max(1) + 2;
        self.retry_at = None;
        while !self.buffer.is_empty() && self.retry_at.is_none() && attempts > 0 {
            self.flush(now, limits);
            attempts -= 1;
        }
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
        if !self.buffer.is_empty() {
            log::warn!("history file: {} bytes could not be written before exit", self.buffer.len());
        }
    }

    /// Bytes to write this turn: whole lines up to `budget`, or the first line whole when it is
    /// longer (the remainder of a line cut by a short write counts as a line).
    fn write_len(&self, budget: usize) -> usize {
        let window = &self.buffer[..self.buffer.len().min(budget)];
        match window.iter().rposition(|b| *b == b'\n') {
            Some(end) => end + 1,
            None => self.buffer.iter().position(|b| *b == b'\n').map_or(self.buffer.len(), |end| end + 1),
        }
    }

    /// Opens the path unless the file is open; false (counted and logged) when it cannot.
    fn open(&mut self, now: Millis) -> bool {
        if self.file.is_none() {
            let Some(path) = self.path.as_ref() else { return false };
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(file) => self.file = Some(file),
                Err(e) => {
                    self.failed(e, now);
                    return false;
                }
            }
        }
        true
    }

    fn failed(&mut self, error: io::Error, now: Millis) {
        self.write_errors_total += 1;
        self.file = None;
        self.retry_at = Some(now.saturating_add(RETRY_MS));
        if !self.failing {
            self.failing = true;
            let path = self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            log::warn!("history file {path}: {error}; retrying every {RETRY_MS} ms, records wait in memory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{HistoryEndReason, PartyId, UnixMillis};

    fn record(seq: u64) -> HistoryRecord {
        HistoryRecord {
            seq,
            party_id: PartyId(seq.into()),
            max_size: 4,
            created_at: UnixMillis(1),
            ended_at: UnixMillis(2),
            end_reason: HistoryEndReason::Closed,
            leaders: Vec::new(),
            members: Vec::new(),
            truncated: false,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("huddle-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().map(|line| serde_json::from_str(line).expect("every line is JSON")).collect()
    }

    #[test]
    fn lines_go_out_in_bounded_writes_of_whole_lines() {
        let dir = temp_dir("bounded");
        let path = dir.join("history.jsonl");
        let one_line = views::history_record(&record(1)).len() + 1;
        let limits = Limits { history_write_bytes_per_turn_max: one_line * 2 + 1, ..Limits::default() };
        let mut file = HistoryFile::new(Some(path.clone()));
        for seq in 1..=5 {
            assert_eq!(file.push(&record(seq), &limits), Pushed::Queued);
        }
        assert!(file.has_work());
        file.flush(Millis(0), &limits);
        assert_eq!(lines(&path).len(), 2, "two whole lines fit the turn's budget");
        file.flush(Millis(1), &limits);
        file.flush(Millis(2), &limits);
        assert!(!file.has_work());
        let seqs: Vec<String> = lines(&path).iter().map(|l| l["party_id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(seqs.len(), 5);
        assert!(seqs[4].ends_with('5'), "in order: {seqs:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_counted_retried_later_and_records_over_the_buffer_are_dropped() {
        let dir = temp_dir("unwritable");
        let path = dir.join("missing-dir").join("history.jsonl");
        let line = views::history_record(&record(1)).len() + 1;
        let limits = Limits { history_buffer_bytes_max: line * 2, ..Limits::default() };
        let mut file = HistoryFile::new(Some(path.clone()));
        assert_eq!(file.push(&record(1), &limits), Pushed::Queued);
        file.flush(Millis(0), &limits);
        assert_eq!(file.write_errors_total(), 1);
        assert!(!file.has_work(), "no retry before RETRY_MS");
        assert_eq!(file.poll_deadline(), Some(Millis(RETRY_MS)));
        file.flush(Millis(RETRY_MS - 1), &limits);
        assert_eq!(file.write_errors_total(), 1, "nothing tried early");
        assert_eq!(file.push(&record(2), &limits), Pushed::Queued);
        assert_eq!(file.push(&record(3), &limits), Pushed::Dropped, "the buffer holds two lines");
        assert_eq!(file.records_dropped_total(), 1);
        // The directory appears: the next attempt writes what waited.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        file.flush(Millis(RETRY_MS), &limits);
        assert_eq!(lines(&path).len(), 2);
        assert_eq!(file.write_errors_total(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reopen_writes_to_a_new_file_at_the_path_after_rotation() {
        let dir = temp_dir("reopen");
        let path = dir.join("history.jsonl");
        let limits = Limits::default();
        let mut file = HistoryFile::new(Some(path.clone()));
        file.push(&record(1), &limits);
        file.flush(Millis(0), &limits);
        let rotated = dir.join("history.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        file.reopen();
        assert!(file.has_work());
        file.flush(Millis(1), &limits);
        assert!(path.exists(), "the path is opened again at once");
        file.push(&record(2), &limits);
        file.flush(Millis(2), &limits);
        assert_eq!((lines(&rotated).len(), lines(&path).len()), (1, 1));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn without_a_path_nothing_is_buffered_or_written() {
        let mut file = HistoryFile::new(None);
        assert_eq!(file.push(&record(1), &Limits::default()), Pushed::Queued);
        file.reopen();
        assert!(!file.has_work());
        assert!(file.buffer.is_empty());
    }
}
