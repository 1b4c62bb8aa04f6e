//! One MariaDB server per region: configuration, first start, users, and the replication operations the
//! runtime and the DR backend perform (replica setup, promotion, demotion, the fencing row).
//!
//! Every server starts with `read_only=ON` from its configuration: a server that (re)starts never accepts
//! writes until the runtime or the orchestrator says it is the writer. Administration goes over TCP from
//! the root namespace, so a partitioned region is as unreachable for the orchestrator as it is for clients.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{AssertSqlSafe, Connection as _, Row as _};

use crate::error::{LocalError, Result};
use crate::layout::Layout;
use crate::settings::{LocalSettings, ReplicationMode};

/// The storefront's database.
pub const DATABASE_NAME: &str = "shop";
/// Administration (orchestrator, status, drills' ledger check): all privileges.
pub const ADMIN_USER: &str = "lifeboat_admin";
/// Replication between the regions.
pub const REPLICATION_USER: &str = "lifeboat_repl";
/// The storefront: privileges on its database only, so `read_only` binds it.
pub const APP_USER: &str = "storefront";

/// How long one administrative operation may take to connect (a cut-off region never answers).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Passwords of the runtime's database users (random per runtime; kept in `runtime.json`, mode 0600).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub admin_password: String,
    pub replication_password: String,
    pub app_password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

impl Credentials {
    pub fn generate() -> Self {
        let secret = || uuid::Uuid::new_v4().simple().to_string();
        Credentials {
            admin_password: secret(),
            replication_password: secret(),
            app_password: secret(),
        }
    }
}

/// The configuration file of one region's server.
pub fn render_cnf(
    layout: &Layout,
    settings: &LocalSettings,
    region: &str,
    ip: &str,
    server_id: u32,
) -> String {
    let dir = layout.mariadb_dir(region);
    let semi_sync = match settings.replication {
        ReplicationMode::SemiSync => format!(
            "# Semi-synchronous replication: a commit returns once the standby has it (AFTER_SYNC: before the\n\
             # primary's own engine commit, so a crashed primary holds nothing its replica lacks), or after the\n\
             # timeout, when the primary falls back to async until the replica is back.\n\
             rpl-semi-sync-master-enabled=ON\n\
             rpl-semi-sync-slave-enabled=ON\n\
             rpl-semi-sync-master-timeout={}\n\
             rpl-semi-sync-master-wait-point=AFTER_SYNC\n",
            settings.semi_sync_timeout_ms
        ),
        // Off, with the timeout and wait point the semi-sync mode uses, so that switching a running pair to
        // semi-sync (Runtime::set_replication) finds them as a fresh start would set them.
        ReplicationMode::Async => format!(
            "rpl-semi-sync-master-enabled=OFF\n\
             rpl-semi-sync-slave-enabled=OFF\n\
             rpl-semi-sync-master-timeout={}\n\
             rpl-semi-sync-master-wait-point=AFTER_SYNC\n",
            settings.semi_sync_timeout_ms
        ),
    };
    format!(
        "# lifeboat local runtime: MariaDB of region {region}\n\
         [mariadbd]\n\
         port={port}\n\
         bind-address={ip}\n\
         socket={sock}\n\
         datadir={data}\n\
         pid-file={dir}/mysqld.pid\n\
         log-error={log}\n\
         # Runs as root: the state directory may sit below directories only root can enter.\n\
         user=root\n\
         server-id={server_id}\n\
         log-bin=binlog\n\
         log-slave-updates=ON\n\
         binlog-format=ROW\n\
         gtid-strict-mode=ON\n\
         sync-binlog=1\n\
         innodb-flush-log-at-trx-commit=1\n\
         # Never writable after a (re)start until told so.\n\
         read-only=ON\n\
         skip-name-resolve\n\
         innodb-buffer-pool-size=64M\n\
         performance-schema=OFF\n\
         max-connections=400\n\
         # Also the replica's connect timeout: a cut-off primary holds up STOP SLAVE for at most this.\n\
         slave-net-timeout=1\n\
         # Parallel apply, committed in the primary's order: a serial applier that syncs every transaction\n\
         # falls seconds behind a busy primary, and a planned switchover waits that lag out with writes\n\
         # fenced. Applied transactions then share group commits, as they did on the primary.\n\
         slave-parallel-threads=4\n\
         slave-parallel-mode=optimistic\n\
         {semi_sync}",
        port = settings.ports().database,
        sock = layout.mariadb_socket(region).display(),
        data = layout.mariadb_data(region).display(),
        dir = dir.display(),
        log = layout.mariadb_log(region).display(),
    )
}

