//! What the core asks the driver to do, in order, and the two halves feature code writes it
//! through: the reply slot the core reserves before a handler runs ([`ReplySlot`]), and the
//! event sink handed to the handler ([`Events`]), which can queue events but never a reply.
//! Since the slot is reserved first, the one reply precedes every event its request caused by
//! construction, with no event buffer of its own to copy from (party data is the hot path).

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

    /// Reserves the place of the reply to request `cid` of `to`, before anything the request
    /// causes: every output queued after this comes after the reply. [`Outbox::fill_reply`]
    /// writes the result; until then the slot holds a placeholder the driver never sees (the
    /// core fills every slot before it returns).
    pub(crate) fn reserve_reply(&mut self, to: SessionId, cid: Cid) -> ReplySlot {
        let slot = ReplySlot { output: self.outputs.len(), recipients: self.recipients.len() };
        self.outputs.push(Output::Reply { to, cid, result: Ok(Reply::Pong) });
        slot
    }

    /// Writes the reply into its reserved slot. A refused request caused nothing (rules
    /// validate before they mutate), so any event queued after the slot would be a bug: debug
    /// builds assert there is none, release builds drop them so that no event announces a
    /// change that a refusal says did not happen.
    pub(crate) fn fill_reply(&mut self, slot: ReplySlot, result: Result<Reply, CoreError>) {
        if result.is_err() {
            debug_assert_eq!(self.outputs.len(), slot.output + 1, "a refused request queued events");
            self.outputs.truncate(slot.output + 1);
            self.recipients.truncate(slot.recipients);
        }
        let Some(Output::Reply { result: reserved, .. }) = self.outputs.get_mut(slot.output) else {
            unreachable!("Invariant: a reserved slot holds a reply until it is filled");
        };
        let placeholder = std::mem::replace(reserved, result);
        debug_assert_eq!(placeholder, Ok(Reply::Pong), "a reply slot filled twice");
        // The placeholder owns nothing; skipping its drop glue keeps the hot path (party data)
        // as cheap as pushing the reply directly.
        std::mem::forget(placeholder);
        self.replies += 1;
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

/// Where a request's reply goes, reserved before its handler runs. Not `Clone`: each slot is
/// filled exactly once.
#[must_use = "a reserved reply slot must be filled"]
#[derive(Debug)]
pub(crate) struct ReplySlot {
    output: usize,
    recipients: usize,
}

/// The event half of the outbox, handed to feature code: events only, never a reply, so a
/// handler cannot reply twice or out of order. Borrowed for one request, disconnect or timer.
pub(crate) struct Events<'a> {
    out: &'a mut Outbox,
}

impl<'a> Events<'a> {
    pub fn new(out: &'a mut Outbox) -> Events<'a> {
        Events { out }
    }

    /// Queues `event` once for every session `recipients` yields, in that order (dropped when
    /// there is none).
    pub fn send(&mut self, recipients: impl IntoIterator<Item = SessionId>, event: Event) {
        self.out.event(recipients, event);
    }

    pub fn send_to(&mut self, to: SessionId, event: Event) {
        self.out.event_to(to, event);
    }
}
