//! One module per command. [`run`] dispatches.

pub mod dr;
pub mod drill;
pub mod init;
pub mod local;
pub mod package;
pub mod stacks;
pub mod synth;

use crate::cli::Command;
use crate::context::Context;
use crate::error::CliError;

pub fn run(command: Command, ctx: &Context) -> Result<(), CliError> {
    match command {
        Command::Init(args) => init::run(args, ctx),
        Command::Synth(args) => synth::run(args, ctx),
        Command::Bootstrap(args) => stacks::bootstrap::run(args, ctx),
        Command::Diff(args) => stacks::diff::run(args, ctx),
        Command::Deploy(args) => stacks::deploy::run(args, ctx),
        Command::Destroy(args) => stacks::destroy::run(args, ctx),
        Command::Status(args) => stacks::status::run(args, ctx),
        Command::Local(args) => local::run(args, ctx),
        Command::Plan(args) => dr::plan::run(args, ctx),
        Command::Switchover(args) => dr::runbooks::switchover(args, ctx),
        Command::Failover(args) => dr::runbooks::failover(args, ctx),
        Command::Failback(args) => dr::runbooks::failback(args, ctx),
        Command::Reprotect(args) => dr::runbooks::reprotect(args, ctx),
        Command::Runs(args) => dr::runs::runs(args, ctx),
        Command::Resume(args) => dr::runs::resume(args, ctx),
        Command::Drill(args) => drill::run(args, ctx),
        Command::Package(args) => package::run(args, ctx),
    }
}
