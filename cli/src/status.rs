//! `kontiki status`: asks nodes' client ports for `INFO raft` and prints
//! a table with a row per node, or (`--json`) one JSON object per node.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::client::{request, Access, Reply};
use crate::settings::resolve;

/// The table's columns: a heading, and the JSON field it shows.
const COLUMNS: &[(&str, &str)] = &[
    ("ADDRESS", "address"),
    ("ID", "id"),
    ("ROLE", "role"),
    ("TERM", "term"),
    ("LEADER", "leader_id"),
    ("COMMIT", "commit_index"),
    ("APPLIED", "applied_index"),
    ("LAST LOG", "last_log_index"),
    ("SNAPSHOT", "snapshot_index"),
    ("MEMBERS", "members"),
    ("CONTACT MS AGO", "leader_contact_ms_ago"),
];

/// Every node's state, an error object for a node that did not answer;
/// and whether all answered.
fn collect(access: &Access, addresses: &[String]) -> (Vec<Value>, bool) {
    let mut all_answered = true;
    let objects = addresses
        .iter()
        .map(|address| match query(access, address) {
            Ok(fields) => Value::Object(fields),
            Err(error) => {
                all_answered = false;
                json!({ "address": address, "error": error })
            }
        })
        .collect();
    (objects, all_answered)
}

/// `kontiki status --watch`: redraws the table every `interval` (on a
/// terminal, in place), with each node's commits per second since the
/// last frame, `frames` times or until interrupted.
pub fn watch(access: &Access, addresses: &[String], interval: Duration, frames: Option<u64>) {
    let live = std::io::stdout().is_terminal();
    // The table's columns, with the commit rate after the commit index.
    let mut watch_columns = COLUMNS.to_vec();
    let after_commit = 1 + COLUMNS
        .iter()
        .position(|(_, field)| *field == "commit_index")
        .unwrap_or(COLUMNS.len() - 1);
    watch_columns.insert(after_commit, ("COMMITS/S", "commits_per_second"));
    let mut previous: Option<(Instant, Vec<Value>)> = None;
    let mut drawn = 0;
    while frames.is_none_or(|frames| drawn < frames) {
        let (mut objects, _) = collect(access, addresses);
        let now = Instant::now();
        if let Some((then, before)) = &previous {
            let seconds = now.duration_since(*then).as_secs_f64();
            for (object, before) in objects.iter_mut().zip(before) {
                let (Some(commit), Some(earlier)) = (
                    object["commit_index"].as_u64(),
                    before["commit_index"].as_u64(),
                ) else {
                    continue;
                };
                let rate = commit.saturating_sub(earlier) as f64 / seconds.max(1e-9);
                object["commits_per_second"] = json!(rate.round() as u64);
            }
        }
        let heading = format!(
            "kontiki status: {} node(s), every {}; Ctrl-C stops\n\n",
            addresses.len(),
            humantime::format_duration(interval)
        );
        let frame = heading + &table_of(&objects, &watch_columns);
        if live {
            // Home and clear, then the frame: redrawn in place.
            print!("\x1b[H\x1b[2J{frame}");
        } else {
            println!("{frame}");
        }
        let _ = std::io::stdout().flush();
        drawn += 1;
        previous = Some((now, objects));
        if frames.is_none_or(|frames| drawn < frames) {
            std::thread::sleep(interval.saturating_sub(now.elapsed()));
        }
    }
}

/// Prints every node's state, as a table or as one line of JSON each;
/// false if any node did not answer.
pub fn run(access: &Access, addresses: &[String], as_json: bool) -> bool {
    let (objects, all_answered) = collect(access, addresses);
    if as_json {
        objects.iter().for_each(|object| println!("{object}"));
    } else {
        print!("{}", table(&objects));
    }
    all_answered
}

/// The nodes' states as an aligned table; a node that did not answer
/// shows its error after its address.
pub fn table(objects: &[Value]) -> String {
    table_of(objects, COLUMNS)
}

/// `objects` as an aligned table of `columns`.
fn table_of(objects: &[Value], columns: &[(&str, &str)]) -> String {
    let cell = |object: &Value, field: &str| match &object[field] {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|object| match object["error"].as_str() {
            Some(error) => vec![cell(object, "address"), format!("error: {error}")],
            None => columns
                .iter()
                .map(|(_, field)| cell(object, field))
                .collect(),
        })
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|(heading, _)| heading.len()).collect();
    for row in rows.iter().filter(|row| row.len() == columns.len()) {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(columns.iter().map(|(heading, _)| *heading).collect());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The node's `# Raft` fields, typed: numbers as numbers, absent leaders
/// as null.
fn query(access: &Access, address: &str) -> Result<Map<String, Value>, String> {
    let target = resolve("address", address)?;
    let text = match request(access, target, &["INFO", "raft"])? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_its_columns_and_shows_errors() {
        let objects = [
            json!({"address": "127.0.0.1:6001", "id": 1, "role": "leader", "term": 12,
                   "leader_id": 1, "commit_index": 1500, "applied_index": 1500,
                   "last_log_index": 1500, "snapshot_index": 1000,
                   "members": "1=voter,2=voter", "leader_contact_ms_ago": 0}),
            json!({"address": "127.0.0.1:6002", "id": 2, "role": "follower", "term": 12,
                   "leader_id": null, "commit_index": 9, "applied_index": 9,
                   "last_log_index": 9, "snapshot_index": 0,
                   "members": "1=voter,2=voter", "leader_contact_ms_ago": 3}),
            json!({"address": "127.0.0.1:6003", "error": "cannot connect"}),
        ];
        let table = table(&objects);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].starts_with("ADDRESS         ID  ROLE      TERM"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("127.0.0.1:6001  1   leader    12"),
            "{table}"
        );
        assert!(lines[2].contains("follower  12    -"), "{table}");
        assert_eq!(lines[3], "127.0.0.1:6003  error: cannot connect");
    }
}
