//! `fanout --format json`: the fan-out scenario with every session in Nakama's JSON mode
//! (SPEC K-1), as a Nakama SDK connects (`format=json`): text `party_data_send` frames out,
//! `party_data` deliveries in. Setup requests are written by the server crate's own
//! [`request_frame`]; the hot path writes party data with a prefix per party and reads
//! deliveries with a borrowing parser that decodes only the send stamp.
//!
//! Party data is sent with a `cid`, so the server acks each one (`{"cid":"N"}`) exactly as the
//! FlatBuffers run's `PartyOk`: both formats do the same work per message and the loop counts
//! completions the same way. (The SDKs send party data without a cid, which saves the ack.)

use super::{Ctx, FanoutWire, Seen};
use crate::fleet::{Fleet, Incoming};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use huddle::core::{PartyRequest, Request};
use huddle::wire::nakama::{parse_party_id, request_frame, CidText};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct JsonFanout {
    party_size: usize,
    /// Each party's id as the server printed it, by session index / party size.
    party_of: Vec<String>,
    /// The frame being written (reused).
    frame: String,
}

impl FanoutWire for JsonFanout {
    fn setup(&mut self, ctx: &Ctx<'_>, fleet: &mut Fleet) -> Result<(), String> {
        let k = ctx.o.party_size;
        let n = ctx.users.len();
        self.party_size = k;
        let leaders: Vec<usize> = (0..n).step_by(k).collect();
        let mut party_of = vec![String::new(); n / k];
        let create = Request::Party(PartyRequest::Create {
            open: true,
            max_size: k as u32,
            label: String::new(),
            hidden: false,
        });
        round(
            fleet,
            &leaders,
            |_| create.clone(),
            |i, reply| {
                party_of[i / k] = reply["party"]["party_id"].as_str().unwrap_or_default().to_owned();
            },
        )?;
        // The SDKs hand the printed id back as it is; it must name the party.
        let party_ids = party_of
            .iter()
            .map(|text| parse_party_id(text).ok_or_else(|| format!("setup: {text:?} is not a party id")))
            .collect::<Result<Vec<_>, _>>()?;
        let members: Vec<usize> = (0..n).filter(|i| i % k != 0).collect();
        let join = |i: usize| Request::Party(PartyRequest::Join { party_id: party_ids[i / k] });
        round(fleet, &members, join, |_, _| {})?;
        self.party_of = party_of;
        Ok(())
    }

    fn send_data(&mut self, fleet: &mut Fleet, conn: usize, cid: u64, data: &[u8]) {
        use std::fmt::Write;
        let frame = &mut self.frame;
        frame.clear();
        // Writing into a String cannot fail.
        let _ = write!(
            frame,
            r#"{{"cid":"{cid}","party_data_send":{{"party_id":"{}","op_code":"1","data":""#,
            self.party_of[conn / self.party_size]
        );
        STANDARD.encode_string(data, frame);
        frame.push_str(r#""}}"#);
        fleet.send_text(conn, frame.as_bytes());
    }

    fn classify(&self, _: &Ctx<'_>, frame: &[u8]) -> Seen {
        let envelope: Envelope = match serde_json::from_slice(frame) {
            Ok(envelope) => envelope,
            Err(e) => return Seen::Error(format!("a frame that is not a Nakama envelope: {e}")),
        };
        if let Some(data) = envelope.party_data {
            // The stamp is the payload's first 8 bytes: the first 12 base64 characters hold 9.
            let mut head = [0u8; 9];
            let prefix = &data.data.as_bytes()[..data.data.len().min(12)];
            return match STANDARD.decode_slice(prefix, &mut head) {
                Ok(len) if len >= 8 => super::stamp(&head).map_or(Seen::Other, Seen::Data),
                _ => Seen::Error("party data without a send stamp".into()),
            };
        }
        match (envelope.cid, envelope.error) {
            (_, Some(error)) => Seen::Error(format!("error {}: {}", error.code, error.message)),
            (Some(_), None) => Seen::Ok,
            (None, None) => Seen::Other,
        }
    }
}

/// The parts of a server envelope the loop reads, borrowed from the frame; every other message
/// (presence events, `party`) is skipped by the parser.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    cid: Option<&'a str>,
    #[serde(borrow, default)]
    party_data: Option<PartyData<'a>>,
    #[serde(borrow, default)]
    error: Option<ErrorBody<'a>>,
}

#[derive(Deserialize)]
struct PartyData<'a> {
    /// Standard base64 (no escapes in JSON, so it borrows).
    #[serde(borrow, default)]
    data: &'a str,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(default)]
    code: i64,
    #[serde(borrow, default)]
    message: Cow<'a, str>,
}

/// Setup requests: `request(i)` from every session `i` in `which` under cid `i + 1`, then the
/// replies, each handed to `on_reply`; any error or lost connection fails the setup.
fn round(
    fleet: &mut Fleet,
    which: &[usize],
    request: impl Fn(usize) -> Request,
    mut on_reply: impl FnMut(usize, &Value),
) -> Result<(), String> {
    let mut waiting = vec![false; fleet.len()];
    for &i in which {
        let frame = request_frame(&CidText::Number(i as u64 + 1), &request(i)).ok_or("no Nakama form")?;
        fleet.send_text(i, frame.as_bytes());
        waiting[i] = true;
    }
    let mut left = which.len();
    let deadline = Instant::now() + super::SETUP_TIMEOUT;
    let mut failure: Option<String> = None;
    while left > 0 && failure.is_none() {
        if Instant::now() > deadline {
            return Err(format!("setup: {left} replies missing after {:?}", super::SETUP_TIMEOUT));
        }
        fleet.turn(Duration::from_millis(10), &mut |i, incoming| match incoming {
            Incoming::Frame(frame) => {
                let Ok(reply) = serde_json::from_slice::<Value>(frame) else {
                    failure.get_or_insert("setup: a frame that is not JSON".into());
                    return;
                };
                if !waiting[i] || reply["cid"].as_str() != Some((i + 1).to_string().as_str()) {
                    return; // an event (presence, the pushed `party`)
                }
                waiting[i] = false;
                left -= 1;
                match reply.get("error") {
                    Some(error) => {
                        failure.get_or_insert(format!("setup: {error}"));
                    }
                    None => on_reply(i, &reply),
                }
            }
            Incoming::Closed(why) => {
                failure.get_or_insert(why.to_owned());
            }
        })?;
    }
    failure.map_or(Ok(()), Err)
}
