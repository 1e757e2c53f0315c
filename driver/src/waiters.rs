//! Proposers waiting for their entries, in log order, and readers waiting
//! for their read rounds, in round order.

use std::collections::VecDeque;

use kontiki::{LogIndex, NodeId, Term};

use crate::error::{ChangeError, ProposeError, ReadError, TransferError};

/// A proposer waiting for its entry, proposed in `term`.
pub(crate) struct Waiter<T> {
    pub(crate) term: Term,
    pub(crate) reply: EntryReply<T>,
}

/// Whom to tell once an entry is applied.
pub(crate) enum EntryReply<T> {
    /// A command's proposer, who hears the state machine's answer.
    Command(oneshot::Sender<Result<T, ProposeError>>),
    /// A membership change's requester, who hears the entry's index —
    /// once the entry is applied, or with `settled`, once the cluster has
    /// also left the joint configuration the entry entered.
    Change { reply: ChangeReply, settled: bool },
}

/// The answer to a membership change: the index of the configuration it
/// made.
pub(crate) type ChangeReply = oneshot::Sender<Result<LogIndex, ChangeError>>;

impl<T> Waiter<T> {
    /// Tells the proposer its entry will never be applied as proposed.
    pub(crate) fn fail(self, error: ProposeError) {
        match self.reply {
            EntryReply::Command(reply) => drop(reply.send(Err(error))),
            EntryReply::Change { reply, .. } => drop(reply.send(Err(error.into()))),
        }
    }
}

/// A leadership transfer the node's task waits to see end.
pub(crate) struct PendingTransfer {
    pub(crate) target: NodeId,
    /// When it is given up for lost if no leader is known by then: the
    /// core abandons a transfer after an election timeout, and a follower
    /// that knows no leader after two has seen the election fail.
    pub(crate) deadline: std::time::Instant,
    pub(crate) reply: oneshot::Sender<Result<(), TransferError>>,
}

/// A reader waiting for the leader to serve its read round.
pub(crate) type ReadReply = oneshot::Sender<Result<(), ReadError>>;

/// The readers of one node, by read round. Rounds are handed out in
/// increasing order and served or failed up to a round at a time, so a
/// queue serves here too.
#[derive(Default)]
pub(crate) struct ReadWaiters {
    queue: VecDeque<(u64, ReadReply)>,
}

impl ReadWaiters {
    /// Adds a reader of `round`.
    pub(crate) fn add(&mut self, round: u64, reply: ReadReply) {
        self.queue.push_back((round, reply));
    }

    /// Answers every reader of a round up to `round` with `result`.
    pub(crate) fn answer_through(&mut self, round: u64, result: Result<(), ReadError>) {
        while self.queue.front().is_some_and(|(first, _)| *first <= round) {
            if let Some((_, reply)) = self.queue.pop_front() {
                let _ = reply.send(result);
            }
        }
    }

    /// Fails every reader with `error`.
    pub(crate) fn fail_all(&mut self, error: ReadError) {
        self.answer_through(u64::MAX, Err(error));
    }
}

/// The waiters of one node, ordered by index. A leader appends at the end
/// of its log and entries are applied in index order, so a queue serves:
/// new waiters join at the back and applied ones leave from the front.
pub(crate) struct Waiters<T> {
    queue: VecDeque<(LogIndex, Waiter<T>)>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            queue: VecDeque::new(),
        }
    }
}

impl<T> Waiters<T> {
    /// Adds the waiter for the entry just appended at `index`. Waiters at
    /// `index` or beyond are for entries an earlier term wrote and this
    /// append overwrote: they hear that their entry was superseded.
    pub(crate) fn add(&mut self, index: LogIndex, waiter: Waiter<T>) {
        while self.queue.back().is_some_and(|(last, _)| *last >= index) {
            if let Some((_, overwritten)) = self.queue.pop_back() {
                overwritten.fail(ProposeError::Superseded);
            }
        }
        self.queue.push_back((index, waiter));
    }

