//! Three kontiki cores on one Cortex-M3 (QEMU's lm3s6965evb), exchanging
//! messages through an in-memory queue on a virtual clock: they elect a
//! leader, the leader is crashed, the other two elect a new one, the
//! crashed node rejoins, and ten commands are replicated and applied on
//! all three. The exit code tells CI whether it worked.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use embedded_alloc::LlffHeap as Heap;
use kontiki::{
    Command, Config, EntryKind, Input, Instant, Message, Node, NodeId, Output, PersistedState, Role,
};
use panic_semihosting as _;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static HEAP: Heap = Heap::empty();

const HEAP_SIZE: usize = 32 * 1024;
const IDS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

struct Peer {
    node: Option<Node<ChaCha8Rng>>,
    persisted: PersistedState,
    timer: Option<Instant>,
    /// Commands applied in this node's current life.
    applied_commands: usize,
}

struct Cluster {
    peers: Vec<Peer>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    now: Instant,
}

impl Cluster {
    fn new() -> Cluster {
        let mut cluster = Cluster {
            peers: Vec::new(),
            network: VecDeque::new(),
            now: Instant::ZERO,
        };
        for id in IDS {
            cluster.peers.push(Peer {
                node: None,
                persisted: PersistedState::default(),
                timer: None,
                applied_commands: 0,
            });
            cluster.start(id);
        }
        cluster
    }

    fn start(&mut self, id: NodeId) {
        let position = (id.get() - 1) as usize;
        let rng = ChaCha8Rng::seed_from_u64(id.get() * 7919 + self.now.as_micros());
        let persisted = self.peers[position].persisted.clone();
        // "Stable storage" is RAM written at once, with no write to report.
        let config = Config {
            leader_persists_in_parallel: false,
            ..Config::default()
        };
        let node = Node::new(id, &IDS, config, rng, persisted, self.now)
            .unwrap_or_else(|error| panic!("node {} refused to start: {}", id, error));
        self.peers[position].node = Some(node);
        self.peers[position].applied_commands = 0;
        self.perform(position);
    }

    fn crash(&mut self, id: NodeId) {
        let peer = &mut self.peers[(id.get() - 1) as usize];
        peer.node = None;
        peer.timer = None;
    }

    fn perform(&mut self, position: usize) {
        let from = IDS[position];
        let peer = &mut self.peers[position];
        let Some(node) = peer.node.as_mut() else {
            return;
        };
        for output in node.drain_outputs() {
            match output {
                // "Stable storage" here is RAM that outlives the node.
                Output::Persist(write) => peer
                    .persisted
                    .apply(write)
                    .expect("the core persists in order"),
                Output::Apply(entry) => {
                    if entry.kind == EntryKind::Command {
                        peer.applied_commands += 1;
                    }
                }
                Output::Send { to, message } => self.network.push_back((from, to, message)),
                Output::SetTimer { deadline } => peer.timer = Some(deadline),
                Output::RoleChanged { role, term, .. } => {
                    if role == Role::Leader {
                        hprintln!("[{}] node {} leads term {}", self.now, from, term);
                    }
                }
                // This firmware takes no snapshots and serves no reads.
                Output::RestoreSnapshot(_)
                | Output::InstallSnapshot(_)
                | Output::ReadReady { .. }
                | Output::ReadsFailed { .. } => {}
            }
        }
    }

