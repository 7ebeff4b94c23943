//! Any bytes a client can send, as a JSON text frame or a MessagePack binary frame: decoding
//! answers a frame or an error, never a panic, and an error's `id` is what the frame carried.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::Encoding;

fuzz_target!(|bytes: &[u8]| {
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        if let Ok(frame) = encoding.decode_client(bytes) {
            // What decodes re-encodes, and decodes to the same frame.
            let again = encoding.encode(&frame).expect("a decoded frame encodes");
            assert_eq!(encoding.decode_client(&again).ok(), Some(frame));
        }
    }
});
