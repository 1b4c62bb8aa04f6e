//! `lifeboat bootstrap`: the assets bucket of each region (also done by the first deploy that needs it).

use std::collections::BTreeMap;

use lifeboat_aws::assets;
use lifeboat_aws::engine::Engine;
use lifeboat_aws::graph;
use lifeboat_contract::exit;

use super::view::{LiveView, print_report};
use super::{StackArgs, connect, engine_error, load_synth, runtime, target_line};
use crate::context::Context;
use crate::error::CliError;

pub const AFTER_HELP: &str = "\
Creates <project>-<environment>-bootstrap in both regions: a KMS key and a versioned, KMS-encrypted
bucket with all public access blocked. Deploys upload Lambda packages there, keyed by their SHA-256,
and templates larger than 51,200 bytes. Running it again changes nothing.

Examples:
  lifeboat bootstrap
  lifeboat bootstrap --profile prod-admin";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: StackArgs,
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let (synth, _tmp) = load_synth(args.common.out.as_deref(), ctx)?;
    let boot =
        assets::bootstrap_output(&synth.manifest, &assets::manifest_regions(&synth.manifest))
            .map_err(engine_error)?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let apis = connect(&synth, ctx).await;
        let engine = Engine::new(&boot, &apis, args.common.options(ctx));
        let selection = graph::select(&boot.manifest.stacks, None).map_err(engine_error)?;
        eprintln!("bootstrapping {}", target_line(&synth, ctx));
        // The bootstrap template only adds resources; there is no data at risk to ask about.
        let view = LiveView::new(&boot, &selection.ordered, true, ctx.style);
        let report = engine
            .deploy(&selection, &BTreeMap::new(), &BTreeMap::new(), &view)
            .await;
        view.finish();
        report.map_err(engine_error)
    })?;
    print_report(&report, ctx.json);
    match report.exit_code() {
        exit::OK => Ok(()),
        code => Err(CliError::new(
            code,
            "bootstrap did not complete in every region",
        )),
    }
}
