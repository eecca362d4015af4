//! A blocking HTTP/1.1 client for the admin API in tests: requests (pipelined or not) with
//! or without the admin key, responses read in order with deadlines, and `/metrics` read by an
//! independent Prometheus text parser (`prometheus-parse`). Not in `common/mod.rs`, which the
//! load harness's tests share without these dependencies: a test file takes it with
//! `#[path = "common/admin_http.rs"] mod admin_http;` beside `mod common;`.
#![allow(dead_code)]

use crate::common::{TestServer, ADMIN_KEY, WAIT};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

pub const GOOD: Option<&str> = Some(ADMIN_KEY);
pub const BAD: Option<&str> = Some("not-the-admin-key");

/// One HTTP response as a client reads it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The JSON error body's `code`, after checking it also has a message.
    pub fn error_code(&self) -> String {
        let body = self.json();
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "an error has a message: {body}");
        body["code"].as_str().unwrap_or_else(|| panic!("an error has a code: {body}")).to_owned()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking HTTP/1.1 connection to the admin port: requests, pipelined or not, and responses
/// read in order.
pub struct Http {
    stream: TcpStream,
    received: Vec<u8>,
}

impl Http {
    pub fn connect(server: &TestServer) -> Http {
        let stream = TcpStream::connect(server.admin_addr.as_deref().expect("an admin listener")).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Http { stream, received: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn request(&mut self, method: &str, target: &str, key: Option<&str>, body: Option<&str>) -> Response {
        self.send(&request_bytes(method, target, key, body));
        self.response()
    }

    /// Reads the next response (head, then `Content-Length` body).
    pub fn response(&mut self) -> Response {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head_len)) = parsed.parse(&self.received) {
                let status = parsed.code.unwrap();
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                if self.received.len() >= head_len + length {
                    let body = self.received[head_len..head_len + length].to_vec();
                    self.received.drain(..head_len + length);
                    return Response { status, headers, body };
                }
            }
            assert!(
                Instant::now() < deadline,
                "no complete response; got {:?}",
                String::from_utf8_lossy(&self.received)
            );
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed; got {:?}", String::from_utf8_lossy(&self.received)),
                Ok(n) => self.received.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read failed: {e}; got {:?}", String::from_utf8_lossy(&self.received)),
            }
        }
    }

    /// Whether the server closed the connection (EOF, or a reset) within the deadline.
    pub fn closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 256];
        match self.stream.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&chunk[..n])),
            Err(e) => matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe),
        }
    }
}

pub fn request_bytes(method: &str, target: &str, key: Option<&str>, body: Option<&str>) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.unwrap_or("").as_bytes());
    bytes
}

pub fn scrape(http: &mut Http) -> prometheus_parse::Scrape {
    let response = http.request("GET", "/metrics", None, None);
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid Prometheus text")
}

/// The value of the sample `name` whose labels include `labels`.
pub fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    use prometheus_parse::Value as V;
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match &found.value {
        V::Counter(v) | V::Gauge(v) | V::Untyped(v) => *v,
        other => panic!("{name}: not a single value: {other:?}"),
    }
}
