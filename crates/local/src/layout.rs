//! Where everything lives under the state directory (`<local.state_dir>/local/`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{LocalError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout for a `local.state_dir` (the runtime uses its `local/` subdirectory). Relative paths are
    /// made absolute against the working directory, because the processes we start run elsewhere.
    pub fn new(state_dir: &Path) -> Result<Self> {
        let base = if state_dir.is_absolute() {
            state_dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| LocalError::io("reading the working directory", state_dir, e))?
                .join(state_dir)
        };
        Ok(Layout {
            root: base.join("local"),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn runtime_json(&self) -> PathBuf {
        self.root.join("runtime.json")
    }
    pub fn control_json(&self) -> PathBuf {
        self.root.join("control.json")
    }
    pub fn events_log(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }
    pub fn notifications_log(&self) -> PathBuf {
        self.root.join("notifications.jsonl")
    }
    pub fn supervisor_pid(&self) -> PathBuf {
        self.root.join("supervisor.pid")
    }
    pub fn supervisor_log(&self) -> PathBuf {
        self.root.join("supervisor.log")
    }
    /// Journals, locks, epochs and reports of the runbooks (the runbook crate's file implementations).
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }
    /// The database users' passwords (mode 0600): kept by `down` with the data they open, so the next `up`
    /// can start the same databases again.
    pub fn credentials_json(&self) -> PathBuf {
        self.root.join("credentials.json")
    }
    /// Reports of the runbooks, one directory per run (the runbook crate's file report sink writes there).
    pub fn reports_dir(&self) -> PathBuf {
        self.runs_dir().join("reports")
    }
    /// Rebuild work files of a region (the copy being applied; a marker while a rebuild is unfinished).
    pub fn rebuild_dir(&self, region: &str) -> PathBuf {
        self.region_dir(region).join("rebuild")
    }
    pub fn haproxy_dir(&self) -> PathBuf {
        self.root.join("haproxy")
    }
    pub fn haproxy_cfg(&self) -> PathBuf {
        self.haproxy_dir().join("haproxy.cfg")
    }
    pub fn haproxy_socket(&self) -> PathBuf {
        self.haproxy_dir().join("admin.sock")
    }
    pub fn haproxy_pid(&self) -> PathBuf {
        self.haproxy_dir().join("haproxy.pid")
    }
    pub fn haproxy_log(&self) -> PathBuf {
        self.haproxy_dir().join("haproxy.log")
    }
    pub fn region_dir(&self, region: &str) -> PathBuf {
        self.root.join("regions").join(region)
    }
    pub fn mariadb_dir(&self, region: &str) -> PathBuf {
        self.region_dir(region).join("mariadb")
    }
    pub fn mariadb_cnf(&self, region: &str) -> PathBuf {
        self.mariadb_dir(region).join("my.cnf")
    }
    pub fn mariadb_data(&self, region: &str) -> PathBuf {
        self.mariadb_dir(region).join("data")
    }
    pub fn mariadb_socket(&self, region: &str) -> PathBuf {
        self.mariadb_dir(region).join("mysqld.sock")
    }
    /// The pid we recorded when starting mariadbd (its own pid-file disappears on a clean shutdown only).
    pub fn mariadb_pid(&self, region: &str) -> PathBuf {
        self.mariadb_dir(region).join("spawned.pid")
    }
    pub fn mariadb_log(&self, region: &str) -> PathBuf {
        self.mariadb_dir(region).join("error.log")
    }
    pub fn storefront_pid(&self, region: &str) -> PathBuf {
        self.region_dir(region).join("storefront.pid")
    }
    pub fn storefront_log(&self, region: &str) -> PathBuf {
        self.region_dir(region).join("storefront.log")
    }
    pub fn assets_dir(&self, region: &str) -> PathBuf {
        self.region_dir(region).join("assets")
    }
    /// Present while a region is out (killed by a drill): the supervisor restarts nothing there.
    pub fn outage_marker(&self, region: &str) -> PathBuf {
        self.region_dir(region).join("OUTAGE")
    }
}

/// Writes `contents` to `path` atomically (temporary file, fsync, rename), so a reader or a crash never
/// sees half a file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_atomic_with_mode(path, contents, 0o644)
}

/// [`write_atomic`] for a file only its owner may read (one holding passwords): the file has `mode` from
/// the moment it is created, so no reader ever finds it open to others.
pub fn write_atomic_with_mode(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| LocalError::io("creating a directory", dir, e))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| LocalError::io("creating a file", &tmp, e))?;
    file.write_all(contents)
        .map_err(|e| LocalError::io("writing a file", &tmp, e))?;
    file.sync_all()
        .map_err(|e| LocalError::io("syncing a file", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path)
        .map_err(|e| LocalError::io("renaming a file into place", path, e))?;
    Ok(())
}

/// Creates a directory and its parents.
pub fn ensure_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| LocalError::io("creating a directory", path, e))
}
