//! The supervisor (`lifeboat local supervise`, started detached by `local up`): the control server,
//! storefront restarts, asset replication, probes of the active region like a Route 53 health check,
//! and the DR automation.
//!
//! Automation: when the active region fails `failure_threshold` probes in a row (each `probe_interval_ms`
//! apart), the supervisor records the detection and runs the runbooks through the local backend — a
//! switchover first (no data loss; refused at preflight when the active region cannot take part), then,
//! only if automatic failover was allowed at `up` (default `dr.allow_data_loss`; drills of fault scenarios
//! turn it on), a failover. It acts once per incident: it re-arms when the active region answers again.
//! While the fence is raised (a run is in progress, or paused and waiting for `lifeboat resume`) it only
//! watches. Databases are never restarted here: a dead database is the orchestrator's business.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use lifeboat_contract::ControlState;
use lifeboat_runbook::{EngineError, EngineOptions, RunKind, RunOutcome, RunRequest};

use crate::dr::LocalDr;
use crate::error::{LocalError, Result};
use crate::events::{self, Event};
use crate::runtime::{Phase, Runtime};

/// Runs the supervisor for the runtime whose state directory is `runtime_dir` (`<state>/local`) until
/// SIGTERM or SIGINT.
pub async fn supervise(runtime_dir: &Path) -> Result<()> {
    let state_dir = runtime_dir.parent().ok_or_else(|| {
        LocalError::Usage(format!(
            "{} is not a runtime directory",
            runtime_dir.display()
        ))
    })?;
    let runtime = Runtime::open(state_dir)?;
    let info = runtime.info().clone();
    let network = info.network.clone().ok_or_else(|| {
        LocalError::Failed(
            "runtime.json has no network yet: `local up` did not get that far".into(),
        )
    })?;
    let layout = runtime.layout().clone();
    let initial = ControlState {
        active_region: info.settings.primary_region.clone(),
        epoch: 0,
        fence_raised: false,
        lease_ms: u64::from(info.settings.lease_ms),
    };
    let state = crate::control::load_or(&layout.control_json(), initial)?;
    let regions: Vec<String> = info.regions.iter().map(|r| r.name.clone()).collect();
    let router = crate::control::router(state, regions, layout.control_json());
    let addr: SocketAddr = format!("{}:{}", network.bridge_ip, info.ports.control)
        .parse()
        .map_err(|e| LocalError::Failed(format!("control address: {e}")))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(crate::control::serve(addr, router, async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));
    tracing::info!("control server on http://{addr}");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| LocalError::Failed(format!("installing a SIGTERM handler: {e}")))?;
    let interval = Duration::from_millis(u64::from(info.settings.probe_interval_ms));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut watch = Watch::new(&runtime);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
        if server.is_finished() {
            break;
        }
        watch.tick().await;
    }
    let _ = stop_tx.send(true);
    match server.await {
        Ok(result) => result,
        Err(e) => Err(LocalError::Failed(format!("control server task: {e}"))),
    }
}

struct Watch {
    runtime: Runtime,
    client: reqwest::Client,
    probe_timeout: Duration,
    failures: u32,
    /// False after the automation acted on an incident, until the active region answers again.
    armed: bool,
    automation: Option<tokio::task::JoinHandle<()>>,
    last_restart: HashMap<String, Instant>,
}

impl Watch {
    fn new(runtime: &Runtime) -> Self {
        let interval = u64::from(runtime.settings().probe_interval_ms);
        // Bounded well inside the interval, so a cut-off region is detected on schedule.
        let probe_timeout = Duration::from_millis((interval / 2).clamp(50, 500));
        Watch {
            runtime: runtime.clone(),
            client: reqwest::Client::builder()
                .timeout(probe_timeout)
                .build()
                .unwrap_or_default(),
            probe_timeout,
            failures: 0,
            armed: true,
            automation: None,
            last_restart: HashMap::new(),
        }
    }

    async fn tick(&mut self) {
        // Settings are read afresh every tick: a drill turns automatic failover on and off in
        // runtime.json while we run. While `up` is still starting things, leave them to it.
        let state_dir = self
            .runtime
            .layout()
            .root()
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        match Runtime::open(&state_dir) {
            Ok(fresh) if fresh.info().phase == Phase::Up => self.runtime = fresh,
            _ => return,
        }
        self.restart_storefronts();
        let Ok(control) = self.runtime.control().state().await else {
            return;
        };
        self.replicate_assets(&control.active_region);
        self.probe(&control).await;
    }

    fn restart_storefronts(&mut self) {
        let layout = self.runtime.layout().clone();
        for region in self.runtime.regions().to_vec() {
            let name = &region.name;
            // Only a storefront that ran and died; never in a region a drill took out.
            if !layout.storefront_pid(name).exists()
                || self.runtime.storefront_pid(name).is_some()
                || layout.outage_marker(name).exists()
                || !crate::netns::namespace_exists(&region.link.namespace)
            {
                continue;
            }
            if self
                .last_restart
                .get(name)
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
            {
                continue;
            }
            self.last_restart.insert(name.clone(), Instant::now());
            match self.runtime.start_storefront(name) {
                Ok(pid) => self.runtime.events().record(
                    Event::now(events::KIND_STOREFRONT_RESTARTED)
                        .region(name)
                        .detail(format!("pid {pid}")),
                ),
                Err(e) => tracing::warn!("restarting the storefront of {name} failed: {e}"),
            }
        }
    }

