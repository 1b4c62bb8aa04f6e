//! The journal in files: one directory per run under a root, `events.jsonl` appended line by line with an
//! fsync after every event (and of the directory when a run is created), so a run killed at any instant
//! leaves every event it was told was written.
//!
//! The local runtime keeps it under its state directory (`<state_dir>/runs/<run id>/events.jsonl`); the
//! file report sink writes `report.json` / `report.txt` beside it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::BoxFuture;
use crate::journal::{Journal, JournalError, JournalEvent};
use crate::model::RunId;

const EVENTS_FILE: &str = "events.jsonl";

#[derive(Debug, Clone)]
pub struct FileJournal {
    root: PathBuf,
}

impl FileJournal {
    /// A journal rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileJournal { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one run.
    pub fn run_dir(&self, run_id: &RunId) -> PathBuf {
        self.root.join(run_id.as_str())
    }

    fn events_path(&self, run_id: &RunId) -> PathBuf {
        self.run_dir(run_id).join(EVENTS_FILE)
    }

    fn storage(path: &Path, e: impl std::fmt::Display) -> JournalError {
        JournalError::Storage {
            location: path.display().to_string(),
            detail: e.to_string(),
        }
    }

    fn append_line(path: &Path, event: &JournalEvent, create: bool) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(event).map_err(|e| Self::storage(path, e))?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(create)
            .open(path)
            .map_err(|e| Self::storage(path, e))?;
        // One write call per event: an event is either wholly in the file or (torn by a crash mid-write)
        // an unterminated last line, which `read` ignores.
        file.write_all(&line).map_err(|e| Self::storage(path, e))?;
        file.sync_data().map_err(|e| Self::storage(path, e))?;
        Ok(())
    }
}

impl Journal for FileJournal {
    fn create<'a>(
        &'a self,
        run_id: &'a RunId,
        first: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            fs::create_dir_all(&self.root).map_err(|e| Self::storage(&self.root, e))?;
            let dir = self.run_dir(run_id);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(JournalError::AlreadyExists(run_id.clone()));
                }
                Err(e) => return Err(Self::storage(&dir, e)),
            }
            Self::append_line(&self.events_path(run_id), first, true)?;
            sync_dir(&dir).map_err(|e| Self::storage(&dir, e))?;
            sync_dir(&self.root).map_err(|e| Self::storage(&self.root, e))?;
            Ok(())
        })
    }

    fn append<'a>(
        &'a self,
        run_id: &'a RunId,
        event: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            let path = self.events_path(run_id);
            if !path.exists() {
                return Err(JournalError::UnknownRun(run_id.clone()));
            }
            Self::append_line(&path, event, false)
        })
    }

    fn read<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalEvent>, JournalError>> {
        Box::pin(async move {
            let path = self.events_path(run_id);
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(JournalError::UnknownRun(run_id.clone()));
                }
                Err(e) => return Err(Self::storage(&path, e)),
            };
            let mut events = Vec::new();
            let complete = match text.rfind('\n') {
                Some(end) => &text[..end],
                None => "",
            };
            for (index, line) in complete.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let event = serde_json::from_str(line).map_err(|e| JournalError::Corrupt {
                    run: run_id.clone(),
                    detail: format!("{} line {}: {e}", path.display(), index + 1),
                })?;
                events.push(event);
            }
            Ok(events)
        })
    }

    fn list<'a>(&'a self) -> BoxFuture<'a, Result<Vec<RunId>, JournalError>> {
        Box::pin(async move {
            let entries = match fs::read_dir(&self.root) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Self::storage(&self.root, e)),
            };
            let mut ids = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| Self::storage(&self.root, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if entry.path().join(EVENTS_FILE).is_file()
                    && let Ok(id) = RunId::parse(name)
                {
                    ids.push(id);
                }
            }
            ids.sort();
            Ok(ids)
        })
    }
}

/// Makes a directory entry change (create, rename) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `path` so that readers see either the old content or the whole new one: a temporary file in the
/// same directory, fsync'd, then renamed over `path`, then the directory fsync'd.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
