//! Errors of the core and the codec-neutral error codes every layer maps its errors to.
//!
//! [`ErrorCode`] carries the numbers of the schema's `enum ErrorCode` (`schema/huddle.fbs`): 1xx
//! frame problems, 2xx rule refusals, 3xx limits. Each layer's error enum has a `code()` beside it
//! (`CoreError` here, `wire::DecodeError`, `net::ratelimit::RequestRefusal`); each codec maps an
//! `ErrorCode` to its own representation once (the FlatBuffers codec by number, checked against
//! the generated enum by a test in `wire`).

use super::{search, UserId};

/// Declares [`ErrorCode`] and its `ALL` list from one list of names and numbers, so a new code
/// is written once.
macro_rules! error_codes {
    ($($name:ident = $number:literal,)*) => {
        /// Stable error codes, codec-neutral. The numbers are the wire's and never change meaning;
        /// new codes are appended in the range of their family.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum ErrorCode {
            $($name = $number,)*
        }

        impl ErrorCode {
            /// Every code, in number order (tests walk it against each codec).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];
        }
    };
}

error_codes! {
    Unspecified = 0,
    MalformedEnvelope = 100,
    MissingCid = 101,
    UnknownMessage = 102,
    NotARequest = 103,
    TextFrameUnsupported = 104,
    BadInput = 200,
    PartyNotFound = 201,
    PartyFull = 202,
    PartyNotLeader = 203,
    PartyNotMember = 204,
    PartyJoinRequestDuplicate = 205,
    PartyAlreadyMember = 206,
    PartyCannotRemoveSelf = 207,
    PartyPresenceNotFound = 208,
    PartyJoinRequestsFull = 209,
    PartyTooManyParties = 210,
    PartyPresenceMismatch = 211,
    FollowLimitReached = 220,
    SearchQueryInvalid = 230,
    SearchCursorMismatch = 231,
    SearchCursorInvalid = 232,
    SearchQueryTooBroad = 233,
    SearchQueryTooCostly = 234,
    SearchBudgetExhausted = 235,
    LabelTooComplex = 236,
    SearchIndexFull = 237,
    PartyAlreadyInParty = 240,
    PartyJoinNotAllowed = 241,
    PartyNotInvited = 242,
    InviteeIsSelf = 243,
    InviteeInvalid = 244,
    InviteeInParty = 245,
    InvitationNotFound = 246,
    PartyCodeNotFound = 247,
    InvitationCancelNotAllowed = 248,
    PartyJoinBlocked = 260,
    PartyNotFriendOfLeader = 261,
    PartyNotFriendOfMembers = 262,
    InviteeBlocked = 263,
    PartyChatDisabled = 264,
    PartyNameDenied = 265,
    LimitExceeded = 300,
}

impl ErrorCode {
    /// The wire number.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// The code with this number; `None` for a number this build does not know (a newer server).
    pub fn from_number(number: u16) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|code| code.number() == number)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self, self.number())
    }
}

