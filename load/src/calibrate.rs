//! `calibrate`: the machine's loopback round-trip floor. A raw TCP ping-pong (no WebSocket, no
//! FlatBuffers, no huddle) with messages the size of the party-data frame the fan-out delivers,
//! between this process and an echo thread. A delivery through the server is two loopback hops
//! (sender → server → member), like one round trip here, so fan-out latency reads as a multiple
//! of this floor.

use super::hist::Latency;
use super::procfs::now_ns;
use super::{Options, Report};
use huddle::core::{Event, PartyEvent, PartyId, Presence, SessionId, UserId, Username};
use huddle::wire::Encoder;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// Bytes of the WebSocket frame that carries a party data event with `payload_bytes` of data.
pub(crate) fn party_data_frame_bytes(payload_bytes: usize) -> usize {
    let event = Event::Party(PartyEvent::Data {
        party_id: PartyId(u128::MAX / 3),
        sender: Presence {
            user_id: UserId::new("load-12345"),
            session_id: SessionId::new(12345, 1),
            username: Username::new("Load12345"),
        },
        op_code: 1,
        data: bytes::Bytes::from(vec![0u8; payload_bytes]),
    });
    huddle::net::frame::binary(Encoder::new().event(&event)).len()
}

pub(crate) fn run(o: &Options) -> Result<Report, String> {
    let size = party_data_frame_bytes(o.payload_bytes);
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("calibrate listen: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let echo_cpu = o.echo_cpu;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        if let Some(cpu) = echo_cpu {
            huddle::os::pin_current_thread(cpu)?;
        }
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; size];
        loop {
            if s.read_exact(&mut buf).is_err() {
                return Ok(()); // the client is done
            }
            s.write_all(&buf)?;
        }
    });
    let mut s = TcpStream::connect(addr).map_err(|e| format!("calibrate connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut buf = vec![7u8; size];
    let start = now_ns();
    let window_start = start + o.warmup.as_nanos() as u64;
    let window_end = window_start + o.duration.as_nanos() as u64;
    let mut latency = Latency::new();
    let mut round_trips = 0u64;
    eprintln!("huddle-load: calibrating with {size}-byte messages for {:.1} s", o.duration.as_secs_f64());
    loop {
        let t0 = now_ns();
        if t0 >= window_end {
            break;
        }
        s.write_all(&buf).map_err(|e| format!("calibrate write: {e}"))?;
        s.read_exact(&mut buf).map_err(|e| format!("calibrate read: {e}"))?;
        if t0 >= window_start {
            latency.record_ns(now_ns() - t0);
            round_trips += 1;
        }
    }
    drop(s);
    echo.join().map_err(|_| "echo thread panicked".to_owned())?.map_err(|e| format!("echo: {e}"))?;
    let duration_s = o.duration.as_secs_f64();
    Ok(Report {
        scenario: "calibrate",
        connections: 1,
        processes: 1,
        duration_s,
        payload_bytes: size,
        sent_per_sec: round_trips as f64 / duration_s,
        delivered_per_sec: round_trips as f64 / duration_s,
        latency_us: latency.percentiles(),
        unit: "round trips",
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_size_grows_with_payload() {
        let small = party_data_frame_bytes(64);
        assert!(small > 64 + 20 && small < 64 + 200, "{small}");
        let larger = party_data_frame_bytes(1064);
        assert!((small + 1000..small + 1016).contains(&larger), "{small} {larger}");
    }
}
