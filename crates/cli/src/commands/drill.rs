//! `lifeboat drill`: a fault under load on the local runtime, checked against the client's own ledger.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use lifeboat_contract::exit;
use lifeboat_drill::run::{DrillEnv, DrillError, run, run_inside_client};
use lifeboat_drill::scenario::DrillOptions;

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// What to break: planned (a switchover through the runbooks), db-crash (kill -9 of the primary
    /// database), region-outage (every process of the primary region killed), partition (the primary region
    /// cut off while a client inside it keeps writing).
    #[arg(long, value_name = "SCENARIO", required_unless_present = "inside_client")]
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

/// Runs the drill; returns the exit code. `state_dir` is `local.state_dir`; `global_args` are the arguments
/// a nested `lifeboat` invocation needs to find the same configuration (e.g. `--config <file>`).
pub fn execute(args: &DrillArgs, state_dir: &Path, global_args: Vec<OsString>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INTERNAL;
        }
    };
    if let Some(url) = &args.inside_client {
        return runtime.block_on(inside_client(args, url));
    }
    let scenario = args.scenario.as_deref().unwrap_or_default();
    let report_dir = args.report.clone().unwrap_or_else(|| {
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
        state_dir.join("local").join("drills").join(format!("{scenario}-{stamp}"))
    });
    let options = match DrillOptions::new(scenario, args.rate, args.duration, report_dir, args.replication.as_deref()) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::USAGE;
        }
    };
    let lifeboat_bin = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot locate the running lifeboat executable: {e}");
            return exit::INTERNAL;
        }
    };
    let env = DrillEnv { state_dir: state_dir.to_path_buf(), lifeboat_bin, lifeboat_global_args: global_args };
    match runtime.block_on(run(&options, &env)) {
        Ok(outcome) => {
            print!("{}", outcome.report.summary());
            println!("report: {}", outcome.report_html.display());
            println!("        {}", outcome.report_json.display());
            outcome.exit_code()
        }
        Err(e) => report_error(&e),
    }
}

fn report_error(e: &DrillError) -> i32 {
    eprintln!("error: {e}");
    e.exit_code()
}

async fn inside_client(args: &DrillArgs, url: &str) -> i32 {
    let (Some(prefix), Some(region), Some(ledger)) = (&args.client_key_prefix, &args.client_region, &args.client_ledger)
    else {
        eprintln!("error: --inside-client needs --client-key-prefix, --client-region and --client-ledger");
        return exit::USAGE;
    };
    let rate = args.rate.unwrap_or(10.0);
    let duration = args.duration.unwrap_or(10.0);
    match run_inside_client(url, rate, duration, prefix, region, ledger).await {
        Ok(_) => exit::OK,
        Err(e) => report_error(&e),
    }
}
