//! The network edge: who a client is (its address, behind trusted proxies), how many sockets it
//! may hold, and the TCP listener that serves HTTP and WebSocket with timeouts and caps.

pub mod caps;
pub mod client;
pub mod io;
pub mod listener;
pub mod slots;

pub use client::{client_key, Cidr, ClientIpHeader};
pub use slots::{Gauge, GaugeSlot, Slot, Slots};
