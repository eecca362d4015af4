//! What `/metrics` reports (SPEC O-2): plain integer counters the driver bumps on its hot paths
//! (an array index and an add, no atomics, no labels built), turned into the Prometheus text
//! format only when scraped, by `prometheus-client` from a snapshot taken in the loop.
//!
//! Label values come from closed sets declared here (message kinds, error codes, limit names,
//! admin routes), so no label carries user data and every series exists from the start (at 0),
//! which `rate()` needs.

use crate::admin::RouteId;
use crate::core::search::LabelError;
use crate::core::{CoreError, ErrorCode, Event, PartyEvent, PartyReply, PartyRequest, Reply, Request};
use crate::core::{LobbyEvent, LobbyReply, LobbyRequest, StatusReply, StatusRequest};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::time::Duration;

/// A closed set of label values: an enum whose variants are the values, in one place.
macro_rules! label_set {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[allow(non_camel_case_types)]
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        pub(crate) enum $name { $($variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub const COUNT: usize = $name::ALL.len();

            pub fn label(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant),)* }
            }
        }
    };
}

label_set! {
    /// A decoded request, by its message type on the wire (the schema's `Message` union).
    ReceivedKind {
        Ping, PartyCreate, PartyJoin, PartyJoinRequestListGet, PartyAccept, PartyRemove, PartyLeave,
        PartyPromote, PartyClose, PartyDataSend, PartyUpdate, PartyGet, PartyMyList, PartySearch,
        StatusUpdate, StatusFollow, StatusUnfollow, PartyInvite, PartyInvitationCancel,
        PartyInvitationAccept, PartyInvitationReject, PartyInvitationList, PartyCodeGet,
        PartyCodeRegenerate, PartyJoinByCode, PartyCustomDataSet, PartyChatSend,
    }
}

label_set! {
    /// A message queued for a session, by its message type on the wire.
    SentKind {
        Welcome, Error, Pong, PartyInfo, PartyJoinPending, PartyJoinRequestList, PartyOk,
        PartyMyListResult, PartySearchResult, PartyPresence, PartyJoinRequest, PartyLeader,
        PartyRemoved, PartyData, PartyUpdated, PartyJoined, StatusUpdated, StatusFollowed,
        StatusUnfollowed, StatusPresenceEvent, PartyInvitationListResult, PartyCode, PartyInvited,
        PartyInvitationSent, PartyInvitationRejected, PartyInvitationEnded, PartySnapshot,
        PartyChatSent, PartyCustomDataChanged, PartyChatMessage, PartyAttributesUpdated,
    }
}

label_set! {
    /// A limit that refused something, by its `Limits` field name.
    Limit {
        connections_max, handshake_bytes_max, handshake_timeout_ms, message_bytes_max,
        outbound_bytes_max, outbound_soft_bytes_max, requests_per_second_max, rate_limited_close_ms,
        parties_per_session_max, party_data_bytes_max, status_bytes_max, follows_per_session_max,
        follow_ids_per_request_max, search_query_bytes_max, search_wildcard_expansion_max,
        search_wildcard_scan_max, admin_connections_max, admin_head_bytes_max, admin_body_bytes_max,
        admin_request_timeout_ms, admin_bans_max, sessions_per_user_max, connections_per_ip_max,
        handshakes_per_ip_per_second_max, message_fragments_max, message_assembly_ms_max,
        extra_frames_per_second_max, invitations_per_party_max, invitations_per_user_max,
        invitees_per_request_max, code_misses_per_minute_max, party_custom_data_bytes_max,
        chat_body_bytes_max, chat_messages_per_window_max, social_entries_max, history_buffer_bytes_max,
        party_label_bytes_max, party_label_values_max, party_label_fields_max, search_index_bytes_max,
        search_query_cost_max, search_budget_cost_per_ms,
    }
}

impl Limit {
    /// The limit a refusal's message names (core and admin refusals name their limit). The
    /// longest name found wins, so `admin_connections_max` is not read as `connections_max`.
    pub fn named_in(message: &str) -> Option<Limit> {
        Limit::ALL.iter().copied().filter(|limit| message.contains(limit.label())).max_by_key(|l| l.label().len())
    }
}

/// Upper bounds of the loop-turn histogram's buckets, in seconds: a turn of a busy loop takes
/// tens of microseconds, a stalled one milliseconds.
const TURN_BUCKETS_S: [f64; 12] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

