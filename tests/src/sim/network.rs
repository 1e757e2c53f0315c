//! The simulated network: per-message delay, loss, duplication and
//! reordering, plus isolation and (one-way) link cuts. It never touches a
//! clock or a socket; the cluster asks it what arrives next.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use kontiki::{Instant, Message, NodeId};
use rand_08::Rng;
use rand_chacha_03::ChaCha8Rng;

/// How the simulated network treats each message.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Shortest one-way delay.
    pub delay_min: Duration,
    /// Longest one-way delay (delays are uniform in `[delay_min, delay_max]`).
    pub delay_max: Duration,
    /// Probability that a message is lost.
    pub loss_probability: f64,
    /// Probability that a message is delivered twice (each copy with its own
    /// delay).
    pub duplicate_probability: f64,
    /// Probability that a message is held back for a long delay instead,
    /// which reorders it behind many later ones.
    pub long_delay_probability: f64,
    /// Shortest long delay.
    pub long_delay_min: Duration,
    /// Longest long delay.
    pub long_delay_max: Duration,
    /// Probability that a response (not a request) is held back for a
    /// long delay: labrpc's "long reordering" of replies. The delay is
    /// drawn as labrpc draws it: 200 ms plus a uniform delay up to a
    /// uniform bound of at most 2000 ms (so 200–2200 ms, mostly short).
    pub reply_long_delay_probability: f64,
}

impl NetworkConfig {
    /// Every message arrives once, within a millisecond, in roughly the
    /// order sent.
    pub fn reliable() -> NetworkConfig {
        NetworkConfig {
            delay_min: Duration::from_micros(100),
            delay_max: Duration::from_millis(1),
            loss_probability: 0.0,
            duplicate_probability: 0.0,
            long_delay_probability: 0.0,
            long_delay_min: Duration::ZERO,
            long_delay_max: Duration::ZERO,
            reply_long_delay_probability: 0.0,
        }
    }

    /// This network with labrpc's long reordering: two thirds of the
    /// responses are delayed 200–2200 ms.
    pub fn with_long_reordering(self) -> NetworkConfig {
        NetworkConfig {
            reply_long_delay_probability: 2.0 / 3.0,
            ..self
        }
    }

    /// MIT 6.824's unreliable labrpc network: 10% of messages lost and a
    /// delay of 0–27 ms.
    pub fn unreliable() -> NetworkConfig {
        NetworkConfig {
            delay_min: Duration::ZERO,
            delay_max: Duration::from_millis(27),
            loss_probability: 0.1,
            ..NetworkConfig::reliable()
        }
    }

    /// Everything at once: loss, duplication, jitter and long reordering.
    pub fn chaotic() -> NetworkConfig {
        NetworkConfig {
            delay_min: Duration::from_micros(500),
            delay_max: Duration::from_millis(30),
            loss_probability: 0.1,
            duplicate_probability: 0.05,
            long_delay_probability: 0.05,
            long_delay_min: Duration::from_millis(100),
            long_delay_max: Duration::from_millis(1_000),
            ..NetworkConfig::reliable()
        }
    }
}

/// A message on its way.
#[derive(Clone, Debug)]
pub(crate) struct Envelope {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    /// The incarnation of `to` the message was sent to: a restarted node
    /// never receives what was addressed to its predecessor.
    pub(crate) to_incarnation: u64,
    pub(crate) message: Message,
}

struct Scheduled {
    deliver_at: Instant,
    /// Breaks ties between equal delivery times in sending order, so runs
    /// are deterministic.
    sequence: u64,
    envelope: Envelope,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap pops the greatest, we want the earliest.
        (other.deliver_at, other.sequence).cmp(&(self.deliver_at, self.sequence))
    }
}

/// Why the network did not deliver a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// The sender or receiver is isolated, or the link is cut.
    Disconnected,
    /// Random loss.
    Dropped,
    /// The receiver crashed or restarted since the message was sent.
    ReceiverGone,
}

impl Loss {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Loss::Disconnected => "disconnected",
            Loss::Dropped => "lost",
            Loss::ReceiverGone => "receiver gone",
        }
    }
}

pub(crate) struct Network {
    pub(crate) config: NetworkConfig,
    in_flight: BinaryHeap<Scheduled>,
    next_sequence: u64,
    isolated: BTreeSet<NodeId>,
    /// One-way cuts: `(from, to)` means nothing from `from` reaches `to`.
    cut_links: BTreeSet<(NodeId, NodeId)>,
}

impl Network {
    pub(crate) fn new(config: NetworkConfig) -> Network {
        Network {
            config,
            in_flight: BinaryHeap::new(),
            next_sequence: 0,
            isolated: BTreeSet::new(),
            cut_links: BTreeSet::new(),
        }
    }

