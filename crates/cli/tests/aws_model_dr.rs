//! The DR commands on AWS, through the command line's own entry point, against the local AWS emulator plus the
//! model of what it lacks (`crates/aws-dr/tests/support/model.rs`): Route 53 health evaluation and the
//! failover record's answer, the Aurora global database's switchover and failover semantics, the storefront
//! function's answers, and regions that can be lost.
//!
//! Each test is a whole cycle: the shop goes to the standby and comes back, and what Route 53 would answer
//! is asserted from the model's own evaluation, never from lifeboat's.
//!
//! Needs `LIFEBOAT_TEST_AWS_ENDPOINT` (set by `scripts/test`).

#[path = "../../aws-dr/tests/support/fixture.rs"]
mod fixture;

use std::path::PathBuf;

use fixture::{Fixture, PRIMARY, STANDBY};
use lifeboat_cli::{Overrides, run_with};
use lifeboat_contract::exit;

/// A fixture environment with its `lifeboat.toml`, driven through [`run_with`].
struct Env {
    rt: tokio::runtime::Runtime,
    f: Fixture,
    config: PathBuf,
    overrides: Overrides,
    _dir: tempfile::TempDir,
}

impl Env {
    // A plain test, not a tokio one: `run_with` blocks on the command line's own runtime, which cannot
    // start inside another. The fixture's runtime keeps running beside it (the region links) and serves the
    // test's own reads.
    fn new() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime for the fixture");
        let f = rt.block_on(Fixture::create());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("lifeboat.toml");
        std::fs::write(
            &config,
            toml::to_string(&f.config).expect("the fixture's config serializes"),
        )
        .unwrap();
        let overrides = Overrides {
            aws_clients: Some(f.clients.clone()),
            aws_poll_interval: Some(f.topology.bounds.poll_interval),
            aws_promote_timeout: Some(f.topology.bounds.promote_timeout),
            aws_write_lease: Some(f.topology.bounds.write_lease),
        };
        Env {
            rt,
            f,
            config,
            overrides,
            _dir: dir,
        }
    }

    /// `lifeboat --config CONFIG --no-color ARGS...`; the exit code.
    fn lifeboat(&self, args: &[&str]) -> i32 {
        let mut argv = vec![
            "lifeboat".to_owned(),
            "--config".to_owned(),
            self.config.display().to_string(),
            "--no-color".to_owned(),
        ];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        run_with(argv, self.overrides.clone())
    }

    /// `lifeboat failover --to STANDBY --allow-data-loss --yes --target aws`; the exit code.
    fn fail_over_to_standby(&self) -> i32 {
        self.lifeboat(&[
            "failover",
            "--to",
            STANDBY,
            "--allow-data-loss",
            "--yes",
            "--target",
            "aws",
        ])
    }

    fn dns(&self) -> String {
        self.rt.block_on(self.f.dns_answer())
    }

    fn param(&self, region: &str, name: &str) -> String {
        self.rt.block_on(self.f.param(region, name))
    }

    fn epoch(&self) -> u64 {
        self.param(STANDBY, &self.f.topology.ssm_epoch())
            .parse()
            .expect("the epoch parameter holds a number")
    }

    fn assert_active_everywhere(&self, region: &str) {
        for reader in [PRIMARY, STANDBY] {
            assert_eq!(
                self.param(reader, &self.f.topology.ssm_active_region()),
                region,
                "active-region parameter in {reader}"
            );
            assert_eq!(
                self.param(reader, &self.f.topology.ssm_fence()),
                "lowered",
                "fence parameter in {reader}"
            );
        }
    }

    fn writer(&self) -> Option<String> {
        self.f
            .model
            .state()
            .aurora
            .writer_region()
            .map(str::to_owned)
    }

    /// The health check configuration Route 53 holds for `region`'s record: (disabled, inverted).
    fn check_flags(&self, region: &str) -> (bool, bool) {
        let id = self
            .f
            .model
            .state()
            .health_checks
            .iter()
            .find(|(_, r)| r.as_str() == region)
            .map(|(id, _)| id.clone())
            .expect("a health check per region");
        let out = self
            .rt
            .block_on(
                self.f
                    .clients
                    .route53
                    .get_health_check()
                    .health_check_id(id)
                    .send(),
            )
            .unwrap();
        let config = out.health_check().unwrap().health_check_config().unwrap();
        (
            config.disabled().unwrap_or(false),
            config.inverted().unwrap_or(false),
        )
    }
}

