//! Drills of the whole DR cycle under one load with one ledger: a fault or a planned move away from the
//! primary, the platform's recovery, the failed region's return (reprotect, then failback to it), and a
//! ledger check against the primary after every cycle.
//!
//! `cycle` runs one cycle starting with the fault asked for; `soak` runs `--cycles` of them, each move and
//! each quiet period drawn from a generator seeded with `--seed`, so a failing sequence can be replayed
//! exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lifeboat_contract::ControlState;
use lifeboat_local::Runtime;
use lifeboat_local::events;

use crate::ledger::{Client, Ledger, UnixMs, now_ms};
use crate::load::{Load, LoadConfig, catalog};
use crate::metrics;
use crate::report::{
    LISTED_KEYS, LedgerCheck, Load as LoadFigures, Marker, Report, SetAsideFile, SoakFigures,
    Transition, Verdict,
};
use crate::run::{
    AFTER_RECOVERY, DrillEnv, DrillError, DrillOutcome, Prepared, RECOVERY_TIMEOUT,
    automation_gave_up, fence_instant, first_event, open_runtime, prepare, progress, rfc3339_now,
    runbook_runs, spawn_inside_client, targets, write_report,
};
use crate::scenario::{DrillOptions, Scenario};
use crate::verify::{self, Fence};

/// One move away from the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// `lifeboat switchover`.
    Planned,
    DbCrash,
    RegionOutage,
    Partition,
    /// `kill -9` of the primary's storefront: the supervisor restarts it, no role changes.
    StorefrontKill,
    /// `lifeboat switchover` killed with SIGKILL after one of its steps, finished by `lifeboat resume`.
    RunbookKill,
}

/// How long the drill keeps asking a slow control server before a read counts as failed.
const CONTROL_PATIENCE: Duration = Duration::from_secs(15);

/// The switchover's steps after which a runbook kill can come (the last one leaves nothing to resume).
const KILL_AFTER: [&str; 8] = [
    "prescale-standby",
    "raise-fence",
    "wait-drained",
    "promote",
    "shift-traffic",
    "lower-fence",
    "verify",
    "notify",
];

impl Move {
    pub const ALL: [Move; 6] = [
        Move::Planned,
        Move::DbCrash,
        Move::RegionOutage,
        Move::Partition,
        Move::StorefrontKill,
        Move::RunbookKill,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Move::Planned => "planned",
            Move::DbCrash => "db-crash",
            Move::RegionOutage => "region-outage",
            Move::Partition => "partition",
            Move::StorefrontKill => "storefront-kill",
            Move::RunbookKill => "runbook-kill",
        }
    }

    fn from_scenario(s: Scenario) -> Move {
        match s {
            Scenario::RegionOutage => Move::RegionOutage,
            Scenario::Partition => Move::Partition,
            _ => Move::DbCrash,
        }
    }

    /// Faults the DR automation recovers from on its own (it is allowed to for their length).
    fn automatic(self) -> bool {
        matches!(self, Move::DbCrash | Move::RegionOutage | Move::Partition)
    }

    fn changes_roles(self) -> bool {
        self != Move::StorefrontKill
    }
}

/// splitmix64: small, fast, and the same sequence for the same seed on every machine.
#[derive(Debug, Clone)]
pub struct Sequence(u64);

