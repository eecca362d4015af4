//! The `huddle` binary: `huddle [serve] [flags]` runs the server; `huddle token` mints a token.
//!
//! Usage mistakes are clap's (a usage hint, exit 2); a failure at run time (a port in use, a
//! key file that is not there, limits that cannot work) is one `huddle: …` line and exit 1.

use clap::{Args, Parser, Subcommand};
use huddle::auth::{self, Claims, KeySource, MissingKeyFile};
use huddle::limits::Limits;
use huddle::net::{Server, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_LISTEN: &str = "127.0.0.1:7350";

const AFTER_HELP: &str = "\
Logging: RUST_LOG=info (default), debug for connection lifecycle, trace per message.
The token is printed alone on the last line of stdout: TOKEN=$(huddle token --user-id alice | tail -n1)";

/// huddle: real-time party and presence server for games.
#[derive(Parser, Debug)]
#[command(name = "huddle", version, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand, `huddle [flags]` serves.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default command).
    Serve(ServeArgs),
    /// Print a session token the server accepts.
    Token(TokenArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address and port to listen on; the WebSocket path is /ws.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Pin the event-loop thread to CPU N (sched_setaffinity; Linux only).
    #[arg(long, value_name = "N")]
    cpu: Option<usize>,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Args, Debug)]
struct KeyArgs {
    /// HS256 key for session tokens (else $HUDDLE_TOKEN_KEY, else the key file).
    #[arg(long, value_name = "KEY")]
    token_key: Option<String>,
    /// Key file [default: $HUDDLE_KEY_FILE, else $XDG_CONFIG_HOME/huddle/token.key, else
    /// ~/.config/huddle/token.key]. The server creates it with a random key (mode 0600) when
    /// missing; `huddle token` refuses a named file that does not exist.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// The token's uid claim.
    #[arg(long, value_name = "ID")]
    user_id: String,
    /// The token's usn claim [default: the user id].
    #[arg(long, value_name = "NAME")]
    username: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    expires_in: u64,
    /// As for serve: use the same key as the server.
    #[command(flatten)]
    key: KeyArgs,
}

/// The limit flags, one line each: `--name-of-field` sets the `Limits` field `name_of_field`,
/// typed as the field is, with its default shown from `Limits::default()`. Adding a limit flag
/// (or, later, its environment and config-file fallbacks) is one more line here.
macro_rules! limit_flags {
    ($($field:ident: $ty:ty => $help:literal,)*) => {
        #[derive(Args, Debug)]
        #[command(next_help_heading = "Limits (the README's Limits table says what each does)")]
        struct LimitArgs {
            $(
                #[arg(long, value_name = "N", help = format!("{} [default: {}]", $help, Limits::default().$field))]
                $field: Option<$ty>,
            )*
        }

        impl LimitArgs {
            /// Sets every limit given on the command line; the others keep their defaults.
            fn apply(&self, limits: &mut Limits) {
                $(if let Some(value) = self.$field {
                    limits.$field = value;
                })*
                if let Some(hard) = self.outbound_bytes_max {
                    // The soft limit is a fraction of the hard one; never above a lowered hard limit.
                    limits.outbound_soft_bytes_max = limits.outbound_soft_bytes_max.min(hard);
                }
            }
        }
    };
}

