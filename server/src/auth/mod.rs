//! Authentication: accounts, password hashing, access and refresh tokens, revocation and login
//! throttling. HTTP handlers (`http::auth`) and the WebSocket handshake both go through [`Auth`].

mod password;
mod revoked;
mod throttle;
mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use switchboard_protocol::ErrorCode;

use crate::config::Config;
use crate::store::{now_ms, Store, StoreError};
pub(crate) use revoked::Revocations;
pub(crate) use throttle::{RegisterThrottle, Throttle};
pub(crate) use tokens::{Keys, LEEWAY_SECS};

/// An authenticated caller, as proven by a valid access token of a live session.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub user_id: Arc<str>,
    pub username: Arc<str>,
    pub session_id: Arc<str>,
    /// When the access token stops being accepted (its `exp` plus the validation leeway), in
    /// Unix seconds: a connection authenticated by it is closed then unless it re-authenticates.
    pub valid_until: u64,
    /// Its lifetime as issued (`exp - iat`), which sets how early the connection is warned.
    pub lifetime_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("invalid username or password")]
    BadCredentials,
    #[error("too many login attempts, retry later")]
    Throttled,
    #[error("invalid or expired token")]
    BadToken,
    #[error("session revoked")]
    Revoked,
    /// A refresh token that was rotated away long ago came back: it was stolen, or its owner's
    /// copy was. The whole session was revoked (its sockets must close).
    #[error("session revoked")]
    RefreshReused { session: String },
    /// A refresh with the token that was rotated away moments ago (a retry, or a concurrent
    /// refresh that lost): refused, and the session stays.
    #[error("this refresh token was just used; use the tokens that refresh returned")]
    JustRotated,
    #[error("too many registrations from this address, retry later")]
    RegisterThrottled,
    /// Every password-hashing slot is busy and the queue for them is full.
    #[error("the server is busy checking passwords, retry in a moment")]
    Busy,
    #[error("username already taken")]
    UsernameTaken,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AuthError {
    /// The wire code of this error (see `switchboard_protocol::ErrorCode`).
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            AuthError::BadCredentials
            | AuthError::BadToken
            | AuthError::Revoked
            | AuthError::RefreshReused { .. }
            | AuthError::JustRotated => ErrorCode::Unauthorized,
            AuthError::Throttled | AuthError::RegisterThrottled => ErrorCode::RateLimited,
            AuthError::Busy => ErrorCode::Unavailable,
            AuthError::UsernameTaken => ErrorCode::Conflict,
            AuthError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Internal(e.into())
    }
}

/// What a successful login or refresh hands the client.
#[derive(Debug)]
pub(crate) struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub user_id: String,
    pub username: String,
}

pub(crate) struct Auth {
    store: Store,
    keys: Keys,
    pub revocations: Revocations,
    throttle: Throttle,
    registrations: RegisterThrottle,
    hashing: password::Hashing,
    access_ttl_secs: u64,
    refresh_ttl_secs: u64,
    refresh_grace_ms: i64,
}

