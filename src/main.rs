//! The `huddle` binary: `huddle [serve] [flags]` runs the server; `huddle token` mints a token.

use huddle::auth::{self, Claims, KeySource};
use huddle::limits::Limits;
use huddle::net::{self, Server, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_LISTEN: &str = "127.0.0.1:7350";

const HELP: &str = "\
huddle: real-time party and presence server for games

USAGE:
    huddle [serve] [OPTIONS]     run the server (the default command)
    huddle token [OPTIONS]       print a session token the server accepts
    huddle --help                this text

SERVE OPTIONS:
    --listen ADDR                address and port to listen on [default: 127.0.0.1:7350]
    --cpu N                      pin the event-loop thread to CPU N (sched_setaffinity)
    --token-key KEY              HS256 key for session tokens (else $HUDDLE_TOKEN_KEY, else the key file)
    --key-file PATH              key file, created with a random key (mode 0600) when missing
                                 [default: $HUDDLE_KEY_FILE, else $XDG_CONFIG_HOME/huddle/token.key,
                                 else ~/.config/huddle/token.key]
    --connections-max N          open connections; more are accepted and closed at once [default: 10000]
    --message-bytes-max N        largest client frame/message; bigger closes with 1009 [default: 16384]
    --outbound-bytes-max N       unsent bytes per connection before it is cut off [default: 1048576]
    --handshake-timeout-ms N     time allowed for the WebSocket upgrade [default: 5000]
    --requests-per-second-max N  sustained requests per second per connection [default: 250]
    --requests-burst-max N       requests a connection may send at once above that [default: 500]
    --read-buffer-bytes N        per-connection frame buffer (grows for large frames) [default: 256]

TOKEN OPTIONS:
    --user-id ID                 the token's uid claim (required)
    --username NAME              the token's usn claim [default: the user id]
    --expires-in SECONDS         lifetime [default: 86400]
    --token-key KEY, --key-file PATH   as for serve: use the same key as the server

Logging: RUST_LOG=info (default), debug for connection lifecycle, trace per message.
The token is printed alone on the last line of stdout: TOKEN=$(huddle token --user-id alice | tail -n1)
";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--help" | "-h" | "help") => {
            print!("{HELP}");
            Ok(())
        }
        Some("token") => token(&args[1..]),
        Some("serve") => serve(&args[1..]),
        _ => serve(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("huddle: {message}");
            eprintln!("run `huddle --help` for usage");
            ExitCode::from(2)
        }
    }
}

/// Flags as `--name value` pairs, checked against the names a command knows.
struct Flags(Vec<(String, String)>);

impl Flags {
    fn parse(args: &[String], known: &[&str]) -> Result<Flags, String> {
        let mut pairs = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown argument {arg}"));
            }
            let value = match value {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i).cloned().ok_or_else(|| format!("{name} needs a value"))?
                }
            };
            pairs.push((name, value));
            i += 1;
        }
        Ok(Flags(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.get(name).map(|v| v.parse().map_err(|_| format!("{name}: not a number: {v}"))).transpose()
    }
}

fn load_key(flags: &Flags) -> Result<(auth::TokenKey, KeySource), String> {
    let key_file = flags.get("--key-file").map(PathBuf::from).unwrap_or_else(auth::default_key_file);
    let env = std::env::var(auth::KEY_ENV).ok();
    auth::load_or_create_key(flags.get("--token-key"), env.as_deref(), &key_file)
        .map_err(|e| format!("token key file {}: {e}", key_file.display()))
}

