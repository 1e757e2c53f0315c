//! The board's serial ports (Arm CMSDK APB UARTs) as embedded-io-async
//! readers and writers. Received bytes go, in the receive interrupt, into
//! a buffer the reader drains; when it is full the interrupt is masked and
//! the byte waits in the UART, which holds the line (QEMU then delivers
//! nothing more) until the reader has made room. The writer puts a byte
//! in the UART when its one-byte transmit buffer is free, and otherwise
//! sleeps until the transmit interrupt says it is.

use core::cell::Cell;
use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

use critical_section::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::Pipe;
use embassy_sync::signal::Signal;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTSTATUS: usize = 0x0C;
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;
const CTRL_TX_INTERRUPT: u32 = 1 << 2;
const CTRL_RX_INTERRUPT: u32 = 1 << 3;
const INTSTATUS_TX: u32 = 1 << 0;
const INTSTATUS_RX: u32 = 1 << 1;

/// Bytes received and not yet read, per port.
const BUFFER: usize = 1024;

/// One of the board's UARTs.
pub struct Port {
    base: usize,
    /// Its receive interrupt's number; the transmit interrupt's is the
    /// next.
    pub rx_irq: u16,
    received: Pipe<CriticalSectionRawMutex, BUFFER>,
    /// Raised by the transmit interrupt: the transmit buffer is free.
    sent: Signal<CriticalSectionRawMutex, ()>,
    /// The interrupt enable bits of CTRL, as the port's users want them.
    interrupts: Mutex<Cell<u32>>,
}

/// UART1 and UART2: the lines to the two peers.
pub static PORTS: [Port; 2] = [Port::new(0x4000_5000, 2), Port::new(0x4000_6000, 4)];

impl Port {
    const fn new(base: usize, rx_irq: u16) -> Port {
        Port {
            base,
            rx_irq,
            received: Pipe::new(),
            sent: Signal::new(),
            interrupts: Mutex::new(Cell::new(CTRL_RX_INTERRUPT)),
        }
    }

    /// Its transmit interrupt's number.
    pub fn tx_irq(&self) -> u16 {
        self.rx_irq + 1
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: a register of this UART, at its fixed address.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as above.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Changes the interrupts enabled, atomically with respect to the
    /// interrupt handlers, which change them too.
    fn interrupts(&self, change: impl FnOnce(u32) -> u32) {
        critical_section::with(|cs| {
            let enabled = self.interrupts.borrow(cs);
            enabled.set(change(enabled.get()));
            self.write(CTRL, CTRL_TX_ENABLE | CTRL_RX_ENABLE | enabled.get());
        });
    }

    /// Turns the port on, receive interrupt included. (The line's speed
    /// only matters to real hardware; QEMU wants a valid divider.)
    pub fn enable(&self) {
        self.write(BAUDDIV, 16);
        self.interrupts(|enabled| enabled);
    }

    /// The receive interrupt: moves received bytes into the buffer.
    pub fn on_receive(&self) {
        while self.read(STATE) & STATE_RX_FULL != 0 {
            if self.received.free_capacity() == 0 {
                // Full: leave the byte in the UART and stop listening
                // until the reader has made room.
                self.interrupts(|enabled| enabled & !CTRL_RX_INTERRUPT);
                return;
            }
            // Clear the interrupt before taking the byte, so that one
            // arriving right after it raises it again.
            self.write(INTSTATUS, INTSTATUS_RX);
            let byte = self.read(DATA) as u8;
            let _ = self.received.try_write(&[byte]);
        }
    }

    /// The transmit interrupt: the byte went out; wake the writer.
    pub fn on_transmit(&self) {
        self.write(INTSTATUS, INTSTATUS_TX);
        self.interrupts(|enabled| enabled & !CTRL_TX_INTERRUPT);
        self.sent.signal(());
    }

    /// Waits until the transmit buffer is free.
    async fn transmit_ready(&self) {
        while self.read(STATE) & STATE_TX_FULL != 0 {
            self.sent.reset();
            self.interrupts(|enabled| enabled | CTRL_TX_INTERRUPT);
            // The interrupt comes when the buffer empties; if it emptied
            // before the interrupt was enabled, this check sees it.
            if self.read(STATE) & STATE_TX_FULL != 0 {
                self.sent.wait().await;
            }
        }
    }
}

/// The reading half of a port.
pub struct Reader(pub &'static Port);

/// The writing half of a port.
pub struct Writer(pub &'static Port);

impl embedded_io_async::ErrorType for Reader {
    type Error = Infallible;
}

impl embedded_io_async::Read for Reader {
    async fn read(&mut self, buffer: &mut [u8]) -> Result<usize, Infallible> {
        let read = self.0.received.read(buffer).await;
        // There is room again: listen, and take at once a byte that may
        // be waiting in the UART.
        self.0.interrupts(|enabled| enabled | CTRL_RX_INTERRUPT);
        cortex_m::peripheral::NVIC::pend(Irq(self.0.rx_irq));
        Ok(read)
    }
}

impl embedded_io_async::ErrorType for Writer {
    type Error = Infallible;
}

impl embedded_io_async::Write for Writer {
    async fn write(&mut self, bytes: &[u8]) -> Result<usize, Infallible> {
        for &byte in bytes {
            self.0.transmit_ready().await;
            self.0.write(DATA, u32::from(byte));
        }
        Ok(bytes.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        self.0.transmit_ready().await;
        Ok(())
    }
}

/// An interrupt by number, for the NVIC.
#[derive(Clone, Copy)]
pub struct Irq(pub u16);

// SAFETY: the numbers used are the board's UART interrupts (0..32).
unsafe impl cortex_m::interrupt::InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}
