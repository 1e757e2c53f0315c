//! `kontiki status`: asks nodes' client ports for `INFO raft` and prints
//! one JSON object per node.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::settings::resolve;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Prints one line of JSON per address; false if any node did not answer.
pub fn run(addresses: &[String]) -> bool {
    let mut all_answered = true;
    for address in addresses {
        let line = match query(address) {
            Ok(fields) => Value::Object(fields),
            Err(error) => {
                all_answered = false;
                json!({ "address": address, "error": error })
            }
        };
        println!("{line}");
    }
    all_answered
}

/// The node's `# Raft` fields, typed: numbers as numbers, absent leaders
/// as null.
fn query(address: &str) -> Result<Map<String, Value>, String> {
    let target = resolve("address", address)?;
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)
        .map_err(|error| format!("cannot connect to {target}: {error}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$4\r\nraft\r\n")
        .map_err(|error| format!("cannot send to {target}: {error}"))?;
    let text =
        read_bulk(&mut BufReader::new(stream)).map_err(|error| format!("{target}: {error}"))?;
    let mut fields = Map::new();
    fields.insert("address".into(), Value::String(address.to_string()));
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = match name {
            "node_id" => "id",
            other => other,
        };
        let value = if value.is_empty() {
            Value::Null
        } else if let Ok(number) = value.parse::<u64>() {
            Value::from(number)
        } else {
            Value::String(value.to_string())
        };
        fields.insert(name.to_string(), value);
    }
    if !fields.contains_key("role") {
        return Err(format!(
            "{target} answered INFO raft without a role: not a kontiki node?"
        ));
    }
    Ok(fields)
}

/// Reads one bulk-string reply.
fn read_bulk(reader: &mut impl BufRead) -> Result<String, String> {
    let mut header = String::new();
    reader
        .read_line(&mut header)
        .map_err(|error| format!("no answer: {error}"))?;
    let header = header.trim_end();
    let length: usize = match header.strip_prefix('$').map(str::parse) {
        Some(Ok(length)) => length,
        _ => return Err(format!("unexpected answer {header:?}")),
    };
    let mut body = vec![0; length + 2];
    reader
        .read_exact(&mut body)
        .map_err(|error| format!("answer cut short: {error}"))?;
    body.truncate(length);
    String::from_utf8(body).map_err(|_| "the answer is not text".to_string())
}
