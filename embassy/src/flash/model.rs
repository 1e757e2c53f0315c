//! NOR flash kept in memory, with NOR's rules and its power cuts.
//!
//! [`MemoryFlash`] behaves as the `embedded-storage` contract says a NOR
//! chip that allows a word to be programmed more than once
//! ([`MultiwriteNorFlash`]) does: an erase sets a whole page to `0xFF`, a
//! write programs aligned words and can only clear bits (the result is
//! the old value AND the new), and power lost in the middle of an
//! operation leaves the bits being cleared, or the page being erased,
//! undefined. Host tests use it with the power cut at every step
//! of a workload; a firmware can use it over memory that outlives a reset
//! (QEMU's file-backed RAM, say) as its flash.

use alloc::vec;
use alloc::vec::Vec;

use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// The bytes one write step programs.
const WORD: usize = 4;

/// Why a flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryFlashError {
    /// An offset or length not aligned as the operation needs.
    NotAligned,
    /// Past the end of the flash.
    OutOfBounds,
    /// The power failed during this operation or before it; nothing more
    /// is done until it is restored.
    PowerCut,
}

impl NorFlashError for MemoryFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            MemoryFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            MemoryFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            MemoryFlashError::PowerCut => NorFlashErrorKind::Other,
        }
    }
}

