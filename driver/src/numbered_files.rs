//! Files named by a number and an extension (`<number>.<extension>`),
//! as the snapshot files and the log files are, and the few operations
//! both keep them by.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The files in `dir` named `<number>.<extension>` for one of
/// `extensions`: number, path, and the extension. Other files are left
/// alone.
pub(crate) fn list<'a>(
    dir: &Path,
    extensions: &[&'a str],
) -> io::Result<Vec<(u64, PathBuf, &'a str)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let (Some(stem), Some(extension)) = (
            path.file_stem().and_then(|stem| stem.to_str()),
            path.extension().and_then(|extension| extension.to_str()),
        ) else {
            continue;
        };
        let (Ok(number), Some(&extension)) = (
            stem.parse::<u64>(),
            extensions.iter().find(|&&wanted| wanted == extension),
        ) else {
            continue;
        };
        files.push((number, path, extension));
    }
    Ok(files)
}

/// Removes `path`; one already gone is fine.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Makes the names in `dir` (files created, renamed, removed) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
