//! Checks on a parsed config: unknown keys (with their full path) and values outside what AWS accepts.

use std::net::Ipv4Addr;

use crate::{CapacityRange, Config, ConfigErrorKind, Replication, Role, is_aws_region};

/// Keys whose tables accept any key (user-chosen names).
const FREE_FORM_TABLES: &[&str] = &["tags"];
/// Optional keys, absent from the serialized defaults and so from the schema derived from them.
const OPTIONAL_KEYS: &[(&str, &[&str])] = &[
    ("certificates", &["primary", "standby"]),
    ("storefront", &["reserved_concurrency"]),
    ("database.capacity", &["standby"]),
    ("database.instances", &["standby"]),
];

/// Rejects any key the config model does not know, naming its dotted path and the keys allowed there.
pub(crate) fn reject_unknown_keys(user: &toml::Table) -> Result<(), ConfigErrorKind> {
    // The schema is the serialized default config, so it always matches the model.
    let schema = toml::Table::try_from(Config::default()).map_err(|e| {
        ConfigErrorKind::Syntax(format!("the built-in defaults do not serialize: {e}"))
    })?;
    walk(user, &schema, "")
}

fn walk(user: &toml::Table, schema: &toml::Table, prefix: &str) -> Result<(), ConfigErrorKind> {
    let optional: &[&str] = OPTIONAL_KEYS
        .iter()
        .find(|(table, _)| *table == prefix)
        .map_or(&[], |(_, keys)| keys);
    for (key, value) in user {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if FREE_FORM_TABLES.contains(&path.as_str()) {
            continue;
        }
        match schema.get(key) {
            Some(toml::Value::Table(inner_schema)) => {
                if let toml::Value::Table(inner_user) = value {
                    walk(inner_user, inner_schema, &path)?;
                }
                // A non-table value here is a type error; serde reports it with its position.
            }
            Some(_) => {}
            None if optional.contains(&key.as_str()) => {}
            None => {
                let mut allowed: Vec<&str> = schema
                    .keys()
                    .map(String::as_str)
                    .chain(optional.iter().copied())
                    .collect();
                allowed.sort_unstable();
                return Err(ConfigErrorKind::UnknownKey {
                    key: path,
                    allowed: allowed.join(", "),
                });
            }
        }
    }
    Ok(())
}

fn invalid(
    key: &str,
    value: impl std::fmt::Display,
    allowed: impl Into<String>,
) -> ConfigErrorKind {
    ConfigErrorKind::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn in_range(key: &str, value: u32, low: u32, high: u32) -> Result<(), ConfigErrorKind> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(invalid(key, value, format!("{low} to {high}")))
    }
}

/// Lower-case letters, digits and inner hyphens, starting with a letter: safe in S3 bucket names,
/// stack names, cluster identifiers and SSM paths alike.
fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn is_domain(s: &str) -> bool {
    s.len() <= 200 && s.contains('.') && s.split('.').all(is_dns_label)
}

/// Why a domain cannot be delegated on the public DNS, or `None` when it can. These names are reserved for
/// documentation and testing by RFC 2606 (sections 2 and 3) and RFC 6761 (section 6): no registrar delegates
/// them and Route 53 refuses to create a public hosted zone for them ("reserved by AWS"), so a deploy would
/// fail on the networking stack and skip everything that depends on it.
pub fn reserved_domain(domain: &str) -> Option<&'static str> {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let under = |zone: &str| d == zone || d.ends_with(&format!(".{zone}"));
    if ["example.com", "example.net", "example.org"]
        .iter()
        .any(|z| under(z))
    {
        Some(
            "example.com, example.net, example.org and their subdomains are reserved for documentation (RFC 2606, section 3)",
        )
    } else if ["test", "example", "invalid", "localhost"]
        .iter()
        .any(|z| under(z))
    {
        Some(
            ".test, .example, .invalid and .localhost are reserved top-level domains (RFC 2606 section 2, RFC 6761 section 6)",
        )
    } else {
        None
    }
}

/// Parses `a.b.c.d/len` into the network address and prefix length; the address must be the network's own.
pub(crate) fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    if len > 32 {
        return None;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(addr) & !mask == 0).then_some((addr, len))
}

fn cidrs_overlap(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a.0) & mask == u32::from(b.0) & mask
}

