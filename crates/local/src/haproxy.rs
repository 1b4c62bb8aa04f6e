//! The front door: HAProxy in the root namespace on `127.0.0.1:<base_port>`, one backend with a server
//! per region. Health checks ask each region's storefront `GET /health/deep?expect=active` (200 only where
//! writes are accepted right now); the DR backend moves traffic through HAProxy's runtime API
//! (`set server <backend>/<region> state ready|maint`), the local analogue of Route 53 failover.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::{LocalError, Result};
use crate::layout::Layout;
use crate::settings::LocalSettings;

/// The backend holding one server per region.
pub const BACKEND: &str = "regions";

/// A region as HAProxy sees it.
pub struct Server<'a> {
    pub region: &'a str,
    pub address: String,
    /// Whether traffic may go there (the passive region starts in maintenance).
    pub enabled: bool,
}

/// The configuration. `servers` in a stable order; only `enabled` ones receive traffic.
pub fn render_cfg(layout: &Layout, settings: &LocalSettings, servers: &[Server<'_>]) -> String {
    let mut out = format!(
        "# lifeboat local runtime: the front door\n\
         global\n\
         \x20   stats socket {sock} mode 600 level admin\n\
         \x20   pidfile {pid}\n\
         \x20   maxconn 4000\n\
         \n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 1s\n\
         \x20   timeout client 30s\n\
         \x20   timeout server 30s\n\
         \x20   timeout check {check}ms\n\
         \n\
         frontend shop\n\
         \x20   bind 127.0.0.1:{port}\n\
         \x20   default_backend {BACKEND}\n\
         \n\
         backend {BACKEND}\n\
         \x20   option httpchk GET /health/deep?expect=active\n\
         \x20   http-check expect status 200\n\
         \x20   default-server inter {inter}ms fastinter {inter}ms downinter {down}ms fall {fall} rise 1\n",
        sock = layout.haproxy_socket().display(),
        pid = layout.haproxy_pid().display(),
        port = settings.ports().front_door,
        inter = settings.probe_interval_ms,
        // A server that is down is checked often, so a newly promoted region gets traffic as soon as its
        // fence is lowered; one that is up at the configured interval, like a Route 53 health check.
        down = settings.probe_interval_ms.min(100),
        check = settings.probe_interval_ms.clamp(100, 2000),
        fall = settings.failure_threshold,
    );
    for s in servers {
        out.push_str(&format!(
            "    server {} {} check{}\n",
            s.region,
            s.address,
            if s.enabled { "" } else { " disabled" }
        ));
    }
    out
}

/// Checks a configuration with `haproxy -c`.
pub fn check_cfg(cfg: &Path) -> Result<()> {
    let mut command = std::process::Command::new("haproxy");
    command.args(["-c", "-q", "-f"]).arg(cfg);
    crate::process::run(command)
        .map(|_| ())
        .map_err(|e| LocalError::Failed(format!("HAProxy configuration is invalid: {e}")))
}

/// Starts HAProxy in the foreground of a detached process (no daemon mode, so the pid is HAProxy's).
pub fn start(layout: &Layout) -> Result<u32> {
    let mut command = std::process::Command::new("haproxy");
    command.arg("-f").arg(layout.haproxy_cfg()).arg("-db");
    crate::process::spawn_detached(command, &layout.haproxy_log(), &layout.haproxy_pid())
}

/// HAProxy's runtime API on its admin socket.
#[derive(Debug, Clone)]
pub struct RuntimeApi {
    socket: std::path::PathBuf,
}

/// One server's state as the runtime API reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerState {
    pub region: String,
    /// `UP`, `DOWN`, `MAINT`, `UP 1/2`, ... (HAProxy's status column).
    pub status: String,
    /// The last health check's result as HAProxy describes it (`L7OK`, `L7STS`, ...).
    pub check_status: String,
}

impl ServerState {
    pub fn receives_traffic(&self) -> bool {
        self.status.starts_with("UP")
    }
}

impl RuntimeApi {
    pub fn new(socket: &Path) -> Self {
        RuntimeApi {
            socket: socket.to_path_buf(),
        }
    }

    /// Sends one command and returns HAProxy's answer.
    pub async fn command(&self, command: &str) -> Result<String> {
        let fut = async {
            let mut stream = tokio::net::UnixStream::connect(&self.socket).await?;
            stream.write_all(format!("{command}\n").as_bytes()).await?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        match tokio::time::timeout(Duration::from_secs(3), fut).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(LocalError::Unavailable(format!(
                "HAProxy runtime API at {} did not answer `{command}`: {e}",
                self.socket.display()
            ))),
            Err(_) => Err(LocalError::Unavailable(format!(
                "HAProxy runtime API at {} did not answer `{command}` within 3 s",
                self.socket.display()
            ))),
        }
    }

    /// Puts a region's server into `ready` (receives traffic once its health check passes) or `maint`.
    pub async fn set_server_state(&self, region: &str, ready: bool) -> Result<()> {
        let state = if ready { "ready" } else { "maint" };
        let answer = self
            .command(&format!("set server {BACKEND}/{region} state {state}"))
            .await?;
        if answer.trim().is_empty() {
            Ok(())
        } else {
            Err(LocalError::Failed(format!(
                "HAProxy refused to set {region} {state}: {}",
                answer.trim()
            )))
        }
    }

    /// The state of every region's server (`show stat`).
    pub async fn servers(&self) -> Result<Vec<ServerState>> {
        let csv = self.command("show stat").await?;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(px), Some(sv), Some(st), Some(cs)) = (
            col("pxname"),
            col("svname"),
            col("status"),
            col("check_status"),
        ) else {
            return Err(LocalError::Failed(
                "HAProxy `show stat` has no pxname/svname/status columns".into(),
            ));
        };
        Ok(lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| {
                f.get(px) == Some(&BACKEND)
                    && f.get(sv)
                        .is_some_and(|s| *s != "BACKEND" && *s != "FRONTEND")
            })
            .map(|f| ServerState {
                region: f[sv].to_owned(),
                status: f.get(st).copied().unwrap_or_default().to_owned(),
                check_status: f.get(cs).copied().unwrap_or_default().to_owned(),
            })
            .collect())
    }
}
