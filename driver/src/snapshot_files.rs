//! Snapshots as files in a directory: `<id>.snap` once finished,
//! `<id>.partial` while being written.
//!
//! A snapshot is written to its partial file, synced, renamed to its final
//! name and the directory synced: a crash leaves either no snapshot or the
//! whole one, and a partial file left by a crash is removed when the
//! directory is opened again.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::numbered_files::{self, remove, sync_dir};
use crate::snapshot_store::{missing, SnapshotReader, SnapshotRef, SnapshotSink, SnapshotStore};

/// The buffer between a snapshot's writer or reader and its file.
const BUFFER_BYTES: usize = 256 * 1024;
const FINISHED: &str = "snap";
const PARTIAL: &str = "partial";

/// A directory of snapshot files.
#[derive(Debug)]
pub struct FileSnapshots {
    dir: PathBuf,
    next_id: AtomicU64,
}

impl FileSnapshots {
    /// Opens (creating it if need be) the directory `dir`, removing what
    /// unfinished writes left there.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<FileSnapshots> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut last = 0;
        for (id, path, finished) in list(&dir)? {
            if finished {
                last = last.max(id);
            } else {
                remove(&path)?;
            }
        }
        Ok(FileSnapshots {
            dir,
            next_id: AtomicU64::new(last + 1),
        })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes every snapshot but `keep`: for a store opening, when no
    /// other snapshot can be on its way to becoming current.
    pub fn remove_all_but(&self, keep: Option<&SnapshotRef>) -> io::Result<()> {
        for (id, path, finished) in list(&self.dir)? {
            if finished && keep.is_none_or(|keep| keep.id != id) {
                remove(&path)?;
            }
        }
        Ok(())
    }

    fn path(&self, id: u64, extension: &str) -> PathBuf {
        self.dir.join(format!("{id:020}.{extension}"))
    }
}

impl SnapshotStore for FileSnapshots {
    fn create(&self) -> io::Result<Box<dyn SnapshotSink>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let partial = self.path(id, PARTIAL);
        let file = File::create(&partial)?;
        Ok(Box::new(FileSink {
            file: Some(BufWriter::with_capacity(BUFFER_BYTES, file)),
            id,
            len: 0,
            hasher: crc32fast::Hasher::new(),
            finished: self.path(id, FINISHED),
            partial,
            dir: self.dir.clone(),
        }))
    }

    fn open(&self, snapshot: &SnapshotRef) -> io::Result<Box<dyn SnapshotReader>> {
        let file = File::open(self.path(snapshot.id, FINISHED)).map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                missing(snapshot)
            } else {
                error
            }
        })?;
        Ok(Box::new(BufReader::with_capacity(BUFFER_BYTES, file)))
    }

    fn contains(&self, snapshot: &SnapshotRef) -> bool {
        fs::metadata(self.path(snapshot.id, FINISHED))
            .is_ok_and(|metadata| metadata.len() == snapshot.len)
    }

    fn retain_from(&self, current: &SnapshotRef) -> io::Result<()> {
        for (id, path, finished) in list(&self.dir)? {
            if finished && id < current.id {
                remove(&path)?;
            }
        }
        Ok(())
    }
}

/// A snapshot file being written.
struct FileSink {
    /// `None` once finished.
    file: Option<BufWriter<File>>,
    id: u64,
    len: u64,
    hasher: crc32fast::Hasher,
    partial: PathBuf,
    finished: PathBuf,
    dir: PathBuf,
}

impl io::Write for FileSink {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        let written = file.write(buffer)?;
        self.hasher.update(&buffer[..written]);
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), BufWriter::flush)
    }
}

impl SnapshotSink for FileSink {
    fn finish(mut self: Box<Self>) -> io::Result<SnapshotRef> {
        let file = self.file.take().ok_or(io::ErrorKind::BrokenPipe)?;
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.partial, &self.finished)?;
        sync_dir(&self.dir)?;
        Ok(SnapshotRef {
            id: self.id,
            len: self.len,
            crc32: self.hasher.clone().finalize(),
        })
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Unfinished: nothing of it stays.
            let _ = fs::remove_file(&self.partial);
        }
    }
}

/// The snapshot files in `dir`: id, path, and whether finished. Other
/// files are left alone.
fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf, bool)>> {
    Ok(numbered_files::list(dir, &[FINISHED, PARTIAL])?
        .into_iter()
        .map(|(id, path, extension)| (id, path, extension == FINISHED))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use crate::snapshot_store::{store_whole, CheckedReader};

    #[test]
    fn snapshots_survive_reopening_and_unfinished_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSnapshots::open(dir.path()).unwrap();
        let first = store_whole(&store, b"first snapshot").unwrap();
        let mut unfinished = store.create().unwrap();
        unfinished.write_all(b"half").unwrap();
        unfinished.flush().unwrap();
        // A crash: the partial file stays behind.
        std::mem::forget(unfinished);
        drop(store);

        let store = FileSnapshots::open(dir.path()).unwrap();
        let names: Vec<_> = list(dir.path()).unwrap();
        assert_eq!(names.len(), 1, "the partial file is gone: {names:?}");
        let data = CheckedReader::open(&store, first).unwrap().read_whole();
        assert_eq!(&data.unwrap()[..], b"first snapshot");
        let second = store_whole(&store, b"second").unwrap();
        assert!(second.id > first.id, "ids keep rising across reopening");
    }

    #[test]
    fn older_snapshots_are_removed_and_later_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSnapshots::open(dir.path()).unwrap();
        let [first, second, third] =
            [b"1", b"2", b"3"].map(|data| store_whole(&store, data).unwrap());
        let dropped = store.create().unwrap();
        drop(dropped);
        store.retain_from(&second).unwrap();
        assert!(!store.contains(&first));
        assert!(store.contains(&second));
        assert!(store.contains(&third));
        assert_eq!(
            list(dir.path()).unwrap().len(),
            2,
            "a dropped sink leaves no file"
        );
        store.remove_all_but(Some(&third)).unwrap();
        assert!(!store.contains(&second));
        assert!(store.contains(&third));
    }

    #[test]
    fn damage_to_a_file_is_found_when_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSnapshots::open(dir.path()).unwrap();
        let stored = store_whole(&store, &[7; 4096]).unwrap();
        let path = store.path(stored.id, FINISHED);
        let mut bytes = fs::read(&path).unwrap();
        bytes[100] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(store.contains(&stored), "same length");
        let error = CheckedReader::open(&store, stored).unwrap().read_whole();
        assert_eq!(error.unwrap_err().kind(), io::ErrorKind::InvalidData);
        fs::write(&path, &bytes[..10]).unwrap();
        assert!(!store.contains(&stored), "truncated");
    }
}
