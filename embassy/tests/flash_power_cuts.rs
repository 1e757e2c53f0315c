//! The flash storage under power cuts: a workload of writes such as a node
//! asks for (hard states, appends, truncations, snapshots, enough of them
//! to fill each half several times) runs with the power cut at every write
//! step in turn. After each cut the storage is opened again on what the
//! flash holds, and must find every write that was acknowledged — and
//! nothing that was not asked for — then take the rest of the workload and
//! find all of it after one more reset.

use std::ops::Range;

use bytes::Bytes;
use futures::executor::block_on;
use kontiki::{
    Entry, EntryKind, HardState, LogIndex, Membership, NodeId, Persist, PersistedState, Snapshot,
    Term,
};
use kontiki_embassy::flash::{FlashError, FlashStorage, MemoryFlash, MemoryFlashError};

/// Small pages, so that records span items and halves fill quickly.
type Flash = MemoryFlash<Vec<u8>, 256>;
const PAGES: usize = 16;
const RANGE: Range<u32> = 0..(PAGES * 256) as u32;

/// A deterministic stream of numbers for the workload.
struct Numbers(u64);

impl Numbers {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Writes a node might ask for, each valid after the ones before it; the
/// log stays short because snapshots come often, as they must on a
/// microcontroller.
fn workload(seed: u64, writes: usize) -> Vec<Persist> {
    let mut numbers = Numbers(seed);
    let mut state = PersistedState::default();
    let mut term = 1;
    let mut out = Vec::new();
    while out.len() < writes {
        let last = state.last_index().get();
        // Keep the log short, as a node on a microcontroller must.
        let log_bytes: usize = state
            .entries
            .iter()
            .map(|entry| entry.data.len() + 24)
            .sum();
        let choice = if log_bytes > 500 {
            3
        } else {
            numbers.below(10)
        };
        let write = match choice {
            0 | 1 => {
                term += numbers.below(2);
                Persist::HardState(HardState {
                    term: Term(term),
                    voted_for: (numbers.below(3) > 0).then(|| NodeId(1 + numbers.below(3))),
                    log_lost_at_term: None,
                })
            }
            2 if last > state.snapshot_index().get() + 1 => Persist::TruncateLog {
                from: LogIndex(last - numbers.below(2)),
            },
            3 if state.entries.len() > 2 => {
                let index = state.entries[state.entries.len() - 2].index;
                let size = numbers.below(250) as usize;
                Persist::Snapshot(Snapshot {
                    index,
                    term: Term(term),
                    membership: Membership::default(),
                    data: Bytes::from(vec![index.get() as u8; size]),
                })
            }
            _ => {
                let count = 1 + numbers.below(3);
                let entries = (1..=count)
                    .map(|offset| {
                        let index = last + offset;
                        let size = match numbers.below(8) {
                            0 => 150 + numbers.below(100),
                            _ => numbers.below(24),
                        } as usize;
                        Entry {
                            index: LogIndex(index),
                            term: Term(term),
                            kind: if size == 0 {
                                EntryKind::Noop
                            } else {
                                EntryKind::Command
                            },
                            data: Bytes::from(vec![(index * 7) as u8; size]),
                        }
                    })
                    .collect();
                Persist::Entries(entries)
            }
        };
        state
            .apply(write.clone())
            .expect("the workload is in order");
        out.push(write);
    }
    out
}

/// The state after the first `count` writes.
fn after(writes: &[Persist], count: usize) -> PersistedState {
    let mut state = PersistedState::default();
    for write in &writes[..count] {
        state.apply(write.clone()).expect("in order");
    }
    state
}

fn open(flash: &mut Flash) -> Result<FlashStorage<&mut Flash>, FlashError<MemoryFlashError>> {
    block_on(FlashStorage::open(flash, RANGE))
}

/// Performs writes from `first` on until one fails; the number of writes
/// acknowledged in all.
fn run_until_cut(
    storage: &mut FlashStorage<&mut Flash>,
    writes: &[Persist],
    first: usize,
) -> usize {
    for (done, write) in writes.iter().enumerate().skip(first) {
        if block_on(storage.persist(write.clone())).is_err() {
            return done;
        }
    }
    writes.len()
}

/// Opens the storage after a reset, finishes the workload on it, and
/// checks it after one more reset.
///
/// Returns whether the write in flight at the reset was found whole.
fn recover_and_finish(
    flash: &mut Flash,
    writes: &[Persist],
    acknowledged: usize,
    cut: u64,
) -> bool {
    flash.restore_power();
    let mut storage = open(flash).unwrap_or_else(|error| panic!("cut at step {cut}: {error}"));
    let found = storage.state().clone();
    // The write in flight when the power failed may have landed whole, or
    // (an append) in part; nothing before it may be missing.
    let resumed_at = if found == after(writes, acknowledged) {
        acknowledged
    } else if acknowledged < writes.len() && found == after(writes, acknowledged + 1) {
        acknowledged + 1
    } else {
        panic!(
            "cut at step {cut}: after {acknowledged} acknowledged writes the flash holds \
             {:?}, which is neither that state nor the next",
            found
        );
    };
    assert_eq!(
        run_until_cut(&mut storage, writes, resumed_at),
        writes.len()
    );
    drop(storage);
    let storage = open(flash).expect("opens after the workload");
    assert_eq!(
        storage.state(),
        &after(writes, writes.len()),
        "cut at step {cut}"
    );
    resumed_at > acknowledged
}

#[test]
fn a_reset_at_any_write_step_loses_nothing_acknowledged() {
    let writes = workload(7, 160);
    // Once without a cut, to count the steps and to see the halves switch.
    let mut flash = Flash::new(vec![0xFF; PAGES * 256]);
    let mut storage = open(&mut flash).expect("opens");
    assert_eq!(run_until_cut(&mut storage, &writes, 0), writes.len());
    let stats = storage.stats();
    drop(storage);
    assert!(
        stats.checkpoints >= 3,
        "the workload should fill halves several times: {stats:?}"
    );
    let steps = flash.steps();
    assert_eq!(
        open(&mut flash).expect("reopens").state(),
        &after(&writes, writes.len())
    );

    let mut landed_whole = 0;
    for cut in 0..steps {
        let mut flash = Flash::new(vec![0xFF; PAGES * 256]);
        flash.cut_power_at(cut, cut.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let acknowledged = match open(&mut flash) {
            Ok(mut storage) => run_until_cut(&mut storage, &writes, 0),
            // The cut came while the first checkpoint was being written.
            Err(_) => 0,
        };
        assert!(
            flash.power_failed(),
            "the power fails at step {cut} of {steps}"
        );
        landed_whole += usize::from(recover_and_finish(&mut flash, &writes, acknowledged, cut));
    }
    eprintln!(
        "{steps} write steps, {} checkpoints; the write in flight landed whole after {landed_whole} of the cuts",
        stats.checkpoints
    );
    // A cut while the old half is being erased, after the checkpoint that
    // holds the write, leaves it whole: such cuts were among these.
    assert!(landed_whole > 0);
}

#[test]
fn a_second_reset_during_recovery_loses_nothing_either() {
    let writes = workload(11, 60);
    let mut numbers = Numbers(3);
    for _ in 0..200 {
        let mut flash = Flash::new(vec![0xFF; PAGES * 256]);
        flash.cut_power_at(numbers.below(2_000), numbers.below(u64::MAX));
        let mut acknowledged = match open(&mut flash) {
            Ok(mut storage) => run_until_cut(&mut storage, &writes, 0),
            Err(_) => 0,
        };
        // Reset again somewhere in the recovery and the writes after it.
        flash.restore_power();
        flash.cut_power_at(flash.steps() + numbers.below(400), numbers.below(u64::MAX));
        if let Ok(mut storage) = open(&mut flash) {
            let found = storage.state().clone();
            if found == after(&writes, acknowledged + 1) {
                acknowledged += 1;
            } else {
                assert_eq!(found, after(&writes, acknowledged));
            }
            acknowledged = run_until_cut(&mut storage, &writes, acknowledged);
        }
        recover_and_finish(&mut flash, &writes, acknowledged, u64::MAX);
    }
}

#[test]
fn wear_is_spread_over_every_page() {
    let writes = workload(5, 3_000);
    let mut flash = Flash::new(vec![0xFF; PAGES * 256]);
    let mut storage = open(&mut flash).expect("opens");
    assert_eq!(run_until_cut(&mut storage, &writes, 0), writes.len());
    drop(storage);
    let counts = flash.erase_counts();
    let most = *counts.iter().max().expect("pages");
    let least = *counts.iter().min().expect("pages");
    assert!(least > 0, "every page is used: {counts:?}");
    assert!(
        most <= least + least / 4 + 2,
        "no page wears much faster than another: {counts:?}"
    );
}

#[test]
fn an_item_lost_from_the_middle_is_reported_not_skipped() {
    let writes = workload(9, 40);
    let mut flash = Flash::new(vec![0xFF; PAGES * 256]);
    let mut storage = open(&mut flash).expect("opens");
    assert_eq!(run_until_cut(&mut storage, &writes, 0), writes.len());
    // One more append whose payload is easy to find, then another after it.
    let last = after(&writes, writes.len()).last_index().get();
    let marked = Entry::command(LogIndex(last + 1), Term(99), b"find me in flash".to_vec());
    block_on(storage.persist(Persist::Entries(vec![marked]))).expect("fits");
    let next = Entry::command(LogIndex(last + 2), Term(99), b"after it".to_vec());
    block_on(storage.persist(Persist::Entries(vec![next]))).expect("fits");
    drop(storage);

    let mut memory = flash.into_memory();
    let at = memory
        .windows(16)
        .position(|window| window == b"find me in flash")
        .expect("the payload is in flash");
    memory[at + 3] ^= 0x10;
    let mut flash = Flash::new(memory);
    assert!(matches!(open(&mut flash), Err(FlashError::Damaged(_))));
}

#[test]
fn a_state_too_large_for_half_the_range_is_refused_and_the_storage_stops() {
    let mut flash = Flash::new(vec![0xFF; PAGES * 256]);
    let mut storage = open(&mut flash).expect("opens");
    let mut index = 0;
    let error = loop {
        index += 1;
        let entry = Entry::command(LogIndex(index), Term(1), vec![1; 100]);
        if let Err(error) = block_on(storage.persist(Persist::Entries(vec![entry]))) {
            break error;
        }
    };
    assert_eq!(error, FlashError::Full);
    // Half the range holds about this many entries of 100 bytes.
    assert!((8..20).contains(&index), "{index}");
    let hard_state = Persist::HardState(HardState::default());
    assert_eq!(
        block_on(storage.persist(hard_state)),
        Err(FlashError::Failed)
    );
}

#[test]
fn an_append_out_of_order_is_refused_and_nothing_is_written() {
    let mut flash = Flash::new(vec![0xFF; PAGES * 256]);
    let mut storage = open(&mut flash).expect("opens");
    let first = Entry::command(LogIndex(1), Term(1), b"one".to_vec());
    block_on(storage.persist(Persist::Entries(vec![first.clone()]))).expect("in order");
    let gap = Entry::command(LogIndex(3), Term(1), b"three".to_vec());
    assert!(matches!(
        block_on(storage.persist(Persist::Entries(vec![gap]))),
        Err(FlashError::OutOfOrder(_))
    ));
    let second = Entry::command(LogIndex(2), Term(1), b"two".to_vec());
    block_on(storage.persist(Persist::Entries(vec![second.clone()]))).expect("in order");
    drop(storage);
    assert_eq!(
        open(&mut flash).expect("reopens").state().entries,
        [first, second]
    );
}

#[test]
fn garbage_in_a_fresh_range_is_erased_and_a_bad_range_refused() {
    let mut flash = Flash::new((0..PAGES * 256).map(|byte| (byte * 31) as u8).collect());
    let storage = open(&mut flash).expect("starts an empty state");
    assert_eq!(storage.state(), &PersistedState::default());
    drop(storage);
    assert!(matches!(
        block_on(FlashStorage::open(&mut flash, 0..3 * 256)),
        Err(FlashError::BadRange)
    ));
    assert!(matches!(
        block_on(FlashStorage::open(&mut flash, 100..2048)),
        Err(FlashError::BadRange)
    ));
}
