//! Pauses between retries against Redis: doubling from a first pause up to [`MAX_BACKOFF`], so
//! an outage costs a few attempts a second, and a blip a few milliseconds.

use std::time::Duration;

/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(super) fn from(first: Duration) -> Backoff {
        Backoff { next: first }
    }

    /// Sleeps the next pause, and doubles the one after (up to [`MAX_BACKOFF`]).
    pub(super) async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(MAX_BACKOFF);
    }
}
