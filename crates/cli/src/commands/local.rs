//! `lifeboat local up | down | status` (and the hidden `lifeboat local supervise` the runtime's
//! supervisor runs as): the local two-region runtime.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use lifeboat_contract::exit;
use lifeboat_local::{LocalError, LocalSettings, ReplicationMode, Runtime};

use crate::context::Context;
use crate::error::CliError;

pub const AFTER_HELP: &str = "\
Examples:
  sudo lifeboat local up                      two regions, semi-sync replication, front door on local.base_port
  sudo lifeboat local up --replication async
  lifeboat local status
  sudo lifeboat local down                    stops everything, removes namespaces and links

Needs root: every region runs in its own network namespace.";

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: LocalCommand,
}

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Start both regions (databases, replication, storefronts), the front door and the supervisor; or
    /// find them running.
    Up(UpArgs),
    /// Stop every process of the runtime and remove its namespaces and links. The databases, control state
    /// and logs stay: the next `up` starts them again (`up --fresh` deletes them).
    Down,
    /// Show both regions, replication, the front door and the control state.
    Status,
    /// Internal: the supervisor process `local up` starts.
    #[command(hide = true)]
    Supervise {
        #[arg(long, value_name = "DIR")]
        runtime_dir: PathBuf,
    },
}

#[derive(Debug, ClapArgs)]
pub struct UpArgs {
    /// Replication between the regions (default: local.replication).
    #[arg(long, value_name = "MODE", value_parser = ["semi-sync", "async"])]
    pub replication: Option<String>,
    /// Let the supervisor fail over on its own (may lose writes not yet replicated). Default:
    /// dr.allow_data_loss.
    #[arg(long, conflicts_with = "no_automatic_failover")]
    pub automatic_failover: bool,
    /// Never fail over automatically; only switchovers (no data loss) are automated.
    #[arg(long)]
    pub no_automatic_failover: bool,
    /// Start from empty databases: deletes both regions' databases, the control state and the runbook
    /// journals and reports a previous runtime left (without it, `up` starts them again). Asks first.
    #[arg(long)]
    pub fresh: bool,
    /// With --fresh: do not ask (needed when stdin is not a terminal).
    #[arg(long, requires = "fresh")]
    pub yes: bool,
}

/// Asks before `up --fresh` deletes what a previous runtime left; nothing to delete needs no question.
fn confirm_fresh(settings: &LocalSettings, yes: bool) -> Result<(), CliError> {
    let doomed = Runtime::kept_state(settings).map_err(local_error)?;
    if doomed.is_empty() || yes {
        return Ok(());
    }
    let list = doomed
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if !crate::output::interactive() {
        return Err(CliError::refused(format!(
            "`local up --fresh` deletes {list} and there is no terminal to ask: pass --yes to confirm"
        )));
    }
    if crate::output::ask(&format!(
        "`local up --fresh` deletes both regions' databases and the runbook history: {list}. Proceed?"
    )) {
        Ok(())
    } else {
        Err(CliError::refused(
            "`local up --fresh` not confirmed; nothing was deleted",
        ))
    }
}

fn local_error(e: LocalError) -> CliError {
    CliError::new(e.exit_code(), e.to_string())
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("cannot start the async runtime: {e}")))
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    if let LocalCommand::Supervise { runtime_dir } = &args.command {
        return supervise(runtime_dir);
    }
    let config = ctx.config()?;
    let mut settings = LocalSettings::from_config(&config);
    let rt = tokio_runtime()?;
    match args.command {
        LocalCommand::Up(up) => {
            if let Some(mode) = &up.replication {
                settings.replication = mode.parse::<ReplicationMode>().map_err(CliError::usage)?;
            }
            if up.automatic_failover {
                settings.automatic_failover = true;
            }
            if up.no_automatic_failover {
                settings.automatic_failover = false;
            }
            eprintln!(
                "starting the local runtime in {}/local ...",
                settings.state_dir.display()
            );
            if up.fresh {
                confirm_fresh(&settings, up.yes)?;
            }
            let started = if up.fresh {
                rt.block_on(Runtime::up_fresh(&settings))
            } else {
                rt.block_on(Runtime::up(&settings))
            };
            let (runtime, outcome) = started.map_err(local_error)?;
            let status = rt.block_on(runtime.status());
            if ctx.json {
                let out = serde_json::json!({ "up": outcome, "status": status });
                outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                if outcome.already_up {
                    outln!(
                        "{}",
                        ctx.style
                            .ok("the local runtime is already up; nothing to do")
                    );
                } else if outcome.restarted.is_empty() {
                    outln!("{}", ctx.style.ok("the local runtime is up"));
                } else {
                    outln!(
                        "the local runtime was up; restarted: {}",
                        outcome.restarted.join(", ")
                    );
                }
                for note in &outcome.notes {
                    outln!("note: {note}");
                }
                out!("{}", status.render_text());
            }
            Ok(())
        }
        LocalCommand::Down => {
            let report = rt
                .block_on(Runtime::down(&settings.state_dir))
                .map_err(local_error)?;
            if ctx.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else if !report.was_up {
                outln!(
                    "the local runtime is not up in {}/local; nothing to stop",
                    settings.state_dir.display()
                );
            } else {
                outln!(
                    "the local runtime is down: stopped {} processes, removed namespaces {} and links {}",
                    report.stopped_processes.len(),
                    report.removed_namespaces.join(", "),
                    report.removed_links.join(", ")
                );
            }
            Ok(())
        }
        LocalCommand::Status => {
            let runtime = Runtime::open_up(&settings.state_dir).map_err(local_error)?;
            let status = rt.block_on(runtime.status());
            if ctx.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&status).unwrap_or_default()
                );
            } else {
                out!("{}", status.render_text());
            }
            Ok(())
        }
        LocalCommand::Supervise { .. } => Err(CliError::new(
            exit::INTERNAL,
            "unreachable: supervise handled above",
        )),
    }
}

fn supervise(runtime_dir: &std::path::Path) -> Result<(), CliError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .init();
    let rt = tokio_runtime()?;
    rt.block_on(lifeboat_local::supervisor::supervise(runtime_dir))
        .map_err(local_error)
}
