//! The command line as clap types: global flags and the top-level [`Command`] enum.
//!
//! To add a command: a module under `src/commands/` with an `Args` struct (clap `Args`) and
//! `pub fn run(args: Args, ctx: &Context) -> Result<(), CliError>`, a variant here, and an arm in
//! `commands::run`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;

const AFTER_HELP: &str = "\
Examples:
  lifeboat init                      write a commented lifeboat.toml with every default
  lifeboat synth                     write CloudFormation for both regions to lifeboat.out/
  lifeboat synth --check             validate the config and every template, write nothing
  lifeboat --config prod.toml synth --out prod.out

Exit codes:
  0 ok, 1 internal error, 2 bad input (flag, config key, file), 3 refused by a safety check,
  4 operation failed, 5 locked, 6 unavailable, 7 drill verdict failed, 130 interrupted";

/// Two-region disaster recovery for a shop on AWS: the platform as typed code, deployed by
/// CloudFormation, failed over by resumable runbooks and proven by drills.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Configuration file. Without this flag, `lifeboat.toml` is read if present, else the defaults apply.
    #[arg(long, global = true, value_name = "FILE", env = "LIFEBOAT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of tables and prose.
    #[arg(long, global = true)]
    pub json: bool,
    /// No colours (also when NO_COLOR is set or stderr is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// AWS endpoint to call instead of AWS itself, e.g. a local moto server (http://127.0.0.1:5000).
    #[arg(long, global = true, value_name = "URL", env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// AWS profile from the shared config files; without it the standard credential chain applies.
    #[arg(long, global = true, value_name = "NAME", env = "AWS_PROFILE")]
    pub profile: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented lifeboat.toml with every key at its default.
    #[command(
        after_help = "Example:\n  lifeboat init && $EDITOR lifeboat.toml\n  lifeboat init --path staging.toml --force"
    )]
    Init(commands::init::Args),
    /// Render both regions' CloudFormation templates and manifest.json from the config.
    #[command(after_help = commands::synth::AFTER_HELP)]
    Synth(commands::synth::Args),
    /// Create the assets bucket (bootstrap stack) in both regions.
    #[command(after_help = commands::stacks::bootstrap::AFTER_HELP)]
    Bootstrap(commands::stacks::bootstrap::Args),
    /// Show what a deploy would add, modify and remove, per stack; nothing is executed.
    #[command(after_help = commands::stacks::diff::AFTER_HELP)]
    Diff(commands::stacks::diff::Args),
    /// Deploy both regions through CloudFormation change sets, in dependency order.
    #[command(after_help = commands::stacks::deploy::AFTER_HELP)]
    Deploy(commands::stacks::deploy::Args),
    /// Delete the stacks, dependents first; refuses to delete data without --force.
    #[command(after_help = commands::stacks::destroy::AFTER_HELP)]
    Destroy(commands::stacks::destroy::Args),
    /// Each stack's state, last update, drift status and outputs.
    #[command(after_help = commands::stacks::status::AFTER_HELP)]
    Status(commands::stacks::status::Args),
    /// Print the steps a DR runbook would take, in order, without acting.
    #[command(after_help = commands::dr::plan::AFTER_HELP)]
    Plan(commands::dr::plan::Args),
    /// Planned move of the active role to the other region, with no data loss.
    #[command(after_help = commands::dr::runbooks::SWITCHOVER_AFTER_HELP)]
    Switchover(commands::dr::runbooks::SwitchoverArgs),
    /// Unplanned move to the surviving region when the active one is lost (needs --allow-data-loss).
    #[command(after_help = commands::dr::runbooks::FAILOVER_AFTER_HELP)]
    Failover(commands::dr::runbooks::FailoverArgs),
    /// Back to the configured primary region: re-protect it if needed, then switch over.
    #[command(after_help = commands::dr::runbooks::FAILBACK_AFTER_HELP)]
    Failback(commands::dr::runbooks::FailbackArgs),
    /// Make the passive region a replica of the active one again, without moving the active role.
    #[command(after_help = commands::dr::runbooks::REPROTECT_AFTER_HELP)]
    Reprotect(commands::dr::runbooks::ReprotectArgs),
    /// List the DR runs in the journal.
    #[command(after_help = commands::dr::runs::RUNS_AFTER_HELP)]
    Runs(commands::dr::runs::RunsArgs),
    /// Continue an interrupted or failed DR run from its journal.
    #[command(after_help = commands::dr::runs::RESUME_AFTER_HELP)]
    Resume(commands::dr::runs::ResumeArgs),
    /// Build the Lambda zips (storefront, dr-automation) that deploy uploads.
    #[command(after_help = commands::package::AFTER_HELP)]
    Package(commands::package::Args),
    /// The local two-region runtime: `local up | down | status`.
    #[command(after_help = commands::local::AFTER_HELP)]
    Local(commands::local::Args),
    /// Break something under load on the local runtime and prove no acknowledged order was lost.
    #[command(after_help = commands::drill::AFTER_HELP)]
    Drill(commands::drill::Args),
}
