//! The DR runbook engine: plans of idempotent steps, a durable journal, a lock and a fencing epoch, over
//! traits so AWS and the local runtime share one set of runbooks.
//!
//! # What a backend implements
//!
//! A target environment (AWS, the local two-region runtime, the in-memory test double) plugs into the
//! engine through these traits:
//!
//! - [`DrBackend`] ([`backend`]): the operations the runbooks perform (pre-scale, fence, drain, promote,
//!   shift traffic, verify, notify, record the active region, re-protect) and the readiness observation.
//!   Every operation must be idempotent: the engine re-runs a step that started but has no end event.
//! - [`Journal`] ([`journal`]): durable, append-only run history. [`FileJournal`] is provided (used by the
//!   local runtime); AWS stores it in the DynamoDB journal table.
//! - [`RunLock`] and [`EpochStore`] ([`coordination`]): one run per environment, and the fencing epoch.
//!   [`MemoryCoordination`] and [`FileCoordination`] are provided.
//! - [`ReportSink`] ([`report`]): where the report of every run goes. [`FileReportSink`] is provided; AWS
//!   uploads to S3.
//!
//! The engine itself ([`Engine`]) owns ordering, parallel stages, timeouts, retries, graceful/ungraceful
//! behaviour, resume, the lock lease renewal and the report. It performs no I/O of its own: everything goes
//! through the traits above. The readiness verdict ([`readiness::assess`]) and the DR automation policy
//! ([`policy`]) are pure functions.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod coordination;
pub mod engine;
pub mod file_coordination;
pub mod file_journal;
pub mod journal;
pub mod memory;
pub mod model;
pub mod plan;
pub mod policy;
pub mod readiness;
pub mod report;
pub mod settings;

pub use backend::{
    BackendError, BackendErrorKind, DrBackend, Notification, StepContext, StepOutput,
};
pub use coordination::{EpochStore, LockError, LockLease, LockOwner, MemoryCoordination, RunLock};
pub use engine::{Engine, EngineError, EngineOptions, RunRequest, RunResult, Slice};
pub use file_coordination::FileCoordination;
pub use file_journal::FileJournal;
pub use journal::{Journal, JournalError, JournalEvent, RunSummary};
pub use model::{Mode, RunId, RunKind, RunOutcome};
pub use plan::{Plan, RetryPolicy, Stage, StepAction, StepSpec};
pub use readiness::{Readiness, RegionReadiness, Verdict};
pub use report::{FileReportSink, Report, ReportSink};
pub use settings::DrSettings;

/// A boxed, `Send` future: the return type of the trait methods, so the traits stay object-safe
/// (`Box<dyn DrBackend>`) without a macro crate.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
