//! The seven components of the two-region DR platform, synthesized into CloudFormation stacks and a manifest. Pure.
