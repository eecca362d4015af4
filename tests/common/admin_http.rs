//! A minimal admin API client for end-to-end tests: one request per connection
//! (`Connection: close`), read to the end, with the admin key.
#![allow(dead_code)]

use super::{TestServer, ADMIN_KEY, WAIT};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;

/// An admin API answer: the status and the JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The error body's `code`.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_else(|| panic!("no error code in {}", self.body))
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_else(|| panic!("no error message in {}", self.body))
    }
}

/// `METHOD path` with `body` (JSON text) and the admin key.
pub fn admin(server: &TestServer, method: &str, path: &str, body: &str) -> Answer {
    admin_with_key(server, method, path, body, Some(ADMIN_KEY))
}

pub fn admin_with_key(server: &TestServer, method: &str, path: &str, body: &str, key: Option<&str>) -> Answer {
    let addr = server.admin_addr.as_deref().expect("a server with the admin API");
    let mut stream = TcpStream::connect(addr).expect("connect to the admin listener");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let authorization = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("the admin API answers and closes");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"));
    let body =
        if body.is_empty() { Value::Null } else { serde_json::from_str(body).unwrap_or(Value::String(body.into())) };
    Answer { status, body }
}
