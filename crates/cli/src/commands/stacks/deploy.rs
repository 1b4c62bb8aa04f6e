//! `lifeboat deploy`: both regions through change sets, in dependency order, with a live view.

use std::path::PathBuf;

use lifeboat_aws::assets;
use lifeboat_aws::engine::Engine;
use lifeboat_contract::exit;

use super::view::{LiveView, print_report};
use super::{StackArgs, connect, engine_error, load_synth, runtime, target_line};
use crate::context::Context;
use crate::error::CliError;

pub const AFTER_HELP: &str = "\
Every stack is applied through a change set; an empty change set is deleted and the stack reported
unchanged. Parameters are fed from the outputs of the stacks a stack depends on, across regions. A
stack that fails names its first failing resource; the stacks that depend on it are skipped, the
others finish. Replacing or removing a database, bucket, table or key asks first; without a terminal
and without --yes such a change is refused (exit 3). Lambda packages come from --artifacts DIR
(storefront.zip, dr-automation.zip); without them a placeholder is deployed, with a warning.

Examples:
  lifeboat deploy                                   synthesize and deploy everything, asking if data is at risk
  lifeboat deploy --yes --stacks 'networking-*'     only the networks of both regions
  lifeboat deploy --out lifeboat.out --artifacts dist
  lifeboat deploy --yes --endpoint-url http://127.0.0.1:5000   against a local moto server";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: StackArgs,
    /// Accept replacing or deleting data-holding resources without asking.
    #[arg(long)]
    pub yes: bool,
    /// Directory with the Lambda packages (storefront.zip, dr-automation.zip) built by `lifeboat package`.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let (synth, _tmp) = load_synth(args.common.out.as_deref(), ctx)?;
    if let Some(dir) = &args.artifacts
        && !dir.is_dir()
    {
        return Err(CliError::usage(format!(
            "--artifacts {}: not a directory",
            dir.display()
        )));
    }
    let rt = runtime()?;
    let options = args.common.options(ctx);
    let report = rt.block_on(async {
        let apis = connect(&synth, ctx).await;
        let engine = Engine::new(&synth, &apis, options.clone());
        let selection = engine
            .select(args.common.stacks.as_deref())
            .map_err(engine_error)?;
        eprintln!(
            "deploying {} stacks of {}",
            selection.ordered.len(),
            target_line(&synth, ctx)
        );
        let view = LiveView::new(&synth, &selection.ordered, args.yes, ctx.style);
        let prepared = assets::prepare_assets(
            &synth,
            &apis,
            &selection.ordered,
            args.artifacts.as_deref(),
            &options,
            true,
            &view,
        )
        .await
        .map_err(engine_error)?;
        let report = engine
            .deploy(
                &selection,
                &prepared.artifacts,
                &prepared.template_urls,
                &view,
            )
            .await;
        view.finish();
        report.map_err(engine_error)
    })?;
    print_report(&report, ctx.json);
    match report.exit_code() {
        exit::OK => Ok(()),
        code => {
            let bad = report
                .stacks
                .iter()
                .filter(|s| !s.outcome.is_success())
                .count();
            Err(CliError::new(
                code,
                format!("{bad} of {} stacks did not deploy", report.stacks.len()),
            ))
        }
    }
}