/// Why a request was refused. Mapped to a wire error code in exactly one place
/// (`wire::errors`); the Display text is the error reply's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreError {
    /// A field's value is not acceptable; the text says which and why.
    BadInput(String),
    /// A size or count limit; the text names it.
    LimitExceeded(String),
    /// No party with that id (never existed, or its last member left).
    PartyNotFound,
    /// The party has `max_size` members.
    PartyFull,
    /// A leader-only operation from a member who is not the leader (P-12).
    PartyNotLeader,
    /// A members-only (or leader-only) operation from a session that is not a member.
    PartyNotMember,
    /// The user already has a pending join request for this party (P-2).
    PartyJoinRequestDuplicate,
    /// Another session of the user is already a member of this closed party (P-2).
    PartyAlreadyMember,
    /// The leader named its own session in a remove (P-4).
    PartyCannotRemoveSelf,
    /// The named presence is not a member or pending requester, as the operation needs.
    PartyPresenceNotFound,
    /// The closed party has `max_size` pending join requests (P-2).
    PartyJoinRequestsFull,
    /// The session is in, or has asked to join, `parties_per_session_max` parties.
    PartyTooManyParties(usize),
    /// The named presence's session matched but its user id or username did not (P-12).
    PartyPresenceMismatch,
    /// Following would take the session past `follows_per_session_max` followed users.
    FollowLimitReached { following: usize, adding: usize, max: usize },
    /// the search query does not parse; the error says what is wrong and at which byte.
    SearchQueryInvalid(search::QueryError),
    /// the cursor was issued for another query, open filter or limit.
    SearchCursorMismatch,
    /// the cursor is not one this server issued (garbage, truncated, or too long).
    SearchCursorInvalid,
    /// A wildcard term of the query matches (or would have to inspect) more indexed values than
    /// `search_wildcard_expansion_max` / `search_wildcard_scan_max` allow.
    SearchQueryTooBroad { byte_pos: usize, values_max: usize },
    /// The search would need more than `search_query_cost_max` cost units (issue 14).
    SearchQueryTooCostly { cost_max: u64 },
    /// The session's search budget is spent (`search_budget_cost_per_ms`,
    /// `search_budget_burst_cost`); searches are admitted again in `retry_after_ms`.
    SearchBudgetExhausted { retry_after_ms: u64 },
    /// The label indexes more values or fields than `party_label_values_max` /
    /// `party_label_fields_max` allow, or its field paths are too long (the error says which).
    LabelTooComplex(search::LabelError),
    /// The search index reached `search_index_bytes_max`: labels are refused until parties end.
    SearchIndexFull { bytes_max: usize },
    /// L-1: the server keeps one party per user and this user has a session in a party.
    PartyAlreadyInParty,
    /// L-4: the party's join strategy is `not_allowed`.
    PartyJoinNotAllowed,
    /// L-4: the party's join strategy is `invited_only` and the user has no pending invitation.
    PartyNotInvited,
    /// L-2: an invite names the inviting user.
    InviteeIsSelf,
    /// L-2: an invite names a malformed user id (empty, or longer than `UserId::BYTES_MAX`); the
    /// text is the id, shortened for display.
    InviteeInvalid(String),
    /// L-2: an invite names a user with a session in the party.
    InviteeInParty(UserId),
    /// L-2: no pending invitation of this user to this party.
    InvitationNotFound,
    /// L-3: no live party has this code.
    PartyCodeNotFound,
    /// L-2: a cancel from a member who neither sent the invitation nor leads the party.
    InvitationCancelNotAllowed,
    /// L-4: the leader blocked this user or this user blocked the leader: no way in.
    PartyJoinBlocked,
    /// L-4: the party's join strategy is `friends_of_leader` and the user is not in the leader's
    /// friend list (a plain join or join request).
    PartyNotFriendOfLeader,
    /// L-4: the party's join strategy is `friends_of_members` and the user is in no member's
    /// friend list.
    PartyNotFriendOfMembers,
    /// L-4: an invite names a user that the leader or the inviter blocked, or that blocked
    /// either of them.
    InviteeBlocked(UserId),
    /// L-6: the party's chat is off.
    PartyChatDisabled,
    /// L-7: the name contains an entry of the deny-list.
    PartyNameDenied,
    /// L-8 (admin API only, answered with HTTP 409): an attributes write whose timestamp is not
    /// newer than the stored one.
    StaleAttributes { stored: super::UnixMillis, given: super::UnixMillis },
    /// S-1: a status is display text; this one holds a control character other than tab, line
    /// feed and carriage return, at byte `byte`.
    StatusControlCharacter { character: char, byte: usize },
}

