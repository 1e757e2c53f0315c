//! Bytes a Redis client (or anything else) might send to a node's client
//! port, through the same parsing a connection does: it never panics, and
//! the requests taken are the same however the bytes are split across
//! reads (the first byte picks the split).

#![no_main]

use bytes::BytesMut;
use kontiki_cli::server::{take_requests, Next};
use libfuzzer_sys::fuzz_target;

fn feed(chunks: &[&[u8]]) -> Vec<String> {
    let mut received = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        received.extend_from_slice(chunk);
        let (taken, next) = take_requests(&mut received);
        requests.extend(taken.into_iter().map(|request| format!("{request:?}")));
        if next == Next::Close {
            requests.push("close".into());
            break;
        }
    }
    requests
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut) % (bytes.len() + 1);
    let whole = feed(&[bytes]);
    let split = feed(&[&bytes[..cut], &bytes[cut..]]);
    assert_eq!(whole, split, "a split across reads changed the requests");
});
