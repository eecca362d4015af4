//! Raw WebSocket helpers for hostile tests (the server crate's tests only: the load harness
//! shares `common/` but not tungstenite): a connection upgraded by tungstenite whose socket the
//! test then writes raw bytes to, and client frames built by hand.

#![allow(dead_code)]

use super::common::{token, TestServer, WAIT};

/// A raw WebSocket: tungstenite for the upgrade (the welcome read), then raw bytes on
/// `get_mut()`, for frames no well-behaved client would send.
pub fn raw_ws(server: &TestServer, user: &str) -> tungstenite::WebSocket<std::net::TcpStream> {
    let stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let url = format!("ws://{}/ws?token={}", server.addr, token(user));
    let (mut ws, _) = tungstenite::client::client(url, stream).expect("upgrade");
    assert!(matches!(ws.read().unwrap(), tungstenite::Message::Binary(_)), "welcome first");
    ws
}

/// One client frame as raw bytes: `first` is the FIN bit and opcode byte, the payload is masked
/// (RFC 6455 §5.3) with a fixed key.
pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = vec![first];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}