/// Loop turns by duration (per-bucket counts; the exposition makes them cumulative).
#[derive(Clone, Debug, Default)]
pub(crate) struct TurnHistogram {
    /// One count per bucket of [`TURN_BUCKETS_S`], and one past the last (+Inf).
    counts: [u64; TURN_BUCKETS_S.len() + 1],
    sum_s: f64,
    count: u64,
}

impl TurnHistogram {
    pub fn observe(&mut self, turn: Duration) {
        let seconds = turn.as_secs_f64();
        let bucket = TURN_BUCKETS_S.iter().position(|&upper| seconds <= upper).unwrap_or(TURN_BUCKETS_S.len());
        self.counts[bucket] += 1;
        self.sum_s += seconds;
        self.count += 1;
    }
}

/// The driver's metric counters.
#[derive(Clone, Debug)]
pub(crate) struct Metrics {
    received: [u64; ReceivedKind::COUNT],
    sent: [u64; SentKind::COUNT],
    /// By position in `ErrorCode::ALL`.
    errors: Vec<u64>,
    limit_trips: [u64; Limit::COUNT],
    pub bytes_received_total: u64,
    pub bytes_sent_total: u64,
    pub loop_turns: TurnHistogram,
    /// By route (`None`: no route matched) and status; bounded by routes × statuses.
    admin_requests: BTreeMap<(Option<RouteId>, u16), u64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            received: [0; ReceivedKind::COUNT],
            sent: [0; SentKind::COUNT],
            errors: vec![0; ErrorCode::ALL.len()],
            limit_trips: [0; Limit::COUNT],
            bytes_received_total: 0,
            bytes_sent_total: 0,
            loop_turns: TurnHistogram::default(),
            admin_requests: BTreeMap::new(),
        }
    }
}

impl Metrics {
    pub fn received(&mut self, request: &Request) {
        self.received[received_kind(request) as usize] += 1;
    }

    /// `copies` messages of `kind` queued (an event counts once per recipient).
    pub fn sent(&mut self, kind: SentKind, copies: usize) {
        self.sent[kind as usize] += copies as u64;
    }

    /// `copies` error replies or events with `code` queued for sessions.
    pub fn error(&mut self, code: ErrorCode, copies: usize) {
        if let Some(index) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[index] += copies as u64;
        }
    }

    /// The limit a core refusal names, when it is a limit's, as tripped. Counted whether or not
    /// the refusal reached its session (the limit refused something either way); its error code
    /// is counted by [`Metrics::error`] when it is sent.
    pub fn core_refusal(&mut self, error: &CoreError) {
        let limit = match error {
            CoreError::PartyTooManyParties(_) => Some(Limit::parties_per_session_max),
            CoreError::FollowLimitReached { .. } => Some(Limit::follows_per_session_max),
            CoreError::SearchQueryTooBroad { .. } => Some(Limit::search_wildcard_expansion_max),
            CoreError::SearchQueryTooCostly { .. } => Some(Limit::search_query_cost_max),
            CoreError::SearchBudgetExhausted { .. } => Some(Limit::search_budget_cost_per_ms),
            CoreError::SearchIndexFull { .. } => Some(Limit::search_index_bytes_max),
            CoreError::LabelTooComplex(refusal) => match refusal {
                LabelError::TooManyValues { .. } => Some(Limit::party_label_values_max),
                LabelError::TooManyFields { .. } => Some(Limit::party_label_fields_max),
                LabelError::PathsTooLong { .. } => Some(Limit::party_label_bytes_max),
                LabelError::IndexFull { .. } => Some(Limit::search_index_bytes_max),
                LabelError::TooLarge { .. } | LabelError::NotJson(_) | LabelError::NotObject => None,
            },
            CoreError::LimitExceeded(message) => Limit::named_in(message),
            _ => None,
        };
        if let Some(limit) = limit {
            self.limit_trip(limit);
        }
    }

    pub fn limit_trip(&mut self, limit: Limit) {
        self.limit_trips[limit as usize] += 1;
    }

    pub fn admin_request(&mut self, route: Option<RouteId>, status: u16) {
        *self.admin_requests.entry((route, status)).or_default() += 1;
    }
}

