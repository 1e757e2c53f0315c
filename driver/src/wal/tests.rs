use std::fs;

use kontiki::{
    Entry, HardState, LogIndex, Membership, NodeId, Persist, PersistedState, Snapshot, Term,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::*;
use crate::snapshot_store::store_whole;

fn entry(index: u64, term: u64, len: usize) -> Entry {
    Entry::command(LogIndex(index), Term(term), vec![index as u8; len])
}

fn hard_state(term: u64, vote: Option<u64>) -> HardState {
    HardState {
        term: Term(term),
        voted_for: vote.map(NodeId),
        log_lost_at_term: None,
    }
}

/// A snapshot at `index` whose data is stored in `store`'s snapshots.
fn snapshot(store: &WalStorage, index: u64, term: u64) -> Snapshot {
    let data = store_whole(&*store.snapshots(), &index.to_le_bytes()).unwrap();
    Snapshot {
        index: LogIndex(index),
        term: Term(term),
        membership: Membership::default(),
        data: data.encode(),
    }
}

/// Writes `writes` to `store`, and to `model` as the core's meaning says.
fn write(store: &mut WalStorage, model: &mut PersistedState, writes: Vec<Persist>) {
    store.write(&writes).unwrap();
    for write in writes {
        model.apply(write).unwrap();
    }
}

fn reopen(dir: &Path) -> PersistedState {
    WalStorage::open_with(dir, small_files())
        .unwrap()
        .load()
        .unwrap()
}

/// A new store in a new directory, and the empty state it holds.
fn fresh() -> (tempfile::TempDir, PersistedState, WalStorage) {
    let dir = tempfile::tempdir().unwrap();
    let store = WalStorage::open_with(dir.path(), small_files()).unwrap();
    (dir, PersistedState::default(), store)
}

fn small_files() -> WalOptions {
    WalOptions {
        rotate_bytes: 4096,
        preallocate_bytes: 1024,
    }
}

#[test]
fn a_reopened_store_holds_every_write() {
    let (dir, mut model, mut store) = fresh();
    assert_eq!(store.load().unwrap(), model);
    write(
        &mut store,
        &mut model,
        vec![
            Persist::HardState(hard_state(2, Some(3))),
            Persist::Entries((1..=5).map(|index| entry(index, 1, 10)).collect()),
        ],
    );
    write(
        &mut store,
        &mut model,
        vec![Persist::TruncateLog { from: LogIndex(4) }],
    );
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(vec![
            entry(4, 2, 0),
            Entry::noop(LogIndex(5), Term(2)),
        ])],
    );
    let snap = snapshot(&store, 3, 1);
    write(&mut store, &mut model, vec![Persist::Snapshot(snap)]);
    write(
        &mut store,
        &mut model,
        vec![Persist::HardState(hard_state(3, None))],
    );
    assert_eq!(store.load().unwrap(), model);
    drop(store);
    assert_eq!(reopen(dir.path()), model);
}

#[test]
fn an_append_that_does_not_continue_the_log_is_refused_and_nothing_is_written() {
    let (dir, mut model, mut store) = fresh();
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(vec![entry(1, 1, 4)])],
    );
    let error = store
        .write(&[
            Persist::HardState(hard_state(9, None)),
            Persist::Entries(vec![entry(3, 1, 4)]),
        ])
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    // Nothing of the refused batch was written, and the store goes on.
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(vec![entry(2, 1, 4)])],
    );
    drop(store);
    assert_eq!(reopen(dir.path()), model);
}

