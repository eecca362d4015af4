//! The lobby's admin calls (SPEC L-4, L-8; `crate::admin::lobby` parses them), executed through
//! the core like the others (`admin.rs`): friends and blocks into the social table, attributes
//! into a party, whose members hear of it in the normal order.

use super::admin::{unexpected, Response};
use super::conn::Transport;
use super::driver::Driver;
use super::http::Status;
use crate::admin::lobby::{AttributesSet, ListSet, LobbyCall, SocialSet};
use crate::admin::{self, AdminError};
use crate::core::{AdminReply, AdminRequest, CoreError, Millis, SocialWrite};

impl<S: Transport> Driver<S> {
    pub(super) fn execute_lobby_admin(&mut self, call: LobbyCall, now: Millis) -> Result<Response, AdminError> {
        Ok(match call {
            LobbyCall::SetList { user_id, list, ids } => {
                let write = match list {
                    crate::core::SocialList::Friends => {
                        SocialWrite { user_id: user_id.clone(), friends: Some(ids), blocks: None }
                    }
                    crate::core::SocialList::Blocks => {
                        SocialWrite { user_id: user_id.clone(), friends: None, blocks: Some(ids) }
                    }
                };
                match self.run_admin(AdminRequest::SetSocial { writes: vec![write] }, now)? {
                    AdminReply::Social { .. } => {
                        let count = self.core.social_list(&user_id, list).len();
                        let set = ListSet { user_id: user_id.as_str().to_owned(), list: list.name(), count };
                        Response::json(Status::OK, admin::json(&set))
                    }
                    other => return Err(unexpected(other)),
                }
            }
            LobbyCall::SetSocial { writes } => {
                let users_written = writes.len();
                match self.run_admin(AdminRequest::SetSocial { writes }, now)? {
                    AdminReply::Social { users, entries } => {
                        Response::json(Status::OK, admin::json(&SocialSet { users_written, users, entries }))
                    }
                    other => return Err(unexpected(other)),
                }
            }
            LobbyCall::SetAttributes { party_id, attributes, timestamp } => {
                let request = AdminRequest::SetPartyAttributes { party_id, attributes, timestamp };
                match self.run_admin(request, now) {
                    Ok(AdminReply::PartyAttributes { version }) => {
                        let set = AttributesSet { party_id: party_id.to_string(), timestamp: timestamp.0, version };
                        Response::json(Status::OK, admin::json(&set))
                    }
                    Ok(other) => return Err(unexpected(other)),
                    Err(CoreError::PartyNotFound) => return Err(AdminError::PartyNotFound),
                    Err(error) => return Err(error.into()),
                }
            }
        })
    }
}
