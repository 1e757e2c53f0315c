//! Any bytes given to the decoder: it must not panic, and whatever it
//! accepts must be exactly what the encoder writes for the result (the
//! format is canonical, so one message has one encoding).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(message) = kontiki::wire::decode(bytes) {
        let mut encoded = Vec::new();
        kontiki::wire::encode(&message, &mut encoded);
        assert_eq!(encoded, bytes, "decode accepted a non-canonical encoding");
        assert_eq!(kontiki::wire::encoded_len(&message), bytes.len());
    }
});
