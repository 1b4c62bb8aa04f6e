//! Any valid configuration synthesizes: the templates validate, render, and names stay within AWS limits.

use lifeboat_config::{AWS_REGIONS, Config, NatGateways};
use proptest::prelude::*;

fn config_strategy() -> impl Strategy<Value = Config> {
    (
        // Together at most 25 characters: bucket names also carry the region and the account id.
        "[a-z][a-z0-9]{0,15}",
        "[a-z][a-z0-9]{0,8}",
        0..AWS_REGIONS.len(),
        1..AWS_REGIONS.len(),
        prop_oneof![Just(2u8), Just(3u8)],
        any::<bool>(),
        any::<(bool, bool)>(),
        0..4usize,
        prop_oneof![Just(10u32), Just(30u32)],
        1..=10u32,
    )
        .prop_map(
            |(
                name,
                env,
                primary,
                offset,
                azs,
                per_az,
                (cert_p, cert_s),
                emails,
                interval,
                threshold,
            )| {
                let mut c = Config::default();
                c.project.name = name;
                c.project.environment = env;
                c.regions.primary = AWS_REGIONS[primary].to_string();
                c.regions.standby = AWS_REGIONS[(primary + offset) % AWS_REGIONS.len()].to_string();
                c.network.az_count = azs;
                c.network.nat_gateways = if per_az {
                    NatGateways::PerAz
                } else {
                    NatGateways::Single
                };
                let cert =
                    |region: &str| format!("arn:aws:acm:{region}:123456789012:certificate/abc");
                c.certificates.primary = cert_p.then(|| cert(&c.regions.primary));
                c.certificates.standby = cert_s.then(|| cert(&c.regions.standby));
                // Outside `dev` a region without a certificate needs the explicit plain-HTTP opt-out.
                c.certificates.allow_insecure_http = !(cert_p && cert_s);
                c.alerts.emails = (0..emails).map(|i| format!("ops{i}@example.com")).collect();
                c.health_check.interval_seconds = interval;
                c.health_check.failure_threshold = threshold;
                c
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_valid_config_synthesizes(config in config_strategy()) {
        prop_assert!(config.validate().is_ok(), "{:?}", config.validate());
        let synthesis = lifeboat_platform::synthesize(&config).unwrap();
        let files = synthesis.render().unwrap();
        prop_assert_eq!(files.len(), 14);
        for (entry, template) in &synthesis.stacks {
            prop_assert!(entry.name.len() <= 128);
            let v = template.to_json();
            for resource in v["Resources"].as_object().unwrap().values() {
                let p = &resource["Properties"];
                if let Some(pattern) = p["BucketName"]["Fn::Sub"].as_str() {
                    let name = pattern.replace("${AWS::AccountId}", "123456789012");
                    prop_assert!(name.len() <= 63, "bucket name {}", name);
                }
                prop_assert!(p["BucketName"].as_str().is_none(), "a bucket name without the account id");
                if resource["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer" || resource["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup" {
                    let name = p["Name"].as_str().unwrap();
                    prop_assert!(name.len() <= 32 && !name.ends_with('-'), "load balancer name {}", name);
                }
                if let Some(name) = p["FunctionName"].as_str() {
                    prop_assert!(name.len() <= 64);
                }
                if let Some(name) = p["DBClusterIdentifier"].as_str() {
                    prop_assert!(name.len() <= 63);
                }
            }
        }
    }
}
