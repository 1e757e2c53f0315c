//! TLS material in use, and where to reread it from: shared by every
//! clone, swapped whole on a reload that passes its checks, kept on one
//! that does not.

use std::fmt;
use std::sync::{Arc, Mutex};

use super::TlsError;
use crate::sync::lock;

/// Material `T` built from files described by `F` (or given once, from
/// memory, with nothing to reread).
pub(crate) struct Reloadable<F, T> {
    files: Option<Arc<F>>,
    current: Arc<Mutex<Arc<T>>>,
}

impl<F, T> Clone for Reloadable<F, T> {
    fn clone(&self) -> Self {
        Reloadable {
            files: self.files.clone(),
            current: Arc::clone(&self.current),
        }
    }
}

impl<F: fmt::Debug, T> fmt::Debug for Reloadable<F, T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Reloadable")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl<F, T> Reloadable<F, T> {
    /// `material`, built from `files` if it was read from files.
    pub(crate) fn new(files: Option<F>, material: T) -> Reloadable<F, T> {
        Reloadable {
            files: files.map(Arc::new),
            current: Arc::new(Mutex::new(Arc::new(material))),
        }
    }

    /// The material in use now.
    pub(crate) fn current(&self) -> Arc<T> {
        Arc::clone(&lock(&self.current))
    }

    /// Builds the material anew from the files with `build` and uses it
    /// from now on; on an error the material in use stays. Material from
    /// memory has nothing to reread: it stays, and this succeeds.
    pub(crate) fn reload(
        &self,
        build: impl FnOnce(&F) -> Result<T, TlsError>,
    ) -> Result<(), TlsError> {
        let Some(files) = &self.files else {
            return Ok(());
        };
        let material = build(files)?;
        *lock(&self.current) = Arc::new(material);
        Ok(())
    }
}
