//! One load-test connection as a task: open and subscribe, then read frames, publish on schedule
//! and follow the run's [`Control`] timeline until the final offsets are reached (or the
//! deadline passes), then fold its correctness counts into the shared [`Stats`].
//!
//! A connection the server closes (slow consumer 4008, shutdown 1001, ...) or that breaks is
//! counted as an error and reopened with `since` = the last offset received per channel, as a
//! real client would; the trackers survive, so anything the reconnect misses shows up as lost.
//!
//! A connection that publishes by HTTP post ([`Via::Post`], the feed's author) posts through a
//! [`Poster`] whose answers it reads like acks; posting goes on while its socket is down.
//!
//! A chat member with the mix on ([`crate::lifecycle`]) also starts a lifecycle chain over HTTP
//! after every Nth ack (whose answers it reads like acks too: their offsets count towards the
//! channel's final offset) and sends typing signals on its socket.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use switchboard_protocol::{ClientFrame, MessageFrame, ServerFrame};
use tokio::sync::{watch, Semaphore};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

use crate::client::{Conn, DialError, Dialer, Event};
use crate::control::{Control, DropOrder, Finish};
use crate::lifecycle::{self, Answer, Lifecycle, Typist};
use crate::poster::{Outcome, Poster, Reply};
use crate::publisher::Publisher;
use crate::scenarios::{PeerPlan, Via};
use crate::stats::Stats;
use crate::subscription::Subscription;
use crate::tokens::Account;

/// Longest a connection may take to open and have its subscriptions acknowledged. Matches the
/// server's authentication timeout: slower than that, the server is overloaded and the attempt
/// counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First reconnect delay after an unexpected close; doubles per failed attempt up to the max.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// What every connection task of one engine shares.
pub struct PeerEnv {
    pub dialer: Dialer,
    pub stats: Arc<Stats>,
    pub run_id: String,
    pub payload_bytes: usize,
    /// Bounds handshakes in flight so that a ramp or a reconnect stampede does not overflow the
    /// server's accept backlog (a dropped SYN is retried only after a second, which would show
    /// up as a bogus 1 s connect latency).
    pub handshakes: Semaphore,
    pub drain: Duration,
    /// For connections that post: the HTTP client and the server's `http://host:port`.
    pub http: reqwest::Client,
    pub http_base: String,
}

pub async fn run(plan: PeerPlan, env: Arc<PeerEnv>, control: watch::Receiver<Control>) {
    let mut peer = Peer::new(plan, env, control);
    match peer.open().await {
        Ok(took) => {
            peer.opened = true;
            let stats = &peer.env.stats;
            stats.connect_ok.fetch_add(1, Relaxed);
            stats.connect_latency(peer.index, took.as_micros() as u64);
            peer.serve().await;
        }
        Err(e) => {
            let stats = &peer.env.stats;
            stats.connect_failed.fetch_add(1, Relaxed);
            stats.error(&format!("connect_{}", e.reason));
            if e.local_limit {
                stats.local_limit_hit(&e.detail);
            }
        }
    }
    peer.finish_up().await;
}

struct Peer {
    index: u64,
    /// The registered account it acts as, if not its minted user.
    user: Option<Account>,
    drops: bool,
    env: Arc<PeerEnv>,
    control: watch::Receiver<Control>,
    conn: Option<Conn>,
    subs: Vec<Subscription>,
    publisher: Option<Publisher>,
    /// Sends the posts of a [`Via::Post`] publisher.
    poster: Option<Poster>,
    /// The chat mix's lifecycle chains on its own messages.
    lifecycle: Option<Lifecycle>,
    /// The chat mix's typing signals.
    typist: Option<Typist>,
    /// The drop this connection is recovering from, until it holds the drop target again.
    recovering: Option<DropOrder>,
    dropped: bool,
    /// The first open succeeded.
    opened: bool,
    finish: Option<Finish>,
    /// When to try reopening a lost connection.
    retry_at: Option<Instant>,
    /// The delay the server asked for in a `reconnect` frame, used for the next retry.
    retry_hint: Option<Duration>,
    backoff: Duration,
}

