//! The AWS adapter: the CloudFormation deploy engine and the DR backend, on the official AWS SDK.
