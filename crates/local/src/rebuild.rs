//! Returning an old primary whose history diverged: find the transactions it holds that the current primary
//! never saw, set them aside in a file an operator can read and replay, and rebuild the server from a
//! consistent copy of the current primary.
//!
//! Why a server diverges: with semi-sync AFTER_SYNC a primary writes a transaction to its binary log, then
//! waits for the replica's acknowledgement before it commits in the engine and answers the client. A crash in
//! that window leaves the transaction in its binary log (crash recovery commits it) although no client was
//! told it succeeded and the replica never received it. After a failover the new primary writes its own
//! transactions under the same GTID domain, so the two histories fork. With async replication the window is
//! wider: acknowledged writes can be among them, which is why they are kept, not dropped.
//!
//! The copy is logical (`mariadb-dump --single-transaction`): it reads a consistent snapshot with the GTID
//! position of that snapshot (`BINLOG_GTID_POS` of the snapshot's binlog coordinates) and takes no global
//! lock, so the current primary keeps taking writes while the copy runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{LocalError, Result};
use crate::mariadb::{ADMIN_USER, Credentials, DATABASE_NAME, DbAdmin, REPLICATION_USER};

/// One `domain-server-seq` entry of a GTID position or binlog state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl std::fmt::Display for Gtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// Parses a comma-separated GTID list (`@@gtid_binlog_state`, `@@gtid_binlog_pos`); malformed entries are an
/// error naming them, since a misread state would mean a wrong verdict on divergence.
pub fn parse_gtid_list(list: &str) -> Result<Vec<Gtid>> {
    list.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| {
            let mut parts = g.split('-');
            let parsed = (|| {
                let gtid = Gtid {
                    domain: parts.next()?.parse().ok()?,
                    server: parts.next()?.parse().ok()?,
                    seq: parts.next()?.parse().ok()?,
                };
                parts.next().is_none().then_some(gtid)
            })();
            parsed.ok_or_else(|| {
                LocalError::Database(format!("{g:?} is not a GTID (domain-server-seq)"))
            })
        })
        .collect()
}

/// Where a returning server's history leaves the current primary's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Per (domain, server) the returning server wrote further than the primary has: the primary's last GTID
    /// of that server (`None`: it has none) and the returning server's.
    pub ahead: Vec<(Option<Gtid>, Gtid)>,
}