/// Creates the system tables in an empty data directory (`mariadb-install-db`). A data directory that is
/// already initialised is left alone.
pub fn install(layout: &Layout, region: &str) -> Result<()> {
    if layout.mariadb_data(region).join("mysql").is_dir() {
        return Ok(());
    }
    crate::layout::ensure_dir(&layout.mariadb_data(region))?;
    let mut command = Command::new("mariadb-install-db");
    command
        .arg(format!(
            "--defaults-file={}",
            layout.mariadb_cnf(region).display()
        ))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
    let mut result = crate::process::run(command);
    if result.is_err() {
        // Seen once when several runtimes initialise at the same instant: a second try from an empty
        // directory succeeds.
        let data = layout.mariadb_data(region);
        let _ = std::fs::remove_dir_all(&data);
        crate::layout::ensure_dir(&data)?;
        let mut again = Command::new("mariadb-install-db");
        again
            .arg(format!(
                "--defaults-file={}",
                layout.mariadb_cnf(region).display()
            ))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        result = crate::process::run(again);
    }
    result.map(|_| ()).map_err(|e| {
        LocalError::Failed(format!(
            "initialising the MariaDB data directory of {region} failed: {e}"
        ))
    })
}

/// Starts the region's mariadbd inside its namespace; returns its pid.
pub fn start(layout: &Layout, region: &str, namespace: &str) -> Result<u32> {
    let mut command = crate::netns::command_in(namespace, "mariadbd");
    command.arg(format!(
        "--defaults-file={}",
        layout.mariadb_cnf(region).display()
    ));
    crate::process::spawn_detached(
        command,
        &layout.mariadb_dir(region).join("stdout.log"),
        &layout.mariadb_pid(region),
    )
}

