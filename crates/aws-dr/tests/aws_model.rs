//! The AWS backend's observations and its promotion step against the emulator plus the model of what it lacks
//! (`support/model.rs`): readiness from the storefront function and the Aurora global cluster's own state,
//! and a promotion that reads `FailoverState` and the members' writer flags instead of guessing from an
//! error code.
//!
//! Needs `LIFEBOAT_TEST_AWS_ENDPOINT`.

#[path = "support/fixture.rs"]
mod fixture;

use std::time::Duration;

use fixture::{Fixture, PRIMARY, STANDBY};
use lifeboat_aws_dr::{AwsBackend, Topology};
use lifeboat_runbook::readiness::{Health, assess};
use lifeboat_runbook::{DrBackend, Journal, RunId, RunKind, StepContext};

fn step(kind: RunKind, name: &str) -> StepContext {
    StepContext {
        run_id: RunId::new(time::OffsetDateTime::now_utc()),
        kind,
        mode: kind.mode(),
        step: name.into(),
        attempt: 1,
        from: PRIMARY.into(),
        to: STANDBY.into(),
        epoch: Some(7),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_ready_with_and_without_certificates_and_names_what_is_unhealthy() {
    let f = Fixture::create().await;
    let mut with_certificates = f.config.clone();
    with_certificates.certificates.primary =
        Some("arn:aws:acm:us-east-1:123456789012:certificate/0a1b".into());
    with_certificates.certificates.standby =
        Some("arn:aws:acm:us-west-2:123456789012:certificate/2c3d".into());
    for config in [&f.config, &with_certificates] {
        // moto's account, as the command line learns it from STS.
        let mut topology = Topology::from_config(config).in_account("123456789012");
        topology.bounds = f.topology.bounds.clone();
        let backend = AwsBackend::new(f.clients.clone(), topology);
        let readiness = backend.readiness().await.unwrap();
        let verdict = assess(
            RunKind::Switchover,
            &readiness,
            PRIMARY,
            STANDBY,
            &f.settings,
        );
        assert!(
            verdict.ready,
            "a healthy deployment is READY (certificates: {}): {:?}\n{}",
            config.certificates.primary.is_some(),
            verdict.reasons,
            readiness.render_text()
        );
        assert!(readiness.region(STANDBY).unwrap().storefront.is_healthy());
    }
    assert!(
        f.model.invocations(STANDBY) >= 2 && f.model.invocations(PRIMARY) >= 2,
        "readiness asked both storefront functions"
    );

    let backend = AwsBackend::new(f.clients.clone(), f.topology.clone());
    f.model.update(STANDBY, |r| r.database_up = false);
    let readiness = backend.readiness().await.unwrap();
    let verdict = assess(
        RunKind::Switchover,
        &readiness,
        PRIMARY,
        STANDBY,
        &f.settings,
    );
    assert!(!verdict.ready);
    let standby = readiness.region(STANDBY).unwrap();
    match &standby.storefront {
        Health::Unhealthy(why) => assert!(
            why.contains("503") && why.contains(&f.topology.storefront_function),
            "{why}"
        ),
        other => panic!("the standby storefront with its database down: {other:?}"),
    }
    assert!(
        verdict.reasons.iter().any(|r| r.contains(STANDBY)),
        "{:?}",
        verdict.reasons
    );

    f.model.update(STANDBY, |r| {
        r.database_up = true;
        r.storefront_up = false;
    });
    let readiness = backend.readiness().await.unwrap();
    match &readiness.region(STANDBY).unwrap().storefront {
        Health::Unhealthy(why) => assert!(why.contains("Unhandled"), "{why}"),
        other => panic!("a failing standby function: {other:?}"),
    }
    assert!(
        !assess(
            RunKind::Switchover,
            &readiness,
            PRIMARY,
            STANDBY,
            &f.settings
        )
        .ready
    );

    // The primary region lost: it is reported unreachable, and a failover to the healthy standby may go.
    f.model.restore_region(STANDBY);
    f.model.lose_region(PRIMARY);
    let readiness = backend.readiness().await.unwrap();
    assert!(!readiness.region(PRIMARY).unwrap().reachable);
    assert!(
        assess(RunKind::Failover, &readiness, PRIMARY, STANDBY, &f.settings).ready,
        "{:?}\n{}",
        assess(RunKind::Failover, &readiness, PRIMARY, STANDBY, &f.settings).reasons,
        readiness.render_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_waits_for_a_modifying_cluster_and_asks_aurora_once() {
    let f = Fixture::create().await;
    let backend = AwsBackend::new(f.clients.clone(), f.topology.clone());
    let standby_cluster = f.topology.cluster_id(STANDBY).unwrap().to_owned();
    // Still `modifying` after the pre-scale raised its minimum capacity: Aurora refuses to promote it.
    f.model.set_cluster_status(&standby_cluster, "modifying");
    let model = f.model.clone();
    let cluster = standby_cluster.clone();
    let flip = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        model.set_cluster_status(&cluster, "available");
    });
    let out = backend
        .promote(&step(RunKind::Switchover, "promote"), false)
        .await
        .unwrap_or_else(|e| panic!("promote: {e:?}"));
    flip.await.unwrap();
    let state = f.model.state();
    assert_eq!(
        state.aurora.writer_region(),
        Some(STANDBY),
        "{}",
        out.detail
    );
    assert_eq!(
        state.aurora.switchovers.len(),
        1,
        "one SwitchoverGlobalCluster, made once the cluster was available"
    );
    assert!(
        state.aurora.refused.is_empty(),
        "no request Aurora had to refuse: {:?}",
        state.aurora.refused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_after_a_crash_waits_for_its_own_operation_and_refuses_a_foreign_one() {
    let f = Fixture::create().await;
    let backend = AwsBackend::new(f.clients.clone(), f.topology.clone());
    let arn = |region: &str| {
        f.model
            .state()
            .aurora
            .members
            .iter()
            .find(|m| m.region == region)
            .unwrap()
            .arn
            .clone()
    };
    // A switchover to the standby already under way (an earlier attempt asked, then crashed): promote
    // waits for it and asks nothing more.
    let (primary_arn, standby_arn) = (arn(PRIMARY), arn(STANDBY));
    f.model.state().aurora.operation = Some(fixture::model::Operation {
        kind: fixture::model::OperationKind::Switchover,
        from_arn: primary_arn.clone(),
        to_arn: standby_arn.clone(),
        observations_left: 3,
    });
    backend
        .promote(&step(RunKind::Switchover, "promote"), false)
        .await
        .unwrap_or_else(|e| panic!("promote: {e:?}"));
    assert_eq!(f.model.state().aurora.writer_region(), Some(STANDBY));
    assert!(f.model.state().aurora.switchovers.is_empty());
    assert!(f.model.state().aurora.refused.is_empty());

    // An operation towards another cluster (an operator's, say): refused with what is going on, nothing
    // asked.
    f.model.state().aurora.operation = Some(fixture::model::Operation {
        kind: fixture::model::OperationKind::Switchover,
        from_arn: standby_arn,
        to_arn: primary_arn,
        observations_left: 50,
    });
    let err = backend
        .promote(&step(RunKind::Switchover, "promote"), false)
        .await
        .unwrap_err();
    assert!(err.message.contains("another operation"), "{}", err.message);
    assert!(f.model.state().aurora.switchovers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_drained_reads_aurora_state_not_a_lag_metric() {
    let f = Fixture::create().await;
    let backend = AwsBackend::new(f.clients.clone(), f.topology.clone());
    let ctx = step(RunKind::Switchover, "wait-drained");
    // The CloudWatch lag metric says nothing useful here (one stale datapoint of 0 ms); the member's
    // synchronization status does.
    {
        let mut state = f.model.state();
        for m in &mut state.aurora.members {
            if m.region == STANDBY {
                m.synchronization = "pending-resync".into();
            }
        }
    }
    let err = backend.wait_drained(&ctx).await.unwrap_err();
    assert!(err.message.contains("pending-resync"), "{}", err.message);
    {
        let mut state = f.model.state();
        for m in &mut state.aurora.members {
            m.synchronization = "connected".into();
        }
    }
    let out = backend.wait_drained(&ctx).await.unwrap();
    assert!(out.detail.contains("RPO 0"), "{}", out.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_state_is_created_once_and_a_redeployed_region_learns_the_current_one() {
    let f = Fixture::create().await;
    let t = &f.topology;
    let names = [t.ssm_active_region(), t.ssm_epoch(), t.ssm_fence()];
    // After a failover: the standby active at epoch 5 in both regions.
    for region in [PRIMARY, STANDBY] {
        for (name, value) in names.iter().zip([STANDBY, "5", "lowered"]) {
            f.direct[region]
                .ssm()
                .put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .unwrap();
        }
    }
    // The parameters exist; the control items storefronts read do not yet: they are created from the
    // parameters' state (standby active, epoch 5), in both replicas, and only once.
    let seeded = lifeboat_aws_dr::control_state::seed(&f.clients, t, None)
        .await
        .unwrap();
    for s in &seeded {
        assert!(
            !s.created.is_empty() && s.created.iter().all(|c| c.starts_with("control item of")),
            "only the control items are created where the parameters exist: {seeded:?}"
        );
    }
    for replica in [PRIMARY, STANDBY] {
        for of in [PRIMARY, STANDBY] {
            let item = f.direct[replica]
                .dynamodb()
                .get_item()
                .table_name(&t.journal_table)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S("control".into()),
                )
                .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(of.into()))
                .send()
                .await
                .unwrap();
            let item = item
                .item()
                .unwrap_or_else(|| panic!("control item of {of} in {replica}"));
            assert_eq!(item["active_region"].as_s().unwrap(), STANDBY);
            assert_eq!(item["epoch"].as_n().unwrap(), "5");
        }
    }
    let seeded = lifeboat_aws_dr::control_state::seed(&f.clients, t, None)
        .await
        .unwrap();
    assert!(
        seeded.iter().all(|s| s.created.is_empty()),
        "nothing created where the state exists: {seeded:?}"
    );
    for region in [PRIMARY, STANDBY] {
        assert_eq!(f.param(region, &names[0]).await, STANDBY, "in {region}");
        assert_eq!(f.param(region, &names[1]).await, "5", "in {region}");
    }

    // The primary region's parameters are gone (its stacks were deleted and deployed again): they are
    // created from the state of the newest epoch, not as "primary active, epoch 1".
    f.direct[PRIMARY]
        .ssm()
        .delete_parameters()
        .set_names(Some(names.to_vec()))
        .send()
        .await
        .unwrap();
    let seeded = lifeboat_aws_dr::control_state::seed(&f.clients, t, None)
        .await
        .unwrap();
    let primary = seeded.iter().find(|s| s.region == PRIMARY).unwrap();
    assert_eq!(primary.created.len(), 3, "{seeded:?}");
    assert_eq!(f.param(PRIMARY, &names[0]).await, STANDBY);
    assert_eq!(f.param(PRIMARY, &names[1]).await, "5");
    assert_eq!(f.param(PRIMARY, &names[2]).await, "lowered");

    // A stack update deleted them everywhere after `current` read them: `seed` puts back what was read.
    let remembered = lifeboat_aws_dr::control_state::current(&f.clients, t)
        .await
        .unwrap();
    assert_eq!(remembered.as_ref().map(|r| r.epoch), Some(5));
    for region in [PRIMARY, STANDBY] {
        f.direct[region]
            .ssm()
            .delete_parameters()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .unwrap();
    }
    lifeboat_aws_dr::control_state::seed(&f.clients, t, remembered.as_ref())
        .await
        .unwrap();
    for region in [PRIMARY, STANDBY] {
        assert_eq!(f.param(region, &names[0]).await, STANDBY, "in {region}");
        assert_eq!(f.param(region, &names[1]).await, "5", "in {region}");
    }

    // The parameters gone everywhere but the control items kept (the journal table outlives the stacks
    // that own the parameters): the items are the newest state, and the parameters come back from them.
    for region in [PRIMARY, STANDBY] {
        f.direct[region]
            .ssm()
            .delete_parameters()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .unwrap();
    }
    lifeboat_aws_dr::control_state::seed(&f.clients, t, None)
        .await
        .unwrap();
    for region in [PRIMARY, STANDBY] {
        assert_eq!(f.param(region, &names[0]).await, STANDBY, "in {region}");
        assert_eq!(f.param(region, &names[1]).await, "5", "in {region}");
    }

    // A first deploy: nothing anywhere, the configured primary starts active at epoch 1.
    for region in [PRIMARY, STANDBY] {
        f.direct[region]
            .ssm()
            .delete_parameters()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .unwrap();
        for of in [PRIMARY, STANDBY] {
            f.direct[region]
                .dynamodb()
                .delete_item()
                .table_name(&t.journal_table)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S("control".into()),
                )
                .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(of.into()))
                .send()
                .await
                .unwrap();
        }
    }
    lifeboat_aws_dr::control_state::seed(&f.clients, t, None)
        .await
        .unwrap();
    for region in [PRIMARY, STANDBY] {
        assert_eq!(f.param(region, &names[0]).await, PRIMARY);
        assert_eq!(f.param(region, &names[1]).await, "1");
        assert_eq!(f.param(region, &names[2]).await, "lowered");
    }
}

/// The documented EventBridge event of an alarm's state change, entered at `entered`.
/// A deploy of the standby alone while the primary region is lost: the control state is read and seeded
/// in the standby only, and the primary is reported as not checked, instead of failing the deploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_primary_region_lost_the_control_state_is_seeded_in_the_standby_alone() {
    let f = Fixture::create().await;
    let t = &f.topology;
    f.model.lose_region(PRIMARY);
    // Read before the stacks change (as `lifeboat deploy` does): the standby's state alone.
    let truth = lifeboat_aws_dr::control_state::current(&f.clients, t)
        .await
        .unwrap()
        .expect("the standby's state");
    assert_eq!(truth.active_region, PRIMARY);
    // The update removed the standby's epoch parameter (a template that still owned it).
    f.direct[STANDBY]
        .ssm()
        .delete_parameter()
        .name(t.ssm_epoch())
        .send()
        .await
        .unwrap();
    let seeded = lifeboat_aws_dr::control_state::seed(&f.clients, t, Some(&truth))
        .await
        .unwrap();
    let primary = seeded.iter().find(|s| s.region == PRIMARY).unwrap();
    assert!(
        primary.unreachable.is_some() && primary.created.is_empty(),
        "{seeded:?}"
    );
    let standby = seeded.iter().find(|s| s.region == STANDBY).unwrap();
    assert!(standby.unreachable.is_none());
    assert!(
        standby
            .created
            .iter()
            .any(|c| c.starts_with(&t.ssm_epoch())),
        "the missing epoch is created in the standby: {seeded:?}"
    );
    // With no region reachable, nothing is guessed: the seed fails.
    f.model.lose_region(STANDBY);
    let err = lifeboat_aws_dr::control_state::seed(&f.clients, t, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        lifeboat_runbook::BackendErrorKind::Unavailable,
        "{err:?}"
    );
}

/// The probe schedule's event in the standby: the probe asks the primary's storefront function and
/// publishes `Lifeboat/DR RegionHealthy` in the standby, 1 while the primary answers and 0 once it is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_publishes_the_other_regions_health_in_its_own_region() {
    let f = Fixture::create().await;
    let env = f.environment();
    let probe = serde_json::json!({ "lifeboat-probe": { "region": PRIMARY } });
    let settings = &f.settings;

    let up = lifeboat_aws_dr::lambda::handle(&env, settings, &probe).await;
    assert_eq!(up["healthy"], true, "{up}");
    assert_eq!(up["published"], true, "{up}");
    f.model.lose_region(PRIMARY);
    let down = lifeboat_aws_dr::lambda::handle(&env, settings, &probe).await;
    assert_eq!(down["healthy"], false, "{down}");
    assert_eq!(down["published"], true, "{down}");

    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let hour_ago = aws_smithy_types::DateTime::from_secs(now.secs() - 3600);
    let in_a_minute = aws_smithy_types::DateTime::from_secs(now.secs() + 60);
    let stats = f.direct[STANDBY]
        .cloudwatch()
        .get_metric_statistics()
        .namespace("Lifeboat/DR")
        .metric_name("RegionHealthy")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("Environment")
                .value(&f.topology.prefix)
                .build(),
        )
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("Region")
                .value(PRIMARY)
                .build(),
        )
        .start_time(hour_ago)
        .end_time(in_a_minute)
        .period(3600)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Minimum)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .statistics(aws_sdk_cloudwatch::types::Statistic::SampleCount)
        .send()
        .await
        .unwrap();
    let points = stats.datapoints();
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(points[0].sample_count(), Some(2.0), "{points:?}");
    assert_eq!(points[0].maximum(), Some(1.0), "healthy first: {points:?}");
    assert_eq!(points[0].minimum(), Some(0.0), "then lost: {points:?}");
}

