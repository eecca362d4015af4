//! The admin listener's connections (SPEC O-1, O-2): HTTP/1.1 requests read with the shared
//! head reader (`http.rs`), `Content-Length` bodies, keep-alive and pipelining, each request
//! routed by `crate::admin` and executed here, through the core (`dispatch.rs`) for anything
//! that changes sessions.
//!
//! Bounds: a request (head and body) must arrive within `admin_request_timeout_ms` of the
//! connection's accept or its previous response (else 408, or a silent close when nothing had
//! arrived: an idle keep-alive connection); heads are bounded by `admin_head_bytes_max` (431),
//! bodies by `admin_body_bytes_max` (413); a connection gets at most one request answered per
//! turn, and all of them together `admin_requests_per_turn_max`, so a flood on the admin port
//! costs game sessions at most that much work per turn; responses count against the same output
//! limits as game frames.
//!
//! A connection has one entry in the driver's head-deadline queue at a time: when it comes due
//! early (a response since moved the request's deadline), it is pushed again for the new time,
//! so pipelined requests do not pile entries up.

use super::conn::{Phase, Transport};
use super::driver::Driver;
use super::http::{HeadError, HeadProgress, HeadReader, Status};
use super::metrics::{self, Gauges, Limit};
use crate::admin::{self, views, AdminCall, AdminError, AdminKey, Playground, RouteId, TokenRequest};
use crate::auth::{self, Claims};
use crate::core::{AdminReply, AdminRequest, CoreError, Millis, SessionId};
use bytes::Bytes;

/// What the admin side of the driver knows beyond its connections.
pub(crate) struct AdminState {
    pub key: AdminKey,
    /// Random per start (`/healthz`).
    pub instance_id: String,
    pub started_at_ms: u64,
    /// `--playground` (K-3): the page and its mint; `None` answers their paths with 404.
    pub playground: Option<Playground>,
}

/// An admin connection between requests or reading one.
pub(crate) struct AdminConn {
    reader: HeadReader,
    awaiting: Awaiting,
    /// `100 Continue` went out for the current request.
    continue_sent: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Awaiting {
    /// A head; `ready`: the buffer may hold a complete one (parse before reading more).
    Head { ready: bool },
    /// The head is parsed and valid; the body is `head_len..total_len`.
    Body { head_len: usize, total_len: usize },
}

/// What the buffered bytes amount to.
enum Buffered {
    /// Read more (after a `100 Continue`, when the client waits for one).
    NeedBytes {
        send_continue: bool,
    },
    Complete {
        head_len: usize,
        total_len: usize,
    },
    Refused(AdminError),
}

impl AdminConn {
    pub fn new(head_bytes_max: usize, deadline: Millis) -> AdminConn {
        AdminConn {
            reader: HeadReader::new(head_bytes_max, deadline),
            awaiting: Awaiting::Head { ready: false },
            continue_sent: false,
        }
    }

    /// When the current request must have arrived.
    pub fn deadline(&self) -> Millis {
        self.reader.deadline()
    }

