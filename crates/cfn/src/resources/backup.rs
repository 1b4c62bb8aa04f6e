//! AWS Backup.

use crate::Expr;

resource!(BackupVault = "AWS::Backup::BackupVault" {
    backup_vault_name: Expr,
    encryption_key_arn: Option<Expr>,
    /// `{MinRetentionDays, MaxRetentionDays, ChangeableForDays}`; without `ChangeableForDays` the lock is in
    /// governance mode (removable by a principal allowed to `backup:DeleteBackupVaultLockConfiguration`).
    lock_configuration: Option<Expr>,
    access_policy: Option<Expr>,
});

resource!(BackupPlan = "AWS::Backup::BackupPlan" {
    backup_plan: Expr,
});

resource!(BackupSelection = "AWS::Backup::BackupSelection" {
    backup_plan_id: Expr,
    backup_selection: Expr,
});
