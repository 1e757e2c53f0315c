//! Bytes as the key-value store of `kontiki node` might meet them in a
//! log entry or a snapshot: decoding and applying never panic, whatever
//! the bytes; an entry that decodes encodes back to one that decodes the
//! same; a snapshot that reads writes back to one that reads the same.
//! The first byte picks entry or snapshot.

#![no_main]

use bytes::Bytes;
use kontiki_cli::data::{Data, Value};
use kontiki_cli::entry::Entry;
use kontiki_cli::snapshot_format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    if pick % 2 == 0 {
        let entry = Bytes::copy_from_slice(bytes);
        let Some(decoded) = Entry::decode(&entry) else {
            return;
        };
        let again = Entry::encode(&decoded.write, decoded.stamp.unwrap_or(0));
        let redecoded = Entry::decode(&again).expect("an encoded entry decodes");
        assert_eq!(redecoded.write, decoded.write);
        // Applied to a store holding a string and a hash with expiries.
        let mut store = Data::default();
        store.begin(1, Some(1_000));
        store.put(
            Bytes::from_static(b"k"),
            Value::String(Bytes::from_static(b"7")),
            false,
        );
        store.set_expiry(&Bytes::from_static(b"k"), Some(1_500));
        store.begin(2, decoded.stamp);
        let _ = decoded.write.apply(&mut store);
    } else {
        let Ok(restored) = snapshot_format::read(&mut &bytes[..], 1) else {
            return;
        };
        let mut written = Vec::new();
        snapshot_format::write(&restored, &mut written).expect("writing to memory");
        let again = snapshot_format::read(&mut &written[..], 1).expect("a written snapshot reads");
        assert_eq!(again, restored);
    }
});
