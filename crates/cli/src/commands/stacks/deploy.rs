//! `lifeboat deploy`: both regions through change sets, in dependency order, with a live view.

use std::path::PathBuf;

use lifeboat_aws::assets;
use lifeboat_aws::engine::Engine;
use lifeboat_contract::exit;

use super::view::{LiveView, print_report};
use super::{
    StackArgs, connect, engine_error, load_synth, refuse_reserved_domain, runtime, target_line,
};
use crate::context::Context;
use crate::error::CliError;

pub const AFTER_HELP: &str = "\
Every stack is applied through a change set; an empty change set is deleted and the stack reported
unchanged. Parameters are fed from the outputs of the stacks a stack depends on, across regions. A
stack that fails names its first failing resource; the stacks that depend on it are skipped, the
others finish. Replacing or removing a database, bucket, table or key asks first; without a terminal
and without --yes such a change is refused (exit 3). A stack left broken by an earlier run is repaired
first: ROLLBACK_COMPLETE and ROLLBACK_FAILED are deleted (ROLLBACK_FAILED with its buckets emptied,
anything that still cannot be deleted retained and listed) and created again; UPDATE_ROLLBACK_FAILED
gets ContinueUpdateRollback (skipping only what --skip-rollback-resources names); a stack in
UPDATE_ROLLBACK_COMPLETE is deployed with its last good template and simply updated. Outside the dev
environment, stacks that hold data get termination protection. Lambda packages come from --artifacts DIR
(storefront.zip, dr-automation.zip): a stack that needs one that is not there is refused (exit 2)
before anything is changed, unless --placeholder-code asks for a placeholder that fails when invoked.
A reserved dns.domain (shop.example.com, *.test, ...) is refused (exit 2) unless --endpoint-url names
a local emulator.

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
    /// Deploy a placeholder for every Lambda package missing from --artifacts: the infrastructure comes up,
    /// the functions fail when invoked (the load balancers answer 502). For tests and first trials only.
    #[arg(long)]
    pub placeholder_code: bool,
    /// For a stack left in UPDATE_ROLLBACK_FAILED: resources whose rollback cannot succeed, which
    /// ContinueUpdateRollback may skip (they stay out of step with the template), as STACK:LOGICAL_ID,
    /// several separated by commas (e.g. 'database-primary:Cluster'). A failed rollback names them.
    #[arg(long, value_name = "STACK:RESOURCE,...")]
    pub skip_rollback_resources: Option<String>,
}

