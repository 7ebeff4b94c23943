//! Properties of the decoders and the payload code over generated input (a bounded run on every
//! test; `protocol/fuzz` holds the same targets for long coverage-guided runs): no input makes a
//! decoder panic, the depth check agrees with the real depth, and the MessagePack conversion of
//! any JSON value is what rmp-serde writes for it (generated objects have sorted keys, as a
//! `serde_json::Value` has, so the bytes compare).

use proptest::prelude::*;
use serde_json::Value;
use switchboard_protocol::data::{check_depth, json_to_msgpack};
use switchboard_protocol::Encoding;

/// Any JSON value, up to 8 levels deep and a few dozen nodes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for encoding in [Encoding::Json, Encoding::MsgPack] {
            let _ = encoding.decode_client(&bytes);
            let _ = encoding.decode_server(&bytes);
        }
    }

    /// The reference is what the server did before: parse the stored text into a value, then
    /// rmp-serde (floats compare as serde_json parses them, which need not be bit-exact with the
    /// value that printed them).
    #[test]
    fn messagepack_conversion_matches_rmp_serde(v in json_value()) {
        for text in [v.to_string(), serde_json::to_string_pretty(&v).unwrap()] {
            let parsed: Value = serde_json::from_str(&text).unwrap();
            let mut out = Vec::new();
            json_to_msgpack(&text, &mut out).unwrap();
            prop_assert_eq!(out, rmp_serde::to_vec(&parsed).unwrap());
        }
    }

    #[test]
    fn depth_check_agrees_with_the_value(v in json_value(), limit in 0usize..10) {
        let text = v.to_string();
        prop_assert_eq!(check_depth(&text, limit).is_ok(), depth(&v) <= limit);
    }

    #[test]
    fn conversion_of_arbitrary_text_never_panics(text in ".{0,256}") {
        let mut out = Vec::new();
        let _ = json_to_msgpack(&text, &mut out);
        let _ = check_depth(&text, 4);
    }
}
