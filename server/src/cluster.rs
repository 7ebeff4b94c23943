//! What a node of a cluster does with control events from the other nodes: revocations, room
//! access changes and presence changes. (Messages themselves travel through `bus` into `hub`.)

use std::sync::Arc;
use std::time::Duration;

use switchboard_protocol::UserInfo;

use crate::auth::Auth;
use crate::authz::{self, Authz, RoomAcl};
use crate::bus::{ControlEvent, OnControl};
use crate::hub::Hub;
use crate::{presence, store};

/// How often a node checks storage for revocations it missed on the bus: the longest a revoked
/// session's sockets stay open on a node that lost the event (one indexed query per node per
/// poll, whatever the number of connections).
const REVOCATION_POLL: Duration = Duration::from_secs(5);

pub(crate) fn control_handler(auth: &Arc<Auth>, authz: &Arc<Authz>, hub: &Arc<Hub>) -> OnControl {
    let (auth, authz, hub) = (auth.clone(), authz.clone(), hub.clone());
    Arc::new(move |event| match event {
        ControlEvent::RoomChanged {
            room,
            members,
            restrictions,
        } => {
            let acl = match members {
                Some(members) => RoomAcl::Private(members.into_iter().collect(), restrictions),
                None => RoomAcl::Public(restrictions),
            };
            authz::watch::apply(&authz, &hub, &room, acl);
        }
        // Another node revoked a session: refuse its tokens here and close its sockets here.
        ControlEvent::Revoked(session) => {
            auth.mark_revoked(&session);
            hub.close_session(&session);
        }
        ControlEvent::Typing {
            channel,
            user_id,
            username,
            typing,
        } => {
            let user = UserInfo {
                id: user_id.clone(),
                username,
            };
            let frame = crate::chat::typing::frame(channel.clone(), user, typing);
            hub.broadcast(&channel, &user_id, &frame);
        }
        ControlEvent::Read {
            channel,
            user_id,
            username,
            offset,
        } => {
            let user = UserInfo {
                id: user_id.clone(),
                username,
            };
            let frame = crate::chat::reads::receipt(channel.clone(), user, offset);
            hub.broadcast(&channel, &user_id, &frame);
        }
        ControlEvent::Blocks { user, blocked } => {
            hub.set_hidden(&user, &Arc::new(blocked.into_iter().collect()));
        }
        ControlEvent::Presence {
            channel,
            user_id,
            username,
            joined,
        } => {
            let user = UserInfo {
                id: user_id.clone(),
                username,
            };
            let frame = presence::event_frame(channel.clone(), user, joined);
            hub.broadcast(&channel, &user_id, &frame);
        }
    })
}

/// Safety net for revocation events lost on the bus: every `REVOCATION_POLL`, apply whatever
/// storage says was revoked since the last look (with overlap, so nothing falls between).
pub(crate) async fn poll_revocations(auth: Arc<Auth>, on_control: OnControl) {
    let mut since = store::now_ms();
    loop {
        tokio::time::sleep(REVOCATION_POLL).await;
        let now = store::now_ms();
        match auth
            .sync_revocations(since - 2 * REVOCATION_POLL.as_millis() as i64)
            .await
        {
            Ok(missed) => {
                for session in missed {
                    on_control(ControlEvent::Revoked(session));
                }
                since = now;
            }
            Err(e) => tracing::warn!(error = ?e, "checking revocations failed"),
        }
    }
}
