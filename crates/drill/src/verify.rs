//! The ledger check: every order the clients were told about must be in the surviving primary database,
//! exactly once, with the lines the client put in its cart; and no region may have acknowledged a write
//! after the epoch that demoted it.

use crate::ledger::{Ack, Ledger, OrderLine, UnixMs};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// An order as stored in the database, looked up by idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOrder {
    pub order_id: String,
    pub idempotency_key: String,
    pub lines: Vec<OrderLine>,
}

/// When writes under an epoch stopped being allowed: from `at_ms` on, only epochs `>= epoch` may be
/// acknowledged. Raised by a switchover's fence step, or reached when a cut-off region's lease ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub epoch: u64,
    pub at_ms: UnixMs,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub acknowledged: usize,
    /// Acknowledged, but no order with that key (and order id) in the database.
    pub lost: Vec<String>,
    /// Keys stored more than once, or acknowledged twice with different order ids.
    pub duplicates: Vec<String>,
    /// Stored, but with lines other than the ones the client checked out.
    pub lines_mismatched: Vec<String>,
    /// Acknowledged under an epoch older than the fence, to a request sent after the fence was up.
    pub accepted_after_fence: Vec<String>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.lost.is_empty()
            && self.duplicates.is_empty()
            && self.lines_mismatched.is_empty()
            && self.accepted_after_fence.is_empty()
    }
}

/// Checks the ledger against the orders found in the database for the ledger's keys.
/// `fences`: every fence of the run (a cycle has one per transition); an acknowledgement under an older
/// epoch than any of them, to a request sent after it went up, is a violation.
pub fn check(ledger: &Ledger, stored: &[StoredOrder], fences: &[Fence]) -> Verification {
    let mut by_key: HashMap<&str, Vec<&StoredOrder>> = HashMap::new();
    for order in stored {
        by_key
            .entry(order.idempotency_key.as_str())
            .or_default()
            .push(order);
    }

    let mut acks_by_key: HashMap<&str, Vec<&Ack>> = HashMap::new();
    for ack in &ledger.acks {
        acks_by_key
            .entry(ack.idempotency_key.as_str())
            .or_default()
            .push(ack);
    }

    let mut v = Verification {
        acknowledged: acks_by_key.len(),
        ..Verification::default()
    };

    for (key, orders) in &by_key {
        if orders.len() > 1 {
            v.duplicates.push(key.to_string());
        }
    }
    for (key, acks) in &acks_by_key {
        let first = acks[0];
        if acks.iter().any(|a| a.order_id != first.order_id)
            && !v.duplicates.iter().any(|d| d == key)
        {
            v.duplicates.push(key.to_string());
        }
        match by_key.get(key) {
            None => v.lost.push(key.to_string()),
            Some(orders) => {
                // Every order id the client was given must be the one stored; another id means the
                // acknowledged order vanished and something else took its key.
                if acks
                    .iter()
                    .any(|a| !orders.iter().any(|o| o.order_id == a.order_id))
                {
                    v.lost.push(key.to_string());
                } else if orders.iter().any(|o| !same_lines(&o.lines, &first.lines)) {
                    v.lines_mismatched.push(key.to_string());
                }
            }
        }
        if fences.iter().any(|fence| {
            acks.iter().any(|a| {
                a.epoch < fence.epoch
                    && a.accepted_no_earlier_than()
                        .is_some_and(|t| t > fence.at_ms)
            })
        }) {
            v.accepted_after_fence.push(key.to_string());
        }
    }
    v.lost.sort();
    v.duplicates.sort();
    v.lines_mismatched.sort();
    v.accepted_after_fence.sort();
    v
}

