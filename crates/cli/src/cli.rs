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
}