impl Auth {
    pub(crate) fn new(store: Store, secret: &[u8], config: &Config) -> Auth {
        Auth {
            store,
            keys: Keys::new(secret),
            revocations: Revocations::default(),
            throttle: Throttle::new(config.login_per_user_per_min, config.login_per_ip_per_min),
            registrations: RegisterThrottle::new(
                config.register_per_ip_per_min,
                config.register_per_min,
            ),
            hashing: password::Hashing::new(config.hash_slots(), config.hash_queue),
            access_ttl_secs: config.access_ttl.as_secs(),
            refresh_ttl_secs: config.refresh_ttl.as_secs(),
            refresh_grace_ms: i64::try_from(config.refresh_grace.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Loads sessions revoked recently enough that their access tokens could still be valid.
    pub(crate) async fn load_revocations(&self) -> Result<(), AuthError> {
        let horizon = now_ms() - self.access_ttl_secs as i64 * 1000;
        for id in self.store.revoked_since(horizon).await? {
            self.revocations.revoke(&id, self.access_ttl_secs);
        }
        Ok(())
    }

    /// Registers `username` (already validated). The cheap checks come first, the hash last:
    /// the address's and the node's registration budgets, then whether the name is taken.
    pub(crate) async fn register(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<String, AuthError> {
        if self.registrations.check(ip) == throttle::Verdict::Throttled {
            crate::metrics::refused("register");
            return Err(AuthError::RegisterThrottled);
        }
        if self.store.user_by_username(username).await?.is_some() {
            return Err(AuthError::UsernameTaken);
        }
        let slot = self.hashing_slot(password::Purpose::Register).await?;
        let hash = password::hash(password.to_owned()).await?;
        drop(slot);
        let id = uuid::Uuid::now_v7().to_string();
        match self.store.create_user(&id, username, &hash).await {
            Ok(()) => Ok(id),
            Err(StoreError::Conflict) => Err(AuthError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn hashing_slot(
        &self,
        purpose: password::Purpose,
    ) -> Result<password::Slot<'_>, AuthError> {
        self.hashing.slot(purpose).await.map_err(|password::Busy| {
            crate::metrics::refused("hashing");
            AuthError::Busy
        })
    }

    /// Checks the throttles before any hashing, then the password; an unknown user costs the
    /// same hash as a wrong password so timing does not reveal which usernames exist.
    pub(crate) async fn login(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<Tokens, AuthError> {
        // A name that cannot exist is no limiter key and costs no hash: its answer is the
        // same 401 any wrong login gets (the name rules are public, so this tells nothing).
        let valid = switchboard_protocol::channel::is_valid_name(username, 3, 32);
        if self.throttle.check(valid.then_some(username), ip) == throttle::Verdict::Throttled {
            return Err(AuthError::Throttled);
        }
        if !valid {
            return Err(AuthError::BadCredentials);
        }
        let user = self.store.user_by_username(username).await?;
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let slot = self.hashing_slot(password::Purpose::Login).await?;
        let ok = password::verify(password.to_owned(), stored_hash).await?;
        drop(slot);
        let user = match (ok, user) {
            (true, Some(user)) => user,
            _ => return Err(AuthError::BadCredentials),
        };
        let session_id = uuid::Uuid::new_v4().to_string();
        let (refresh_token, refresh_hash) = tokens::new_refresh_token(&session_id);
        self.store
            .create_session(&session_id, &user.id, &refresh_hash, self.refresh_expiry())
            .await?;
        self.issue(user.id, user.username, session_id, refresh_token)
    }

    /// Rotates a refresh token. Presenting one of the session's earlier tokens is treated as
    /// theft and revokes the whole session (its sockets are closed by the caller), except the
    /// token rotated away within the last `SWITCHBOARD_REFRESH_GRACE_SECS`: that is a retry
    /// after a lost response or a concurrent refresh, refused without revoking. A token the
    /// session never issued (anyone can read a session id from an access token) is refused
    /// without revoking.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let session_id = tokens::refresh_session_id(refresh_token).ok_or(AuthError::BadToken)?;
        let session = self.store.session(session_id).await?;
        let Some(session) = session else {
            return Err(AuthError::BadToken);
        };
        if session.revoked || session.expires_at_ms < now_ms() {
            return Err(AuthError::Revoked);
        }
        let presented = tokens::hash_refresh(refresh_token);
        if presented != session.refresh_hash {
            let Some(age) = session.previous_hashes.iter().position(|h| *h == presented) else {
                return Err(AuthError::BadToken);
            };
            let just_rotated = age == 0 && now_ms() - session.rotated_at_ms < self.refresh_grace_ms;
            if just_rotated {
                return Err(AuthError::JustRotated);
            }
            self.revoke(&session.id).await?;
            return Err(AuthError::RefreshReused {
                session: session.id,
            });
        }
        let (new_token, new_hash) = tokens::new_refresh_token(&session.id);
        let rotated = self
            .store
            .rotate_refresh(&session, &new_hash, self.refresh_expiry())
            .await?;
        if !rotated {
            // A concurrent refresh with the same token won the rotation.
            return Err(AuthError::JustRotated);
        }
        let user = self.store.user_by_id(&session.user_id).await?;
        let user = user.ok_or(AuthError::BadToken)?;
        self.issue(user.id, user.username, session.id, new_token)
    }

    /// The session a refresh token belongs to, if the token is its current one (logout by
    /// refresh token).
    pub(crate) async fn session_of_refresh(
        &self,
        refresh_token: &str,
    ) -> Result<String, AuthError> {
        let session_id = tokens::refresh_session_id(refresh_token).ok_or(AuthError::BadToken)?;
        let session = self
            .store
            .session(session_id)
            .await?
            .ok_or(AuthError::BadToken)?;
        if session.refresh_hash != tokens::hash_refresh(refresh_token) {
            return Err(AuthError::BadToken);
        }
        Ok(session.id)
    }

    /// Revokes a session: its refresh token stops working at once, its access tokens on every
    /// check from now on.
    pub(crate) async fn revoke(&self, session_id: &str) -> Result<(), AuthError> {
        self.store.revoke_session(session_id).await?;
        self.revocations.revoke(session_id, self.access_ttl_secs);
        Ok(())
    }

    /// Records a revocation another node made (its tokens are refused here from now on);
    /// returns false if it was already known.
    pub(crate) fn mark_revoked(&self, session_id: &str) -> bool {
        if self.revocations.is_revoked(session_id) {
            return false;
        }
        self.revocations.revoke(session_id, self.access_ttl_secs);
        true
    }

    /// Sessions revoked in storage since `since_ms` that this node did not know about yet (the
    /// safety net for revocation events lost on the bus).
    pub(crate) async fn sync_revocations(&self, since_ms: i64) -> Result<Vec<String>, AuthError> {
        let revoked = self.store.revoked_since(since_ms).await?;
        Ok(revoked
            .into_iter()
            .filter(|id| self.mark_revoked(id))
            .collect())
    }

    /// Validates an access token (signature, HS256 only, expiry) and that its session is live.
    pub(crate) fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.keys.verify(token).map_err(|_| AuthError::BadToken)?;
        if self.revocations.is_revoked(&claims.sid) {
            return Err(AuthError::Revoked);
        }
        Ok(Principal {
            user_id: claims.sub.into(),
            username: claims.name.into(),
            session_id: claims.sid.into(),
            valid_until: claims.exp.saturating_add(tokens::LEEWAY_SECS),
            lifetime_secs: claims.exp.saturating_sub(claims.iat),
        })
    }

    fn issue(
        &self,
        user_id: String,
        username: String,
        session_id: String,
        refresh_token: String,
    ) -> Result<Tokens, AuthError> {
        let access_token =
            self.keys
                .sign(&user_id, &username, &session_id, self.access_ttl_secs)?;
        Ok(Tokens {
            access_token,
            refresh_token,
            expires_in: self.access_ttl_secs,
            user_id,
            username,
        })
    }

    fn refresh_expiry(&self) -> i64 {
        now_ms() + self.refresh_ttl_secs as i64 * 1000
    }
}
