//! One handler per client request, each of the same shape (mini-redis's `cmd/`): parse the
//! channel, authorise, apply, reply with an `ack` or an `error` of the same `id`. The
//! connection loop ([`super::connection`]) reads a frame and calls one of them; it serves one
//! request at a time, so a connection's answers go out in the order its requests came (a
//! `since` replay holds the connection's next request until it is done; publishes are the
//! exception: their acks follow as each is stored, while reading goes on).

mod auth;
mod history;
mod presence;
mod publish;
mod read;
mod subscribe;
mod typing;
