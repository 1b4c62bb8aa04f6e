//! The local runtime end to end: up, replication, a switchover and a failback through the runbooks, an
//! automated failover after `kill -9` of the primary database, and `down` leaving nothing behind.
//!
//! Needs root (network namespaces), MariaDB and HAProxy from Debian's packages, and the `lifeboat` and
//! `storefront` binaries built into the same target directory as this test (`scripts/test` builds the
//! workspace first; by hand: `cargo build -p lifeboat-cli -p storefront`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeboat_local::events::{self, EventLog};
use lifeboat_local::{LocalDr, LocalSettings, ReplicationMode, Runtime, netns, process};
use lifeboat_runbook::{RunKind, RunOutcome, RunRequest};
use sqlx::Connection as _;

/// `target/debug` (or the profile directory) this test binary was built into.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in <target>/<profile>/deps")
        .to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: these tests run the real binaries; build them first with \
         `cargo build -p lifeboat-cli -p storefront` (scripts/test does)",
        path.display()
    );
    path
}

fn settings(dir: &Path, base_port: u16) -> LocalSettings {
    assert!(
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
        "these tests need root: the runtime creates network namespaces"
    );
    let mut s = LocalSettings::new(dir.join("state"), base_port);
    s.storefront_bin = Some(binary("storefront"));
    s.lifeboat_bin = Some(binary("lifeboat"));
    s.probe_interval_ms = 500;
    s.failure_threshold = 3;
    s
}

/// Takes the runtime down when the test ends, however it ends.
struct DownOnDrop(PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let dir = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(Runtime::down(&dir));
        })
        .join();
    }
}

