//! The in-memory environment the engine tests run against: backend, journal, lock and epoch, reports.

#![allow(
    dead_code,
    reason = "shared by several test binaries, each of which uses part of it"
)]

use std::collections::BTreeMap;

use lifeboat_runbook::memory::{MemoryBackend, MemoryJournal, MemoryReportSink};
use lifeboat_runbook::{Engine, JournalEvent, MemoryCoordination};

pub const EAST: &str = "us-east-1";
pub const WEST: &str = "us-west-2";

pub struct Env {
    pub backend: MemoryBackend,
    pub journal: MemoryJournal,
    pub coordination: MemoryCoordination,
    pub reports: MemoryReportSink,
}

impl Env {
    pub fn new() -> Self {
        Env {
            backend: MemoryBackend::new(EAST, WEST),
            journal: MemoryJournal::new(),
            coordination: MemoryCoordination::new(),
            reports: MemoryReportSink::new(),
        }
    }

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

/// How many times each step ended finally (succeeded or skipped) in `events`.
pub fn finished_counts(events: &[JournalEvent]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in events {
        if let JournalEvent::StepFinished { step, outcome, .. } = e
            && outcome.is_final()
        {
            *counts.entry(step.clone()).or_default() += 1;
        }
    }
    counts
}