impl Sequence {
    pub fn new(seed: u64) -> Self {
        Sequence(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// One cycle of the plan: how long the load runs quietly first, the move, and (runbook kills) after which
/// step the kill comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCycle {
    pub quiet_ms: u64,
    pub mv: Move,
    pub kill_after: &'static str,
}

/// The whole sequence, decided before anything runs.
pub fn plan(options: &DrillOptions) -> Vec<PlannedCycle> {
    if options.scenario == Scenario::Cycle {
        return vec![PlannedCycle {
            quiet_ms: (options.duration_s * 1000.0 / 3.0) as u64,
            mv: Move::from_scenario(options.fault),
            kill_after: KILL_AFTER[0],
        }];
    }
    let mut rng = Sequence::new(options.seed);
    (0..options.cycles)
        .map(|_| PlannedCycle {
            quiet_ms: 1000 + rng.below(2000),
            mv: Move::ALL[rng.below(Move::ALL.len() as u64) as usize],
            kill_after: KILL_AFTER[rng.below(KILL_AFTER.len() as u64) as usize],
        })
        .collect()
}

pub async fn run(options: &DrillOptions, env: &DrillEnv) -> Result<DrillOutcome, DrillError> {
    let runtime = open_runtime(&env.state_dir).await?;
    std::fs::create_dir_all(&options.report_dir).map_err(|e| {
        DrillError::Usage(format!(
            "--report: cannot create {}: {e}",
            options.report_dir.display()
        ))
    })?;
    let prepared = prepare(options, &runtime).await?;
    let automatic_before = runtime.settings().automatic_failover;
    let paused_before = runtime.settings().automation_paused;
    let result = drive(options, env, &runtime, &prepared).await;
    // Best effort: the drill's own result is what the caller needs to see.
    let _ = runtime.update_settings(|s| {
        s.automatic_failover = automatic_before;
        s.automation_paused = paused_before;
    });
    result
}

/// Records whether the DR automation acts on its own (`runtime.json`, read by the supervisor): during a
/// fault it recovers from, it may switch over and fail over; otherwise only the drill moves roles, and the
/// automation is paused (a slow health answer under load must not start a runbook beside the drill's).
fn set_automatic(runtime: &Runtime, on: bool) -> Result<(), DrillError> {
    runtime.update_settings(|s| {
        s.automatic_failover = on;
        s.automation_paused = !on;
    })?;
    Ok(())
}

/// A `lifeboat` subcommand with its output in a log file of the report directory.
fn spawn_lifeboat(
    env: &DrillEnv,
    args: &[&str],
    log: &Path,
) -> Result<tokio::process::Child, String> {
    let file =
        std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    tokio::process::Command::new(&env.lifeboat_bin)
        .args(&env.lifeboat_global_args)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting `lifeboat {}`: {e}", args.join(" ")))
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// Waits until `want_active` is active with the fence down under an epoch above `epoch_above`. Gives up
/// early when a watched command exits with a failure or the DR automation gives up.
async fn wait_for_roles(
    runtime: &Runtime,
    since_ms: UnixMs,
    want_active: &str,
    epoch_above: u64,
    mut command: Option<(&mut tokio::process::Child, &Path)>,
    watch_automation: bool,
) -> Result<(UnixMs, u64), String> {
    let deadline = since_ms + RECOVERY_TIMEOUT.as_millis() as i64;
    // What the control server last said (or why it did not answer), for the message when time runs out.
    let mut last_seen = String::from("no answer yet");
    while now_ms() < deadline {
        match runtime.control().state().await {
            Ok(state)
                if state.active_region == want_active
                    && !state.fence_raised
                    && state.epoch > epoch_above =>
            {
                return Ok((now_ms(), state.epoch));
            }
            Ok(state) => {
                last_seen = format!(
                    "last seen: {} active, fence {}, epoch {}",
                    state.active_region,
                    if state.fence_raised { "raised" } else { "down" },
                    state.epoch
                );
            }
            Err(e) => last_seen = format!("last read of the control state failed: {e}"),
        }
        if let Some((child, log)) = command.as_mut()
            && let Ok(Some(status)) = child.try_wait()
            && !status.success()
        {
            return Err(format!(
                "the command exited with {status}: {} (log {})",
                log_tail(log),
                log.display()
            ));
        }
        if watch_automation
            && let Some(e) = automation_gave_up(runtime, since_ms)
            && now_ms() - e.at_ms as i64 > 2000
        {
            return Err(format!("the DR automation did not recover: {}", e.detail));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "{want_active} was not active with the fence down under a newer epoch within {} s ({last_seen})",
        RECOVERY_TIMEOUT.as_secs()
    ))
}

/// Whether the supervisor's automation has no attempt under way: its last event since `since_ms` ends an
/// attempt (finished or declined).
fn automation_settled(runtime: &Runtime, since_ms: UnixMs) -> bool {
    let last = runtime
        .events()
        .read_since(u64::try_from(since_ms).unwrap_or(0))
        .unwrap_or_default()
        .into_iter()
        .rfind(|e| {
            [
                events::KIND_AUTOMATION_STARTED,
                events::KIND_AUTOMATION_FINISHED,
                events::KIND_AUTOMATION_DECLINED,
            ]
            .contains(&e.kind.as_str())
        });
    last.is_some_and(|e| e.kind != events::KIND_AUTOMATION_STARTED)
}

/// Lets a command that already did its work finish (it writes its report after the last step).
async fn finish(child: &mut tokio::process::Child, log: &Path) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!(
            "exited with {status}: {} (log {})",
            log_tail(log),
            log.display()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!("did not exit within 60 s (log {})", log.display()))
        }
    }
}

struct Context<'a> {
    options: &'a DrillOptions,
    env: &'a DrillEnv,
    runtime: &'a Runtime,
    t0: UnixMs,
    run_tag: String,
    logs: PathBuf,
}

