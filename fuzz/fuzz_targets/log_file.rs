//! A log file as the log store (`WalStorage`) might find it when it
//! opens: whatever a crash, a failing disk or anyone else left there,
//! opening never panics. It either refuses the file as unreadable
//! (`InvalidData`), or loads a state that is one the store really held,
//! marks a loss it could see, and then takes a write and reads it back
//! after another reopen.
//!
//! The first byte picks how the file is made:
//! - even: the rest of the input is the whole file;
//! - odd: the rest drives writes through the store (hard states, appends,
//!   truncations, one or two to a frame), then edits the file it wrote:
//!   four bytes per edit (what, where low, where high, a value) flip a
//!   bit, set a byte or cut the file there.
//!
//! The store runs in a directory under `/dev/shm` where there is one (a
//! sync costs nothing there), else under the system's temporary directory.

#![no_main]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kontiki::{Entry, HardState, LogIndex, NodeId, Persist, PersistedState, Term};
use kontiki_driver::{Storage, WalOptions, WalStorage};
use libfuzzer_sys::fuzz_target;

/// Small files: a frame of a few entries is a good part of one, and the
/// preallocated zeros after the last frame are in reach of the edits.
const OPTIONS: WalOptions = WalOptions {
    rotate_bytes: 4096,
    preallocate_bytes: 1024,
};

/// The store's directory, emptied before every input.
fn store_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("kontiki-fuzz-log-file-{}", std::process::id()))
    })
}

fn empty_store_dir() -> &'static Path {
    let dir = store_dir();
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => panic!("emptying {}: {error}", dir.display()),
    }
    fs::create_dir_all(dir).unwrap();
    dir
}

/// The one log file in the store's directory.
fn log_file(dir: &Path) -> PathBuf {
    let logs: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    assert_eq!(logs.len(), 1, "one log file: {logs:?}");
    logs.into_iter().next().unwrap()
}

/// Reads the input a byte at a time; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&first, rest)) => {
                self.0 = rest;
                first
            }
            None => 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One write's worth of persists, chosen by the input, that continue
/// `state` (as a node's would: terms never fall).
fn next_write(input: &mut Input, state: &PersistedState) -> Vec<Persist> {
    let mut state = state.clone();
    let mut write = Vec::new();
    for _ in 0..1 + input.byte() % 2 {
        let term = state.hard_state.term.0.max(1);
        let persist = match input.byte() % 4 {
            0 => {
                let vote = input.byte();
                Persist::HardState(HardState {
                    term: Term(term + u64::from(vote % 2)),
                    voted_for: (vote >= 128).then_some(NodeId(u64::from(vote % 5))),
                    log_lost_at_term: None,
                })
            }
            1 | 2 => {
                let first = state.last_index().next().0;
                let count = 1 + u64::from(input.byte() % 4);
                let entries = (first..first + count)
                    .map(|index| {
                        let len = usize::from(input.byte() % 40);
                        Entry::command(LogIndex(index), Term(term), vec![index as u8; len])
                    })
                    .collect();
                Persist::Entries(entries)
            }
            _ => {
                let last = state.last_index().0;
                let from = 1 + u64::from(input.byte()) % (last + 1);
                Persist::TruncateLog {
                    from: LogIndex(from),
                }
            }
        };
        state
            .apply(persist.clone())
            .expect("the writes continue the log");
        write.push(persist);
    }
    write
}

/// An edit of the file's bytes; returns whether it was a cut.
fn edit(input: &mut Input, bytes: &mut Vec<u8>) -> bool {
    let what = input.byte();
    let at = usize::from(u16::from_le_bytes([input.byte(), input.byte()])) % bytes.len();
    let value = input.byte();
    match what % 3 {
        0 => bytes[at] ^= 1 << (value % 8),
        1 => bytes[at] = value,
        _ => {
            bytes.truncate(at);
            return true;
        }
    }
    false
}

