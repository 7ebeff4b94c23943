//! The publish path shared by WebSocket `publish` frames and `POST /api/v1/channels/.../messages`:
//! authorise, stamp (id, sender, time), then hand to the group commit ([`crate::pipeline`]), which
//! assigns the offset, commits, and passes the message on to every subscriber. Returns once the message is stored.

pub(crate) mod budget;

use std::future::Future;
use std::time::Instant;

use serde_json::value::RawValue;
use switchboard_protocol::{Channel, ErrorCode};

use crate::auth::Principal;
use crate::authz::AccessError;
use crate::metrics;
use crate::payload::{self, PayloadError};
use crate::pipeline::commit::SubmitError;
use crate::store::lifecycle::Effect;
use crate::store::messages::{NewMessage, MAX_IDEMPOTENCY_KEY};
use crate::store::now_ms;
use crate::AppState;

/// Why a publish was not stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Store(#[from] SubmitError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error(transparent)]
    OverBudget(#[from] budget::OverBudget),
    /// A server `kind` in a user's publish, or a `reply_to` that names no chat message.
    #[error("{0}")]
    Lifecycle(String, ErrorCode),
}

impl From<crate::chat::lifecycle::LifecycleError> for Error {
    fn from(e: crate::chat::lifecycle::LifecycleError) -> Self {
        match e {
            crate::chat::lifecycle::LifecycleError::Publish(e) => e,
            e => Error::Lifecycle(e.to_string(), e.code()),
        }
    }
}

impl Error {
    /// The wire code of this error (see [`ErrorCode`]).
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Error::Access(e) => e.code(),
            Error::Store(SubmitError::Overloaded) | Error::OverBudget(_) => ErrorCode::RateLimited,
            Error::Store(SubmitError::Unavailable) => ErrorCode::Unavailable,
            Error::Store(SubmitError::KeyReused) => ErrorCode::Conflict,
            Error::Payload(e) => e.code(),
            Error::Lifecycle(_, code) => *code,
        }
    }
}

/// Authorises, counts against the user's budget and stores `data` on `channel` as published by
/// `who`; returns its offset.
pub(crate) async fn publish(
    state: &AppState,
    who: &Principal,
    channel: &Channel,
    data: Box<RawValue>,
    key: Option<IdempotencyKey>,
) -> Result<u64, Error> {
    state.authz.can_publish(who, channel).await?;
    let effect = crate::chat::lifecycle::inspect(state, channel, &data).await?;
    state
        .publish_budget
        .spend(budget::Payer::User(&who.user_id))?;
    submit_with(state, &who.user_id, channel, data, key, effect).await
}

/// A publisher's idempotency key: 1 to 64 visible ASCII characters (PROTOCOL.md). A retry with
/// the same key by the same publisher on the same channel is stored once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyKey(String);

/// Why a string is not an idempotency key.
#[derive(Debug, thiserror::Error)]
#[error("an idempotency key has 1 to 64 visible ASCII characters")]
pub(crate) struct BadKey;

impl IdempotencyKey {
    pub(crate) fn parse(key: &str) -> Result<IdempotencyKey, BadKey> {
        let visible = key.bytes().all(|b| b.is_ascii_graphic());
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !visible {
            return Err(BadKey);
        }
        Ok(IdempotencyKey(key.to_owned()))
    }
}

/// The sender of messages published with a server API key.
pub(crate) const SYSTEM: &str = "system";

/// Queues an already-authorised (and counted) publish by `from` to storage right away (so
/// publishes keep their arrival order) and returns a future that resolves to its offset once it
/// is stored.
pub(crate) fn submit(
    state: &AppState,
    from: &str,
    channel: &Channel,
    data: Box<RawValue>,
    key: Option<IdempotencyKey>,
) -> impl Future<Output = Result<u64, Error>> + Send + 'static {
    submit_with(state, from, channel, data, key, None)
}

/// [`submit`] of a message with an effect on an earlier one of its channel (an edit, a delete,
/// a reaction, a reply: [`crate::chat::lifecycle`]).
pub(crate) fn submit_with(
    state: &AppState,
    from: &str,
    channel: &Channel,
    data: Box<RawValue>,
    key: Option<IdempotencyKey>,
    effect: Option<Effect>,
) -> impl Future<Output = Result<u64, Error>> + Send + 'static {
    let queued = if let Err(e) = payload::check(&data, state.config.max_frame_bytes) {
        Err(Error::Payload(e))
    } else {
        let message = NewMessage {
            channel: channel.to_string().into(),
            id: uuid::Uuid::now_v7().to_string(),
            from: from.to_owned(),
            ts_ms: now_ms(),
            data,
            published_at: Some(Instant::now()),
            notification: None,
            idempotency_key: key.map(|k| k.0),
            effect,
        };
        state.commit_queue.submit(message).map_err(Error::from)
    };
    let started = Instant::now();
    async move {
        let offset = queued?.await?;
        metrics::PUBLISH_ACK.record(started.elapsed());
        Ok(offset)
    }
}
