use super::*;
use crate::snapshot_store::CheckedReader;

/// Stores `data` as a snapshot file of `store`'s: the reference a
/// snapshot written to it carries.
fn stored(store: &DiskStorage, data: &[u8]) -> Bytes {
    store_whole(&*store.snapshots, data).unwrap().encode()
}

/// The data a snapshot's reference names in `store`.
fn read_back(store: &DiskStorage, data: &[u8]) -> Vec<u8> {
    let data = SnapshotRef::decode(data).expect("a reference");
    let reader = CheckedReader::open(&*store.snapshots, data).unwrap();
    reader.read_whole().unwrap().to_vec()
}

/// How many snapshot files the store's directory holds.
fn snapshot_files(dir: &Path) -> usize {
    fs::read_dir(dir.join(SNAPSHOTS_DIR)).unwrap().count()
}

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry::command(LogIndex(index), Term(term), data.to_vec())
}

fn three_voters() -> Membership {
    Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(3)]).unwrap()
}

#[test]
fn what_was_written_is_loaded_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let hard_state = HardState {
        term: Term(4),
        voted_for: Some(NodeId(2)),
        log_lost_at_term: None,
    };
    {
        let mut store = DiskStorage::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap(), PersistedState::default());
        store
            .write(&[
                Persist::HardState(hard_state),
                Persist::Entries(vec![
                    entry(1, 1, b"a"),
                    entry(2, 1, b"b"),
                    entry(3, 2, b"c"),
                ]),
            ])
            .unwrap();
        store
            .write(&[
                Persist::TruncateLog { from: LogIndex(2) },
                Persist::Entries(vec![entry(2, 4, b"d"), Entry::noop(LogIndex(3), Term(4))]),
            ])
            .unwrap();
    }
    let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(loaded.hard_state, hard_state);
    assert_eq!(
        loaded.entries,
        vec![
            entry(1, 1, b"a"),
            entry(2, 4, b"d"),
            Entry::noop(LogIndex(3), Term(4))
        ]
    );
}

#[test]
fn damaged_records_are_reported_not_loaded() {
    let good = {
        let mut record = Vec::new();
        encode_entry(&entry(7, 3, b"payload"), &mut record);
        record
    };
    assert!(decode_entry(LogIndex(7), &good).is_ok());
    assert!(
        decode_entry(LogIndex(8), &good).is_err(),
        "a record under another index"
    );
    for position in 0..good.len() {
        let mut damaged = good.clone();
        damaged[position] ^= 0x20;
        let error = decode_entry(LogIndex(7), &damaged).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("log entry 7"));
    }
    assert!(decode_entry(LogIndex(7), &good[..5]).is_err());
    let hard_state = encode_hard_state(HardState {
        term: Term(9),
        voted_for: None,
        log_lost_at_term: None,
    });
    let mut damaged = hard_state.clone();
    damaged[10] ^= 1;
    assert!(decode_hard_state(&damaged).is_err());
    assert_eq!(decode_hard_state(&hard_state).unwrap().term, Term(9));
    let snapshot = encode_snapshot(&Snapshot {
        index: LogIndex(5),
        term: Term(2),
        membership: three_voters(),
        data: Bytes::from_static(b"s"),
    });
    assert_eq!(decode_snapshot(&snapshot).unwrap().index, LogIndex(5));
    assert!(
        decode_hard_state(&snapshot).is_err(),
        "a snapshot is no hard state"
    );
    for position in 0..snapshot.len() {
        let mut damaged = snapshot.clone();
        damaged[position] ^= 0x04;
        assert!(decode_snapshot(&damaged).is_err());
    }
}

/// A store written before snapshots carried the configuration loads
/// its snapshot with an empty membership (the node then uses the
/// voters it is started with), and the next snapshot replaces it.
#[test]
fn a_snapshot_of_the_first_layout_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut record = vec![0; 4];
    record.extend_from_slice(&7u64.to_le_bytes());
    record.extend_from_slice(&2u64.to_le_bytes());
    record.extend_from_slice(b"old");
    let crc = checksum(SNAPSHOT_SALT, &record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    {
        let store = DiskStorage::open(dir.path()).unwrap();
        let transaction = store.database.begin_write().unwrap();
        transaction
            .open_table(META)
            .unwrap()
            .insert(SNAPSHOT_V1_KEY, record.as_slice())
            .unwrap();
        transaction.commit().unwrap();
    }
    let mut store = DiskStorage::open(dir.path()).unwrap();
    let loaded = store.load().unwrap().snapshot.expect("a snapshot");
    assert_eq!((loaded.index, loaded.term), (LogIndex(7), Term(2)));
    assert!(loaded.membership.is_empty());
    assert_eq!(read_back(&store, &loaded.data), b"old", "moved to a file");
    assert_eq!(store.load().unwrap().snapshot, Some(loaded), "moved once");
    let newer = Snapshot {
        index: LogIndex(9),
        term: Term(2),
        membership: three_voters(),
        data: stored(&store, b"new"),
    };
    store.write(&[Persist::Snapshot(newer.clone())]).unwrap();
    assert_eq!(store.load().unwrap().snapshot, Some(newer));
    assert_eq!(snapshot_files(dir.path()), 1, "the older file is gone");
}

