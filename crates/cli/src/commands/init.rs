//! `lifeboat init`: writes the commented default configuration.

use std::path::PathBuf;

use crate::context::{Context, DEFAULT_CONFIG_FILE};
use crate::error::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the file (default: the --config path, else lifeboat.toml).
    #[arg(long, value_name = "FILE")]
    pub path: Option<PathBuf>,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let path = args
        .path
        .or_else(|| ctx.explicit_config.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    if path.exists() && !args.force {
        return Err(CliError::refused(format!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        )));
    }
    std::fs::write(&path, lifeboat_config::DEFAULT_CONFIG_TOML).map_err(|e| {
        CliError::from_error(
            lifeboat_contract::exit::FAILED,
            format!("cannot write {}", path.display()),
            &e,
        )
    })?;
    if ctx.json {
        outln!(
            "{}",
            serde_json::json!({ "written": path.display().to_string() })
        );
    } else {
        outln!(
            "wrote {} (every key at its default; edit it, then run `lifeboat synth`)",
            path.display()
        );
    }
    Ok(())
}