impl Peer {
    fn new(plan: PeerPlan, env: Arc<PeerEnv>, control: watch::Receiver<Control>) -> Peer {
        let lane = plan.lane;
        let poster = plan
            .publish
            .as_ref()
            .filter(|p| p.via == Via::Post)
            .map(|_| Poster::new(env.http.clone(), &env.http_base));
        let mix = plan.mix;
        let socket_channel = plan
            .publish
            .as_ref()
            .filter(|p| p.via == Via::Socket)
            .map(|p| p.channel.clone());
        let lifecycle = socket_channel
            .as_ref()
            .filter(|_| mix.lifecycle_every > 0)
            .map(|c| Lifecycle::new(env.http.clone(), &env.http_base, c, mix.lifecycle_every));
        let typist = socket_channel
            .filter(|_| mix.typing)
            .map(|c| Typist::new(c, lifecycle::TYPING_EVERY));
        Peer {
            index: plan.index,
            user: plan.user,
            drops: plan.drops,
            env,
            control,
            conn: None,
            subs: plan
                .subscribe
                .into_iter()
                .map(|channel| {
                    Subscription::new(channel, lane).with_lifecycle(mix.lifecycle_every > 0)
                })
                .collect(),
            publisher: plan.publish.map(|p| Publisher::new(p, lane)),
            poster,
            lifecycle,
            typist,
            recovering: None,
            dropped: false,
            opened: false,
            finish: None,
            retry_at: None,
            retry_hint: None,
            backoff: RECONNECT_MIN,
        }
    }

    /// Connects and (re)subscribes every channel, waiting for the acks. Returns how long that
    /// took once a handshake slot was free: the server's connect latency, without the time
    /// spent queueing behind our own in-flight limit.
    async fn open(&mut self) -> Result<Duration, DialError> {
        let env = self.env.clone();
        let _permit = env.handshakes.acquire().await.expect("never closed");
        let started = Instant::now();
        let dial = env.dialer.dial_as(self.index, self.user.as_ref());
        let mut conn = timeout(CONNECT_TIMEOUT, dial)
            .await
            .map_err(|_| DialError::other("timeout", "connect timed out"))??;
        for sub in &mut self.subs {
            let frame = sub.request(conn.next_id());
            conn.send(&frame)
                .await
                .map_err(|e| DialError::other("send", e.to_string()))?;
        }
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        while self.subs.iter().any(|s| !s.is_acked()) {
            let event = timeout_at(deadline, conn.next())
                .await
                .map_err(|_| DialError::other("subscribe_timeout", "no subscribe ack"))?;
            match event {
                Event::Frame(ServerFrame::Ack(ack)) => {
                    if let Some(sub) = self.subs.iter_mut().find(|s| s.awaits(ack.id)) {
                        sub.on_ack(ack.offset.unwrap_or(0));
                    }
                }
                Event::Frame(ServerFrame::Error(e)) => {
                    let reason = format!("subscribe_{}", e.code.as_str());
                    return Err(DialError::other(&reason, e.message));
                }
                Event::Frame(ServerFrame::Message(m)) => self.on_message(&m),
                // Presence events are not what the load tester measures.
                Event::Frame(
                    ServerFrame::Reconnect { .. }
                    | ServerFrame::Join { .. }
                    | ServerFrame::Leave { .. }
                    | ServerFrame::Typing { .. }
                    | ServerFrame::Read { .. }
                    | ServerFrame::TokenExpiring { .. },
                ) => {}
                Event::Closed(code) => {
                    let reason = code.map_or("closed".to_owned(), |c| format!("close_{c}"));
                    return Err(DialError::other(&reason, "closed while subscribing"));
                }
                Event::Undecodable(_) => env.stats.error("undecodable"),
            }
        }
        self.conn = Some(conn);
        env.stats.open.fetch_add(1, Relaxed);
        Ok(started.elapsed())
    }

    async fn serve(&mut self) {
        loop {
            if self.should_stop() {
                break;
            }
            let far = Instant::now() + Duration::from_secs(3600);
            let sleep = sleep_until(self.wake_at().unwrap_or(far));
            let posted = next_reply(self.poster.as_mut());
            let changed_msg = next_change(self.lifecycle.as_mut());
            if let Some(conn) = self.conn.as_mut() {
                tokio::select! {
                    event = conn.next() => self.on_event(event),
                    changed = self.control.changed() => match changed {
                        Ok(()) => self.on_control().await,
                        Err(_) => break,
                    },
                    () = sleep => self.on_timer().await,
                    reply = posted => self.on_posted(reply),
                    event = changed_msg => self.on_lifecycle(event),
                }
            } else {
                tokio::select! {
                    changed = self.control.changed() => match changed {
                        Ok(()) => self.on_control().await,
                        Err(_) => break,
                    },
                    () = sleep => self.on_timer().await,
                    reply = posted => self.on_posted(reply),
                    event = changed_msg => self.on_lifecycle(event),
                }
            }
        }
    }

