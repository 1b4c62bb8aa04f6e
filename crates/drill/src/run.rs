//! One drill from start to verdict: preflight on the runtime, load with a ledger, the fault, waiting for the
//! DR automation (or running the switchover), the ledger check against the new primary, and the report.

use crate::html;
use crate::ledger::{Client, Ledger, UnixMs, now_ms};
use crate::load::{Load, LoadConfig, catalog};
use crate::metrics;
use crate::report::{
    LISTED_KEYS, Load as LoadFigures, Marker, Report, RunbookRun, StepTiming, Target, Verdict,
};
use crate::scenario::{DrillOptions, Replication, Scenario};
use crate::verify::{self, Fence};
use lifeboat_contract::exit;
use lifeboat_local::events::{self, Event};
use lifeboat_local::{LocalError, ReplicationMode, Runtime};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long the DR automation (or the switchover) gets to bring writes back before the drill gives up.
pub const RECOVERY_TIMEOUT: Duration = Duration::from_secs(90);
/// Load keeps running at least this long after recovery, so the report sees service restored.
pub(crate) const AFTER_RECOVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unavailable(String),
    /// The drill ran but could not finish (no recovery, the switchover failed, the ledger check could not
    /// read the database).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Local(#[from] LocalError),
}

impl DrillError {
    pub fn exit_code(&self) -> i32 {
        match self {
            DrillError::Usage(_) => exit::USAGE,
            DrillError::Unavailable(_) => exit::UNAVAILABLE,
            DrillError::Failed(_) => exit::FAILED,
            DrillError::Local(e) => e.exit_code(),
        }
    }
}

/// Where the runtime is and how to run `lifeboat` itself (for the planned switchover and for the client
/// inside an isolated region).
#[derive(Debug, Clone)]
pub struct DrillEnv {
    /// `local.state_dir` of the configuration.
    pub state_dir: PathBuf,
    pub lifeboat_bin: PathBuf,
    /// Arguments every `lifeboat` invocation needs before the command (e.g. `--config <file>`).
    pub lifeboat_global_args: Vec<OsString>,
}

/// What a finished drill produced.
#[derive(Debug)]
pub struct DrillOutcome {
    pub report: Report,
    pub report_json: PathBuf,
    pub report_html: PathBuf,
}

impl DrillOutcome {
    /// `DRILL_VERDICT_FAILED` when the ledger check found lost, duplicated, altered or fenced-out writes;
    /// `FAILED` when it found none but the service never came back; `OK` otherwise.
    pub fn exit_code(&self) -> i32 {
        let r = &self.report;
        if r.lost + r.duplicates + r.lines_mismatched + r.writes_accepted_after_fence > 0 {
            exit::DRILL_VERDICT_FAILED
        } else if !r.recovered || r.verdict == Verdict::Fail {
            exit::FAILED
        } else {
            exit::OK
        }
    }
}

pub(crate) fn progress(started_ms: UnixMs, message: &str) {
    eprintln!(
        "==> t+{:5.2} s  {message}",
        (now_ms() - started_ms) as f64 / 1000.0
    );
}

pub(crate) fn to_local_mode(r: Replication) -> ReplicationMode {
    match r {
        Replication::SemiSync => ReplicationMode::SemiSync,
        Replication::Async => ReplicationMode::Async,
    }
}

pub(crate) fn from_local_mode(r: ReplicationMode) -> Replication {
    match r {
        ReplicationMode::SemiSync => Replication::SemiSync,
        ReplicationMode::Async => Replication::Async,
    }
}

/// Opens the runtime for a drill: it must be up, and its active region and front door must be healthy.
pub async fn open_runtime(state_dir: &Path) -> Result<Runtime, DrillError> {
    let runtime = Runtime::open_up(state_dir).map_err(|e| match e {
        LocalError::NotUp(_) => {
            DrillError::Unavailable(format!("{e}; a drill needs the local runtime"))
        }
        other => DrillError::Local(other),
    })?;
    if runtime.supervisor_pid().is_none() {
        return Err(DrillError::Unavailable(format!(
            "the local runtime in {} has no supervisor running: run `lifeboat local up` to restart it",
            runtime.layout().root().display()
        )));
    }
    Ok(runtime)
}

