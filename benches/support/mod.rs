//! What the driver does with the core's outputs, minus the sockets: encode and frame each reply
//! and event once, and queue a refcounted clone per recipient. Shared by the fan-out benches so
//! they measure the same path the server runs.

use huddle::core::{Outbox, Output};
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