/// The gauges and counters the driver keeps elsewhere, read at scrape time.
#[derive(Clone, Debug, Default)]
pub(crate) struct Gauges {
    pub sessions: u64,
    pub parties: u64,
    pub party_members: u64,
    /// Bytes read through the loop's shared frame buffer (`ReadScratch`); heads are in `Metrics`.
    pub frame_bytes_received_total: u64,
    pub slow_consumers_total: u64,
    pub connections_refused_total: u64,
    pub party_code_misses_total: u64,
    /// L-6: chat messages sent, and chat requests refused (any reason).
    pub party_chat_messages_total: u64,
    pub party_chat_refused_total: u64,
    pub history_records_total: u64,
    pub history_write_errors_total: u64,
    pub history_records_dropped_total: u64,
}

/// Renders the Prometheus text format (0.0.4).
pub(crate) fn expose(metrics: &Metrics, gauges: &Gauges) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition { metrics: metrics.clone(), gauges: gauges.clone() }));
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in a closed label set.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        log::error!("metrics encoding failed: {e}");
    }
    text
}

/// The `Content-Type` of [`expose`]'s text.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// One scrape's values, encoded by `prometheus-client`.
#[derive(Debug)]
struct Exposition {
    metrics: Metrics,
    gauges: Gauges,
}

