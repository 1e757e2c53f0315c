//! One board of a three-board kontiki cluster, on QEMU's mps2-an385 (a
//! Cortex-M3): embassy's executor runs the node (`kontiki_embassy::board`)
//! with serial lines to the two other boards on UART1 and UART2, its
//! state in flash that outlives a reset, a client task that proposes
//! commands while this board leads, and a task that reports the node's
//! state over semihosting. Which board it is (1, 2 or 3) comes from the
//! semihosting command line. `run.py` starts three of them and checks
//! what they do.

#![no_std]
#![no_main]

extern crate alloc;

mod clock;
mod heap;
mod journal;
mod uart;

use alloc::vec::Vec;

use bytes::Bytes;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::{Executor, Spawner};
use embassy_futures::select::{select, Either};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{with_timeout, Duration, Instant, Timer};
use kontiki::{NodeId, Role};
use kontiki_embassy::board::{self, BoardConfig, Mailbox, Peer};
use kontiki_embassy::flash::{FlashStorage, MemoryFlash};
use kontiki_embassy::SerialLink;
use panic_semihosting as _;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use static_cell::StaticCell;

use heap::CountingHeap;
use journal::{Journal, APPLIED};
use uart::{Irq, Reader, Writer, PORTS};

#[global_allocator]
static HEAP: CountingHeap = CountingHeap::empty();
const HEAP_BYTES: usize = 64 * 1024;

/// The node's flash: the board's PSRAM, which QEMU backs with a file
/// (`-object memory-backend-file,share=on`), so it outlives the process.
const FLASH_START: usize = 0x2100_0000;
/// Four 4 KiB pages, the fewest the storage takes: so that its halves
/// take turns, checkpoints included, many times in a run.
const FLASH_BYTES: usize = 16 * 1024;

/// The cluster: boards 1, 2 and 3.
const BOARDS: [u64; 3] = [1, 2, 3];
/// The client stops proposing once this much of the log is committed.
const COMMANDS: u64 = 600;

static MAILBOX: Mailbox<CriticalSectionRawMutex> = Mailbox::new();
static EXECUTOR: StaticCell<Executor> = StaticCell::new();

#[entry]
fn main() -> ! {
    static mut ARENA: [u8; HEAP_BYTES] = [0; HEAP_BYTES];
    // SAFETY: the arena is this function's (cortex-m-rt hands it over
    // once), given to the heap before anything is allocated.
    unsafe { HEAP.init(ARENA.as_mut_ptr() as usize, HEAP_BYTES) };
    let id = board_id();
    let peripherals = cortex_m::Peripherals::take().expect("taken once");
    clock::start(peripherals.SYST);
    for port in &PORTS {
        port.enable();
        // SAFETY: the handler (`DefaultHandler`) is ready for them.
        unsafe {
            cortex_m::peripheral::NVIC::unmask(Irq(port.rx_irq));
            cortex_m::peripheral::NVIC::unmask(Irq(port.tx_irq()));
        }
    }
    hprintln!("board {} started", id);
    EXECUTOR
        .init(Executor::new())
        .run(|spawner| start(spawner, id))
}

fn start(spawner: Spawner, id: u64) {
    spawner.spawn(node(id).expect("one node"));
    spawner.spawn(client(id).expect("one client"));
    spawner.spawn(report(id).expect("one reporter"));
}

/// The board's number, from the semihosting command line (`... <id>`).
fn board_id() -> u64 {
    let mut line = [0u8; 64];
    let block = [line.as_mut_ptr() as usize, line.len()];
    // SAFETY: SYS_GET_CMDLINE writes at most `line.len()` bytes to `line`,
    // the last of them a zero.
    let failed =
        unsafe { cortex_m_semihosting::syscall(cortex_m_semihosting::nr::GET_CMDLINE, &block) };
    let end = line
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(line.len());
    let words = core::str::from_utf8(&line[..end]).unwrap_or("");
    match words.split(' ').last().and_then(|word| word.parse().ok()) {
        Some(id) if failed == 0 && BOARDS.contains(&id) => id,
        _ => {
            hprintln!("give the board's number (1, 2 or 3) as the last semihosting argument");
            debug::exit(debug::EXIT_FAILURE);
            unreachable!()
        }
    }
}

