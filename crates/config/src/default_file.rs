//! The commented configuration `lifeboat init` writes. A test asserts it parses to `Config::default()`,
//! so the comments and the defaults cannot drift apart.

pub const DEFAULT_CONFIG_TOML: &str = r#"# lifeboat.toml: one environment of a two-region (active-passive) shop on AWS.
# Every key is optional; the values below are the defaults. Unknown keys are errors.

[project]
# Lower-case letters, digits and '-'; starts every physical name (stacks, buckets, tables).
name = "lifeboat"
# Environment suffix, part of every name. Deletion protection is on unless this is "dev".
environment = "dev"

[regions]
# Active region in normal operation, and the warm standby. Distinct AWS region names.
primary = "us-east-1"
standby = "us-west-2"

[tags]
# Added to every resource, over the defaults Project=ECommerceDR, Environment=<environment>, ManagedBy=lifeboat.
# CostCenter = "1234"

[dns]
# lifeboat creates a public hosted zone for this domain; delegate it from your registrar. The default is a
# reserved name (RFC 2606): `lifeboat synth` works with it, `lifeboat deploy` refuses it. Set a domain you own.
domain = "shop.example.com"
# The failover record: www.shop.example.com points at the primary, or the standby when the primary is unhealthy.
record = "www"
ttl_seconds = 60

[certificates]
# ACM certificate ARNs (one per region, in that region) for HTTPS on the load balancers.
# Without one, that region's load balancer serves plain HTTP, which is refused outside the "dev" environment
# unless allow_insecure_http is true.
# primary = "arn:aws:acm:us-east-1:123456789012:certificate/..."
# standby = "arn:aws:acm:us-west-2:123456789012:certificate/..."
allow_insecure_http = false

[alerts]
# Subscribed to the alert topic in both regions; each address must confirm the subscription.
emails = []

[database]
# Aurora MySQL 3 (MySQL 8.0 compatible), Serverless v2, as a global database across both regions. The default is
# the 3.10 long-term support line; on 3.04 and 3.10 automatic minor version upgrades are off, as AWS advises.
engine_version = "8.0.mysql_aurora.3.10.3"
name = "shop"
backup_retention_days = 7

[database.capacity.primary]
# Aurora capacity units (ACUs), in steps of 0.5.
min = 0.5
max = 16.0

# The standby's range defaults to the primary's, so the region that takes over after a failover can carry
# the primary's load. Lower it only to save cost (a failover then runs on less until someone raises it):
# [database.capacity.standby]
# min = 0.5
# max = 8.0

[database.instances]
# db.serverless instances per cluster: the writer plus readers in other AZs (1 to 16).
primary = 2
# The standby has as many by default; lower it only to save cost:
# standby = 1

[network]
# Availability zones per region: 2 or 3.
az_count = 2
# "single" (one NAT gateway per region) or "per-az" (survives the loss of an AZ, costs more).
nat_gateways = "single"
# Non-overlapping, /16 to /20.
primary_cidr = "10.10.0.0/16"
standby_cidr = "10.20.0.0/16"

[dr]
# Targets: recovery time and recovery point objectives.
rto_seconds = 300
rpo_seconds = 5
# A switchover fences writes only once replication lag is below this.
max_switchover_lag_seconds = 5
# May the automation fail over on its own when that can lose data? false: it alerts and waits for a human.
allow_data_loss = false
# The primary must be unhealthy this long before the automation acts.
alarm_min_seconds = 180
# Minimum time between two automated runs.
cooldown_seconds = 1800
switchover_timeout_seconds = 900
# Reserved concurrency of the DR automation function (1 to 1000), so nothing else in the account can starve
# it. Reserving needs an account concurrency limit above 10 + this (new accounts may start at 10).
reserved_concurrency = 2

[health_check]
# Route 53 health checks on each region's load balancer: every 10 or 30 seconds,
# unhealthy after 1 to 10 consecutive failures.
interval_seconds = 10
failure_threshold = 3
path = "/health"

[storefront]
# Reserved concurrency of the storefront function; unset: it shares the account's unreserved pool.
# reserved_concurrency = 100
# /health/deep without the health token answers from a cached result at most this many seconds old.
health_cache_seconds = 5

[audit]
# Run reports go to a versioned, KMS-encrypted reports bucket per region with S3 Object Lock in governance
# mode: every report object is protected from deletion and overwrite for this many days.
report_retention_days = 365

[backup]
# AWS Backup of the Aurora cluster and the DynamoDB tables (daily), copied to the standby region's vault.
# Recovery points (and their copies) are kept this many days.
retention_days = 35
# Vault lock: no recovery point can be deleted before this many days (at most retention_days).
vault_lock_min_retention_days = 7

[local]
# The local two-region runtime (`lifeboat local up`, `lifeboat drill`).
state_dir = ".lifeboat"
base_port = 17000
# "semi-sync" or "async" MariaDB replication between the two local regions.
replication = "semi-sync"
# How long a commit waits for the standby before going on asynchronously. At least twice the write lease
# (lease_ms, at most 1000 counted), so a region cut off mid-commit has lost its lease before it could
# acknowledge a commit the standby never received.
semi_sync_timeout_ms = 2000
probe_interval_ms = 1000
failure_threshold = 3
lease_ms = 1000
"#;
