//! `auth` on a live connection: a fresh token of the same login session renews its lease.

use switchboard_protocol::{Ack, ErrorCode, UserInfo};

use crate::ws::connection::{Handler, TokenClock};

impl Handler {
    /// A fresh token of the same login session (after a refresh) renews the connection's
    /// lease on life; another user's or another session's is refused (a connection belongs to
    /// one session, so logging that session out closes it).
    pub(in crate::ws) fn reauth(&mut self, id: i64, token: &str) {
        match self.state.auth.authenticate(token) {
            Ok(p) if p.user_id != self.principal().user_id => self.error(
                Some(id),
                ErrorCode::Forbidden,
                "a connection cannot change user".into(),
            ),
            Ok(p) if p.session_id != self.principal().session_id => self.error(
                Some(id),
                ErrorCode::Forbidden,
                "a connection belongs to one login session: reconnect to use another".into(),
            ),
            Ok(p) => {
                self.token = TokenClock::of(&p);
                self.ack_auth(id);
            }
            Err(e) => self.error(Some(id), ErrorCode::Unauthorized, e.to_string()),
        }
    }

    pub(in crate::ws) fn ack_auth(&self, id: i64) {
        let p = self.principal();
        let user = UserInfo {
            id: p.user_id.to_string(),
            username: p.username.to_string(),
        };
        self.ack(Ack {
            id,
            user: Some(user),
            ..Default::default()
        });
    }
}
