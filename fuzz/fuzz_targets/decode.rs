//! Any bytes given to the decoder: it must not panic, whatever it accepts
//! must be exactly what the encoder writes for the result (the format is
//! canonical, so one message has one encoding), and the zero-copy decoder
//! must agree with the copying one on every input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let decoded = kontiki::wire::decode(bytes);
    let shared = kontiki::wire::decode_shared(&bytes::Bytes::copy_from_slice(bytes));
    assert_eq!(decoded, shared, "the two decoders disagree");
    if let Ok(message) = decoded {
        let mut encoded = Vec::new();
        kontiki::wire::encode(&message, &mut encoded);
        assert_eq!(encoded, bytes, "decode accepted a non-canonical encoding");
        assert_eq!(kontiki::wire::encoded_len(&message), bytes.len());
    }
});