    pub(crate) fn can_deliver(&self, from: NodeId, to: NodeId) -> bool {
        !self.isolated.contains(&from)
            && !self.isolated.contains(&to)
            && !self.cut_links.contains(&(from, to))
    }

    pub(crate) fn is_isolated(&self, node: NodeId) -> bool {
        self.isolated.contains(&node)
    }

    pub(crate) fn isolate(&mut self, node: NodeId) {
        self.isolated.insert(node);
    }

    pub(crate) fn reconnect(&mut self, node: NodeId) {
        self.isolated.remove(&node);
    }

    pub(crate) fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut_links.insert((from, to));
    }

    pub(crate) fn heal(&mut self) {
        self.isolated.clear();
        self.cut_links.clear();
    }

    /// Puts `envelope` on the wire at `now`; returns the number of copies
    /// scheduled, or why none was.
    pub(crate) fn send(
        &mut self,
        now: Instant,
        rng: &mut ChaCha8Rng,
        envelope: Envelope,
    ) -> Result<usize, Loss> {
        if !self.can_deliver(envelope.from, envelope.to) {
            return Err(Loss::Disconnected);
        }
        if chance(rng, self.config.loss_probability) {
            return Err(Loss::Dropped);
        }
        let is_reply = matches!(
            envelope.message,
            Message::RequestVoteResponse(_) | Message::AppendEntriesResponse(_)
        );
        let mut copies = 1;
        if chance(rng, self.config.duplicate_probability) {
            let delay = self.random_delay(rng, is_reply);
            self.schedule(now + delay, envelope.clone());
            copies += 1;
        }
        let delay = self.random_delay(rng, is_reply);
        self.schedule(now + delay, envelope);
        Ok(copies)
    }

    fn random_delay(&self, rng: &mut ChaCha8Rng, is_reply: bool) -> Duration {
        if is_reply && chance(rng, self.config.reply_long_delay_probability) {
            let bound = uniform(rng, Duration::ZERO, Duration::from_millis(2000));
            Duration::from_millis(200) + uniform(rng, Duration::ZERO, bound)
        } else if chance(rng, self.config.long_delay_probability) {
            uniform(rng, self.config.long_delay_min, self.config.long_delay_max)
        } else {
            uniform(rng, self.config.delay_min, self.config.delay_max)
        }
    }

    fn schedule(&mut self, deliver_at: Instant, envelope: Envelope) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.in_flight.push(Scheduled {
            deliver_at,
            sequence,
            envelope,
        });
    }

    /// When the next message arrives, if any is in flight.
    pub(crate) fn next_delivery_at(&self) -> Option<Instant> {
        self.in_flight.peek().map(|scheduled| scheduled.deliver_at)
    }

    /// Takes the next message due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Envelope> {
        if self.in_flight.peek()?.deliver_at <= now {
            self.in_flight.pop().map(|scheduled| scheduled.envelope)
        } else {
            None
        }
    }

    pub(crate) fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Takes message `position` (modulo the number in flight, in a
    /// deterministic order) whenever it is due: an adversary choosing what
    /// arrives next.
    pub(crate) fn take_any(&mut self, position: usize) -> Option<Envelope> {
        self.take_scheduled(position)
            .map(|scheduled| scheduled.envelope)
    }

    /// Adds a second copy of message `position` (counted as
    /// [`take_any`](Network::take_any) counts), due when the original is;
    /// returns whether any message was in flight.
    pub(crate) fn duplicate_any(&mut self, position: usize) -> bool {
        let Some(original) = self.take_scheduled(position) else {
            return false;
        };
        self.schedule(original.deliver_at, original.envelope.clone());
        self.in_flight.push(original);
        true
    }

    fn take_scheduled(&mut self, position: usize) -> Option<Scheduled> {
        if self.in_flight.is_empty() {
            return None;
        }
        let mut all = std::mem::take(&mut self.in_flight).into_vec();
        // `into_vec` order depends only on the pushes and pops made, so
        // the choice is deterministic.
        let taken = all.swap_remove(position % all.len());
        self.in_flight = BinaryHeap::from(all);
        Some(taken)
    }
}

/// True with probability `probability`.
pub(crate) fn chance(rng: &mut ChaCha8Rng, probability: f64) -> bool {
    probability > 0.0 && rng.gen_bool(probability.min(1.0))
}

/// A duration uniform in `[min, max]`.
pub(crate) fn uniform(rng: &mut ChaCha8Rng, min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    let micros = rng.gen_range(min.as_micros() as u64..=max.as_micros() as u64);
    Duration::from_micros(micros)
}
