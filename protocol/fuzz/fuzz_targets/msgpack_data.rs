//! A MessagePack `publish` frame's `data`, the way the server takes it in: decoded (within the
//! decoder's depth bound), turned into JSON text, depth-checked, and converted back to
//! MessagePack for binary subscribers, which must decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::data::{check_depth, json_to_msgpack, MAX_DEPTH};
use switchboard_protocol::{ClientFrame, Encoding};

fuzz_target!(|bytes: &[u8]| {
    let Ok(ClientFrame::Publish { data, .. }) = Encoding::MsgPack.decode_client(bytes) else {
        return;
    };
    let Ok(text) = serde_json::to_string(&data) else {
        return;
    };
    let _ = check_depth(&text, MAX_DEPTH);
    let reparsed: serde_json::Value = serde_json::from_str(&text).expect("our JSON parses");
    let mut out = Vec::new();
    json_to_msgpack(&text, &mut out).expect("any JSON converts");
    let back: serde_json::Value = rmp_serde::from_slice(&out).expect("decodes");
    assert_eq!(back, reparsed);
});