    /// The waiter for the entry being applied at `index`, if any.
    pub(crate) fn take(&mut self, index: LogIndex) -> Option<Waiter<T>> {
        // Entries are applied once each, in order: a waiter before `index`
        // cannot remain, but should one, it must not wait forever.
        while self.queue.front().is_some_and(|(first, _)| *first < index) {
            if let Some((_, skipped)) = self.queue.pop_front() {
                skipped.fail(ProposeError::Superseded);
            }
        }
        match self.queue.front() {
            Some((first, _)) if *first == index => self.queue.pop_front().map(|(_, waiter)| waiter),
            _ => None,
        }
    }

    /// Fails the waiters up to `index`, which a snapshot from the leader
    /// covers: whether their entries committed there is unknown.
    pub(crate) fn fail_through(&mut self, index: LogIndex) {
        while self.queue.front().is_some_and(|(first, _)| *first <= index) {
            if let Some((_, covered)) = self.queue.pop_front() {
                covered.fail(ProposeError::OutcomeUnknown);
            }
        }
    }

    /// Fails every waiter with `error`.
    pub(crate) fn fail_all(&mut self, error: ProposeError) {
        for (_, waiter) in self.queue.drain(..) {
            waiter.fail(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    type Answer = oneshot::Receiver<Result<u64, ProposeError>>;

    fn command(term: u64) -> (Waiter<u64>, Answer) {
        let (reply, answer) = oneshot::channel();
        (
            Waiter {
                term: Term(term),
                reply: EntryReply::Command(reply),
            },
            answer,
        )
    }

    #[test]
    fn readers_are_answered_up_to_a_round_in_order() {
        let mut readers = ReadWaiters::default();
        let answers: Vec<_> = [1, 1, 2, 3]
            .into_iter()
            .map(|round| {
                let (reply, answer) = oneshot::channel();
                readers.add(round, reply);
                answer
            })
            .collect();
        readers.answer_through(2, Ok(()));
        let mut answers = answers.into_iter();
        for _ in 0..3 {
            assert_eq!(answers.next().map(|a| a.try_recv()), Some(Ok(Ok(()))));
        }
        let last = answers.next().expect("the round 3 reader");
        assert!(last.try_recv().is_err(), "round 3 still waits");
        readers.answer_through(3, Err(ReadError::NotLeader { leader: None }));
    }

    #[test]
    fn stopping_fails_every_reader() {
        let mut readers = ReadWaiters::default();
        let (reply, answer) = oneshot::channel();
        readers.add(7, reply);
        readers.fail_all(ReadError::Stopped);
        assert_eq!(block_on(answer), Ok(Err(ReadError::Stopped)));
    }

    #[test]
    fn waiters_leave_in_index_order() {
        let mut waiters = Waiters::default();
        let (first, _first_answer) = command(1);
        let (second, _second_answer) = command(1);
        waiters.add(LogIndex(3), first);
        waiters.add(LogIndex(4), second);
        assert!(waiters.take(LogIndex(2)).is_none());
        assert!(waiters.take(LogIndex(3)).is_some());
        assert!(waiters.take(LogIndex(4)).is_some());
        assert!(waiters.take(LogIndex(5)).is_none());
    }

    #[test]
    fn an_overwritten_entry_s_proposer_hears_superseded_not_stopped() {
        let mut waiters = Waiters::default();
        let (old_five, old_five_answer) = command(2);
        let (old_six, old_six_answer) = command(2);
        waiters.add(LogIndex(5), old_five);
        waiters.add(LogIndex(6), old_six);
        // Leader again in term 4, with its log cut back to index 4.
        let (new_five, _new_five_answer) = command(4);
        waiters.add(LogIndex(5), new_five);
        assert_eq!(block_on(old_five_answer), Ok(Err(ProposeError::Superseded)));
        assert_eq!(block_on(old_six_answer), Ok(Err(ProposeError::Superseded)));
        assert!(matches!(
            waiters.take(LogIndex(5)),
            Some(Waiter { term: Term(4), .. })
        ));
    }

    #[test]
    fn stopping_fails_every_waiter() {
        let mut waiters = Waiters::default();
        let (waiter, answer) = command(1);
        waiters.add(LogIndex(1), waiter);
        waiters.fail_all(ProposeError::Stopped);
        assert_eq!(block_on(answer), Ok(Err(ProposeError::Stopped)));
        assert!(waiters.take(LogIndex(1)).is_none());
    }
}