    /// The earliest instant something is due: a publish, the ack drain deadline, a reconnect
    /// attempt or the finish deadline.
    fn wake_at(&self) -> Option<Instant> {
        let publisher = self
            .publisher
            .as_ref()
            .and_then(|p| match (&self.conn, p.via()) {
                (Some(_), _) | (None, Via::Post) => p.wake_at(),
                // Disconnected: nothing can be sent, only the ack drain deadline matters.
                (None, Via::Socket) => p.drain_deadline(),
            });
        let retry = self.conn.is_none().then_some(self.retry_at).flatten();
        let finish = self.finish.as_ref().map(|f| f.deadline);
        // Typing is only sent on an open socket; a reconnect sends the overdue one.
        let typing = self
            .typist
            .as_ref()
            .filter(|_| self.conn.is_some())
            .and_then(Typist::wake_at);
        [publisher, retry, finish, typing]
            .into_iter()
            .flatten()
            .min()
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        if self.conn.is_none() && self.retry_at.is_some_and(|t| t <= now) {
            self.reconnect().await;
        }
        let env = self.env.clone();
        match (
            self.publisher.as_mut(),
            self.conn.as_mut(),
            self.poster.as_ref(),
        ) {
            (Some(p), Some(conn), None) => {
                if let Some(due) = p.due(&env.run_id, env.payload_bytes) {
                    let frame = ClientFrame::Publish {
                        id: conn.next_id(),
                        channel: p.channel().to_owned(),
                        data: due.data,
                        idempotency_key: None,
                    };
                    match conn.send(&frame).await {
                        Ok(()) => p.sent(frame.id().unwrap_or_default(), due.sent_ns, &env.stats),
                        Err(_) => self.lost_connection("send_failed"),
                    }
                }
            }
            (Some(p), _, Some(poster)) => {
                if let Some(due) = p.due(&env.run_id, env.payload_bytes) {
                    let id = due.seq as i64;
                    let account = self.user.as_ref().expect("a posting peer has an account");
                    match env.dialer.minter().token_for(account) {
                        Ok(token) => {
                            poster.send(id, &token, due.data);
                            p.sent(id, due.sent_ns, &env.stats);
                        }
                        Err(_) => env.stats.error("post_token"),
                    }
                }
            }
            _ => {}
        }
        if let Some(p) = self.publisher.as_mut() {
            p.settle(&env.stats);
        }
        if let (Some(t), Some(conn)) = (self.typist.as_mut(), self.conn.as_mut()) {
            if t.due(Instant::now()) {
                let id = conn.next_id();
                let frame = ClientFrame::Typing {
                    id: Some(id),
                    channel: t.channel.clone(),
                    typing: true,
                };
                match conn.send(&frame).await {
                    Ok(()) => {
                        t.sent(id);
                        env.stats.mix.typing_sent.fetch_add(1, Relaxed);
                    }
                    Err(_) => self.lost_connection("send_failed"),
                }
            }
        }
    }

    /// An answer to a lifecycle action: a stored change's offset counts towards the channel's
    /// final offset like a publish ack's; a chain's end may let the publisher finish.
    fn on_lifecycle(&mut self, event: lifecycle::Event) {
        let stats = &self.env.stats;
        let Some(p) = self.publisher.as_mut() else {
            return;
        };
        match event {
            lifecycle::Event::Answered(reply) => {
                stats
                    .mix
                    .answered(p.channel(), &reply, stats.window(), self.index);
                match reply.answer {
                    Answer::Stored(offset) => stats.note_acked(p.channel(), offset),
                    Answer::Unchanged => {}
                    Answer::Refused(status) => {
                        stats.error(&format!("lifecycle_{}_http_{status}", reply.action.name()))
                    }
                    Answer::Failed(reason) => stats.error(reason),
                }
            }
            lifecycle::Event::ChainDone => {
                p.hold(self.lifecycle.as_ref().map_or(0, Lifecycle::in_flight));
                p.settle(stats);
            }
        }
    }

    /// The answer to a post: the 201 is its ack.
    fn on_posted(&mut self, reply: Reply) {
        let stats = &self.env.stats;
        let Some(p) = self.publisher.as_mut() else {
            return;
        };
        let mine = match reply.outcome {
            Outcome::Created => p.on_ack(reply.id, None, stats, self.index),
            Outcome::Refused(status) => {
                stats.error(&format!("post_http_{status}"));
                p.on_error(reply.id)
            }
            Outcome::Failed(reason) => {
                stats.error(reason);
                p.on_error(reply.id)
            }
        };
        if mine {
            p.settle(stats);
        }
    }

