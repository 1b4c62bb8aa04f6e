//! The DR automation Lambda: EventBridge alarm events → the runbook policy → the engine.
