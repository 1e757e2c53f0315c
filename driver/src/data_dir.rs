//! Choosing the store for a node's data directory.

use std::io;
use std::path::Path;

use crate::storage::Storage;
use crate::wal::WalStorage;

/// Opens the store in a node's data directory: a [`WalStorage`] (the
/// append-only log, the default), or, for a directory that already holds
/// a redb store (`kontiki.redb`, written by an earlier release), that
/// store as `DiskStorage` (with the `disk` feature), so that an upgraded
/// node finds its state.
pub fn open_data_dir(dir: impl AsRef<Path>) -> io::Result<Box<dyn Storage>> {
    let dir = dir.as_ref();
    #[cfg(feature = "disk")]
    if crate::disk::DiskStorage::is_in(dir) {
        return Ok(Box::new(crate::disk::DiskStorage::open(dir)?));
    }
    Ok(Box::new(WalStorage::open(dir)?))
}