    fn on_event(&mut self, event: Event) {
        let stats = &self.env.stats;
        match event {
            Event::Frame(ServerFrame::Message(m)) => self.on_message(&m),
            Event::Frame(ServerFrame::Ack(ack))
                if self.typist.as_mut().is_some_and(|t| t.answered(ack.id)) =>
            {
                stats.mix.typing_acked.fetch_add(1, Relaxed);
            }
            Event::Frame(ServerFrame::Ack(ack)) => {
                let socket = self.publisher.as_mut().filter(|p| p.via() == Via::Socket);
                if let Some(p) = socket {
                    if p.on_ack(ack.id, ack.offset, stats, self.index) {
                        // Every Nth of its acked messages gets a lifecycle chain (not once
                        // publishing has stopped: the drain only waits for what is in flight).
                        let lifecycle = self.lifecycle.as_mut().filter(|_| !p.is_stopped());
                        if let (Some(l), Some(offset)) = (lifecycle, ack.offset) {
                            if l.is_due() {
                                let minter = self.env.dialer.minter();
                                let token = match &self.user {
                                    Some(account) => minter.token_for(account),
                                    None => minter.token(self.index),
                                };
                                match token {
                                    Ok(token) => {
                                        l.start(offset, token);
                                        p.hold(l.in_flight());
                                    }
                                    Err(_) => stats.error("lifecycle_token"),
                                }
                            }
                        }
                        p.settle(stats);
                    }
                }
            }
            Event::Frame(ServerFrame::Error(e))
                if e.id
                    .is_some_and(|id| self.typist.as_mut().is_some_and(|t| t.answered(id))) =>
            {
                stats.mix.typing_refused.fetch_add(1, Relaxed);
                stats.error(&format!("typing_{}", e.code.as_str()));
            }
            Event::Frame(ServerFrame::Error(e)) => {
                stats.error(e.code.as_str());
                let socket = self.publisher.as_mut().filter(|p| p.via() == Via::Socket);
                if let (Some(p), Some(id)) = (socket, e.id) {
                    if p.on_error(id) {
                        p.settle(stats);
                    }
                }
            }
            // A close (1001) follows; the reconnect after it waits as asked (the server jitters
            // the delay per client) and resumes with `since`.
            Event::Frame(ServerFrame::Reconnect { after_ms }) => {
                stats.error("reconnect_frame");
                self.retry_hint = Some(Duration::from_millis(after_ms));
            }
            // Never stored and without an offset: counted, never tracked as a message.
            Event::Frame(ServerFrame::Typing { channel, .. }) => {
                if self.subs.iter().any(|s| s.channel == channel) {
                    stats.mix.typing_received.fetch_add(1, Relaxed);
                } else {
                    stats.error("typing_unsubscribed");
                }
            }
            Event::Frame(
                ServerFrame::Join { .. } | ServerFrame::Leave { .. } | ServerFrame::Read { .. },
            ) => {}
            // Minted tokens outlive any run; a run longer than that is closed with 4002 and
            // counted as a lost connection.
            Event::Frame(ServerFrame::TokenExpiring { .. }) => stats.error("token_expiring"),
            Event::Closed(code) => {
                let reason = code.map_or("connection_lost".to_owned(), |c| format!("close_{c}"));
                self.lost_connection(&reason);
            }
            Event::Undecodable(_) => stats.error("undecodable"),
        }
    }

    fn on_message(&mut self, m: &MessageFrame) {
        let env = &self.env;
        match self.subs.iter_mut().find(|s| s.channel == m.channel) {
            Some(sub) => sub.on_message(m, &env.run_id, &env.stats, self.index),
            None => env.stats.error("message_unsubscribed"),
        }
        self.check_recovered();
    }

    async fn on_control(&mut self) {
        let control = self.control.borrow_and_update().clone();
        if let Some(p) = self.publisher.as_mut() {
            if let Some(from) = control.publish_from {
                p.start(from);
            }
            if control.publish_stopped {
                p.stop(self.env.drain);
                p.settle(&self.env.stats);
            }
        }
        if let Some(t) = self.typist.as_mut() {
            if let Some(from) = control.publish_from {
                t.start(from, self.index as f64 * 0.618_034);
            }
            if control.publish_stopped {
                t.stop();
            }
        }
        if let (true, false, Some(order)) = (self.drops, self.dropped, control.drop) {
            self.dropped = true;
            self.drop_now(order).await;
        }
        if self.finish.is_none() {
            self.finish = control.finish;
        }
    }

