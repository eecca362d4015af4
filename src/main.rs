//! The `huddle` binary: `huddle [serve] [flags]` runs the server; `huddle token` mints a token.
//!
//! Configuration: every setting of `serve` is a flag (`--connections-max`), an environment
//! variable (`HUDDLE_CONNECTIONS_MAX`) and a key of the TOML file `--config` names
//! (`connections_max`), in that order of precedence, above the built-in default. The effective
//! configuration is logged at startup with every secret redacted and each value's source.
//!
//! Usage mistakes are clap's (a usage hint, exit 2); a failure at run time (a port in use, a
//! key file that is not there, limits that cannot work, a config file that does not parse) is
//! one `huddle: …` line and exit 1.

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use huddle::admin::key::{self as admin_key, AdminKey};
use huddle::auth::{self, Claims, KeySource, MissingKeyFile};
use huddle::limits::Limits;
use huddle::net::{AdminConfig, Server, ServerConfig};
use serde::de::DeserializeOwned;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

const DEFAULT_LISTEN: &str = "127.0.0.1:7350";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:7351";
const CONFIG_ENV: &str = "HUDDLE_CONFIG";

const AFTER_HELP: &str = "\
Every serve flag also reads the environment variable HUDDLE_<FLAG> (--connections-max:
HUDDLE_CONNECTIONS_MAX) and the key <flag> of the --config TOML file (connections_max);
precedence: flag > environment > file > default.
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
    Serve(Box<ServeArgs>),
    /// Print a session token the server accepts.
    Token(TokenArgs),
}

/// `--admin-listen`: an address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AdminListen {
    Off,
    At(SocketAddr),
}

impl FromStr for AdminListen {
    type Err = String;

    fn from_str(text: &str) -> Result<AdminListen, String> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(AdminListen::Off);
        }
        text.parse().map(AdminListen::At).map_err(|e| format!("{e}: expected ADDR:PORT or off"))
    }
}

impl std::fmt::Display for AdminListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminListen::Off => write!(f, "off"),
            AdminListen::At(addr) => write!(f, "{addr}"),
        }
    }
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// TOML file with any serve setting as a key (`connections_max = 5000`), below flags and
    /// environment variables.
    #[arg(long, value_name = "PATH", env = CONFIG_ENV)]
    config: Option<PathBuf>,
    /// Address and port of the game listener; the WebSocket path is /ws [default: 127.0.0.1:7350]
    #[arg(long, value_name = "ADDR", env = "HUDDLE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address and port of the admin API (metrics, health, tokens, moderation), or `off`
    /// [default: 127.0.0.1:7351]
    #[arg(long, value_name = "ADDR|off", env = "HUDDLE_ADMIN_LISTEN")]
    admin_listen: Option<AdminListen>,
    /// Pin the event-loop thread to CPU N (sched_setaffinity; Linux only).
    #[arg(long, value_name = "N", env = "HUDDLE_CPU")]
    cpu: Option<usize>,
    /// Append a JSON line per ended party to this file (reopened on SIGHUP, for log rotation)
    /// [default: none; history is kept in memory only].
    #[arg(long, value_name = "PATH", env = "HUDDLE_HISTORY_FILE")]
    history_file: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
    /// Admin API key, sent by callers as `Authorization: Bearer KEY` (else the admin key file).
    #[arg(long, value_name = "KEY", env = admin_key::ADMIN_KEY_ENV, hide_env_values = true)]
    admin_key: Option<String>,
    /// Admin key file [default: admin.key beside the token key file]. The server creates it with
    /// a random key (mode 0600) when missing.
    #[arg(long, value_name = "PATH", env = admin_key::ADMIN_KEY_FILE_ENV)]
    admin_key_file: Option<PathBuf>,
    /// Serve the lobby playground, a developer's page, at http://ADMIN_LISTEN/playground (no admin
    /// key needed); its token mint works only while the admin listener is on loopback.
    #[arg(long, env = "HUDDLE_PLAYGROUND", value_parser = clap::builder::BoolishValueParser::new())]
    playground: bool,
    /// Party names containing any line of this file (compared after Unicode NFKC normalisation
    /// and case folding) are refused (SPEC L-7); SIGHUP reads it again. Missing or unreadable at
    /// startup: the server does not start.
    #[arg(long, value_name = "PATH", env = "HUDDLE_NAME_DENY_LIST")]
    name_deny_list: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Args, Debug)]
