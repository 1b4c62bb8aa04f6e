//! `lifeboat drill`: a fault under load on the local runtime, checked against the client's own ledger.

use std::ffi::OsString;
use std::path::PathBuf;

use lifeboat_contract::exit;
use lifeboat_drill::run::{DrillEnv, run as drill, run_inside_client};
use lifeboat_drill::scenario::DrillOptions;

use crate::context::Context;
use crate::error::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to break: planned (a switchover through the runbooks), db-crash (kill -9 of the primary
    /// database), region-outage (every process of the primary region killed), partition (the primary region
    /// cut off while a client inside it keeps writing), cycle (a fault, the failover, the failed region's
    /// return, reprotect and failback, under one load), soak (many cycles in a seeded random order).
    #[arg(
        long,
        value_name = "SCENARIO",
        required_unless_present = "inside_client"
    )]
    pub scenario: Option<String>,
    /// Checkouts per second offered through the front door (open loop).
    #[arg(long = "load", value_name = "RATE")]
    pub rate: Option<f64>,
    /// How long the load runs, in seconds (the fault comes a third of the way in).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Where report.json, report.html and the ledger go. Default: <state_dir>/local/drills/<scenario>-<time>.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Replication mode for this drill (switches the running pair; it stays so afterwards).
    #[arg(long, value_name = "MODE")]
    pub replication: Option<String>,
    /// cycle: the fault the cycle starts with (db-crash, region-outage or partition; default db-crash).
    #[arg(long, value_name = "FAULT")]
    pub fault: Option<String>,
    /// soak: how many cycles (default 5).
    #[arg(long, value_name = "N")]
    pub cycles: Option<u32>,
    /// soak: seed of the random sequence of moves and pauses (default 1); the same seed replays the same
    /// sequence.
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,

    /// Internal: run only a load client against this storefront URL (used inside a region's namespace by the
    /// partition scenario).
    #[arg(long, value_name = "URL", hide = true)]
    pub inside_client: Option<String>,
    #[arg(long, hide = true, requires = "inside_client")]
    pub client_key_prefix: Option<String>,
    #[arg(long, hide = true, requires = "inside_client")]
    pub client_region: Option<String>,
    #[arg(long, hide = true, requires = "inside_client")]
    pub client_ledger: Option<PathBuf>,
}

pub const AFTER_HELP: &str = "\
Examples:
  lifeboat drill --scenario planned --load 200 --duration 15
  lifeboat drill --scenario db-crash --report drills/db-crash
  lifeboat drill --scenario partition --replication async
  lifeboat drill --scenario cycle --fault region-outage --load 200
  lifeboat drill --scenario soak --cycles 20 --seed 1 --load 100

The runtime must be up (`lifeboat local up`). A fault drill allows automatic failover for its length.
Exit codes: 0 verdict pass, 2 bad arguments, 4 the drill could not finish (no recovery),
6 the runtime is not up or not healthy, 7 verdict fail (lost, duplicated or fenced-out writes).";

/// Runs the drill (or, with the hidden `--inside-client`, only a load client).
pub fn run(args: Args, ctx: &Context) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::from_error(exit::INTERNAL, "cannot start the async runtime", &e))?;
    if let Some(url) = &args.inside_client {
        return runtime.block_on(inside_client(&args, url));
    }
    // Arguments first: a usage error must not depend on the configuration or the runtime.
    let scenario = args.scenario.as_deref().unwrap_or_default();
    let config = ctx.config()?;
    let state_dir = PathBuf::from(&config.local.state_dir);
    let report_dir = args.report.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        state_dir
            .join("local")
            .join("drills")
            .join(format!("{scenario}-{stamp}"))
    });
    let options = DrillOptions::new(
        scenario,
        args.rate,
        args.duration,
        report_dir,
        args.replication.as_deref(),
    )
    .and_then(|o| o.with_cycle_flags(args.fault.as_deref(), args.cycles, args.seed))
    .map_err(CliError::usage)?;
    let lifeboat_bin = std::env::current_exe().map_err(|e| {
        CliError::from_error(
            exit::INTERNAL,
            "cannot locate the running lifeboat executable",
            &e,
        )
    })?;
    let mut global_args: Vec<OsString> = Vec::new();
    if let Some(path) = ctx.config_path() {
        // Absolute: the inside client runs in another namespace but the same file system; the switchover
        // runs from the same working directory, but an absolute path is unambiguous for both.
        let absolute = std::path::absolute(&path).unwrap_or(path);
        global_args.push("--config".into());
        global_args.push(absolute.into_os_string());
    }
    let env = DrillEnv {
        state_dir,
        lifeboat_bin,
        lifeboat_global_args: global_args,
    };
    let outcome = runtime
        .block_on(drill(&options, &env))
        .map_err(|e| CliError::new(e.exit_code(), e.to_string()))?;
    if ctx.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&outcome.report).unwrap_or_default()
        );
    } else {
        out!("{}", outcome.report.summary());
        outln!("report: {}", outcome.report_html.display());
        outln!("        {}", outcome.report_json.display());
    }
    match outcome.exit_code() {
        exit::OK => Ok(()),
        exit::FAILED => Err(CliError::failed(format!(
            "the drill did not see the service recover (no acknowledged order was lost; see {})",
            outcome.report_html.display()
        ))),
        code => Err(CliError::new(
            code,
            format!(
                "drill verdict FAIL: lost {}, duplicates {}, accepted after the fence {}, lines mismatched {} (see {})",
                outcome.report.lost,
                outcome.report.duplicates,
                outcome.report.writes_accepted_after_fence,
                outcome.report.lines_mismatched,
                outcome.report_html.display()
            ),
        )),
    }
}

async fn inside_client(args: &Args, url: &str) -> Result<(), CliError> {
    let (Some(prefix), Some(region), Some(ledger)) = (
        &args.client_key_prefix,
        &args.client_region,
        &args.client_ledger,
    ) else {
        return Err(CliError::usage(
            "--inside-client needs --client-key-prefix, --client-region and --client-ledger",
        ));
    };
    let rate = args.rate.unwrap_or(10.0);
    let duration = args.duration.unwrap_or(10.0);
    run_inside_client(url, rate, duration, prefix, region, ledger)
        .await
        .map(|_| ())
        .map_err(|e| CliError::new(e.exit_code(), e.to_string()))
}