#[test]
fn switchover_keeps_traffic_off_the_old_primary_whatever_it_does_and_failback_restores_it() {
    let env = Env::new();
    assert_eq!(env.dns(), PRIMARY);

    assert_eq!(
        env.lifeboat(&["switchover", "--yes", "--target", "aws"]),
        exit::OK,
        "lifeboat switchover --yes"
    );
    assert_eq!(
        env.dns(),
        STANDBY,
        "the failover record answers the standby"
    );
    assert_eq!(env.writer().as_deref(), Some(STANDBY));
    env.assert_active_everywhere(STANDBY);

    // The now-passive primary breaks: an inverted-only health check would turn its failure into "healthy"
    // and send customers to it.
    env.f.model.update(PRIMARY, |r| r.storefront_up = false);
    assert_eq!(
        env.dns(),
        STANDBY,
        "a failure of the passive primary must not move traffic to it"
    );
    env.f.model.lose_region(PRIMARY);
    assert_eq!(env.dns(), STANDBY, "nor the loss of its whole region");
    // ... and recovers: a merely disabled check would count as healthy and take traffic back.
    env.f.model.restore_region(PRIMARY);
    assert_eq!(
        env.dns(),
        STANDBY,
        "the passive primary's recovery must not move traffic to it"
    );

    assert_eq!(
        env.lifeboat(&["failback", "--yes", "--target", "aws"]),
        exit::OK,
        "lifeboat failback --yes"
    );
    assert_eq!(env.dns(), PRIMARY, "failback restores the original answer");
    assert_eq!(env.writer().as_deref(), Some(PRIMARY));
    env.assert_active_everywhere(PRIMARY);
    for region in [PRIMARY, STANDBY] {
        assert_eq!(
            env.check_flags(region),
            (false, false),
            "the health check of {region} is as deployed again (enabled, not inverted)"
        );
    }
    // As deployed, Route 53's own failover works again: the primary unreachable from the internet sends
    // clients to the standby.
    env.f
        .model
        .update(PRIMARY, |r| r.reachable_from_internet = false);
    assert_eq!(env.dns(), STANDBY);
    env.f.model.restore_region(PRIMARY);
    assert_eq!(env.dns(), PRIMARY);
    assert_eq!(env.f.model.state().aurora.switchovers.len(), 2);
    assert!(env.f.model.state().aurora.failovers.is_empty());
}

#[test]
fn failover_with_the_primary_region_lost_then_failback_when_it_returns() {
    let env = Env::new();
    let epoch_before = env.epoch();
    env.f.model.lose_region(PRIMARY);

    assert_eq!(
        env.fail_over_to_standby(),
        exit::OK,
        "lifeboat failover --allow-data-loss with the primary region unreachable"
    );
    assert_eq!(env.writer().as_deref(), Some(STANDBY));
    {
        let state = env.f.model.state();
        assert_eq!(state.aurora.failovers.len(), 1, "one FailoverGlobalCluster");
        assert_eq!(
            state.aurora.failovers[0].1,
            Some(true),
            "with AllowDataLoss"
        );
        assert!(state.aurora.switchovers.is_empty());
    }
    assert_eq!(
        env.dns(),
        STANDBY,
        "the failover record answers the standby"
    );
    assert!(
        env.f.model.invocations(STANDBY) > 0,
        "verify asked the new primary's storefront"
    );
    assert_eq!(
        env.param(STANDBY, &env.f.topology.ssm_active_region()),
        STANDBY
    );
    let epoch_after_failover = env.epoch();
    assert!(epoch_after_failover > epoch_before);

    // The primary region returns. Traffic stays where the failover put it, and Aurora rejoins the old
    // primary as a secondary after a snapshot of what it held.
    env.f.model.restore_region(PRIMARY);
    assert_eq!(
        env.dns(),
        STANDBY,
        "a returning primary does not take traffic back by itself"
    );

    assert_eq!(
        env.lifeboat(&["failback", "--yes", "--target", "aws"]),
        exit::OK,
        "lifeboat failback --yes after the primary region returned"
    );
    assert_eq!(env.writer().as_deref(), Some(PRIMARY));
    assert_eq!(env.dns(), PRIMARY);
    env.assert_active_everywhere(PRIMARY);
    assert!(env.epoch() > epoch_after_failover);
    let cluster = env.f.topology.cluster_id(PRIMARY).unwrap().to_owned();
    assert!(
        env.f
            .model
            .state()
            .aurora
            .snapshots
            .iter()
            .any(|(c, name)| *c == cluster && name.starts_with("rds:unplanned-global-failover-")),
        "Aurora kept the old primary's writes in a snapshot"
    );
}