struct KeyArgs {
    /// HS256 key for session tokens, used as its bytes (else the key file).
    #[arg(long, value_name = "KEY", env = auth::KEY_ENV, hide_env_values = true)]
    token_key: Option<String>,
    /// Key file [default: $XDG_CONFIG_HOME/huddle/token.key, else ~/.config/huddle/token.key].
    /// The server creates it with a random key (mode 0600) when missing; `huddle token` refuses
    /// a named file that does not exist.
    #[arg(long, value_name = "PATH", env = "HUDDLE_KEY_FILE")]
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
    /// The server's config file, for its token_key or key_file.
    #[arg(long, value_name = "PATH", env = CONFIG_ENV)]
    config: Option<PathBuf>,
    /// As for serve: use the same key as the server.
    #[command(flatten)]
    key: KeyArgs,
}

/// Where a setting's value came from, for the startup log.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Source {
    Flag,
    Environment,
    File,
    Default,
}

impl Source {
    /// How `id` reached clap: from the command line or its environment variable (else `None`).
    fn of(matches: &ArgMatches, id: &str) -> Option<Source> {
        match matches.value_source(id) {
            Some(ValueSource::CommandLine) => Some(Source::Flag),
            Some(ValueSource::EnvVariable) => Some(Source::Environment),
            _ => None,
        }
    }

    fn describe(self, flag: &str) -> String {
        match self {
            Source::Flag => format!("--{}", flag.replace('_', "-")),
            Source::Environment => format!("${}", env_name(flag)),
            Source::File => "config file".into(),
            Source::Default => "default".into(),
        }
    }
}

/// `HUDDLE_` and the setting's name in capitals: `connections_max` → `HUDDLE_CONNECTIONS_MAX`.
fn env_name(setting: &str) -> String {
    format!("HUDDLE_{}", setting.to_ascii_uppercase())
}

/// The value by precedence: flag or environment (clap resolved those two), the config file,
/// the default.
fn pick<T>(matches: &ArgMatches, id: &str, given: Option<T>, file: Option<T>, default: T) -> (T, Source) {
    match (given, file) {
        (Some(value), _) => (value, Source::of(matches, id).unwrap_or(Source::Flag)),
        (None, Some(value)) => (value, Source::File),
        (None, None) => (default, Source::Default),
    }
}

/// The limit settings, one line each: `name: type => help`. Each becomes the flag `--name`
/// (with `HUDDLE_NAME` as its fallback), the config-file key `name`, and the `Limits` field
/// `name`; `resolve` builds `Limits` field by field without `..`, so a limit missing from this
/// table does not compile.
macro_rules! limit_flags {
    ($($field:ident: $ty:ty $([$($extra:tt)*])? => $help:literal,)*) => {
        #[derive(Args, Debug)]
        #[command(next_help_heading = "Limits (the README's Limits table says what each does)")]
        struct LimitArgs {
            $(
                #[arg(
                    long,
                    value_name = "N",
                    env = env_name(stringify!($field)),
                    help = format!("{} [default: {}]", $help, Limits::default().$field),
                    $($($extra)*)?
                )]
                $field: Option<$ty>,
            )*
        }

        /// The limits a config file sets; any other key is refused.
        #[derive(serde::Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields)]
        struct LimitFile {
            $($field: Option<$ty>,)*
        }

        impl LimitArgs {
            /// Every limit by precedence, and where each came from (in field order).
            fn resolve(&self, matches: &ArgMatches, file: &LimitFile) -> (Limits, Vec<(&'static str, Source)>) {
                let default = Limits::default();
                let mut sources = Vec::new();
                let limits = Limits {
                    $($field: {
                        let (value, source) = pick(matches, stringify!($field), self.$field, file.$field, default.$field);
                        sources.push((stringify!($field), source));
                        value
                    },)*
                };
                (limits, sources)
            }
        }

        /// Every limit's name and value, in field order.
        fn limit_values(limits: &Limits) -> Vec<(&'static str, String)> {
            vec![$((stringify!($field), limits.$field.to_string()),)*]
        }
    };
}

