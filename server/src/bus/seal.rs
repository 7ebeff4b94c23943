//! Authenticated bus envelopes (`SWITCHBOARD_BUS_MAC`, on by default): every envelope a node
//! publishes to Redis carries an HMAC-SHA256 tag keyed by the cluster's signing secret, and
//! envelopes without a valid tag are dropped. A process that can `PUBLISH` on the Redis but does
//! not hold the secret cannot inject messages, revocations, room rules or presence. (A genuine
//! envelope replayed is harmless for messages, which the sequencer de-duplicates by offset; a
//! replayed room-rules event is corrected by the 5 s rules poll.)

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Bytes of the tag appended to each envelope: 128 bits, as much as forgery resistance needs.
const TAG: usize = 16;

pub struct Seal {
    key: Option<[u8; 32]>,
}

impl Seal {
    /// A seal keyed from `secret` (a key of its own, derived so it is never the token key), or
    /// none at all when `enabled` is false.
    pub fn new(secret: &[u8], enabled: bool) -> Seal {
        let key = enabled.then(|| {
            let mut hasher = Sha256::new();
            hasher.update(b"switchboard bus envelope mac v1\0");
            hasher.update(secret);
            hasher.finalize().into()
        });
        Seal { key }
    }

    fn mac(key: &[u8; 32], body: &[u8]) -> Hmac<Sha256> {
        // An HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(body);
        mac
    }

    /// `body` with its tag appended.
    pub fn seal(&self, mut body: Vec<u8>) -> Vec<u8> {
        if let Some(key) = &self.key {
            let tag = Self::mac(key, &body).finalize().into_bytes();
            body.extend_from_slice(&tag[..TAG]);
        }
        body
    }

    /// The body of a sealed envelope whose tag is valid (compared in constant time).
    pub fn open<'a>(&self, sealed: &'a [u8]) -> Option<&'a [u8]> {
        let Some(key) = &self.key else {
            return Some(sealed);
        };
        let split = sealed.len().checked_sub(TAG)?;
        let (body, tag) = sealed.split_at(split);
        Self::mac(key, body).verify_truncated_left(tag).ok()?;
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_envelopes_sealed_with_the_secret_open() {
        let seal = Seal::new(b"a-secret-a-secret-a-secret-a-secret!", true);
        let sealed = seal.seal(b"hello".to_vec());
        assert_eq!(seal.open(&sealed), Some(&b"hello"[..]));
        let mut forged = sealed.clone();
        forged[0] ^= 1;
        assert_eq!(seal.open(&forged), None, "a changed body");
        let other = Seal::new(b"another-secret-another-secret-another", true);
        assert_eq!(other.open(&sealed), None, "another key");
        assert_eq!(seal.open(b"hello"), None, "unsealed");
        assert_eq!(seal.open(b""), None);
        let off = Seal::new(b"x", false);
        assert_eq!(off.open(b"hello"), Some(&b"hello"[..]));
        assert_eq!(off.seal(b"hello".to_vec()), b"hello");
    }
}
