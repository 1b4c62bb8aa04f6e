//! The runbook engine wired to the local runtime: backend, file journal, file lock and epoch, file
//! reports, all under `<state>/local/runs/`. The CLI (`--target local`), the supervisor's automation and
//! drills use this one place, so they share one journal, one lock and one epoch counter.

use std::path::Path;

use lifeboat_runbook::{DrSettings, Engine, FileCoordination, FileJournal, FileReportSink};

use crate::backend::LocalBackend;
use crate::error::Result;
use crate::runtime::Runtime;

pub struct LocalDr {
    pub backend: LocalBackend,
    pub journal: FileJournal,
    pub coordination: FileCoordination,
    pub reports: FileReportSink,
    pub settings: DrSettings,
}

impl LocalDr {
    /// The runbook plumbing of the runtime in `state_dir` (`local.state_dir`); the runtime must be up.
    pub fn open(state_dir: &Path) -> Result<Self> {
        Ok(Self::for_runtime(Runtime::open_up(state_dir)?))
    }

    pub fn for_runtime(runtime: Runtime) -> Self {
        let runs = runtime.layout().runs_dir();
        let reports = runtime.layout().reports_dir();
        let settings = dr_settings(&runtime);
        LocalDr {
            backend: LocalBackend::new(runtime),
            journal: FileJournal::new(runs.join("journal")),
            coordination: FileCoordination::new(runs.join("coordination")),
            reports: FileReportSink::new(reports),
            settings,
        }
    }

    pub fn runtime(&self) -> &Runtime {
        self.backend.runtime()
    }

    /// An engine over these parts (add progress and options with its builder methods).
    pub fn engine(&self) -> Engine<'_> {
        Engine::new(
            &self.backend,
            &self.journal,
            &self.coordination,
            &self.coordination,
            &self.reports,
        )
    }
}

/// The runbooks' settings for this runtime: the `dr` section recorded at `up`, with the regions and the
/// write lease always taken from the runtime itself.
pub fn dr_settings(runtime: &Runtime) -> DrSettings {
    let local = runtime.settings();
    let mut settings: DrSettings = serde_json::from_value(local.dr.clone()).unwrap_or_default();
    settings.primary_region = local.primary_region.clone();
    settings.standby_region = local.standby_region.clone();
    settings.write_lease_ms = u64::from(local.lease_ms);
    settings
}
