//! Recovery from logical corruption, in the database stacks (the alarms in the DR automation stack, which
//! has the alert topic). Replication copies a bad `DELETE` to the
//! standby within a second, so DR also needs copies a mistake or an attacker cannot reach:
//!
//! - a backup vault in each region (same name), encrypted with its own customer-managed key, with a vault
//!   lock (governance mode: `MinRetentionDays` from `backup.vault_lock_min_retention_days`, no
//!   `ChangeableForDays`) and an access policy denying the deletion of recovery points to every principal;
//! - in the primary region, a daily backup plan for the region's Aurora cluster and the two DynamoDB tables
//!   (sessions, DR journal), kept `backup.retention_days`, each recovery point copied to the standby region's
//!   vault and kept there as long;
//! - alarms on failed backup jobs and failed copy jobs (AWS/Backup metrics by vault name:
//!   <https://docs.aws.amazon.com/aws-backup/latest/devguide/cloudwatch.html>).
//!
//! Deliberately not done: a compliance-mode vault lock (irreversible after its grace time, so a wrong
//! retention could never be corrected), and a plan in the standby region (the standby cluster is a
//! secondary of the global database; the plan follows the primary's data, which the copies bring over).

use lifeboat_cfn::resources::{backup, cloudwatch, iam};
use lifeboat_cfn::{Expr, get_att, r, sub};
use lifeboat_config::{Config, Role};
use serde_json::json;

use crate::util::{Stack, arn, arn_in, assume_role, kms_key};

/// Logical id of the backup vault in the database stacks.
pub const VAULT: &str = "BackupVault";
/// When the daily backup starts (UTC), after the Aurora backup window (03:00-04:00) so the two do not meet.
pub const SCHEDULE: &str = "cron(0 5 ? * * *)";
/// A job that cannot start within this window counts as failed (and raises the alarm).
pub const START_WINDOW_MINUTES: u32 = 60;
pub const COMPLETION_WINDOW_MINUTES: u32 = 480;

/// The vault in every region; the plan, its selection and the alarms in the primary region.
pub fn backups(config: &Config, s: &mut Stack, role: Role) {
    let names = config.names();
    let key = kms_key(
        s,
        "BackupKey",
        &format!("alias/{}-backup", names.prefix()),
        "Encrypts the recovery points in the backup vault",
        &[],
    );
    let vault_name = names.backup_vault();
    s.template
        .add(
            VAULT,
            backup::BackupVault {
                backup_vault_name: vault_name.clone().into(),
                encryption_key_arn: Some(key),
                lock_configuration: Some(Expr::json(json!({
                    "MinRetentionDays": config.backup.vault_lock_min_retention_days
                }))),
                access_policy: Some(Expr::json(json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "NobodyDeletesRecoveryPoints",
                        "Effect": "Deny",
                        "Principal": { "AWS": "*" },
                        "Action": ["backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"],
                        "Resource": "*"
                    }]
                }))),
            },
        )
        .stateful(lifeboat_cfn::DeletionPolicy::RetainExceptOnCreate);
    s.output(
        "BackupVaultName",
        r(VAULT),
        "Backup vault in this region (vault lock on)",
    );
    if role != Role::Primary {
        return;
    }

    s.template.add(
        "BackupRole",
        iam::Role {
            assume_role_policy_document: assume_role("backup.amazonaws.com"),
            description: Some(
                "AWS Backup takes and copies the backups of the Aurora cluster and the tables".into(),
            ),
            policies: None,
            managed_policy_arns: Some(Expr::list([
                sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"),
                sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"),
            ])),
        },
    );
    let retention = config.backup.retention_days;
    let standby_vault = arn_in(
        "backup",
        &config.regions.standby,
        &format!("backup-vault:{vault_name}"),
    );
    s.template.add(
        "BackupPlan",
        backup::BackupPlan {
            backup_plan: Expr::json(json!({
                "BackupPlanName": names.backup_plan(),
                "BackupPlanRule": [{
                    "RuleName": "daily",
                    "TargetBackupVault": r(VAULT),
                    "ScheduleExpression": SCHEDULE,
                    "StartWindowMinutes": START_WINDOW_MINUTES,
                    "CompletionWindowMinutes": COMPLETION_WINDOW_MINUTES,
                    "Lifecycle": { "DeleteAfterDays": retention },
                    "CopyActions": [{
                        "DestinationBackupVaultArn": standby_vault,
                        "Lifecycle": { "DeleteAfterDays": retention }
                    }]
                }]
            })),
        },
    );
    let region = config.regions.primary.clone();
    s.template.add(
        "BackupSelection",
        backup::BackupSelection {
            backup_plan_id: r("BackupPlan"),
            backup_selection: Expr::json(json!({
                "SelectionName": "aurora-and-tables",
                "IamRoleArn": get_att("BackupRole", "Arn"),
                "Resources": [
                    arn("rds", &format!("cluster:{}", names.cluster_id(&region))),
                    arn("dynamodb", &format!("table/{}", names.sessions_table())),
                    arn("dynamodb", &format!("table/{}", names.journal_table())),
                ]
            })),
        },
    );
}

/// Alarms on failed backup and copy jobs of the vault, in the primary region's DR automation stack (the
/// first stack that has the alert topic).
pub fn alarms(config: &Config, s: &mut Stack, role: Role) {
    if role != Role::Primary {
        return;
    }
    let names = config.names();
    let vault_name = names.backup_vault();
    let topic = r("TopicArn");
    for (id, what, metric) in [
        (
            "BackupJobsFailedAlarm",
            "backup-jobs-failed",
            "NumberOfBackupJobsFailed",
        ),
        (
            "CopyJobsFailedAlarm",
            "backup-copy-jobs-failed",
            "NumberOfCopyJobsFailed",
        ),
    ] {
        s.template.add(
            id,
            cloudwatch::Alarm {
                alarm_name: Some(names.alarm(config.region(role), what).into()),
                alarm_description: Some(
                    format!(
                        "AWS Backup: a job of vault {vault_name} failed ({metric}); the next scheduled one may not fix it"
                    )
                    .into(),
                ),
                namespace: Some("AWS/Backup".into()),
                metric_name: Some(metric.into()),
                dimensions: Some(Expr::json(
                    json!([{ "Name": "BackupVaultName", "Value": vault_name }]),
                )),
                statistic: Some("Sum".into()),
                period: Some(3_600.into()),
                evaluation_periods: 1.into(),
                threshold: Some(0.into()),
                comparison_operator: "GreaterThanThreshold".into(),
                treat_missing_data: Some("notBreaching".into()),
                alarm_actions: Some(Expr::list([topic.clone()])),
                ok_actions: Some(Expr::list([topic.clone()])),
                ..Default::default()
            },
        );
    }
}