limit_flags! {
    connections_max: usize => "Open game connections; more are accepted and closed at once",
    accepts_per_turn_max: usize => "Connections accepted per loop turn",
    handshake_bytes_max: usize => "Bytes of the WebSocket upgrade request; more gets 431",
    handshake_timeout_ms: u64 => "Time allowed for the WebSocket upgrade, in ms",
    message_bytes_max: usize => "Largest client frame/message; bigger closes with 1009",
    read_buffer_bytes: usize => "Per-connection frame buffer (grows for large frames)",
    read_batch_bytes: usize => "Bytes one recv may bring in (one buffer for the loop)",
    frames_per_turn_max: usize => "Frames read from one connection per loop turn",
    outbound_bytes_max: usize => "Unsent bytes per connection before it is cut off",
    write_bytes_per_turn_max: usize => "Bytes written to one connection per loop turn",
    flush_batch_bytes: usize => "Output per waiting connection that is written mid-turn (0 = at the turn's end)",
    outbound_soft_bytes_max: usize => "Unsent bytes tolerated for outbound_soft_duration_ms",
    outbound_soft_duration_ms: u64 => "How long a connection may stay over the soft limit, in ms",
    requests_per_second_max: u32 => "Sustained requests per second per connection",
    requests_burst_max: u32 => "Requests a connection may send at once above that",
    rate_limited_close_ms: u64 => "Refused by the rate limit this long without pause: closed, in ms",
    keepalive_interval_ms: u64 => "Silence before a WebSocket ping, in ms",
    close_linger_ms: u64 => "Time a closing connection may take to flush, in ms",
    shutdown_drain_ms: u64 => "Time a graceful shutdown waits for clients, in ms",
    party_members_max: usize => "Largest party max_size (at most 256)",
    party_label_bytes_max: usize => "Bytes of a party label",
    parties_per_session_max: usize => "Parties a session may be in or have asked to join",
    party_data_bytes_max: usize => "Bytes of one party data payload",
    status_bytes_max: usize => "Bytes of one status",
    follows_per_session_max: usize => "Users one session may follow",
    follow_ids_per_request_max: usize => "Users one follow request may resolve to (its ids and every user its usernames name); user ids per unfollow",
    search_query_bytes_max: usize => "Bytes of one party search query",
    search_query_terms_max: usize => "Terms in one party search query",
    search_page_limit_max: usize => "Largest search page (at most 100)",
    search_page_limit_default: usize => "Search page size when a request names none",
    search_wildcard_expansion_max: usize => "Indexed values one wildcard term may match",
    search_wildcard_scan_max: usize => "Indexed values one wildcard term may inspect",
    party_label_values_max: usize => "Values (strings, numbers, booleans) one party label may index",
    party_label_fields_max: usize => "Distinct fields one party label's values may fall under",
    search_index_bytes_max: usize => "Search index memory, estimated bytes; past it labels are refused",
    search_query_cost_max: u64 => "Cost units one search may spend",
    search_budget_cost_per_ms: u64 => "Search cost units a session's budget regains per ms",
    search_budget_burst_cost: u64 => "Search cost units a session's budget holds at most",
    admin_connections_max: usize => "Open admin API connections",
    admin_head_bytes_max: usize => "Bytes of one admin request head; more gets 431",
    admin_body_bytes_max: usize => "Bytes of one admin request body; more gets 413",
    admin_request_timeout_ms: u64 => "Time for one admin request to arrive (and keep-alive idle), in ms",
    admin_requests_per_turn_max: usize => "Admin requests answered per loop turn",
    admin_bans_max: usize => "User ids banned at once",
    sessions_per_user_max: usize => "Sessions one user may have; one more gets HTTP 429",
    connections_per_ip_max: usize => "Open connections from one address (0 = no bound)",
    handshakes_per_ip_per_second_max: u32 => "New connections per second from one address (0 = no bound)",
    message_fragments_max: usize => "Frames one message may be split into; more closes with 1008",
    message_assembly_ms_max: u64 => "Time a fragmented message may take to complete, in ms",
    extra_frames_per_second_max: u32 => "Control and continuation frames per second per connection",
    extra_frames_burst_max: u32 => "Control and continuation frames a connection may send at once above that",
    closing_discard_bytes_max: usize => "Bytes a closing connection's reads may discard before the server stops reading",
    one_party_per_user: bool [
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    ] => "Keep every user in at most one party (SPEC L-1); the flag alone means true",
    invitation_ttl_ms: u64 => "How long an invitation stays pending, in ms",
    invitations_per_party_max: usize => "Pending invitations per party",
    invitations_per_user_max: usize => "Pending invitations per invitee user",
    invitees_per_request_max: usize => "Invitees in one invite request (at most 256)",
    code_misses_per_minute_max: usize => "Wrong party codes one session may try in any 60 s",
    party_name_bytes_max: usize => "Bytes of a party name",
    name_deny_list_entries_max: usize => "Entries the name deny-list file may hold",
    party_custom_data_bytes_max: usize => "Bytes of one party custom data string (global or a member's)",
    chat_body_bytes_max: usize => "Bytes of one party chat message body",
    chat_messages_per_window_max: usize => "Chat messages one session may send in any chat_window_ms",
    chat_window_ms: u64 => "The chat rate limit's sliding window, in ms",
    party_attributes_bytes_max: usize => "Bytes of a party's attributes (admin API)",
    social_friends_per_user_max: usize => "Friends in one user's list (admin API)",
    social_blocks_per_user_max: usize => "Blocked users in one user's list (admin API)",
    social_entries_max: usize => "Friend and block entries in the whole social table",
    social_users_per_write_max: usize => "Users one bulk social write (PUT /v1/social) may name",
    admin_page_limit_max: usize => "Largest (and default) limit of an admin list route",
    admin_response_bytes_max: usize => "Bytes of one page of an admin list route (at least one item)",
    history_records_max: usize => "Finished party history records kept in memory",
    history_entries_per_party_max: usize => "Member and leader entries one party's history record keeps",
    history_buffer_bytes_max: usize => "Bytes of history lines waiting for the history file",
    history_write_bytes_per_turn_max: usize => "Bytes written to the history file per loop turn",
}

