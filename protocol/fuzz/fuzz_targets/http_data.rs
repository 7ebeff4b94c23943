//! HTTP bodies that carry `data` (`POST /api/v1/channels/{channel}/messages`, posts, replies:
//! `{"data": <any JSON>}`), through everything the server does with them: parse as the server
//! does (raw), check the depth bound, then encode the stored message for both encodings. Nothing
//! panics; whatever parses converts to MessagePack, which decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use switchboard_protocol::codec::Stored;
use switchboard_protocol::data::{check_depth, json_to_msgpack, MAX_DEPTH};
use switchboard_protocol::Encoding;

#[derive(serde::Deserialize)]
struct Body {
    data: Box<RawValue>,
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Body>(bytes) else {
        return;
    };
    let text = body.data.get();
    let shallow = check_depth(text, MAX_DEPTH).is_ok();
    let mut msgpack = Vec::new();
    json_to_msgpack(text, &mut msgpack).expect("any JSON converts");
    if shallow {
        // Valid text that no value holds (a lone surrogate, 1e400) converts but does not parse.
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            let back: serde_json::Value = rmp_serde::from_slice(&msgpack).expect("decodes");
            assert_eq!(back, value);
        }
    }
    let stored = Stored {
        channel: "room:fuzz",
        offset: 1,
        id: "m",
        from: "u",
        ts: "2026-12-01T00:00:00Z",
        data: &body.data,
    };
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        encoding.encode_message(&stored).expect("a stored message encodes");
        encoding
            .encode_history(1, &[stored, stored])
            .expect("a history page encodes");
    }
});