/// Starts the client that writes from inside `region`'s namespace straight to its storefront for
/// `seconds` (partition drills: what a cut-off region accepts is checked against the fence), its ledger
/// written to `ledger_file`.
pub(crate) fn spawn_inside_client(
    runtime: &Runtime,
    env: &DrillEnv,
    region: &str,
    rate: f64,
    seconds: f64,
    key_prefix: &str,
    ledger_file: &Path,
) -> Result<tokio::process::Child, DrillError> {
    let url = runtime.storefront_url(region)?;
    let mut command = runtime.command_in_region(region, &env.lifeboat_bin)?;
    command
        .args(&env.lifeboat_global_args)
        .args(["drill", "--inside-client", &url, "--load"])
        .arg(rate.to_string())
        .arg("--duration")
        .arg(seconds.to_string())
        .arg("--client-key-prefix")
        .arg(key_prefix)
        .arg("--client-region")
        .arg(region)
        .arg("--client-ledger")
        .arg(ledger_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DrillError::Failed(format!("starting the client inside {region}: {e}")))
}

/// Who is primary before the drill, and the replication mode it runs with.
pub(crate) struct Prepared {
    pub primary: String,
    pub standby: String,
    pub epoch_before: u64,
    pub replication: Replication,
}

/// The preflight every drill shares: no fence up, the standby replicating; then the replication mode asked
/// for.
pub(crate) async fn prepare(
    options: &DrillOptions,
    runtime: &Runtime,
) -> Result<Prepared, DrillError> {
    // Preflight: who is primary, is everything there to break.
    let control = runtime
        .control()
        .view()
        .await
        .map_err(|e| DrillError::Unavailable(e.to_string()))?;
    let primary = control.state.active_region.clone();
    let standby = runtime.peer_region(&primary)?.name.clone();
    let epoch_before = control.state.epoch;
    if control.state.fence_raised {
        return Err(DrillError::Unavailable(format!(
            "the write fence is raised (epoch {epoch_before}): a runbook is under way or stopped half-way; finish it \
             with `lifeboat resume` before a drill"
        )));
    }
    let status = runtime.status().await;
    let standby_replicating = status.region(&standby).is_some_and(|r| r.replicating());
    if !standby_replicating {
        return Err(DrillError::Unavailable(format!(
            "{standby} is not replicating from {primary}: a drill needs both regions healthy (run `lifeboat failback` \
             or `lifeboat local status` to see why)"
        )));
    }

    let replication = match options.replication {
        Some(wanted) if to_local_mode(wanted) != runtime.settings().replication => {
            eprintln!(
                "==> switching replication to {wanted} for this drill (it stays so afterwards)"
            );
            runtime.set_replication(to_local_mode(wanted)).await?;
            wanted
        }
        Some(wanted) => wanted,
        None => from_local_mode(runtime.settings().replication),
    };
    Ok(Prepared {
        primary,
        standby,
        epoch_before,
        replication,
    })
}

/// Runs a whole drill. Progress goes to stderr; the report is written to `options.report_dir`.
pub async fn run(options: &DrillOptions, env: &DrillEnv) -> Result<DrillOutcome, DrillError> {
    if options.scenario.is_cycle() {
        return crate::cycle::run(options, env).await;
    }
    let runtime = open_runtime(&env.state_dir).await?;
    std::fs::create_dir_all(&options.report_dir).map_err(|e| {
        DrillError::Usage(format!(
            "--report: cannot create {}: {e}",
            options.report_dir.display()
        ))
    })?;

    let Prepared {
        primary,
        standby,
        epoch_before,
        replication,
    } = prepare(options, &runtime).await?;

    // Running a drill of a fault is the explicit decision automatic failover needs; the previous setting
    // comes back afterwards.
    let automatic_before = runtime.settings().automatic_failover;
    let automatic = options.scenario.is_fault();
    if automatic != automatic_before {
        runtime.update_settings(|s| s.automatic_failover = automatic)?;
    }
    let result = drive(
        options,
        env,
        &runtime,
        &primary,
        &standby,
        epoch_before,
        replication,
        automatic,
    )
    .await;
    if automatic != automatic_before {
        // Best effort: the drill's own result is what the caller needs to see.
        let _ = runtime.update_settings(|s| s.automatic_failover = automatic_before);
    }
    result
}

