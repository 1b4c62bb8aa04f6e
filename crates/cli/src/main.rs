//! `lifeboat`: two-region disaster recovery for a shop on AWS, declared as code and proven by drills.

#[macro_use]
mod output;
mod cli;
mod commands;
mod context;
mod error;

fn main() {
    std::process::exit(run());
}

/// Parses the command line, runs the command and turns the outcome into an exit code
/// (see `lifeboat_contract::exit`).
fn run() -> i32 {
    use clap::Parser;
    let cli = match cli::Cli::try_parse() {
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
    let ctx = context::Context::new(&cli.global);
    match commands::run(cli.command, &ctx) {
        Ok(()) => lifeboat_contract::exit::OK,
        Err(err) => {
            ctx.print_error(&err);
            err.code
        }
    }
}
