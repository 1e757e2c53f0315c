//! Three boards, each running `kontiki_embassy::board::run` with its own
//! flash, linked pairwise by in-memory serial lines, on embassy's mock
//! clock (time moves only when the test moves it). They elect a leader,
//! commit commands from a client task, lose the leader (its future is
//! dropped: a reset), elect another, and take the old leader back on its
//! flash; every board's state machine ends with the same commands in the
//! same order, and every command proposed is among them.
//!
//! The same again with every line damaging one byte in 499: frames are
//! lost and counted, and the cluster gets there all the same.
//!
//! One test per binary: the mock clock is global.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use embassy_futures::select::{select, Either};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::pipe::Pipe;
use embassy_time::{Duration, MockDriver, Timer};
use embedded_storage_async::nor_flash::{ErrorType, MultiwriteNorFlash, NorFlash, ReadNorFlash};
use futures::executor::LocalPool;
use futures::future::RemoteHandle;
use futures::task::LocalSpawnExt;
use kontiki::{LogIndex, NodeId, Role};
use kontiki_embassy::board::{self, BoardConfig, Mailbox, Peer, ProposeError, StateMachine};
use kontiki_embassy::flash::{FlashStorage, MemoryFlash, MemoryFlashError};
use kontiki_embassy::SerialLink;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const BOARDS: usize = 3;
const FLASH_BYTES: usize = 64 * 1024;
type Line = Pipe<NoopRawMutex, 512>;

/// A board's flash, which outlives the board's node (a reset drops the
/// node, not the chip).
#[derive(Clone)]
struct Chip(Rc<RefCell<MemoryFlash<Vec<u8>>>>);

impl ErrorType for Chip {
    type Error = MemoryFlashError;
}

// The memory flash never suspends, so no other borrow can happen while
// one of these operations holds the chip.
#[allow(clippy::await_holding_refcell_ref)]
impl ReadNorFlash for Chip {
    const READ_SIZE: usize = 1;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemoryFlashError> {
        self.0.borrow_mut().read(offset, bytes).await
    }
    fn capacity(&self) -> usize {
        self.0.borrow().capacity()
    }
}

#[allow(clippy::await_holding_refcell_ref)]
impl NorFlash for Chip {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), MemoryFlashError> {
        self.0.borrow_mut().erase(from, to).await
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemoryFlashError> {
        self.0.borrow_mut().write(offset, bytes).await
    }
}

impl MultiwriteNorFlash for Chip {}

/// The reading end of a line, which damages one byte in `every` (if set).
struct Noisy {
    line: &'static Line,
    every: Option<u64>,
    bytes: u64,
}

impl embedded_io_async::ErrorType for Noisy {
    type Error = Infallible;
}

impl embedded_io_async::Read for Noisy {
    async fn read(&mut self, buffer: &mut [u8]) -> Result<usize, Infallible> {
        let read = self.line.read(buffer).await;
        for byte in &mut buffer[..read] {
            self.bytes += 1;
            if self
                .every
                .is_some_and(|every| self.bytes.is_multiple_of(every))
            {
                *byte ^= 0x5A;
            }
        }
        Ok(read)
    }
}

/// The replicated state: every command applied, in order.
#[derive(Default)]
struct Journal {
    commands: Rc<RefCell<Vec<u32>>>,
}

impl StateMachine for Journal {
    fn apply(&mut self, _index: LogIndex, command: &[u8]) {
        let command = u32::from_le_bytes(command.try_into().expect("four bytes"));
        self.commands.borrow_mut().push(command);
    }

    fn snapshot(&self) -> Bytes {
        let commands = self.commands.borrow();
        commands
            .iter()
            .flat_map(|command| command.to_le_bytes())
            .collect()
    }

    fn restore(&mut self, data: &[u8]) {
        let mut commands = self.commands.borrow_mut();
        commands.clear();
        commands.extend(
            data.chunks_exact(4)
                .map(|bytes| u32::from_le_bytes(bytes.try_into().expect("four bytes"))),
        );
    }
}