#[expect(
    clippy::too_many_arguments,
    reason = "the drill's phases share these; splitting `drive` into a `Drill` type is the open refactor"
)]
async fn drive(
    options: &DrillOptions,
    env: &DrillEnv,
    runtime: &Runtime,
    primary: &str,
    standby: &str,
    epoch_before: u64,
    replication: Replication,
    automatic: bool,
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
    let started_at = rfc3339_now();

    let load = Load::start(LoadConfig::new(
        &front_door,
        options.rate,
        &run_tag,
        Client::FrontDoor,
        products.clone(),
    ))
    .map_err(|e| DrillError::Failed(e.to_string()))?;
    let t0 = load.started_ms();
    // The load keeps running until the recovery has been seen (or given up on), even past the duration asked.
    let planned_end = t0 + (options.duration_s * 1000.0) as i64;
    progress(
        t0,
        &format!(
            "load: {} checkouts/s through the front door {front_door} (keys {run_tag}-N)",
            options.rate
        ),
    );

    // The partition's own client: inside the primary's namespace, straight to its storefront.
    let inside_rate = (options.rate / 4.0).max(5.0);
    let inside_ledger_file = options.report_dir.join("inside-ledger.jsonl");
    let mut inside_client = if options.scenario == Scenario::Partition {
        let url = runtime.storefront_url(primary)?;
        let child = spawn_inside_client(
            runtime,
            env,
            primary,
            inside_rate,
            options.duration_s,
            &format!("{run_tag}-in"),
            &inside_ledger_file,
        )?;
        progress(
            t0,
            &format!("client inside {primary}: {inside_rate} checkouts/s straight to {url}"),
        );
        Some(child)
    } else {
        None
    };

    // The fault, a third of the way in: load on both sides of it.
    let fault_at = t0 + (options.duration_s * 1000.0 / 3.0) as i64;
    tokio::time::sleep(Duration::from_millis((fault_at - now_ms()).max(0) as u64)).await;
    let fault_ms = now_ms();
    progress(
        t0,
        &format!("{} ({primary})", options.scenario.fault_label()),
    );
    let mut switchover = None;
    let injected: Result<(), DrillError> = match options.scenario {
        Scenario::Planned => {
            let mut command = tokio::process::Command::new(&env.lifeboat_bin);
            command
                .args(&env.lifeboat_global_args)
                .args(["switchover", "--target", "local", "--yes"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            match command.spawn() {
                Ok(child) => {
                    switchover = Some(child);
                    Ok(())
                }
                Err(e) => Err(DrillError::Failed(format!(
                    "starting `{} switchover`: {e}",
                    env.lifeboat_bin.display()
                ))),
            }
        }
        Scenario::DbCrash => runtime
            .kill_database(primary)
            .map(|_| ())
            .map_err(DrillError::from),
        Scenario::RegionOutage => runtime
            .kill_region(primary)
            .map(|_| ())
            .map_err(DrillError::from),
        Scenario::Partition => runtime.isolate(primary).map_err(DrillError::from),
        Scenario::Cycle | Scenario::Soak => Err(DrillError::Usage(format!(
            "{} runs whole cycles, not one transition",
            options.scenario
        ))),
    };
    if let Err(e) = injected {
        load.stop_now();
        let _ = load.finish().await;
        return Err(e);
    }

    // Recovery: the other region active, fence down, under a newer epoch.
    let mut notes = Vec::new();
    let mut switchover_output = None;
    let deadline = fault_ms + RECOVERY_TIMEOUT.as_millis() as i64;
    let mut recovered: Option<(UnixMs, String, u64)> = None;
    let mut detected_reported = false;
    let mut gave_up: Option<String> = None;
    while now_ms() < deadline {
        if let Some(child) = switchover.as_mut()
            && let Ok(Some(_)) = child.try_wait()
            && let Some(child) = switchover.take()
        {
            switchover_output = child.wait_with_output().await.ok();
        }
        if !detected_reported
            && let Some(d) = first_event(runtime, fault_ms, events::KIND_REGION_DOWN)
        {
            detected_reported = true;
            progress(
                t0,
                &format!(
                    "DR automation detected {} down",
                    d.region.as_deref().unwrap_or(primary)
                ),
            );
        }
        if let Ok(state) = runtime.control().state().await
            && state.active_region != primary
            && !state.fence_raised
            && state.epoch > epoch_before
        {
            recovered = Some((now_ms(), state.active_region.clone(), state.epoch));
            break;
        }
        if let Some(output) = &switchover_output
            && !output.status.success()
        {
            break;
        }
        // The automation ran and gave up (or declined): nothing more will happen by itself. A moment's grace
        // lets the control state catch up with a run that did succeed.
        if options.scenario.is_fault()
            && let Some(e) = automation_gave_up(runtime, fault_ms)
            && now_ms() - e.at_ms as i64 > 2000
        {
            gave_up = Some(e.detail);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match &recovered {
        Some((at, region, epoch)) => {
            progress(
                t0,
                &format!("recovered: {region} active under epoch {epoch}"),
            );
            let end = planned_end.max(at + AFTER_RECOVERY.as_millis() as i64);
            if end > planned_end {
                notes.push(format!(
                    "the load ran {:.1} s longer than asked, to see writes succeed after the recovery",
                    (end - planned_end) as f64 / 1000.0
                ));
            }
            load.stop_at(end);
        }
        None => {
            let why = match &switchover_output {
                _ if gave_up.is_some() => {
                    format!(
                        "the DR automation did not recover: {}",
                        gave_up.as_deref().unwrap_or_default()
                    )
                }
                Some(o) if !o.status.success() => format!(
                    "the switchover failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                _ => format!(
                    "writes did not come back within {} s of the fault (no region active with the fence down under a newer epoch)",
                    RECOVERY_TIMEOUT.as_secs()
                ),
            };
            progress(t0, &why);
            notes.push(why);
            load.stop_now();
        }
    }
    // Let the switchover command finish writing its report (it ends right after its last step).
    if let Some(child) = switchover.take() {
        match tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await {
            Ok(Ok(output)) => switchover_output = Some(output),
            _ => {
                notes.push("the switchover command did not exit within 30 s of the recovery".into())
            }
        }
    }
    if let Some(output) = &switchover_output
        && !output.status.success()
        && recovered.is_some()
    {
        notes.push(format!(
            "`lifeboat switchover` exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }

    let gauges = load.gauges();
    let mut ledger = load.finish().await;
    let load_end = planned_end.max(
        ledger
            .acks
            .iter()
            .map(|a| a.acked_ms)
            .max()
            .unwrap_or(planned_end),
    );
    progress(
        t0,
        &format!(
            "load stopped: {} checkouts acknowledged through the front door",
            ledger.acks.len()
        ),
    );
    let checkouts_started = ledger.keys_used.len();

    if let Some(mut child) = inside_client.take() {
        match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                notes.push(format!("the client inside {primary} exited with {status}"))
            }
            _ => {
                let _ = child.kill().await;
                notes.push(format!(
                    "the client inside {primary} did not stop in time and was killed"
                ));
            }
        }
        match std::fs::read_to_string(&inside_ledger_file) {
            Ok(text) => match Ledger::from_json_lines(&text) {
                Ok(inside) => ledger.merge(inside),
                Err(e) => notes.push(format!("the inside client's ledger is unreadable: {e}")),
            },
            Err(e) => notes.push(format!(
                "the inside client wrote no ledger ({}): {e}",
                inside_ledger_file.display()
            )),
        }
    }
    if options.scenario == Scenario::Partition {
        runtime.heal(primary)?;
        progress(
            t0,
            &format!(
                "{primary} reconnected (it stays demoted: `lifeboat failback` restores the roles)"
            ),
        );
    }

    // The ledger check against the surviving primary.
    let (new_primary, epoch_after) = match &recovered {
        Some((_, region, epoch)) => (region.clone(), *epoch),
        None => {
            let state = runtime.control().state().await.ok();
            (
                state
                    .as_ref()
                    .map(|s| s.active_region.clone())
                    .unwrap_or_else(|| primary.to_owned()),
                state.map(|s| s.epoch).unwrap_or(epoch_before),
            )
        }
    };
    // Without a recovery: the region still named active if its database answers (nothing moved), else the
    // standby (what a failover would have kept).
    let candidates = if recovered.is_some() {
        vec![new_primary.clone()]
    } else {
        let mut c = vec![new_primary.clone()];
        c.extend(
            [standby.to_owned(), primary.to_owned()]
                .into_iter()
                .filter(|r| *r != new_primary),
        );
        c
    };
    let mut stored = None;
    let mut checked_region = new_primary.clone();
    for region in &candidates {
        match verify::stored_orders(&runtime.admin_db_url(region)?, &format!("{run_tag}-")).await {
            Ok(orders) => {
                stored = Some(orders);
                checked_region = region.clone();
                break;
            }
            Err(e) => notes.push(format!("ledger check on {region}: {e}")),
        }
    }
    let Some(stored) = stored else {
        return Err(DrillError::Failed(format!(
            "the ledger check found no database to read: {}",
            notes.join("; ")
        )));
    };
    if checked_region != new_primary {
        notes.push(format!("the ledger was checked against {checked_region}"));
    }

    let run_events = runtime
        .events()
        .read_since(u64::try_from(t0).unwrap_or(0))
        .unwrap_or_default();
    let runbooks = runbook_runs(&run_events, t0);
    let fence =
        fence_instant(&run_events, fault_ms, epoch_after).filter(|_| epoch_after > epoch_before);
    let verification = verify::check(&ledger, &stored, fence.as_slice());

    let detection = first_event(runtime, fault_ms, events::KIND_REGION_DOWN);
    let detection_s = detection
        .as_ref()
        .filter(|_| options.scenario.is_fault())
        .map(|e| (e.at_ms as i64 - fault_ms) as f64 / 1000.0);
    let gap = metrics::recovery_gap(&ledger, fault_ms);
    let rto_s = gap.map(|g| g.seconds());
    let (write_unavailable_s, unavailable_gaps) =
        metrics::write_unavailability(&ledger, t0, load_end);
    let timeline = metrics::timeline(&ledger, t0, load_end.max(now_ms().min(load_end + 1000)));

    let mut by_region: BTreeMap<String, usize> = BTreeMap::new();
    for a in ledger.acks.iter().filter(|a| a.client == Client::FrontDoor) {
        *by_region.entry(a.region.clone()).or_default() += 1;
    }
    let inside_acks = ledger
        .acks
        .iter()
        .filter(|a| a.client != Client::FrontDoor)
        .count();

    if replication == Replication::Async && !verification.lost.is_empty() {
        notes.push(format!(
            "{} acknowledged orders were lost: with async replication a commit returns before the standby has it, \
             so a failover loses what had not reached the standby yet. This is the trade async makes; semi-sync \
             replication closes it.",
            verification.lost.len()
        ));
    }
    if !automatic && options.scenario.is_fault() {
        notes.push("automatic failover was not allowed during this drill".into());
    }
    if automatic {
        notes.push(
            "automatic failover was allowed for this drill (running a fault drill is the operator's explicit \
             decision); the runtime's previous setting was restored afterwards"
                .into(),
        );
    }

    let targets = targets(
        options,
        replication,
        &verification,
        detection_s,
        rto_s,
        write_unavailable_s,
    );
    let passed = verification.passed() && recovered.is_some();
    if recovered.is_none() {
        notes.push("the drill did not see the service recover: the verdict is FAIL".into());
    }
    let report = Report {
        scenario: options.scenario,
        verdict: if passed { Verdict::Pass } else { Verdict::Fail },
        replication,
        load: LoadFigures {
            rate_per_s: options.rate,
            duration_s: options.duration_s,
            checkouts_started,
            inside_rate_per_s: (options.scenario == Scenario::Partition).then_some(inside_rate),
            client_peaks: Some(gauges.peaks()),
        },
        automatic_failover_allowed: automatic,
        recovered: recovered.is_some(),
        started_at,
        finished_at: rfc3339_now(),
        primary_before: primary.to_owned(),
        primary_after: Some(new_primary.clone()),
        epoch_before,
        epoch_after: Some(epoch_after),
        acknowledged: verification.acknowledged,
        lost: verification.lost.len(),
        duplicates: verification.duplicates.len(),
        lines_mismatched: verification.lines_mismatched.len(),
        writes_accepted_after_fence: verification.accepted_after_fence.len(),
        detection_s,
        rto_s,
        write_unavailable_s,
        attempts_failed: ledger.failures.len(),
        checkouts_abandoned: ledger.abandoned.len(),
        acknowledged_by_region: by_region.into_iter().collect(),
        acknowledged_inside_region: inside_acks,
        fence,
        fault: Marker {
            label: format!("{} ({primary})", options.scenario.fault_label()),
            at_s: (fault_ms - t0) as f64 / 1000.0,
        },
        detection: detection
            .as_ref()
            .filter(|_| options.scenario.is_fault())
            .map(|e| Marker {
                label: format!("detected: {} down", e.region.as_deref().unwrap_or(primary)),
                at_s: (e.at_ms as i64 - t0) as f64 / 1000.0,
            }),
        runbooks,
        unavailable_gaps,
        lost_keys: verification
            .lost
            .iter()
            .take(LISTED_KEYS)
            .cloned()
            .collect(),
        duplicate_keys: verification
            .duplicates
            .iter()
            .take(LISTED_KEYS)
            .cloned()
            .collect(),
        lines_mismatched_keys: verification
            .lines_mismatched
            .iter()
            .take(LISTED_KEYS)
            .cloned()
            .collect(),
        after_fence_keys: verification
            .accepted_after_fence
            .iter()
            .take(LISTED_KEYS)
            .cloned()
            .collect(),
        targets,
        notes,
        timeline,
        ledger_file: options
            .report_dir
            .join("ledger.jsonl")
            .display()
            .to_string(),
        transitions: Vec::new(),
        set_aside: Vec::new(),
        replicating_at_end: None,
        soak: None,
    };
    write_report(&report, &ledger, &options.report_dir)
}

/// Writes `report.json`, `report.html` and `ledger.jsonl` into `dir`.
pub fn write_report(
    report: &Report,
    ledger: &Ledger,
    dir: &Path,
) -> Result<DrillOutcome, DrillError> {
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, DrillError> {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| DrillError::Failed(format!("writing {}: {e}", path.display())))?;
        Ok(path)
    };
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| DrillError::Failed(format!("encoding the report: {e}")))?;
    let report_json = write("report.json", &json)?;
    let report_html = write("report.html", html::render(report).as_bytes())?;
    write("ledger.jsonl", ledger.to_json_lines().as_bytes())?;
    Ok(DrillOutcome {
        report: report.clone(),
        report_json,
        report_html,
    })
}

/// The automation's last word after `since_ms`, when it did not end in success.
pub(crate) fn automation_gave_up(runtime: &Runtime, since_ms: UnixMs) -> Option<Event> {
    let events = runtime
        .events()
        .read_since(u64::try_from(since_ms).unwrap_or(0))
        .ok()?;
    let last = events.into_iter().rev().find(|e| {
        e.kind == events::KIND_AUTOMATION_FINISHED
            || e.kind == events::KIND_AUTOMATION_DECLINED
            || e.kind == events::KIND_AUTOMATION_STARTED
    })?;
    let failed = last.kind == events::KIND_AUTOMATION_DECLINED
        || (last.kind == events::KIND_AUTOMATION_FINISHED && !last.detail.contains("succeeded"));
    failed.then_some(last)
}

pub(crate) fn first_event(runtime: &Runtime, since_ms: UnixMs, kind: &str) -> Option<Event> {
    runtime
        .events()
        .read_since(u64::try_from(since_ms).unwrap_or(0))
        .ok()?
        .into_iter()
        .find(|e| e.kind == kind)
}

/// When the old epoch stopped being allowed: the end of the step that waited out the demoted region's lease
/// (failover), else the end of the step that raised the fence (switchover).
pub fn fence_instant(events: &[Event], since_ms: UnixMs, epoch: u64) -> Option<Fence> {
    let finished = |step: &str| {
        events
            .iter()
            .filter(|e| e.at_ms as i64 >= since_ms && e.kind == events::KIND_STEP_FINISHED)
            .find(|e| e.step.as_deref() == Some(step))
            .map(|e| e.at_ms as i64)
    };
    finished("wait-lease")
        .or_else(|| finished("raise-fence"))
        .map(|at_ms| Fence { epoch, at_ms })
}

/// Groups step events by run, in the order they happened.
pub fn runbook_runs(events: &[Event], t0: UnixMs) -> Vec<RunbookRun> {
    let secs = |at: u64| (at as i64 - t0) as f64 / 1000.0;
    let mut runs: Vec<RunbookRun> = Vec::new();
    for e in events {
        let (Some(run_id), Some(step)) = (&e.run_id, &e.step) else {
            continue;
        };
        let index = match runs.iter().position(|r| &r.run_id == run_id) {
            Some(i) => i,
            None => {
                runs.push(RunbookRun {
                    runbook: String::new(),
                    run_id: run_id.clone(),
                    outcome: "running".into(),
                    started_s: secs(e.at_ms),
                    ended_s: None,
                    steps: Vec::new(),
                });
                runs.len() - 1
            }
        };
        let run = &mut runs[index];
        match e.kind.as_str() {
            events::KIND_STEP_STARTED => {
                // A step re-run after a resume gets a row of its own.
                run.steps.push(StepTiming {
                    name: step.clone(),
                    started_s: secs(e.at_ms),
                    ended_s: None,
                    duration_s: None,
                    outcome: "started".into(),
                });
            }
            events::KIND_STEP_FINISHED | events::KIND_STEP_FAILED => {
                let failed = e.kind == events::KIND_STEP_FAILED;
                let open = run
                    .steps
                    .iter()
                    .rposition(|s| &s.name == step && s.ended_s.is_none());
                let index = match open {
                    Some(index) => index,
                    None => {
                        run.steps.push(StepTiming {
                            name: step.clone(),
                            started_s: secs(e.at_ms),
                            ended_s: None,
                            duration_s: None,
                            outcome: String::new(),
                        });
                        run.steps.len() - 1
                    }
                };
                let row = &mut run.steps[index];
                row.ended_s = Some(secs(e.at_ms));
                row.duration_s = Some(secs(e.at_ms) - row.started_s);
                row.outcome = if failed {
                    if e.detail.is_empty() {
                        "failed".into()
                    } else {
                        format!("failed: {}", e.detail)
                    }
                } else if e.detail.is_empty() {
                    "ok".into()
                } else {
                    e.detail.clone()
                };
                run.ended_s = Some(secs(e.at_ms));
            }
            _ => {}
        }
    }
    for run in &mut runs {
        let has = |name: &str| run.steps.iter().any(|s| s.name == name);
        // Reprotect on its own notifies without promoting; a failback promotes before it notifies.
        run.runbook = if has("reprotect") && has("notify") && !has("promote") {
            "reprotect"
        } else if has("reprotect") || has("preflight-failback") {
            "failback"
        } else if has("wait-lease") {
            "failover"
        } else {
            "switchover"
        }
        .into();
        let all_ended = run.steps.iter().all(|s| s.ended_s.is_some());
        let any_failed = run.steps.iter().any(|s| s.outcome.starts_with("failed"));
        run.outcome = if any_failed {
            "failed".into()
        } else if all_ended && run.steps.iter().any(|s| s.name == "record-active-region") {
            "succeeded".into()
        } else {
            "incomplete".into()
        };
    }
    runs
}

pub(crate) fn targets(
    options: &DrillOptions,
    replication: Replication,
    v: &verify::Verification,
    detection_s: Option<f64>,
    rto_s: Option<f64>,
    write_unavailable_s: f64,
) -> Vec<Target> {
    let count = |name: &str, n: usize| Target {
        name: name.into(),
        limit: "0".into(),
        measured: n.to_string(),
        met: n == 0,
    };
    let at_most = |name: &str, limit: f64, value: Option<f64>| Target {
        name: name.into(),
        limit: format!("≤ {limit} s"),
        measured: value
            .map(|v| format!("{v:.2} s"))
            .unwrap_or_else(|| "not measured".into()),
        met: value.is_some_and(|v| v <= limit),
    };
    let semi = replication == Replication::SemiSync;
    let mut t = vec![count("duplicates", v.duplicates.len())];
    match options.scenario {
        Scenario::Planned => {
            t.insert(0, count("lost", v.lost.len()));
            t.push(at_most(
                "write unavailability",
                1.0,
                Some(write_unavailable_s),
            ));
        }
        Scenario::DbCrash => {
            if semi {
                t.insert(0, count("lost (semi-sync)", v.lost.len()));
            }
            t.push(at_most("detection", 3.5, detection_s));
            t.push(at_most("RTO", 5.0, rto_s));
        }
        Scenario::Partition => {
            t.insert(0, count("lost", v.lost.len()));
            t.push(count(
                "writes accepted after the fence",
                v.accepted_after_fence.len(),
            ));
        }
        Scenario::RegionOutage => {
            if semi {
                t.insert(0, count("lost (semi-sync)", v.lost.len()));
            }
            t.push(at_most("RTO", 5.0, rto_s));
        }
        Scenario::Cycle | Scenario::Soak => {
            if semi {
                t.insert(0, count("lost (semi-sync)", v.lost.len()));
            }
            t.push(count(
                "writes accepted after a fence",
                v.accepted_after_fence.len(),
            ));
            // The worst role change of the cycle(s): a failover's or a failback's.
            t.push(at_most("worst RTO", 5.0, rto_s));
        }
    }
    t
}

/// UTC, to the millisecond: `2026-11-25T15:02:31.595Z`.
pub(crate) fn rfc3339_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

/// The client that runs inside a region's namespace for the partition scenario: load straight at that
/// region's storefront for `duration_s`, its ledger written to `ledger_file`.
pub async fn run_inside_client(
    url: &str,
    rate: f64,
    duration_s: f64,
    key_prefix: &str,
    region: &str,
    ledger_file: &Path,
) -> Result<usize, DrillError> {
    let products = catalog(url, 3)
        .await
        .map_err(|e| DrillError::Unavailable(e.to_string()))?;
    let mut config = LoadConfig::new(
        url,
        rate,
        key_prefix,
        Client::InsideRegion(region.to_owned()),
        products,
    );
    // Cut off, this client cannot reach anything else: it gives up quickly once its region refuses.
    config.retry_grace = Duration::from_secs(3);
    let load = Load::start(config).map_err(|e| DrillError::Failed(e.to_string()))?;
    load.stop_at(load.started_ms() + (duration_s * 1000.0) as i64);
    let ledger = load.finish().await;
    std::fs::write(ledger_file, ledger.to_json_lines())
        .map_err(|e| DrillError::Failed(format!("writing {}: {e}", ledger_file.display())))?;
    Ok(ledger.acks.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: u64, kind: &str, run: &str, step: &str) -> Event {
        Event::now(kind).step(run, step).with_at(at_ms)
    }

    trait At {
        fn with_at(self, at_ms: u64) -> Self;
    }
    impl At for Event {
        fn with_at(mut self, at_ms: u64) -> Self {
            self.at_ms = at_ms;
            self
        }
    }

    #[test]
    fn steps_are_grouped_per_run_and_timed() {
        let events = vec![
            Event::now(events::KIND_REGION_DOWN).with_at(1500),
            ev(2000, events::KIND_STEP_STARTED, "r1", "raise-fence"),
            ev(2100, events::KIND_STEP_FINISHED, "r1", "raise-fence"),
            ev(2100, events::KIND_STEP_STARTED, "r1", "wait-lease"),
            ev(3300, events::KIND_STEP_FINISHED, "r1", "wait-lease"),
            ev(3300, events::KIND_STEP_STARTED, "r1", "promote"),
            ev(3400, events::KIND_STEP_FAILED, "r1", "promote"),
        ];
        let runs = runbook_runs(&events, 1000);
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!(run.runbook, "failover");
        assert_eq!(run.outcome, "failed");
        assert_eq!(run.steps.len(), 3);
        assert_eq!(run.steps[1].name, "wait-lease");
        assert_eq!(run.steps[1].started_s, 1.1);
        assert!((run.steps[1].duration_s.unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(run.steps[2].outcome, "failed");

        let fence = fence_instant(&events, 1000, 2).unwrap();
        assert_eq!(
            fence,
            Fence {
                epoch: 2,
                at_ms: 3300
            },
            "the lease wait, not the fence, ends the old epoch"
        );
        let switchover = vec![ev(2100, events::KIND_STEP_FINISHED, "r2", "raise-fence")];
        assert_eq!(fence_instant(&switchover, 1000, 3).unwrap().at_ms, 2100);
        assert_eq!(
            fence_instant(&switchover, 2500, 3),
            None,
            "events before the drill do not count"
        );
    }
}