/// A store written before snapshots became files holds the data in its
/// record; loading moves it to a file, once.
#[test]
fn a_snapshot_kept_in_the_database_moves_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let inline = Snapshot {
        index: LogIndex(4),
        term: Term(3),
        membership: three_voters(),
        data: Bytes::from_static(b"kept in the record"),
    };
    {
        let store = DiskStorage::open(dir.path()).unwrap();
        let transaction = store.database.begin_write().unwrap();
        transaction
            .open_table(META)
            .unwrap()
            .insert(SNAPSHOT_V2_KEY, encode_snapshot(&inline).as_slice())
            .unwrap();
        transaction.commit().unwrap();
    }
    let mut store = DiskStorage::open(dir.path()).unwrap();
    let loaded = store.load().unwrap().snapshot.expect("a snapshot");
    assert_eq!(loaded.membership, inline.membership);
    assert_eq!(read_back(&store, &loaded.data), b"kept in the record");
    drop(store);
    let again = DiskStorage::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(again.snapshot, Some(loaded));
    assert_eq!(snapshot_files(dir.path()), 1);
}

#[test]
fn a_snapshot_must_name_a_file_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = DiskStorage::open(dir.path()).unwrap();
    let snapshot = |data: Bytes| {
        Persist::Snapshot(Snapshot {
            index: LogIndex(4),
            term: Term(2),
            membership: three_voters(),
            data,
        })
    };
    assert!(store
        .write(&[snapshot(Bytes::from_static(b"raw data"))])
        .is_err());
    let elsewhere = SnapshotRef {
        id: 99,
        len: 3,
        crc32: 0,
    };
    assert!(store.write(&[snapshot(elsewhere.encode())]).is_err());
    assert_eq!(
        store.load().unwrap(),
        PersistedState::default(),
        "nothing written"
    );
}

/// Writes `record` under log index `index` as it is, bypassing the
/// encoding: damage a test plants.
fn plant_log_record(dir: &Path, index: u64, record: &[u8]) {
    let store = DiskStorage::open(dir).unwrap();
    let transaction = store.database.begin_write().unwrap();
    transaction
        .open_table(LOG)
        .unwrap()
        .insert(index, record)
        .unwrap();
    transaction.commit().unwrap();
}

#[test]
fn a_damaged_log_record_loses_the_log_from_there_and_marks_the_hard_state() {
    let dir = tempfile::tempdir().unwrap();
    let hard_state = HardState {
        term: Term(3),
        voted_for: Some(NodeId(2)),
        log_lost_at_term: None,
    };
    {
        let mut store = DiskStorage::open(dir.path()).unwrap();
        store
            .write(&[
                Persist::HardState(hard_state),
                Persist::Entries((1..=5).map(|i| entry(i, 2, b"x")).collect()),
            ])
            .unwrap();
    }
    let mut damaged = Vec::new();
    encode_entry(&entry(3, 2, b"x"), &mut damaged);
    damaged[12] ^= 0x01;
    plant_log_record(dir.path(), 3, &damaged);

    let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(loaded.entries, vec![entry(1, 2, b"x"), entry(2, 2, b"x")]);
    assert_eq!(loaded.hard_state.term, Term(3));
    assert_eq!(loaded.hard_state.voted_for, Some(NodeId(2)));
    assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(3)));
    // The repair is durable: the next load finds the same, marked.
    let again = DiskStorage::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(again, loaded);
}

#[test]
fn a_missing_log_record_loses_the_log_from_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = DiskStorage::open(dir.path()).unwrap();
        store
            .write(&[Persist::Entries(vec![entry(1, 1, b"a"), entry(2, 1, b"b")])])
            .unwrap();
    }
    let mut record = Vec::new();
    encode_entry(&entry(4, 1, b"d"), &mut record);
    plant_log_record(dir.path(), 4, &record);
    let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(loaded.entries.len(), 2);
    assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(0)));
}

/// A store in `dir` holding a hard state (term 5, a vote for node 1), a
/// snapshot through index 4 and the entry after it.
fn store_with_a_snapshot(dir: &Path) -> DiskStorage {
    let mut store = DiskStorage::open(dir).unwrap();
    let snapshot = Snapshot {
        index: LogIndex(4),
        term: Term(2),
        membership: three_voters(),
        data: stored(&store, b"state"),
    };
    store
        .write(&[
            Persist::HardState(HardState {
                term: Term(5),
                voted_for: Some(NodeId(1)),
                log_lost_at_term: None,
            }),
            Persist::Snapshot(snapshot),
            Persist::Entries(vec![entry(5, 2, b"e")]),
        ])
        .unwrap();
    store
}

