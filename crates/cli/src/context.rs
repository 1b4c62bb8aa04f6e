//! What every command gets: the global flags, output style and the configuration (loaded on demand, so
//! `lifeboat init` works where no valid config exists yet).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeboat_config::Config;

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::output::Style;

/// The file read when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "lifeboat.toml";

pub struct Context {
    /// `--config` (or `LIFEBOAT_CONFIG`), when given.
    pub explicit_config: Option<PathBuf>,
    pub json: bool,
    pub style: Style,
    /// `--endpoint-url` (or `AWS_ENDPOINT_URL`): a local AWS endpoint instead of AWS.
    pub endpoint_url: Option<String>,
    /// `--profile` (or `AWS_PROFILE`).
    pub profile: Option<String>,
    pub overrides: Overrides,
    /// The CloudFormation and S3 clients per region that the stack commands (`bootstrap`, `diff`, `deploy`,
    /// `destroy`, `status`) use instead of connecting through `--endpoint-url` and the credential chain (see
    /// [`crate::run_with_stack_clients`]).
    pub stack_clients: Option<StackClients>,
}

/// CloudFormation and S3 clients by region name.
pub type StackClients = std::collections::BTreeMap<String, lifeboat_aws::sdk::SdkRegion>;

/// What a program embedding the command line (or a test) supplies instead of what the command line
/// builds itself. The default overrides nothing: the binary's behaviour.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The AWS clients the DR commands use with `--target aws`, instead of connecting through
    /// `--endpoint-url` and the credential chain: an embedding program's own, or a test's instrumented
    /// ones. The regions must be the config's two.
    pub aws_clients: Option<lifeboat_aws_dr::Clients>,
    /// How long the DR runbooks on AWS wait between two observations (writer change, drained
    /// replication, verify); normally 5 s.
    pub aws_poll_interval: Option<Duration>,
    /// How long a promotion on AWS may take; normally `dr.switchover_timeout_seconds`.
    pub aws_promote_timeout: Option<Duration>,
    /// The storefront's control-state refresh bound that a failover on AWS waits out after publishing a
    /// new epoch; normally the storefront's own.
    pub aws_write_lease: Option<Duration>,
}

impl Overrides {
    /// Applies the bound overrides to the AWS runbook bounds derived from the config.
    pub fn apply_to(&self, bounds: &mut lifeboat_aws_dr::Bounds) {
        if let Some(poll_interval) = self.aws_poll_interval {
            bounds.poll_interval = poll_interval;
        }
        if let Some(promote_timeout) = self.aws_promote_timeout {
            bounds.promote_timeout = promote_timeout;
        }
        if let Some(write_lease) = self.aws_write_lease {
            bounds.write_lease = write_lease;
        }
    }
}

impl Context {
    pub fn with_overrides(global: &GlobalArgs, overrides: Overrides) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = !global.no_color && !no_color_env && std::io::stderr().is_terminal();
        Self {
            explicit_config: global.config.clone(),
            json: global.json,
            style: Style { color },
            endpoint_url: global.endpoint_url.clone(),
            profile: global.profile.clone(),
            overrides,
            stack_clients: None,
        }
    }

    /// Where the configuration comes from: the explicit file, `lifeboat.toml` if present, or `None` (defaults).
    pub fn config_path(&self) -> Option<PathBuf> {
        match &self.explicit_config {
            Some(path) => Some(path.clone()),
            None => Path::new(DEFAULT_CONFIG_FILE)
                .exists()
                .then(|| PathBuf::from(DEFAULT_CONFIG_FILE)),
        }
    }

    /// Reads and validates the configuration. A file named explicitly must exist; without `--config`, a
    /// missing `lifeboat.toml` means the defaults.
    pub fn config(&self) -> Result<Config, CliError> {
        let Some(path) = self.config_path() else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CliError::from_error(
                lifeboat_contract::exit::USAGE,
                format!("cannot read config file {}", path.display()),
                &e,
            )
        })?;
        Ok(Config::from_toml_str(&text, &path.display().to_string())?)
    }

    /// A short description of the config source for messages: the path or "built-in defaults".
    pub fn config_source(&self) -> String {
        self.config_path().map_or_else(
            || "built-in defaults".to_string(),
            |p| p.display().to_string(),
        )
    }

    /// Prints `error: ...` and its causes to stderr.
    pub fn print_error(&self, err: &CliError) {
        eprintln!("{} {}", self.style.error("error:"), err.message);
        for cause in &err.causes {
            eprintln!("  caused by: {cause}");
        }
    }
}
