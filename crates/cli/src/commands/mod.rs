//! One module per command. [`run`] dispatches.

pub mod init;
pub mod synth;

use crate::cli::Command;
use crate::context::Context;
use crate::error::CliError;

pub fn run(command: Command, ctx: &Context) -> Result<(), CliError> {
    match command {
        Command::Init(args) => init::run(args, ctx),
        Command::Synth(args) => synth::run(args, ctx),
    }
}