/// The bytes of the current log file.
fn file_bytes(dir: &Path) -> (PathBuf, Vec<u8>) {
    let store = WalStorage::open_with(dir, small_files()).unwrap();
    let path = store.path();
    drop(store);
    let bytes = fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn a_write_cut_short_anywhere_is_dropped_and_the_store_goes_on() {
    let (dir, mut model, mut store) = fresh();
    write(
        &mut store,
        &mut model,
        vec![
            Persist::HardState(hard_state(1, Some(1))),
            Persist::Entries((1..=3).map(|index| entry(index, 1, 20)).collect()),
        ],
    );
    let before_last = store.end as usize;
    let last = vec![
        Persist::HardState(hard_state(2, Some(2))),
        Persist::Entries((4..=6).map(|index| entry(index, 2, 300)).collect()),
    ];
    store.write(&last).unwrap();
    let after_last = store.end as usize;
    drop(store);
    let (path, whole) = file_bytes(dir.path());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Cut the last write at every byte: its first `cut` bytes landed, the
    // rest is zeros (never written) or garbage (a partly written sector).
    for cut in before_last..after_last {
        for garbage in [false, true] {
            let mut bytes = whole.clone();
            for byte in &mut bytes[cut..after_last] {
                *byte = if garbage { rng.next_u32() as u8 } else { 0 };
            }
            fs::write(&path, &bytes).unwrap();
            let mut store = WalStorage::open_with(dir.path(), small_files()).unwrap();
            assert_eq!(
                store.load().unwrap(),
                model,
                "cut at {cut}, garbage {garbage}"
            );
            // The store writes on after the cut, and what it wrote is found.
            let mut after = model.clone();
            write(
                &mut store,
                &mut after,
                vec![Persist::Entries(vec![entry(4, 3, 1)])],
            );
            drop(store);
            assert_eq!(reopen(dir.path()), after, "cut at {cut}, garbage {garbage}");
        }
    }
}

#[test]
fn damage_before_the_last_frame_loses_the_log_from_there_and_keeps_the_newest_vote() {
    let (dir, mut model, mut store) = fresh();
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(vec![entry(1, 1, 8)])],
    );
    let damaged_at = store.end as usize;
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(vec![entry(2, 1, 8)])],
    );
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(vec![entry(3, 1, 8)])],
    );
    write(
        &mut store,
        &mut model,
        vec![Persist::HardState(hard_state(5, Some(2)))],
    );
    drop(store);
    let (path, mut bytes) = file_bytes(dir.path());
    // One bit flipped in the entry of the second frame's body.
    bytes[damaged_at + 60] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    let loaded = reopen(dir.path());
    assert_eq!(loaded.entries, [entry(1, 1, 8)]);
    assert_eq!(
        loaded.hard_state,
        HardState {
            log_lost_at_term: Some(Term(5)),
            ..hard_state(5, Some(2))
        }
    );
    // The store rewrote itself clean: the mark survives another reopen.
    assert_eq!(reopen(dir.path()), loaded);
}

#[test]
fn a_damaged_length_is_found_as_damage_not_as_a_cut() {
    let (dir, mut model, mut store) = fresh();
    let damaged_at = store.end as usize;
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(vec![entry(1, 1, 8)])],
    );
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(vec![entry(2, 1, 8)])],
    );
    drop(store);
    let (path, mut bytes) = file_bytes(dir.path());
    bytes[damaged_at + 2] = 0x7f;
    fs::write(&path, &bytes).unwrap();
    let loaded = reopen(dir.path());
    assert!(loaded.entries.is_empty());
    assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(0)));
}

#[test]
fn a_store_with_no_whole_frame_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(WalStorage::open_with(dir.path(), small_files()).unwrap());
    let (path, mut bytes) = file_bytes(dir.path());
    bytes[FILE_HEADER_LEN + 20] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let error = WalStorage::open_with(dir.path(), small_files()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
}

#[test]
fn a_file_cut_before_its_first_frame_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = WalStorage::open_with(dir.path(), small_files()).unwrap();
    store
        .write(&[Persist::HardState(hard_state(7, Some(2)))])
        .unwrap();
    drop(store);
    let (path, bytes) = file_bytes(dir.path());
    for len in [0, FILE_HEADER_LEN, FILE_HEADER_LEN + 6] {
        let mut cut = bytes[..len].to_vec();
        cut.resize(bytes.len(), 0);
        fs::write(&path, &cut).unwrap();
        let error = WalStorage::open_with(dir.path(), small_files()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "cut at {len}");
    }
}

