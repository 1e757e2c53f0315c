//! `kontiki status`: asks nodes' client ports for `INFO raft` and prints
//! one JSON object per node.

use serde_json::{json, Map, Value};

use crate::client::{request, Reply};
use crate::settings::resolve;

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
    let text = match request(target, &["INFO", "raft"])? {
        Reply::Bulk(Some(text)) => text,
        other => return Err(format!("{target}: unexpected answer {other:?}")),
    };
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