/// The primary region is lost (its APIs, storefront and database): the probe alarm on it, which lives in
/// the standby, reaches the standby's automation, which runs a switchover, and (data loss allowed by
/// configuration) the failover when the switchover cannot run. Afterwards the standby writes and the
/// record answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_primary_lost_the_standbys_automation_decides_to_act_on_the_probe_alarm() {
    let f = Fixture::create().await;
    let env = f.environment();
    let mut settings = f.settings.clone();
    settings.allow_data_loss = true;
    let alarm = f.fire_probe_alarm().await;
    f.model.lose_region(PRIMARY);
    let ten_minutes_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let answer = lifeboat_aws_dr::lambda::handle(
        &env,
        &settings,
        &fixture::alarm_event(&alarm, "ALARM", STANDBY, ten_minutes_ago),
    )
    .await;
    assert_eq!(answer["decision"], "act", "{answer}");
    assert_eq!(answer["request"]["kind"], "switchover", "{answer}");
    assert_eq!(answer["request"]["to"], STANDBY, "{answer}");
    assert_eq!(
        answer["request"]["escalate"], true,
        "with dr.allow_data_loss a switchover that fails is followed by a failover: {answer}"
    );
    // Deciding changes nothing: the DR state machine carries the run out (tests/state_machine.rs).
    assert_eq!(f.model.state().aurora.writer_region(), Some(PRIMARY));
    assert!(env.journal.list().await.unwrap().is_empty());
}