impl std::fmt::Display for CoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoreError::BadInput(why) => write!(f, "bad input: {why}"),
            CoreError::LimitExceeded(why) => write!(f, "limit exceeded: {why}"),
            CoreError::PartyNotFound => write!(f, "party not found"),
            CoreError::PartyFull => write!(f, "party is full"),
            CoreError::PartyNotLeader => write!(f, "only the party leader may do this"),
            CoreError::PartyNotMember => write!(f, "not a member of this party"),
            CoreError::PartyJoinRequestDuplicate => write!(f, "this user already asked to join the party"),
            CoreError::PartyAlreadyMember => write!(f, "this user is already a member of the party"),
            CoreError::PartyCannotRemoveSelf => write!(f, "the leader cannot remove itself; leave instead"),
            CoreError::PartyPresenceNotFound => {
                write!(f, "the named presence is not in the party (or has no pending request)")
            }
            CoreError::PartyJoinRequestsFull => write!(f, "the party's join request queue is full"),
            CoreError::PartyTooManyParties(max) => {
                write!(f, "this session is in or asked to join parties_per_session_max {max} parties")
            }
            CoreError::PartyPresenceMismatch => {
                write!(f, "the named presence's user_id or username does not match its session")
            }
            CoreError::FollowLimitReached { following, adding, max } => write!(
                f,
                "follow limit reached: following {following} users, this request adds {adding}, \
                 follows_per_session_max is {max}; nothing was followed"
            ),
            CoreError::SearchQueryInvalid(error) => write!(f, "invalid search query: {error}"),
            CoreError::SearchCursorMismatch => {
                write!(f, "the cursor belongs to another query, open filter or limit; start again without it")
            }
            CoreError::SearchCursorInvalid => write!(f, "the cursor is not one this server issued"),
            CoreError::SearchQueryTooBroad { byte_pos, values_max } => write!(
                f,
                "search query too broad: the wildcard term at byte {byte_pos} matches or scans more than \
                 {values_max} distinct values; give it a longer literal prefix"
            ),
            CoreError::SearchQueryTooCostly { cost_max } => write!(
                f,
                "search query too costly: answering it would visit more than {cost_max} index entries \
                 (search_query_cost_max); add a selective must-term (+field:value) or narrow its ranges"
            ),
            CoreError::SearchBudgetExhausted { retry_after_ms } => write!(
                f,
                "search budget spent: this connection's searches used their share of the server \
                 (search_budget_cost_per_ms); search again in {retry_after_ms} ms"
            ),
            CoreError::LabelTooComplex(error) => write!(f, "label too complex for the search index: {error}"),
            CoreError::SearchIndexFull { bytes_max } => write!(
                f,
                "the search index is full (search_index_bytes_max {bytes_max} bytes): labels are refused \
                 until parties end; a party without a label can still be created"
            ),
            CoreError::PartyAlreadyInParty => {
                write!(f, "already in party: this server keeps one party per user; leave the current party first")
            }
            CoreError::PartyJoinNotAllowed => write!(f, "this party does not allow joins or invitations"),
            CoreError::PartyNotInvited => write!(f, "this party admits invited users only, and you have no invitation"),
            CoreError::InviteeIsSelf => write!(f, "you cannot invite yourself"),
            CoreError::InviteeInvalid(id) => write!(f, "invitee {id:?} is not a valid user id (1..=128 bytes)"),
            CoreError::InviteeInParty(user_id) => {
                write!(f, "invitee {:?} already has a session in the party", user_id.as_str())
            }
            CoreError::InvitationNotFound => write!(
                f,
                "no pending invitation to this party (never sent, or already accepted, rejected, cancelled or expired)"
            ),
            CoreError::PartyCodeNotFound => write!(f, "no party has this code"),
            CoreError::InvitationCancelNotAllowed => {
                write!(f, "only the member who sent the invitation or the party leader may cancel it")
            }
            CoreError::PartyJoinBlocked => {
                write!(f, "you cannot join this party: its leader blocked you, or you blocked its leader")
            }
            CoreError::PartyNotFriendOfLeader => {
                write!(f, "this party admits friends of its leader only (or invited users and party codes)")
            }
            CoreError::PartyNotFriendOfMembers => {
                write!(f, "this party admits friends of its members only (or invited users and party codes)")
            }
            CoreError::InviteeBlocked(user_id) => write!(
                f,
                "invitee {:?} cannot be invited: the leader or you blocked that user, or that user blocked one of you",
                user_id.as_str()
            ),
            CoreError::PartyChatDisabled => {
                write!(f, "this party's chat is off (the leader turns it on with an update)")
            }
            CoreError::PartyNameDenied => write!(f, "the party name contains a word that is not allowed"),
            CoreError::StaleAttributes { stored, given } => write!(
                f,
                "timestamp {} is not newer than the stored attributes' timestamp {}; nothing changed",
                given.0, stored.0
            ),
            CoreError::StatusControlCharacter { character, byte } => write!(
                f,
                "bad input: status has the control character U+{:04X} at byte {byte}; a status is display text \
                 (tab, line feed and carriage return are allowed)",
                u32::from(*character)
            ),
        }
    }
}

