//! Properties of the client port's request parsing, over arbitrary bytes:
//! it never panics, always makes progress, gives the same requests however
//! the bytes are split across reads, and reads back any well-formed
//! request exactly.

use bytes::BytesMut;
use kontiki_cli::commands::Command;
use kontiki_cli::resp::{self, Parsed};
use kontiki_cli::server::{take_requests, Next};
use proptest::prelude::*;

/// Feeds `chunks` to one connection's buffer as reads would arrive; every
/// request taken, and whether the connection was told to close.
fn feed(chunks: &[&[u8]]) -> (Vec<Result<Command, String>>, bool) {
    let mut received = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        received.extend_from_slice(chunk);
        let (taken, next) = take_requests(&mut received);
        requests.extend(taken);
        if next == Next::Close {
            return (requests, true);
        }
    }
    (requests, false)
}

fn encode(arguments: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = format!("*{}\r\n", arguments.len()).into_bytes();
    for argument in arguments {
        wire.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
        wire.extend_from_slice(argument);
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

/// Bytes that look like RESP often enough to reach deep into the parser.
fn resp_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"*".to_vec()),
        Just(b"$".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"SET".to_vec()),
        Just(b"GET".to_vec()),
        Just(b" ".to_vec()),
        (0u8..10).prop_map(|digit| vec![b'0' + digit]),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_split_of_the_bytes_gives_the_same_requests(bytes in resp_like(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(bytes.len() + 1);
        let whole = feed(&[&bytes]);
        let split = feed(&[&bytes[..cut], &bytes[cut..]]);
        let byte_by_byte: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(&whole, &feed(&byte_by_byte));
    }

    #[test]
    fn the_parser_always_consumes_what_it_reports(bytes in resp_like()) {
        match resp::parse(&bytes) {
            Parsed::Request(ranges, used) => {
                prop_assert!(used > 0 && used <= bytes.len());
                for range in ranges {
                    prop_assert!(range.end <= used);
                }
            }
            Parsed::Malformed(_, skip) => prop_assert!(skip > 0 && skip <= bytes.len()),
            Parsed::Incomplete | Parsed::TooLarge => {}
        }
    }

    #[test]
    fn well_formed_requests_read_back_exactly(
        arguments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6)
    ) {
        let wire = encode(&arguments);
        let Parsed::Request(ranges, used) = resp::parse(&wire) else {
            return Err(TestCaseError::fail("a well-formed request did not parse"));
        };
        prop_assert_eq!(used, wire.len());
        let read: Vec<Vec<u8>> = ranges.into_iter().map(|range| wire[range].to_vec()).collect();
        prop_assert_eq!(read, arguments);
    }
}
