//! Pieces the stateright models share: a stateless RNG, and the one rule
//! every model checks on each apply (state machine safety).

use kontiki::{Entry, PersistedState};
use rand_core::{Infallible, TryRng};

/// An RNG that always draws zero: deterministic and stateless, so it adds
/// nothing to a model's state space (every election timeout is the
/// minimum, and the model checker, not the RNG, chooses who times out).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ZeroRng;

/// An infallible `TryRng` is a `rand_core::Rng`, which is what a node takes.
impl TryRng for ZeroRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        dest.fill(0);
        Ok(())
    }
}

/// Records that node `id` applied `entry`, given `applied`, the first
/// entry any node applied at each index (position + 1): state machine
/// safety holds if every node applies the same entry at each index, with
/// no gap. Returns the violation, if any.
pub fn record_apply(applied: &mut Vec<Entry>, id: u64, entry: Entry) -> Result<(), String> {
    let at = (entry.index.get() - 1) as usize;
    match applied.get(at) {
        Some(agreed) if *agreed != entry => Err(format!(
            "state machine safety: n{id} applied {entry:?} where {agreed:?} was applied"
        )),
        Some(_) => Ok(()),
        None if at == applied.len() => {
            applied.push(entry);
            Ok(())
        }
        None => Err(format!("n{id} applied past a gap")),
    }
}

/// Log matching (§5.3) over what each node persisted: wherever two logs
/// hold an entry with the same index and term, they are identical up to
/// it.
pub fn logs_match<'a>(persisted: impl Iterator<Item = &'a PersistedState> + Clone) -> bool {
    for (first, a) in persisted.clone().enumerate() {
        for b in persisted.clone().skip(first + 1) {
            let common = a.entries.len().min(b.entries.len());
            for at in (0..common).rev() {
                if a.entries[at].term == b.entries[at].term {
                    if a.entries[..=at] != b.entries[..=at] {
                        return false;
                    }
                    break;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use kontiki::{LogIndex, Term};

    use super::*;

    fn log(terms: &[u64]) -> PersistedState {
        PersistedState {
            entries: terms
                .iter()
                .enumerate()
                .map(|(at, &term)| Entry::noop(LogIndex(at as u64 + 1), Term(term)))
                .collect(),
            ..PersistedState::default()
        }
    }

    #[test]
    fn logs_that_agree_on_an_entry_must_agree_before_it() {
        let logs = [log(&[1, 1, 2]), log(&[1, 1]), log(&[1, 3])];
        assert!(logs_match(logs.iter()));
        let mut command = log(&[1, 1, 2]);
        command.entries[0] = Entry::command(LogIndex(1), Term(1), &b"x"[..]);
        let broken = [log(&[1, 1, 2]), command];
        assert!(!logs_match(broken.iter()));
    }
}