struct Cluster {
    pool: LocalPool,
    chips: Vec<Chip>,
    /// `lines[from][to]`: the line board `from` writes and `to` reads.
    lines: Vec<Vec<&'static Line>>,
    mailboxes: Vec<&'static Mailbox<NoopRawMutex>>,
    journals: Vec<Rc<RefCell<Vec<u32>>>>,
    running: Vec<Option<RemoteHandle<()>>>,
    starts: u64,
    /// Each line damages one byte in this many, if set.
    noise: Option<u64>,
}

impl Cluster {
    fn new(noise: Option<u64>) -> Cluster {
        let mut cluster = Cluster {
            pool: LocalPool::new(),
            chips: (0..BOARDS)
                .map(|_| {
                    Chip(Rc::new(RefCell::new(MemoryFlash::erased(vec![
                        0;
                        FLASH_BYTES
                    ]))))
                })
                .collect(),
            lines: (0..BOARDS)
                .map(|_| {
                    (0..BOARDS)
                        .map(|_| &*Box::leak(Box::new(Line::new())))
                        .collect()
                })
                .collect(),
            mailboxes: (0..BOARDS)
                .map(|_| &*Box::leak(Box::new(Mailbox::new())))
                .collect(),
            journals: Vec::new(),
            running: (0..BOARDS).map(|_| None).collect(),
            starts: 0,
            noise,
        };
        for board in 0..BOARDS {
            cluster.journals.push(Rc::default());
            cluster.start(board);
        }
        cluster
    }

    fn id(board: usize) -> NodeId {
        NodeId(board as u64 + 1)
    }

    /// Starts board `board` on what its flash holds, with a state machine
    /// that starts empty (it is in RAM).
    fn start(&mut self, board: usize) {
        self.starts += 1;
        let peers = (0..BOARDS)
            .filter(|&other| other != board)
            .map(|other| Peer {
                id: Cluster::id(other),
                link: SerialLink::new(
                    Noisy {
                        line: self.lines[other][board],
                        every: self.noise,
                        bytes: 0,
                    },
                    self.lines[board][other],
                    2048,
                ),
            })
            .collect();
        let config = BoardConfig {
            snapshot_every: 16,
            max_message: 2048,
            ..BoardConfig::new(Cluster::id(board), (0..BOARDS).map(Cluster::id).collect())
        };
        let chip = self.chips[board].clone();
        let mailbox = self.mailboxes[board];
        let commands = Rc::new(RefCell::new(Vec::new()));
        self.journals[board] = Rc::clone(&commands);
        let rng = ChaCha8Rng::seed_from_u64(self.starts * 1000 + board as u64);
        let node = async move {
            let storage = FlashStorage::open(chip, 0..FLASH_BYTES as u32)
                .await
                .expect("the flash opens");
            let mut journal = Journal { commands };
            let stopped: Result<Infallible, _> =
                board::run(config, rng, storage, peers, &mut journal, mailbox).await;
            panic!("board {board} stopped: {:?}", stopped.err());
        };
        let handle = self
            .pool
            .spawner()
            .spawn_local_with_handle(node)
            .expect("spawns");
        self.running[board] = Some(handle);
    }

    /// A reset: the node's future is dropped; its flash stays.
    fn kill(&mut self, board: usize) {
        self.running[board] = None;
        self.journals[board] = Rc::default();
    }