#[test]
fn a_damaged_snapshot_loses_everything_but_the_hard_state() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = store_with_a_snapshot(dir.path());
        let transaction = store.database.begin_write().unwrap();
        transaction
            .open_table(META)
            .unwrap()
            .insert(SNAPSHOT_KEY, &b"garbage that fails its checksum"[..])
            .unwrap();
        transaction.commit().unwrap();
    }
    let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(loaded.snapshot, None);
    assert!(loaded.entries.is_empty());
    assert_eq!(loaded.hard_state.term, Term(5));
    assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(5)));
}

#[test]
fn a_missing_or_cut_snapshot_file_loses_everything_but_the_hard_state() {
    for cut in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        store_with_a_snapshot(dir.path());
        let file = fs::read_dir(dir.path().join(SNAPSHOTS_DIR))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        if cut {
            fs::write(&file, b"st").unwrap();
        } else {
            fs::remove_file(&file).unwrap();
        }
        let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.snapshot, None);
        assert!(loaded.entries.is_empty());
        assert_eq!(loaded.hard_state.voted_for, Some(NodeId(1)));
        assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(5)));
    }
}

#[test]
fn a_hard_state_of_the_first_layout_still_loads() {
    let mut record = vec![0; 4];
    record.extend_from_slice(&7u64.to_le_bytes());
    record.push(1);
    record.extend_from_slice(&3u64.to_le_bytes());
    let crc = checksum(0, &record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    let decoded = decode_hard_state(&record).unwrap();
    assert_eq!(
        decoded,
        HardState {
            term: Term(7),
            voted_for: Some(NodeId(3)),
            log_lost_at_term: None,
        }
    );
    let marked = HardState {
        log_lost_at_term: Some(Term(6)),
        ..decoded
    };
    assert_eq!(
        decode_hard_state(&encode_hard_state(marked)).unwrap(),
        marked
    );
}

#[test]
fn a_snapshot_replaces_the_entries_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot = Snapshot {
        index: LogIndex(2),
        term: Term(1),
        membership: three_voters(),
        data: Bytes::new(),
    };
    {
        let mut store = DiskStorage::open(dir.path()).unwrap();
        snapshot.data = stored(&store, b"state");
        store
            .write(&[Persist::Entries(vec![
                entry(1, 1, b"a"),
                entry(2, 1, b"b"),
                entry(3, 1, b"c"),
            ])])
            .unwrap();
        store.write(&[Persist::Snapshot(snapshot.clone())]).unwrap();
    }
    let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(loaded.snapshot, Some(snapshot));
    assert_eq!(loaded.entries, vec![entry(3, 1, b"c")]);
}

#[test]
fn the_store_loads_what_applying_the_same_writes_gives() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = |index: u64, term: u64| Snapshot {
        index: LogIndex(index),
        term: Term(term),
        membership: three_voters(),
        data: Bytes::from(vec![index as u8; 3]),
    };
    let vote = |term: u64, node: u64| {
        Persist::HardState(HardState {
            term: Term(term),
            voted_for: Some(NodeId(node)),
            log_lost_at_term: None,
        })
    };
    let rounds = vec![
        vec![
            vote(1, 1),
            Persist::Entries(vec![entry(1, 1, b"a"), entry(2, 1, b"b")]),
        ],
        vec![Persist::Entries(vec![entry(3, 1, b"c"), entry(4, 1, b"d")])],
        vec![Persist::Snapshot(snapshot(2, 1))],
        vec![
            vote(3, 2),
            Persist::TruncateLog { from: LogIndex(4) },
            Persist::Entries(vec![entry(4, 3, b"e"), entry(5, 3, b"f")]),
        ],
        vec![
            Persist::Snapshot(snapshot(5, 3)),
            Persist::Entries(vec![entry(6, 3, b"g")]),
        ],
        // A leader's snapshot past everything held.
        vec![
            Persist::TruncateLog { from: LogIndex(6) },
            Persist::Snapshot(snapshot(9, 4)),
        ],
        vec![vote(5, 3), Persist::Entries(vec![entry(10, 5, b"h")])],
    ];
    let mut expected = PersistedState::default();
    for round in rounds {
        let mut store = DiskStorage::open(dir.path()).unwrap();
        // The snapshot's data goes to a file just before it is written,
        // as a node does it.
        let round: Vec<Persist> = round
            .into_iter()
            .map(|write| match write {
                Persist::Snapshot(mut snapshot) => {
                    snapshot.data = stored(&store, &snapshot.data);
                    Persist::Snapshot(snapshot)
                }
                other => other,
            })
            .collect();
        for write in &round {
            expected.apply(write.clone()).unwrap();
        }
        store.write(&round).unwrap();
        drop(store);
        let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded, expected);
        let files = snapshot_files(dir.path());
        assert_eq!(files, usize::from(expected.snapshot.is_some()));
    }
}
