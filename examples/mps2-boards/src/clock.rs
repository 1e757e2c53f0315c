//! embassy-time's clock on the Cortex-M SysTick: a tick every millisecond
//! counts time, and wakes the timers that are due.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// The board's processor clock (QEMU's MPS2 runs its SysTick from it).
const CPU_HZ: u32 = 25_000_000;
/// embassy-time's tick rate (the crate's `tick-hz-1_000` feature).
const TICK_HZ: u32 = 1_000;

struct SysTickClock {
    ticks: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

impl Driver for SysTickClock {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let now = self.ticks.borrow(cs).get();
            let mut queue = self.queue.borrow(cs).borrow_mut();
            // Due already: wake it now rather than on the next tick.
            if queue.schedule_wake(at, waker) && at <= now {
                queue.next_expiration(now);
            }
        });
    }
}

embassy_time_driver::time_driver_impl!(static CLOCK: SysTickClock = SysTickClock {
    ticks: Mutex::new(Cell::new(0)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// Starts the tick.
pub fn start(mut systick: SYST) {
    systick.set_clock_source(SystClkSource::Core);
    systick.set_reload(CPU_HZ / TICK_HZ - 1);
    systick.clear_current();
    systick.enable_interrupt();
    systick.enable_counter();
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = CLOCK.ticks.borrow(cs);
        ticks.set(ticks.get() + 1);
        CLOCK
            .queue
            .borrow(cs)
            .borrow_mut()
            .next_expiration(ticks.get());
    });
}
