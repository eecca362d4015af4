//! Shared harness for end-to-end tests: a real server on `127.0.0.1:0` in a thread of this
//! process, real tokens signed with its key, blocking clients, and a watchdog so a hung test
//! fails instead of hanging CI. Waits are deadlines on observable state, never sleeps.
#![allow(dead_code)]

use huddle::admin::AdminKey;
use huddle::auth::{self, Claims, TokenKey};
use huddle::client::{Client, ClientError};
use huddle::core::ConnectOptions;
use huddle::limits::Limits;
use huddle::net::{AdminConfig, Server, ServerConfig, ServerHandle, StatsSnapshot};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const KEY: &str = "e2e-test-key";
/// The admin API key of servers started with [`TestServer::with_admin`].
pub const ADMIN_KEY: &str = "e2e-admin-key";
/// Longest any single wait in a test may take before it counts as a failure.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub handle: ServerHandle,
    pub addr: String,
    /// The admin listener's address (servers started with [`TestServer::with_admin`]).
    pub admin_addr: Option<String>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    _watchdog: Watchdog,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> TestServer {
        TestServer::with_config(limits, None, None)
    }

    /// A server that also serves the admin API on 127.0.0.1:0 with [`ADMIN_KEY`].
    pub fn with_admin(limits: Limits) -> TestServer {
        TestServer::with_admin_config(limits, "127.0.0.1:0", false)
    }

    /// [`TestServer::with_admin`] with the admin listener on `admin_listen` and the lobby
    /// playground (`--playground`) on or off.
    pub fn with_admin_config(limits: Limits, admin_listen: &str, playground: bool) -> TestServer {
        let admin =
            AdminConfig { listen: admin_listen.parse().unwrap(), key: AdminKey::new(ADMIN_KEY.as_bytes()), playground };
        TestServer::with_config(limits, Some(admin), None)
    }

    /// [`TestServer::with_admin`], appending party history to `history_file`.
    pub fn with_admin_and_history(limits: Limits, history_file: &std::path::Path) -> TestServer {
        TestServer::with_config(limits, Some(admin_config()), Some(history_file.to_owned()))
    }

    fn with_config(limits: Limits, admin: Option<AdminConfig>, history_file: Option<std::path::PathBuf>) -> TestServer {
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            limits,
            token_key: TokenKey::new(KEY),
            admin,
            history_file,
        };
        let server = Server::bind(config).expect("bind 127.0.0.1:0");
        let handle = server.handle();
        let addr = handle.local_addr().to_string();
        let admin_addr = handle.admin_addr().map(|a| a.to_string());
        let thread = std::thread::Builder::new().name("huddle-test-server".into()).spawn(move || server.run()).unwrap();
        TestServer {
            handle,
            addr,
            admin_addr,
            thread: Some(thread),
            _watchdog: Watchdog::start(Duration::from_secs(120)),
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.handle.stats()
    }

    /// A client for `user_id` (username = user id with the first letter upper-cased).
    pub fn connect(&self, user_id: &str) -> Client {
        self.connect_with(user_id, ConnectOptions::default())
    }

    pub fn connect_with(&self, user_id: &str, options: ConnectOptions) -> Client {
        Client::connect(&self.addr, &token(user_id), options).unwrap_or_else(|e| panic!("connect {user_id}: {e}"))
    }

    pub fn try_connect(&self, token: &str) -> Result<Client, ClientError> {
        Client::connect(&self.addr, token, ConnectOptions::default())
    }

    /// Waits until `condition` holds for the server's stats; panics with the last stats if not.
    pub fn wait_stats(&self, what: &str, condition: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = self.stats();
            if condition(&stats) {
                return stats;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what}; stats: {stats:?}");
            }
            std::thread::yield_now();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Shuts the server down gracefully and returns what `run` returned.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.handle.shutdown();
        self.thread.take().unwrap().join().expect("server thread panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown();
            let result = thread.join();
            if !std::thread::panicking() {
                result.expect("server thread panicked").expect("server run failed");
            }
        }
    }
}

fn admin_config() -> AdminConfig {
    AdminConfig { listen: "127.0.0.1:0".parse().unwrap(), key: AdminKey::new(ADMIN_KEY.as_bytes()), playground: false }
}

/// The value of a party request that must succeed.
pub fn ok<T: std::fmt::Debug>(result: huddle::client::PartyResult<T>) -> T {
    match result {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("request failed: {error:?}"),
        Err(e) => panic!("transport failed: {e}"),
    }
}

/// Every party event that reached `client` before a Pong to a fresh Ping: the server answers in
/// order, so once another connection's request was answered, the events it caused for `client`
/// are ahead of that Pong.
pub fn drain(client: &mut Client) -> Vec<huddle::core::PartyEvent> {
    use huddle::core::{Event, Reply, Request};
    assert_eq!(client.request(&Request::Ping).unwrap(), Ok(Reply::Pong));
    client
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Party(e) => e,
            other => panic!("unexpected non-party event {other:?}"),
        })
        .collect()
}

pub fn username_of(user_id: &str) -> String {
    let mut chars = user_id.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A valid token for `user_id`, one hour long.
pub fn token(user_id: &str) -> String {
    token_with(user_id, &username_of(user_id), unix_now() + 3600, KEY)
}

pub fn token_with(user_id: &str, username: &str, expires_at_unix_s: u64, key: &str) -> String {
    let claims = Claims { user_id: user_id.into(), username: username.into(), expires_at_unix_s };
    auth::mint(&claims, &TokenKey::new(key))
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Aborts the whole test process if a test outlives its budget: a hang becomes a failure with
/// a message instead of a CI timeout.
pub struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Watchdog {
    pub fn start(budget: Duration) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let name = std::thread::current().name().unwrap_or("test").to_owned();
        std::thread::spawn(move || {
            let deadline = Instant::now() + budget;
            while Instant::now() < deadline {
                if flag.load(Ordering::Acquire) {
                    return;
                }
                std::thread::park_timeout(Duration::from_millis(200));
            }
            eprintln!("watchdog: {name} exceeded {budget:?}; aborting");
            std::process::abort();
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
    }
}