fn same_lines(a: &[OrderLine], b: &[OrderLine]) -> bool {
    let mut a: Vec<(u64, u32)> = a.iter().map(|l| (l.product_id, l.quantity)).collect();
    let mut b: Vec<(u64, u32)> = b.iter().map(|l| (l.product_id, l.quantity)).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Reads every order whose Idempotency-Key starts with `key_prefix` (one drill run's orders), with its lines,
/// from the database at `db_url` (`mysql://user:password@host:port/database`).
pub async fn stored_orders(db_url: &str, key_prefix: &str) -> Result<Vec<StoredOrder>, String> {
    use sqlx::Connection as _;
    let mut conn = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sqlx::MySqlConnection::connect(db_url),
    )
    .await
    .map_err(|_| "no answer from the database within 10 s".to_string())?
    .map_err(|e| format!("connecting to the database: {e}"))?;
    // LIKE treats _ and % specially; the prefix is ours (letters, digits and '-') but escape it anyway.
    let pattern = format!(
        "{}%",
        key_prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows: Vec<(String, String, Option<u64>, Option<u32>)> = sqlx::query_as(
        "SELECT o.id, o.idempotency_key, l.product_id, l.quantity FROM orders o \
         LEFT JOIN order_lines l ON l.order_id = o.id WHERE o.idempotency_key LIKE ? ORDER BY o.id, l.line_no",
    )
    .bind(pattern)
    .fetch_all(&mut conn)
    .await
    .map_err(|e| format!("reading the orders: {e}"))?;
    let _ = conn.close().await;
    let mut orders: Vec<StoredOrder> = Vec::new();
    for (order_id, key, product_id, quantity) in rows {
        if orders.last().is_none_or(|o| o.order_id != order_id) {
            orders.push(StoredOrder {
                order_id,
                idempotency_key: key,
                lines: Vec::new(),
            });
        }
        if let (Some(product_id), Some(quantity), Some(order)) =
            (product_id, quantity, orders.last_mut())
        {
            order.lines.push(OrderLine {
                product_id,
                quantity,
            });
        }
    }
    Ok(orders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Client;

    fn line(product_id: u64, quantity: u32) -> OrderLine {
        OrderLine {
            product_id,
            quantity,
        }
    }

    fn ack(key: &str, order: &str, at: UnixMs, epoch: u64) -> Ack {
        Ack {
            idempotency_key: key.into(),
            order_id: order.into(),
            started_ms: at - 10,
            last_attempt_ms: at - 5,
            acked_ms: at,
            region: "us-east-1".into(),
            epoch,
            lines: vec![line(1, 1), line(2, 2)],
            attempts: 1,
            client: Client::FrontDoor,
            replayed: false,
            written_ms: Some(at - 7),
        }
    }

    fn stored(key: &str, order: &str, lines: Vec<OrderLine>) -> StoredOrder {
        StoredOrder {
            order_id: order.into(),
            idempotency_key: key.into(),
            lines,
        }
    }

    #[test]
    fn a_complete_ledger_passes() {
        let ledger = Ledger {
            acks: vec![ack("k1", "o1", 100, 1), ack("k2", "o2", 200, 2)],
            ..Ledger::default()
        };
        let db = vec![
            stored("k1", "o1", vec![line(2, 2), line(1, 1)]),
            stored("k2", "o2", vec![line(1, 1), line(2, 2)]),
        ];
        let v = check(
            &ledger,
            &db,
            &[Fence {
                epoch: 2,
                at_ms: 150,
            }],
        );
        assert_eq!(v.acknowledged, 2);
        assert!(v.passed(), "{v:?}");
    }

    #[test]
    fn missing_duplicated_altered_and_late_orders_are_each_found() {
        let ledger = Ledger {
            acks: vec![
                ack("lost", "o1", 100, 1),
                ack("dup", "o2", 100, 1),
                ack("lines", "o3", 100, 1),
                ack("late", "o4", 300, 1),
                ack("replaced", "o5", 100, 1),
            ],
            ..Ledger::default()
        };
        let db = vec![
            stored("dup", "o2", vec![line(1, 1), line(2, 2)]),
            stored("dup", "o2b", vec![line(1, 1), line(2, 2)]),
            stored("lines", "o3", vec![line(1, 1)]),
            stored("late", "o4", vec![line(1, 1), line(2, 2)]),
            stored("replaced", "other", vec![line(1, 1), line(2, 2)]),
            // Stored twice without ever being acknowledged: still a duplicate.
            stored("unacked", "x1", vec![]),
            stored("unacked", "x2", vec![]),
        ];
        let v = check(
            &ledger,
            &db,
            &[Fence {
                epoch: 2,
                at_ms: 250,
            }],
        );
        assert_eq!(v.acknowledged, 5);
        assert_eq!(v.lost, ["lost", "replaced"]);
        assert_eq!(v.duplicates, ["dup", "unacked"]);
        assert_eq!(v.lines_mismatched, ["lines"]);
        assert_eq!(v.accepted_after_fence, ["late"]);
        assert!(!v.passed());
    }

    #[test]
    fn an_ack_under_the_new_epoch_after_the_fence_is_fine() {
        let ledger = Ledger {
            acks: vec![ack("k", "o", 300, 2)],
            ..Ledger::default()
        };
        let db = vec![stored("k", "o", vec![line(1, 1), line(2, 2)])];
        assert!(
            check(
                &ledger,
                &db,
                &[Fence {
                    epoch: 2,
                    at_ms: 250
                }]
            )
            .passed()
        );
    }

    #[test]
    fn a_replay_after_the_fence_of_a_write_from_before_it_is_no_violation() {
        // The first answer was lost in the cut; the retry after the failover got the stored order back,
        // with the epoch it was written under.
        let mut replay = ack("k", "o", 900, 1);
        replay.replayed = true;
        replay.written_ms = Some(100);
        let db = vec![stored("k", "o", vec![line(1, 1), line(2, 2)])];
        let fence: &[Fence] = &[Fence {
            epoch: 2,
            at_ms: 250,
        }];
        let ledger = Ledger {
            acks: vec![replay.clone()],
            ..Ledger::default()
        };
        assert!(check(&ledger, &db, fence).passed());
        // Written after the fence under the old epoch: a violation, replayed or not.
        replay.written_ms = Some(300);
        let ledger = Ledger {
            acks: vec![replay],
            ..Ledger::default()
        };
        assert_eq!(check(&ledger, &db, fence).accepted_after_fence, ["k"]);
    }

    #[test]
    fn one_key_acknowledged_with_two_order_ids_is_a_duplicate() {
        let ledger = Ledger {
            acks: vec![ack("k", "o1", 100, 1), ack("k", "o2", 120, 1)],
            ..Ledger::default()
        };
        let db = vec![stored("k", "o1", vec![line(1, 1), line(2, 2)])];
        let v = check(&ledger, &db, &[]);
        assert_eq!(v.duplicates, ["k"]);
        assert_eq!(v.lost, ["k"], "order o2 was acknowledged but is not stored");
    }
}
