//! What a feature handler gets besides its own tables and its request: one struct, so a rule
//! that needs one more thing (the social graph, timers) gets a field here instead of a
//! parameter in every handler between the core and the rule.

use super::outbox::Events;
use super::session::Sessions;
use super::timers::Timers;
use super::{IdGenerator, Now, Timeout};
use crate::limits::Limits;

/// Per-call context of a request, a disconnect or a timer. Built by [`super::Core`] for each
/// call; borrowed from the core's own fields, so building it costs nothing.
pub(crate) struct Ctx<'a> {
    pub limits: &'a Limits,
    /// The driver's clocks for this call.
    pub now: Now,
    /// Who is connected, and the user and username indexes (read-only during a call: only
    /// connect and disconnect change it).
    pub sessions: &'a Sessions,
    /// Source of unguessable ids (party ids and codes).
    pub ids: &'a mut IdGenerator,
    /// The core's timers: rules arm and disarm deadlines here (invitation expiry, L-2);
    /// `Core::handle_timeout` fires them.
    pub timers: &'a mut Timers<Timeout>,
    /// Where events go: after the reply of the request being handled, in the order queued.
    pub events: Events<'a>,
}
