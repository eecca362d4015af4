//! What the loop does when asked to reload (SIGHUP, or [`super::ServerHandle::reload`]): every
//! registered step, in order, in the loop's own thread, between two turns. A step that fails
//! keeps what was in force and says why in the log; the others still run.
//!
//! Steps: the name deny-list (SPEC L-7, `--name-deny-list`): the file is read and parsed again
//! and handed to the core, whose names are checked against it from the next request on.
//! The history file (SPEC O-3, `--history-file`): closed and its path opened again (log
//! rotation); lines already buffered go to the new file.

use super::conn::Transport;
use super::driver::Driver;
use crate::core::NameDenyList;
use std::path::{Path, PathBuf};

/// One thing a reload does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReloadStep {
    /// Read the name deny-list file again (SPEC L-7).
    NameDenyList { path: PathBuf },
    /// Close the history file and open its path again (SPEC O-3).
    ReopenHistory,
}

/// The deny-list file at `path`, parsed (see [`NameDenyList::parse`]); the error says what is
/// wrong with it, naming the file.
pub fn load_name_deny_list(path: &Path, entries_max: usize) -> Result<NameDenyList, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("name deny-list {}: {e}", path.display()))?;
    NameDenyList::parse(&text, entries_max).map_err(|e| format!("name deny-list {}: {e}", path.display()))
}

impl<S: Transport> Driver<S> {
    /// Runs `steps` in order; each failure is logged and leaves its part as it was.
    pub(crate) fn reload(&mut self, steps: &[ReloadStep]) {
        self.counters.reloads_total += 1;
        if steps.is_empty() {
            log::info!("reload asked: nothing to reload");
        }
        for step in steps {
            match step {
                ReloadStep::NameDenyList { path } => {
                    match load_name_deny_list(path, self.limits.name_deny_list_entries_max) {
                        Ok(list) => {
                            log::info!("{} reloaded: {} entries", path.display(), list.len());
                            self.core.set_name_deny_list(list);
                        }
                        Err(why) => {
                            self.counters.reload_failures_total += 1;
                            log::warn!("{why}; keeping the {} entries in force", self.core.name_deny_list_len());
                        }
                    }
                }
                ReloadStep::ReopenHistory => self.reopen_history(),
            }
        }
    }
}