/// Parses `--skip-rollback-resources`: `stack-id:LogicalId` pairs of stacks in the synth output.
fn rollback_skip(
    value: Option<&str>,
    synth: &lifeboat_aws::SynthOutput,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, CliError> {
    let mut skip: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for item in value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let Some((stack, resource)) = item
            .split_once(':')
            .filter(|(s, r)| !s.is_empty() && !r.is_empty())
        else {
            return Err(CliError::usage(format!(
                "--skip-rollback-resources {item:?}: expected STACK:LOGICAL_ID, such as database-primary:Cluster"
            )));
        };
        if synth.stack(stack).is_none() {
            return Err(CliError::usage(format!(
                "--skip-rollback-resources {item:?}: there is no stack {stack:?} in this synth output"
            )));
        }
        skip.entry(stack.to_string())
            .or_default()
            .push(resource.to_string());
    }
    Ok(skip)
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let (synth, _tmp) = load_synth(args.common.out.as_deref(), ctx)?;
    refuse_reserved_domain(&synth, args.common.out.as_deref(), ctx)?;
    if let Some(dir) = &args.artifacts
        && !dir.is_dir()
    {
        return Err(CliError::usage(format!(
            "--artifacts {}: not a directory",
            dir.display()
        )));
    }
    let rt = runtime()?;
    let mut options = args.common.options(ctx);
    options.rollback_skip = rollback_skip(args.skip_rollback_resources.as_deref(), &synth)?;
    let selection =
        lifeboat_aws::graph::select(&synth.manifest.stacks, args.common.stacks.as_deref())
            .map_err(engine_error)?;
    let missing = assets::missing_artifacts(&synth, &selection.ordered, args.artifacts.as_deref());
    if !missing.is_empty() && !args.placeholder_code {
        let list: Vec<String> = missing
            .iter()
            .map(|(name, stacks)| {
                let stacks: Vec<&str> = stacks.iter().map(String::as_str).collect();
                format!("{name}.zip (for {})", stacks.join(", "))
            })
            .collect();
        let place = args.artifacts.as_deref().map_or_else(
            || "no --artifacts DIR was given".to_string(),
            |d| format!("not in {}", d.display()),
        );
        return Err(CliError::usage(format!(
            "the Lambda packages {} are missing ({place}); nothing was deployed. Build them with \
             `lifeboat package` and pass --artifacts DIR, deploy only the other stacks with --stacks, or pass \
             --placeholder-code to deploy placeholders that fail when invoked",
            list.join(", ")
        )));
    }
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
        // The storefront and the runbooks read the DR control state from the first request on, and no
        // stack owns it: it is created here, once, where it is missing, and put back after the stacks
        // changed (an update of a stack from before this rule deletes the parameters it owned).
        // A program embedding the command line with CloudFormation clients of its own but no DR clients
        // (the deploy engine's tests against a CloudFormation model) has no parameter store to seed.
        let embedded_without_dr_clients =
            ctx.stack_clients.is_some() && ctx.overrides.aws_clients.is_none();
        let control = if !embedded_without_dr_clients
            && selection
                .ordered
                .iter()
                .any(|id| id.starts_with("compute-") || id.starts_with("dr-automation-"))
        {
            Some(ControlState::seed_before(ctx).await?)
        } else {
            None
        };
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
        // Also after a failed deploy: whatever the stacks did to the parameters, the state read before
        // is put back.
        if let Some(control) = &control {
            control.seed_after().await?;
        }
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

/// The DR control parameters (active region, epoch, fence) around a deploy
/// (`lifeboat_aws_dr::control_state`): created where missing before the stacks change, without overwriting
/// any, and put back from what was read before once they changed.
struct ControlState {
    clients: lifeboat_aws_dr::Clients,
    topology: lifeboat_aws_dr::Topology,
    before: Option<lifeboat_aws_dr::control_state::ControlTruth>,
}

impl ControlState {
    async fn seed_before(ctx: &Context) -> Result<Self, CliError> {
        let config = ctx.config()?;
        let topology = lifeboat_aws_dr::Topology::from_config(&config);
        let clients = match &ctx.overrides.aws_clients {
            Some(clients) => clients.clone(),
            None => {
                let connection = lifeboat_aws_dr::Connection {
                    endpoint_url: ctx.endpoint_url.clone(),
                    static_credentials: None,
                };
                lifeboat_aws_dr::Clients::connect(&connection, &topology.regions()).await
            }
        };
        let before = lifeboat_aws_dr::control_state::current(&clients, &topology)
            .await
            .map_err(control_error)?;
        let state = Self {
            clients,
            topology,
            before,
        };
        state.seed_after().await?;
        Ok(state)
    }

    async fn seed_after(&self) -> Result<(), CliError> {
        let seeded = lifeboat_aws_dr::control_state::seed(
            &self.clients,
            &self.topology,
            self.before.as_ref(),
        )
        .await
        .map_err(control_error)?;
        for s in &seeded {
            if let Some(why) = &s.unreachable {
                eprintln!(
                    "warning: the DR control parameters in {} were not checked: the region cannot be reached ({why})",
                    s.region
                );
            }
        }
        for s in seeded.iter().filter(|s| !s.created.is_empty()) {
            eprintln!(
                "DR control state created in {}: {}",
                s.region,
                s.created.join(", ")
            );
        }
        Ok(())
    }
}

fn control_error(e: lifeboat_runbook::BackendError) -> CliError {
    let message = format!("the DR control parameters: {}", e.message);
    if e.kind == lifeboat_runbook::BackendErrorKind::Unavailable {
        CliError::unavailable(message)
    } else {
        CliError::failed(message)
    }
}