type Encoded = Result<(), std::fmt::Error>;

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Encoded {
        let (m, g) = (&self.metrics, &self.gauges);
        gauge(&mut encoder, "huddle_sessions", "Sessions open (upgraded WebSocket connections)", g.sessions)?;
        gauge(&mut encoder, "huddle_parties", "Parties in existence", g.parties)?;
        gauge(
            &mut encoder,
            "huddle_party_members",
            "Party memberships (a session in two parties counts twice)",
            g.party_members,
        )?;
        let received = ReceivedKind::ALL.iter().map(|k| (k.label().to_owned(), m.received[*k as usize]));
        family(&mut encoder, "huddle_messages_received", "Requests decoded, by message kind", "kind", received)?;
        let sent = SentKind::ALL.iter().map(|k| (k.label().to_owned(), m.sent[*k as usize]));
        family(
            &mut encoder,
            "huddle_messages_sent",
            "Messages queued for sessions (an event once per recipient), by message kind",
            "kind",
            sent,
        )?;
        let bytes_received = m.bytes_received_total + g.frame_bytes_received_total;
        counter(&mut encoder, "huddle_bytes_received", "Bytes read from every socket", bytes_received)?;
        counter(&mut encoder, "huddle_bytes_sent", "Bytes written to every socket", m.bytes_sent_total)?;
        let errors = ErrorCode::ALL.iter().zip(&m.errors).filter(|(code, _)| **code != ErrorCode::Unspecified);
        let errors = errors.map(|(code, n)| (code.number().to_string(), *n));
        family(
            &mut encoder,
            "huddle_errors",
            "Error replies and events sent to sessions, by error code",
            "code",
            errors,
        )?;
        let trips = Limit::ALL.iter().map(|l| (l.label().to_owned(), m.limit_trips[*l as usize]));
        family(
            &mut encoder,
            "huddle_limit_trips",
            "Refusals and cut-offs by a limit, by its Limits field name",
            "limit",
            trips,
        )?;
        counter(
            &mut encoder,
            "huddle_slow_consumers",
            "Connections cut off by the output limits",
            g.slow_consumers_total,
        )?;
        counter(
            &mut encoder,
            "huddle_connections_refused",
            "Connections closed at accept by connections_max or admin_connections_max (per-address refusals: huddle_limit_trips_total)",
            g.connections_refused_total,
        )?;
        counter(
            &mut encoder,
            "huddle_party_code_misses",
            "Party code lookups that found no party",
            g.party_code_misses_total,
        )?;
        counter(&mut encoder, "huddle_party_chat_messages", "Party chat messages sent", g.party_chat_messages_total)?;
        counter(
            &mut encoder,
            "huddle_party_chat_refused",
            "Party chat messages refused (not a member, chat off, a bad body, the rate limit)",
            g.party_chat_refused_total,
        )?;
        counter(
            &mut encoder,
            "huddle_history_records",
            "Party history records finished (a party ended, or was alive at shutdown)",
            g.history_records_total,
        )?;
        counter(
            &mut encoder,
            "huddle_history_write_errors",
            "Failed opens and writes of the history file",
            g.history_write_errors_total,
        )?;
        counter(
            &mut encoder,
            "huddle_history_records_dropped",
            "History records left out of the history file because its buffer was full",
            g.history_records_dropped_total,
        )?;
        let turns = &m.loop_turns;
        let buckets: Vec<(f64, u64)> = TURN_BUCKETS_S.iter().copied().zip(turns.counts.iter().copied()).collect();
        let mut metric = encoder.encode_descriptor(
            "huddle_loop_turn_seconds",
            "Time the event loop spent per turn",
            None,
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<NoLabelSet>(turns.sum_s, turns.count, &buckets, None)?;
        let info = prometheus_client::metrics::info::Info::new([("version", env!("CARGO_PKG_VERSION"))]);
        info.encode(encoder.encode_descriptor("huddle_build", "The running build", None, info.metric_type())?)?;
        let mut metric = encoder.encode_descriptor(
            "huddle_admin_requests",
            "Admin API requests, by route and status",
            None,
            MetricType::Counter,
        )?;
        for ((route, status), n) in &m.admin_requests {
            let route = route
                .map_or_else(|| "unmatched".to_owned(), |id| format!("{} {}", id.route().method, id.route().pattern));
            let labels = [("route", route), ("status", status.to_string())];
            metric.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        Ok(())
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Encoded {
    encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Encoded {
    encoder.encode_descriptor(name, help, None, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl Iterator<Item = (String, u64)>,
) -> Encoded {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        metric.encode_family(&[(label, value)])?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
    }
    Ok(())
}

fn received_kind(request: &Request) -> ReceivedKind {
    match request {
        Request::Ping => ReceivedKind::Ping,
        Request::Party(party) => match party {
            PartyRequest::Create { .. } => ReceivedKind::PartyCreate,
            PartyRequest::Join { .. } => ReceivedKind::PartyJoin,
            PartyRequest::JoinRequests { .. } => ReceivedKind::PartyJoinRequestListGet,
            PartyRequest::Accept { .. } => ReceivedKind::PartyAccept,
            PartyRequest::Remove { .. } => ReceivedKind::PartyRemove,
            PartyRequest::Leave { .. } => ReceivedKind::PartyLeave,
            PartyRequest::Promote { .. } => ReceivedKind::PartyPromote,
            PartyRequest::Close { .. } => ReceivedKind::PartyClose,
            PartyRequest::Data { .. } => ReceivedKind::PartyDataSend,
            PartyRequest::Update { .. } => ReceivedKind::PartyUpdate,
            PartyRequest::Get { .. } => ReceivedKind::PartyGet,
            PartyRequest::MyParties => ReceivedKind::PartyMyList,
            PartyRequest::Search { .. } => ReceivedKind::PartySearch,
        },
        Request::Status(status) => match status {
            StatusRequest::Update { .. } => ReceivedKind::StatusUpdate,
            StatusRequest::Follow { .. } => ReceivedKind::StatusFollow,
            StatusRequest::Unfollow { .. } => ReceivedKind::StatusUnfollow,
        },
        Request::Lobby(lobby) => match lobby {
            LobbyRequest::Invite { .. } => ReceivedKind::PartyInvite,
            LobbyRequest::CancelInvitation { .. } => ReceivedKind::PartyInvitationCancel,
            LobbyRequest::AcceptInvitation { .. } => ReceivedKind::PartyInvitationAccept,
            LobbyRequest::RejectInvitation { .. } => ReceivedKind::PartyInvitationReject,
            LobbyRequest::Invitations => ReceivedKind::PartyInvitationList,
            LobbyRequest::CodeGet { .. } => ReceivedKind::PartyCodeGet,
            LobbyRequest::CodeRegenerate { .. } => ReceivedKind::PartyCodeRegenerate,
            LobbyRequest::JoinByCode { .. } => ReceivedKind::PartyJoinByCode,
            LobbyRequest::CustomDataSet { .. } => ReceivedKind::PartyCustomDataSet,
            LobbyRequest::ChatSend { .. } => ReceivedKind::PartyChatSend,
        },
    }
}

/// The wire message a reply is sent as.
pub(crate) fn reply_kind(result: &Result<Reply, CoreError>) -> SentKind {
    match result {
        Err(_) => SentKind::Error,
        Ok(Reply::Pong) => SentKind::Pong,
        Ok(Reply::Party(party)) => match party {
            PartyReply::Info(_) => SentKind::PartyInfo,
            PartyReply::JoinPending { .. } => SentKind::PartyJoinPending,
            PartyReply::JoinRequests { .. } => SentKind::PartyJoinRequestList,
            PartyReply::Ok { .. } => SentKind::PartyOk,
            PartyReply::MyParties(_) => SentKind::PartyMyListResult,
            PartyReply::SearchResult { .. } => SentKind::PartySearchResult,
        },
        Ok(Reply::Status(status)) => match status {
            StatusReply::Updated => SentKind::StatusUpdated,
            StatusReply::Followed { .. } => SentKind::StatusFollowed,
            StatusReply::Unfollowed => SentKind::StatusUnfollowed,
        },
        Ok(Reply::Lobby(lobby)) => match lobby {
            LobbyReply::Invitations(_) => SentKind::PartyInvitationListResult,
            LobbyReply::Code { .. } => SentKind::PartyCode,
            LobbyReply::ChatSent(_) => SentKind::PartyChatSent,
        },
    }
}

/// The wire message an event is sent as.
pub(crate) fn event_kind(event: &Event) -> SentKind {
    match event {
        Event::Welcome { .. } => SentKind::Welcome,
        Event::Status(_) => SentKind::StatusPresenceEvent,
        Event::PartyDataRefused { .. } => SentKind::Error,
        Event::Party(party) => match party {
            PartyEvent::Presence { .. } => SentKind::PartyPresence,
            PartyEvent::JoinRequest { .. } => SentKind::PartyJoinRequest,
            PartyEvent::Leader { .. } => SentKind::PartyLeader,
            PartyEvent::Removed { .. } => SentKind::PartyRemoved,
            PartyEvent::Data { .. } => SentKind::PartyData,
            PartyEvent::Updated { .. } => SentKind::PartyUpdated,
            PartyEvent::Joined(_) => SentKind::PartyJoined,
        },
        Event::Lobby(lobby) => match lobby {
            LobbyEvent::Invited(_) => SentKind::PartyInvited,
            LobbyEvent::InvitationSent { .. } => SentKind::PartyInvitationSent,
            LobbyEvent::InvitationRejected { .. } => SentKind::PartyInvitationRejected,
            LobbyEvent::InvitationEnded { .. } => SentKind::PartyInvitationEnded,
            LobbyEvent::Snapshot(_) => SentKind::PartySnapshot,
            LobbyEvent::CustomDataChanged { .. } => SentKind::PartyCustomDataChanged,
            LobbyEvent::ChatMessage(_) => SentKind::PartyChatMessage,
            LobbyEvent::AttributesUpdated { .. } => SentKind::PartyAttributesUpdated,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_series_from_the_start() {
        let mut metrics = Metrics::default();
        metrics.received(&Request::Ping);
        metrics.sent(SentKind::PartyData, 3);
        let refusal = CoreError::LimitExceeded("status is 9 bytes; status_bytes_max is 8".into());
        metrics.core_refusal(&refusal);
        metrics.error(refusal.code(), 1);
        metrics.loop_turns.observe(Duration::from_micros(70));
        metrics.admin_request(None, 404);
        let text = expose(&metrics, &Gauges { sessions: 2, ..Gauges::default() });
        for line in [
            "huddle_sessions 2",
            "huddle_messages_received_total{kind=\"Ping\"} 1",
            "huddle_messages_received_total{kind=\"PartyCreate\"} 0",
            "huddle_messages_sent_total{kind=\"PartyData\"} 3",
            "huddle_errors_total{code=\"300\"} 1",
            "huddle_limit_trips_total{limit=\"status_bytes_max\"} 1",
            "huddle_loop_turn_seconds_bucket{le=\"0.0001\"} 1",
            "huddle_loop_turn_seconds_count 1",
            "huddle_admin_requests_total{route=\"unmatched\",status=\"404\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        assert!(text.contains("huddle_build_info{version=\""), "{text}");
    }

    #[test]
    fn a_message_naming_a_limit_whose_name_holds_another_is_the_longer_ones() {
        assert_eq!(Limit::named_in("admin_connections_max is 64"), Some(Limit::admin_connections_max));
        assert_eq!(Limit::named_in("connections_max is 64"), Some(Limit::connections_max));
        assert_eq!(Limit::named_in("no limit here"), None);
    }

    #[test]
    fn turn_durations_land_in_their_bucket() {
        let mut turns = TurnHistogram::default();
        turns.observe(Duration::from_micros(50));
        turns.observe(Duration::from_secs(1));
        assert_eq!((turns.counts[0], turns.counts[TURN_BUCKETS_S.len()], turns.count), (1, 1, 2));
    }
}
