//! One module per command. [`run`] dispatches.

pub mod drill;
pub mod init;
pub mod stacks;
pub mod local;
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
        Command::Drill(args) => drill::run(args, ctx),
    }
}
