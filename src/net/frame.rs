//! Server-to-client WebSocket frames. Server frames are unmasked (RFC 6455 §5.1), so one framed
//! event is valid byte-for-byte on every connection: frame once, queue everywhere.

use bytes::{BufMut, Bytes, BytesMut};

const FIN_BINARY: u8 = 0x82;
const FIN_TEXT: u8 = 0x81;

/// `payload` as one final binary frame.
pub fn binary(payload: &[u8]) -> Bytes {
    with_opcode(FIN_BINARY, payload)
}

/// `payload` (UTF-8, the codec's promise) as one final text frame.
pub fn text(payload: &[u8]) -> Bytes {
    with_opcode(FIN_TEXT, payload)
}

/// A codec's frame as WebSocket bytes.
pub fn framed(frame: crate::wire::Frame<'_>) -> Bytes {
    match frame.kind {
        crate::wire::FrameKind::Binary => binary(frame.payload),
        crate::wire::FrameKind::Text => text(frame.payload),
    }
}

fn with_opcode(first_byte: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut frame = BytesMut::with_capacity(len + 10);
    frame.put_u8(first_byte);
    if len < 126 {
        frame.put_u8(len as u8);
    } else if len <= u16::MAX as usize {
        frame.put_u8(126);
        frame.put_u16(len as u16);
    } else {
        frame.put_u8(127);
        frame.put_u64(len as u64);
    }
    frame.put_slice(payload);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_length_forms() {
        assert_eq!(&binary(b"ab")[..], &[0x82, 2, b'a', b'b']);
        let medium = binary(&[7; 300]);
        assert_eq!(&medium[..4], &[0x82, 126, 1, 44]);
        assert_eq!(medium.len(), 304);
        let large = binary(&vec![0; 70_000]);
        assert_eq!(&large[..2], &[0x82, 127]);
        assert_eq!(u64::from_be_bytes(large[2..10].try_into().unwrap()), 70_000);
    }
}
