//! Status helpers (SPEC S-1, S-2): typed wrappers over `Client::request`.

use super::{Client, ClientError};
use crate::core::{Reply, Request, StatusPresence, StatusReply, StatusRequest, UserId, Username};
use crate::wire::ErrorReply;

impl Client {
    /// Sets this session's status (`Some("")` is online with an empty status); `None` appears
    /// offline. `Ok(Err(_))` is the server's error reply.
    pub fn status_update(&mut self, status: Option<&str>) -> Result<Result<(), ErrorReply>, ClientError> {
        let request = StatusRequest::Update { status: status.map(str::to_owned) };
        match self.status_request(request)? {
            Ok(StatusReply::Updated) => Ok(Ok(())),
            Ok(other) => Err(ClientError::Unexpected(format!("status update answered with {other:?}"))),
            Err(error) => Ok(Err(error)),
        }
    }

    /// Follows users by id and by username; returns the current statuses of their visible
    /// sessions.
    pub fn follow(
        &mut self,
        user_ids: &[&str],
        usernames: &[&str],
    ) -> Result<Result<Vec<StatusPresence>, ErrorReply>, ClientError> {
        let request = StatusRequest::Follow {
            user_ids: user_ids.iter().map(|id| UserId::new(id)).collect(),
            usernames: usernames.iter().map(|name| Username::new(name)).collect(),
        };
        match self.status_request(request)? {
            Ok(StatusReply::Followed { presences }) => Ok(Ok(presences)),
            Ok(other) => Err(ClientError::Unexpected(format!("follow answered with {other:?}"))),
            Err(error) => Ok(Err(error)),
        }
    }

    /// Stops following users.
    pub fn unfollow(&mut self, user_ids: &[&str]) -> Result<Result<(), ErrorReply>, ClientError> {
        let request = StatusRequest::Unfollow { user_ids: user_ids.iter().map(|id| UserId::new(id)).collect() };
        match self.status_request(request)? {
            Ok(StatusReply::Unfollowed) => Ok(Ok(())),
            Ok(other) => Err(ClientError::Unexpected(format!("unfollow answered with {other:?}"))),
            Err(error) => Ok(Err(error)),
        }
    }

    fn status_request(&mut self, request: StatusRequest) -> Result<Result<StatusReply, ErrorReply>, ClientError> {
        match self.request(&Request::Status(request))? {
            Ok(Reply::Status(reply)) => Ok(Ok(reply)),
            Ok(other) => Err(ClientError::Unexpected(format!("status request answered with {other:?}"))),
            Err(error) => Ok(Err(error)),
        }
    }
}
