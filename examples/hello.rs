//! Connects to a running huddle server, prints the welcome (this session's presence), sends a
//! ping and prints the pong.
//!
//!     TOKEN=$(cargo run -q -- token --user-id alice --username Alice | tail -n1)
//!     cargo run --example hello -- "$TOKEN" [127.0.0.1:7350]

use huddle::client::Client;
use huddle::core::{ConnectOptions, Request};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(token) = args.next() else {
        eprintln!("usage: hello TOKEN [HOST:PORT]");
        return ExitCode::from(2);
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7350".to_owned());
    let mut client = match Client::connect(&addr, &token, ConnectOptions::default()) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("connect to {addr} failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let me = client.presence();
    println!("welcome: user_id={} username={} session_id={}", me.user_id.as_str(), me.username.as_str(), me.session_id);
    match client.request(&Request::Ping) {
        Ok(Ok(reply)) => println!("ping -> {reply:?}"),
        Ok(Err(error)) => println!("ping -> error {:?}: {}", error.code, error.message),
        Err(e) => {
            eprintln!("ping failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    client.close();
    ExitCode::SUCCESS
}
