//! Every call into the operating system beyond what `std` and `mio` offer, in one module: CPU
//! pinning, the open-file limit, which `accept` errors pass, and signals (shutdown, and SIGHUP
//! to reopen the history file). The only
//! `unsafe` code of the crate lives here (the crate root denies it everywhere else), each block
//! behind `cfg(target_os = "linux")` with the reason it is sound.
//!
//! The server is tested on Linux only, but it builds and runs on macOS and Windows for local
//! development: there `--cpu` is refused with a clear error, the open-file limit is left as the
//! OS sets it, and (on Windows) Ctrl-C ends the process without a graceful drain.

// Only the Linux-gated blocks below use it; every other target compiles this module without.
#![cfg_attr(target_os = "linux", allow(unsafe_code))]

use std::io;

/// Pins the calling thread to one CPU (`--cpu N`), so the loop keeps its caches warm and the
/// scheduler never moves it. Linux only: elsewhere an `Unsupported` error that says so.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("cpu {cpu} out of range")));
        }
        // SAFETY: cpu_set_t is plain data that may be all zeros; CPU_ZERO and CPU_SET write within
        // it (cpu < CPU_SETSIZE is checked above); sched_setaffinity only reads it, for the
        // calling thread (pid 0).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_ZERO(&mut set);
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "pinning to cpu {cpu} needs Linux (sched_setaffinity); this build runs on {}: leave --cpu out",
                std::env::consts::OS
            ),
        ))
    }
}

/// Raises the soft open-file limit to the hard one (as Redis does) and returns the soft limit
/// now in force, so `connections_max` can be kept under it. `None` where the limit is left as
/// the OS sets it (every system but Linux) or cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrlimit and setrlimit only read and write the plain struct passed to them.
        unsafe {
            let mut rl: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
                return None;
            }
            if rl.rlim_cur < rl.rlim_max {
                let raised = libc::rlimit { rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    rl.rlim_cur = rl.rlim_max;
                }
            }
            Some(rl.rlim_cur)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Accept errors that pass (retry after a pause) rather than stop the server: out of
/// descriptors or memory, or a peer gone before `accept` returned.
pub fn is_transient_accept_error(e: &io::Error) -> bool {
    if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::OutOfMemory) {
        return true;
    }
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED | libc::EPERM)
        )
    }
    #[cfg(windows)]
    {
        // WSAEMFILE, WSAENOBUFS, WSAECONNABORTED, WSAECONNRESET (a peer gone before accept).
        matches!(e.raw_os_error(), Some(10024 | 10055 | 10053 | 10054))
    }
    #[cfg(not(any(unix, windows)))]
    {
        false
    }
}

/// Calls `on_signal` once, from a thread of its own, when SIGINT or SIGTERM arrives. Returns
/// false where the platform offers no such hook (Windows: Ctrl-C ends the process at once).
pub fn on_shutdown_signal(on_signal: impl FnOnce(&'static str) + Send + 'static) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        std::thread::Builder::new().name("huddle-signals".into()).spawn(move || {
            if let Some(signal) = signals.forever().next() {
                on_signal(if signal == SIGINT { "SIGINT" } else { "SIGTERM" });
            }
        })?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        drop(on_signal);
        Ok(false)
    }
}

/// Calls `on_signal` from a thread of its own each time SIGHUP arrives (log rotation: the
/// server reopens its history file). Returns false where there is no SIGHUP (Windows).
pub fn on_hangup_signal(on_signal: impl Fn() + Send + 'static) -> io::Result<bool> {
    #[cfg(unix)]
    {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
        std::thread::Builder::new().name("huddle-sighup".into()).spawn(move || {
            for _ in signals.forever() {
                on_signal();
            }
        })?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        drop(on_signal);
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_cpu_is_refused_with_an_error_not_a_crash() {
        let error = pin_current_thread(usize::MAX).unwrap_err();
        assert!(matches!(error.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported), "{error}");
    }

    #[test]
    fn running_out_of_descriptors_is_transient_and_other_errors_are_not() {
        assert!(is_transient_accept_error(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        #[cfg(unix)]
        assert!(is_transient_accept_error(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_transient_accept_error(&io::Error::from(io::ErrorKind::InvalidInput)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_open_file_limit_is_readable_on_linux() {
        assert!(raise_open_file_limit().is_some_and(|n| n > 0));
    }
}
