//! RESP2, the Redis protocol: requests (arrays of bulk strings, or inline
//! commands typed by hand) and replies.
//!
//! The parser is incremental: it looks at what has arrived so far and
//! either takes one whole request from the front, asks for more bytes, or
//! names what is wrong. A malformed request or one larger than the limits
//! is answered with the error and closes its connection, as Redis does:
//! once the framing is lost, the bytes after the error cannot be trusted
//! to be the requests their sender meant (a bad length followed by a line
//! of its own would otherwise run that line as a command).

use std::ops::Range;

use bytes::{BufMut, BytesMut};

/// The most arguments one request may carry.
pub const MAX_ARGUMENTS: usize = 1024 * 1024;
/// The longest one request may be, in bytes (also the longest inline line).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// What the front of the buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request: where its arguments are (the command name first),
    /// and how many bytes it took.
    Request(Vec<Range<usize>>, usize),
    /// The request is not complete yet.
    Incomplete,
    /// A malformed request: reply with the message and close the
    /// connection. `skip` counts the bytes through the end of the
    /// offending line, for a caller that logs or inspects them.
    Malformed(&'static str, usize),
    /// The request is over the size limits: reply, then close.
    TooLarge,
}

/// Parses one request from the front of `buffer` (which the caller owns
/// and advances by the count returned).
pub fn parse(buffer: &[u8]) -> Parsed {
    match buffer.first() {
        None => Parsed::Incomplete,
        Some(b'*') => parse_array(buffer),
        Some(_) => parse_inline(buffer),
    }
}

/// The position just past the `\r\n` (or bare `\n`) ending the line that
/// starts at `from`, and the line without its ending.
fn line(buffer: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let end = from + buffer.get(from..)?.iter().position(|&byte| byte == b'\n')?;
    let text = &buffer[from..end];
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    Some((text, end + 1))
}

fn incomplete_or_too_large(buffer: &[u8]) -> Parsed {
    if buffer.len() > MAX_REQUEST_BYTES {
        Parsed::TooLarge
    } else {
        Parsed::Incomplete
    }
}

fn number(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn parse_array(buffer: &[u8]) -> Parsed {
    let Some((header, mut at)) = line(buffer, 0) else {
        return incomplete_or_too_large(buffer);
    };
    let count = match number(&header[1..]) {
        // Redis treats an empty or null array as nothing at all.
        Some(count) if count <= 0 => return Parsed::Request(Vec::new(), at),
        Some(count) if count as u64 > MAX_ARGUMENTS as u64 => return Parsed::TooLarge,
        Some(count) => count as usize,
        None => return Parsed::Malformed("Protocol error: invalid multibulk length", at),
    };
    let mut arguments = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let Some((header, data_start)) = line(buffer, at) else {
            return incomplete_or_too_large(buffer);
        };
        if header.first() != Some(&b'$') {
            return Parsed::Malformed("Protocol error: expected '$'", data_start);
        }
        let length = match number(&header[1..]) {
            Some(length) if length < 0 => {
                return Parsed::Malformed("Protocol error: invalid bulk length", data_start)
            }
            Some(length) if length as u64 > MAX_REQUEST_BYTES as u64 => return Parsed::TooLarge,
            Some(length) => length as usize,
            None => return Parsed::Malformed("Protocol error: invalid bulk length", data_start),
        };
        let data_end = data_start + length;
        if buffer.len() < data_end + 2 {
            return incomplete_or_too_large(buffer);
        }
        if &buffer[data_end..data_end + 2] != b"\r\n" {
            return Parsed::Malformed("Protocol error: bulk string not ended by CRLF", data_end);
        }
        arguments.push(data_start..data_end);
        at = data_end + 2;
    }
    Parsed::Request(arguments, at)
}

fn parse_inline(buffer: &[u8]) -> Parsed {
    let Some((text, next)) = line(buffer, 0) else {
        return incomplete_or_too_large(buffer);
    };
    // Words separated by blanks; quoting is not supported.
    let mut arguments = Vec::new();
    let mut position = 0;
    for word in text.split(|byte| byte.is_ascii_whitespace()) {
        if !word.is_empty() {
            arguments.push(position..position + word.len());
        }
        position += word.len() + 1;
    }
    Parsed::Request(arguments, next)
}

/// Replies, written into one buffer per batch of requests, in the
/// protocol the connection chose: RESP2 until a `HELLO 3` asks for RESP3,
/// which differs here in how a missing value and a map are written.
pub struct Replies {
    out: BytesMut,
    resp3: bool,
}

impl Default for Replies {
    fn default() -> Self {
        Replies::new()
    }
}

impl Replies {
    /// An empty batch.
    pub fn new() -> Replies {
        Replies {
            out: BytesMut::with_capacity(4096),
            resp3: false,
        }
    }

    /// Writes from now on in protocol `version` (2 or 3).
    pub fn set_protocol(&mut self, version: u8) {
        self.resp3 = version >= 3;
    }

    /// The protocol replies are written in: 2 or 3.
    pub fn protocol(&self) -> u8 {
        if self.resp3 {
            3
        } else {
            2
        }
    }

    /// `+text`.
    pub fn simple(&mut self, text: &str) {
        self.line(b'+', text.as_bytes());
    }

    /// `-text`; the text must be one line (it starts with the error kind,
    /// such as `ERR` or `MOVED`).
    pub fn error(&mut self, text: &str) {
        let one_line: String = text
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        self.line(b'-', one_line.as_bytes());
    }

