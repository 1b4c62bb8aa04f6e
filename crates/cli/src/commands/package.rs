//! `lifeboat package`: builds the Lambda zips the deploy engine uploads.
//!
//! Both functions are cross-built in one cargo-lambda invocation (zig as the linker, glibc pinned to 2.17)
//! with the workspace's `lambda` profile, for the `provided.al2023` runtime on x86_64, then each executable
//! is checked (architecture, glibc floor, no debug sections) and zipped as a single executable `bootstrap`.
//! `package.json` lists every zip with its sha256.

use std::io::{BufRead as _, BufReader, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeboat_aws_dr::errors::error_chain;
use lifeboat_aws_dr::package::{self, CargoMessage, LAMBDAS};
use lifeboat_contract::exit;

use crate::context::Context;
use crate::error::CliError;
use crate::output::table;

pub const AFTER_HELP: &str = "\
Builds storefront.zip (features aws,lambda) and dr-automation.zip, each holding one executable named
bootstrap for the provided.al2023 runtime (x86_64, glibc 2.17), and package.json with their sha256.
Both are compiled in one cargo invocation with the workspace's `lambda` profile, so the dependencies
they share compile once; after a change to either function only that crate and the link are redone.
Each executable is checked before it is zipped: x86_64, nothing newer than GLIBC_2.17, no debug sections.
Cargo's target directory is CARGO_TARGET_DIR if set, as for any cargo build.
Needs cargo-lambda and zig, both from PyPI:

  python3 -m venv ~/.cache/lifeboat-tools
  ~/.cache/lifeboat-tools/bin/pip install cargo-lambda ziglang

Examples:
  lifeboat package                          write lifeboat.out/artifacts/
  lifeboat package --out dist               write elsewhere
  lifeboat package --json                   the manifest on stdout, for scripts
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

    let started = Instant::now();
    let view = View::new(ctx.json);
    let names: Vec<&str> = LAMBDAS.iter().map(|spec| spec.artifact).collect();
    view.phase(&format!(
        "compiling {} (profile {}, {})",
        names.join(" and "),
        package::LAMBDA_PROFILE,
        package::LAMBDA_TARGET
    ));
    let mut child = Command::new(&cargo_lambda)
        .args(package::build_args(LAMBDAS, &build_dir))
        .current_dir(&root)
        .env("PATH", &search_path)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| CliError::unavailable(format!("running {}: {e}", cargo_lambda.display())))?;
    let mut compiled = 0usize;
    let mut fresh = 0usize;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let CargoMessage::Built {
                crate_name,
                fresh: was_fresh,
            } = CargoMessage::parse(&line)
            {
                if was_fresh {
                    fresh += 1;
                } else {
                    compiled += 1;
                }
                view.compiled(compiled, fresh, &crate_name);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| CliError::unavailable(format!("waiting for cargo lambda: {e}")))?;
    if !status.success() {
        view.finish();
        return Err(CliError::failed(format!(
            "cargo lambda build failed ({status}); its output above says why"
        )));
    }
    let compile_time = started.elapsed();

    let mut artifacts = Vec::new();
    let mut rows = Vec::new();
    for spec in LAMBDAS {
        let built = spec.built_binary(&build_dir);
        view.phase(&format!("checking and zipping {}", spec.artifact));
        let facts =
            package::verify_bootstrap(&built).map_err(|e| CliError::failed(error_chain(&e)))?;
        let zip_path = out.join(spec.zip_name());
        let artifact = package::write_lambda_zip(spec.artifact, &built, &zip_path)
            .map_err(|e| CliError::failed(error_chain(&e)))?;
        rows.push(vec![
            artifact.file.clone(),
            mib(artifact.bytes),
            mib(artifact.bootstrap_bytes),
            facts
                .newest_glibc
                .map_or_else(|| "none".to_owned(), |v| v.to_string()),
            artifact.sha256[..16].to_owned(),
        ]);
        artifacts.push(artifact);
    }
    let manifest =
        package::write_manifest(&out, artifacts).map_err(|e| CliError::failed(error_chain(&e)))?;
    view.finish();
    if ctx.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&manifest)
                .map_err(|e| CliError::internal(e.to_string()))?
        );
    } else {
        outln!(
            "{}",
            table(&["zip", "size", "bootstrap", "needs", "sha256"], &rows)
        );
        outln!(
            "compiled {compiled} crates ({fresh} fresh) in {}, packaged in {} in all",
            seconds(compile_time),
            seconds(started.elapsed())
        );
        outln!("wrote {}", display(&out.join("package.json")));
    }
    Ok(())
}

/// Progress on stderr: a spinner line (phase, crates compiled, the last one, elapsed time) when stderr is a
/// terminal; otherwise a timestamped line per phase and one every [`View::EVERY`] crates. Nothing with
/// `--json`, whose stdout is for scripts (cargo's own diagnostics still go to stderr).
struct View {
    started: Instant,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl View {
    const EVERY: usize = 50;

    fn new(json: bool) -> Self {
        let live = !json && std::io::stderr().is_terminal();
        let bar = live.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            started: Instant::now(),
            bar,
            quiet: json,
        }
    }

    fn phase(&self, text: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_prefix(text.to_owned());
                bar.set_message("");
            }
            None if !self.quiet => eprintln!("[{}] {text}", seconds(self.started.elapsed())),
            None => {}
        }
    }

    fn compiled(&self, compiled: usize, fresh: usize, last: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("{compiled} compiled, {fresh} fresh, last {last}"))
            }
            None if !self.quiet && compiled > 0 && compiled.is_multiple_of(Self::EVERY) => {
                eprintln!(
                    "[{}] {compiled} crates compiled ({fresh} fresh), last {last}",
                    seconds(self.started.elapsed())
                );
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