fn is_half_step(v: f64) -> bool {
    (v * 2.0).fract() == 0.0
}

fn check_capacity(key: &str, c: CapacityRange) -> Result<(), ConfigErrorKind> {
    // Aurora global databases do not support auto-pause (0 ACU), so the floor is 0.5.
    if !(0.5..=256.0).contains(&c.min) || !is_half_step(c.min) {
        return Err(invalid(
            &format!("{key}.min"),
            c.min,
            "0.5 to 256 ACUs in steps of 0.5",
        ));
    }
    if !(1.0..=256.0).contains(&c.max) || !is_half_step(c.max) {
        return Err(invalid(
            &format!("{key}.max"),
            c.max,
            "1 to 256 ACUs in steps of 0.5",
        ));
    }
    if c.min > c.max {
        return Err(invalid(
            &format!("{key}.min"),
            c.min,
            format!("at most max ({})", c.max),
        ));
    }
    Ok(())
}

fn check_certificate(key: &str, arn: &str, region: &str) -> Result<(), ConfigErrorKind> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "acm"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5]
            .strip_prefix("certificate/")
            .is_some_and(|id| !id.is_empty());
    if !well_formed {
        return Err(invalid(
            key,
            quoted(arn),
            "an ACM certificate ARN, arn:aws:acm:<region>:<account>:certificate/<id>",
        ));
    }
    if parts[3] != region {
        return Err(invalid(
            key,
            quoted(arn),
            format!(
                "a certificate in {region} (a load balancer only uses certificates of its own region)"
            ),
        ));
    }
    Ok(())
}

/// Outside `dev`, both load balancers serve HTTPS: a missing certificate is an error unless the config says
/// explicitly that plain HTTP is acceptable.
fn check_plain_http(c: &Config) -> Result<(), ConfigErrorKind> {
    if c.project.environment == "dev" || c.certificates.allow_insecure_http {
        return Ok(());
    }
    let missing: Vec<Role> = Role::BOTH
        .into_iter()
        .filter(|role| c.certificate(*role).is_none())
        .collect();
    let allowed = format!(
        "an ACM certificate for each region outside the dev environment (environment is {:?}); set \
         certificates.primary and certificates.standby, or certificates.allow_insecure_http = true to serve plain HTTP",
        c.project.environment
    );
    match missing.as_slice() {
        [] => Ok(()),
        [role] => Err(invalid(&format!("certificates.{role}"), "none", allowed)),
        _ => Err(invalid("certificates", "none", allowed)),
    }
}

