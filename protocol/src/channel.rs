//! Channel names. A channel is `<kind>:<key>`; the kind decides who may subscribe and publish.

use std::fmt;
use std::str::FromStr;

/// Longest accepted room name (`room:<name>`), in bytes.
pub const MAX_ROOM_NAME: usize = 64;
/// Longest accepted user id inside `user:<id>` / `feed:<id>`. Ids are UUIDs (36 chars); the bound
/// only stops a client from making the server hash and store arbitrarily long keys.
pub const MAX_ID_LEN: usize = 64;

/// A parsed, validated channel name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `room:<name>`: a chat room (public or private).
    Room(String),
    /// `user:<user id>`: a user's private channel (notifications); only the server publishes.
    User(String),
    /// `feed:<user id>`: a user's home feed; only the server publishes.
    Feed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("channel must look like room:<name>, user:<id> or feed:<id>")]
    UnknownKind,
    #[error("room names are 1-64 characters of A-Z a-z 0-9 _ . -")]
    BadRoomName,
    #[error("ids are 1-64 characters of A-Z a-z 0-9 _ -")]
    BadId,
}

/// True for names made of 1..=max characters of `[A-Za-z0-9_.-]` (room names and usernames).
pub fn is_valid_name(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_valid_id(s: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// What a channel is for, which decides who may subscribe and publish: the part of its name
/// before the `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Room,
    User,
    Feed,
}

impl Kind {
    /// The name's prefix, with its `:`.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Room => "room:",
            Kind::User => "user:",
            Kind::Feed => "feed:",
        }
    }

    /// The name of this kind's channel for `key` (a room name, a user id). Not validated: for
    /// keys the server holds already (a user's id, a stored room name).
    pub fn name(self, key: &str) -> String {
        format!("{}{key}", self.prefix())
    }

    /// The key of `name` when it is a channel of this kind (`room:lobby` → `lobby`). Not
    /// validated: for names that were checked when they came in (stored, or parsed before).
    pub fn key(self, name: &str) -> Option<&str> {
        name.strip_prefix(self.prefix())
    }

    /// Whether `name` is a channel of this kind.
    pub fn of(self, name: &str) -> bool {
        name.starts_with(self.prefix())
    }
}

impl Channel {
    pub fn kind(&self) -> Kind {
        match self {
            Channel::Room(_) => Kind::Room,
            Channel::User(_) => Kind::User,
            Channel::Feed(_) => Kind::Feed,
        }
    }

    /// The room name when this is a `room:` channel.
    pub fn room(&self) -> Option<&str> {
        match self {
            Channel::Room(name) => Some(name),
            _ => None,
        }
    }
}

impl FromStr for Channel {
    type Err = ChannelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, key) = s.split_once(':').ok_or(ChannelError::UnknownKind)?;
        match kind {
            "room" if is_valid_name(key, 1, MAX_ROOM_NAME) => Ok(Channel::Room(key.to_owned())),
            "room" => Err(ChannelError::BadRoomName),
            "user" | "feed" if !is_valid_id(key) => Err(ChannelError::BadId),
            "user" => Ok(Channel::User(key.to_owned())),
            "feed" => Ok(Channel::Feed(key.to_owned())),
            _ => Err(ChannelError::UnknownKind),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match self {
            Channel::Room(key) | Channel::User(key) | Channel::Feed(key) => key,
        };
        write!(f, "{}{key}", self.kind().prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_kind() {
        for s in [
            "room:lobby",
            "room:a.b-c_d",
            "user:0193a1b2-aaaa",
            "feed:abc",
        ] {
            let c: Channel = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
            let key = c.kind().key(s).unwrap();
            assert_eq!(c.kind().name(key), s);
            assert!(c.kind().of(s));
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!("lobby".parse::<Channel>(), Err(ChannelError::UnknownKind));
        assert_eq!("chat:x".parse::<Channel>(), Err(ChannelError::UnknownKind));
        assert_eq!("room:".parse::<Channel>(), Err(ChannelError::BadRoomName));
        assert_eq!(
            "room:a b".parse::<Channel>(),
            Err(ChannelError::BadRoomName)
        );
        let long = format!("room:{}", "x".repeat(65));
        assert_eq!(long.parse::<Channel>(), Err(ChannelError::BadRoomName));
        assert!(format!("room:{}", "x".repeat(64))
            .parse::<Channel>()
            .is_ok());
        assert_eq!("user:a:b".parse::<Channel>(), Err(ChannelError::BadId));
        assert_eq!("feed:".parse::<Channel>(), Err(ChannelError::BadId));
    }
}
