//! What the driver does with the core's outputs, minus the sockets: encode and frame each reply
//! and event once, and queue a refcounted clone per recipient. Shared by the fan-out benches so
//! they measure the same path the server runs.

use huddle::core::{
    Cid, ConnectOptions, Core, Identity, LobbySettings, Millis, Now, Outbox, Output, PartyId, PartyReply, PartyRequest,
    Reply, Request, SessionId, UserId, Username,
};
use huddle::limits::Limits;
use huddle::net::frame;
use huddle::net::outbound::OutboundQueue;
use huddle::wire::Encoder;

/// Executes `out` into `queues` (indexed by session slot); returns the event deliveries.
pub fn deliver(out: &mut Outbox, encoder: &mut Encoder, queues: &mut [OutboundQueue]) -> usize {
    let mut delivered = 0;
    out.drain(|output, recipients| match output {
        Output::Reply { to, cid, result } => {
            queues[to.slot() as usize].push(frame::binary(encoder.reply(cid, &result)));
        }
        Output::Event { event, .. } => {
            let framed = frame::binary(encoder.event(&event));
            for to in recipients {
                queues[to.slot() as usize].push(framed.clone());
                delivered += 1;
            }
        }
        Output::Close { .. } => unreachable!("no close in the bench workloads"),
    });
    delivered
}

/// A core with `size` sessions (slots 0..size) in one open party with `lobby` settings, led by
/// slot 0, every output so far cleared: the fixture of the fan-out benches and the probe.
#[allow(dead_code)] // each bench includes this module; not every one builds a party this way
pub fn party_of(size: usize, lobby: LobbySettings) -> (Core, Vec<SessionId>, PartyId) {
    let now = Now::simulated(Millis(0));
    let mut core = Core::new(Limits::default(), [7; 32]);
    let mut out = Outbox::new();
    let sessions: Vec<SessionId> = (0..size as u32).map(|slot| SessionId::new(slot, 1)).collect();
    for (i, &s) in sessions.iter().enumerate() {
        let identity =
            Identity { user_id: UserId::new(&format!("user-{i}")), username: Username::new(&format!("User{i}")) };
        core.connect(s, identity, ConnectOptions::default(), now, &mut out);
    }
    out.clear();
    let create = PartyRequest::Create { open: true, max_size: size as u32, label: String::new(), hidden: false, lobby };
    core.handle_request(sessions[0], Cid(1), Request::Party(create), now, &mut out);
    let Output::Reply { result: Ok(Reply::Party(PartyReply::Info(snapshot))), .. } = &out.outputs()[0] else {
        panic!("create failed")
    };
    let party_id = snapshot.party_id;
    out.clear();
    for &s in &sessions[1..] {
        core.handle_request(s, Cid(2), Request::Party(PartyRequest::Join { party_id }), now, &mut out);
    }
    out.clear();
    (core, sessions, party_id)
}