    /// Looks at the buffered bytes without reading: a complete request, a refusal, or more to read.
    fn buffered(&mut self, body_bytes_max: usize) -> Buffered {
        match self.awaiting {
            Awaiting::Head { ready: false } => Buffered::NeedBytes { send_continue: false },
            Awaiting::Head { ready: true } => {
                let head = match self.reader.parse() {
                    Ok(Some(head)) => head,
                    Ok(None) => {
                        self.awaiting = Awaiting::Head { ready: false };
                        return Buffered::NeedBytes { send_continue: false };
                    }
                    Err(HeadError::TooLarge) => return Buffered::Refused(AdminError::HeadTooLarge),
                    Err(HeadError::Malformed) => return Buffered::Refused(AdminError::MalformedHead),
                };
                let body_len = match body_length(&head, body_bytes_max) {
                    Ok(len) => len,
                    Err(error) => return Buffered::Refused(error),
                };
                let (head_len, total_len) = (head.len, head.len + body_len);
                let expects_continue =
                    head.header("expect").is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
                if self.reader.len() >= total_len {
                    return Buffered::Complete { head_len, total_len };
                }
                self.awaiting = Awaiting::Body { head_len, total_len };
                let send_continue = expects_continue && !self.continue_sent;
                self.continue_sent |= send_continue;
                Buffered::NeedBytes { send_continue }
            }
            Awaiting::Body { head_len, total_len } if self.reader.len() >= total_len => {
                Buffered::Complete { head_len, total_len }
            }
            Awaiting::Body { .. } => Buffered::NeedBytes { send_continue: false },
        }
    }
}

/// The body's length from `Content-Length` (0 without one). Several different lengths, a length
/// that is not a number, or any `Transfer-Encoding` leave the request's end unknown: refused,
/// and the connection closes (no request smuggling past the router).
fn body_length(head: &super::http::Head<'_>, body_bytes_max: usize) -> Result<usize, AdminError> {
    if head.header("transfer-encoding").is_some() {
        return Err(AdminError::TransferEncodingUnsupported);
    }
    let mut length = None;
    for value in head.header_values("content-length") {
        let value = value.trim();
        let parsed = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .ok_or(AdminError::MalformedHead)?;
        if length.is_some_and(|l| l != parsed) {
            return Err(AdminError::MalformedHead);
        }
        length = Some(parsed);
    }
    match length {
        Some(len) if len > body_bytes_max as u64 => Err(AdminError::BodyTooLarge { bytes_max: body_bytes_max }),
        // Invariant: just checked against a usize bound.
        Some(len) => Ok(len as usize),
        None => Ok(0),
    }
}

/// A response: status, content type, body, and whether the connection closes after it.
struct Response {
    status: Status,
    content_type: &'static str,
    body: Vec<u8>,
    allow: Option<String>,
    close: bool,
}

impl Response {
    fn json(status: Status, body: Vec<u8>) -> Response {
        Response { status, content_type: "application/json", body, allow: None, close: false }
    }

    fn html(body: Vec<u8>) -> Response {
        Response { content_type: "text/html; charset=utf-8", ..Response::json(Status::OK, body) }
    }

    fn error(error: &AdminError) -> Response {
        let allow = match error {
            AdminError::MethodNotAllowed { allow } => Some(allow.clone()),
            _ => None,
        };
        Response { allow, close: error.closes_connection(), ..Response::json(error.status(), error.to_json()) }
    }

    fn to_bytes(&self) -> Bytes {
        let mut headers = String::from(if self.close { "Connection: close\r\n" } else { "Connection: keep-alive\r\n" });
        headers.push_str("Cache-Control: no-store\r\n");
        if let Some(allow) = &self.allow {
            headers.push_str(&format!("Allow: {allow}\r\n"));
        }
        if self.status == Status::UNAUTHORIZED {
            headers.push_str("WWW-Authenticate: Bearer\r\n");
        }
        Bytes::from(super::http::response(self.status, &headers, Some((self.content_type, &self.body))))
    }
}

impl<S: Transport> Driver<S> {
    /// Reads an admin connection and answers at most one complete request (this turn's budget
    /// permitting); more buffered or unread bytes list it again for the next turn.
    pub(crate) fn read_admin(&mut self, id: SessionId, now: Millis) {
        if self.admin_requests_left == 0 {
            self.list_read(id); // the turn's admin budget is spent: next turn
            return;
        }
        let body_bytes_max = self.limits.admin_body_bytes_max;
        loop {
            let Some(conn) = self.conns.get_mut(id) else { return };
            let Phase::Admin(admin) = &mut conn.phase else { return };
            match admin.buffered(body_bytes_max) {
                Buffered::Complete { head_len, total_len } => return self.answer_admin(id, head_len, total_len, now),
                Buffered::Refused(error) => return self.refuse_admin(id, None, &error, now),
                Buffered::NeedBytes { send_continue } => {
                    if send_continue {
                        conn.out.push(Bytes::from(super::http::response(Status::CONTINUE, "", None)));
                        self.list_flush(id);
                    }
                }
            }
            let Some(conn) = self.conns.get_mut(id) else { return };
            let Phase::Admin(admin) = &mut conn.phase else { return };
            if conn.peer_closed {
                conn.read_drained = false; // see the same line in read_frames_until
            }
            let before = admin.reader.len();
            let progress = match admin.awaiting {
                Awaiting::Head { .. } => admin.reader.read_from(&mut conn.socket, &mut conn.read_drained),
                Awaiting::Body { total_len, .. } => {
                    admin.reader.read_body_from(&mut conn.socket, &mut conn.read_drained, total_len)
                }
            };
            self.metrics.bytes_received_total += admin.reader.len().saturating_sub(before) as u64;
            match progress {
                HeadProgress::Waiting => return,
                HeadProgress::Gone => return self.list_reap(id),
                HeadProgress::Ready => {
                    if let Awaiting::Head { .. } = admin.awaiting {
                        admin.awaiting = Awaiting::Head { ready: true };
                    }
                }
            }
        }
    }

