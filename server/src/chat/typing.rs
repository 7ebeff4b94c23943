//! Typing indicators: an ephemeral signal in a room, to every subscriber on every node, never
//! stored and without an offset. A connection sends at most one start per channel every
//! [`EVERY`] (a stop right after a start goes through); each indicator lapses by itself after
//! [`TTL`] unless renewed, so a client that vanishes mid-sentence leaves no stuck "typing…".

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_protocol::{ServerFrame, UserInfo};

/// The least time between two typing signals of one connection on one channel.
pub(crate) const EVERY: Duration = Duration::from_secs(2);
/// How long a client shows an indicator that is not renewed (`ttl_ms` in the frame): long
/// enough to span the renewals of a client that sends one every [`EVERY`], with slack.
pub(crate) const TTL: Duration = Duration::from_secs(6);

/// The frame every subscriber of `channel` gets.
pub(crate) fn frame(channel: String, user: UserInfo, typing: bool) -> ServerFrame {
    ServerFrame::Typing {
        channel,
        user,
        typing,
        ttl_ms: TTL.as_millis() as u64,
    }
}

/// One connection's last signal per channel, for the rate rule. Holds only channels the
/// connection is subscribed to (the caller checks), so it is bounded by the subscription cap.
#[derive(Default)]
pub(crate) struct Throttle {
    last: HashMap<Arc<str>, (Instant, bool)>,
}

impl Throttle {
    /// Whether a signal (`typing` or a stop) on `channel` may go out now; records it if so.
    pub(crate) fn allow(&mut self, channel: &Arc<str>, typing: bool, now: Instant) -> bool {
        let allowed = match self.last.get(channel) {
            None => true,
            Some(&(at, was_typing)) => now.duration_since(at) >= EVERY || (was_typing && !typing),
        };
        if allowed {
            self.last.insert(channel.clone(), (now, typing));
        }
        allowed
    }

    /// Forgets a channel the connection left.
    pub(crate) fn forget(&mut self, channel: &str) {
        self.last.remove(channel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_start_per_interval_and_a_stop_right_after_a_start() {
        let mut t = Throttle::default();
        let room: Arc<str> = "room:a".into();
        let other: Arc<str> = "room:b".into();
        let t0 = Instant::now();
        assert!(t.allow(&room, true, t0));
        assert!(!t.allow(&room, true, t0 + Duration::from_millis(500)));
        assert!(
            t.allow(&other, true, t0 + Duration::from_millis(500)),
            "per channel"
        );
        assert!(
            t.allow(&room, false, t0 + Duration::from_millis(600)),
            "a stop after a start"
        );
        assert!(
            !t.allow(&room, false, t0 + Duration::from_millis(700)),
            "but not stop after stop"
        );
        assert!(!t.allow(&room, true, t0 + Duration::from_millis(900)));
        assert!(t.allow(&room, true, t0 + Duration::from_millis(2600)));
        t.forget("room:a");
        assert!(t.allow(&room, true, t0 + Duration::from_millis(2700)));
    }
}