async fn query_one(url: &str, sql: &str) -> Option<String> {
    let mut conn = sqlx::mysql::MySqlConnection::connect(url).await.ok()?;
    let row: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_optional(&mut conn)
        .await
        .ok()?;
    row.map(|r| r.0)
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A checkout through the front door; returns the region that served it.
async fn checkout(front_door: &str) -> Result<String, String> {
    let client = storefront::client::Client::new(front_door).map_err(|e| e.to_string())?;
    let products = client.products().await.map_err(|e| e.to_string())?;
    let cart = client.create_cart().await.map_err(|e| e.to_string())?;
    client
        .add_item(&cart.value.id, products[0].id, 2)
        .await
        .map_err(|e| e.to_string())?;
    let key = uuid::Uuid::new_v4().to_string();
    let done = client
        .checkout(&cart.value.id, &key)
        .await
        .map_err(|e| e.to_string())?;
    done.region
        .ok_or_else(|| "no X-Lifeboat-Region header".to_owned())
}

async fn run(dr: &LocalDr, kind: RunKind, from: &str, to: &str) -> lifeboat_runbook::Report {
    let request = RunRequest {
        kind,
        from: from.to_owned(),
        to: to.to_owned(),
        settings: dr.settings.clone(),
        allow_data_loss: kind == RunKind::Failover,
    };
    let result = dr.engine().start(&request).await.expect("the run starts");
    assert_eq!(
        result.outcome(),
        RunOutcome::Succeeded,
        "{kind} failed:\n{}",
        result.report.render_text()
    );
    result.report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_replicates_switches_over_fails_back_and_down_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), 24_100);
    let _down = DownOnDrop(settings.state_dir.clone());
    let (rt, outcome) = Runtime::up(&settings).await.expect("local up");
    assert!(!outcome.already_up);
    let (p, s) = (
        rt.primary_region().to_owned(),
        rt.standby_region().to_owned(),
    );

    // A second `up` finds everything running.
    let (_, again) = Runtime::up(&settings).await.expect("second local up");
    assert!(again.already_up, "{again:?}");

    let status = rt.status().await;
    let primary = status.region(&p).unwrap();
    let standby = status.region(&s).unwrap();
    assert!(
        primary.accepting_writes && !standby.accepting_writes,
        "{}",
        status.render_text()
    );
    let pdb = primary.database.as_ref().unwrap();
    assert!(
        !pdb.read_only && pdb.replica.is_none(),
        "{}",
        status.render_text()
    );
    assert!(standby.replicating(), "{}", status.render_text());
    assert!(standby.database.as_ref().unwrap().read_only);

    // A row written on the primary reaches the standby.
    let (purl, surl) = (rt.admin_db_url(&p).unwrap(), rt.admin_db_url(&s).unwrap());
    rt.db(&p)
        .unwrap()
        .execute(
            "CREATE TABLE shop.probe (id INT PRIMARY KEY, note VARCHAR(20)); INSERT INTO shop.probe VALUES (1, 'east')",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    wait_for(
        "the row on the standby",
        Duration::from_secs(10),
        || async {
            query_one(&surl, "SELECT note FROM probe WHERE id = 1")
                .await
                .as_deref()
                == Some("east")
        },
    )
    .await;
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), p);

    // Switchover through the runbooks.
    let dr = LocalDr::open(&settings.state_dir).unwrap();
    let report = run(&dr, RunKind::Switchover, &p, &s).await;
    assert_eq!(report.epoch, Some(1));
    let control = rt.control().state().await.unwrap();
    assert_eq!(
        (
            control.active_region.as_str(),
            control.epoch,
            control.fence_raised
        ),
        (s.as_str(), 1, false)
    );
    let servers = rt.front_door_api().servers().await.unwrap();
    let state_of = |r: &str| {
        servers
            .iter()
            .find(|x| x.region == r)
            .unwrap()
            .status
            .clone()
    };
    assert!(
        state_of(&s).starts_with("UP") && state_of(&p).starts_with("MAINT"),
        "{servers:?}"
    );
    let status = rt.status().await;
    let old = status.region(&p).unwrap();
    assert!(
        old.database.as_ref().unwrap().read_only && old.replicating(),
        "{}",
        status.render_text()
    );
    assert!(
        !status
            .region(&s)
            .unwrap()
            .database
            .as_ref()
            .unwrap()
            .read_only
    );
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), s);
    assert_eq!(
        query_one(
            &surl,
            "SELECT CAST(epoch AS CHAR) FROM lifeboat_fence WHERE id = 1"
        )
        .await
        .as_deref(),
        Some("1")
    );
    // Now the other way round: west's writes reach east.
    rt.db(&s)
        .unwrap()
        .execute(
            "INSERT INTO shop.probe VALUES (2, 'west')",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    wait_for("the west row on east", Duration::from_secs(10), || async {
        query_one(&purl, "SELECT note FROM probe WHERE id = 2")
            .await
            .as_deref()
            == Some("west")
    })
    .await;
    // The old primary refuses writes: its storefront is passive and its database read-only.
    let direct = storefront::client::Client::new(&rt.storefront_url(&p).unwrap()).unwrap();
    assert!(direct.create_cart().await.unwrap_err().is_write_refusal());

    // Every step left a start and an end in the event log.
    let events = EventLog::new(&rt.layout().events_log()).read_all().unwrap();
    for step in [
        "raise-fence",
        "wait-drained",
        "promote",
        "shift-traffic",
        "lower-fence",
        "verify",
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.kind == events::KIND_STEP_FINISHED && e.step.as_deref() == Some(step)),
            "no finished event for {step}"
        );
    }

    // Failback restores the original roles with replication healthy.
    let report = run(&dr, RunKind::Failback, &s, &p).await;
    assert_eq!(report.epoch, Some(2));
    let control = rt.control().state().await.unwrap();
    assert_eq!(
        (control.active_region.as_str(), control.epoch),
        (p.as_str(), 2)
    );
    let status = rt.status().await;
    assert!(
        status.region(&s).unwrap().replicating(),
        "{}",
        status.render_text()
    );
    assert!(
        !status
            .region(&p)
            .unwrap()
            .database
            .as_ref()
            .unwrap()
            .read_only
    );
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), p);

    // Down: no process, namespace or link left.
    let mut pids: Vec<u32> = Vec::new();
    for r in [&p, &s] {
        pids.extend(rt.database_pid(r));
        pids.extend(rt.storefront_pid(r));
    }
    pids.extend(rt.supervisor_pid());
    pids.extend(rt.haproxy_pid());
    assert_eq!(pids.len(), 6, "every process was running before down");
    let links: Vec<String> = rt
        .regions()
        .iter()
        .map(|r| r.link.host_veth.clone())
        .collect();
    let namespaces: Vec<String> = rt
        .regions()
        .iter()
        .map(|r| r.link.namespace.clone())
        .collect();
    let report = Runtime::down(&settings.state_dir).await.unwrap();
    assert!(report.was_up);
    for pid in pids {
        assert!(!process::is_alive(pid), "process {pid} survived down");
    }
    for ns in &namespaces {
        assert!(!netns::namespace_exists(ns), "namespace {ns} survived down");
    }
    for link in links.iter().chain(std::iter::once(&rt.info().bridge)) {
        assert!(!netns::link_exists(link), "link {link} survived down");
    }
    assert!(matches!(
        Runtime::open_up(&settings.state_dir),
        Err(lifeboat_local::LocalError::NotUp(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_primary_database_is_detected_and_failed_over_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), 24_200);
    settings.automatic_failover = true;
    let _down = DownOnDrop(settings.state_dir.clone());
    let (rt, _) = Runtime::up(&settings).await.expect("local up");
    let (p, s) = (
        rt.primary_region().to_owned(),
        rt.standby_region().to_owned(),
    );
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), p);

    let killed_at = events::now_ms();
    rt.kill_database(&p).unwrap();
    let log = rt.events();
    wait_for(
        "the automation to finish",
        Duration::from_secs(40),
        || async {
            log.read_since(killed_at)
                .unwrap()
                .iter()
                .any(|e| e.kind == events::KIND_AUTOMATION_FINISHED)
        },
    )
    .await;
    let events = log.read_since(killed_at).unwrap();
    let detected = events
        .iter()
        .find(|e| e.kind == events::KIND_REGION_DOWN)
        .expect("a detection event");
    assert_eq!(detected.region.as_deref(), Some(p.as_str()));
    // Three failed probes 500 ms apart: detected within about 1.5 s of the kill (plus a probe's bound).
    assert!(
        detected.at_ms - killed_at <= 2_500,
        "detection took {} ms",
        detected.at_ms - killed_at
    );
    let finished = events
        .iter()
        .find(|e| e.kind == events::KIND_AUTOMATION_FINISHED)
        .unwrap();
    assert!(
        finished.detail.contains("failover") && finished.detail.contains("succeeded"),
        "{finished:?}"
    );
    assert_eq!(rt.control().state().await.unwrap().active_region, s);
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), s);

    // `up` brings the crashed (now passive) region back read-only; failback makes it a replica and
    // switches back.
    let (_, again) = Runtime::up(&settings)
        .await
        .expect("local up after the failover");
    assert!(again.restarted.iter().any(|r| r.contains(&p)), "{again:?}");
    let status = rt.status().await;
    assert!(
        status
            .region(&p)
            .unwrap()
            .database
            .as_ref()
            .unwrap()
            .read_only,
        "{}",
        status.render_text()
    );
    let dr = LocalDr::open(&settings.state_dir).unwrap();
    run(&dr, RunKind::Failback, &s, &p).await;
    let status = rt.status().await;
    assert!(
        status.region(&s).unwrap().replicating(),
        "{}",
        status.render_text()
    );
    assert_eq!(rt.control().state().await.unwrap().active_region, p);
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), p);
}

