//! What a snapshot of `kontiki node`'s key-value store costs the node's
//! task, at a million keys (16-byte keys and values): the store keeps a
//! persistent B-tree map (`imbl::OrdMap`), whose point-in-time view is an
//! O(1) clone, against the store before it, a `std` `HashMap` whose pairs'
//! handles were copied out (a reference count each) for the background
//! encoder. Also: applying a million SETs to each, and encoding the
//! snapshot in the background.
//!
//! `cargo bench -p kontiki-cli --bench kv_snapshot`; `KONTIKI_BENCH_RUNS`
//! (default 5) runs, `KONTIKI_BENCH_KEYS` (default 1,000,000) keys; the
//! last line gives the medians.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kontiki::LogIndex;
use kontiki_cli::kv::{encode_snapshot, KvStateMachine, Store, Write};
use kontiki_driver::StateMachine;

struct Figures {
    apply_new: Duration,
    apply_before: Duration,
    stall_new: Duration,
    stall_before: Duration,
    encode: Duration,
}

fn key(i: u64) -> Bytes {
    Bytes::from(format!("key:{i:012}"))
}

fn run(keys: u64) -> Figures {
    // Keys in scattered order (7919 is prime to the key counts used).
    let commands: Vec<Bytes> = (0..keys)
        .map(|i| {
            Write::Set {
                key: key(i * 7919 % keys),
                value: Bytes::from(format!("value:{i:010}")),
            }
            .encode()
        })
        .collect();

    let mut machine = KvStateMachine::new(Store::default());
    let started = Instant::now();
    for (i, command) in commands.iter().enumerate() {
        machine.apply(LogIndex(i as u64 + 1), command);
    }
    let apply_new = started.elapsed();

    // The store before: decode and insert into a std HashMap.
    let mut before: HashMap<Bytes, Bytes> = HashMap::new();
    let started = Instant::now();
    for command in &commands {
        if let Some(Write::Set { key, value }) = Write::decode(command) {
            before.insert(key, value);
        }
    }
    let apply_before = started.elapsed();

    // On the node's task: taking what the background encoder works from.
    let started = Instant::now();
    let write = machine.snapshot().expect("takes snapshots");
    let stall_new = started.elapsed();
    let started = Instant::now();
    let pairs: Vec<(Bytes, Bytes)> = before
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let stall_before = started.elapsed();
    drop(pairs);

    let started = Instant::now();
    let mut snapshot = Vec::new();
    write(&mut snapshot).expect("writing to memory cannot fail");
    let encode = started.elapsed();
    assert_eq!(snapshot, encode_snapshot(&machine.view()));
    Figures {
        apply_new,
        apply_before,
        stall_new,
        stall_before,
        encode,
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

fn main() {
    let runs: usize = std::env::var("KONTIKI_BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(5);
    let keys: u64 = std::env::var("KONTIKI_BENCH_KEYS")
        .ok()
        .and_then(|keys| keys.parse().ok())
        .unwrap_or(1_000_000);
    println!("A snapshot of the key-value store at {keys} keys\n");
    println!(
        "| run | node task stalled: persistent map | before: handles copied | apply {keys} SETs: persistent map | before: std HashMap | encode in background |"
    );
    println!("|---|---|---|---|---|---|");
    let mut all = Vec::new();
    for run_number in 1..=runs {
        let figures = run(keys);
        println!(
            "| {run_number} | {} | {} | {} | {} | {} |",
            ms(figures.stall_new),
            ms(figures.stall_before),
            ms(figures.apply_new),
            ms(figures.apply_before),
            ms(figures.encode)
        );
        all.push(figures);
    }
    let pick =
        |select: fn(&Figures) -> Duration| median(&mut all.iter().map(select).collect::<Vec<_>>());
    println!(
        "| median | {} | {} | {} | {} | {} |",
        ms(pick(|f| f.stall_new)),
        ms(pick(|f| f.stall_before)),
        ms(pick(|f| f.apply_new)),
        ms(pick(|f| f.apply_before)),
        ms(pick(|f| f.encode))
    );
}