    /// A whole request is buffered: route it, execute it, answer, and start the next one.
    fn answer_admin(&mut self, id: SessionId, head_len: usize, total_len: usize, now: Millis) {
        let Some(state) = self.admin.as_ref() else { return };
        let Some(conn) = self.conns.get_mut(id) else { return };
        let Phase::Admin(admin) = &mut conn.phase else { return };
        let Ok(Some(head)) = admin.reader.parse() else {
            // Invariant: `buffered` parsed this very head before calling it complete.
            return self.refuse_admin(id, None, &AdminError::MalformedHead, now);
        };
        let keep_alive = match head.minor_version {
            0 => head.header_has_token("connection", "keep-alive"),
            _ => !head.header_has_token("connection", "close"),
        };
        let request = admin::Request {
            method: head.method,
            path: head.path,
            query: head.query,
            authorization: head.header("authorization"),
            host: head.header("host"),
            origin: head.header("origin"),
            body: admin.reader.bytes(head_len..total_len),
        };
        let routed = admin::route(&request, &state.key, &self.limits);
        self.admin_requests_left -= 1;
        let mut response = match routed.result {
            Ok(call) => self.execute_admin(call, now).unwrap_or_else(|error| Response::error(&error)),
            Err(error) => {
                if error == AdminError::Unauthorized {
                    log::debug!("admin request refused: no or wrong key");
                }
                Response::error(&error)
            }
        };
        response.close |= !keep_alive;
        self.send_admin_response(id, routed.route, &response, now);
        if response.close {
            return;
        }
        let head_bytes_max = self.limits.admin_head_bytes_max;
        let deadline = now.saturating_add(self.limits.admin_request_timeout_ms);
        let Some(conn) = self.conns.get_mut(id) else { return };
        let Phase::Admin(admin) = &mut conn.phase else { return };
        let rest = admin.reader.take_rest(total_len);
        let pipelined = !rest.is_empty();
        *admin = AdminConn {
            reader: HeadReader::with_received(rest, head_bytes_max, deadline),
            awaiting: Awaiting::Head { ready: pipelined },
            continue_sent: false,
        };
        if pipelined || !conn.read_drained {
            self.list_read(id); // the next request may be here already: next turn
        }
    }

    /// Answers a request whose end is unknown (or that never came) and closes the connection.
    fn refuse_admin(&mut self, id: SessionId, route: Option<RouteId>, error: &AdminError, now: Millis) {
        let limit = match error {
            AdminError::HeadTooLarge => Some(Limit::admin_head_bytes_max),
            AdminError::BodyTooLarge { .. } => Some(Limit::admin_body_bytes_max),
            AdminError::RequestTimeout => Some(Limit::admin_request_timeout_ms),
            _ => None,
        };
        if let Some(limit) = limit {
            self.metrics.limit_trip(limit);
            log::warn!("admin connection in slot {} refused: {error}", id.slot());
        }
        let response = Response { close: true, ..Response::error(error) };
        self.send_admin_response(id, route, &response, now);
    }

