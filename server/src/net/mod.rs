//! The network edge: who a client is (its address, behind trusted proxies), how many sockets it
//! may hold, and the TCP listener that serves HTTP and WebSocket with timeouts and caps.

pub(crate) mod client;
pub(crate) mod io;
pub(crate) mod listener;
pub(crate) mod slots;

pub(crate) use client::{client_key, Cidr, ClientIpHeader};
pub(crate) use slots::{Gauge, Slot, Slots};