#[test]
fn reprotect_on_its_own_rejoins_the_returned_primary_without_moving_the_active_role() {
    let env = Env::new();
    env.f.model.lose_region(PRIMARY);
    assert_eq!(env.fail_over_to_standby(), exit::OK);
    let epoch_after_failover = env.epoch();
    env.f.model.restore_region(PRIMARY);

    assert_eq!(
        env.lifeboat(&["reprotect", "--region", STANDBY, "--yes", "--target", "aws"]),
        exit::REFUSED,
        "the active region is not rejoined as a replica of itself"
    );
    assert_eq!(
        env.lifeboat(&["reprotect", "--yes", "--target", "aws"]),
        exit::OK,
        "lifeboat reprotect --yes after the primary region returned"
    );
    {
        let state = env.f.model.state();
        let old_primary = state
            .aurora
            .members
            .iter()
            .find(|m| m.region == PRIMARY)
            .expect("the old primary's cluster is known");
        assert!(
            old_primary.joined && !old_primary.is_writer,
            "the old primary is a secondary of the global database again: {old_primary:?}"
        );
        assert!(state.aurora.switchovers.is_empty(), "no role moved");
    }
    // The run's journal (coordinated in the region it rejoined) names the snapshot Aurora kept of the
    // writes the global database lost.
    let journaled = env.rt.block_on(async {
        use lifeboat_runbook::Journal;
        let journal = lifeboat_aws_dr::AwsEnvironment::from_clients(
            env.f.clients.clone(),
            env.f.topology.clone(),
            PRIMARY,
        )
        .journal;
        let mut text = String::new();
        for run in journal.list().await.unwrap() {
            let events = journal.read(&run).await.unwrap();
            text.push_str(&serde_json::to_string(&events).unwrap());
        }
        text
    });
    assert!(
        journaled.contains("\"reprotect\"")
            && journaled.contains("kept in snapshot rds:unplanned-global-failover-"),
        "the reprotect step names the snapshot: {journaled}"
    );
    assert_eq!(env.writer().as_deref(), Some(STANDBY), "the writer stays");
    assert_eq!(env.dns(), STANDBY, "traffic stays");
    env.assert_active_everywhere(STANDBY);
    assert_eq!(
        env.epoch(),
        epoch_after_failover,
        "reprotect fences nothing and takes no epoch"
    );

    // The other half: the failback finds the region protected and switches over.
    assert_eq!(
        env.lifeboat(&["failback", "--yes", "--target", "aws"]),
        exit::OK
    );
    assert_eq!(env.writer().as_deref(), Some(PRIMARY));
    assert_eq!(env.dns(), PRIMARY);
    env.assert_active_everywhere(PRIMARY);
    assert!(env.epoch() > epoch_after_failover);
}

#[test]
fn switchover_is_refused_while_the_standby_cannot_take_over() {
    let env = Env::new();
    let epoch_before = env.epoch();

    env.f.model.update(STANDBY, |r| r.database_up = false);
    assert_eq!(
        env.lifeboat(&["switchover", "--yes", "--target", "aws"]),
        exit::REFUSED,
        "standby database down: NOT READY"
    );
    env.f.model.update(STANDBY, |r| {
        r.database_up = true;
        r.storefront_up = false;
    });
    assert_eq!(
        env.lifeboat(&["switchover", "--yes", "--target", "aws"]),
        exit::REFUSED,
        "standby storefront failing: NOT READY"
    );
    assert_eq!(env.epoch(), epoch_before, "nothing was changed");
    assert!(env.f.model.state().aurora.switchovers.is_empty());
    assert_eq!(env.dns(), PRIMARY);
    env.assert_active_everywhere(PRIMARY);
}

