//! The runtime as a whole: `up`, `down`, `status`, and the handles drills use (regions, databases,
//! front door, control server, fault injection).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lifeboat_contract::ControlState;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::control::{ControlClient, ControlView};
use crate::error::{LocalError, Result};
use crate::events::{self, Event, EventLog};
use crate::haproxy::{self, RuntimeApi, ServerState};
use crate::layout::{Layout, ensure_dir, write_atomic};
use crate::mariadb::{self, Credentials, DbAdmin, DbStatus};
use crate::netns::{self, NetworkInfo, RegionLink};
use crate::process;
use crate::settings::{LocalSettings, Ports};

/// Bumped when `runtime.json` changes incompatibly.
pub const RUNTIME_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// `up` is creating things (or died doing so): `down` cleans up, `up` starts over.
    Starting,
    Up,
}

/// `runtime.json`: everything the other commands and the supervisor need to find the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    pub format: u32,
    /// Short id all names (namespaces, links) derive from.
    pub id: String,
    pub phase: Phase,
    pub settings: LocalSettings,
    pub ports: Ports,
    pub bridge: String,
    pub network: Option<NetworkInfo>,
    /// Configured primary first, then the standby.
    pub regions: Vec<RegionInfo>,
    pub credentials: Credentials,
    pub storefront_bin: PathBuf,
    /// The `lifeboat` executable the supervisor runs as (`lifeboat local supervise`).
    pub lifeboat_bin: PathBuf,
    pub started_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionInfo {
    pub name: String,
    pub link: RegionLink,
    pub server_id: u32,
}

/// A running (or partly running) runtime, found through its state directory.
#[derive(Debug, Clone)]
pub struct Runtime {
    layout: Layout,
    info: RuntimeInfo,
}

/// What `up` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpOutcome {
    /// Everything was already running.
    pub already_up: bool,
    /// Processes `up` (re)started on an existing runtime.
    pub restarted: Vec<String>,
    /// Things worth telling the user (a database that is down stays down: that is a DR event).
    pub notes: Vec<String>,
}

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownReport {
    pub was_up: bool,
    pub stopped_processes: Vec<String>,
    pub removed_namespaces: Vec<String>,
    pub removed_links: Vec<String>,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// The storefront binary: the setting, `LIFEBOAT_STOREFRONT_BIN`, or `storefront` next to the running
/// executable.
pub fn resolve_storefront_bin(settings: &LocalSettings) -> Result<PathBuf> {
    let candidate = settings
        .storefront_bin
        .clone()
        .or_else(|| std::env::var_os("LIFEBOAT_STOREFRONT_BIN").map(PathBuf::from))
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|d| d.join("storefront")))
        });
    match candidate {
        Some(path) if path.is_file() => Ok(path),
        Some(path) => Err(LocalError::Unavailable(format!(
            "the storefront binary is not at {} (build it with `cargo build -p storefront`, or set \
             LIFEBOAT_STOREFRONT_BIN)",
            path.display()
        ))),
        None => Err(LocalError::Unavailable(
            "cannot locate the storefront binary: set LIFEBOAT_STOREFRONT_BIN".into(),
        )),
    }
}

/// The `lifeboat` executable the supervisor runs as: the setting, `LIFEBOAT_BIN`, else the running
/// executable.
pub fn resolve_lifeboat_bin(settings: &LocalSettings) -> Result<PathBuf> {
    let configured = settings
        .lifeboat_bin
        .clone()
        .or_else(|| std::env::var_os("LIFEBOAT_BIN").map(PathBuf::from));
    let path = match configured {
        Some(p) => p,
        None => std::env::current_exe().map_err(|e| {
            LocalError::Unavailable(format!(
                "cannot locate the running lifeboat executable: {e}"
            ))
        })?,
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(LocalError::Unavailable(format!(
            "the lifeboat executable is not at {} (LIFEBOAT_BIN)",
            path.display()
        )))
    }
}

