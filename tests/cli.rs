//! The `huddle` command line, run as the built binary: version and per-subcommand help, usage
//! mistakes answered by a usage hint (exit 2), run-time failures (a port in use, a key file that
//! is not there, limits that cannot work, a taken admin port, a bad config file) answered by one
//! error line without a hint (exit 1), settings reaching the server from flag, environment,
//! config file or default in that order (read back from the startup log, with keys redacted),
//! the admin key file created beside the token key file, `huddle token` with key files, and
//! SIGHUP reopening the history file after log rotation (Unix). Servers it starts listen
//! on `127.0.0.1:0` with an explicit key and are killed when the test ends; waits are
//! deadlines on the server's log, never sleeps.

mod common;

use common::{token_with, Watchdog, KEY, WAIT};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

fn huddle(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_huddle"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("HUDDLE_")) {
        command.env_remove(name);
    }
    command.args(args).env("RUST_LOG", "info").output().expect("run huddle")
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
    let output = huddle(&["--listen", &addr, "--token-key", KEY, "--admin-listen", "off"]);
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

/// A running `huddle` whose log lines arrive on a channel.
struct Running {
    child: KillOnDrop,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    /// Starts `huddle ARGS` with `envs` (and no other HUDDLE_* variable) and info logging.
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut command = Command::new(env!("CARGO_BIN_EXE_huddle"));
        command.args(args).env("RUST_LOG", "info").stderr(Stdio::piped());
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("HUDDLE_")) {
            command.env_remove(name);
        }
        command.envs(envs.iter().copied());
        let mut child = KillOnDrop(command.spawn().expect("start huddle"));
        let stderr = BufReader::new(child.0.stderr.take().unwrap());
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines, log: Vec::new() }
    }

    /// Reads log lines until one contains `text`; returns what follows `text` on it.
    fn wait_for(&mut self, text: &str) -> String {
        loop {
            let line =
                self.lines.recv_timeout(WAIT).unwrap_or_else(|_| panic!("no {text:?} in:\n{}", self.log.join("\n")));
            self.log.push(line.clone());
            if let Some(rest) = line.split(text).nth(1) {
                return rest.to_owned();
            }
        }
    }

    /// The effective configuration's line for `name` (`name = value  # source`).
    fn setting(&self, name: &str) -> String {
        let prefix = format!("{name} = ");
        let line = self.log.iter().map(|l| l.trim_start()).find(|l| l.starts_with(&prefix));
        line.unwrap_or_else(|| panic!("no {name} in:\n{}", self.log.join("\n"))).to_owned()
    }
}

/// Bare `huddle [flags]` serves, and a limit flag reaches the limits the server runs with.
#[test]
fn bare_huddle_serves_with_the_limits_given() {
    let _watchdog = Watchdog::start(WAIT * 3);
    let mut server = Running::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
            "--token-key",
            KEY,
            "--connections-max",
            "7",
            "--message-bytes-max",
            "4000",
        ],
        &[],
    );
    let addr = server.wait_for("listening on ws://").trim_end_matches("/ws").to_owned();
    assert_eq!(server.setting("connections_max"), "connections_max = 7  # --connections-max");
    assert_eq!(server.setting("message_bytes_max"), "message_bytes_max = 4000  # --message-bytes-max");
    assert_eq!(server.setting("admin_listen"), "admin_listen = \"off\"  # --admin-listen");
    let client = huddle::client::Client::connect(&addr, &common::token("alice"), Default::default());
    assert!(client.is_ok(), "the server serves: {:?}", client.err());
}

/// Each setting comes from its flag, else its HUDDLE_* variable, else the --config file, else
/// its default, and the startup log says which, with every key redacted.
#[test]
fn settings_come_from_flag_then_environment_then_config_file_then_default() {
    let _watchdog = Watchdog::start(WAIT * 3);
    let dir = TempDir::new("precedence");
    let config = dir.0.join("huddle.toml");
    std::fs::write(
        &config,
        "connections_max = 5\nmessage_bytes_max = 5000\nrequests_burst_max = 77\nlisten = \"127.0.0.1:0\"\n\
         admin_listen = \"127.0.0.1:0\"\nadmin_key = \"file-admin-secret\"\n",
    )
    .unwrap();
    let mut server = Running::start(
        &["--config", config.to_str().unwrap(), "--connections-max", "7", "--token-key", "flag-token-secret"],
        &[("HUDDLE_CONNECTIONS_MAX", "6"), ("HUDDLE_MESSAGE_BYTES_MAX", "6000")],
    );
    server.wait_for("admin API listening on http://");
    assert_eq!(server.setting("connections_max"), "connections_max = 7  # --connections-max", "flag over env and file");
    assert_eq!(
        server.setting("message_bytes_max"),
        "message_bytes_max = 6000  # $HUDDLE_MESSAGE_BYTES_MAX",
        "env over file"
    );
    assert_eq!(server.setting("requests_burst_max"), "requests_burst_max = 77  # config file", "file over default");
    assert_eq!(server.setting("frames_per_turn_max"), "frames_per_turn_max = 64  # default");
    assert_eq!(server.setting("listen"), "listen = \"127.0.0.1:0\"  # config file");
    assert_eq!(server.setting("token_key"), "token_key = \"<redacted>\"  # --token-key");
    assert_eq!(server.setting("admin_key"), "admin_key = \"<redacted>\"  # config file");
    let log = server.log.join("\n");
    assert!(!log.contains("flag-token-secret") && !log.contains("file-admin-secret"), "a key was logged:\n{log}");
}