/// NOR flash in `memory` (any byte buffer), erased in pages of
/// `ERASE_SIZE` bytes and written in 4-byte words.
pub struct MemoryFlash<B, const ERASE_SIZE: usize = 4096> {
    memory: B,
    /// How often each page was erased: the wear.
    erases: Vec<u32>,
    /// Write steps taken so far: each word programmed and each page erased
    /// is one.
    steps: u64,
    /// The step during which the power fails, if one is set.
    cut_at: Option<u64>,
    powered: bool,
    /// What an interrupted operation leaves behind.
    noise: u64,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, const ERASE_SIZE: usize> MemoryFlash<B, ERASE_SIZE> {
    /// Flash over `memory`, whose contents are kept as they are (a fresh
    /// chip is all `0xFF`: see [`MemoryFlash::erased`]).
    ///
    /// # Panics
    ///
    /// If the memory is not a whole number of pages, or a page is not a
    /// whole number of words.
    pub fn new(memory: B) -> MemoryFlash<B, ERASE_SIZE> {
        let len = memory.as_ref().len();
        assert!(
            ERASE_SIZE.is_multiple_of(WORD) && len.is_multiple_of(ERASE_SIZE),
            "flash of {len} bytes is not a whole number of {ERASE_SIZE}-byte pages"
        );
        MemoryFlash {
            memory,
            erases: vec![0; len / ERASE_SIZE],
            steps: 0,
            cut_at: None,
            powered: true,
            noise: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The memory, as the flash holds it now.
    pub fn memory(&self) -> &[u8] {
        self.memory.as_ref()
    }

    /// The memory back.
    pub fn into_memory(self) -> B {
        self.memory
    }

    /// How often each page has been erased, page by page.
    pub fn erase_counts(&self) -> &[u32] {
        &self.erases
    }

    /// The write steps taken so far (words programmed and pages erased).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Makes the power fail during write step `step` (counted as
    /// [`steps`](MemoryFlash::steps) counts): that step is left half done,
    /// undefined as NOR leaves it, and every operation after it fails
    /// until [`restore_power`](MemoryFlash::restore_power). `seed` picks
    /// what the half-done step leaves behind.
    pub fn cut_power_at(&mut self, step: u64, seed: u64) {
        self.cut_at = Some(step);
        self.noise = seed | 1;
    }

    /// Whether the power has failed.
    pub fn power_failed(&self) -> bool {
        !self.powered
    }

    /// Powers the flash up again, as after a reset, with no cut set.
    pub fn restore_power(&mut self) {
        self.powered = true;
        self.cut_at = None;
    }

    /// Takes one write step: `Ok(true)` to perform it whole, `Ok(false)`
    /// when the power fails during it.
    fn step(&mut self) -> Result<bool, MemoryFlashError> {
        if !self.powered {
            return Err(MemoryFlashError::PowerCut);
        }
        let this = self.steps;
        self.steps += 1;
        if self.cut_at == Some(this) {
            self.powered = false;
            return Ok(false);
        }
        Ok(true)
    }

    /// Pseudo-random bits for what an interrupted step leaves (xorshift:
    /// only its spread matters, not its quality).
    fn next_noise(&mut self) -> u64 {
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 7;
        self.noise ^= self.noise << 17;
        self.noise
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<usize, MemoryFlashError> {
        let offset = offset as usize;
        if !offset.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(MemoryFlashError::NotAligned);
        }
        match offset.checked_add(len) {
            Some(end) if end <= self.memory.as_ref().len() => Ok(offset),
            _ => Err(MemoryFlashError::OutOfBounds),
        }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> MemoryFlash<B> {
    /// Flash of 4 KiB pages over `memory`, erased first.
    pub fn erased(mut memory: B) -> MemoryFlash<B> {
        memory.as_mut().fill(0xFF);
        MemoryFlash::new(memory)
    }
}

impl<B, const ERASE_SIZE: usize> ErrorType for MemoryFlash<B, ERASE_SIZE> {
    type Error = MemoryFlashError;
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, const ERASE_SIZE: usize> ReadNorFlash
    for MemoryFlash<B, ERASE_SIZE>
{
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemoryFlashError> {
        if !self.powered {
            return Err(MemoryFlashError::PowerCut);
        }
        let start = self.check(offset, bytes.len(), 1)?;
        bytes.copy_from_slice(&self.memory.as_ref()[start..start + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.memory.as_ref().len()
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, const ERASE_SIZE: usize> NorFlash
    for MemoryFlash<B, ERASE_SIZE>
{
    const WRITE_SIZE: usize = WORD;
    const ERASE_SIZE: usize = ERASE_SIZE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), MemoryFlashError> {
        let len = (to as usize)
            .checked_sub(from as usize)
            .ok_or(MemoryFlashError::OutOfBounds)?;
        let start = self.check(from, len, ERASE_SIZE)?;
        for page in (start..start + len).step_by(ERASE_SIZE) {
            let whole = self.step()?;
            self.erases[page / ERASE_SIZE] += 1;
            if whole {
                self.memory.as_mut()[page..page + ERASE_SIZE].fill(0xFF);
            } else {
                // An interrupted erase leaves the page undefined: here,
                // some words erased and the rest as they were or garbage.
                for word in (page..page + ERASE_SIZE).step_by(WORD) {
                    let noise = self.next_noise();
                    let value = match noise % 3 {
                        0 => continue,
                        1 => [0xFF; WORD],
                        _ => (noise as u32).to_le_bytes(),
                    };
                    self.memory.as_mut()[word..word + WORD].copy_from_slice(&value);
                }
                return Err(MemoryFlashError::PowerCut);
            }
        }
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemoryFlashError> {
        let start = self.check(offset, bytes.len(), WORD)?;
        if !self.powered {
            return Err(MemoryFlashError::PowerCut);
        }
        for (at, word) in (start..).step_by(WORD).zip(bytes.chunks_exact(WORD)) {
            let whole = self.step()?;
            let mut value = u32::from_le_bytes(word.try_into().expect("a word"));
            if !whole {
                // Half programmed: some of the bits meant to be cleared
                // are, the rest still read as one.
                value |= self.next_noise() as u32;
            }
            let target = &mut self.memory.as_mut()[at..at + WORD];
            let old = u32::from_le_bytes((&*target).try_into().expect("a word"));
            target.copy_from_slice(&(old & value).to_le_bytes());
            if !whole {
                return Err(MemoryFlashError::PowerCut);
            }
        }
        Ok(())
    }
}

/// Programming a word again clears more of its bits, as on most NOR.
impl<B: AsRef<[u8]> + AsMut<[u8]>, const ERASE_SIZE: usize> MultiwriteNorFlash
    for MemoryFlash<B, ERASE_SIZE>
{
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;

    type Flash = MemoryFlash<Vec<u8>, 64>;

    #[test]
    fn nor_rules_hold() {
        let mut flash = Flash::new(vec![0xFF; 256]);
        block_on(flash.write(4, &[0xF1, 2, 3, 4])).expect("an erased word");
        // Writing again only clears bits.
        block_on(flash.write(4, &[0x1F, 0xFF, 0, 0xFF])).expect("written again");
        assert_eq!(flash.memory()[4..8], [0x11, 2, 0, 4]);
        assert_eq!(
            block_on(flash.write(2, &[0; 4])),
            Err(MemoryFlashError::NotAligned)
        );
        assert_eq!(
            block_on(flash.erase(0, 32)),
            Err(MemoryFlashError::NotAligned)
        );
        assert_eq!(
            block_on(flash.write(256, &[0; 4])),
            Err(MemoryFlashError::OutOfBounds)
        );
        block_on(flash.erase(0, 64)).expect("a page");
        assert!(flash.memory()[..64].iter().all(|&byte| byte == 0xFF));
        assert_eq!(flash.erase_counts(), [1, 0, 0, 0]);
        assert_eq!(flash.steps(), 3);
    }

    #[test]
    fn a_power_cut_stops_everything_until_power_returns() {
        let mut flash = Flash::new(vec![0xFF; 256]);
        flash.cut_power_at(1, 7);
        assert_eq!(
            block_on(flash.write(0, &[0; 8])),
            Err(MemoryFlashError::PowerCut)
        );
        // The first word is written, the second half programmed: a bit
        // meant to be cleared may still be set, none is set that was not.
        assert_eq!(flash.memory()[..4], [0; 4]);
        assert!(flash.power_failed());
        let mut byte = [0];
        assert_eq!(
            block_on(flash.read(0, &mut byte)),
            Err(MemoryFlashError::PowerCut)
        );
        flash.restore_power();
        block_on(flash.read(0, &mut byte)).expect("powered");
        block_on(flash.erase(0, 64)).expect("powered");
        assert!(flash.memory()[..64].iter().all(|&byte| byte == 0xFF));
    }
}
