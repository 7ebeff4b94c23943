//! Access tokens (JWT, HS256 only) and refresh tokens (random, stored hashed).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sha2::{Digest, Sha256};
use switchboard_protocol::AccessClaims;

/// Seconds a token is still accepted past its `exp`, for clocks that disagree between nodes.
pub(crate) const LEEWAY_SECS: u64 = 5;

pub(crate) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    pub(crate) fn new(secret: &[u8]) -> Keys {
        // Only HS256 is accepted: `Validation::new` pins the algorithm list, so a token claiming
        // `none`, RS256 or anything else is refused before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub(crate) fn sign(
        &self,
        user_id: &str,
        username: &str,
        session_id: &str,
        ttl_secs: u64,
    ) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            name: username.to_owned(),
            sid: session_id.to_owned(),
            iat: now,
            exp: now + ttl_secs,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub(crate) fn verify(&self, token: &str) -> Result<AccessClaims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
    }
}

/// A new refresh token `<session id>.<256 random bits>` and the hash to store for it. The session
/// id prefix lets a refresh find its session without scanning; only the hash is stored, and
/// SHA-256 suffices because the token is high-entropy (no dictionary to attack).
pub(super) fn new_refresh_token(session_id: &str) -> (String, String) {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let token = format!("{session_id}.{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = hash_refresh(&token);
    (token, hash)
}

pub(super) fn hash_refresh(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn refresh_session_id(token: &str) -> Option<&str> {
    let (sid, secret) = token.split_once('.')?;
    (!sid.is_empty() && !secret.is_empty() && sid.len() <= 64).then_some(sid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_refuses_other_algorithms() {
        let keys = Keys::new(b"secret-one");
        let token = keys.sign("u1", "alice", "s1", 60).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "s1"));

        // Same claims signed with HS512 and the same secret: refused.
        let now = jsonwebtoken::get_current_timestamp();
        let claims = AccessClaims {
            sub: "u1".into(),
            name: "a".into(),
            sid: "s1".into(),
            iat: now,
            exp: now + 60,
        };
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(b"secret-one"),
        )
        .unwrap();
        assert!(keys.verify(&hs512).is_err());
        // `alg: none` (unsigned): refused.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert!(keys.verify(&format!("{header}.{body}.")).is_err());
        // Another secret: refused.
        assert!(Keys::new(b"secret-two").verify(&token).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = Keys::new(b"k");
        let now = jsonwebtoken::get_current_timestamp();
        let claims = AccessClaims {
            sub: "u".into(),
            name: "a".into(),
            sid: "s".into(),
            iat: now - 100,
            exp: now - 60,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn refresh_tokens_carry_their_session_and_hash_stably() {
        let (token, hash) = new_refresh_token("sess");
        assert_eq!(refresh_session_id(&token), Some("sess"));
        assert_eq!(hash_refresh(&token), hash);
        assert_ne!(new_refresh_token("sess").0, token);
        assert_eq!(refresh_session_id("garbage"), None);
    }
}