#[embassy_executor::task]
async fn node(id: u64) {
    // SAFETY: the PSRAM is this task's alone, and stays mapped.
    let memory = unsafe { core::slice::from_raw_parts_mut(FLASH_START as *mut u8, FLASH_BYTES) };
    let flash: MemoryFlash<&'static mut [u8]> = MemoryFlash::new(memory);
    let opened = Instant::now();
    let storage = match FlashStorage::open(flash, 0..FLASH_BYTES as u32).await {
        Ok(storage) => storage,
        Err(error) => {
            hprintln!("board {} cannot use its flash: {}", id, error);
            debug::exit(debug::EXIT_FAILURE);
            return;
        }
    };
    let state = storage.state();
    hprintln!(
        "flash board={} generation={} term={} snapshot={} last={} open_ms={}",
        id,
        storage.stats().generation,
        state.hard_state.term.get(),
        state.snapshot_index().get(),
        state.last_index().get(),
        opened.elapsed().as_millis()
    );
    let config = BoardConfig::new(
        NodeId(id),
        BOARDS.iter().map(|&board| NodeId(board)).collect(),
    );
    let peers: Vec<_> = BOARDS
        .iter()
        .filter(|&&other| other != id)
        .zip(&PORTS)
        .map(|(&other, port)| Peer {
            id: NodeId(other),
            link: SerialLink::new(Reader(port), Writer(port), config.max_message),
        })
        .collect();
    let seed = id * 7919 + state.hard_state.term.get() * 31 + u64::from(storage.stats().generation);
    let stopped = board::run(
        config,
        ChaCha8Rng::seed_from_u64(seed),
        storage,
        peers,
        &mut Journal,
        &MAILBOX,
    )
    .await;
    hprintln!("board {} stopped: {:?}", id, stopped.err());
    debug::exit(debug::EXIT_FAILURE);
}

/// Proposes commands, one at a time, while this board leads and until
/// the log holds enough of them.
#[embassy_executor::task]
async fn client(id: u64) {
    let mut next: u32 = 0;
    loop {
        let leads = MAILBOX
            .status()
            .is_some_and(|status| status.role == Role::Leader && status.commit.get() < COMMANDS);
        if !leads {
            Timer::after_millis(20).await;
            continue;
        }
        let command = Bytes::copy_from_slice(&((id as u32) << 24 | next).to_le_bytes());
        match with_timeout(Duration::from_secs(1), MAILBOX.propose(command)).await {
            Ok(Ok(_)) => next += 1,
            _ => Timer::after_millis(20).await,
        }
    }
}

/// Reports each change of leader at once, and the node's state every
/// 250 ms.
#[embassy_executor::task]
async fn report(id: u64) {
    let mut watch = MAILBOX.watch().expect("a watcher");
    let mut leader = None;
    let mut next_line = Instant::now();
    loop {
        let timer = Timer::at(next_line);
        let status = match select(watch.changed(), timer).await {
            Either::First(status) => status,
            Either::Second(()) => {
                next_line += Duration::from_millis(250);
                let Some(status) = MAILBOX.status() else {
                    continue;
                };
                let applied = critical_section::with(|cs| APPLIED.borrow(cs).get());
                hprintln!(
                    "status board={} role={:?} term={} commit={} applied={} count={} digest={:016x} sent={} received={} dropped={} bad={} heap={} heap_peak={} uptime_ms={}",
                    id,
                    status.role,
                    status.term.get(),
                    status.commit.get(),
                    status.applied.get(),
                    applied.count,
                    applied.digest,
                    status.sent,
                    status.received,
                    status.dropped,
                    status.bad_frames,
                    HEAP.used(),
                    HEAP.peak(),
                    Instant::now().as_millis()
                );
                continue;
            }
        };
        let now_leads = (status.role == Role::Leader).then_some(status.term);
        if now_leads.is_some() && now_leads != leader {
            hprintln!(
                "leader board={} term={} uptime_ms={}",
                id,
                status.term.get(),
                Instant::now().as_millis()
            );
        }
        leader = now_leads;
    }
}

/// Every interrupt: the UARTs' are the only ones enabled (the board has
/// no vendor crate to name them).
#[exception]
unsafe fn DefaultHandler(irq: i16) {
    for port in &PORTS {
        if irq == port.rx_irq as i16 {
            port.on_receive();
        } else if irq == port.tx_irq() as i16 {
            port.on_transmit();
        }
    }
}