    /// Moves the clock in steps of a millisecond until `done` holds, for
    /// at most `limit`; the time it took.
    fn run_until(
        &mut self,
        limit: StdDuration,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> StdDuration {
        let mut elapsed = StdDuration::ZERO;
        loop {
            self.pool.run_until_stalled();
            if done(self) {
                return elapsed;
            }
            assert!(elapsed < limit, "not done within {limit:?}");
            MockDriver::get().advance(Duration::from_millis(1));
            elapsed += StdDuration::from_millis(1);
        }
    }

    fn leader(&self) -> Option<usize> {
        (0..BOARDS).find(|&board| {
            self.running[board].is_some()
                && self.mailboxes[board]
                    .status()
                    .is_some_and(|status| status.role == Role::Leader)
        })
    }
}

/// Proposes commands `range` one after another to whichever board leads,
/// trying again (after a pause) when a board does not lead or does not
/// answer; counts the commands committed.
fn client(
    cluster: &Cluster,
    range: std::ops::Range<u32>,
    committed: Rc<Cell<u32>>,
) -> impl std::future::Future<Output = ()> + 'static {
    let mailboxes = cluster.mailboxes.clone();
    async move {
        for command in range {
            let mut target = 0;
            loop {
                let bytes = Bytes::copy_from_slice(&command.to_le_bytes());
                let answer = select(
                    mailboxes[target].propose(bytes),
                    Timer::after(Duration::from_millis(500)),
                )
                .await;
                match answer {
                    Either::First(Ok(_)) => break,
                    Either::First(Err(ProposeError::NotLeader {
                        leader: Some(leader),
                    })) => {
                        target = (leader.get() - 1) as usize;
                    }
                    Either::First(Err(_)) | Either::Second(()) => {
                        target = (target + 1) % BOARDS;
                        Timer::after(Duration::from_millis(50)).await;
                    }
                }
            }
            committed.set(committed.get() + 1);
        }
    }
}

#[test]
fn three_boards_elect_replicate_fail_over_and_take_a_board_back() {
    scenario(None);
    scenario(Some(499));
}

fn scenario(noise: Option<u64>) {
    let mut cluster = Cluster::new(noise);
    let election = cluster.run_until(StdDuration::from_secs(5), |cluster| {
        cluster.leader().is_some()
    });
    eprintln!("first leader elected after {election:?}");

    let committed = Rc::new(Cell::new(0));
    let first = client(&cluster, 0..40, Rc::clone(&committed));
    cluster.pool.spawner().spawn_local(first).expect("spawns");
    cluster.run_until(StdDuration::from_secs(10), |_| committed.get() == 40);

    let old_leader = cluster.leader().expect("a leader");
    cluster.kill(old_leader);
    let failover = cluster.run_until(StdDuration::from_secs(5), |cluster| {
        cluster.leader().is_some()
    });
    eprintln!("board {old_leader} reset; a new leader after {failover:?}");

    let second = client(&cluster, 40..80, Rc::clone(&committed));
    cluster.pool.spawner().spawn_local(second).expect("spawns");
    cluster.run_until(StdDuration::from_secs(10), |_| committed.get() == 80);

    // The old leader comes back on its flash, which holds every command it
    // acknowledged as leader, and catches up.
    let kept = futures::executor::block_on(FlashStorage::open(
        cluster.chips[old_leader].clone(),
        0..FLASH_BYTES as u32,
    ))
    .expect("the flash opens")
    .state()
    .last_index();
    assert!(
        kept >= LogIndex(40),
        "the reset board's flash holds {kept:?}"
    );
    cluster.start(old_leader);
    cluster.run_until(StdDuration::from_secs(10), |cluster| {
        let lengths: Vec<usize> = cluster
            .journals
            .iter()
            .map(|journal| journal.borrow().len())
            .collect();
        lengths.iter().all(|&len| len == lengths[0] && len >= 80)
    });
    let journals: Vec<Vec<u32>> = cluster
        .journals
        .iter()
        .map(|journal| journal.borrow().clone())
        .collect();
    assert!(journals.iter().all(|journal| journal == &journals[0]));
    for command in 0..80 {
        assert!(
            journals[0].contains(&command),
            "command {command} was committed"
        );
    }
    let mut bad_frames = 0;
    for board in 0..BOARDS {
        let status = cluster.mailboxes[board].status().expect("running");
        eprintln!("{status:?}");
        bad_frames += status.bad_frames;
        // Every board took a snapshot (one every 16 entries) and keeps it
        // in flash.
        let stored = futures::executor::block_on(FlashStorage::open(
            cluster.chips[board].clone(),
            0..FLASH_BYTES as u32,
        ))
        .expect("the flash opens")
        .state()
        .snapshot_index();
        assert!(
            stored >= LogIndex(64),
            "board {board} stored a snapshot at {stored:?}"
        );
    }
    // Damage shows as frames dropped, never as anything else.
    assert_eq!(bad_frames > 0, noise.is_some(), "{bad_frames} bad frames");
}