    /// `:n`.
    pub fn integer(&mut self, value: i64) {
        self.line(b':', value.to_string().as_bytes());
    }

    /// `$len` and the bytes.
    pub fn bulk(&mut self, data: &[u8]) {
        self.line(b'$', data.len().to_string().as_bytes());
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\r\n");
    }

    /// No value: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        let null: &[u8] = if self.resp3 { b"_\r\n" } else { b"$-1\r\n" };
        self.out.extend_from_slice(null);
    }

    /// A float given as its text: `,text` in RESP3, a bulk string in RESP2.
    pub fn double(&mut self, text: &[u8]) {
        if self.resp3 {
            self.line(b',', text);
        } else {
            self.bulk(text);
        }
    }

    /// No array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        let null: &[u8] = if self.resp3 { b"_\r\n" } else { b"*-1\r\n" };
        self.out.extend_from_slice(null);
    }

    /// A map of the next `pairs` key and value replies: `%pairs` in RESP3,
    /// an array of twice as many in RESP2.
    pub fn map(&mut self, pairs: usize) {
        if self.resp3 {
            self.line(b'%', pairs.to_string().as_bytes());
        } else {
            self.array(pairs * 2);
        }
    }

    /// `*n`: an array of the next `length` replies.
    pub fn array(&mut self, length: usize) {
        self.line(b'*', length.to_string().as_bytes());
    }

    fn line(&mut self, kind: u8, text: &[u8]) {
        self.out.put_u8(kind);
        self.out.extend_from_slice(text);
        self.out.extend_from_slice(b"\r\n");
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Takes what is written, leaving the batch empty.
    pub fn take(&mut self) -> BytesMut {
        self.out.split()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request's arguments as text, if it is a request.
    fn words(wire: &[u8]) -> Option<(Vec<&str>, usize)> {
        let Parsed::Request(ranges, used) = parse(wire) else {
            return None;
        };
        let words = ranges
            .into_iter()
            .map(|range| std::str::from_utf8(&wire[range]).unwrap())
            .collect();
        Some((words, used))
    }

    #[test]
    fn arrays_of_bulk_strings() {
        let wire = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n";
        assert_eq!(words(wire), Some((vec!["GET", "k"], 20)));
        assert_eq!(parse(&wire[20..]), Parsed::Incomplete);
        // Binary data, CRLF inside a value included.
        let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n";
        assert_eq!(words(wire), Some((vec!["SET", "k", "a\r\nb"], wire.len())));
    }

    #[test]
    fn every_prefix_of_a_request_is_incomplete() {
        let wire = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        for end in 0..wire.len() {
            assert_eq!(parse(&wire[..end]), Parsed::Incomplete);
        }
        assert_eq!(words(wire), Some((vec!["SET", "key", "value"], wire.len())));
    }

    #[test]
    fn inline_commands() {
        let wire = b"SET  k v\r\nPING\n";
        assert_eq!(words(wire), Some((vec!["SET", "k", "v"], 10)));
        assert_eq!(words(&wire[10..]), Some((vec!["PING"], 5)));
        assert_eq!(words(b"\r\n"), Some((vec![], 2)));
    }

    #[test]
    fn malformed_requests_name_the_problem_and_the_line_to_skip() {
        for (wire, problem, skip) in [
            (
                &b"*x\r\nPING\r\n"[..],
                "Protocol error: invalid multibulk length",
                4,
            ),
            (b"*1\r\n:3\r\n", "Protocol error: expected '$'", 8),
            (
                b"*1\r\n$2\r\nabcd\r\n",
                "Protocol error: bulk string not ended by CRLF",
                10,
            ),
            (b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length", 9),
        ] {
            assert_eq!(parse(wire), Parsed::Malformed(problem, skip));
        }
    }

    #[test]
    fn oversized_requests_are_refused_before_they_arrive() {
        let huge = format!("*1\r\n${}\r\n", MAX_REQUEST_BYTES + 1);
        assert_eq!(parse(huge.as_bytes()), Parsed::TooLarge);
        let many = format!("*{}\r\n", MAX_ARGUMENTS + 1);
        assert_eq!(parse(many.as_bytes()), Parsed::TooLarge);
        let endless_line = vec![b'a'; MAX_REQUEST_BYTES + 1];
        assert_eq!(parse(&endless_line), Parsed::TooLarge);
    }

    #[test]
    fn replies() {
        let mut replies = Replies::new();
        replies.simple("OK");
        replies.error("ERR two\nlines");
        replies.integer(-3);
        replies.bulk(b"v");
        replies.null();
        replies.array(0);
        assert_eq!(
            &replies.take()[..],
            b"+OK\r\n-ERR two lines\r\n:-3\r\n$1\r\nv\r\n$-1\r\n*0\r\n"
        );
        assert!(replies.is_empty());
    }

    #[test]
    fn resp3_differs_in_nulls_and_maps() {
        let mut replies = Replies::new();
        assert_eq!(replies.protocol(), 2);
        replies.map(1);
        replies.null();
        replies.set_protocol(3);
        assert_eq!(replies.protocol(), 3);
        replies.map(1);
        replies.null();
        replies.set_protocol(2);
        replies.null();
        assert_eq!(&replies.take()[..], b"*2\r\n$-1\r\n%1\r\n_\r\n$-1\r\n");
    }
}