/// A gray failure: Route 53's health check of the primary fails and the orchestrator cannot reach the
/// primary region's APIs, while the primary's storefront and database are up and keep taking orders. The
/// storefront of the primary (its real write gate and control source, reading the control items of its own
/// region's replica and the standby's) is asked for a write permit every 10 ms throughout a failover run
/// through the command line. After the run published its new epoch in the standby's replica, the primary
/// must stop acknowledging writes within one lease.
#[test]
fn gray_failure_the_old_primary_stops_acknowledging_writes_within_a_lease_of_the_failover() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let env = Env::new();
    // The control items, as `lifeboat deploy` creates them from the parameters.
    env.rt
        .block_on(lifeboat_aws_dr::control_state::seed(
            &env.f.clients,
            &env.f.topology,
            None,
        ))
        .expect("control items created");
    let table = env.f.topology.journal_table.clone();
    let max_epoch_in = |region: &str| {
        let client = env.f.direct[region].dynamodb().clone();
        let table = table.clone();
        async move {
            use aws_sdk_dynamodb::types::AttributeValue;
            let out = client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S("control".into()))
                .send()
                .await
                .unwrap();
            out.items()
                .iter()
                .filter_map(|i| match i.get("epoch") {
                    Some(AttributeValue::N(n)) => n.parse().ok(),
                    _ => None,
                })
                .max()
                .unwrap_or(0)
        }
    };
    let epoch_before = env.rt.block_on(max_epoch_in(STANDBY));

    // The primary's storefront: it reaches both replicas directly (its own network is fine).
    let source = storefront::control::DynamoControl::new(
        &table,
        (PRIMARY.into(), env.f.direct[PRIMARY].dynamodb().clone()),
        Some((STANDBY.into(), env.f.direct[STANDBY].dynamodb().clone())),
    );
    let gate = env.rt.block_on(async {
        // The permit checks region, fence and lease; the database is only touched by the write itself.
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .connect_lazy("mysql://unused@127.0.0.1:9/shop")
            .unwrap();
        storefront::gate::WriteGate::new(
            PRIMARY,
            Arc::new(source),
            pool,
            Arc::new(storefront::metrics::Metrics::new()),
        )
    });
    // Each permit asked for: when it was answered, and the refusal's code if refused.
    type PermitLog = Vec<(Instant, Result<(), String>)>;
    let log: Arc<Mutex<PermitLog>> = Arc::default();
    let published_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (gate, log, stop) = (Arc::clone(&gate), Arc::clone(&log), Arc::clone(&stop));
        env.rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = gate
                    .permit()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.code.to_owned());
                log.lock().unwrap().push((Instant::now(), answer));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // When the standby's replica first holds a newer epoch: the moment the run published it.
    let watcher = {
        let (published_at, stop) = (Arc::clone(&published_at), Arc::clone(&stop));
        let client = env.f.direct[STANDBY].dynamodb().clone();
        let table = table.clone();
        env.rt.spawn(async move {
            use aws_sdk_dynamodb::types::AttributeValue;
            while !stop.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let out = client
                    .query()
                    .table_name(&table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", AttributeValue::S("control".into()))
                    .send()
                    .await;
                let newest = out.ok().and_then(|o| {
                    o.items()
                        .iter()
                        .filter_map(|i| match i.get("epoch") {
                            Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
                            _ => None,
                        })
                        .max()
                });
                if newest.is_some_and(|e| e > epoch_before) {
                    // The write landed no later than the read that saw it began.
                    published_at.lock().unwrap().get_or_insert(asked);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        log.lock().unwrap().iter().any(|(_, a)| a.is_ok()),
        "the primary acknowledges writes before the failure: {:?}",
        log.lock().unwrap().last()
    );

    env.f.model.update(PRIMARY, |r| {
        r.api_reachable = false;
        r.reachable_from_internet = false;
    });
    assert_eq!(
        env.fail_over_to_standby(),
        exit::OK,
        "lifeboat failover --allow-data-loss in a gray failure of the primary"
    );
    assert_eq!(env.dns(), STANDBY);
    std::thread::sleep(Duration::from_millis(2000));
    stop.store(true, Ordering::Relaxed);
    env.rt.block_on(async {
        writer.await.unwrap();
        let _ = watcher.await;
    });

    let published = published_at
        .lock()
        .unwrap()
        .expect("the run published a newer epoch in the standby's replica");
    let log = log.lock().unwrap();
    let last_acknowledged = log
        .iter()
        .filter(|(_, a)| a.is_ok())
        .map(|(at, _)| *at)
        .max()
        .expect("writes were acknowledged before");
    let lease = Duration::from_millis(storefront::control::DEFAULT_LEASE_MS);
    // The watcher polls every 10 ms and moto answers in a few: a little slack on top of the lease.
    let slack = Duration::from_millis(100);
    let after = last_acknowledged.saturating_duration_since(published);
    eprintln!(
        "last write acknowledged in the old primary {} ms after the new epoch was published (lease {} ms)",
        after.as_millis(),
        lease.as_millis()
    );
    assert!(
        after <= lease + slack,
        "the old primary acknowledged a write {} ms after the new epoch was published",
        after.as_millis()
    );
    let (_, last) = log.last().unwrap();
    assert!(
        matches!(
            last.as_ref().map_err(String::as_str),
            Err("write_fenced" | "region_passive")
        ),
        "the old primary refuses writes at the end: {last:?}"
    );
}
