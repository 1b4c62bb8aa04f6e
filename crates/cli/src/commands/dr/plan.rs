//! `lifeboat plan switchover|failover|failback|reprotect [--json]`: the steps a run would take, without acting.

use clap::Args as ClapArgs;
use lifeboat_runbook::{Plan, RunKind};

use super::target::{TargetArgs, settings_for};
use crate::context::Context;
use crate::error::CliError;

pub const AFTER_HELP: &str = "\
Examples:
  lifeboat plan switchover            the planned switchover, step by step, with timeouts and retries
  lifeboat plan failover --json       the same as JSON (steps in order)
  lifeboat plan failback --target local

The plan assumes the configured roles (regions.primary active); a real run starts from the active region
it observes.";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Which runbook: switchover, failover, failback or reprotect.
    #[arg(value_parser = parse_kind)]
    pub runbook: RunKind,
    #[command(flatten)]
    pub target: TargetArgs,
}

fn parse_kind(text: &str) -> Result<RunKind, String> {
    text.parse()
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let config = ctx.config()?;
    let settings = settings_for(args.target.target, &config);
    let (from, to) = match args.runbook {
        RunKind::Switchover | RunKind::Failover => {
            (&settings.primary_region, &settings.standby_region)
        }
        RunKind::Failback | RunKind::Reprotect => {
            (&settings.standby_region, &settings.primary_region)
        }
    };
    let plan = Plan::build(args.runbook, from, to, &settings);
    if ctx.json {
        let json = serde_json::to_string_pretty(&plan.to_json())
            .map_err(|e| CliError::internal(format!("cannot render the plan as JSON: {e}")))?;
        outln!("{json}");
    } else {
        out!("{}", plan.render_text());
    }
    Ok(())
}