fn check_prerequisites() -> Result<()> {
    if !is_root() {
        return Err(LocalError::Unavailable(
            "the local runtime needs root: every region runs in its own network namespace (ip netns), which only \
             root (CAP_SYS_ADMIN, CAP_NET_ADMIN) can create; run `sudo lifeboat local up`"
                .into(),
        ));
    }
    let missing: Vec<&str> = ["ip", "mariadbd", "mariadb-install-db", "haproxy"]
        .into_iter()
        .filter(|p| find_program(p).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(LocalError::Unavailable(format!(
            "missing programs: {} (Debian: apt-get install mariadb-server haproxy iproute2)",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// A short id for the runtime in `root`: its names must differ from any other runtime's on this machine.
fn runtime_id(root: &Path) -> String {
    let digest = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..3])
}

async fn http_ok(client: &reqwest::Client, url: &str) -> bool {
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}

async fn wait_http_ok(url: &str, what: &str, timeout: Duration) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if http_ok(&client, url).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(LocalError::Failed(format!(
        "{what} did not answer 200 at {url} within {timeout:?}"
    )))
}

impl Runtime {
    /// The runtime in `state_dir` (`local.state_dir`), or [`LocalError::NotUp`].
    pub fn open(state_dir: &Path) -> Result<Self> {
        let layout = Layout::new(state_dir)?;
        let info = Self::read_info(&layout)?;
        Ok(Runtime { layout, info })
    }

    fn read_info(layout: &Layout) -> Result<RuntimeInfo> {
        let path = layout.runtime_json();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LocalError::NotUp(path));
            }
            Err(e) => return Err(LocalError::io("reading the runtime state", &path, e)),
        };
        let info: RuntimeInfo = serde_json::from_slice(&bytes)
            .map_err(|e| LocalError::Failed(format!("{} is not valid: {e}", path.display())))?;
        if info.format != RUNTIME_FORMAT {
            return Err(LocalError::Failed(format!(
                "{} has format {} but this lifeboat reads format {RUNTIME_FORMAT}: run `lifeboat local down` with \
                 the version that started it",
                path.display(),
                info.format
            )));
        }
        Ok(info)
    }

    /// Like [`Runtime::open`], but also [`LocalError::NotUp`] when `up` never finished.
    pub fn open_up(state_dir: &Path) -> Result<Self> {
        let runtime = Self::open(state_dir)?;
        if runtime.info.phase != Phase::Up {
            return Err(LocalError::NotUp(runtime.layout.runtime_json()));
        }
        Ok(runtime)
    }

    fn save(&self) -> Result<()> {
        write_info(&self.layout, &self.info)
    }

    /// Changes the settings recorded in `runtime.json`, where the supervisor, the DR backend and every
    /// later command read them. The file is read again first, so what another process recorded since this
    /// runtime was opened is kept; this runtime's own copy ([`Runtime::settings`]) stays as it was opened.
    /// Returns the settings as written.
    pub fn update_settings(
        &self,
        change: impl FnOnce(&mut LocalSettings),
    ) -> Result<LocalSettings> {
        let mut info = Self::read_info(&self.layout)?;
        change(&mut info.settings);
        write_info(&self.layout, &info)?;
        Ok(info.settings)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    pub fn info(&self) -> &RuntimeInfo {
        &self.info
    }
    pub fn settings(&self) -> &LocalSettings {
        &self.info.settings
    }
    pub fn regions(&self) -> &[RegionInfo] {
        &self.info.regions
    }
    /// The configured primary (active after `up`).
    pub fn primary_region(&self) -> &str {
        &self.info.settings.primary_region
    }
    pub fn standby_region(&self) -> &str {
        &self.info.settings.standby_region
    }
    pub fn region(&self, name: &str) -> Result<&RegionInfo> {
        self.info
            .regions
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| {
                LocalError::Usage(format!(
                    "unknown region {name:?}: this runtime has {}",
                    self.info
                        .regions
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ))
            })
    }
    /// The region of the pair that is not `name`, with what the runtime knows of it.
    pub fn peer_region(&self, name: &str) -> Result<&RegionInfo> {
        self.region(name)?;
        self.info
            .regions
            .iter()
            .find(|r| r.name != name)
            .ok_or_else(|| LocalError::Failed("the runtime has a single region".into()))
    }
    /// `http://127.0.0.1:<base_port>`: clients' entry point.
    pub fn front_door_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.info.ports.front_door)
    }
    /// The control server's base URL (on the bridge address, reachable from the root namespace).
    pub fn control_url(&self) -> String {
        let ip = self
            .info
            .network
            .as_ref()
            .map_or("127.0.0.1", |n| n.bridge_ip.as_str());
        format!("http://{ip}:{}", self.info.ports.control)
    }
    pub fn control(&self) -> ControlClient {
        ControlClient::new(&self.control_url())
    }
    pub fn front_door_api(&self) -> RuntimeApi {
        RuntimeApi::new(&self.layout.haproxy_socket())
    }
    pub fn events(&self) -> EventLog {
        EventLog::new(&self.layout.events_log())
    }
    /// The region's storefront, reachable from the root namespace and from inside the region.
    pub fn storefront_url(&self, region: &str) -> Result<String> {
        let r = self.region(region)?;
        Ok(format!(
            "http://{}:{}",
            r.link.ip, self.info.ports.storefront
        ))
    }
    /// Administrative access to the region's database (over the region's link).
    pub fn db(&self, region: &str) -> Result<DbAdmin> {
        let r = self.region(region)?;
        Ok(DbAdmin::new(
            &r.name,
            &r.link.ip,
            self.info.ports.database,
            &self.info.credentials.admin_password,
        ))
    }
    /// `mysql://...` for the region's database with full privileges (ledger checks).
    pub fn admin_db_url(&self, region: &str) -> Result<String> {
        Ok(self.db(region)?.url())
    }
    pub fn credentials(&self) -> &Credentials {
        &self.info.credentials
    }
    pub fn namespace(&self, region: &str) -> Result<&str> {
        Ok(&self.region(region)?.link.namespace)
    }
    pub fn database_pid(&self, region: &str) -> Option<u32> {
        process::alive_pid(&self.layout.mariadb_pid(region))
    }
    pub fn storefront_pid(&self, region: &str) -> Option<u32> {
        process::alive_pid(&self.layout.storefront_pid(region))
    }
    pub fn supervisor_pid(&self) -> Option<u32> {
        process::alive_pid(&self.layout.supervisor_pid())
    }
    pub fn haproxy_pid(&self) -> Option<u32> {
        process::alive_pid(&self.layout.haproxy_pid())
    }
    /// A command running `program` inside the region's namespace (e.g. a client that keeps writing to its
    /// storefront while the region is isolated).
    pub fn command_in_region(
        &self,
        region: &str,
        program: impl AsRef<std::ffi::OsStr>,
    ) -> Result<Command> {
        Ok(netns::command_in(self.namespace(region)?, program))
    }

    /// The region the control state names active.
    pub async fn active_region(&self) -> Result<String> {
        Ok(self.control().state().await?.active_region)
    }

    // ---- fault injection -------------------------------------------------------------------------

    /// `kill -9` of the region's mariadbd. Returns its pid.
    pub fn kill_database(&self, region: &str) -> Result<u32> {
        self.region(region)?;
        let pid = self.database_pid(region).ok_or_else(|| {
            LocalError::Failed(format!("the database of {region} is not running"))
        })?;
        process::kill_now(pid)?;
        self.events().record(
            Event::now(events::KIND_DATABASE_KILLED)
                .region(region)
                .detail(format!("pid {pid}")),
        );
        Ok(pid)
    }

    /// `kill -9` of the region's storefront (the supervisor restarts it). Returns its pid.
    pub fn kill_storefront(&self, region: &str) -> Result<u32> {
        self.region(region)?;
        let pid = self.storefront_pid(region).ok_or_else(|| {
            LocalError::Failed(format!("the storefront of {region} is not running"))
        })?;
        process::kill_now(pid)?;
        self.events().record(
            Event::now(events::KIND_STOREFRONT_KILLED)
                .region(region)
                .detail(format!("pid {pid}")),
        );
        Ok(pid)
    }

    /// Waits until the region's storefront answers `/health` (a restarted region's storefront comes back
    /// through the supervisor, a moment after its database).
    pub async fn wait_storefront(&self, region: &str, timeout: Duration) -> Result<()> {
        wait_http_ok(
            &format!("{}/health", self.storefront_url(region)?),
            &format!("the storefront of {region}"),
            timeout,
        )
        .await
    }

    /// Kills every process of the region (`kill -9` of everything in its namespace) and marks the region
    /// out, so the supervisor restarts nothing there. Returns the pids killed.
    pub fn kill_region(&self, region: &str) -> Result<Vec<u32>> {
        let ns = self.namespace(region)?.to_owned();
        write_atomic(&self.layout.outage_marker(region), b"killed\n")?;
        let mut killed = Vec::new();
        // A storefront the supervisor was restarting at that instant may appear after the first pass.
        for _ in 0..3 {
            let pids = process::pids_in_namespace(&ns);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                process::signal(pid, "KILL")?;
                killed.push(pid);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in &killed {
            process::wait_gone(*pid, Duration::from_secs(5));
        }
        self.events().record(
            Event::now(events::KIND_REGION_KILLED)
                .region(region)
                .detail(format!("pids {killed:?}")),
        );
        Ok(killed)
    }

    /// Cuts the region's only link: it loses the control server, the front door and the other region;
    /// processes inside keep running and reach each other.
    pub fn isolate(&self, region: &str) -> Result<()> {
        netns::set_region_link(&self.region(region)?.link, false)?;
        self.events()
            .record(Event::now(events::KIND_REGION_ISOLATED).region(region));
        Ok(())
    }

    /// Restores the region's link.
    pub fn heal(&self, region: &str) -> Result<()> {
        netns::set_region_link(&self.region(region)?.link, true)?;
        self.events()
            .record(Event::now(events::KIND_REGION_HEALED).region(region));
        Ok(())
    }

    /// Whether the region's link is up.
    pub fn is_isolated(&self, region: &str) -> Result<bool> {
        Ok(netns::region_link_up(&self.region(region)?.link) == Some(false))
    }

    /// Starts the region's database again if it is not running (it comes up read-only) and clears an
    /// outage mark, so the supervisor restarts its storefront. Returns the database pid.
    pub async fn restore_region(&self, region: &str) -> Result<u32> {
        self.region(region)?;
        let _ = std::fs::remove_file(self.layout.outage_marker(region));
        let pid = self.start_database(region).await?;
        self.events()
            .record(Event::now(events::KIND_REGION_RESTORED).region(region));
        Ok(pid)
    }

    /// Starts the region's mariadbd if it is not running and waits until it answers. It starts read-only
    /// (its configuration says so): making it a writer or a replica is the orchestrator's call.
    pub async fn start_database(&self, region: &str) -> Result<u32> {
        if let Some(pid) = self.database_pid(region) {
            return Ok(pid);
        }
        let ns = self.namespace(region)?;
        let pid = mariadb::start(&self.layout, region, ns)?;
        mariadb::wait_ready(
            &self.layout.mariadb_socket(region),
            region,
            Duration::from_secs(60),
        )
        .await?;
        self.events().record(
            Event::now(events::KIND_DATABASE_STARTED)
                .region(region)
                .detail(format!("pid {pid}")),
        );
        Ok(pid)
    }

    /// Starts the region's storefront (used by `up` and by the supervisor's restarts).
    pub fn start_storefront(&self, region: &str) -> Result<u32> {
        let r = self.region(region)?;
        let ports = self.info.ports;
        ensure_dir(&self.layout.assets_dir(region))?;
        let mut command = netns::command_in(&r.link.namespace, &self.info.storefront_bin);
        command
            .arg("--listen")
            .arg(format!("{}:{}", r.link.ip, ports.storefront))
            .arg("--region")
            .arg(&r.name)
            .arg("--control")
            .arg(self.control_url())
            .arg("--assets-dir")
            .arg(self.layout.assets_dir(region))
            // In the environment, not the arguments: arguments are visible to every user in `ps`.
            .env(
                "DATABASE_URL",
                format!(
                    "mysql://{}:{}@{}:{}/{}",
                    mariadb::APP_USER,
                    self.info.credentials.app_password,
                    r.link.ip,
                    ports.database,
                    mariadb::DATABASE_NAME
                ),
            );
        process::spawn_detached(
            command,
            &self.layout.storefront_log(region),
            &self.layout.storefront_pid(region),
        )
    }

    /// Starts the supervisor (`lifeboat local supervise`) detached.
    fn start_supervisor(&self) -> Result<u32> {
        let mut command = Command::new(&self.info.lifeboat_bin);
        command
            .args(["local", "supervise", "--runtime-dir"])
            .arg(self.layout.root());
        process::spawn_detached(
            command,
            &self.layout.supervisor_log(),
            &self.layout.supervisor_pid(),
        )
    }

    /// The front door configuration with traffic to `active`.
    pub fn write_haproxy_cfg(&self, active: &str) -> Result<()> {
        let servers: Vec<haproxy::Server<'_>> = self
            .info
            .regions
            .iter()
            .map(|r| haproxy::Server {
                region: &r.name,
                address: format!("{}:{}", r.link.ip, self.info.ports.storefront),
                enabled: r.name == active,
            })
            .collect();
        let cfg = haproxy::render_cfg(&self.layout, &self.info.settings, &servers);
        write_atomic(&self.layout.haproxy_cfg(), cfg.as_bytes())?;
        haproxy::check_cfg(&self.layout.haproxy_cfg())
    }

    /// Starts HAProxy (with traffic to `active`) if it is not running.
    pub fn start_front_door(&self, active: &str) -> Result<u32> {
        if let Some(pid) = self.haproxy_pid() {
            return Ok(pid);
        }
        self.write_haproxy_cfg(active)?;
        let _ = std::fs::remove_file(self.layout.haproxy_socket());
        haproxy::start(&self.layout)
    }

    /// Switches the pair between semi-sync and async replication, live and in the servers'
    /// configuration files (a restarted server keeps the mode). Databases that are down are switched
    /// when they start again, through their configuration.
    pub async fn set_replication(&self, mode: crate::settings::ReplicationMode) -> Result<()> {
        let on = if mode == crate::settings::ReplicationMode::SemiSync {
            "ON"
        } else {
            "OFF"
        };
        let settings = self.update_settings(|s| s.replication = mode)?;
        for region in &self.info.regions {
            // The config file first: a server restarted later (after a crash drill, by `local up`) comes
            // back in the mode asked for.
            let cnf = mariadb::render_cnf(
                &self.layout,
                &settings,
                &region.name,
                &region.link.ip,
                region.server_id,
            );
            write_atomic(&self.layout.mariadb_cnf(&region.name), cnf.as_bytes())?;
            if self.database_pid(&region.name).is_none() {
                continue;
            }
            let db = self.db(&region.name)?;
            db.execute(
                &format!(
                    "SET GLOBAL rpl_semi_sync_master_enabled = {on}; SET GLOBAL rpl_semi_sync_slave_enabled = {on}; \
                     SET GLOBAL rpl_semi_sync_master_timeout = {}; SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
                    settings.semi_sync_timeout_ms
                ),
                Duration::from_secs(5),
            )
            .await?;
            // A replica announces semi-sync when its IO thread connects.
            if db.status().await?.replica.is_some() {
                db.execute(
                    "STOP SLAVE IO_THREAD; START SLAVE IO_THREAD",
                    Duration::from_secs(10),
                )
                .await?;
            }
        }
        Ok(())
    }

    // ---- up / down / status ----------------------------------------------------------------------

    /// Brings the runtime up, or finds it up. On an existing runtime it restarts a missing supervisor or
    /// front door (never a database: a database that is down is a fault the orchestrator deals with).
    /// If a fresh start fails, everything started so far is taken down again.
    ///
    /// A fresh start reuses what a previous runtime left in the state directory (`down` keeps it): the
    /// databases, their passwords, the control state (active region, epoch) and the runbook journals, so
    /// `down` + `up` never loses the shop's data. [`Runtime::up_fresh`] deletes them first.
    pub async fn up(settings: &LocalSettings) -> Result<(Runtime, UpOutcome)> {
        Self::up_with(settings, false).await
    }

    /// Like [`Runtime::up`], but a runtime that is not running starts from empty databases: the data,
    /// control state, journals and reports of a previous runtime are deleted. A running runtime is refused
    /// (take it down first), so this never deletes what is serving.
    pub async fn up_fresh(settings: &LocalSettings) -> Result<(Runtime, UpOutcome)> {
        Self::up_with(settings, true).await
    }

    /// What a fresh start with `up_fresh` deletes, for the confirmation a caller asks.
    pub fn kept_state(settings: &LocalSettings) -> Result<Vec<PathBuf>> {
        let layout = Layout::new(&settings.state_dir)?;
        Ok([
            layout.root().join("regions"),
            layout.runs_dir(),
            layout.control_json(),
            layout.credentials_json(),
        ]
        .into_iter()
        .filter(|p| p.exists())
        .collect())
    }

    async fn up_with(settings: &LocalSettings, fresh: bool) -> Result<(Runtime, UpOutcome)> {
        settings.validate()?;
        check_prerequisites()?;
        let layout = Layout::new(&settings.state_dir)?;
        match Self::open(&settings.state_dir) {
            Ok(existing) if existing.info.phase == Phase::Up => {
                if fresh {
                    return Err(LocalError::Usage(format!(
                        "the local runtime in {} is running: `--fresh` deletes its databases, so take it down \
                         first (`lifeboat local down`)",
                        layout.root().display()
                    )));
                }
                let outcome = existing.ensure_running().await?;
                return Ok((existing, outcome));
            }
            Ok(_) => {
                // A previous `up` did not finish: clear what it left, then start over.
                Self::down(&settings.state_dir).await?;
            }
            Err(LocalError::NotUp(_)) => {}
            Err(e) => return Err(e),
        }
        let storefront_bin = resolve_storefront_bin(settings)?;
        let lifeboat_bin = resolve_lifeboat_bin(settings)?;
        // What a previous runtime left: its databases (with their passwords) and control state are started
        // again unless a fresh start was asked for; half of it (a region's data without the passwords) is
        // not enough to start from.
        let credentials = std::fs::read(layout.credentials_json())
            .ok()
            .and_then(|b| serde_json::from_slice::<Credentials>(&b).ok());
        let data_kept = [&settings.primary_region, &settings.standby_region]
            .iter()
            .all(|r| layout.mariadb_data(r).join("mysql").is_dir());
        let control_kept = std::fs::read(layout.control_json())
            .ok()
            .and_then(|b| serde_json::from_slice::<ControlState>(&b).ok());
        let reuse = match (fresh, credentials, control_kept) {
            (false, Some(credentials), Some(control)) if data_kept => Some((credentials, control)),
            _ => None,
        };
        if reuse.is_none() {
            for dir in [layout.root().join("regions"), layout.runs_dir()] {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| LocalError::io("clearing an old runtime", &dir, e))?;
                }
            }
            for file in [
                layout.control_json(),
                layout.credentials_json(),
                layout.events_log(),
                layout.notifications_log(),
            ] {
                let _ = std::fs::remove_file(file);
            }
        }
        if layout.haproxy_dir().exists() {
            let dir = layout.haproxy_dir();
            std::fs::remove_dir_all(&dir)
                .map_err(|e| LocalError::io("clearing an old front door", &dir, e))?;
        }
        ensure_dir(layout.root())?;
        let id = runtime_id(layout.root());
        let region_names = [
            settings.primary_region.as_str(),
            settings.standby_region.as_str(),
        ];
        let (bridge, links) = netns::plan(&id, &region_names);
        let regions = region_names
            .iter()
            .zip(links)
            .enumerate()
            .map(|(i, (name, (namespace, host_veth, ns_veth)))| RegionInfo {
                name: (*name).to_owned(),
                link: RegionLink {
                    namespace,
                    host_veth,
                    ns_veth,
                    ip: String::new(),
                },
                server_id: u32::try_from(i).unwrap_or(0) + 1,
            })
            .collect();
        let mut runtime = Runtime {
            layout,
            info: RuntimeInfo {
                format: RUNTIME_FORMAT,
                id,
                phase: Phase::Starting,
                settings: settings.clone(),
                ports: settings.ports(),
                bridge,
                network: None,
                regions,
                credentials: reuse
                    .as_ref()
                    .map(|(c, _)| c.clone())
                    .unwrap_or_else(Credentials::generate),
                storefront_bin,
                lifeboat_bin,
                started_at_ms: events::now_ms(),
            },
        };
        runtime.save()?;
        crate::layout::write_atomic(
            &runtime.layout.credentials_json(),
            &serde_json::to_vec_pretty(&runtime.info.credentials)
                .map_err(|e| LocalError::Failed(format!("encoding credentials: {e}")))?,
        )?;
        set_mode(&runtime.layout.credentials_json(), 0o600)?;
        let kept = reuse.map(|(_, control)| control);
        match runtime.start_fresh(kept.as_ref()).await {
            Ok(notes) => {
                runtime.info.phase = Phase::Up;
                runtime.save()?;
                runtime
                    .events()
                    .record(Event::now(events::KIND_RUNTIME_UP).detail(format!(
                        "active {}, replication {}",
                        kept.as_ref().map_or(settings.primary_region.as_str(), |c| {
                            c.active_region.as_str()
                        }),
                        settings.replication.as_str()
                    )));
                Ok((
                    runtime,
                    UpOutcome {
                        already_up: false,
                        restarted: Vec::new(),
                        notes,
                    },
                ))
            }
            Err(e) => {
                let _ = Self::down(&settings.state_dir).await;
                Err(e)
            }
        }
    }

    /// Starts both regions. `kept`: the control state of a previous runtime whose databases are started
    /// again (its active region becomes the writer unless its fence is up, the other its replica); `None`:
    /// new databases. Returns notes for the operator.
    async fn start_fresh(&mut self, kept: Option<&ControlState>) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        let network = netns::create_bridge(&self.info.bridge)?;
        for (i, region) in self.info.regions.iter_mut().enumerate() {
            region.link.ip = format!("{}.{}", network.subnet, i + 2);
        }
        self.info.network = Some(network.clone());
        self.save()?;
        for region in &self.info.regions {
            netns::create_region(&network, &region.link)?;
        }
        // Databases: both started, users on each (outside the binary log), then replication, then the
        // storefront's database on the primary so it reaches the standby through replication.
        for region in &self.info.regions {
            ensure_dir(&self.layout.mariadb_dir(&region.name))?;
            let cnf = mariadb::render_cnf(
                &self.layout,
                &self.info.settings,
                &region.name,
                &region.link.ip,
                region.server_id,
            );
            write_atomic(&self.layout.mariadb_cnf(&region.name), cnf.as_bytes())?;
            mariadb::install(&self.layout, &region.name)?;
            mariadb::start(&self.layout, &region.name, &region.link.namespace)?;
        }
        for region in &self.info.regions {
            let socket = self.layout.mariadb_socket(&region.name);
            mariadb::wait_ready(&socket, &region.name, Duration::from_secs(60)).await?;
            mariadb::create_users(&socket, &region.name, &self.info.credentials).await?;
        }
        let (active, fence_up) = match kept {
            Some(control) => {
                self.region(&control.active_region).map_err(|_| {
                    LocalError::Failed(format!(
                        "{} names {} as the active region, which is not one of this runtime's regions: start \
                         from empty databases with `lifeboat local up --fresh`, or restore the regions in the \
                         configuration",
                        self.layout.control_json().display(),
                        control.active_region
                    ))
                })?;
                notes.push(format!(
                    "kept the databases of the previous runtime: {} active under epoch {}",
                    control.active_region, control.epoch
                ));
                (control.active_region.clone(), control.fence_raised)
            }
            None => (self.info.settings.primary_region.clone(), false),
        };
        let passive = self.peer_region(&active)?.name.clone();
        let writer = self.db(&active)?;
        let replica = self.db(&passive)?;
        if fence_up {
            notes.push(format!(
                "the write fence is up (a runbook stopped half-way): {active} stays read-only until `lifeboat \
                 resume --target local` finishes that runbook"
            ));
        } else {
            writer.set_read_only(false).await?;
        }
        // With kept data the replica continues after exactly what it holds; a history that diverged shows as a
        // replication error in `local status`, and `lifeboat reprotect`/`failback` repairs it.
        replica
            .replicate_from(&writer, &self.info.credentials)
            .await?;
        if kept.is_none() {
            writer.create_database().await?;
            crate::control::save(
                &self.layout.control_json(),
                &ControlState {
                    active_region: active.clone(),
                    epoch: 0,
                    fence_raised: false,
                    lease_ms: u64::from(self.info.settings.lease_ms),
                },
            )?;
        }
        self.start_supervisor()?;
        wait_http_ok(
            &format!("{}/health", self.control_url()),
            "the control server",
            Duration::from_secs(20),
        )
        .await?;

        // The active region's storefront creates the schema on new databases; the passive one finds it
        // through replication.
        self.start_storefront(&active)?;
        let ready = if fence_up {
            format!("{}/health", self.storefront_url(&active)?)
        } else {
            format!(
                "{}/health/deep?expect=active",
                self.storefront_url(&active)?
            )
        };
        wait_http_ok(
            &ready,
            &format!("the storefront of {active}"),
            Duration::from_secs(60),
        )
        .await?;
        self.start_storefront(&passive)?;
        wait_http_ok(
            &format!("{}/health", self.storefront_url(&passive)?),
            &format!("the storefront of {passive}"),
            Duration::from_secs(60),
        )
        .await?;
        self.start_front_door(&active)?;
        wait_http_ok(
            &format!("{}/health", self.front_door_url()),
            "the front door",
            Duration::from_secs(20),
        )
        .await?;
        Ok(notes)
    }

    async fn ensure_running(&self) -> Result<UpOutcome> {
        let mut outcome = UpOutcome {
            already_up: true,
            restarted: Vec::new(),
            notes: Vec::new(),
        };
        if self.supervisor_pid().is_none() {
            self.start_supervisor()?;
            wait_http_ok(
                &format!("{}/health", self.control_url()),
                "the control server",
                Duration::from_secs(20),
            )
            .await?;
            outcome.restarted.push("supervisor".into());
        }
        if self.haproxy_pid().is_none() {
            let active = self.active_region().await?;
            self.start_front_door(&active)?;
            outcome.restarted.push("front door (haproxy)".into());
        }
        // A passive region that is down (a crashed old primary, a region a drill killed) comes back as it
        // would after a reboot: database read-only with no role, storefront restarted by the supervisor.
        // Making it a replica again is the orchestrator's (`lifeboat failback` re-protects it). The
        // active region is never touched: a dead active database is a fault for the orchestrator.
        let active = self.active_region().await.ok();
        for region in &self.info.regions {
            let down = self.database_pid(&region.name).is_none()
                || self.layout.outage_marker(&region.name).exists();
            if !down {
                continue;
            }
            if active.as_deref() == Some(region.name.as_str()) || active.is_none() {
                outcome.notes.push(format!(
                    "the database of the active region {} is not running: that is a fault for the orchestrator \
                     (`lifeboat failover --target local`), so `up` leaves it",
                    region.name
                ));
            } else {
                self.restore_region(&region.name).await?;
                wait_http_ok(
                    &format!("{}/health", self.storefront_url(&region.name)?),
                    &format!("the storefront of {}", region.name),
                    Duration::from_secs(30),
                )
                .await?;
                outcome.restarted.push(format!(
                    "region {} (database read-only; `lifeboat failback --target local` makes it a replica again)",
                    region.name
                ));
            }
        }
        outcome.already_up = outcome.restarted.is_empty();
        Ok(outcome)
    }

    /// Stops every process of the runtime in `state_dir`, removes its namespaces, links and bridge. Data,
    /// passwords, control state and logs stay: the next `up` starts the same databases again (`up --fresh`
    /// deletes them). Nothing to do is a success.
    pub async fn down(state_dir: &Path) -> Result<DownReport> {
        let runtime = match Self::open(state_dir) {
            Ok(r) => r,
            Err(LocalError::NotUp(_)) => return Ok(DownReport::default()),
            Err(e) => return Err(e),
        };
        let mut report = DownReport {
            was_up: true,
            ..Default::default()
        };
        let layout = &runtime.layout;
        // The supervisor first, so it restarts nothing while the rest goes.
        let mut targets: Vec<(String, PathBuf)> =
            vec![("supervisor".into(), layout.supervisor_pid())];
        for r in &runtime.info.regions {
            targets.push((
                format!("storefront {}", r.name),
                layout.storefront_pid(&r.name),
            ));
        }
        targets.push(("front door (haproxy)".into(), layout.haproxy_pid()));
        for r in &runtime.info.regions {
            targets.push((format!("database {}", r.name), layout.mariadb_pid(&r.name)));
        }
        let mut errors = Vec::new();
        for (name, pid_file) in targets {
            if let Some(pid) = process::alive_pid(&pid_file) {
                match process::stop(pid, Duration::from_secs(10)) {
                    Ok(()) => report.stopped_processes.push(format!("{name} (pid {pid})")),
                    Err(e) => errors.push(format!("{name}: {e}")),
                }
            }
        }
        // Anything else still inside a region (drill clients, a storefront restarted at the last instant).
        for r in &runtime.info.regions {
            for pid in process::pids_in_namespace(&r.link.namespace) {
                match process::kill_now(pid) {
                    Ok(()) => report
                        .stopped_processes
                        .push(format!("process {pid} in {}", r.link.namespace)),
                    Err(e) => errors.push(format!("process {pid} in {}: {e}", r.link.namespace)),
                }
            }
        }
        for r in &runtime.info.regions {
            let had_ns = netns::namespace_exists(&r.link.namespace);
            let had_link = netns::link_exists(&r.link.host_veth);
            match netns::delete_region(&r.link) {
                Ok(()) => {
                    if had_ns {
                        report.removed_namespaces.push(r.link.namespace.clone());
                    }
                    if had_link {
                        report.removed_links.push(r.link.host_veth.clone());
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if netns::link_exists(&runtime.info.bridge) {
            match netns::delete_bridge(&runtime.info.bridge) {
                Ok(()) => report.removed_links.push(runtime.info.bridge.clone()),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(LocalError::Failed(format!(
                "`local down` could not remove everything: {}",
                errors.join("; ")
            )));
        }
        let path = layout.runtime_json();
        std::fs::remove_file(&path)
            .map_err(|e| LocalError::io("removing the runtime state", &path, e))?;
        Ok(report)
    }

    /// Everything observable about the runtime right now. Never fails on an unreachable part: that part's
    /// entry says so.
    pub async fn status(&self) -> RuntimeStatus {
        let control = self.control().view().await.map_err(|e| e.to_string());
        let front_door = self
            .front_door_api()
            .servers()
            .await
            .map_err(|e| e.to_string());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_default();
        let mut regions = Vec::new();
        for r in &self.info.regions {
            let database = match self.database_pid(&r.name) {
                None => Err("not running".to_owned()),
                Some(_) => match self.db(&r.name) {
                    Ok(db) => db.status().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
            };
            let url = self.storefront_url(&r.name).unwrap_or_default();
            let storefront_healthy = http_ok(&client, &format!("{url}/health")).await;
            let accepting_writes =
                http_ok(&client, &format!("{url}/health/deep?expect=active")).await;
            regions.push(RegionStatus {
                name: r.name.clone(),
                namespace: r.link.namespace.clone(),
                ip: r.link.ip.clone(),
                isolated: netns::region_link_up(&r.link) == Some(false),
                marked_out: self.layout.outage_marker(&r.name).exists(),
                database_pid: self.database_pid(&r.name),
                database,
                storefront_pid: self.storefront_pid(&r.name),
                storefront_url: url,
                storefront_healthy,
                accepting_writes,
            });
        }
        RuntimeStatus {
            state_dir: self.layout.root().to_path_buf(),
            phase: self.info.phase,
            replication: self.info.settings.replication.as_str().to_owned(),
            front_door_url: self.front_door_url(),
            front_door_pid: self.haproxy_pid(),
            front_door,
            control_url: self.control_url(),
            control,
            supervisor_pid: self.supervisor_pid(),
            automatic_failover: self.info.settings.automatic_failover,
            regions,
        }
    }
}

/// Writes `runtime.json`, readable by its owner only: it holds the database passwords.
fn write_info(layout: &Layout, info: &RuntimeInfo) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(info)
        .map_err(|e| LocalError::Failed(format!("encoding runtime state: {e}")))?;
    let path = layout.runtime_json();
    crate::layout::write_atomic_with_mode(&path, &bytes, 0o600)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| LocalError::io("restricting file permissions", path, e))
}

/// What `lifeboat local status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeStatus {
    pub state_dir: PathBuf,
    pub phase: Phase,
    pub replication: String,
    pub front_door_url: String,
    pub front_door_pid: Option<u32>,
    pub front_door: std::result::Result<Vec<ServerState>, String>,
    pub control_url: String,
    pub control: std::result::Result<ControlView, String>,
    pub supervisor_pid: Option<u32>,
    pub automatic_failover: bool,
    pub regions: Vec<RegionStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionStatus {
    pub name: String,
    pub namespace: String,
    pub ip: String,
    pub isolated: bool,
    pub marked_out: bool,
    pub database_pid: Option<u32>,
    pub database: std::result::Result<DbStatus, String>,
    pub storefront_pid: Option<u32>,
    pub storefront_url: String,
    pub storefront_healthy: bool,
    pub accepting_writes: bool,
}

impl RegionStatus {
    /// Whether this region's database replicates (both threads running).
    pub fn replicating(&self) -> bool {
        matches!(&self.database, Ok(s) if s.replica.as_ref().is_some_and(|r| r.running()))
    }
}

impl RuntimeStatus {
    pub fn region(&self, name: &str) -> Option<&RegionStatus> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// A readable summary.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let pid = |p: Option<u32>| p.map_or("not running".to_owned(), |p| format!("pid {p}"));
        let _ = writeln!(
            out,
            "local runtime in {} ({:?}, replication {})",
            self.state_dir.display(),
            self.phase,
            self.replication
        );
        match &self.control {
            Ok(v) => {
                let _ = writeln!(
                    out,
                    "control: active {}, epoch {}, fence {}, lease {} ms ({})",
                    v.state.active_region,
                    v.state.epoch,
                    if v.state.fence_raised {
                        "raised"
                    } else {
                        "lowered"
                    },
                    v.state.lease_ms,
                    self.control_url
                );
            }
            Err(e) => {
                let _ = writeln!(out, "control: unreachable: {e}");
            }
        }
        let _ = writeln!(
            out,
            "supervisor: {} (automatic failover {})",
            pid(self.supervisor_pid),
            if self.automatic_failover {
                "allowed"
            } else {
                "not allowed"
            }
        );
        let _ = write!(
            out,
            "front door: {} ({})",
            self.front_door_url,
            pid(self.front_door_pid)
        );
        match &self.front_door {
            Ok(servers) => {
                let list: Vec<String> = servers
                    .iter()
                    .map(|s| format!("{} {}", s.region, s.status))
                    .collect();
                let _ = writeln!(out, ": {}", list.join(", "));
            }
            Err(e) => {
                let _ = writeln!(out, ": runtime API unreachable: {e}");
            }
        }
        for r in &self.regions {
            let _ = writeln!(
                out,
                "{} (namespace {}, {}{}{})",
                r.name,
                r.namespace,
                r.ip,
                if r.isolated { ", ISOLATED" } else { "" },
                if r.marked_out { ", OUT" } else { "" }
            );
            let _ = writeln!(
                out,
                "  storefront: {} {} ({})",
                r.storefront_url,
                if r.accepting_writes {
                    "accepting writes"
                } else if r.storefront_healthy {
                    "up, not accepting writes"
                } else {
                    "not answering"
                },
                pid(r.storefront_pid)
            );
            match &r.database {
                Ok(db) => {
                    let role = if db.read_only {
                        "read-only"
                    } else {
                        "writable"
                    };
                    let replication = match &db.replica {
                        Some(rep) => format!(
                            "replica of {} (io {}, sql {}, {} s behind){}",
                            rep.master_host,
                            rep.io_running,
                            rep.sql_running,
                            rep.seconds_behind_master
                                .map_or("?".to_owned(), |s| s.to_string()),
                            if rep.last_io_error.is_empty() && rep.last_sql_error.is_empty() {
                                String::new()
                            } else {
                                format!(", error: {} {}", rep.last_io_error, rep.last_sql_error)
                            }
                        ),
                        None => "no replication".to_owned(),
                    };
                    let _ = writeln!(
                        out,
                        "  database: {role}, {replication}, gtid {}, fence epoch {}, semi-sync {} ({})",
                        if db.gtid_binlog_pos.is_empty() {
                            "-"
                        } else {
                            &db.gtid_binlog_pos
                        },
                        db.fence_epoch.map_or("-".to_owned(), |e| e.to_string()),
                        match db.semi_sync_active {
                            Some(true) => "on",
                            Some(false) => "off",
                            None => "-",
                        },
                        pid(r.database_pid)
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "  database: {e} ({})", pid(r.database_pid));
                }
            }
        }
        out
    }
}
