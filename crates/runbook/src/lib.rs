//! The DR runbook engine: plans of idempotent steps, a durable journal, a lock and a fencing epoch, over traits so AWS and the local runtime share one set of runbooks.
