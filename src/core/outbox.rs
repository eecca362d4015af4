//! What the core asks the driver to do, in order.

use super::{Cid, CoreError, Event, Reply, SessionId};
use std::ops::Range;

/// Why the core wants a session closed. The driver maps it to a WebSocket close code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The session broke a server policy; the text is the close frame's reason.
    Policy(&'static str),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// The one reply to request `cid` of session `to`.
    Reply { to: SessionId, cid: Cid, result: Result<Reply, CoreError> },
    /// An event for the sessions at `recipients` in [`Outbox::recipients`]. The driver encodes
    /// and frames it once for all of them.
    Event { recipients: Range<usize>, event: Event },
    /// Close the session's connection.
    Close { session: SessionId, reason: CloseReason },
}

/// Caller-owned output buffer. Recipient lists live in one shared vector so that an event to
/// many sessions costs no allocation of its own once the outbox has warmed up.
#[derive(Debug, Default)]
pub struct Outbox {
    outputs: Vec<Output>,
    recipients: Vec<SessionId>,
    replies: usize,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    pub fn reply(&mut self, to: SessionId, cid: Cid, result: Result<Reply, CoreError>) {
        self.replies += 1;
        self.outputs.push(Output::Reply { to, cid, result });
    }

    pub fn event_to(&mut self, to: SessionId, event: Event) {
        self.event(std::iter::once(to), event);
    }

    /// Queues `event` for every session `recipients` yields, in that order. An event with no
    /// recipient is dropped here, so the driver never encodes one for nobody.
    pub fn event(&mut self, recipients: impl IntoIterator<Item = SessionId>, event: Event) {
        let start = self.recipients.len();
        self.recipients.extend(recipients);
        if self.recipients.len() == start {
            return;
        }
        self.outputs.push(Output::Event { recipients: start..self.recipients.len(), event });
    }

    pub fn close(&mut self, session: SessionId, reason: CloseReason) {
        self.outputs.push(Output::Close { session, reason });
    }

    /// Replies queued since the outbox was last cleared.
    pub fn reply_count(&self) -> usize {
        self.replies
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The sessions an `Output::Event` names.
    pub fn recipients(&self, range: Range<usize>) -> &[SessionId] {
        &self.recipients[range]
    }

    /// Hands every output to `apply` in order (with its recipients for an event, else an empty
    /// slice), then leaves the outbox empty with its buffers kept for reuse.
    pub fn drain(&mut self, mut apply: impl FnMut(Output, &[SessionId])) {
        for output in self.outputs.drain(..) {
            match &output {
                Output::Event { recipients, .. } => {
                    let range = recipients.clone();
                    apply(output, &self.recipients[range]);
                }
                _ => apply(output, &[]),
            }
        }
        self.recipients.clear();
        self.replies = 0;
    }

    pub fn clear(&mut self) {
        self.outputs.clear();
        self.recipients.clear();
        self.replies = 0;
    }
}
