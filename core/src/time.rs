//! The core's own notion of time. The core never reads a clock: the caller
//! passes `now` with every input, and the core answers with absolute
//! deadlines for the caller's timer.

use core::fmt;
use core::ops::Add;
use core::time::Duration;

/// A point on the caller's monotonic clock, in microseconds since an epoch
/// the caller chooses (boot, process start, the simulator's zero...).
///
/// Only differences and order matter to the core. A `u64` of microseconds
/// lasts over half a million years, so arithmetic saturates rather than wraps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant { micros: 0 };

    /// The instant `micros` microseconds after the epoch.
    #[must_use]
    pub const fn from_micros(micros: u64) -> Instant {
        Instant { micros }
    }

    /// The instant `millis` milliseconds after the epoch.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            micros: millis.saturating_mul(1000),
        }
    }

    /// Microseconds since the epoch.
    #[must_use]
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// How long after `earlier` this instant is; zero if it is not later.
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

/// Whole microseconds in `duration`, saturating at `u64::MAX`.
pub(crate) fn duration_as_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, duration: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(duration_as_micros(duration)),
        }
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.micros / 1_000_000,
            self.micros % 1_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn adding_a_duration_saturates_instead_of_wrapping() {
        let late = Instant::from_micros(u64::MAX - 5);
        assert_eq!(
            late + Duration::from_secs(1),
            Instant::from_micros(u64::MAX)
        );
    }

    #[test]
    fn duration_since_a_later_instant_is_zero() {
        let a = Instant::from_millis(10);
        let b = Instant::from_millis(20);
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(b.saturating_duration_since(a), Duration::from_millis(10));
    }

    #[test]
    fn display_shows_seconds_with_microseconds() {
        assert_eq!(Instant::from_micros(1_500_042).to_string(), "1.500042s");
    }
}
