//! Reading a log file back: the state its frames build, and how its
//! written part ends.

use kontiki::{HardState, PersistedState};

use super::frame::{decode_body, frame_at, FrameAt, FILE_HEADER_LEN};

/// What a log file holds.
pub(super) struct Replay {
    /// The state its frames build, up to the first frame that is not whole.
    pub(super) state: PersistedState,
    /// Where the next frame goes: just after the last whole frame.
    pub(super) end: usize,
    /// The sequence number the next frame takes.
    pub(super) next_sequence: u64,
    /// How the written part ends.
    pub(super) ending: Ending,
}

/// How a file's written part ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// With a whole frame, zeros after it.
    Clean,
    /// With a frame cut short and nothing whole after it: the write a
    /// crash interrupted, never reported done. The bytes up to
    /// `dirty_until` are what it left.
    Torn {
        /// Where the last byte that is not zero ends.
        dirty_until: usize,
    },
    /// With a frame that is not whole although a later frame is: damage
    /// at rest. The state holds what came before it, and the hard state
    /// of the newest frame found after it.
    Damaged,
    /// With no whole frame at all: not even the hard state is known.
    Unreadable,
}

/// Replays `file` (a whole log file of `generation`, its header checked).
pub(super) fn replay(file: &[u8], generation: u64) -> Replay {
    let mut state = PersistedState::default();
    let mut at = FILE_HEADER_LEN;
    let mut last_sequence: Option<u64> = None;
    loop {
        let frame = match frame_at(file, at, generation) {
            // Every file starts with a frame: zeros there are damage.
            FrameAt::End if last_sequence.is_none() => break,
            FrameAt::End => {
                return Replay {
                    state,
                    end: at,
                    next_sequence: sequence_after(last_sequence),
                    ending: Ending::Clean,
                }
            }
            FrameAt::Frame(frame)
                if last_sequence.is_none_or(|last| last.checked_add(1) == Some(frame.sequence)) =>
            {
                frame
            }
            FrameAt::Frame(_) | FrameAt::Bad => break,
        };
        // A whole frame whose records do not parse or do not continue the
        // log can only come from a bug: the log is lost from there, and
        // its hard state (it was written whole) is kept.
        let applied = decode_body(frame.body)
            .is_some_and(|writes| writes.into_iter().all(|write| state.apply(write).is_ok()));
        state.hard_state = frame.hard_state;
        last_sequence = Some(frame.sequence);
        if !applied {
            let newest = newest_frame_after(file, at, generation, last_sequence);
            return damaged(state, at, last_sequence, newest);
        }
        at = frame.end;
    }
    // The frame at `at` is not whole. A whole frame later in the file
    // means it was written whole once: damage. None means it is the write
    // a crash cut short.
    let newest = newest_frame_after(file, at, generation, last_sequence);
    if last_sequence.is_none() || newest.is_some() {
        return damaged(state, at, last_sequence, newest);
    }
    Replay {
        state,
        end: at,
        next_sequence: sequence_after(last_sequence),
        ending: Ending::Torn {
            dirty_until: file
                .iter()
                .rposition(|&byte| byte != 0)
                .map_or(at, |last| (last + 1).max(at)),
        },
    }
}

/// The replay of a file damaged at `at`: `state` as built before, with
/// the hard state of `newest`, the newest whole frame after `at`, if any.
fn damaged(
    mut state: PersistedState,
    at: usize,
    last_sequence: Option<u64>,
    newest: Option<(u64, HardState)>,
) -> Replay {
    let ending = match newest {
        Some((_, hard_state)) => {
            state.hard_state = hard_state;
            Ending::Damaged
        }
        None if last_sequence.is_none() => Ending::Unreadable,
        None => Ending::Damaged,
    };
    Replay {
        state,
        end: at,
        next_sequence: sequence_after(newest.map(|(sequence, _)| sequence).or(last_sequence)),
        ending,
    }
}

/// The sequence the next frame takes after the frame numbered `last` (0
/// in a file with none).
fn sequence_after(last: Option<u64>) -> u64 {
    last.map_or(0, |last| last.wrapping_add(1))
}

/// The sequence and hard state of the newest whole frame after `at` whose sequence
/// follows `last` (any sequence when `last` is `None`), searching every
/// frame boundary a frame could have had.
fn newest_frame_after(
    file: &[u8],
    at: usize,
    generation: u64,
    last: Option<u64>,
) -> Option<(u64, HardState)> {
    let mut newest: Option<(u64, HardState)> = None;
    let mut candidate = at + 8;
    while candidate + 16 <= file.len() {
        let sequence = u64::from_le_bytes(
            file[candidate + 8..candidate + 16]
                .try_into()
                .expect("eight bytes"),
        );
        let follows = last.is_none_or(|last| sequence > last);
        if follows && newest.is_none_or(|(newest, _)| sequence > newest) {
            if let FrameAt::Frame(frame) = frame_at(file, candidate, generation) {
                newest = Some((frame.sequence, frame.hard_state));
            }
        }
        candidate += 8;
    }
    newest
}
