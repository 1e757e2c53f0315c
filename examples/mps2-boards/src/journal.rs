//! The replicated state machine: a count of the commands applied and a
//! digest of them in order, so that boards can compare what they applied
//! without keeping it.

use bytes::Bytes;
use core::cell::Cell;
use critical_section::Mutex;
use kontiki::LogIndex;
use kontiki_embassy::board::StateMachine;

/// What the state machine holds: the commands applied, and their digest.
#[derive(Clone, Copy, Default)]
pub struct Applied {
    pub count: u64,
    pub digest: u64,
}

/// The state, where the reporting task can read it.
pub static APPLIED: Mutex<Cell<Applied>> = Mutex::new(Cell::new(Applied {
    count: 0,
    digest: FNV_OFFSET,
}));

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

pub struct Journal;

impl StateMachine for Journal {
    fn apply(&mut self, _index: LogIndex, command: &[u8]) {
        critical_section::with(|cs| {
            let cell = APPLIED.borrow(cs);
            let mut applied = cell.get();
            applied.count += 1;
            for &byte in command {
                applied.digest = (applied.digest ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
            }
            cell.set(applied);
        });
    }

    fn snapshot(&self) -> Bytes {
        let applied = critical_section::with(|cs| APPLIED.borrow(cs).get());
        let mut data = [0; 16];
        data[..8].copy_from_slice(&applied.count.to_le_bytes());
        data[8..].copy_from_slice(&applied.digest.to_le_bytes());
        Bytes::copy_from_slice(&data)
    }

    fn restore(&mut self, data: &[u8]) {
        let word = |at: usize| {
            data.get(at..at + 8)
                .and_then(|bytes| bytes.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        let applied = Applied {
            count: word(0),
            digest: word(8),
        };
        critical_section::with(|cs| APPLIED.borrow(cs).set(applied));
    }
}