impl Divergence {
    /// The `--start-position` for `mariadb-binlog`: per domain, the last GTID both servers share. Empty when
    /// the primary holds nothing of a diverged server: then the whole binary log is read.
    pub fn start_position(&self) -> String {
        let mut per_domain: BTreeMap<u32, Gtid> = BTreeMap::new();
        for (common, _) in &self.ahead {
            if let Some(g) = common {
                per_domain
                    .entry(g.domain)
                    .and_modify(|have| {
                        if g.seq < have.seq {
                            *have = *g;
                        }
                    })
                    .or_insert(*g);
            }
        }
        per_domain
            .values()
            .map(Gtid::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Compares binlog states (`@@gtid_binlog_state`: the last GTID per domain and server). The returning server
/// diverged when, for some (domain, server), it logged a higher sequence number than the primary holds: those
/// transactions exist only on the returning server. `None` when its history is a prefix of the primary's, so
/// pointing it at the primary is enough.
pub fn divergence(returning_state: &[Gtid], primary_state: &[Gtid]) -> Option<Divergence> {
    let ahead: Vec<(Option<Gtid>, Gtid)> = returning_state
        .iter()
        .filter_map(|mine| {
            let theirs = primary_state
                .iter()
                .find(|p| p.domain == mine.domain && p.server == mine.server)
                .copied();
            match theirs {
                Some(t) if t.seq >= mine.seq => None,
                other => Some((other, *mine)),
            }
        })
        .collect();
    (!ahead.is_empty()).then_some(Divergence { ahead })
}

/// What was set aside, as written next to the SQL file (`<file>.json`) and summarised in the step's output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    pub region: String,
    /// The SQL file (`mariadb-binlog` output): replayable with `mariadb < file` after review.
    pub sql_file: String,
    /// Readable rows (`--verbose` decoding) of the same events.
    pub rows_file: String,
    /// Where reading started (`--start-position`), empty for the whole log.
    pub start_position: String,
    pub transactions: usize,
    pub first_gtid: Option<String>,
    pub last_gtid: Option<String>,
    /// Timestamps of the first and last transaction as the binary log prints them (server local time).
    pub first_at: Option<String>,
    pub last_at: Option<String>,
    /// `db.table` → operation (`insert`, `update`, `delete`) → rows.
    pub rows: BTreeMap<String, BTreeMap<String, u64>>,
}

impl SetAside {
    pub fn total_rows(&self) -> u64 {
        self.rows.values().flat_map(|ops| ops.values()).sum()
    }

    /// One line for the step's detail and the run report.
    pub fn describe(&self) -> String {
        if self.transactions == 0 {
            return format!(
                "no transaction of {} was missing on the primary (nothing set aside; file {})",
                self.region, self.sql_file
            );
        }
        let tables = self
            .rows
            .iter()
            .map(|(table, ops)| {
                let ops = ops
                    .iter()
                    .map(|(op, n)| format!("{n} {op}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{table}: {ops}")
            })
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "{} transaction(s) of {} the primary never had ({}..{}, {}..{}; {} rows: {tables}) set aside in {}",
            self.transactions,
            self.region,
            self.first_gtid.as_deref().unwrap_or("?"),
            self.last_gtid.as_deref().unwrap_or("?"),
            self.first_at.as_deref().unwrap_or("?"),
            self.last_at.as_deref().unwrap_or("?"),
            self.total_rows(),
            self.sql_file
        )
    }
}

/// Summarises `mariadb-binlog --base64-output=decode-rows --verbose` output: one GTID header per
/// transaction (`#YYMMDD HH:MM:SS server id N ... GTID d-s-q ...`), one `### INSERT INTO`/`### UPDATE`/
/// `### DELETE FROM` line per row.
pub fn summarise_rows(region: &str, verbose: &str) -> SetAside {
    let mut s = SetAside {
        region: region.to_owned(),
        ..Default::default()
    };
    for line in verbose.lines() {
        if line.starts_with('#')
            && let Some(at) = line.find("\tGTID ").or_else(|| line.find(" GTID "))
        {
            let gtid = line[at + 6..].split_whitespace().next().unwrap_or_default();
            if parse_gtid_list(gtid).is_ok_and(|g| g.len() == 1) {
                s.transactions += 1;
                let when = line[1..]
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                if s.first_gtid.is_none() {
                    s.first_gtid = Some(gtid.to_owned());
                    s.first_at = Some(when.clone());
                }
                s.last_gtid = Some(gtid.to_owned());
                s.last_at = Some(when);
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("### ") else {
            continue;
        };
        let (op, table) = if let Some(t) = rest.strip_prefix("INSERT INTO ") {
            ("insert", t)
        } else if let Some(t) = rest.strip_prefix("UPDATE ") {
            ("update", t)
        } else if let Some(t) = rest.strip_prefix("DELETE FROM ") {
            ("delete", t)
        } else {
            continue;
        };
        let table = table.trim().replace('`', "");
        *s.rows
            .entry(table)
            .or_default()
            .entry(op.to_owned())
            .or_default() += 1;
    }
    s
}

/// The binary log files of a data directory in order (from `binlog.index`).
fn binlog_files(data_dir: &Path) -> Result<Vec<PathBuf>> {
    let index = data_dir.join("binlog.index");
    let text = std::fs::read_to_string(&index)
        .map_err(|e| LocalError::io("reading the binary log index", &index, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| data_dir.join(l.trim_start_matches("./")))
        .collect())
}

async fn run_binlog_tool(
    files: &[PathBuf],
    start_position: &str,
    verbose: bool,
) -> Result<Vec<u8>> {
    let mut command = tokio::process::Command::new("mariadb-binlog");
    if !start_position.is_empty() {
        command.arg(format!("--start-position={start_position}"));
    }
    if verbose {
        command.args(["--base64-output=decode-rows", "--verbose"]);
    }
    command.args(files).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .map_err(|_| LocalError::Command("mariadb-binlog did not finish within 120 s".into()))?
        .map_err(|e| LocalError::Command(format!("running mariadb-binlog: {e}")))?;
    if !output.status.success() {
        return Err(LocalError::Command(format!(
            "mariadb-binlog --start-position={start_position} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

/// Writes the returning server's transactions after the shared history (`divergence`) into `dir`
/// (`set-aside-<region>.sql`, `.rows.txt`, `.json`), from the binary log files in its data directory. Files
/// already there (a retried step, after the server's log was reset) are kept and read back.
pub async fn set_aside(
    region: &str,
    data_dir: &Path,
    divergence: &Divergence,
    dir: &Path,
) -> Result<SetAside> {
    crate::layout::ensure_dir(dir)?;
    let sql_file = dir.join(format!("set-aside-{region}.sql"));
    let rows_file = dir.join(format!("set-aside-{region}.rows.txt"));
    let summary_file = dir.join(format!("set-aside-{region}.json"));
    if let Ok(bytes) = std::fs::read(&summary_file)
        && let Ok(summary) = serde_json::from_slice::<SetAside>(&bytes)
    {
        return Ok(summary);
    }
    let files = binlog_files(data_dir)?;
    let start = divergence.start_position();
    let sql = run_binlog_tool(&files, &start, false).await?;
    let rows = run_binlog_tool(&files, &start, true).await?;
    crate::layout::write_atomic(&sql_file, &sql)?;
    crate::layout::write_atomic(&rows_file, &rows)?;
    let mut summary = summarise_rows(region, &String::from_utf8_lossy(&rows));
    summary.sql_file = sql_file.display().to_string();
    summary.rows_file = rows_file.display().to_string();
    summary.start_position = start;
    let json = serde_json::to_vec_pretty(&summary)
        .map_err(|e| LocalError::Failed(format!("encoding the set-aside summary: {e}")))?;
    // Last: its presence says the SQL file is complete.
    crate::layout::write_atomic(&summary_file, &json)?;
    Ok(summary)
}

/// The GTID position a dump was taken at (`-- SET GLOBAL gtid_slave_pos='…';`, written by `--gtid
/// --master-data=2`).
pub fn dump_gtid_position(dump: &str) -> Option<String> {
    dump.lines().find_map(|l| {
        let rest = l.strip_prefix("-- SET GLOBAL gtid_slave_pos='")?;
        Some(rest.split('\'').next()?.to_owned())
    })
}

/// Rebuilds `replica` from a consistent copy of `primary`'s shop database and makes it replicate from the
/// copy's position. `work_dir` holds the dump while it is applied. The caller has set aside what only the
/// replica held: this resets the replica's binary log.
pub async fn rebuild_from(
    replica: &DbAdmin,
    primary: &DbAdmin,
    credentials: &Credentials,
    work_dir: &Path,
) -> Result<String> {
    crate::layout::ensure_dir(work_dir)?;
    let dump_file = work_dir.join("rebuild-dump.sql");
    let mut dump = tokio::process::Command::new("mariadb-dump");
    dump.args([
        "--host",
        &primary.host,
        "--port",
        &primary.port.to_string(),
        "--user",
        ADMIN_USER,
        "--single-transaction",
        "--gtid",
        "--master-data=2",
        "--add-drop-database",
        "--routines",
        "--triggers",
        "--databases",
        DATABASE_NAME,
    ])
    // The password through the environment, never on a command line other users can read.
    .env("MYSQL_PWD", &credentials.admin_password)
    .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), dump.output())
        .await
        .map_err(|_| LocalError::Command("mariadb-dump did not finish within 300 s".into()))?
        .map_err(|e| LocalError::Command(format!("running mariadb-dump: {e}")))?;
    if !output.status.success() {
        return Err(LocalError::Command(format!(
            "copying {DATABASE_NAME} from {} with mariadb-dump failed ({}): {}",
            primary.region,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let position = dump_gtid_position(&text).ok_or_else(|| {
        LocalError::Failed(format!(
            "the copy of {} names no GTID position (no `SET GLOBAL gtid_slave_pos` line)",
            primary.region
        ))
    })?;
    crate::layout::write_atomic(&dump_file, &output.stdout)?;

    // Forget the old role and history: replication off, binary log and its GTID state emptied.
    replica
        .execute(
            "SET GLOBAL read_only = ON; STOP SLAVE; RESET SLAVE ALL; RESET MASTER;",
            Duration::from_secs(30),
        )
        .await?;
    // The copy is applied outside the binary log: it is the primary's history, not new transactions.
    let input = std::fs::File::open(&dump_file)
        .map_err(|e| LocalError::io("opening the copy", &dump_file, e))?;
    let mut apply = tokio::process::Command::new("mariadb");
    apply
        .args([
            "--host",
            &replica.host,
            "--port",
            &replica.port.to_string(),
            "--user",
            ADMIN_USER,
            "--init-command=SET SESSION sql_log_bin = 0",
            "--batch",
        ])
        .env("MYSQL_PWD", &credentials.admin_password)
        .stdin(input)
        .kill_on_drop(true);
    let applied = tokio::time::timeout(Duration::from_secs(300), apply.output())
        .await
        .map_err(|_| LocalError::Command("applying the copy did not finish within 300 s".into()))?
        .map_err(|e| LocalError::Command(format!("running mariadb: {e}")))?;
    if !applied.status.success() {
        return Err(LocalError::Command(format!(
            "applying the copy of {} to {} failed ({}): {}",
            primary.region,
            replica.region,
            applied.status,
            String::from_utf8_lossy(&applied.stderr).trim()
        )));
    }
    let sql = format!(
        "SET GLOBAL gtid_slave_pos = '{position}';
         CHANGE MASTER TO MASTER_HOST = '{host}', MASTER_PORT = {port}, MASTER_USER = '{REPLICATION_USER}',
           MASTER_PASSWORD = '{password}', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1,
           MASTER_HEARTBEAT_PERIOD = 0.5;
         START SLAVE;",
        host = primary.host,
        port = primary.port,
        password = credentials.replication_password,
    );
    replica.execute(&sql, Duration::from_secs(10)).await?;
    let _ = std::fs::remove_file(&dump_file);
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gtids(s: &str) -> Vec<Gtid> {
        parse_gtid_list(s).unwrap()
    }

    #[test]
    fn gtid_lists_parse_and_bad_entries_are_named() {
        assert_eq!(
            gtids("0-1-98, 0-2-150"),
            [
                Gtid {
                    domain: 0,
                    server: 1,
                    seq: 98
                },
                Gtid {
                    domain: 0,
                    server: 2,
                    seq: 150
                }
            ]
        );
        assert!(gtids("").is_empty());
        let err = parse_gtid_list("0-1-5,0-x-3").unwrap_err().to_string();
        assert!(err.contains("0-x-3"), "{err}");
        assert!(parse_gtid_list("0-1-2-3").is_err());
    }

    #[test]
    fn a_prefix_of_the_primary_history_has_not_diverged() {
        // The old primary stopped at 0-1-98; the new one replicated all of it and went on as server 2.
        assert_eq!(divergence(&gtids("0-1-98"), &gtids("0-1-98,0-2-150")), None);
        // A replica that is simply behind.
        assert_eq!(divergence(&gtids("0-1-90"), &gtids("0-1-98")), None);
        assert_eq!(divergence(&[], &gtids("0-1-98")), None);
    }

    #[test]
    fn writes_the_primary_never_received_are_a_divergence_starting_after_the_shared_history() {
        // Crash with 0-1-99 and 0-1-100 in the old primary's log; the new primary had 0-1-98.
        let d = divergence(&gtids("0-1-100"), &gtids("0-1-98,0-2-150")).unwrap();
        assert_eq!(
            d.ahead,
            [(
                Some(Gtid {
                    domain: 0,
                    server: 1,
                    seq: 98
                }),
                Gtid {
                    domain: 0,
                    server: 1,
                    seq: 100
                }
            )]
        );
        assert_eq!(d.start_position(), "0-1-98");
        // A server the primary never heard of: read its whole log.
        let d = divergence(&gtids("0-3-4"), &gtids("0-1-98")).unwrap();
        assert_eq!(d.start_position(), "");
    }

    #[test]
    fn the_summary_counts_transactions_rows_per_table_and_the_time_range() {
        let verbose = "\
#261203  9:30:48 server id 1  end_log_pos 285 CRC32 0xbdfefc72 \tGtid list []
#261203  9:30:51 server id 1  end_log_pos 1094 CRC32 0x31e5252a \tGTID 0-1-99 trans
#261203  9:30:51 server id 1  end_log_pos 1196 CRC32 0xdf5a73f1 \tTable_map: `shop`.`orders` mapped to number 18
### INSERT INTO `shop`.`orders`
### SET
###   @1=5
### INSERT INTO `shop`.`order_lines`
### INSERT INTO `shop`.`order_lines`
#261203  9:30:52 server id 1  end_log_pos 1309 CRC32 0xe94a5fd7 \tGTID 0-1-100 trans
### UPDATE `shop`.`products`
### DELETE FROM `shop`.`cart_items`
";
        let s = summarise_rows("us-east-1", verbose);
        assert_eq!(s.transactions, 2);
        assert_eq!(s.first_gtid.as_deref(), Some("0-1-99"));
        assert_eq!(s.last_gtid.as_deref(), Some("0-1-100"));
        assert_eq!(s.first_at.as_deref(), Some("261203 9:30:51"));
        assert_eq!(s.last_at.as_deref(), Some("261203 9:30:52"));
        assert_eq!(s.rows["shop.orders"]["insert"], 1);
        assert_eq!(s.rows["shop.order_lines"]["insert"], 2);
        assert_eq!(s.rows["shop.products"]["update"], 1);
        assert_eq!(s.rows["shop.cart_items"]["delete"], 1);
        assert_eq!(s.total_rows(), 5);
        assert!(
            s.describe().contains("2 transaction(s) of us-east-1"),
            "{}",
            s.describe()
        );
    }

    #[test]
    fn the_dump_position_is_read_from_the_commented_master_data_line() {
        let dump = "-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n-- SET GLOBAL gtid_slave_pos='0-2-150';\n";
        assert_eq!(dump_gtid_position(dump).as_deref(), Some("0-2-150"));
        assert_eq!(dump_gtid_position("CREATE TABLE t (id int);"), None);
    }
}