#[test]
fn a_missing_snapshot_file_loses_everything_but_the_hard_state() {
    let (dir, mut model, mut store) = fresh();
    write(
        &mut store,
        &mut model,
        vec![
            Persist::HardState(hard_state(4, Some(1))),
            Persist::Entries((1..=4).map(|index| entry(index, 4, 8)).collect()),
        ],
    );
    let snap = snapshot(&store, 2, 4);
    write(&mut store, &mut model, vec![Persist::Snapshot(snap)]);
    drop(store);
    for file in fs::read_dir(dir.path().join(SNAPSHOTS_DIR)).unwrap() {
        fs::remove_file(file.unwrap().path()).unwrap();
    }
    let loaded = reopen(dir.path());
    assert_eq!(loaded.snapshot, None);
    assert!(loaded.entries.is_empty());
    assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(4)));
}

#[test]
fn a_long_log_with_snapshots_moves_to_new_files_and_matches_its_writes() {
    let (dir, mut model, mut store) = fresh();
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let mut term = 1;
    for round in 0..400u64 {
        let last = model.last_index().get();
        let writes = match rng.next_u32() % 10 {
            0 => {
                term += 1;
                vec![Persist::HardState(hard_state(
                    term,
                    Some(rng.next_u64() % 5),
                ))]
            }
            1 if last > model.snapshot_index().get() + 1 => {
                let from = model.snapshot_index().get()
                    + 1
                    + rng.next_u64() % (last - model.snapshot_index().get());
                vec![Persist::TruncateLog {
                    from: LogIndex(from),
                }]
            }
            2 if last > model.snapshot_index().get() => {
                let index = last - rng.next_u64() % 3.min(last - model.snapshot_index().get());
                let term_there = model
                    .entries
                    .iter()
                    .find(|entry| entry.index.get() == index)
                    .map_or(term, |entry| entry.term.get());
                vec![Persist::Snapshot(snapshot(&store, index, term_there))]
            }
            _ => {
                let count = 1 + rng.next_u64() % 5;
                let len = (rng.next_u32() % 200) as usize;
                vec![Persist::Entries(
                    (last + 1..=last + count)
                        .map(|index| entry(index, term, len))
                        .collect(),
                )]
            }
        };
        write(&mut store, &mut model, writes);
        if round % 37 == 0 {
            drop(store);
            store = WalStorage::open_with(dir.path(), small_files()).unwrap();
            assert_eq!(store.load().unwrap(), model, "round {round}");
        }
    }
    assert!(
        store.generation > 3,
        "files were replaced: {}",
        store.generation
    );
    drop(store);
    let logs = fs::read_dir(dir.path().join(LOG_DIR))
        .unwrap()
        .filter(|file| {
            let path = file.as_ref().unwrap().path();
            path.extension()
                .is_some_and(|extension| extension == FINISHED)
        })
        .count();
    assert_eq!(logs, 1, "the old files are gone");
    assert_eq!(reopen(dir.path()), model);
}

#[test]
fn what_a_crash_during_a_replacement_leaves_is_cleaned_up() {
    let (dir, mut model, mut store) = fresh();
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(vec![entry(1, 1, 8)])],
    );
    let log_dir = store.dir().to_path_buf();
    drop(store);
    // A partial next generation (the crash before its rename) ...
    fs::write(file_path(&log_dir, 2, PARTIAL), b"half a file").unwrap();
    assert_eq!(reopen(dir.path()), model);
    assert!(!file_path(&log_dir, 2, PARTIAL).exists());
    // ... and a finished one whose predecessor is still there (the crash
    // before the old file's removal): the newest counts.
    let mut store = WalStorage::open_with(dir.path(), small_files()).unwrap();
    let state = store.load().unwrap();
    let mut newer = state.clone();
    newer.apply(Persist::Entries(vec![entry(2, 1, 8)])).unwrap();
    write_generation(
        &log_dir,
        2,
        store.next_sequence,
        &newer,
        WalOptions::default(),
    )
    .unwrap();
    drop(store);
    assert_eq!(reopen(dir.path()), newer);
    assert!(!file_path(&log_dir, 1, FINISHED).exists());
}

