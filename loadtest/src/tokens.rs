//! Access tokens minted locally from the server's signing secret.
//!
//! This is a load-test-only path: real clients log in over HTTP. The server accepts any HS256
//! token signed with its secret whose session is not revoked, without a database lookup, so the
//! load tester can authenticate 100k connections without creating 100k users or paying 100k
//! password hashes (which the login throttle would refuse anyway). Never ship this to clients:
//! whoever holds the secret can impersonate anyone.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use switchboard_protocol::AccessClaims;

/// Access tokens live an hour: longer than any bounded run, so no refresh is needed mid-run.
const TOKEN_TTL_SECS: u64 = 3600;

/// A registered account a connection acts as instead of its minted `lt-<n>-<run id>` user (the
/// feed scenario's author: only registered accounts can be followed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub username: String,
}

/// The minted user of connection `n` of run `run_id`: `lt-<n>-<run id>`.
pub fn user_id(n: u64, run_id: &str) -> String {
    format!("lt-{n}-{run_id}")
}

pub struct Minter {
    key: EncodingKey,
    run_id: String,
}

impl Minter {
    pub fn new(secret: &str, run_id: &str) -> Minter {
        Minter {
            key: EncodingKey::from_secret(secret.as_bytes()),
            run_id: run_id.to_owned(),
        }
    }

    /// The user connection `n` of this run acts as: `lt-<n>-<run id>`.
    pub fn user(&self, n: u64) -> String {
        user_id(n, &self.run_id)
    }

    /// A fresh token for connection `n` (a new random session id each time).
    pub fn token(&self, n: u64) -> anyhow::Result<String> {
        let user = self.user(n);
        self.mint(&user, &user)
    }

    /// A fresh token for a registered account (its real id and username).
    pub fn token_for(&self, account: &Account) -> anyhow::Result<String> {
        self.mint(&account.id, &account.username)
    }

    fn mint(&self, user_id: &str, username: &str) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            name: username.to_owned(),
            sid: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + TOKEN_TTL_SECS,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.key,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn claims(token: &str) -> serde_json::Value {
        jsonwebtoken::decode::<serde_json::Value>(
            token,
            &DecodingKey::from_secret(b"s3cret-s3cret-s3cret-s3cret-s3cret"),
            &Validation::new(Algorithm::HS256),
        )
        .unwrap()
        .claims
    }

    #[test]
    fn tokens_carry_the_server_claims() {
        let minter = Minter::new("s3cret-s3cret-s3cret-s3cret-s3cret", "r1");
        let decoded = claims(&minter.token(7).unwrap());
        assert_eq!(decoded["sub"], "lt-7-r1");
        assert_eq!(decoded["name"], "lt-7-r1");
        assert_eq!(decoded["sid"].as_str().unwrap().len(), 36);
        let (iat, exp) = (
            decoded["iat"].as_u64().unwrap(),
            decoded["exp"].as_u64().unwrap(),
        );
        assert_eq!(exp - iat, TOKEN_TTL_SECS);

        let author = Account {
            id: "0193-author".into(),
            username: "lt-author-r1".into(),
        };
        let decoded = claims(&minter.token_for(&author).unwrap());
        assert_eq!(decoded["sub"], "0193-author");
        assert_eq!(decoded["name"], "lt-author-r1");
    }
}
