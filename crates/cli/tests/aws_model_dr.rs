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
        env.lifeboat(&[
            "failover",
            "--to",
            STANDBY,
            "--allow-data-loss",
            "--yes",
            "--target",
            "aws"
        ]),
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
