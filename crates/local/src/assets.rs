//! Asset replication: the active region's asset directory mirrored into the passive one (the local
//! counterpart of S3 cross-region replication). The supervisor runs [`sync`] every probe interval.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LocalError, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOutcome {
    pub copied: usize,
    pub removed: usize,
    /// Files in the source after the pass.
    pub files: usize,
}

fn differs(src: &std::fs::Metadata, dst: Option<std::fs::Metadata>) -> bool {
    match dst {
        None => true,
        Some(dst) => src.len() != dst.len() || src.modified().ok() > dst.modified().ok(),
    }
}

/// Files of `from` that `to` lacks or holds in an older version (a flat directory of objects).
pub fn pending(from: &Path, to: &Path) -> Result<usize> {
    let mut count = 0;
    for entry in read_dir(from)? {
        let meta = entry
            .metadata()
            .map_err(|e| LocalError::io("reading an asset", entry.path(), e))?;
        if meta.is_file() && differs(&meta, std::fs::metadata(to.join(entry.file_name())).ok()) {
            count += 1;
        }
    }
    Ok(count)
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(|e| e.ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(LocalError::io("listing assets", dir, e)),
    }
}

/// Mirrors `from` into `to`: copies new and changed files (through a temporary name, so a reader never
/// sees half a file) and removes files `from` no longer has.
pub fn sync(from: &Path, to: &Path) -> Result<SyncOutcome> {
    crate::layout::ensure_dir(to)?;
    let mut outcome = SyncOutcome::default();
    let mut names = std::collections::HashSet::new();
    for entry in read_dir(from)? {
        let meta = entry
            .metadata()
            .map_err(|e| LocalError::io("reading an asset", entry.path(), e))?;
        if !meta.is_file() {
            continue;
        }
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(".lifeboat-tmp-") {
            continue;
        }
        names.insert(name.clone());
        outcome.files += 1;
        let target = to.join(&name);
        if differs(&meta, std::fs::metadata(&target).ok()) {
            let tmp = to.join(format!(".lifeboat-tmp-{}", name.to_string_lossy()));
            std::fs::copy(entry.path(), &tmp)
                .map_err(|e| LocalError::io("copying an asset", entry.path(), e))?;
            std::fs::rename(&tmp, &target)
                .map_err(|e| LocalError::io("placing a replicated asset", &target, e))?;
            outcome.copied += 1;
        }
    }
    for entry in read_dir(to)? {
        let name = entry.file_name();
        if !names.contains(&name) && entry.metadata().is_ok_and(|m| m.is_file()) {
            std::fs::remove_file(entry.path())
                .map_err(|e| LocalError::io("removing a deleted asset", entry.path(), e))?;
            outcome.removed += 1;
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_new_changed_and_deleted_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("one.png"), b"1").unwrap();
        std::fs::write(a.join("two.png"), b"22").unwrap();
        assert_eq!(pending(&a, &b).unwrap(), 2);
        let first = sync(&a, &b).unwrap();
        assert_eq!((first.copied, first.removed, first.files), (2, 0, 2));
        assert_eq!(std::fs::read(b.join("two.png")).unwrap(), b"22");
        assert_eq!(pending(&a, &b).unwrap(), 0);

        std::fs::write(a.join("two.png"), b"222").unwrap();
        std::fs::remove_file(a.join("one.png")).unwrap();
        let second = sync(&a, &b).unwrap();
        assert_eq!((second.copied, second.removed, second.files), (1, 1, 1));
        assert!(!b.join("one.png").exists());
        assert_eq!(std::fs::read(b.join("two.png")).unwrap(), b"222");
    }
}
