//! The `huddle` command line, run as the built binary: version and per-subcommand help, usage
//! mistakes answered by a usage hint (exit 2), run-time failures (a port in use, a key file that
//! is not there, limits that cannot work) answered by one error line without a hint (exit 1),
//! limit flags reaching the server, and `huddle token` with key files. Servers it starts listen
//! on `127.0.0.1:0` with an explicit key and are killed when the test ends; waits are
//! deadlines on the server's log, never sleeps.

mod common;

use common::{token_with, Watchdog, KEY, WAIT};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

fn huddle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(args)
        .env_remove("HUDDLE_TOKEN_KEY")
        .env("RUST_LOG", "info")
        .output()
        .expect("run huddle")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A scratch folder of this test process, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("huddle-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn version_and_help_of_every_subcommand_are_answered() {
    let version = huddle(&["--version"]);
    assert!(version.status.success(), "{}", stderr(&version));
    assert_eq!(stdout(&version).trim(), format!("huddle {}", env!("CARGO_PKG_VERSION")));
    for (args, expected) in [
        (&["--help"][..], &["serve", "token", "--listen", "--connections-max"][..]),
        (&["serve", "--help"], &["--listen", "--cpu", "--token-key", "--key-file", "--requests-per-second-max"]),
        (&["token", "--help"], &["--user-id", "--username", "--expires-in", "--token-key", "--key-file"]),
    ] {
        let help = huddle(args);
        assert!(help.status.success(), "huddle {args:?}: {}", stderr(&help));
        let text = stdout(&help);
        for flag in expected {
            assert!(text.contains(flag), "huddle {args:?} does not mention {flag}:\n{text}");
        }
    }
    assert!(stdout(&huddle(&["serve", "--help"])).contains("[default: 10000]"), "limit defaults are shown");
}

#[test]
fn usage_mistakes_get_a_usage_hint_and_exit_2() {
    for args in [&["--no-such-flag"][..], &["serve", "--connections-max", "many"], &["token"], &["--listen", "x:y"]] {
        let output = huddle(args);
        assert_eq!(output.status.code(), Some(2), "huddle {args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("--help"), "a usage hint: huddle {args:?}: {}", stderr(&output));
    }
}

#[test]
fn a_port_in_use_is_an_error_line_without_a_usage_hint() {
    let _watchdog = Watchdog::start(WAIT * 3);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = huddle(&["--listen", &addr, "--token-key", KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(error.contains(&format!("huddle: cannot listen on {addr}")), "{error}");
    assert!(!error.contains("Usage") && !error.contains("--help"), "a run-time failure is no usage mistake: {error}");
}

#[test]
fn limits_that_cannot_work_are_refused_at_startup() {
    let output = huddle(&["serve", "--listen", "127.0.0.1:0", "--token-key", KEY, "--connections-max", "0"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("connections_max must be positive"), "{}", stderr(&output));
}

/// Bare `huddle [flags]` serves, and a limit flag reaches the limits the server runs with.
#[test]
fn bare_huddle_serves_with_the_limits_given() {
    let _watchdog = Watchdog::start(WAIT * 3);
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_huddle"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--token-key",
                KEY,
                "--connections-max",
                "7",
                "--message-bytes-max",
                "4000",
            ])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start huddle"),
    );
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut listening = None;
    let limits = loop {
        let line = lines_rx.recv_timeout(WAIT).expect("the server logs its address and limits");
        if let Some(rest) = line.split("listening on ws://").nth(1) {
            listening = Some(rest.trim_end_matches("/ws").to_owned());
        }
        if line.contains("limits: ") {
            break line;
        }
    };
    assert!(limits.contains("connections_max: 7,"), "{limits}");
    assert!(limits.contains("message_bytes_max: 4000,"), "{limits}");
    let addr = listening.expect("address logged before the limits");
    let client = huddle::client::Client::connect(&addr, &common::token("alice"), Default::default());
    assert!(client.is_ok(), "the server serves: {:?}", client.err());
}

#[test]
fn token_refuses_a_key_file_that_does_not_exist_and_creates_nothing() {
    let dir = TempDir::new("missing");
    let path = dir.0.join("nope").join("token.key");
    let output = huddle(&["token", "--user-id", "alice", "--key-file", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains(path.to_str().unwrap()), "the error names the file: {}", stderr(&output));
    assert!(stdout(&output).is_empty(), "no token is printed");
    assert!(!path.exists() && !path.parent().unwrap().exists(), "nothing was created");
}

#[test]
fn token_signs_with_the_key_of_an_existing_key_file() {
    let dir = TempDir::new("existing");
    let path = dir.0.join("token.key");
    std::fs::write(&path, "file-key\n").unwrap();
    let output = huddle(&["token", "--user-id", "alice", "--username", "Alice", "--key-file", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    let token = printed.lines().last().unwrap().trim();
    let claims = huddle::auth::verify(token, &huddle::auth::TokenKey::new("file-key"), common::unix_now()).unwrap();
    assert_eq!((claims.user_id.as_str(), claims.username.as_str()), ("alice", "Alice"));
    // The same claims signed with another key differ: the file's key was used, not a new one.
    assert_ne!(token, token_with("alice", "Alice", claims.expires_at_unix_s, "other"));
}