limit_flags! {
    connections_max: usize => "Open connections; more are accepted and closed at once",
    message_bytes_max: usize => "Largest client frame/message; bigger closes with 1009",
    outbound_bytes_max: usize => "Unsent bytes per connection before it is cut off",
    handshake_timeout_ms: u64 => "Time allowed for the WebSocket upgrade, in ms",
    requests_per_second_max: u32 => "Sustained requests per second per connection",
    requests_burst_max: u32 => "Requests a connection may send at once above that",
    read_buffer_bytes: usize => "Per-connection frame buffer (grows for large frames)",
    search_index_bytes_max: usize => "Search index memory, estimated bytes; past it labels are refused",
    search_query_cost_max: u64 => "Cost units one search may spend",
    search_budget_cost_per_ms: u64 => "Search cost units a session's budget regains per ms",
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Token(args)) => token(args),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("huddle: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load_key(args: &KeyArgs, missing: MissingKeyFile) -> Result<(auth::TokenKey, KeySource), String> {
    let key_file = args.key_file.clone().unwrap_or_else(auth::default_key_file);
    let env = std::env::var(auth::KEY_ENV).ok();
    auth::load_key(args.token_key.as_deref(), env.as_deref(), &key_file, missing)
        .map_err(|e| format!("token key file {}: {e}", key_file.display()))
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let mut limits = Limits::default();
    args.limits.apply(&mut limits);
    fit_connections_to_file_limit(&mut limits);
    limits.validate().map_err(|e| e.to_string())?;
    let (token_key, source) = load_key(&args.key, MissingKeyFile::Create)?;
    match &source {
        KeySource::Flag => log::info!("token key from --token-key"),
        KeySource::Environment => log::info!("token key from ${}", auth::KEY_ENV),
        KeySource::ExistingFile(path) => log::info!("token key from {}", path.display()),
        KeySource::CreatedFile(path) => log::info!("created token key file {}", path.display()),
    }
    if let Some(cpu) = args.cpu {
        huddle::os::pin_current_thread(cpu).map_err(|e| format!("--cpu {cpu}: {e}"))?;
        log::info!("event loop pinned to cpu {cpu}");
    }
    let listen = args.listen;
    let server = Server::bind(ServerConfig { listen, limits: limits.clone(), token_key })
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let handle = server.handle();
    let hooked = huddle::os::on_shutdown_signal(move |signal| {
        log::info!("{signal} received: shutting down");
        handle.shutdown();
    })
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    if !hooked {
        log::info!("no shutdown signals on this platform: Ctrl-C stops the server without a drain");
    }
    log::info!("huddle {} listening on ws://{}/ws", env!("CARGO_PKG_VERSION"), server.local_addr());
    log::info!("limits: {}", limits.describe());
    server.run().map_err(|e| format!("server stopped: {e}"))
}

/// Raises the soft open-file limit to the hard one where the OS allows it (Linux) and keeps
/// connections_max under it, so the limit we advertise is one the kernel will honour.
fn fit_connections_to_file_limit(limits: &mut Limits) {
    // Descriptors for the listeners, poll, waker, stdio and log files.
    const RESERVED_FDS: u64 = 32;
    let Some(open_files_max) = huddle::os::raise_open_file_limit() else {
        log::debug!("open-file limit left as the OS sets it");
        return;
    };
    let usable = open_files_max.saturating_sub(RESERVED_FDS) as usize;
    if limits.connections_max > usable {
        log::warn!("connections_max {} exceeds the open-file limit; using {usable}", limits.connections_max);
        limits.connections_max = usable.max(1);
    }
}

fn token(args: TokenArgs) -> Result<(), String> {
    let username = args.username.as_deref().unwrap_or(&args.user_id);
    for (field, value) in [("--user-id", args.user_id.as_str()), ("--username", username)] {
        if value.is_empty() || value.len() > auth::CLAIM_BYTES_MAX {
            return Err(format!("{field} must be 1..={} bytes", auth::CLAIM_BYTES_MAX));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970")?
        .as_secs();
    let claims = Claims {
        user_id: args.user_id.clone(),
        username: username.to_owned(),
        expires_at_unix_s: now.saturating_add(args.expires_in),
    };
    // A key file named on purpose must exist: a token signed with a key made up here would be
    // refused by every server. The default file is created, as the server's first start does.
    let missing = if args.key.key_file.is_some() { MissingKeyFile::Refuse } else { MissingKeyFile::Create };
    let (key, _) = load_key(&args.key, missing)?;
    println!("{}", auth::mint(&claims, &key));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn limit_flags_set_their_field_and_nothing_else() {
        let cli = Cli::try_parse_from(["huddle", "--connections-max", "7", "--outbound-bytes-max", "100000"]).unwrap();
        let mut limits = Limits::default();
        cli.serve.limits.apply(&mut limits);
        let expected = Limits {
            connections_max: 7,
            outbound_bytes_max: 100_000,
            outbound_soft_bytes_max: 100_000,
            ..Limits::default()
        };
        assert_eq!(format!("{limits:?}"), format!("{expected:?}"));
    }
}
