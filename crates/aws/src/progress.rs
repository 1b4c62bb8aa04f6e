//! What the engine reports while it works, and what it asks. The CLI renders these (a live view on a terminal,
//! plain lines otherwise); tests record them.

use std::time::Duration;

use serde::Serialize;

use crate::changes::{ChangeCounts, StatefulRisk};

/// How a stack ended up in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Created {
        changes: ChangeCounts,
    },
    Updated {
        changes: ChangeCounts,
    },
    /// The change set was empty: deleted again, nothing executed.
    Unchanged,
    /// The first failing resource and its reason, or the API error.
    Failed {
        reason: String,
    },
    /// Confirmation for replacing or removing data was not given; the change set was deleted.
    Refused {
        risks: Vec<String>,
    },
    /// Not attempted because a stack it needs did not deploy (or, for destroy, a stack that needs it remains).
    Skipped {
        because: String,
    },
    Deleted,
    /// The stack was deleted, but CloudFormation had to leave these resources in the account (type, logical
    /// id, physical id, region, why); they are the user's to delete.
    DeletedRetaining {
        retained: Vec<String>,
    },
    /// Destroy found nothing to delete.
    Absent,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Outcome::Created { .. }
                | Outcome::Updated { .. }
                | Outcome::Unchanged
                | Outcome::Deleted
                | Outcome::DeletedRetaining { .. }
                | Outcome::Absent
        )
    }

    /// One word for tables and plain output.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Created { .. } => "created",
            Outcome::Updated { .. } => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed { .. } => "FAILED",
            Outcome::Refused { .. } => "refused",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Deleted => "deleted",
            Outcome::DeletedRetaining { .. } => "deleted",
            Outcome::Absent => "absent",
        }
    }

    pub fn detail(&self) -> Option<String> {
        match self {
            Outcome::Created { changes } | Outcome::Updated { changes } => Some(format!(
                "{} added, {} modified ({} replaced), {} removed",
                changes.add, changes.modify, changes.replace, changes.remove
            )),
            Outcome::Failed { reason } => Some(reason.clone()),
            Outcome::Refused { risks } => Some(format!("would {}", risks.join("; "))),
            Outcome::Skipped { because } => Some(because.clone()),
            Outcome::DeletedRetaining { retained } => Some(format!(
                "{} resource(s) left in the account: {}",
                retained.len(),
                retained.join("; ")
            )),
            _ => None,
        }
    }
}

/// The step a stack is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Creating and waiting for the change set.
    Planning,
    /// The change set is executing.
    Creating,
    Updating,
    /// A stack left in ROLLBACK_COMPLETE by an earlier failed create is deleted before it is created again.
    RemovingFailedStack,
    EmptyingBuckets,
    Deleting,
    /// Another operation on the stack is in progress; its end is awaited before deciding what to do.
    WaitingForOperation,
    /// ContinueUpdateRollback on a stack in UPDATE_ROLLBACK_FAILED.
    ContinuingRollback,
    /// DeleteStack with RetainResources on a stack in DELETE_FAILED.
    RetainingResources,
    /// Termination protection was turned on.
    Protected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    Phase {
        stack: String,
        phase: Phase,
    },
    /// Resources in a complete state out of the template's count.
    Resources {
        stack: String,
        done: usize,
        total: usize,
    },
    ResourceFailed {
        stack: String,
        logical_id: String,
        resource_type: String,
        reason: String,
    },
    Finished {
        stack: String,
        outcome: Outcome,
        elapsed_ms: u64,
    },
    Warning {
        message: String,
    },
}

/// Receives progress and answers the one question the engine asks.
pub trait Observer: Sync {
    fn event(&self, event: Progress);
    /// Whether `stack` may replace or remove these data-holding resources. Implementations answer from
    /// `--yes`, a prompt, or refuse when nobody can be asked.
    fn approve_data_risk(&self, stack: &str, risks: &[StatefulRisk]) -> bool;
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