    /// Delivers queued messages (one millisecond each), or jumps to the
    /// earliest timer.
    fn step(&mut self) {
        if let Some((from, to, message)) = self.network.pop_front() {
            self.now = self.now + core::time::Duration::from_millis(1);
            let position = (to.get() - 1) as usize;
            if let Some(node) = self.peers[position].node.as_mut() {
                let _ = node.handle(self.now, Input::Message { from, message });
                self.perform(position);
            }
            return;
        }
        let next = self
            .peers
            .iter()
            .enumerate()
            .filter_map(|(position, peer)| peer.timer.map(|deadline| (deadline, position)))
            .min();
        if let Some((deadline, position)) = next {
            self.now = self.now.max(deadline);
            self.peers[position].timer = None;
            if let Some(node) = self.peers[position].node.as_mut() {
                let _ = node.handle(self.now, Input::Timer);
                self.perform(position);
            }
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.peers
            .iter()
            .filter_map(|peer| peer.node.as_ref())
            .filter(|node| node.role() == Role::Leader)
            .max_by_key(|node| node.term())
            .map(|node| node.id())
    }

    fn run_until_leader(&mut self, not: Option<NodeId>) -> Option<NodeId> {
        for _ in 0..10_000 {
            match self.leader() {
                Some(leader) if Some(leader) != not => return Some(leader),
                _ => self.step(),
            }
        }
        None
    }
}

/// Measures the stack's high-water mark: the free stack is painted with a
/// pattern at start, and the deepest word no longer holding it shows how
/// far the stack grew.
mod stack {
    const PAINT: u32 = 0xDEAD_BEEF;
    /// Left unpainted below the current stack pointer: `paint`'s own frame.
    const MARGIN: usize = 256;

    extern "C" {
        static _stack_start: u32;
        static _stack_end: u32;
    }

    fn bounds() -> (usize, usize) {
        // Only the addresses of the linker's symbols are taken.
        (
            &raw const _stack_end as usize,
            &raw const _stack_start as usize,
        )
    }

    /// Paints everything between the end of static memory and a little
    /// below the current stack pointer.
    pub fn paint() {
        let (bottom, _) = bounds();
        let here = cortex_m::register::msp::read() as usize - MARGIN;
        let mut word = bottom;
        while word < here {
            // SAFETY: between the end of static data and below the live
            // stack: memory nothing else uses yet.
            unsafe { (word as *mut u32).write_volatile(PAINT) };
            word += 4;
        }
    }

    /// The most stack used since `paint`, in bytes.
    pub fn peak() -> usize {
        let (bottom, top) = bounds();
        let mut word = bottom;
        // SAFETY: reads of RAM between the linker's stack bounds.
        while word < top && unsafe { (word as *const u32).read_volatile() } == PAINT {
            word += 4;
        }
        top - word
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    {
        use core::mem::MaybeUninit;
        static mut HEAP_MEMORY: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
        // SAFETY: runs once, before the first allocation, and nothing else
        // touches HEAP_MEMORY.
        unsafe { HEAP.init(&raw mut HEAP_MEMORY as usize, HEAP_SIZE) }
    }
    hprintln!("kontiki on a Cortex-M3: three nodes, one election, one failover");
    let mut cluster = Cluster::new();
    let Some(first) = cluster.run_until_leader(None) else {
        hprintln!("FAIL: no leader elected");
        debug::exit(debug::EXIT_FAILURE);
        loop {}
    };
    cluster.crash(first);
    hprintln!("[{}] node {} crashed", cluster.now, first);
    let Some(second) = cluster.run_until_leader(Some(first)) else {
        hprintln!("FAIL: no new leader after the crash");
        debug::exit(debug::EXIT_FAILURE);
        loop {}
    };
    cluster.start(first);
    for _ in 0..200 {
        cluster.step();
    }
    let agreed = cluster
        .peers
        .iter()
        .filter_map(|peer| peer.node.as_ref())
        .all(|node| node.leader() == Some(second));
    hprintln!(
        "[{}] node {} restarted; all nodes follow node {}: {}",
        cluster.now,
        first,
        second,
        agreed
    );
    let leader_position = (second.get() - 1) as usize;
    for command in 0..10u8 {
        let now = cluster.now;
        if let Some(node) = cluster.peers[leader_position].node.as_mut() {
            let _ = node.handle(
                now,
                Input::Command(Command::Propose(alloc::vec![command; 16].into())),
            );
        }
        cluster.perform(leader_position);
        for _ in 0..50 {
            cluster.step();
        }
    }
    let applied: Vec<usize> = cluster
        .peers
        .iter()
        .map(|peer| peer.applied_commands)
        .collect();
    let replicated = applied.iter().all(|&count| count == 10);
    hprintln!(
        "[{}] ten commands applied per node: {:?}; heap in use {} bytes, peak stack {} bytes",
        cluster.now,
        applied,
        HEAP.used(),
        stack::peak()
    );
    let passed = agreed && replicated;
    debug::exit(if passed {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {}
}
