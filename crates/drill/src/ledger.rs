//! The client ledger: what the drill's clients were told, kept independently of the servers.
//!
//! Every acknowledged checkout (a 2xx) is an [`Ack`]; every attempt that did not end in one is a
//! [`FailedAttempt`]. The ledger is the ground truth the databases are checked against afterwards: a
//! server can only be trusted to keep what it told a client it kept.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch. The drill, the supervisor's event log and the runbook journal all
/// run on the same machine, so one wall clock orders all of them.
pub type UnixMs = i64;

pub fn now_ms() -> UnixMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Which client produced an entry: the load through the front door, or the client that keeps writing from
/// inside a region's own network (the partition scenario).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "region")]
pub enum Client {
    FrontDoor,
    InsideRegion(String),
}

impl Client {
    pub fn label(&self) -> String {
        match self {
            Client::FrontDoor => "front door".to_string(),
            Client::InsideRegion(r) => format!("inside {r}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: u64,
    pub quantity: u32,
}

/// One acknowledged checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub idempotency_key: String,
    pub order_id: String,
    /// When the first attempt of this checkout started.
    pub started_ms: UnixMs,
    /// When the final attempt's request was sent.
    pub last_attempt_ms: UnixMs,
    /// When the 2xx answer arrived.
    pub acked_ms: UnixMs,
    /// From the `X-Lifeboat-Region` header: the region that acknowledged.
    pub region: String,
    /// From the `X-Lifeboat-Epoch` header: the fencing epoch the acknowledging instance wrote under.
    pub epoch: u64,
    /// What the client put in the cart, to check the stored order's lines against.
    pub lines: Vec<OrderLine>,
    /// How many attempts it took (1 = first try).
    pub attempts: u32,
    pub client: Client,
    /// The answer returned an order written by an earlier attempt with the same key (an earlier answer was
    /// lost): its region and epoch are those of that earlier write, not of this answer.
    #[serde(default)]
    pub replayed: bool,
    /// The order's `created_at` (server clock, just before its commit).
    #[serde(default)]
    pub written_ms: Option<UnixMs>,
}

impl Ack {
    /// When the write this acknowledgement reports was accepted, at the latest: for a fresh write, the
    /// request had to be sent first, so a request sent after the fence is a write after the fence; for a
    /// replay, the original write's own time.
    pub fn accepted_no_earlier_than(&self) -> Option<UnixMs> {
        if self.replayed {
            self.written_ms
        } else {
            Some(self.last_attempt_ms)
        }
    }
}

/// One attempt that did not end in a 2xx (it may have been retried and acknowledged later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedAttempt {
    pub idempotency_key: String,
    pub at_ms: UnixMs,
    /// HTTP status, or `connect`, `timeout`, ... when there was no answer.
    pub reason: String,
    pub client: Client,
}

/// A checkout the client gave up on (attempts or time exhausted). Not a loss: nobody acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abandoned {
    pub idempotency_key: String,
    pub started_ms: UnixMs,
    pub attempts: u32,
    pub last_reason: String,
    pub client: Client,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub acks: Vec<Ack>,
    pub failures: Vec<FailedAttempt>,
    pub abandoned: Vec<Abandoned>,
    /// Idempotency keys of every checkout started, acknowledged or not. The ledger check looks these up in
    /// the database so a key stored twice is found even when its answer never arrived.
    pub keys_used: Vec<String>,
}

impl Ledger {
    pub fn merge(&mut self, other: Ledger) {
        self.acks.extend(other.acks);
        self.failures.extend(other.failures);
        self.abandoned.extend(other.abandoned);
        self.keys_used.extend(other.keys_used);
    }

    /// Acknowledgements in the order the clients received them.
    pub fn acks_by_time(&self) -> Vec<&Ack> {
        let mut acks: Vec<&Ack> = self.acks.iter().collect();
        acks.sort_by_key(|a| a.acked_ms);
        acks
    }

    /// Writes the ledger as JSON lines (one entry per line, tagged), so a partial ledger of a crashed client
    /// is still readable up to its last complete line.
    pub fn to_json_lines(&self) -> String {
        let mut out = String::new();
        for entry in self.entries() {
            // Serializing these plain structs cannot fail.
            if let Ok(line) = serde_json::to_string(&entry) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    pub fn from_json_lines(text: &str) -> Result<Ledger, String> {
        let mut ledger = Ledger::default();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: Entry =
                serde_json::from_str(line).map_err(|e| format!("ledger line {}: {e}", n + 1))?;
            match entry {
                Entry::Ack(a) => ledger.acks.push(a),
                Entry::Failure(f) => ledger.failures.push(f),
                Entry::Abandoned(a) => ledger.abandoned.push(a),
                Entry::Key { key } => ledger.keys_used.push(key),
            }
        }
        Ok(ledger)
    }

    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.keys_used
            .iter()
            .cloned()
            .map(|key| Entry::Key { key })
            .chain(self.acks.iter().cloned().map(Entry::Ack))
            .chain(self.failures.iter().cloned().map(Entry::Failure))
            .chain(self.abandoned.iter().cloned().map(Entry::Abandoned))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
enum Entry {
    Key { key: String },
    Ack(Ack),
    Failure(FailedAttempt),
    Abandoned(Abandoned),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(key: &str, at: UnixMs) -> Ack {
        Ack {
            idempotency_key: key.into(),
            order_id: format!("o-{key}"),
            started_ms: at - 5,
            last_attempt_ms: at - 3,
            acked_ms: at,
            region: "us-east-1".into(),
            epoch: 1,
            lines: vec![OrderLine {
                product_id: 7,
                quantity: 2,
            }],
            attempts: 1,
            client: Client::InsideRegion("us-east-1".into()),
            replayed: false,
            written_ms: Some(at - 4),
        }
    }

    #[test]
    fn json_lines_round_trip_keeps_every_entry() {
        let ledger = Ledger {
            acks: vec![ack("b", 20), ack("a", 10)],
            failures: vec![FailedAttempt {
                idempotency_key: "c".into(),
                at_ms: 15,
                reason: "503".into(),
                client: Client::FrontDoor,
            }],
            abandoned: vec![Abandoned {
                idempotency_key: "c".into(),
                started_ms: 14,
                attempts: 3,
                last_reason: "timeout".into(),
                client: Client::FrontDoor,
            }],
            keys_used: vec!["a".into(), "b".into(), "c".into()],
        };
        let text = ledger.to_json_lines();
        assert_eq!(text.lines().count(), 7);
        assert_eq!(
            Ledger::from_json_lines(&text).unwrap(),
            Ledger {
                acks: ledger.acks.clone(),
                ..ledger.clone()
            }
        );
        let order: Vec<&str> = ledger
            .acks_by_time()
            .iter()
            .map(|a| a.idempotency_key.as_str())
            .collect();
        assert_eq!(order, ["a", "b"]);
    }

    #[test]
    fn a_corrupt_line_is_reported_with_its_number() {
        let err = Ledger::from_json_lines("{\"entry\":\"key\"}\n").unwrap_err();
        assert!(err.starts_with("ledger line 1:"), "{err}");
    }
}