pub(crate) fn validate(c: &Config) -> Result<(), ConfigErrorKind> {
    if !is_name(&c.project.name, 20) {
        return Err(invalid(
            "project.name",
            quoted(&c.project.name),
            "1 to 20 lower-case letters, digits and single hyphens, starting with a letter",
        ));
    }
    if !is_name(&c.project.environment, 10) {
        return Err(invalid(
            "project.environment",
            quoted(&c.project.environment),
            "1 to 10 lower-case letters, digits and single hyphens, starting with a letter",
        ));
    }

    for (key, region) in [
        ("regions.primary", &c.regions.primary),
        ("regions.standby", &c.regions.standby),
    ] {
        if !is_aws_region(region) {
            return Err(invalid(
                key,
                quoted(region),
                format!(
                    "an AWS region name, one of: {}",
                    crate::AWS_REGIONS.join(", ")
                ),
            ));
        }
    }
    if c.regions.primary == c.regions.standby {
        return Err(invalid(
            "regions.standby",
            quoted(&c.regions.standby),
            "a region other than regions.primary",
        ));
    }

    for (key, value) in &c.tags {
        let path = format!("tags.{key}");
        if key.is_empty() || key.len() > 128 || key.starts_with("aws:") {
            return Err(invalid(
                &path,
                quoted(value),
                "tag keys of 1 to 128 characters, not starting with \"aws:\"",
            ));
        }
        if value.len() > 256 {
            return Err(invalid(
                &path,
                quoted(value),
                "tag values of at most 256 characters",
            ));
        }
    }

    if !is_domain(&c.dns.domain) {
        return Err(invalid(
            "dns.domain",
            quoted(&c.dns.domain),
            "a domain name such as shop.example.com",
        ));
    }
    if !is_dns_label(&c.dns.record) {
        return Err(invalid(
            "dns.record",
            quoted(&c.dns.record),
            "one DNS label such as www",
        ));
    }
    // Long TTLs keep clients on a failed region long after the failover record has switched.
    in_range("dns.ttl_seconds", c.dns.ttl_seconds, 1, 300)?;

    for role in Role::BOTH {
        if let Some(arn) = c.certificate(role) {
            check_certificate(&format!("certificates.{role}"), arn, c.region(role))?;
        }
    }

    check_plain_http(c)?;

    for email in &c.alerts.emails {
        let valid = email
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && is_domain(domain));
        if !valid {
            return Err(invalid(
                "alerts.emails",
                quoted(email),
                "e-mail addresses such as ops@example.com",
            ));
        }
    }

    if !c.database.engine_version.starts_with("8.0.mysql_aurora.3.") {
        return Err(invalid(
            "database.engine_version",
            quoted(&c.database.engine_version),
            "an Aurora MySQL 3 version (8.0.mysql_aurora.3.xx.y), the first to support Serverless v2 global databases",
        ));
    }
    let db_name_ok = c.database.name.len() <= 64
        && c.database
            .name
            .starts_with(|ch: char| ch.is_ascii_alphabetic())
        && c.database
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if !db_name_ok {
        return Err(invalid(
            "database.name",
            quoted(&c.database.name),
            "1 to 64 letters, digits and '_', starting with a letter",
        ));
    }
    in_range(
        "database.backup_retention_days",
        c.database.backup_retention_days,
        1,
        35,
    )?;
    check_capacity("database.capacity.primary", c.database.capacity.primary)?;
    if let Some(standby) = c.database.capacity.standby {
        check_capacity("database.capacity.standby", standby)?;
    }
    let instances = [
        (
            "database.instances.primary",
            Some(c.database.instances.primary),
        ),
        ("database.instances.standby", c.database.instances.standby),
    ];
    for (key, count) in instances {
        if let Some(count) = count {
            in_range(key, u32::from(count), 1, 16)?;
        }
    }

    // Bucket names carry the region and the 12-digit account id and may not exceed 63 characters.
    for region in [&c.regions.primary, &c.regions.standby] {
        let longest = c.names().alb_logs_bucket_in(region, "123456789012");
        if longest.len() > 63 {
            return Err(invalid(
                "project.name",
                quoted(&c.project.name),
                format!(
                    "a shorter name or environment: the bucket name {longest} ({} characters) exceeds S3's 63",
                    longest.len()
                ),
            ));
        }
    }
    if !matches!(c.network.az_count, 2 | 3) {
        return Err(invalid("network.az_count", c.network.az_count, "2 or 3"));
    }
    let mut cidrs = Vec::new();
    for (key, cidr) in [
        ("network.primary_cidr", &c.network.primary_cidr),
        ("network.standby_cidr", &c.network.standby_cidr),
    ] {
        // Nine subnets (three tiers in up to three AZs) are carved as sixteenths of the VPC range.
        match parse_cidr(cidr) {
            Some(parsed @ (_, 16..=20)) => cidrs.push(parsed),
            _ => {
                return Err(invalid(
                    key,
                    quoted(cidr),
                    "an IPv4 network in CIDR notation, /16 to /20, such as 10.10.0.0/16",
                ));
            }
        }
    }
    if cidrs_overlap(cidrs[0], cidrs[1]) {
        return Err(invalid(
            "network.standby_cidr",
            quoted(&c.network.standby_cidr),
            "a range that does not overlap network.primary_cidr (the regions may be peered)",
        ));
    }

    let dr = &c.dr;
    in_range("dr.rto_seconds", dr.rto_seconds, 60, 86_400)?;
    in_range("dr.rpo_seconds", dr.rpo_seconds, 1, 86_400)?;
    in_range(
        "dr.max_switchover_lag_seconds",
        dr.max_switchover_lag_seconds,
        1,
        3_600,
    )?;
    in_range("dr.alarm_min_seconds", dr.alarm_min_seconds, 10, 86_400)?;
    in_range("dr.cooldown_seconds", dr.cooldown_seconds, 0, 604_800)?;
    in_range(
        "dr.switchover_timeout_seconds",
        dr.switchover_timeout_seconds,
        60,
        86_400,
    )?;

    in_range("dr.reserved_concurrency", dr.reserved_concurrency, 1, 1_000)?;
    if let Some(n) = c.storefront.reserved_concurrency {
        in_range("storefront.reserved_concurrency", n, 1, 100_000)?;
    }
    in_range(
        "storefront.health_cache_seconds",
        c.storefront.health_cache_seconds,
        1,
        300,
    )?;
    // S3 Object Lock and AWS Backup both accept retention of up to 100 years.
    in_range(
        "audit.report_retention_days",
        c.audit.report_retention_days,
        1,
        36_500,
    )?;
    in_range("backup.retention_days", c.backup.retention_days, 1, 36_500)?;
    // A recovery point kept for less than the vault lock's minimum could never be stored: AWS Backup fails
    // the job.
    in_range(
        "backup.vault_lock_min_retention_days",
        c.backup.vault_lock_min_retention_days,
        1,
        c.backup.retention_days,
    )?;

    let hc = &c.health_check;
    if !matches!(hc.interval_seconds, 10 | 30) {
        return Err(invalid(
            "health_check.interval_seconds",
            hc.interval_seconds,
            "10 or 30 (the intervals Route 53 offers)",
        ));
    }
    in_range(
        "health_check.failure_threshold",
        hc.failure_threshold,
        1,
        10,
    )?;
    if !hc.path.starts_with('/') || hc.path.len() > 255 || hc.path.contains(char::is_whitespace) {
        return Err(invalid(
            "health_check.path",
            quoted(&hc.path),
            "a URL path starting with '/', such as /health",
        ));
    }

    let local = &c.local;
    if local.state_dir.trim().is_empty() {
        return Err(invalid(
            "local.state_dir",
            quoted(&local.state_dir),
            "a non-empty directory path",
        ));
    }
    if !(1024..=65_000).contains(&local.base_port) {
        return Err(invalid(
            "local.base_port",
            local.base_port,
            "1024 to 65000 (the runtime uses a few ports from here up)",
        ));
    }
    in_range(
        "local.semi_sync_timeout_ms",
        local.semi_sync_timeout_ms,
        1,
        600_000,
    )?;
    in_range(
        "local.probe_interval_ms",
        local.probe_interval_ms,
        50,
        600_000,
    )?;
    in_range("local.failure_threshold", local.failure_threshold, 1, 100)?;
    in_range("local.lease_ms", local.lease_ms, 100, 600_000)?;
    // A storefront acts on its write lease for at most min(lease_ms, 1000) ms. A commit that waited out the
    // semi-sync timeout (and went on asynchronously) must find that lease expired, or a region cut off
    // mid-commit could acknowledge a write the standby never received.
    let lease_window = local.lease_ms.min(1000);
    if local.replication == Replication::SemiSync && local.semi_sync_timeout_ms < 2 * lease_window {
        return Err(invalid(
            "local.semi_sync_timeout_ms",
            local.semi_sync_timeout_ms,
            format!(
                "at least {} (twice the write lease window min(local.lease_ms, 1000) = {lease_window} ms) with semi-sync replication",
                2 * lease_window
            ),
        ));
    }
    Ok(())
}

/// What deploying needs beyond [`validate`]: a domain that can be delegated (see [`reserved_domain`]).
/// `lifeboat synth` and the local runtime do not need one, so this is a separate check.
pub(crate) fn validate_for_deploy(c: &Config) -> Result<(), ConfigErrorKind> {
    if let Some(why) = reserved_domain(&c.dns.domain) {
        return Err(invalid(
            "dns.domain",
            quoted(&c.dns.domain),
            format!(
                "a domain you own, such as shop.your-company.com; {why}, and Route 53 refuses to create a \
                 hosted zone for it. Set it in lifeboat.toml under [dns]: domain = \"shop.your-company.com\""
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_overlap() {
        assert_eq!(
            parse_cidr("10.10.0.0/16"),
            Some((Ipv4Addr::new(10, 10, 0, 0), 16))
        );
        assert_eq!(parse_cidr("10.10.1.0/16"), None, "host bits set");
        assert!(cidrs_overlap(
            parse_cidr("10.10.0.0/16").unwrap(),
            parse_cidr("10.10.128.0/17").unwrap()
        ));
        assert!(!cidrs_overlap(
            parse_cidr("10.10.0.0/16").unwrap(),
            parse_cidr("10.20.0.0/16").unwrap()
        ));
    }
}