impl CoreError {
    /// The codec-neutral code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::BadInput(_) => ErrorCode::BadInput,
            CoreError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            CoreError::PartyNotFound => ErrorCode::PartyNotFound,
            CoreError::PartyFull => ErrorCode::PartyFull,
            CoreError::PartyNotLeader => ErrorCode::PartyNotLeader,
            CoreError::PartyNotMember => ErrorCode::PartyNotMember,
            CoreError::PartyJoinRequestDuplicate => ErrorCode::PartyJoinRequestDuplicate,
            CoreError::PartyAlreadyMember => ErrorCode::PartyAlreadyMember,
            CoreError::PartyCannotRemoveSelf => ErrorCode::PartyCannotRemoveSelf,
            CoreError::PartyPresenceNotFound => ErrorCode::PartyPresenceNotFound,
            CoreError::PartyJoinRequestsFull => ErrorCode::PartyJoinRequestsFull,
            CoreError::PartyTooManyParties(_) => ErrorCode::PartyTooManyParties,
            CoreError::PartyPresenceMismatch => ErrorCode::PartyPresenceMismatch,
            CoreError::FollowLimitReached { .. } => ErrorCode::FollowLimitReached,
            CoreError::SearchQueryInvalid(_) => ErrorCode::SearchQueryInvalid,
            CoreError::SearchCursorMismatch => ErrorCode::SearchCursorMismatch,
            CoreError::SearchCursorInvalid => ErrorCode::SearchCursorInvalid,
            CoreError::SearchQueryTooBroad { .. } => ErrorCode::SearchQueryTooBroad,
            CoreError::SearchQueryTooCostly { .. } => ErrorCode::SearchQueryTooCostly,
            CoreError::SearchBudgetExhausted { .. } => ErrorCode::SearchBudgetExhausted,
            CoreError::LabelTooComplex(_) => ErrorCode::LabelTooComplex,
            CoreError::SearchIndexFull { .. } => ErrorCode::SearchIndexFull,
            CoreError::PartyAlreadyInParty => ErrorCode::PartyAlreadyInParty,
            CoreError::PartyJoinNotAllowed => ErrorCode::PartyJoinNotAllowed,
            CoreError::PartyNotInvited => ErrorCode::PartyNotInvited,
            CoreError::InviteeIsSelf => ErrorCode::InviteeIsSelf,
            CoreError::InviteeInvalid(_) => ErrorCode::InviteeInvalid,
            CoreError::InviteeInParty(_) => ErrorCode::InviteeInParty,
            CoreError::InvitationNotFound => ErrorCode::InvitationNotFound,
            CoreError::PartyCodeNotFound => ErrorCode::PartyCodeNotFound,
            CoreError::InvitationCancelNotAllowed => ErrorCode::InvitationCancelNotAllowed,
            CoreError::PartyJoinBlocked => ErrorCode::PartyJoinBlocked,
            CoreError::PartyNotFriendOfLeader => ErrorCode::PartyNotFriendOfLeader,
            CoreError::PartyNotFriendOfMembers => ErrorCode::PartyNotFriendOfMembers,
            CoreError::InviteeBlocked(_) => ErrorCode::InviteeBlocked,
            CoreError::PartyChatDisabled => ErrorCode::PartyChatDisabled,
            CoreError::PartyNameDenied => ErrorCode::PartyNameDenied,
            // No client request produces it: the admin API answers it with 409.
            CoreError::StaleAttributes { .. } => ErrorCode::BadInput,
            CoreError::StatusControlCharacter { .. } => ErrorCode::BadInput,
        }
    }
}

impl std::error::Error for CoreError {}
