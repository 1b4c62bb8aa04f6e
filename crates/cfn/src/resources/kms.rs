//! AWS KMS.

use crate::Expr;

resource!(Key = "AWS::KMS::Key" {
    description: Option<Expr>,
    enable_key_rotation: Option<Expr>,
    key_policy: Option<Expr>,
    pending_window_in_days: Option<Expr>,
});

resource!(Alias = "AWS::KMS::Alias" {
    alias_name: Expr,
    target_key_id: Expr,
});
