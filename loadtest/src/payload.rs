//! The `data` every load-test publish carries: who sent it (`p`), its sequence number from that
//! publisher (`s`), when it was sent (`t`, Unix nanoseconds) and padding to the requested size.
//! Receivers read the stamp back to measure latency and to check per-publisher order.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// What a receiver reads back from a load-test message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Publisher index, unique within the run.
    pub publisher: u32,
    /// Sequence number from that publisher, from 1.
    pub seq: u64,
    /// Send time, Unix epoch nanoseconds. Wall-clock rather than monotonic so that senders and
    /// receivers in different worker processes on the same machine share one clock.
    pub sent_ns: u64,
}

pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Builds the `data` object, padded so its JSON form is about `size` bytes (never less than the
/// stamp itself needs).
pub fn make(run_id: &str, stamp: Stamp, size: usize) -> Value {
    let mut data = json!({
        "lt": run_id,
        "p": stamp.publisher,
        "s": stamp.seq,
        "t": stamp.sent_ns,
        "pad": "",
    });
    let bare = data.to_string().len();
    if size > bare {
        data["pad"] = Value::String("x".repeat(size - bare));
    }
    data
}

/// The stamp of a message published by this run; `None` for anything else.
pub fn read(run_id: &str, data: &Value) -> Option<Stamp> {
    if data.get("lt")?.as_str()? != run_id {
        return None;
    }
    Some(Stamp {
        publisher: u32::try_from(data.get("p")?.as_u64()?).ok()?,
        seq: data.get("s")?.as_u64()?,
        sent_ns: data.get("t")?.as_u64()?,
    })
}

/// The post's `data` inside a `feed:` message's `data`
/// (`{"kind":"post","post":{"id",...,"data":<post data>,...}}`); `None` for anything else.
pub fn post_data(item: &Value) -> Option<&Value> {
    if item.get("kind")?.as_str()? != "post" {
        return None;
    }
    item.get("post")?.get("data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_pad_to_size() {
        let stamp = Stamp {
            publisher: 3,
            seq: 42,
            sent_ns: unix_nanos(),
        };
        let data = make("ab12", stamp, 300);
        assert_eq!(data.to_string().len(), 300);
        assert_eq!(read("ab12", &data), Some(stamp));
        assert_eq!(read("other", &data), None);
        // Too small a size: no padding, still readable.
        let small = make("ab12", stamp, 10);
        assert_eq!(small["pad"], "");
        assert_eq!(read("ab12", &small), Some(stamp));
    }

    #[test]
    fn feed_items_unwrap_to_the_posted_data() {
        let stamp = Stamp {
            publisher: 0,
            seq: 7,
            sent_ns: 123,
        };
        let posted = make("ab12", stamp, 100);
        let item = json!({
            "kind": "post",
            "post": {
                "id": "0193-post",
                "author": {"id": "0193-author", "username": "lt-author-ab12"},
                "data": posted,
                "ts": 1_764_300_000_000u64,
                "reply_to": null,
            },
        });
        assert_eq!(post_data(&item), Some(&posted));
        assert_eq!(post_data(&item).and_then(|d| read("ab12", d)), Some(stamp));
        // The stamp is not at the top level of a feed item.
        assert_eq!(read("ab12", &item), None);
        assert_eq!(
            post_data(&json!({"kind": "follow", "post": {"data": 1}})),
            None
        );
        assert_eq!(post_data(&json!({"kind": "post"})), None);
        assert_eq!(post_data(&json!("text")), None);
    }
}
