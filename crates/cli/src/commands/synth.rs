//! `lifeboat synth`: renders both regions' templates and `manifest.json` into the output directory.
//!
//! The directory is replaced as a whole: everything is written to a fresh directory beside it, which then
//! takes its place by rename. A failure before the swap leaves the previous output untouched.

use std::path::{Path, PathBuf};

use lifeboat_contract::exit;
use lifeboat_platform::{MANIFEST_FILE, Synthesis};

use crate::context::Context;
use crate::error::CliError;
use crate::output::table;

pub const AFTER_HELP: &str = "\
Writes one <stack>.template.json per stack and manifest.json (deployment order, cross-stack and
cross-region dependencies, which stack output feeds which parameter). No CloudFormation exports are used.

Examples:
  lifeboat synth                      write lifeboat.out/
  lifeboat synth --out build/cfn      write elsewhere (replaced atomically)
  lifeboat synth --check              validate only; exit code 2 on a bad config
  lifeboat synth --json | jq .total_resources";

/// The default output directory.
pub const DEFAULT_OUT: &str = "lifeboat.out";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory; replaced as a whole.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Validate the config and every template without writing anything.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let config = ctx.config()?;
    let synthesis = lifeboat_platform::synthesize(&config).map_err(|e| {
        CliError::from_error(
            exit::USAGE,
            "the platform cannot be synthesized from this configuration",
            &e,
        )
    })?;
    let files = synthesis
        .render()
        .map_err(|e| CliError::from_error(exit::INTERNAL, "rendering the templates failed", &e))?;
    if !args.check {
        replace_dir(&args.out, &files)?;
    }
    print_summary(ctx, &synthesis, (!args.check).then_some(args.out.as_path()));
    Ok(())
}

fn print_summary(ctx: &Context, synthesis: &Synthesis, written_to: Option<&Path>) {
    let total = synthesis.total_resources();
    if ctx.json {
        let stacks: Vec<_> = synthesis
            .manifest
            .stacks
            .iter()
            .map(|s| serde_json::json!({ "id": s.id, "name": s.name, "region": s.region, "resources": s.resource_count }))
            .collect();
        let summary = serde_json::json!({
            "checked": written_to.is_none(),
            "out": written_to.map(|p| p.display().to_string()),
            "stacks": stacks,
            "total_resources": total,
        });
        outln!("{summary}");
        return;
    }
    let mut rows: Vec<Vec<String>> = synthesis
        .manifest
        .stacks
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.region.clone(),
                s.resource_count.to_string(),
            ]
        })
        .collect();
    rows.push(vec!["total".into(), String::new(), total.to_string()]);
    out!("{}", table(&["stack", "region", "resources"], &rows));
    let source = ctx.config_source();
    match written_to {
        Some(dir) => outln!(
            "{} {} stacks from {source} to {}",
            ctx.style.ok("wrote"),
            synthesis.manifest.stacks.len(),
            dir.display()
        ),
        None => outln!(
            "{} {} stacks from {source}; nothing written",
            ctx.style.ok("valid:"),
            synthesis.manifest.stacks.len()
        ),
    }
}

fn io_error(what: String, e: &std::io::Error) -> CliError {
    CliError::from_error(exit::FAILED, what, e)
}

/// Writes `files` into a new directory beside `out`, then swaps it in.
fn replace_dir(out: &Path, files: &[(String, String)]) -> Result<(), CliError> {
    let name = out
        .file_name()
        .ok_or_else(|| CliError::usage(format!("--out {}: not a directory name", out.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if out.exists() {
        // Never replace a directory lifeboat did not write (say, `--out src` by mistake).
        let ours = out.join(MANIFEST_FILE).is_file()
            || std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !out.is_dir() || !ours {
            return Err(CliError::refused(format!(
                "--out {} exists and is not a previous lifeboat output (no {MANIFEST_FILE}); choose another directory",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(&parent)
        .map_err(|e| io_error(format!("cannot create {}", parent.display()), &e))?;
    let pid = std::process::id();
    let staging = parent.join(format!(".{name}.new-{pid}"));
    let previous = parent.join(format!(".{name}.old-{pid}"));
    let result = write_all(&staging, files);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if out.exists() {
        std::fs::rename(out, &previous).map_err(|e| {
            let _ = std::fs::remove_dir_all(&staging);
            io_error(
                format!("cannot move the previous {} aside", out.display()),
                &e,
            )
        })?;
    }
    if let Err(e) = std::fs::rename(&staging, out) {
        // Put the previous output back so a failure leaves it as it was.
        let _ = std::fs::rename(&previous, out);
        let _ = std::fs::remove_dir_all(&staging);
        return Err(io_error(
            format!("cannot move the new output into {}", out.display()),
            &e,
        ));
    }
    let _ = std::fs::remove_dir_all(&previous);
    Ok(())
}

fn write_all(dir: &Path, files: &[(String, String)]) -> Result<(), CliError> {
    std::fs::create_dir(dir)
        .map_err(|e| io_error(format!("cannot create {}", dir.display()), &e))?;
    for (file, content) in files {
        let path = dir.join(file);
        std::fs::write(&path, content)
            .map_err(|e| io_error(format!("cannot write {}", path.display()), &e))?;
    }
    Ok(())
}