#[test]
fn a_store_open_elsewhere_is_refused_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = WalStorage::open_with(dir.path(), small_files()).unwrap();
    let error = WalStorage::open_with(dir.path(), small_files()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    drop(store);
    WalStorage::open_with(dir.path(), small_files()).unwrap();
}

#[test]
fn a_batch_larger_than_a_frame_is_written_as_several() {
    let (dir, mut model, mut store) = fresh();
    let big = 3 * 1024 * 1024;
    write(
        &mut store,
        &mut model,
        vec![Persist::Entries(
            (1..=7).map(|index| entry(index, 1, big)).collect(),
        )],
    );
    assert!(store.next_sequence >= 3, "{}", store.next_sequence);
    drop(store);
    assert_eq!(reopen(dir.path()), model);
}

/// Whatever a file holds — bytes flipped, cut, or appended anywhere —
/// opening it never panics: it loads, or it is refused as unreadable.
#[test]
fn any_damage_to_a_file_loads_or_is_refused_and_never_panics() {
    let (dir, mut model, mut store) = fresh();
    for index in 1..=20 {
        write(
            &mut store,
            &mut model,
            vec![
                Persist::HardState(hard_state(index, Some(index % 3))),
                Persist::Entries(vec![entry(index, index, (index * 7) as usize)]),
            ],
        );
    }
    drop(store);
    let (path, whole) = file_bytes(dir.path());
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    for round in 0..300 {
        let mut bytes = whole.clone();
        for _ in 0..1 + rng.next_u32() % 4 {
            let at = rng.next_u32() as usize % bytes.len();
            match rng.next_u32() % 3 {
                0 => bytes[at] ^= 1 << (rng.next_u32() % 8),
                1 => bytes.truncate(at),
                _ => bytes[at] = rng.next_u32() as u8,
            }
            if bytes.is_empty() {
                break;
            }
        }
        fs::write(&path, &bytes).unwrap();
        match WalStorage::open_with(dir.path(), small_files()) {
            Ok(mut store) => {
                let loaded = store.load().unwrap();
                // What loads is never more than was written.
                assert!(loaded.entries.len() <= model.entries.len(), "round {round}");
                for (found, written) in loaded.entries.iter().zip(&model.entries) {
                    assert_eq!(found, written, "round {round}");
                }
            }
            Err(error) => assert_eq!(error.kind(), io::ErrorKind::InvalidData, "round {round}"),
        }
        // The next round damages the original again, from a clean slate.
        fs::remove_dir_all(dir.path().join(LOG_DIR)).unwrap();
        fs::create_dir_all(dir.path().join(LOG_DIR)).unwrap();
        fs::write(&path, &whole).unwrap();
    }
}

/// A rotation writes the new generation from the state the store keeps,
/// not by rereading the old file (which may have grown far past
/// `rotate_bytes` between two snapshots): damage that file took at rest
/// after it was opened neither stops the rotation nor carries over.
#[test]
fn a_rotation_writes_from_memory_and_leaves_damage_at_rest_behind() {
    let (dir, mut model, mut store) = fresh();
    for index in 1..=60 {
        write(
            &mut store,
            &mut model,
            vec![
                Persist::HardState(hard_state(1, Some(1))),
                Persist::Entries(vec![entry(index, 1, 100)]),
            ],
        );
    }
    assert!(store.end > small_files().rotate_bytes);
    let mut file = OpenOptions::new().write(true).open(store.path()).unwrap();
    file.seek(SeekFrom::Start(FILE_HEADER_LEN as u64 + 40))
        .unwrap();
    file.write_all(&[0xA5; 8]).unwrap();
    drop(file);
    let generation = store.generation;
    let snapshot = snapshot(&store, 50, 1);
    write(&mut store, &mut model, vec![Persist::Snapshot(snapshot)]);
    assert!(store.generation > generation, "the file was replaced");
    drop(store);
    let reopened = reopen(dir.path());
    assert_eq!(reopened, model);
    assert_eq!(reopened.hard_state.log_lost_at_term, None);
}
