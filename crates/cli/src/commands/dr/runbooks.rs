//! `lifeboat switchover`, `lifeboat failover`, `lifeboat failback`, `lifeboat reprotect`: start a run.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args as ClapArgs;
use lifeboat_runbook::{Engine, RunKind, RunRequest};

use super::target::{DrTarget, TargetArgs, backend_for, settings_for};
use super::{Progress, drive, engine_error, tokio_runtime};
use crate::context::Context;
use crate::error::CliError;

pub const SWITCHOVER_AFTER_HELP: &str = "\
Examples:
  lifeboat switchover                         move the active role to the other region, asking first
  lifeboat switchover --to us-west-2 --yes    non-interactive
  lifeboat switchover --target local --yes    on the local two-region runtime

Planned, no data loss: preflight, pre-scale, fence writes (new epoch), wait for replication to drain,
promote, shift traffic, lower the fence, verify with a real request, notify, record the active region.
Refused (exit 3) when the standby is not ready; a failed step pauses the run (exit 4, `lifeboat resume`).";

pub const FAILOVER_AFTER_HELP: &str = "\
Examples:
  lifeboat failover --to us-west-2 --allow-data-loss
  lifeboat failover --to us-west-2 --allow-data-loss --yes --target local

Unplanned: the active region is lost. Steps that need it are tried briefly and skipped; the standby is
promoted without waiting for it, so writes not yet replicated are lost (the report estimates how many
seconds). Without --allow-data-loss (or dr.allow_data_loss = true) it refuses.";

pub const FAILBACK_AFTER_HELP: &str = "\
Examples:
  lifeboat failback            back to regions.primary, asking first
  lifeboat failback --yes --target local
  lifeboat failback --to us-west-2 --yes   back to us-west-2 when it was the active region before

Checks the returning region (regions.primary unless --to) is healthy again, re-protects it (makes it a
replica of the active region, setting aside writes it holds that the active region never saw) when needed,
then switches over to it with no data loss.";

pub const REPROTECT_AFTER_HELP: &str = "\
Examples:
  lifeboat reprotect                    rejoin the region that is not active, asking first
  lifeboat reprotect --yes --target local
  lifeboat reprotect --region us-east-1 --yes

After a failover the old primary comes back holding nothing the active region wrote since, and perhaps
writes the active region never saw. Reprotect checks that the active region is reachable, restarts what is
stopped in the returning region, and makes its database a replica of the active one: re-pointed when its
history is a prefix of the active one's; otherwise its extra transactions are saved to a file in the run's
report directory (named in the report) and it is rebuilt from a copy of the active database. The active
role does not move and the active region keeps taking writes throughout. `lifeboat failback` runs the same
step first, then switches over.";

#[derive(Debug, ClapArgs)]
pub struct SwitchoverArgs {
    /// The region to make active (default: the one that is not active now).
    #[arg(long, value_name = "REGION")]
    pub to: Option<String>,
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, ClapArgs)]
pub struct FailoverArgs {
    /// The region to make active (the surviving one).
    #[arg(long, value_name = "REGION")]
    pub to: String,
    /// Accept losing the writes the lost region had not yet replicated.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, ClapArgs)]
pub struct FailbackArgs {
    /// The region to return to (default: regions.primary).
    #[arg(long, value_name = "REGION")]
    pub to: Option<String>,
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, ClapArgs)]
pub struct ReprotectArgs {
    /// The region to make a replica again (default: the one that is not active now).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn switchover(args: SwitchoverArgs, ctx: &Context) -> Result<(), CliError> {
    let config = ctx.config()?;
    let settings = settings_for(args.target.target, &config);
    if let Some(to) = &args.to {
        check_region(&settings, to)?;
    }
    let rt = tokio_runtime()?;
    let target = rt.block_on(backend_for(args.target.target, &config, ctx))?;
    let active = rt.block_on(active_region(&target))?;
    let to = match &args.to {
        Some(to) => to.clone(),
        None => other(&target.settings, &active)?,
    };
    if to == active {
        return Err(CliError::refused(format!(
            "{to} is already the active region; nothing to switch"
        )));
    }
    let request = RunRequest {
        kind: RunKind::Switchover,
        from: active,
        to,
        settings: target.settings.clone(),
        allow_data_loss: false,
    };
    start(ctx, &rt, &target, request, args.yes)
}

pub fn failover(args: FailoverArgs, ctx: &Context) -> Result<(), CliError> {
    let config = ctx.config()?;
    let settings = settings_for(args.target.target, &config);
    check_region(&settings, &args.to)?;
    let from = other(&settings, &args.to)?;
    let request = RunRequest {
        kind: RunKind::Failover,
        from,
        to: args.to.clone(),
        settings,
        allow_data_loss: args.allow_data_loss,
    };
    // Refuse before touching anything: no permission means no connection either.
    Engine::validate(&request).map_err(engine_error)?;
    let rt = tokio_runtime()?;
    let target = rt.block_on(backend_for(args.target.target, &config, ctx))?;
    let request = RunRequest {
        settings: target.settings.clone(),
        ..request
    };
    start(ctx, &rt, &target, request, args.yes)
}

