//! `lifeboat destroy`: deletes the stacks, dependents first, and refuses to delete data without `--force`.

use lifeboat_aws::assets;
use lifeboat_aws::engine::{Engine, RunReport};
use lifeboat_aws::graph;
use lifeboat_contract::exit;

use super::view::{LiveView, ask, interactive, print_report};
use super::{StackArgs, connect, engine_error, load_synth, runtime, target_line};
use crate::context::Context;
use crate::error::CliError;

pub const AFTER_HELP: &str = "\
Deletes in reverse dependency order across both regions. Before anything is deleted, every stack's
resources are checked: a non-empty bucket, a table or a database (deletion protected or not) makes
destroy refuse (exit 3) unless --force is given; with --force buckets are emptied first (log buckets
are emptied in any case). Termination protection (on for data stacks outside dev) is turned off only
with --force. A resource CloudFormation cannot delete (a database with deletion protection, a bucket
that filled up again) is retained: the stack is deleted and each resource left in the account is
listed with its physical id and region. Stacks in ROLLBACK_FAILED or DELETE_FAILED are deleted the
same way.
Without --yes destroy asks; without a terminal to ask on it refuses.

Examples:
  lifeboat destroy
  lifeboat destroy --yes --stacks 'networking-*'
  lifeboat destroy --yes --force --bootstrap      everything, data and assets buckets included";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: StackArgs,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Delete data too: empty buckets, delete tables and databases.
    #[arg(long)]
    pub force: bool,
    /// Also delete the bootstrap stacks (the assets buckets), after everything else.
    #[arg(long)]
    pub bootstrap: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let (synth, _tmp) = load_synth(args.common.out.as_deref(), ctx)?;
    let boot =
        assets::bootstrap_output(&synth.manifest, &assets::manifest_regions(&synth.manifest))
            .map_err(engine_error)?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let apis = connect(&synth, ctx).await;
        let engine = Engine::new(&synth, &apis, args.common.options(ctx));
        let selection = engine.select(args.common.stacks.as_deref()).map_err(engine_error)?;
        let plan = engine.plan_destroy(&selection).await.map_err(engine_error)?;
        let boot_engine = Engine::new(&boot, &apis, args.common.options(ctx));
        let boot_plan = if args.bootstrap {
            let all = graph::select(&boot.manifest.stacks, None).map_err(engine_error)?;
            Some(boot_engine.plan_destroy(&all).await.map_err(engine_error)?)
        } else {
            None
        };
        let mut to_delete = plan.to_delete.clone();
        let mut data = plan.data.clone();
        let mut protected = plan.protected.clone();
        if let Some(b) = &boot_plan {
            to_delete.extend(b.to_delete.iter().cloned());
            data.extend(b.data.iter().cloned());
            protected.extend(b.protected.iter().cloned());
        }
        if to_delete.is_empty() {
            eprintln!("nothing to delete: none of the selected stacks exists ({})", target_line(&synth, ctx));
            return Ok(RunReport { stacks: vec![] });
        }
        eprintln!("destroying {} stacks of {}: {}", to_delete.len(), target_line(&synth, ctx), to_delete.join(", "));
        if !data.is_empty() {
            for d in &data {
                eprintln!("  {} {d}", ctx.style.error("data:"));
            }
            if !args.force {
                return Err(CliError::refused(
                    "destroying would delete the data listed above; nothing was deleted. Pass --force to delete it",
                ));
            }
        }
        if !protected.is_empty() {
            for p in &protected {
                eprintln!("  {} {p}", ctx.style.error("termination protection:"));
            }
            if !args.force {
                return Err(CliError::refused(
                    "termination protection is on for the stacks listed above; nothing was deleted. Pass --force to turn it off and delete them",
                ));
            }
        }
        if !args.yes {
            if !interactive() {
                return Err(CliError::refused("destroy needs --yes when there is no terminal to confirm on"));
            }
            if !ask(&format!("Delete {} stacks?", to_delete.len())) {
                return Err(CliError::refused("not confirmed; nothing was deleted"));
            }
        }
        let view = LiveView::new(&synth, &plan.to_delete, true, ctx.style);
        let mut report = engine.destroy(&plan, args.force, &view).await.map_err(engine_error);
        view.finish();
        // The assets buckets go last, and only when everything that used them is gone.
        if let (Ok(r), Some(b)) = (&mut report, &boot_plan)
            && r.exit_code() == exit::OK
        {
            let view = LiveView::new(&boot, &b.to_delete, true, ctx.style);
            let more = boot_engine.destroy(b, args.force, &view).await.map_err(engine_error);
            view.finish();
            r.stacks.extend(more?.stacks);
        }
        report
    })?;
    if report.stacks.is_empty() {
        return Ok(());
    }
    print_report(&report, ctx.json);
    match report.exit_code() {
        exit::OK => Ok(()),
        code => Err(CliError::new(code, "not every stack was deleted")),
    }
}