/// A `--config` file: the serve settings that are not limits, then the limits.
#[derive(Debug, Default)]
struct ConfigFile {
    listen: Option<SocketAddr>,
    admin_listen: Option<AdminListen>,
    cpu: Option<usize>,
    history_file: Option<PathBuf>,
    token_key: Option<String>,
    key_file: Option<PathBuf>,
    admin_key: Option<String>,
    admin_key_file: Option<PathBuf>,
    playground: Option<bool>,
    name_deny_list: Option<PathBuf>,
    limits: LimitFile,
}

impl ConfigFile {
    fn load(path: Option<&Path>) -> Result<ConfigFile, String> {
        let Some(path) = path else {
            return Ok(ConfigFile::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("config file {}: {e}", path.display()))?;
        ConfigFile::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<ConfigFile, String> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_owned())?;
        let admin_listen = match take::<String>(&mut table, "admin_listen")? {
            Some(text) => Some(text.parse().map_err(|e| format!("admin_listen: {e}"))?),
            None => None,
        };
        Ok(ConfigFile {
            listen: take(&mut table, "listen")?,
            admin_listen,
            cpu: take(&mut table, "cpu")?,
            history_file: take(&mut table, "history_file")?,
            token_key: take(&mut table, "token_key")?,
            key_file: take(&mut table, "key_file")?,
            admin_key: take(&mut table, "admin_key")?,
            admin_key_file: take(&mut table, "admin_key_file")?,
            playground: take(&mut table, "playground")?,
            name_deny_list: take(&mut table, "name_deny_list")?,
            limits: toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| e.message().to_owned())?,
        })
    }
}

