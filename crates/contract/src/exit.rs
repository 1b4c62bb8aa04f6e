//! Exit codes: the one place they are defined. A test checks that the README's "Exit codes" table lists
//! [`ALL`] as it is here, so the two cannot drift.

/// Everything asked for was done.
pub const OK: i32 = 0;
/// An unexpected error: a bug or an environment problem we did not classify.
pub const INTERNAL: i32 = 1;
/// Bad input: an unknown flag, a config key with a wrong value, a malformed file. Nothing was changed.
pub const USAGE: i32 = 2;
/// A safety check declined: confirmation needed but not given (non-interactive without `--yes`), data loss
/// not allowed, data present without `--force`, standby not ready. Nothing was changed.
pub const REFUSED: i32 = 3;
/// The operation ran and failed: a stack failed to deploy, a runbook step failed. What happened is in the
/// output (and, for runbooks, in the journal; `lifeboat resume` continues).
pub const FAILED: i32 = 4;
/// Another run holds the environment's lock.
pub const LOCKED: i32 = 5;
/// Something lifeboat needs is not there: the AWS endpoint is unreachable, the local runtime is not up.
pub const UNAVAILABLE: i32 = 6;
/// A drill ran to the end but its verdict is negative: an acknowledged order was lost, duplicated, or a
/// write was accepted after the fence.
pub const DRILL_VERDICT_FAILED: i32 = 7;
/// Interrupted by the user (Ctrl-C). Runbooks leave a journal entry saying where they stopped.
pub const INTERRUPTED: i32 = 130;

/// Every exit code with its meaning, in the order the README lists them.
pub const ALL: &[(i32, &str, &str)] = &[
    (OK, "ok", "everything asked for was done"),
    (
        INTERNAL,
        "internal",
        "an unexpected error; the message says what",
    ),
    (
        USAGE,
        "usage",
        "bad input: flag, config key or file; nothing was changed",
    ),
    (
        REFUSED,
        "refused",
        "a safety check declined (confirmation, --force, --allow-data-loss, readiness); nothing was changed",
    ),
    (
        FAILED,
        "failed",
        "the operation ran and failed; output (and the run journal) says where",
    ),
    (LOCKED, "locked", "another run holds the environment's lock"),
    (
        UNAVAILABLE,
        "unavailable",
        "an endpoint or the local runtime is not reachable",
    ),
    (
        DRILL_VERDICT_FAILED,
        "drill-verdict-failed",
        "a drill finished but lost, duplicated or fenced-out writes were found",
    ),
    (
        INTERRUPTED,
        "interrupted",
        "stopped by Ctrl-C; a runbook can be resumed",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_code_as_defined_here() {
        let readme = include_str!("../../../README.md");
        for (code, name, meaning) in ALL {
            let row = format!("| {code} | `{name}` | {meaning} |");
            assert!(readme.contains(&row), "README.md lacks the row: {row}");
        }
    }

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<i32> = ALL.iter().map(|(c, _, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
    }
}