    fn replicate_assets(&self, active: &str) {
        let layout = self.runtime.layout();
        for region in self.runtime.regions() {
            if region.name == active
                || self.runtime.is_isolated(&region.name).unwrap_or(false)
                || self.runtime.is_isolated(active).unwrap_or(false)
            {
                continue;
            }
            if let Err(e) =
                crate::assets::sync(&layout.assets_dir(active), &layout.assets_dir(&region.name))
            {
                tracing::warn!("asset replication {active} -> {}: {e}", region.name);
            }
        }
    }

    async fn probe(&mut self, control: &ControlState) {
        let running = self.automation.as_ref().is_some_and(|h| !h.is_finished());
        if control.fence_raised || running {
            self.failures = 0;
            return;
        }
        let active = &control.active_region;
        let url = match self.runtime.storefront_url(active) {
            Ok(base) => format!("{base}/health/deep?expect=active"),
            Err(_) => return,
        };
        let ok = matches!(self.client.get(&url).send().await, Ok(r) if r.status().is_success());
        if ok {
            self.failures = 0;
            self.armed = true;
            return;
        }
        if self.runtime.settings().automation_paused {
            // Watching only: a success above still re-arms the automation, a failure counts for nothing
            // (the drill that paused it is moving the roles itself).
            self.failures = 0;
            return;
        }
        self.failures += 1;
        let events = self.runtime.events();
        events.record(
            Event::now(events::KIND_PROBE_FAILED)
                .region(active)
                .detail(format!(
                    "{url} failed ({} of {}, timeout {:?})",
                    self.failures,
                    self.runtime.settings().failure_threshold,
                    self.probe_timeout
                )),
        );
        if self.failures < self.runtime.settings().failure_threshold || !self.armed {
            return;
        }
        self.armed = false;
        self.failures = 0;
        events.record(
            Event::now(events::KIND_REGION_DOWN)
                .region(active)
                .detail(format!(
                    "{} failed probes in a row, {} ms apart",
                    self.runtime.settings().failure_threshold,
                    self.runtime.settings().probe_interval_ms
                )),
        );
        let Ok(standby) = self.runtime.peer_region(active).map(|r| r.name.clone()) else {
            return;
        };
        let runtime = self.runtime.clone();
        let from = active.clone();
        self.automation = Some(tokio::spawn(async move {
            automate(runtime, from, standby).await
        }));
    }
}

/// Switchover, then (if allowed) failover, from `from` to `to`.
async fn automate(runtime: Runtime, from: String, to: String) {
    let events = runtime.events();
    // Read again rather than from start-up: `lifeboat drill` allows automatic failover for the length of a
    // fault drill by rewriting runtime.json.
    let allow_failover = runtime
        .layout()
        .root()
        .parent()
        .and_then(|state_dir| Runtime::open(state_dir).ok())
        .map_or(runtime.settings().automatic_failover, |fresh| {
            fresh.settings().automatic_failover
        });
    let dr = LocalDr::for_runtime(runtime);
    let settings = dr.settings.clone();
    let request = |kind| RunRequest {
        kind,
        from: from.clone(),
        to: to.clone(),
        settings: settings.clone(),
        allow_data_loss: kind == RunKind::Failover,
    };
    events.record(
        Event::now(events::KIND_AUTOMATION_STARTED)
            .region(&to)
            .detail(format!("switchover {from} -> {to}")),
    );
    let switchover = dr
        .engine()
        .with_options(EngineOptions {
            run_timeout: Some(settings.switchover_timeout()),
            ..EngineOptions::default()
        })
        .start(&request(RunKind::Switchover))
        .await;
    let why = match switchover {
        Ok(result) if result.outcome() == RunOutcome::Succeeded => {
            events.record(
                Event::now(events::KIND_AUTOMATION_FINISHED)
                    .region(&to)
                    .detail(format!("switchover {} succeeded", result.report.run_id)),
            );
            return;
        }
        Ok(result) => format!(
            "switchover {} {}: {}",
            result.report.run_id,
            result.outcome(),
            result.report.message
        ),
        Err(EngineError::Locked(e)) => {
            events.record(
                Event::now(events::KIND_AUTOMATION_DECLINED)
                    .detail(format!("another run holds the lock: {e}")),
            );
            return;
        }
        Err(e) => format!("switchover not started: {e}"),
    };
    if !allow_failover {
        events.record(Event::now(events::KIND_AUTOMATION_DECLINED).region(&to).detail(format!(
            "{why}; automatic failover is not allowed for this runtime (dr.allow_data_loss is false): a human decides \
             with `lifeboat failover --target local --to {to} --allow-data-loss`"
        )));
        return;
    }
    events.record(
        Event::now(events::KIND_AUTOMATION_STARTED)
            .region(&to)
            .detail(format!("failover {from} -> {to} ({why})")),
    );
    let detail = match dr.engine().start(&request(RunKind::Failover)).await {
        Ok(result) => format!(
            "failover {} {}: {}",
            result.report.run_id,
            result.outcome(),
            result.report.message
        ),
        Err(e) => format!("failover not started: {e}"),
    };
    events.record(
        Event::now(events::KIND_AUTOMATION_FINISHED)
            .region(&to)
            .detail(detail),
    );
}