pub fn failback(args: FailbackArgs, ctx: &Context) -> Result<(), CliError> {
    let config = ctx.config()?;
    if let Some(to) = &args.to {
        check_region(&settings_for(args.target.target, &config), to)?;
    }
    let rt = tokio_runtime()?;
    let target = rt.block_on(backend_for(args.target.target, &config, ctx))?;
    let (home, named) = match &args.to {
        Some(to) => (to.clone(), "--to"),
        None => (target.settings.primary_region.clone(), "regions.primary"),
    };
    let active = rt.block_on(active_region(&target))?;
    if active == home {
        return Err(CliError::refused(format!(
            "{home} ({named}) is already the active region; nothing to fail back"
        )));
    }
    let request = RunRequest {
        kind: RunKind::Failback,
        from: active,
        to: home,
        settings: target.settings.clone(),
        allow_data_loss: false,
    };
    start(ctx, &rt, &target, request, args.yes)
}

pub fn reprotect(args: ReprotectArgs, ctx: &Context) -> Result<(), CliError> {
    let config = ctx.config()?;
    if let Some(region) = &args.region {
        check_region(&settings_for(args.target.target, &config), region)?;
    }
    let rt = tokio_runtime()?;
    let target = rt.block_on(backend_for(args.target.target, &config, ctx))?;
    let active = rt.block_on(active_region(&target))?;
    let region = match &args.region {
        Some(region) => region.clone(),
        None => other(&target.settings, &active)?,
    };
    if region == active {
        return Err(CliError::refused(format!(
            "{region} is the active region: reprotect rejoins the passive region as its replica"
        )));
    }
    let request = RunRequest {
        kind: RunKind::Reprotect,
        from: active,
        to: region,
        settings: target.settings.clone(),
        allow_data_loss: false,
    };
    start(ctx, &rt, &target, request, args.yes)
}

fn start(
    ctx: &Context,
    rt: &tokio::runtime::Runtime,
    target: &DrTarget,
    request: RunRequest,
    yes: bool,
) -> Result<(), CliError> {
    confirm(&request, target, yes)?;
    let target = target.coordinated_in(&request.to);
    let progress = Progress::new(None);
    let on_event = |e: &lifeboat_runbook::JournalEvent| progress.on_event(e);
    let engine = target.engine().with_progress(&on_event);
    drive(ctx, rt, &progress, engine.start(&request))
}

/// Asks on the terminal unless `--yes`; without a terminal and without `--yes`, refuses.
fn confirm(request: &RunRequest, target: &DrTarget, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    let question = if request.kind == RunKind::Reprotect {
        format!(
            "reprotect {} as a replica of {} on the {} target (writes only {} holds are saved to a file, then \
             its database is rebuilt from {}). Proceed? [y/N] ",
            request.to,
            request.from,
            target.target.as_str(),
            request.to,
            request.from
        )
    } else {
        format!(
            "{} {} → {} on the {} target{}. Proceed? [y/N] ",
            request.kind,
            request.from,
            request.to,
            target.target.as_str(),
            if request.kind == RunKind::Failover {
                ", accepting the loss of unreplicated writes"
            } else {
                ""
            }
        )
    };
    if !std::io::stdin().is_terminal() {
        return Err(CliError::refused(format!(
            "{} needs confirmation and stdin is not a terminal: pass --yes to run it non-interactively",
            request.kind
        )));
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::internal(format!("cannot read the confirmation: {e}")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::refused(format!(
            "{} not confirmed; nothing was changed",
            request.kind
        )))
    }
}

fn check_region(settings: &lifeboat_runbook::DrSettings, region: &str) -> Result<(), CliError> {
    if settings.is_known_region(region) {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "--to {region}: not one of the configured regions ({} and {})",
            settings.primary_region, settings.standby_region
        )))
    }
}

fn other(settings: &lifeboat_runbook::DrSettings, region: &str) -> Result<String, CliError> {
    settings
        .region_pair()
        .other_region(region)
        .map(str::to_owned)
        .ok_or_else(|| {
            CliError::usage(format!(
                "region {region} is not one of the configured regions ({} and {})",
                settings.primary_region, settings.standby_region
            ))
        })
}

/// The region active now, as the target observes it.
async fn active_region(target: &DrTarget) -> Result<String, CliError> {
    let readiness = target.backend.readiness().await.map_err(|e| {
        CliError::unavailable(format!(
            "cannot observe the {} target: {e}",
            target.target.as_str()
        ))
    })?;
    readiness.active_region().ok_or_else(|| {
        CliError::unavailable(format!(
            "cannot tell which region is active on the {} target (no active-region parameter readable); \
             use `lifeboat failover --to REGION` if the active region is lost",
            target.target.as_str()
        ))
    })
}