#[test]
fn a_bad_config_file_or_environment_value_is_refused_naming_it() {
    let dir = TempDir::new("bad-config");
    let config = dir.0.join("huddle.toml");
    std::fs::write(&config, "conections_max = 5\n").unwrap();
    let output = huddle(&["--config", config.to_str().unwrap(), "--token-key", KEY, "--admin-listen", "off"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("conections_max"), "the error names the key: {}", stderr(&output));
    let output = Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(["--token-key", KEY, "--admin-listen", "off"])
        .env("HUDDLE_CONNECTIONS_MAX", "many")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("many"), "{}", stderr(&output));
}

/// The admin key file is created beside the token key file (0600 on Unix), its path logged and
/// its key not, and the admin API takes that key.
#[test]
fn the_admin_key_file_is_created_beside_the_token_key_file_and_its_key_works() {
    use std::io::{Read, Write};
    let _watchdog = Watchdog::start(WAIT * 3);
    let dir = TempDir::new("admin-key");
    let token_file = dir.0.join("token.key");
    std::fs::write(&token_file, "file-key\n").unwrap();
    let mut server = Running::start(
        &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--key-file", token_file.to_str().unwrap()],
        &[],
    );
    let admin = server.wait_for("admin API listening on http://");
    let admin = admin.split_whitespace().next().unwrap().to_owned();
    let admin_file = dir.0.join("admin.key");
    let key = std::fs::read_to_string(&admin_file).expect("admin.key beside token.key").trim().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&admin_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let log = server.log.join("\n");
    assert!(log.contains(admin_file.to_str().unwrap()), "the path is logged:\n{log}");
    assert!(!log.contains(&key), "the key is not:\n{log}");
    let mut http = std::net::TcpStream::connect(&admin).unwrap();
    http.set_read_timeout(Some(WAIT)).unwrap();
    write!(http, "DELETE /v1/users/nobody/ban HTTP/1.1\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
}

#[test]
fn an_admin_port_in_use_is_a_startup_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = huddle(&["--listen", "127.0.0.1:0", "--admin-listen", &addr, "--token-key", KEY, "--admin-key", "k"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains(&format!("huddle: cannot listen on {addr} (admin)")), "{}", stderr(&output));
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

/// Log rotation: the history file is moved away, SIGHUP makes the server open the path again,
/// and the next party's line goes to the new file while the moved one keeps its line.
#[cfg(unix)]
#[test]
fn sighup_reopens_the_history_file_after_it_was_moved_away() {
    let _watchdog = Watchdog::start(WAIT * 3);
    let dir = TempDir::new("sighup");
    let path = dir.0.join("history.jsonl");
    let mut server = Running::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
            "--token-key",
            KEY,
            "--history-file",
            path.to_str().unwrap(),
        ],
        &[],
    );
    let addr = server.wait_for("listening on ws://").trim_end_matches("/ws").to_owned();
    assert!(server.setting("history_file").ends_with("# --history-file"), "{}", server.setting("history_file"));
    let mut alice = huddle::client::Client::connect(&addr, &common::token("alice"), Default::default()).unwrap();
    let party_lives_and_ends = |client: &mut huddle::client::Client| {
        let snapshot = match client.party_create(true, 2, "", false) {
            Ok(Ok(snapshot)) => snapshot,
            other => panic!("create: {other:?}"),
        };
        assert!(matches!(client.party_close(snapshot.party_id), Ok(Ok(()))));
        snapshot.party_id.to_string()
    };
    let wait_file = |path: &std::path::Path, lines: usize| -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= lines {
                return text;
            }
            assert!(std::time::Instant::now() < deadline, "{} never had {lines} lines: {text:?}", path.display());
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    };
    let first = party_lives_and_ends(&mut alice);
    assert!(wait_file(&path, 1).contains(&first));

    let rotated = dir.0.join("history.jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();
    let pid = server.child.0.id().to_string();
    let kill = Command::new("kill").args(["-HUP", &pid]).status().expect("run kill");
    assert!(kill.success());
    server.wait_for("SIGHUP received");
    let deadline = std::time::Instant::now() + WAIT;
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "the path was not opened again");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let second = party_lives_and_ends(&mut alice);
    let new_file = wait_file(&path, 1);
    assert!(new_file.contains(&second) && !new_file.contains(&first), "{new_file}");
    let old_file = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(old_file.lines().count(), 1, "the moved file keeps only what was written before: {old_file}");
    assert!(old_file.contains(&first));
}