impl Context<'_> {
    fn secs(&self, at: UnixMs) -> f64 {
        (at - self.t0) as f64 / 1000.0
    }
    fn log(&self, cycle: u32, what: &str) -> PathBuf {
        self.logs.join(format!("cycle-{cycle:03}-{what}.log"))
    }
}

/// What one move away from the primary did.
struct Away {
    transition: Transition,
    fault_ms: UnixMs,
    fences: Vec<Fence>,
    inside: Option<(tokio::process::Child, PathBuf)>,
}

async fn move_away(
    cx: &Context<'_>,
    cycle: u32,
    planned: &PlannedCycle,
    from: &str,
    to: &str,
    epoch0: u64,
) -> Result<Away, (Transition, String)> {
    let runtime = cx.runtime;
    let mv = planned.mv;
    let mut inside = None;
    if mv == Move::Partition {
        // A client inside the region keeps writing straight to its storefront while it is cut off: the
        // fencing check has something to catch.
        let file = cx
            .logs
            .join(format!("cycle-{cycle:03}-inside-ledger.jsonl"));
        let rate = (cx.options.rate / 4.0).max(5.0);
        let seconds = (runtime.settings().lease_ms as f64 / 1000.0 + 3.0).max(4.0);
        let child = spawn_inside_client(
            runtime,
            cx.env,
            from,
            rate,
            seconds,
            &format!("{}-c{cycle}-in", cx.run_tag),
            &file,
        )
        .map_err(|e| fail(cycle, mv, from, to, e))?;
        inside = Some((child, file));
    }
    let fault_ms = now_ms();
    let label = match mv {
        Move::Planned => format!("planned switchover away from {from}"),
        Move::DbCrash => format!("database of {from} killed (kill -9)"),
        Move::RegionOutage => format!("region {from} killed"),
        Move::Partition => format!("region {from} isolated"),
        Move::StorefrontKill => format!("storefront of {from} killed (kill -9)"),
        Move::RunbookKill => format!(
            "switchover away from {from} killed after {}",
            planned.kill_after
        ),
    };
    progress(cx.t0, &format!("cycle {cycle}: {label}"));
    let mut transition = Transition {
        cycle,
        kind: match mv {
            Move::Planned => "switchover",
            Move::RunbookKill => "resumed-switchover",
            Move::StorefrontKill => "restart",
            _ => "failover",
        }
        .into(),
        cause: label,
        from: from.to_owned(),
        to: if mv.changes_roles() { to } else { from }.to_owned(),
        started_s: cx.secs(fault_ms),
        detected_s: None,
        recovered_s: None,
        epoch: None,
        rto_s: None,
        ledger_check: None,
        note: String::new(),
    };
    let outcome: Result<(UnixMs, Option<u64>), String> = async {
        match mv {
            Move::Planned => {
                let log = cx.log(cycle, "switchover");
                let mut child =
                    spawn_lifeboat(cx.env, &["switchover", "--target", "local", "--yes"], &log)?;
                let (at, epoch) = wait_for_roles(
                    runtime,
                    fault_ms,
                    to,
                    epoch0,
                    Some((&mut child, &log)),
                    false,
                )
                .await?;
                finish(&mut child, &log)
                    .await
                    .map_err(|e| format!("`lifeboat switchover` {e}"))?;
                Ok((at, Some(epoch)))
            }
            Move::RunbookKill => {
                let log = cx.log(cycle, "switchover-killed");
                let mut child =
                    spawn_lifeboat(cx.env, &["switchover", "--target", "local", "--yes"], &log)?;
                let deadline = fault_ms + RECOVERY_TIMEOUT.as_millis() as i64;
                let run_id = loop {
                    let finished = runtime
                        .events()
                        .read_since(u64::try_from(fault_ms).unwrap_or(0))
                        .unwrap_or_default()
                        .into_iter()
                        .find(|e| {
                            e.kind == events::KIND_STEP_FINISHED
                                && e.step.as_deref() == Some(planned.kill_after)
                        });
                    if let Some(e) = finished {
                        break e.run_id;
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!(
                            "`lifeboat switchover` exited ({status}) before {} finished: {}",
                            planned.kill_after,
                            log_tail(&log)
                        ));
                    }
                    if now_ms() > deadline {
                        return Err(format!("{} did not finish in time", planned.kill_after));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                // SIGKILL: no handler runs, the journal is all that is left.
                let _ = child.start_kill();
                let _ = child.wait().await;
                let run_id = run_id.ok_or("the step event carries no run id")?;
                progress(
                    cx.t0,
                    &format!("cycle {cycle}: `lifeboat resume --target local {run_id}`"),
                );
                let log = cx.log(cycle, "resume");
                let mut resume =
                    spawn_lifeboat(cx.env, &["resume", "--target", "local", &run_id], &log)?;
                let (at, epoch) = wait_for_roles(
                    runtime,
                    fault_ms,
                    to,
                    epoch0,
                    Some((&mut resume, &log)),
                    false,
                )
                .await?;
                finish(&mut resume, &log)
                    .await
                    .map_err(|e| format!("`lifeboat resume` {e}"))?;
                Ok((at, Some(epoch)))
            }
            Move::DbCrash | Move::RegionOutage | Move::Partition => {
                match mv {
                    Move::DbCrash => runtime.kill_database(from).map(|_| ()),
                    Move::RegionOutage => runtime.kill_region(from).map(|_| ()),
                    _ => runtime.isolate(from),
                }
                .map_err(|e| e.to_string())?;
                let (at, epoch) = wait_for_roles(runtime, fault_ms, to, epoch0, None, true).await?;
                // The fault is dealt with: from here on only the runbooks the drill starts move roles.
                set_automatic(runtime, false).map_err(|e| e.to_string())?;
                // Writes are back before the automation's runbook ends (verify, notify and recording the
                // active region come after); it holds the environment's lock until then.
                let deadline = now_ms() + RECOVERY_TIMEOUT.as_millis() as i64;
                while !automation_settled(runtime, fault_ms) {
                    if now_ms() > deadline {
                        return Err("the DR automation's runbook did not finish".into());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok((at, Some(epoch)))
            }
            Move::StorefrontKill => {
                runtime.kill_storefront(from).map_err(|e| e.to_string())?;
                runtime
                    .wait_storefront(from, RECOVERY_TIMEOUT)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((now_ms(), None))
            }
        }
    }
    .await;
    if mv.automatic()
        && let Some(d) = first_event(runtime, fault_ms, events::KIND_REGION_DOWN)
    {
        transition.detected_s = Some(cx.secs(d.at_ms as i64));
    }
    match outcome {
        Ok((at, epoch)) => {
            transition.recovered_s = Some(cx.secs(at));
            transition.epoch = epoch;
            progress(
                cx.t0,
                &format!(
                    "cycle {cycle}: {} active{}",
                    transition.to,
                    epoch
                        .map(|e| format!(" under epoch {e}"))
                        .unwrap_or_default()
                ),
            );
            let step_events = runtime
                .events()
                .read_since(u64::try_from(fault_ms).unwrap_or(0))
                .unwrap_or_default();
            let fences = epoch
                .and_then(|e| fence_instant(&step_events, fault_ms, e))
                .into_iter()
                .collect();
            Ok(Away {
                transition,
                fault_ms,
                fences,
                inside,
            })
        }
        Err(why) => {
            if let Some((mut child, _)) = inside {
                let _ = child.kill().await;
            }
            Err((transition, why))
        }
    }
}

fn fail(
    cycle: u32,
    mv: Move,
    from: &str,
    to: &str,
    e: impl std::fmt::Display,
) -> (Transition, String) {
    (
        Transition {
            cycle,
            kind: mv.name().into(),
            cause: mv.name().into(),
            from: from.into(),
            to: to.into(),
            started_s: 0.0,
            detected_s: None,
            recovered_s: None,
            epoch: None,
            rto_s: None,
            ledger_check: None,
            note: String::new(),
        },
        e.to_string(),
    )
}

/// Back to `home`: heal a cut link, then `lifeboat failback` (reprotect restarts and rejoins what is down,
/// setting aside what only the returning region held).
async fn come_back(
    cx: &Context<'_>,
    cycle: u32,
    away: &str,
    home: &str,
    epoch0: u64,
    partitioned: bool,
) -> (
    Transition,
    Result<(Vec<Fence>, Option<SetAsideFile>), String>,
) {
    let runtime = cx.runtime;
    let started = now_ms();
    let mut transition = Transition {
        cycle,
        kind: "failback".into(),
        cause: format!("return of {home}"),
        from: away.to_owned(),
        to: home.to_owned(),
        started_s: cx.secs(started),
        detected_s: None,
        recovered_s: None,
        epoch: None,
        rto_s: None,
        ledger_check: None,
        note: String::new(),
    };
    if partitioned && let Err(e) = runtime.heal(home) {
        return (transition, Err(format!("healing {home}: {e}")));
    }
    progress(
        cx.t0,
        &format!("cycle {cycle}: {home} back; `lifeboat failback --target local`"),
    );
    let deadline = started + RECOVERY_TIMEOUT.as_millis() as i64;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let log = cx.log(cycle, &format!("failback-{attempt}"));
        // Back to where the cycle started, which is not always regions.primary.
        let spawned = spawn_lifeboat(
            cx.env,
            &["failback", "--to", home, "--target", "local", "--yes"],
            &log,
        );
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => return (transition, Err(e)),
        };
        let remaining = Duration::from_millis((deadline - now_ms()).max(1000) as u64);
        let status = match tokio::time::timeout(remaining, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return (transition, Err(format!("`lifeboat failback`: {e}"))),
            Err(_) => {
                let _ = child.kill().await;
                return (
                    transition,
                    Err(format!(
                        "`lifeboat failback` did not finish within {} s (log {})",
                        RECOVERY_TIMEOUT.as_secs(),
                        log.display()
                    )),
                );
            }
        };
        if status.success() {
            break;
        }
        // A run still holding the environment (the automation finishing its own) is worth waiting for;
        // anything else is the answer.
        if status.code() == Some(lifeboat_contract::exit::LOCKED) && now_ms() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        return (
            transition,
            Err(format!(
                "`lifeboat failback` exited with {status}: {} (log {})",
                log_tail(&log),
                log.display()
            )),
        );
    }
    // The failback ended with its own verify step (a checkout served by `home`); the control state says
    // under which epoch.
    let (at, epoch) = match wait_for_roles(runtime, started, home, epoch0, None, false).await {
        Ok(v) => v,
        Err(e) => return (transition, Err(format!("failback to {home}: {e}"))),
    };
    transition.recovered_s = Some(cx.secs(at));
    transition.epoch = Some(epoch);
    progress(
        cx.t0,
        &format!("cycle {cycle}: {home} active again under epoch {epoch}"),
    );
    let step_events = runtime
        .events()
        .read_since(u64::try_from(started).unwrap_or(0))
        .unwrap_or_default();
    let fences = fence_instant(&step_events, started, epoch)
        .into_iter()
        .collect();
    // The failback's own report directory holds what reprotect set aside, if anything.
    let set_aside = step_events
        .iter()
        .find(|e| e.step.as_deref() == Some("reprotect") && e.run_id.is_some())
        .and_then(|e| e.run_id.clone())
        .and_then(|run_id| {
            let path = runtime
                .layout()
                .reports_dir()
                .join(&run_id)
                .join(format!("set-aside-{home}.json"));
            let summary: lifeboat_local::rebuild::SetAside =
                serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
            Some(SetAsideFile {
                region: home.to_owned(),
                run_id,
                sql_file: summary.sql_file.clone(),
                transactions: summary.transactions,
                rows: summary.total_rows(),
                summary: summary.describe(),
            })
        });
    if let Some(s) = &set_aside {
        progress(cx.t0, &format!("cycle {cycle}: {}", s.summary));
    }
    (transition, Ok((fences, set_aside)))
}

/// The control state, read again for up to [`CONTROL_PATIENCE`] when the control server is slow to answer:
/// it shares two cores with a full load and a database catching up, and one slow answer is not a verdict.
async fn control_state(runtime: &Runtime) -> Result<ControlState, String> {
    let deadline = tokio::time::Instant::now() + CONTROL_PATIENCE;
    loop {
        match runtime.control().state().await {
            Ok(state) => return Ok(state),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(format!(
                    "reading the control state (for {} s): {e}",
                    CONTROL_PATIENCE.as_secs()
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

async fn ledger_check(
    cx: &Context<'_>,
    ledger: &Ledger,
    fences: &[Fence],
) -> Result<(verify::Verification, String), String> {
    let state = control_state(cx.runtime).await?;
    let url = cx
        .runtime
        .admin_db_url(&state.active_region)
        .map_err(|e| e.to_string())?;
    let stored = verify::stored_orders(&url, &format!("{}-", cx.run_tag)).await?;
    Ok((verify::check(ledger, &stored, fences), state.active_region))
}

fn read_inside_ledger(file: &Path) -> Result<Ledger, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "the inside client wrote no ledger ({}): {e}",
            file.display()
        )
    })?;
    Ledger::from_json_lines(&text)
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

async fn drive(
    options: &DrillOptions,
    env: &DrillEnv,
    runtime: &Runtime,
    prepared: &Prepared,
) -> Result<DrillOutcome, DrillError> {
    let front_door = runtime.front_door_url();
    let products = catalog(&front_door, 3)
        .await
        .map_err(|e| DrillError::Unavailable(e.to_string()))?;
    let run_tag = format!(
        "drill-{}-{}",
        options.scenario.name(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let logs = options.report_dir.join("commands");
    std::fs::create_dir_all(&logs)
        .map_err(|e| DrillError::Failed(format!("creating {}: {e}", logs.display())))?;
    let started_at = rfc3339_now();
    let load = Load::start(LoadConfig::new(
        &front_door,
        options.rate,
        &run_tag,
        Client::FrontDoor,
        products,
    ))
    .map_err(|e| DrillError::Failed(e.to_string()))?;
    let t0 = load.started_ms();
    let cx = Context {
        options,
        env,
        runtime,
        t0,
        run_tag: run_tag.clone(),
        logs,
    };
    let plan = plan(options);
    progress(
        t0,
        &format!(
            "load: {} checkouts/s through the front door {front_door} (keys {run_tag}-N); {} cycle(s){}",
            options.rate,
            plan.len(),
            if options.scenario == Scenario::Soak {
                format!(", seed {}", options.seed)
            } else {
                String::new()
            }
        ),
    );

    let home = prepared.primary.clone();
    let mut transitions: Vec<Transition> = Vec::new();
    let mut fences: Vec<Fence> = Vec::new();
    let mut set_aside: Vec<SetAsideFile> = Vec::new();
    let mut inside_ledgers: Vec<Ledger> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut failure: Option<String> = None;
    let mut completed = 0u32;
    let mut moves: BTreeMap<String, u32> = BTreeMap::new();
    let mut first_fault: Option<(UnixMs, String)> = None;

    for (i, planned) in plan.iter().enumerate() {
        let cycle = i as u32 + 1;
        tokio::time::sleep(Duration::from_millis(planned.quiet_ms)).await;
        *moves.entry(planned.mv.name().to_owned()).or_default() += 1;
        let state = match control_state(runtime).await {
            Ok(s) => s,
            Err(e) => {
                failure = Some(format!("cycle {cycle}: {e}"));
                break;
            }
        };
        let from = state.active_region.clone();
        let to = match runtime.peer_region(&from) {
            Ok(r) => r.name.clone(),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        };
        set_automatic(runtime, planned.mv.automatic())?;
        let away = move_away(&cx, cycle, planned, &from, &to, state.epoch).await;
        let away = match away {
            Ok(a) => a,
            Err((t, why)) => {
                progress(t0, &format!("cycle {cycle}: {why}"));
                transitions.push(t);
                failure = Some(format!("cycle {cycle} ({}): {why}", planned.mv.name()));
                break;
            }
        };
        first_fault.get_or_insert((away.fault_ms, away.transition.cause.clone()));
        fences.extend(away.fences.iter().copied());
        let away_epoch = away.transition.epoch.unwrap_or(state.epoch);
        transitions.push(away.transition);

        if planned.mv.changes_roles() {
            // A moment of service on the other side, then home again without the automation in the way.
            tokio::time::sleep(Duration::from_secs(1)).await;
            set_automatic(runtime, false)?;
            if let Some((mut child, file)) = away.inside {
                match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
                    Ok(Ok(_)) => {}
                    _ => {
                        let _ = child.kill().await;
                        notes.push(format!(
                            "cycle {cycle}: the client inside {from} was killed"
                        ));
                    }
                }
                match read_inside_ledger(&file) {
                    Ok(l) => inside_ledgers.push(l),
                    Err(e) => notes.push(format!("cycle {cycle}: {e}")),
                }
            }
            let (t, result) = come_back(
                &cx,
                cycle,
                &to,
                &from,
                away_epoch,
                planned.mv == Move::Partition,
            )
            .await;
            transitions.push(t);
            match result {
                Ok((f, s)) => {
                    fences.extend(f);
                    set_aside.extend(s);
                }
                Err(why) => {
                    progress(t0, &format!("cycle {cycle}: {why}"));
                    failure = Some(format!("cycle {cycle}: {why}"));
                    break;
                }
            }
        }

        // The ledger so far against the primary now: nothing acknowledged may be missing after any cycle.
        let mut so_far = load.snapshot();
        for l in &inside_ledgers {
            so_far.merge(l.clone());
        }
        match ledger_check(&cx, &so_far, &fences).await {
            Ok((v, region)) => {
                let check = LedgerCheck {
                    acknowledged: v.acknowledged,
                    lost: v.lost.len(),
                    duplicates: v.duplicates.len(),
                    writes_accepted_after_fence: v.accepted_after_fence.len(),
                };
                if let Some(t) = transitions.last_mut() {
                    t.ledger_check = Some(check.clone());
                }
                progress(
                    t0,
                    &format!(
                        "cycle {cycle}: ledger on {region}: {} acknowledged, lost {}, duplicates {}, after fence {}",
                        check.acknowledged,
                        check.lost,
                        check.duplicates,
                        check.writes_accepted_after_fence
                    ),
                );
                if !v.passed() {
                    failure = Some(format!(
                        "cycle {cycle}: the ledger check failed on {region}"
                    ));
                    break;
                }
            }
            Err(e) => {
                failure = Some(format!("cycle {cycle}: ledger check: {e}"));
                break;
            }
        }
        completed += 1;
    }

    // Service after the last move, then the final check over the whole ledger.
    load.stop_at(now_ms() + AFTER_RECOVERY.as_millis() as i64);
    let gauges = load.gauges();
    let mut ledger = load.finish().await;
    for l in inside_ledgers {
        ledger.merge(l);
    }
    let load_end = ledger
        .acks
        .iter()
        .map(|a| a.acked_ms)
        .max()
        .unwrap_or_else(now_ms);
    progress(
        t0,
        &format!("load stopped: {} checkouts acknowledged", ledger.acks.len()),
    );

    // Each transition's RTO: the longest gap between acknowledgements that ended inside its window.
    let windows: Vec<(UnixMs, UnixMs)> = transitions
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let from = t0 + (t.started_s * 1000.0) as i64;
            let until = transitions
                .get(i + 1)
                .map(|n| t0 + (n.started_s * 1000.0) as i64)
                .unwrap_or(load_end);
            (from, until)
        })
        .collect();
    for (t, (from, until)) in transitions.iter_mut().zip(windows) {
        if t.recovered_s.is_some() {
            t.rto_s = metrics::recovery_gap_between(&ledger, from, until).map(|g| g.seconds());
        }
    }

    let final_state = control_state(runtime).await.ok();
    let final_active = final_state
        .as_ref()
        .map(|s| s.active_region.clone())
        .unwrap_or_else(|| home.clone());
    let standby_now = runtime
        .peer_region(&final_active)
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let mut replicating = false;
    for _ in 0..50 {
        if runtime
            .status()
            .await
            .region(&standby_now)
            .is_some_and(|r| r.replicating())
        {
            replicating = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !replicating {
        notes.push(format!(
            "{standby_now} is not replicating from {final_active} at the end"
        ));
    }
    if final_active != home {
        notes.push(format!(
            "{home} is not the active region at the end ({final_active} is)"
        ));
    }

    let stored = match verify::stored_orders(
        &runtime.admin_db_url(&final_active)?,
        &format!("{run_tag}-"),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            return Err(DrillError::Failed(format!(
                "the final ledger check could not read {final_active}: {e}"
            )));
        }
    };
    let verification = verify::check(&ledger, &stored, &fences);
    if let Some(f) = &failure {
        notes.insert(0, f.clone());
    }

    let run_events = runtime
        .events()
        .read_since(u64::try_from(t0).unwrap_or(0))
        .unwrap_or_default();
    let runbooks = runbook_runs(&run_events, t0);
    let role_rtos: Vec<f64> = {
        let mut v: Vec<f64> = transitions
            .iter()
            .filter(|t| t.kind != "restart")
            .filter_map(|t| t.rto_s)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let worst_rto = role_rtos.last().copied();
    let detection_s = transitions
        .iter()
        .filter_map(|t| Some(t.detected_s? - t.started_s))
        .max_by(f64::total_cmp);
    let (write_unavailable_s, unavailable_gaps) =
        metrics::write_unavailability(&ledger, t0, load_end);
    let timeline = metrics::timeline(&ledger, t0, load_end.max(t0 + 1000));
    let mut by_region: BTreeMap<String, usize> = BTreeMap::new();
    for a in ledger.acks.iter().filter(|a| a.client == Client::FrontDoor) {
        *by_region.entry(a.region.clone()).or_default() += 1;
    }
    let inside_acks = ledger
        .acks
        .iter()
        .filter(|a| a.client != Client::FrontDoor)
        .count();
    let all_recovered =
        failure.is_none() && completed == plan.len() as u32 && final_active == home && replicating;
    let passed = verification.passed() && all_recovered;
    let report_targets = targets(
        options,
        prepared.replication,
        &verification,
        detection_s,
        worst_rto,
        write_unavailable_s,
    );
    let list = |keys: &[String]| keys.iter().take(LISTED_KEYS).cloned().collect::<Vec<_>>();
    let (fault_ms, fault_label) =
        first_fault.unwrap_or((t0, options.scenario.fault_label().into()));
    let first_detection = transitions.iter().find_map(|t| {
        t.detected_s.map(|at_s| Marker {
            label: format!("detected: {} down", t.from),
            at_s,
        })
    });
    let report = Report {
        scenario: options.scenario,
        verdict: if passed { Verdict::Pass } else { Verdict::Fail },
        replication: prepared.replication,
        load: LoadFigures {
            rate_per_s: options.rate,
            duration_s: (load_end - t0) as f64 / 1000.0,
            checkouts_started: ledger.keys_used.len(),
            inside_rate_per_s: moves
                .contains_key(Move::Partition.name())
                .then_some((options.rate / 4.0).max(5.0)),
            client_peaks: Some(gauges.peaks()),
        },
        automatic_failover_allowed: transitions.iter().any(|t| t.kind == "failover"),
        recovered: all_recovered,
        started_at,
        finished_at: rfc3339_now(),
        primary_before: home.clone(),
        primary_after: Some(final_active.clone()),
        epoch_before: prepared.epoch_before,
        epoch_after: final_state.map(|s| s.epoch),
        acknowledged: verification.acknowledged,
        lost: verification.lost.len(),
        duplicates: verification.duplicates.len(),
        lines_mismatched: verification.lines_mismatched.len(),
        writes_accepted_after_fence: verification.accepted_after_fence.len(),
        detection_s,
        rto_s: worst_rto,
        write_unavailable_s,
        attempts_failed: ledger.failures.len(),
        checkouts_abandoned: ledger.abandoned.len(),
        acknowledged_by_region: by_region.into_iter().collect(),
        acknowledged_inside_region: inside_acks,
        fence: fences.last().copied(),
        fault: Marker {
            label: fault_label,
            at_s: (fault_ms - t0) as f64 / 1000.0,
        },
        detection: first_detection,
        runbooks,
        unavailable_gaps,
        lost_keys: list(&verification.lost),
        duplicate_keys: list(&verification.duplicates),
        lines_mismatched_keys: list(&verification.lines_mismatched),
        after_fence_keys: list(&verification.accepted_after_fence),
        targets: report_targets,
        notes,
        timeline,
        ledger_file: options
            .report_dir
            .join("ledger.jsonl")
            .display()
            .to_string(),
        soak: (options.scenario == Scenario::Soak).then(|| SoakFigures {
            cycles_requested: options.cycles,
            cycles_completed: completed,
            seed: options.seed,
            rto_min_s: role_rtos.first().copied(),
            rto_p50_s: percentile(&role_rtos, 50.0),
            rto_p90_s: percentile(&role_rtos, 90.0),
            rto_max_s: worst_rto,
            moves: moves.into_iter().collect(),
        }),
        transitions,
        set_aside,
        replicating_at_end: Some(replicating),
    };
    write_report(&report, &ledger, &options.report_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soak(seed: u64, cycles: u32) -> DrillOptions {
        DrillOptions::new("soak", Some(100.0), None, "r".into(), None)
            .unwrap()
            .with_cycle_flags(None, Some(cycles), Some(seed))
            .unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_another_seed_another() {
        let a = plan(&soak(1, 20));
        assert_eq!(a, plan(&soak(1, 20)));
        assert_ne!(a, plan(&soak(2, 20)));
        assert_eq!(a.len(), 20);
        // Twenty draws from six moves cover most of them; quiet periods stay within their bounds.
        let kinds: std::collections::BTreeSet<&str> = a.iter().map(|c| c.mv.name()).collect();
        assert!(kinds.len() >= 4, "{kinds:?}");
        assert!(a.iter().all(|c| (1000..3000).contains(&c.quiet_ms)));
    }

    #[test]
    fn a_cycle_is_one_move_of_the_fault_asked_for() {
        let o = DrillOptions::new("cycle", None, Some(12.0), "r".into(), None)
            .unwrap()
            .with_cycle_flags(Some("region-outage"), None, None)
            .unwrap();
        let p = plan(&o);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].mv, Move::RegionOutage);
        assert_eq!(p[0].quiet_ms, 4000);
    }

    #[test]
    fn percentiles_pick_from_the_sorted_values() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 50.0), Some(3.0));
        assert_eq!(percentile(&v, 90.0), Some(5.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