    /// Drops the socket without a close handshake, as a network failure would, and resumes.
    async fn drop_now(&mut self, order: DropOrder) {
        let stats = self.env.stats.clone();
        stats.dropped.fetch_add(1, Relaxed);
        if self.conn.take().is_some() {
            stats.open.fetch_sub(1, Relaxed);
        }
        if let Some(p) = self.publisher.as_mut() {
            p.connection_lost(&stats);
        }
        if let Some(t) = self.typist.as_mut() {
            t.connection_lost();
        }
        self.recovering = Some(order);
        self.reconnect().await;
    }

    fn lost_connection(&mut self, reason: &str) {
        let stats = &self.env.stats;
        stats.error(reason);
        if self.conn.take().is_some() {
            stats.open.fetch_sub(1, Relaxed);
        }
        if let Some(p) = self.publisher.as_mut() {
            p.connection_lost(stats);
        }
        if let Some(t) = self.typist.as_mut() {
            t.connection_lost();
        }
        self.schedule_retry();
    }

    fn schedule_retry(&mut self) {
        // Jittered per connection so that clients cut off together do not return together.
        let jitter = 0.5 + (self.index as f64 * 0.618_034).fract();
        let delay = match self.retry_hint.take() {
            Some(hint) => hint,
            None => self.backoff.mul_f64(jitter),
        };
        self.retry_at = Some(Instant::now() + delay);
        self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
    }

    async fn reconnect(&mut self) {
        self.retry_at = None;
        match self.open().await {
            Ok(_) => {
                self.backoff = RECONNECT_MIN;
                self.check_recovered();
            }
            Err(e) => {
                let stats = &self.env.stats;
                stats.error(&format!("reconnect_{}", e.reason));
                if e.local_limit {
                    stats.local_limit_hit(&e.detail);
                }
                self.schedule_retry();
            }
        }
    }

    /// Recovered: reconnected, resubscribed, and holding every offset up to the drop target.
    fn check_recovered(&mut self) {
        let Some(order) = self.recovering else {
            return;
        };
        if self.conn.is_none() || !self.subs.iter().all(Subscription::is_acked) {
            return;
        }
        match order.target {
            Some(target) if self.subs.iter().all(|s| s.contiguous() >= target) => {
                let micros = order.at.elapsed().as_micros() as u64;
                self.env.stats.recovered(self.index, micros);
                self.recovering = None;
            }
            Some(_) => {}
            // No target known: recovery cannot be judged, so it is not counted either way.
            None => self.recovering = None,
        }
    }

    /// Finished: caught up with every final offset (and nothing left to publish or recover),
    /// or out of time.
    fn should_stop(&self) -> bool {
        let Some(finish) = &self.finish else {
            return false;
        };
        if Instant::now() >= finish.deadline {
            return true;
        }
        let published = self.publisher.as_ref().is_none_or(Publisher::is_done);
        let caught_up = self
            .subs
            .iter()
            .all(|s| !s.has_started() || s.contiguous() >= s.final_offset(&finish.finals));
        published && caught_up && self.recovering.is_none()
    }

    async fn finish_up(&mut self) {
        let stats = self.env.stats.clone();
        if let Some(p) = self.publisher.as_mut() {
            p.abandon(&stats);
        }
        if self.recovering.is_some() {
            stats.unrecovered.fetch_add(1, Relaxed);
        }
        let finals = self.finish.as_ref().map(|f| f.finals.clone());
        for sub in &mut self.subs {
            sub.check_late_changes(&stats);
        }
        for sub in &self.subs {
            let final_offset = finals.as_ref().map_or(0, |f| sub.final_offset(f));
            if let Some(counts) = sub.finish(final_offset) {
                stats.lane(sub.lane()).add_counts(&counts);
                if sub.contiguous() < final_offset {
                    stats.behind_at_end.fetch_add(1, Relaxed);
                }
            }
        }
        match self.conn.take() {
            Some(conn) => {
                stats.open.fetch_sub(1, Relaxed);
                conn.close().await;
            }
            None if self.opened => {
                stats.disconnected_at_end.fetch_add(1, Relaxed);
            }
            None => {}
        }
    }
}

/// The next lifecycle answer or chain end; never, without lifecycle actions.
async fn next_change(lifecycle: Option<&mut Lifecycle>) -> lifecycle::Event {
    match lifecycle {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

/// The next answer to this connection's posts; never, when it does not post.
async fn next_reply(poster: Option<&mut Poster>) -> Reply {
    match poster {
        Some(poster) => poster.next().await,
        None => std::future::pending().await,
    }
}
