//! Rooms as a chat product, on top of the channel model: membership and roles, moderation. Each
//! change is stored first ([`crate::store::members`]) and then made visible the same way every
//! time ([`membership`]), so every client's view converges through the room's own offsets.

pub(crate) mod lifecycle;
pub(crate) mod membership;
pub(crate) mod reads;
pub(crate) mod typing;
