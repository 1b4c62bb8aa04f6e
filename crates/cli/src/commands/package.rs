//! `lifeboat package`: builds the Lambda zips the deploy engine uploads.
//!
//! Each function is cross-built with cargo-lambda (zig as the linker, glibc pinned to 2.17) for the
//! `provided.al2023` runtime on x86_64, with the toolchain's installed standard library, then zipped as
//! a single executable `bootstrap`. `package.json` lists every zip with its sha256.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use lifeboat_aws_dr::package::{self, LAMBDAS};
use lifeboat_contract::exit;

use crate::context::Context;
use crate::error::CliError;
use crate::output::table;

pub const AFTER_HELP: &str = "\
Builds storefront.zip (features aws,lambda) and dr-automation.zip, each holding one executable named
bootstrap for the provided.al2023 runtime (x86_64, glibc 2.17), and package.json with their sha256.
The binaries are zipped without their debug information when binutils' strip is on PATH.
Needs cargo-lambda and zig, both from PyPI:

  python3 -m venv ~/.cache/lifeboat-tools
  ~/.cache/lifeboat-tools/bin/pip install cargo-lambda ziglang

Examples:
  lifeboat package                          write lifeboat.out/artifacts/
  lifeboat package --out dist               write elsewhere
  lifeboat deploy --artifacts lifeboat.out/artifacts";

pub const DEFAULT_OUT: &str = "lifeboat.out/artifacts";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the zips and package.json (created if missing).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
}

fn tools_venv() -> PathBuf {
    match std::env::var_os("LIFEBOAT_TOOLS_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/lifeboat-tools"),
    }
}

/// The workspace root: the directory whose Cargo.toml declares `[workspace]`, from the current one up.
fn workspace_root() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let manifest = dir.join("Cargo.toml");
        if std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("[workspace]")) {
            return Some(dir);
        }
        if !dir.pop() {
            return None;
        }
    }
}

pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let venv = tools_venv();
    let path_var = std::env::var("PATH").unwrap_or_default();
    let Some(cargo_lambda) = package::find_cargo_lambda(Some(&path_var), Some(&venv)) else {
        return Err(CliError::unavailable(package::install_hint(&venv)));
    };
    let root = workspace_root().ok_or_else(|| {
        CliError::usage(
            "lifeboat package builds from the lifeboat source tree: run it inside the clone",
        )
    })?;
    std::fs::create_dir_all(&args.out).map_err(|e| {
        CliError::new(
            exit::FAILED,
            format!("creating {}: {e}", args.out.display()),
        )
    })?;
    let out = args.out.canonicalize().unwrap_or(args.out.clone());
    let build_dir = out.join(".build");
    // The venv's bin first: cargo-lambda finds zig there (the ziglang package's python -m ziglang).
    let search_path = std::env::join_paths(
        std::iter::once(venv.join("bin")).chain(std::env::split_paths(&path_var)),
    )
    .map_err(|e| CliError::internal(format!("building PATH: {e}")))?;

    let strip = package::find_strip(Some(&path_var));
    if strip.is_none() && !ctx.json {
        eprintln!(
            "note: binutils' strip is not on PATH: the zips keep the binaries' debug information (about three \
             times the size)"
        );
    }
    let mut artifacts = Vec::new();
    let mut rows = Vec::new();
    for spec in LAMBDAS {
        let started = Instant::now();
        if !ctx.json {
            eprintln!(
                "building {} ({} --bin {}) ...",
                spec.artifact, spec.package, spec.bin
            );
        }
        let status = Command::new(&cargo_lambda)
            .args(package::build_args(spec, &build_dir))
            .current_dir(&root)
            .env("PATH", &search_path)
            .status()
            .map_err(|e| {
                CliError::unavailable(format!("running {}: {e}", cargo_lambda.display()))
            })?;
        if !status.success() {
            return Err(CliError::failed(format!(
                "cargo lambda build of {} failed ({status}); its output above says why",
                spec.artifact
            )));
        }
        let built = build_dir.join(spec.bin).join("bootstrap");
        let binary = match &strip {
            Some(strip) => {
                let stripped = build_dir.join(spec.bin).join("bootstrap.stripped");
                package::strip_debug_info(strip, &built, &stripped)
                    .map_err(|e| CliError::failed(e.to_string()))?;
                stripped
            }
            None => built,
        };
        let zip_path = out.join(spec.zip_name());
        let artifact = package::write_lambda_zip(spec.artifact, &binary, &zip_path)
            .map_err(|e| CliError::failed(e.to_string()))?;
        rows.push(vec![
            artifact.file.clone(),
            format!("{:.1} MiB", artifact.bytes as f64 / 1_048_576.0),
            format!("{:.1} MiB", artifact.bootstrap_bytes as f64 / 1_048_576.0),
            format!("{:.0} s", started.elapsed().as_secs_f64()),
            artifact.sha256[..16].to_owned(),
        ]);
        artifacts.push(artifact);
    }
    let manifest =
        package::write_manifest(&out, artifacts).map_err(|e| CliError::failed(e.to_string()))?;
    if ctx.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&manifest)
                .map_err(|e| CliError::internal(e.to_string()))?
        );
    } else {
        outln!(
            "{}",
            table(&["zip", "size", "bootstrap", "build", "sha256"], &rows)
        );
        outln!("wrote {}", display(&out.join("package.json")));
    }
    Ok(())
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