    fn send_admin_response(&mut self, id: SessionId, route: Option<RouteId>, response: &Response, now: Millis) {
        self.metrics.admin_request(route, response.status.0);
        let Some(conn) = self.conns.get_mut(id) else { return };
        let alone = conn.out.is_empty();
        conn.out.push(response.to_bytes());
        if response.close {
            self.enter_closing(id, now);
        } else if alone {
            // One response to a client that read every earlier one: its size is bounded by
            // construction (a page stops at admin_response_bytes_max, plus one item at most), so
            // the output limits, which catch clients that stop reading, do not apply to it.
            self.list_flush(id);
        } else {
            // A client pipelining requests without reading the answers is a slow consumer.
            let _ = self.queued_more(id, now);
        }
    }

    /// The admin connection's request deadline came due: answer 408 when part of a request had
    /// arrived, else (an idle keep-alive connection) close quietly.
    pub(super) fn admin_deadline(&mut self, id: SessionId, now: Millis) {
        let Some(conn) = self.conns.get(id) else { return };
        let Phase::Admin(admin) = &conn.phase else { return };
        if admin.deadline() > now {
            // A response moved the deadline since this entry was queued: one entry, re-armed.
            let deadline = admin.deadline();
            self.deadlines.heads.push(deadline, id);
        } else if admin.reader.is_empty() {
            log::debug!("admin connection in slot {} idle for admin_request_timeout_ms; closing", id.slot());
            self.enter_closing(id, now);
        } else {
            self.refuse_admin(id, None, &AdminError::RequestTimeout, now);
        }
    }

    fn execute_admin(&mut self, call: AdminCall, now: Millis) -> Result<Response, AdminError> {
        Ok(match call {
            AdminCall::Metrics => Response {
                status: Status::OK,
                content_type: metrics::CONTENT_TYPE,
                body: metrics::expose(&self.metrics, &self.gauges()).into_bytes(),
                allow: None,
                close: false,
            },
            AdminCall::Health => {
                let (status, word) =
                    if self.draining { (Status::SERVICE_UNAVAILABLE, "draining") } else { (Status::OK, "ok") };
                let (instance_id, started_at_ms) =
                    self.admin.as_ref().map_or((String::new(), 0), |s| (s.instance_id.clone(), s.started_at_ms));
                Response::json(status, admin::json(&admin::Health { status: word, instance_id, started_at_ms }))
            }
            AdminCall::MintToken { user_id, username, expires_in_s } => {
                self.mint_token(TokenRequest { user_id, username, expires_in_s })
            }
            AdminCall::DisconnectUser { user_id } => {
                let shown = user_id.as_str().to_owned();
                match self.run_admin(AdminRequest::DisconnectUser { user_id }, now)? {
                    AdminReply::SessionsClosed { sessions_closed } => Response::json(
                        Status::OK,
                        admin::json(&admin::SessionsClosed { user_id: shown, sessions_closed }),
                    ),
                    other => return Err(unexpected(other)),
                }
            }
            AdminCall::Ban { user_id, until } => {
                let shown = user_id.as_str().to_owned();
                match self.run_admin(AdminRequest::Ban { user_id, until }, now)? {
                    AdminReply::Banned { until, sessions_closed } => Response::json(
                        Status::OK,
                        admin::json(&admin::Banned { user_id: shown, until: until.0, sessions_closed }),
                    ),
                    other => return Err(unexpected(other)),
                }
            }
            AdminCall::Unban { user_id } => {
                let shown = user_id.as_str().to_owned();
                match self.run_admin(AdminRequest::Unban { user_id }, now)? {
                    AdminReply::Unbanned { lifted } => {
                        Response::json(Status::OK, admin::json(&admin::Unbanned { user_id: shown, lifted }))
                    }
                    other => return Err(unexpected(other)),
                }
            }
            AdminCall::Playground { host } => Response::html(self.playground()?.page(host.as_deref())),
            AdminCall::PlaygroundToken(attempt) => {
                let request = self.playground()?.admit_token(&attempt)?;
                self.mint_token(request)
            }
            AdminCall::ListParties { offset, limit } => {
                let bytes_max = self.limits.admin_response_bytes_max;
                let (total, parties) = (self.core.party_count(), self.core.admin_parties(offset));
                Response::json(Status::OK, views::parties_page(parties, total, offset, limit, bytes_max))
            }
            AdminCall::GetParty { party_id } => {
                let view = self.core.admin_party(party_id).ok_or(AdminError::PartyNotFound)?;
                Response::json(Status::OK, views::party(&view))
            }
            AdminCall::UserParties { user_id } => {
                let parties = self.core.admin_user_parties(&user_id);
                let (limit, bytes_max) = (self.limits.admin_page_limit_max, self.limits.admin_response_bytes_max);
                Response::json(Status::OK, views::user_parties(&user_id, &parties, limit, bytes_max))
            }
            AdminCall::CloseParty { party_id } => match self.run_admin(AdminRequest::CloseParty { party_id }, now)? {
                AdminReply::PartyClosed(closed) => Response::json(Status::OK, views::party_closed(party_id, &closed)),
                other => return Err(unexpected(other)),
            },
            AdminCall::KickMember { party_id, user_id, session } => {
                let kick = AdminRequest::KickMember { party_id, user_id: user_id.clone(), session };
                match self.run_admin(kick, now).map_err(|error| match error {
                    CoreError::PartyPresenceNotFound => AdminError::MemberNotFound(match session {
                        Some(session) => {
                            format!("session {session} of user {:?} is not a member of the party", user_id.as_str())
                        }
                        None => format!("user {:?} has no member session in the party", user_id.as_str()),
                    }),
                    other => other.into(),
                })? {
                    AdminReply::MembersKicked(kicked) => {
                        Response::json(Status::OK, views::members_kicked(party_id, &user_id, &kicked))
                    }
                    other => return Err(unexpected(other)),
                }
            }
            AdminCall::History { query, limit } => {
                let bytes_max = self.limits.admin_response_bytes_max;
                Response::json(Status::OK, views::history_page(self.core.history(&query), limit, bytes_max))
            }
        })
    }

