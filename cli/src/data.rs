//! The store's data, as every other module of the store sees it.

use bytes::Bytes;

/// The keys and their values: a persistent (copy-on-write) B-tree map,
/// whose clone shares everything and costs O(1) — the point-in-time view
/// a snapshot encodes while writes go on — and whose order makes equal
/// stores encode to equal snapshots.
pub type Map = imbl::OrdMap<Bytes, Bytes>;