fn serve(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(
        args,
        &[
            "--listen",
            "--cpu",
            "--token-key",
            "--key-file",
            "--connections-max",
            "--message-bytes-max",
            "--outbound-bytes-max",
            "--handshake-timeout-ms",
            "--requests-per-second-max",
            "--requests-burst-max",
            "--read-buffer-bytes",
        ],
    )?;
    let listen: SocketAddr =
        flags.get("--listen").unwrap_or(DEFAULT_LISTEN).parse().map_err(|e| format!("--listen: {e}"))?;
    let mut limits = Limits::default();
    if let Some(n) = flags.number("--connections-max")? {
        limits.connections_max = n;
    }
    if let Some(n) = flags.number("--message-bytes-max")? {
        limits.message_bytes_max = n;
    }
    if let Some(n) = flags.number::<usize>("--outbound-bytes-max")? {
        limits.outbound_bytes_max = n;
        // The soft limit is a fraction of the hard one; never let it exceed a lowered hard limit.
        limits.outbound_soft_bytes_max = limits.outbound_soft_bytes_max.min(n);
    }
    if let Some(n) = flags.number("--handshake-timeout-ms")? {
        limits.handshake_timeout_ms = n;
    }
    if let Some(n) = flags.number("--requests-per-second-max")? {
        limits.requests_per_second_max = n;
    }
    if let Some(n) = flags.number("--read-buffer-bytes")? {
        limits.read_buffer_bytes = n;
    }
    if let Some(n) = flags.number("--requests-burst-max")? {
        limits.requests_burst_max = n;
    }
    fit_connections_to_file_limit(&mut limits);
    limits.validate().map_err(|e| e.to_string())?;
    let (token_key, source) = load_key(&flags)?;
    match &source {
        KeySource::Flag => log::info!("token key from --token-key"),
        KeySource::Environment => log::info!("token key from ${}", auth::KEY_ENV),
        KeySource::ExistingFile(path) => log::info!("token key from {}", path.display()),
        KeySource::CreatedFile(path) => {
            log::info!("created token key file {} (mode 0600)", path.display())
        }
    }
    if let Some(cpu) = flags.number::<usize>("--cpu")? {
        net::pin_current_thread(cpu).map_err(|e| format!("--cpu {cpu}: {e}"))?;
        log::info!("event loop pinned to cpu {cpu}");
    }
    let server = Server::bind(ServerConfig { listen, limits: limits.clone(), token_key })
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    install_signal_handlers(server.handle())?;
    log::info!("huddle {} listening on ws://{}/ws", env!("CARGO_PKG_VERSION"), server.local_addr());
    log::info!("limits: {}", limits.describe());
    server.run().map_err(|e| format!("server stopped: {e}"))
}

/// Raises the soft open-file limit to the hard limit (as Redis does) and keeps connections_max
/// under it, so the limit we advertise is one the kernel will honour.
fn fit_connections_to_file_limit(limits: &mut Limits) {
    // Descriptors for the listener, poll, waker, stdio and log files.
    const RESERVED_FDS: u64 = 32;
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    let hard = unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return;
        }
        if rl.rlim_cur < rl.rlim_max {
            let raised = libc::rlimit { rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                rl.rlim_cur = rl.rlim_max;
            }
        }
        rl.rlim_cur
    };
    let usable = hard.saturating_sub(RESERVED_FDS) as usize;
    if limits.connections_max > usable {
        log::warn!("connections_max {} exceeds the open-file limit; using {usable}", limits.connections_max);
        limits.connections_max = usable.max(1);
    }
}

/// SIGINT/SIGTERM start a graceful shutdown through the loop's waker. The signal thread only
/// waits for signals; it never touches server state.
fn install_signal_handlers(handle: net::ServerHandle) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    std::thread::Builder::new()
        .name("huddle-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                log::info!("signal {signal} received: shutting down");
                handle.shutdown();
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

fn token(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--user-id", "--username", "--expires-in", "--token-key", "--key-file"])?;
    let user_id = flags.get("--user-id").ok_or("token: --user-id is required")?;
    let username = flags.get("--username").unwrap_or(user_id);
    let expires_in_s: u64 = flags.number("--expires-in")?.unwrap_or(86_400);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970")?
        .as_secs();
    let claims = Claims {
        user_id: user_id.to_owned(),
        username: username.to_owned(),
        expires_at_unix_s: now.saturating_add(expires_in_s),
    };
    for (field, value) in [("--user-id", &claims.user_id), ("--username", &claims.username)] {
        if value.is_empty() || value.len() > auth::CLAIM_BYTES_MAX {
            return Err(format!("{field} must be 1..={} bytes", auth::CLAIM_BYTES_MAX));
        }
    }
    let (key, _) = load_key(&flags)?;
    println!("{}", auth::mint(&claims, &key));
    Ok(())
}