    /// A session token signed with the server's token key.
    fn mint_token(&self, request: TokenRequest) -> Response {
        let TokenRequest { user_id, username, expires_in_s } = request;
        let expires_at_s = super::driver::unix_now_s().saturating_add(u64::from(expires_in_s));
        let claims = Claims { user_id: user_id.clone(), username: username.clone(), expires_at_unix_s: expires_at_s };
        let token = auth::mint(&claims, &self.token_key);
        Response::json(Status::OK, admin::json(&admin::TokenMinted { token, user_id, username, expires_at_s }))
    }

    /// The playground, or 404 when the server runs without `--playground`.
    fn playground(&self) -> Result<&Playground, AdminError> {
        self.admin.as_ref().and_then(|state| state.playground.as_ref()).ok_or(AdminError::NotFound)
    }

    /// The values `/metrics` reads from the rest of the driver and the core.
    fn gauges(&self) -> Gauges {
        Gauges {
            sessions: self.core.session_count() as u64,
            parties: self.core.party_count() as u64,
            party_members: self.core.party_member_count() as u64,
            frame_bytes_received_total: self.scratch.bytes_read_total,
            slow_consumers_total: self.counters.slow_consumers_total,
            connections_refused_total: self.counters.refused_total,
            party_code_misses_total: 0,
            history_records_total: self.core.history_records_total(),
            history_write_errors_total: self.history.write_errors_total(),
            history_records_dropped_total: self.history.records_dropped_total(),
        }
    }
}

/// A core reply of another kind than the request's: a bug, answered as a failed request.
fn unexpected(reply: AdminReply) -> AdminError {
    debug_assert!(false, "the core answered an admin request with {reply:?}");
    log::error!("the core answered an admin request with {reply:?}");
    AdminError::BadRequest("internal error".into())
}