/// Writes through a new store what the input asks, then edits its file as
/// the input asks; returns the states the store held (the empty one, then
/// one after each write) and what the edits were.
fn write_then_edit(dir: &Path, input: &mut Input) -> (Vec<PersistedState>, Edits) {
    let mut store = WalStorage::open_with(dir, OPTIONS).unwrap();
    let mut states = vec![store.load().unwrap()];
    for _ in 0..1 + input.byte() % 12 {
        let write = next_write(input, states.last().unwrap());
        store.write(&write).unwrap();
        let mut state = states.last().unwrap().clone();
        for persist in write {
            state.apply(persist).unwrap();
        }
        states.push(state);
    }
    drop(store);
    let path = log_file(dir);
    let mut bytes = fs::read(&path).unwrap();
    let mut edits = Edits::default();
    while !input.is_empty() && !bytes.is_empty() {
        edits.count += 1;
        edits.cut |= edit(input, &mut bytes);
    }
    fs::write(&path, &bytes).unwrap();
    (states, edits)
}

/// The edits made to a file.
#[derive(Default)]
struct Edits {
    count: usize,
    /// Whether one of them cut the file short.
    cut: bool,
}

/// What loaded from an edited file against the states the store held.
fn check_against_history(loaded: &PersistedState, states: &[PersistedState], edits: &Edits) {
    // The log is one the store held after some write (a suffix lost,
    // never a changed or invented entry) ...
    let held = states
        .iter()
        .position(|state| state.entries == loaded.entries && state.snapshot == loaded.snapshot)
        .unwrap_or_else(|| panic!("loaded a log the store never held: {loaded:?}"));
    // ... and the term and vote are those of that write or a later one.
    let vote = (loaded.hard_state.term, loaded.hard_state.voted_for);
    assert!(
        states[held..]
            .iter()
            .any(|state| (state.hard_state.term, state.hard_state.voted_for) == vote),
        "loaded a term and vote the store never held with that log: {vote:?}"
    );
    // One changed byte that cost more than the last write was damage at
    // rest (a later frame is whole), and the store must say it lost part
    // of its log: the node may have acknowledged what is gone.
    let last = states.len() - 1;
    let lost_more_than_the_last_write =
        loaded.entries != states[last].entries && loaded.entries != states[last - 1].entries;
    if edits.count == 1 && !edits.cut && lost_more_than_the_last_write {
        assert!(
            loaded.hard_state.log_lost_at_term.is_some(),
            "a log lost at rest, not marked"
        );
    }
}

/// The store opened on whatever the file holds either refuses it as
/// unreadable or loads a state; loaded, it takes a write and holds it
/// after a reopen. Returns what it loaded.
fn open_write_reopen(dir: &Path) -> Option<PersistedState> {
    let mut store = match WalStorage::open_with(dir, OPTIONS) {
        Ok(store) => store,
        Err(error) if error.kind() == io::ErrorKind::InvalidData => return None,
        Err(error) => panic!("opening failed other than as unreadable: {error}"),
    };
    let loaded = store.load().unwrap();
    let term = loaded
        .hard_state
        .term
        .0
        .max(loaded.entries.last().map_or(0, |entry| entry.term.0));
    let more = vec![
        Persist::HardState(HardState {
            term: Term(term + 1),
            ..loaded.hard_state
        }),
        Persist::Entries(vec![Entry::command(
            loaded.last_index().next(),
            Term(term + 1),
            b"after".to_vec(),
        )]),
    ];
    store.write(&more).unwrap();
    drop(store);
    let mut expected = loaded.clone();
    for persist in more {
        expected.apply(persist).unwrap();
    }
    let reloaded = WalStorage::open_with(dir, OPTIONS).unwrap().load().unwrap();
    assert_eq!(reloaded, expected, "a write after opening was not kept");
    Some(loaded)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let dir = empty_store_dir();
    if pick % 2 == 0 {
        fs::create_dir_all(dir.join("wal")).unwrap();
        fs::write(dir.join("wal").join("00000000000000000001.log"), rest).unwrap();
        open_write_reopen(dir);
    } else {
        let mut input = Input(rest);
        let (states, edits) = write_then_edit(dir, &mut input);
        if let Some(loaded) = open_write_reopen(dir) {
            check_against_history(&loaded, &states, &edits);
        }
    }
});