#[test]
fn a_runtime_that_is_not_up_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let err = Runtime::open_up(dir.path()).unwrap_err();
    assert_eq!(err.exit_code(), lifeboat_contract::exit::UNAVAILABLE);
    assert!(err.to_string().contains("lifeboat local up"), "{err}");
}

/// The old primary commits transactions its replica never receives (replication stopped, as after a crash
/// inside semi-sync's window or with async replication), then dies; after the failover the survivor takes
/// writes. Failback — without `up` first: its preflight lets the stopped database through — must keep the
/// old primary's own transactions in a file, rebuild it from the survivor, and lose none of the survivor's
/// orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_diverged_old_primary_is_set_aside_and_rebuilt_from_the_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), 24_300);
    let _down = DownOnDrop(settings.state_dir.clone());
    let (rt, _) = Runtime::up(&settings).await.expect("local up");
    let (p, s) = (
        rt.primary_region().to_owned(),
        rt.standby_region().to_owned(),
    );
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), p);
    let (primary_db, standby_db) = (rt.db(&p).unwrap(), rt.db(&s).unwrap());
    wait_for("the standby to replicate", Duration::from_secs(20), || async {
        let (a, b) = (primary_db.status().await, standby_db.status().await);
        matches!((a, b), (Ok(a), Ok(b)) if lifeboat_local::mariadb::gtid_covers(&b.gtid_slave_pos, &a.gtid_binlog_pos))
    })
    .await;

    // The fork: the standby stops receiving; the primary commits on its own (semi-sync off so it does not
    // wait for an acknowledgement that cannot come).
    standby_db
        .execute("STOP SLAVE", Duration::from_secs(10))
        .await
        .unwrap();
    primary_db
        .execute(
            "SET GLOBAL rpl_semi_sync_master_enabled = OFF;
             CREATE TABLE shop.divergence_probe (id INT PRIMARY KEY, note VARCHAR(40));
             INSERT INTO shop.divergence_probe VALUES (1, 'only-in-the-old-primary'), (2, 'also-only-there');",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    rt.kill_database(&p).unwrap();

    let dr = LocalDr::open(&settings.state_dir).unwrap();
    run(&dr, RunKind::Failover, &p, &s).await;
    for _ in 0..5 {
        assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), s);
    }
    let orders = "SELECT CAST(COUNT(*) AS CHAR) FROM shop.orders";
    let order_ids = "SELECT COALESCE(GROUP_CONCAT(id ORDER BY id), '') FROM shop.orders";
    let survivor_ids = query_one(&rt.admin_db_url(&s).unwrap(), order_ids)
        .await
        .unwrap();
    let survivor_count: usize = query_one(&rt.admin_db_url(&s).unwrap(), orders)
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(survivor_count >= 6, "{survivor_count} orders on {s}");

    // Reprotect on its own (`lifeboat reprotect`): the old primary becomes a replica; the survivor stays
    // active and keeps taking orders.
    let epoch_before = rt.control().state().await.unwrap().epoch;
    let report = run(&dr, RunKind::Reprotect, &s, &p).await;
    let reprotect = report
        .steps
        .iter()
        .find(|st| st.id == "reprotect")
        .expect("a reprotect step");
    let detail = serde_json::to_string(reprotect).unwrap();
    assert!(
        detail.contains("set aside") && detail.contains("rebuilt from a copy"),
        "{detail}"
    );
    let state = rt.control().state().await.unwrap();
    assert_eq!(state.active_region, s, "reprotect moves no role");
    assert_eq!(state.epoch, epoch_before, "and takes no epoch");
    assert!(rt.status().await.region(&p).unwrap().replicating());
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), s);

    // What only the old primary had is in the saved files, readable and replayable.
    let saved = rt
        .layout()
        .reports_dir()
        .join(report.run_id.as_str())
        .join(format!("set-aside-{p}.json"));
    let summary: lifeboat_local::rebuild::SetAside =
        serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert!(summary.transactions >= 2, "{summary:?}");
    assert_eq!(
        summary.rows["shop.divergence_probe"]["insert"], 2,
        "{summary:?}"
    );
    let sql = std::fs::read_to_string(&summary.sql_file).unwrap();
    assert!(
        sql.contains("divergence_probe"),
        "the SQL file lacks the table"
    );
    let rows = std::fs::read_to_string(&summary.rows_file).unwrap();
    assert!(
        rows.contains("only-in-the-old-primary"),
        "the rows file lacks the row"
    );

    // ... and not in the rebuilt server (a replica now), nor in the survivor; every order of the survivor is
    // there.
    let probe = "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.tables WHERE table_name = 'divergence_probe'";
    assert_eq!(
        query_one(&rt.admin_db_url(&p).unwrap(), probe)
            .await
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        query_one(&rt.admin_db_url(&s).unwrap(), probe)
            .await
            .as_deref(),
        Some("0")
    );
    let rebuilt_ids = query_one(&rt.admin_db_url(&p).unwrap(), order_ids)
        .await
        .unwrap();
    let rebuilt: std::collections::BTreeSet<&str> = rebuilt_ids.split(',').collect();
    let missing: Vec<&str> = survivor_ids
        .split(',')
        .filter(|id| !rebuilt.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "orders of {s} missing on the rebuilt {p}: {missing:?}"
    );

    // The failback after it finds nothing to rebuild and switches over.
    let failback = run(&dr, RunKind::Failback, &s, &p).await;
    let again = serde_json::to_string(
        failback
            .steps
            .iter()
            .find(|st| st.id == "reprotect")
            .expect("a reprotect step"),
    )
    .unwrap();
    assert!(
        !again.contains("set aside") && !again.contains("rebuilt"),
        "{again}"
    );
    assert_eq!(rt.control().state().await.unwrap().active_region, p);
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), p);
    // Both directions replicate again: the survivor follows the rebuilt primary.
    wait_for(
        "the survivor to replicate the new order",
        Duration::from_secs(20),
        || async {
            let (a, b) = (
                query_one(&rt.admin_db_url(&p).unwrap(), orders).await,
                query_one(&rt.admin_db_url(&s).unwrap(), orders).await,
            );
            a.is_some() && a == b
        },
    )
    .await;
    assert!(rt.status().await.region(&s).unwrap().replicating());
    assert!(!rt.layout().rebuild_dir(&p).join("unfinished").exists());
}