/// Waits until the server answers on its unix socket (root, no password: only for the first setup).
pub async fn wait_ready(socket: &Path, region: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let options = MySqlConnectOptions::new().socket(socket).username("root");
        match MySqlConnection::connect_with(&options).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(LocalError::Failed(format!(
                    "MariaDB of {region} did not answer on {} within {timeout:?}: {e}",
                    socket.display()
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Creates the runtime's users on one server, outside the binary log (each server gets the same users;
/// logging them would give the servers diverging GTID histories).
pub async fn create_users(socket: &Path, region: &str, credentials: &Credentials) -> Result<()> {
    let options = MySqlConnectOptions::new().socket(socket).username("root");
    let mut conn = MySqlConnection::connect_with(&options).await.map_err(|e| {
        LocalError::Database(format!("connecting to MariaDB of {region} as root: {e}"))
    })?;
    let sql = format!(
        "SET SESSION sql_log_bin = 0;
         CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'%' IDENTIFIED BY '{admin}';
         GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION;
         CREATE USER IF NOT EXISTS '{REPLICATION_USER}'@'%' IDENTIFIED BY '{repl}';
         GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR ON *.* TO '{REPLICATION_USER}'@'%';
         CREATE USER IF NOT EXISTS '{APP_USER}'@'%' IDENTIFIED BY '{app}';
         GRANT ALL PRIVILEGES ON `{DATABASE_NAME}`.* TO '{APP_USER}'@'%';",
        admin = credentials.admin_password,
        repl = credentials.replication_password,
        app = credentials.app_password,
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .map_err(|e| LocalError::Database(format!("creating users on MariaDB of {region}: {e}")))?;
    let _ = conn.close().await;
    Ok(())
}

/// What a server reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbStatus {
    pub read_only: bool,
    pub gtid_binlog_pos: String,
    pub gtid_slave_pos: String,
    /// Present when replication is configured on this server.
    pub replica: Option<ReplicaStatus>,
    /// `Rpl_semi_sync_master_status`: whether commits currently wait for a replica.
    pub semi_sync_active: Option<bool>,
    /// The fencing row's epoch (`shop.lifeboat_fence`), once the storefront created it.
    pub fence_epoch: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub master_host: String,
    /// `Yes`, `No` or `Connecting`.
    pub io_running: String,
    pub sql_running: String,
    pub seconds_behind_master: Option<u64>,
    pub gtid_io_pos: String,
    pub last_io_error: String,
    pub last_sql_error: String,
}

impl ReplicaStatus {
    pub fn running(&self) -> bool {
        self.io_running == "Yes" && self.sql_running == "Yes"
    }
}

/// Administrative access to one region's server over TCP.
#[derive(Debug, Clone)]
pub struct DbAdmin {
    pub region: String,
    pub host: String,
    pub port: u16,
    password: String,
}

fn cell(row: &MySqlRow, name: &str) -> Option<String> {
    if let Ok(v) = row.try_get::<Option<String>, _>(name) {
        return v;
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(name) {
        return v.map(|v| v.to_string());
    }
    if let Ok(v) = row.try_get::<Option<u64>, _>(name) {
        return v.map(|v| v.to_string());
    }
    row.try_get::<Option<Vec<u8>>, _>(name)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

impl DbAdmin {
    pub fn new(region: &str, host: &str, port: u16, admin_password: &str) -> Self {
        DbAdmin {
            region: region.into(),
            host: host.into(),
            port,
            password: admin_password.into(),
        }
    }

    /// `mysql://lifeboat_admin:...@host:port/shop`: the URL the drill's ledger check uses.
    pub fn url(&self) -> String {
        format!(
            "mysql://{ADMIN_USER}:{}@{}:{}/{DATABASE_NAME}",
            self.password, self.host, self.port
        )
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> LocalError {
        LocalError::Database(format!(
            "MariaDB of {} ({}:{}): {what}: {e}",
            self.region, self.host, self.port
        ))
    }

    pub async fn connect(&self) -> Result<MySqlConnection> {
        let options = MySqlConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(ADMIN_USER)
            .password(&self.password);
        match tokio::time::timeout(CONNECT_TIMEOUT, MySqlConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.err("connecting", e)),
            Err(_) => Err(self.err(
                "connecting",
                format!("no answer within {CONNECT_TIMEOUT:?}"),
            )),
        }
    }

    /// Runs statements (no result rows), each bounded by `timeout`.
    pub async fn execute(&self, sql: &str, timeout: Duration) -> Result<()> {
        let mut conn = self.connect().await?;
        let result = tokio::time::timeout(
            timeout,
            sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut conn),
        )
        .await;
        let _ = conn.close().await;
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.err(&first_words(sql), e)),
            Err(_) => Err(self.err(
                &first_words(sql),
                format!("did not finish within {timeout:?}"),
            )),
        }
    }

    pub async fn status(&self) -> Result<DbStatus> {
        let mut conn = self.connect().await?;
        let result = tokio::time::timeout(Duration::from_secs(3), self.status_on(&mut conn)).await;
        let _ = conn.close().await;
        result.map_err(|_| self.err("reading status", "no answer within 3 s"))?
    }

    async fn status_on(&self, conn: &mut MySqlConnection) -> Result<DbStatus> {
        let row = sqlx::raw_sql(
            "SELECT CAST(@@global.read_only AS CHAR) AS ro, @@global.gtid_binlog_pos AS binlog_pos, \
             @@global.gtid_slave_pos AS slave_pos",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| self.err("reading variables", e))?;
        let read_only =
            cell(&row, "ro").is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("off"));
        let gtid_binlog_pos = cell(&row, "binlog_pos").unwrap_or_default();
        let gtid_slave_pos = cell(&row, "slave_pos").unwrap_or_default();
        let replica = sqlx::raw_sql("SHOW SLAVE STATUS")
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| self.err("SHOW SLAVE STATUS", e))?
            .map(|r| ReplicaStatus {
                master_host: cell(&r, "Master_Host").unwrap_or_default(),
                io_running: cell(&r, "Slave_IO_Running").unwrap_or_default(),
                sql_running: cell(&r, "Slave_SQL_Running").unwrap_or_default(),
                seconds_behind_master: cell(&r, "Seconds_Behind_Master")
                    .and_then(|v| v.parse().ok()),
                gtid_io_pos: cell(&r, "Gtid_IO_Pos").unwrap_or_default(),
                last_io_error: cell(&r, "Last_IO_Error").unwrap_or_default(),
                last_sql_error: cell(&r, "Last_SQL_Error").unwrap_or_default(),
            });
        let semi_sync_active =
            sqlx::raw_sql("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")
                .fetch_optional(&mut *conn)
                .await
                .ok()
                .flatten()
                .and_then(|r| cell(&r, "Value"))
                .map(|v| v.eq_ignore_ascii_case("on"));
        let fence_epoch = sqlx::raw_sql(
            "SELECT CAST(epoch AS CHAR) AS epoch FROM shop.lifeboat_fence WHERE id = 1",
        )
        .fetch_optional(&mut *conn)
        .await
        .ok()
        .flatten()
        .and_then(|r| cell(&r, "epoch"))
        .and_then(|v| v.parse().ok());
        Ok(DbStatus {
            read_only,
            gtid_binlog_pos,
            gtid_slave_pos,
            replica,
            semi_sync_active,
            fence_epoch,
        })
    }

    /// `@@gtid_binlog_state`: the last GTID this server logged per domain and server (what divergence is
    /// judged on; `gtid_binlog_pos` keeps only the last per domain and hides a fork).
    pub async fn binlog_state(&self) -> Result<Vec<crate::rebuild::Gtid>> {
        let mut conn = self.connect().await?;
        let row = tokio::time::timeout(
            Duration::from_secs(3),
            sqlx::raw_sql("SELECT @@global.gtid_binlog_state AS state").fetch_one(&mut conn),
        )
        .await;
        let _ = conn.close().await;
        let row = row
            .map_err(|_| self.err("reading gtid_binlog_state", "no answer within 3 s"))?
            .map_err(|e| self.err("reading gtid_binlog_state", e))?;
        crate::rebuild::parse_gtid_list(&cell(&row, "state").unwrap_or_default())
    }

    pub async fn set_read_only(&self, on: bool) -> Result<()> {
        self.execute(
            &format!("SET GLOBAL read_only = {}", if on { "ON" } else { "OFF" }),
            Duration::from_secs(5),
        )
        .await
    }

    /// Raises the fencing row to `epoch` (never lowers it). Only on the writer: a write on a replica would
    /// give it a transaction of its own and break GTID replication.
    pub async fn raise_fence_row(&self, epoch: u64) -> Result<()> {
        self.execute(
            &format!("UPDATE {DATABASE_NAME}.lifeboat_fence SET epoch = {epoch} WHERE id = 1 AND epoch < {epoch}"),
            Duration::from_secs(5),
        )
        .await
    }

    /// Makes this server a read-only replica of `master` (idempotent: a replica of that master that is
    /// running is left alone). Replication starts after everything this server already holds.
    pub async fn replicate_from(&self, master: &DbAdmin, credentials: &Credentials) -> Result<()> {
        let status = self.status().await?;
        if let Some(replica) = &status.replica
            && replica.master_host == master.host
            && replica.running()
        {
            return Ok(());
        }
        // Everything this server holds (its own writes as a former primary, or what it replicated) is in its
        // binary log (log-slave-updates): continue after exactly that.
        let sql = format!(
            "SET GLOBAL read_only = ON;
             STOP SLAVE;
             SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos;
             CHANGE MASTER TO MASTER_HOST = '{host}', MASTER_PORT = {port}, MASTER_USER = '{REPLICATION_USER}',
               MASTER_PASSWORD = '{password}', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1,
               MASTER_HEARTBEAT_PERIOD = 0.5;
             START SLAVE;",
            host = master.host,
            port = master.port,
            password = credentials.replication_password,
        );
        self.execute(&sql, Duration::from_secs(10)).await
    }

    /// Waits until this replica has applied `gtid_pos` (`MASTER_GTID_WAIT`), at most `timeout`.
    /// Returns whether it got there.
    pub async fn wait_for_gtid(&self, gtid_pos: &str, timeout: Duration) -> Result<bool> {
        if gtid_pos.is_empty() {
            return Ok(true);
        }
        let mut conn = self.connect().await?;
        let secs = timeout.as_secs_f64();
        let sql = format!("SELECT CAST(MASTER_GTID_WAIT('{gtid_pos}', {secs:.3}) AS CHAR) AS r");
        let result = tokio::time::timeout(
            timeout + Duration::from_secs(2),
            sqlx::raw_sql(AssertSqlSafe(sql)).fetch_one(&mut conn),
        )
        .await;
        let _ = conn.close().await;
        match result {
            Ok(Ok(row)) => Ok(cell(&row, "r").as_deref() == Some("0")),
            Ok(Err(e)) => Err(self.err("MASTER_GTID_WAIT", e)),
            Err(_) => Ok(false),
        }
    }

    /// Makes this server the writer: waits until it has applied what it received (`wait_for`: the old
    /// primary's position when that is known; otherwise everything already in its relay log), stops and
    /// forgets replication, turns read_only off. Success when it already is a writer without replication.
    pub async fn promote(
        &self,
        wait_for: Option<&str>,
        timeout: Duration,
    ) -> Result<PromoteOutcome> {
        let status = self.status().await?;
        if status.replica.is_none() && !status.read_only {
            return Ok(PromoteOutcome {
                already: true,
                waited_for: None,
            });
        }
        let target = match (wait_for, &status.replica) {
            (Some(pos), _) => Some(pos.to_owned()),
            (None, Some(_)) => {
                // The old primary is gone: stop receiving, then apply everything already received.
                self.execute("STOP SLAVE IO_THREAD", Duration::from_secs(5))
                    .await?;
                self.status().await?.replica.map(|r| r.gtid_io_pos)
            }
            (None, None) => None,
        };
        if let Some(pos) = &target
            && !self.wait_for_gtid(pos, timeout).await?
        {
            return Err(LocalError::Database(format!(
                "MariaDB of {} did not reach GTID position {pos} within {timeout:?}",
                self.region
            )));
        }
        self.execute(
            "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF;",
            Duration::from_secs(10),
        )
        .await?;
        Ok(PromoteOutcome {
            already: false,
            waited_for: target,
        })
    }

    /// Creates the storefront's database (on the writer; it replicates).
    pub async fn create_database(&self) -> Result<()> {
        self.execute(
            &format!("CREATE DATABASE IF NOT EXISTS `{DATABASE_NAME}`"),
            Duration::from_secs(10),
        )
        .await
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoteOutcome {
    pub already: bool,
    pub waited_for: Option<String>,
}

fn first_words(sql: &str) -> String {
    // Enough to say which statement failed, never the part with a password.
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Whether GTID position `have` contains everything in `want` (per replication domain, sequence numbers
/// compared; positions are lists of `domain-server-seq`).
pub fn gtid_covers(have: &str, want: &str) -> bool {
    let parse = |s: &str| -> Vec<(u32, u64)> {
        s.split(',')
            .filter_map(|g| {
                let mut parts = g.trim().split('-');
                let domain = parts.next()?.parse().ok()?;
                let _server: u32 = parts.next()?.parse().ok()?;
                let seq = parts.next()?.parse().ok()?;
                Some((domain, seq))
            })
            .collect()
    };
    let have = parse(have);
    parse(want)
        .into_iter()
        .all(|(domain, seq)| have.iter().any(|(d, s)| *d == domain && *s >= seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_coverage_compares_per_domain() {
        assert!(gtid_covers("0-1-10", "0-1-10"));
        assert!(gtid_covers("0-2-11", "0-1-10"));
        assert!(!gtid_covers("0-1-9", "0-1-10"));
        assert!(!gtid_covers("", "0-1-1"));
        assert!(gtid_covers("0-1-5", ""));
        assert!(!gtid_covers("0-1-50", "0-1-5,1-1-3"));
    }
}
