//! `lifeboat`: two-region disaster recovery for a shop on AWS, declared as code and proven by drills.
//!
//! The `lifeboat` binary is [`run`]. [`run_with`] is the same command line for a program that embeds it
//! (or a test): its own arguments, and [`Overrides`] for what the command line would otherwise build
//! itself, such as the AWS clients.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

// First: the `out!`/`outln!` macros it defines are used by every module below.
#[macro_use]
mod output;
mod cli;
mod commands;
mod context;
mod error;

use std::ffi::OsString;

pub use context::{Overrides, StackClients};

/// The `lifeboat` binary: the process arguments, nothing overridden.
pub fn run() -> i32 {
    run_with(std::env::args_os(), Overrides::default())
}

/// Parses `args` (the first one is the program name, as in `std::env::args_os`), runs the command, prints
/// its output and errors as the binary does and returns the exit code (see `lifeboat_contract::exit`).
///
/// Environment variables the flags fall back to (`LIFEBOAT_CONFIG`, `AWS_ENDPOINT_URL`, ...) are read as
/// usual. Commands that block on their own async runtime: call this from outside one.
pub fn run_with<I, T>(args: I, overrides: Overrides) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, overrides, None)
}

/// [`run_with`], with the CloudFormation and S3 clients (one per region of the config) that the stack
/// commands (`bootstrap`, `diff`, `deploy`, `destroy`, `status`) use instead of connecting through
/// `--endpoint-url` and the credential chain: an embedding program's own, or a test's whose transport is a
/// model of CloudFormation.
pub fn run_with_stack_clients<I, T>(
    args: I,
    overrides: Overrides,
    stack_clients: StackClients,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, overrides, Some(stack_clients))
}

fn run_inner<I, T>(args: I, overrides: Overrides, stack_clients: Option<StackClients>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    use clap::Parser;
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version requests end up here too; they are not failures.
            let code = if e.use_stderr() {
                lifeboat_contract::exit::USAGE
            } else {
                lifeboat_contract::exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let mut ctx = context::Context::with_overrides(&cli.global, overrides);
    ctx.stack_clients = stack_clients;
    match commands::run(cli.command, &ctx) {
        Ok(()) => lifeboat_contract::exit::OK,
        Err(err) => {
            ctx.print_error(&err);
            err.code
        }
    }
}