/// `down` + `up` starts the same databases again, in the roles they had; only `up_fresh` (`local up --fresh`)
/// starts from empty ones, and it refuses a runtime that is running.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_and_up_keep_the_data_and_roles_and_only_fresh_deletes_them() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), 24_400);
    let _down = DownOnDrop(settings.state_dir.clone());
    let (rt, _) = Runtime::up(&settings).await.expect("local up");
    let (p, s) = (
        rt.primary_region().to_owned(),
        rt.standby_region().to_owned(),
    );
    let dr = LocalDr::open(&settings.state_dir).unwrap();
    run(&dr, RunKind::Switchover, &p, &s).await;
    for _ in 0..3 {
        assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), s);
    }
    let orders = "SELECT CAST(COUNT(*) AS CHAR) FROM shop.orders";
    let before = query_one(&rt.admin_db_url(&s).unwrap(), orders)
        .await
        .unwrap();
    let epoch = rt.control().state().await.unwrap().epoch;
    assert!(
        Runtime::up_fresh(&settings).await.is_err(),
        "a fresh start must refuse a running runtime"
    );

    Runtime::down(&settings.state_dir)
        .await
        .expect("local down");
    let (rt, outcome) = Runtime::up(&settings).await.expect("local up again");
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("kept the databases")),
        "{outcome:?}"
    );
    let state = rt.control().state().await.unwrap();
    assert_eq!(
        (state.active_region.as_str(), state.epoch),
        (s.as_str(), epoch)
    );
    // Nothing older than this runtime is lost, and the kept pair replicates in its kept direction.
    let after = query_one(&rt.admin_db_url(&s).unwrap(), orders)
        .await
        .unwrap();
    assert!(after.parse::<u64>().unwrap() >= before.parse::<u64>().unwrap());
    assert_eq!(checkout(&rt.front_door_url()).await.unwrap(), s);
    wait_for(
        "the kept standby to replicate",
        Duration::from_secs(20),
        || async {
            rt.status()
                .await
                .region(&p)
                .is_some_and(|r| r.replicating())
        },
    )
    .await;

    Runtime::down(&settings.state_dir)
        .await
        .expect("local down");
    let (rt, _) = Runtime::up_fresh(&settings)
        .await
        .expect("local up --fresh");
    let state = rt.control().state().await.unwrap();
    assert_eq!((state.active_region.as_str(), state.epoch), (p.as_str(), 0));
    assert_eq!(
        query_one(&rt.admin_db_url(&p).unwrap(), orders)
            .await
            .as_deref(),
        Some("0")
    );
}