/// Takes `key` out of `table` as a `T`; an error names the key.
fn take<T: DeserializeOwned>(table: &mut toml::Table, key: &str) -> Result<Option<T>, String> {
    match table.remove(key) {
        None => Ok(None),
        Some(value) => value.try_into().map(Some).map_err(|e: toml::de::Error| format!("{key}: {}", e.message())),
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Some(Command::Token(args)) => token(args),
        Some(Command::Serve(args)) => {
            // Invariant: clap parsed a serve subcommand, so its matches exist.
            let serve_matches = matches.subcommand_matches("serve").unwrap_or(&matches);
            serve(*args, serve_matches)
        }
        None => serve(cli.serve, &matches),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("huddle: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The token key file by precedence: `--key-file`/`$HUDDLE_KEY_FILE`, the config file, the
/// per-user default.
fn token_key_file(args: &KeyArgs, file: &ConfigFile) -> PathBuf {
    args.key_file.clone().or_else(|| file.key_file.clone()).unwrap_or_else(auth::default_key_file)
}

/// The token key by precedence: `--token-key`/`$HUDDLE_TOKEN_KEY`, the config file, the key file.
fn load_token_key(
    args: &KeyArgs,
    file: &ConfigFile,
    key_file: &Path,
    missing: MissingKeyFile,
) -> Result<(auth::TokenKey, KeySource), String> {
    let given = args.token_key.as_deref().or(file.token_key.as_deref());
    auth::load_key(given, None, key_file, missing).map_err(|e| format!("token key file {}: {e}", key_file.display()))
}

/// One line of the effective configuration.
struct Shown {
    name: &'static str,
    /// As TOML: a number, or a quoted string.
    value: String,
    source: Source,
}

fn quoted(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

fn serve(args: ServeArgs, matches: &ArgMatches) -> Result<(), String> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let mut shown = Vec::new();
    let default_listen: SocketAddr = DEFAULT_LISTEN.parse().map_err(|_| "bad built-in default address")?;
    let (listen, source) = pick(matches, "listen", args.listen, file.listen, default_listen);
    shown.push(Shown { name: "listen", value: quoted(&listen.to_string()), source });
    let default_admin: AdminListen = DEFAULT_ADMIN_LISTEN.parse()?;
    let (admin_listen, source) = pick(matches, "admin_listen", args.admin_listen, file.admin_listen, default_admin);
    shown.push(Shown { name: "admin_listen", value: quoted(&admin_listen.to_string()), source });
    let given = Source::of(matches, "playground").map(|_| args.playground);
    let (playground, source) = pick(matches, "playground", given, file.playground, false);
    if playground {
        if admin_listen == AdminListen::Off {
            return Err("--playground is served by the admin listener, which --admin-listen turned off".into());
        }
        shown.push(Shown { name: "playground", value: "true".into(), source });
    }
    let (cpu, source) = pick(matches, "cpu", args.cpu.map(Some), file.cpu.map(Some), None);
    if let Some(cpu) = cpu {
        shown.push(Shown { name: "cpu", value: cpu.to_string(), source });
    }
    let (history_file, source) =
        pick(matches, "history_file", args.history_file.clone().map(Some), file.history_file.clone().map(Some), None);
    if let Some(path) = &history_file {
        shown.push(Shown { name: "history_file", value: quoted(&path.display().to_string()), source });
    }

    let (mut limits, limit_sources) = args.limits.resolve(matches, &file.limits);
    if limit_sources.iter().any(|(name, source)| *name == "outbound_soft_bytes_max" && *source == Source::Default) {
        // The soft limit is a fraction of the hard one; never above a lowered hard limit.
        limits.outbound_soft_bytes_max = limits.outbound_soft_bytes_max.min(limits.outbound_bytes_max);
    }
    fit_connections_to_file_limit(&mut limits);
    limits.validate().map_err(|e| e.to_string())?;

    let key_file = token_key_file(&args.key, &file);
    let (token_key, source) = load_token_key(&args.key, &file, &key_file, MissingKeyFile::Create)?;
    let token_key_source = match &source {
        KeySource::Flag => Source::of(matches, "token_key").unwrap_or(Source::Flag).describe("token_key"),
        KeySource::Environment => Source::Environment.describe("token_key"),
        KeySource::ExistingFile(path) => format!("key file {}", path.display()),
        KeySource::CreatedFile(path) => format!("key file {}, created now", path.display()),
    };
    let token_key_source =
        if args.key.token_key.is_none() && file.token_key.is_some() { "config file".into() } else { token_key_source };

    let admin = match admin_listen {
        AdminListen::Off => None,
        AdminListen::At(listen) => {
            let (key, description) = load_admin_key(&args, matches, &file, &key_file)?;
            Some((AdminConfig { listen, key, playground }, description))
        }
    };

    if let Some(cpu) = cpu {
        huddle::os::pin_current_thread(cpu).map_err(|e| format!("--cpu {cpu}: {e}"))?;
        log::info!("event loop pinned to cpu {cpu}");
    }
    let admin_description = admin.as_ref().map(|(_, description)| description.clone());
    let (name_deny_list, source) = pick(
        matches,
        "name_deny_list",
        args.name_deny_list.clone().map(Some),
        file.name_deny_list.clone().map(Some),
        None,
    );
    if let Some(path) = &name_deny_list {
        shown.push(Shown { name: "name_deny_list", value: quoted(&path.display().to_string()), source });
    }
    let config = ServerConfig {
        listen,
        limits: limits.clone(),
        token_key,
        admin: admin.map(|(config, _)| config),
        name_deny_list,
        history_file,
    };
    // A bind error names its address and listener ("on 127.0.0.1:7351 (admin): …").
    let server = Server::bind(config).map_err(|e| match e.to_string() {
        bind if bind.starts_with("on ") => format!("cannot listen {bind}"),
        other => format!("cannot start: {other}"),
    })?;
    let handle = server.handle();
    let hooked = huddle::os::on_shutdown_signal(move |signal| {
        log::info!("{signal} received: shutting down");
        handle.shutdown();
    })
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    if !hooked {
        log::info!("no shutdown signals on this platform: Ctrl-C stops the server without a drain");
    }
    let handle = server.handle();
    let hooked = huddle::os::on_reload_signal(move || {
        log::info!("SIGHUP received: reloading");
        handle.reload();
    })
    .map_err(|e| format!("cannot install the reload signal handler: {e}"))?;
    if !hooked {
        log::info!(
            "no SIGHUP on this platform: the name deny-list is read and the history file opened at startup only"
        );
    }

    let mut text = String::from("effective configuration (TOML; secrets redacted):\n");
    for line in &shown {
        let _ = writeln!(text, "{} = {}  # {}", line.name, line.value, line.source.describe(line.name));
    }
    let _ = writeln!(text, "token_key = \"<redacted>\"  # {token_key_source}");
    let _ = writeln!(text, "key_file = {}", quoted(&key_file.display().to_string()));
    if let Some(description) = &admin_description {
        let _ = writeln!(text, "admin_key = \"<redacted>\"  # {description}");
    }
    for ((name, value), (_, source)) in limit_values(&limits).iter().zip(&limit_sources) {
        let _ = writeln!(text, "{name} = {value}  # {}", source.describe(name));
    }
    log::info!("{}", text.trim_end());
    log::info!("huddle {} listening on ws://{}/ws", env!("CARGO_PKG_VERSION"), server.local_addr());
    if let Some(admin) = server.handle().admin_addr() {
        log::info!("admin API listening on http://{admin} (metrics: http://{admin}/metrics)");
        if playground {
            log::info!("playground: http://{admin}/playground");
            if let Some(refusal) = huddle::admin::playground::mint_refusal(admin) {
                log::warn!("{refusal}");
            }
        }
    }
    server.run().map_err(|e| format!("server stopped: {e}"))
}

/// The admin key by precedence: `--admin-key`/`$HUDDLE_ADMIN_KEY`, the config file, the admin
/// key file (`--admin-key-file`/`$HUDDLE_ADMIN_KEY_FILE`, the config file, `admin.key` beside the
/// token key file), created with a random key when missing. Returns where it came from (a path
/// at most, never the key).
fn load_admin_key(
    args: &ServeArgs,
    matches: &ArgMatches,
    file: &ConfigFile,
    token_key_file: &Path,
) -> Result<(AdminKey, String), String> {
    let given = args.admin_key.as_deref().filter(|k| !k.is_empty());
    if let Some(key) = given {
        let source = Source::of(matches, "admin_key").unwrap_or(Source::Flag).describe("admin_key");
        return Ok((AdminKey::new(key.as_bytes()), source));
    }
    if let Some(key) = file.admin_key.as_deref().filter(|k| !k.is_empty()) {
        return Ok((AdminKey::new(key.as_bytes()), "config file".into()));
    }
    let path = args
        .admin_key_file
        .clone()
        .or_else(|| file.admin_key_file.clone())
        .unwrap_or_else(|| admin_key::default_admin_key_file(token_key_file));
    let (key, source) = auth::load_key(None, None, &path, MissingKeyFile::Create)
        .map_err(|e| format!("admin key file {}: {e}", path.display()))?;
    let description = match source {
        KeySource::CreatedFile(path) => {
            log::info!("created admin key file {}", path.display());
            format!("key file {}, created now", path.display())
        }
        _ => format!("key file {}", path.display()),
    };
    Ok((AdminKey::new(key.as_bytes()), description))
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
    let usable = (open_files_max.saturating_sub(RESERVED_FDS) as usize).saturating_sub(limits.admin_connections_max);
    if limits.connections_max > usable {
        log::warn!("connections_max {} exceeds the open-file limit; using {usable}", limits.connections_max);
        limits.connections_max = usable.max(1);
    }
}

fn token(args: TokenArgs) -> Result<(), String> {
    let username = args.username.as_deref().unwrap_or(&args.user_id);
    for (field, value) in [("--user-id", args.user_id.as_str()), ("--username", username)] {
        if value.len() > auth::CLAIM_BYTES_MAX || !auth::is_visible_name(value) {
            return Err(format!(
                "{field} must be 1..={} bytes, not blank, without control or format characters",
                auth::CLAIM_BYTES_MAX
            ));
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
    let file = ConfigFile::load(args.config.as_deref())?;
    // A key file named on purpose must exist: a token signed with a key made up here would be
    // refused by every server. The default file is created, as the server's first start does.
    let named = args.key.key_file.is_some() || file.key_file.is_some();
    let missing = if named { MissingKeyFile::Refuse } else { MissingKeyFile::Create };
    let key_file = token_key_file(&args.key, &file);
    let (key, _) = load_token_key(&args.key, &file, &key_file, missing)?;
    println!("{}", auth::mint(&claims, &key));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_matches(args: &[&str]) -> (ServeArgs, ArgMatches) {
        let matches = Cli::command().try_get_matches_from(args).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        (cli.serve, matches)
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_limit_comes_from_its_flag_else_the_file_else_the_default() {
        let (args, matches) = serve_matches(&["huddle", "--connections-max", "7", "--outbound-bytes-max", "100000"]);
        let file =
            ConfigFile::parse("connections_max = 9\nmessage_bytes_max = 4000\nlisten = \"127.0.0.1:1\"").unwrap();
        let (limits, sources) = args.limits.resolve(&matches, &file.limits);
        let expected =
            Limits { connections_max: 7, outbound_bytes_max: 100_000, message_bytes_max: 4000, ..Limits::default() };
        assert_eq!(limits, expected);
        let source = |name| sources.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(
            (source("connections_max"), source("message_bytes_max"), source("frames_per_turn_max")),
            (Source::Flag, Source::File, Source::Default)
        );
        assert_eq!(file.listen, Some("127.0.0.1:1".parse().unwrap()));
    }

    #[test]
    fn config_files_with_unknown_keys_or_wrong_types_are_refused_naming_the_key() {
        let unknown = ConfigFile::parse("connections_maxx = 1").unwrap_err();
        assert!(unknown.contains("connections_maxx"), "{unknown}");
        let wrong = ConfigFile::parse("listen = 5").unwrap_err();
        assert!(wrong.starts_with("listen:"), "{wrong}");
        let off = ConfigFile::parse("admin_listen = \"off\"").unwrap();
        assert_eq!(off.admin_listen, Some(AdminListen::Off));
        assert!(ConfigFile::parse("admin_listen = \"nowhere\"").unwrap_err().starts_with("admin_listen:"));
    }

    #[test]
    fn the_playground_comes_from_its_flag_else_the_environment_else_the_file() {
        let file = ConfigFile::parse("playground = true").unwrap();
        assert_eq!(file.playground, Some(true));
        let (args, matches) = serve_matches(&["huddle", "--playground"]);
        assert!(args.playground);
        assert_eq!(Source::of(&matches, "playground"), Some(Source::Flag));
        let (args, matches) = serve_matches(&["huddle"]);
        assert_eq!(Source::of(&matches, "playground").map(|_| args.playground), None, "unset: the file decides");
        assert!(ConfigFile::parse("playground = \"yes\"").unwrap_err().starts_with("playground:"));
    }

    #[test]
    fn environment_names_are_the_setting_in_capitals() {
        assert_eq!(env_name("connections_max"), "HUDDLE_CONNECTIONS_MAX");
    }

    #[test]
    fn lobby_flags_set_their_options() {
        let (args, matches) = serve_matches(&["huddle", "--one-party-per-user", "--invitation-ttl-ms", "250"]);
        let (limits, _) = args.limits.resolve(&matches, &LimitFile::default());
        assert!(limits.one_party_per_user, "the flag alone means true");
        assert_eq!(limits.invitation_ttl_ms, 250);
        let (args, matches) = serve_matches(&["huddle", "--one-party-per-user=false"]);
        assert!(!args.limits.resolve(&matches, &LimitFile::default()).0.one_party_per_user);
        let (args, matches) = serve_matches(&["huddle"]);
        let (limits, _) = args.limits.resolve(&matches, &LimitFile::default());
        assert!(!limits.one_party_per_user, "off by default: Nakama semantics");
        let file = ConfigFile::parse("one_party_per_user = true").unwrap();
        assert!(args.limits.resolve(&matches, &file.limits).0.one_party_per_user);
    }
}