/// The replication variables of `region`'s server: master enabled, slave enabled, wait point, timeout.
async fn semi_sync_variables(rt: &Runtime, region: &str) -> Vec<Option<String>> {
    let url = rt.admin_db_url(region).unwrap();
    let mut values = Vec::new();
    for variable in [
        "rpl_semi_sync_master_enabled",
        "rpl_semi_sync_slave_enabled",
        "rpl_semi_sync_master_wait_point",
        "rpl_semi_sync_master_timeout",
    ] {
        values.push(query_one(&url, &format!("SELECT CAST(@@GLOBAL.{variable} AS CHAR)")).await);
    }
    values
}

async fn restart_database(rt: &Runtime, region: &str) {
    rt.kill_database(region).unwrap();
    rt.start_database(region)
        .await
        .expect("the database starts again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_replication_mode_changes_on_a_running_pair_and_a_restarted_server_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), 24_500);
    let _down = DownOnDrop(settings.state_dir.clone());
    let (rt, _) = Runtime::up(&settings).await.expect("local up");
    let (p, s) = (
        rt.primary_region().to_owned(),
        rt.standby_region().to_owned(),
    );
    let timeout = settings.semi_sync_timeout_ms.to_string();
    let semi_sync = vec![
        Some("ON".to_owned()),
        Some("ON".to_owned()),
        Some("AFTER_SYNC".to_owned()),
        Some(timeout.clone()),
    ];
    assert_eq!(settings.replication, ReplicationMode::SemiSync);
    assert_eq!(semi_sync_variables(&rt, &p).await, semi_sync);

    rt.set_replication(ReplicationMode::Async).await.unwrap();
    let asynchronous = vec![
        Some("OFF".to_owned()),
        Some("OFF".to_owned()),
        Some("AFTER_SYNC".to_owned()),
        Some(timeout),
    ];
    for region in [&p, &s] {
        assert_eq!(
            semi_sync_variables(&rt, region).await,
            asynchronous,
            "{region}"
        );
    }
    let recorded = Runtime::open(&settings.state_dir).unwrap();
    assert_eq!(recorded.settings().replication, ReplicationMode::Async);
    // runtime.json holds the database passwords: rewriting it keeps it private.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(recorded.layout().runtime_json())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    restart_database(&rt, &s).await;
    assert_eq!(
        semi_sync_variables(&rt, &s).await,
        asynchronous,
        "a restarted server keeps the mode"
    );

    rt.set_replication(ReplicationMode::SemiSync).await.unwrap();
    for region in [&p, &s] {
        assert_eq!(
            semi_sync_variables(&rt, region).await,
            semi_sync,
            "{region}"
        );
    }
    restart_database(&rt, &s).await;
    assert_eq!(semi_sync_variables(&rt, &s).await, semi_sync);
    // And the restarted replica is semi-synchronous again: the primary's commits wait for it.
    let primary = rt.admin_db_url(&p).unwrap();
    wait_for(
        "the primary to see a semi-synchronous replica",
        Duration::from_secs(20),
        || async {
            query_one(
                &primary,
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS'",
            )
            .await
            .as_deref()
                == Some("ON")
        },
    )
    .await;
}
