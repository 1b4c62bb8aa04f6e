//! The run journal, the run lock and the fencing epoch in the DynamoDB journal table.
//!
//! Table key schema: partition key `pk` (string), sort key `sk` (string). Items:
//!
//! | pk | sk | attributes | what |
//! |---|---|---|---|
//! | `runs` | `<run id>` | `created_at` | the list of runs (`lifeboat runs`), sorted by id = start time |
//! | `run#<run id>` | `ev#<10-digit sequence>` | `event` (JSON), `at` | one journal event |
//! | `lock` | `lock` | `owner` (JSON), `token`, `expires_at_ms` | the run lock |
//! | `epoch` | `epoch` | `epoch` (number), `run_id` | the fencing epoch counter |
//!
//! Every write that must not be lost or duplicated is conditional: an event is written only where no
//! event with that sequence exists, the lock only when free, expired or already ours, the epoch only from
//! the value read. The table is a global table; one process always talks to one region's replica (the
//! conditions hold within a region), chosen by the caller.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use lifeboat_runbook::coordination::{EpochStore, LockError, LockLease, LockOwner, RunLock};
use lifeboat_runbook::journal::{Journal, JournalError, JournalEvent};
use lifeboat_runbook::{BoxFuture, RunId};

use crate::errors::error_code;

const PK: &str = "pk";
const SK: &str = "sk";
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// Journal, lock and epoch on one region's replica of the journal table.
pub struct JournalTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    region: String,
    /// Next sequence number per run, learnt at the first append of this process.
    next_seq: Mutex<HashMap<RunId, u64>>,
    /// Where the published epoch can be read (SSM clients and the parameter name): allocation never
    /// hands out a value at or below one that is already published.
    epoch_floor: Vec<(aws_sdk_ssm::Client, String)>,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl JournalTable {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        JournalTable {
            client,
            table: table.into(),
            region: region.into(),
            next_seq: Mutex::new(HashMap::new()),
            epoch_floor: Vec::new(),
        }
    }

    /// Also never allocate an epoch at or below the value of SSM parameter `name` read through `ssm`.
    pub fn with_epoch_floor(mut self, ssm: aws_sdk_ssm::Client, name: impl Into<String>) -> Self {
        self.epoch_floor.push((ssm, name.into()));
        self
    }

    fn location(&self) -> String {
        format!("DynamoDB table {} in {}", self.table, self.region)
    }

    fn storage<E: std::fmt::Display>(&self, what: &str, e: E) -> JournalError {
        JournalError::Storage {
            location: self.location(),
            detail: format!("{what}: {e}"),
        }
    }

    fn lock_storage<E: std::fmt::Display>(&self, what: &str, e: E) -> LockError {
        LockError::Storage {
            location: self.location(),
            detail: format!("{what}: {e}"),
        }
    }

    fn seq_key(seq: u64) -> String {
        format!("ev#{seq:010}")
    }

    /// The sequence number after the last stored event of `run` (0 when it has none).
    async fn stored_next_seq(&self, run: &RunId) -> Result<u64, JournalError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :ev)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(format!("run#{run}")))
            .expression_attribute_values(":ev", s("ev#"))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.storage("reading the last event", crate::errors::describe(&e)))?;
        let last = out
            .items()
            .first()
            .and_then(|item| item.get(SK))
            .and_then(|v| v.as_s().ok())
            .cloned();
        match last {
            None => Ok(0),
            Some(key) => key
                .trim_start_matches("ev#")
                .parse::<u64>()
                .map(|seq| seq + 1)
                .map_err(|_| JournalError::Corrupt {
                    run: run.clone(),
                    detail: format!("event key {key:?} is not ev#<number>"),
                }),
        }
    }

    async fn put_event(
        &self,
        run: &RunId,
        seq: u64,
        event: &JournalEvent,
    ) -> Result<bool, JournalError> {
        let json =
            serde_json::to_string(event).map_err(|e| self.storage("encoding the event", e))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(format!("run#{run}")))
            .item(SK, s(Self::seq_key(seq)))
            .item("event", s(json))
            .item("at", n(now_ms()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some(CONDITION_FAILED) => Ok(false),
            Err(e) => Err(self.storage("writing an event", crate::errors::describe(&e))),
        }
    }

    fn cached_seq(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, u64>> {
        // Every update is one insert: a poisoned map is still consistent.
        self.next_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn append_event(&self, run: &RunId, event: &JournalEvent) -> Result<(), JournalError> {
        let cached = self.cached_seq().get(run).copied();
        let mut seq = match cached {
            Some(seq) => seq,
            None => self.stored_next_seq(run).await?,
        };
        // The lock makes one process the only writer; a taken sequence means our cache is stale (another
        // process appended before we took over): re-read and go on after it.
        for _ in 0..5 {
            if self.put_event(run, seq, event).await? {
                self.cached_seq().insert(run.clone(), seq + 1);
                return Ok(());
            }
            seq = self.stored_next_seq(run).await?;
        }
        Err(self.storage(
            "appending an event",
            "the sequence kept moving under concurrent writers",
        ))
    }

    /// Reads one of the table's single items (`lock`, `epoch`: partition and sort key both the item's name),
    /// strongly consistent, since lock and epoch decisions must see the latest conditional write.
    async fn read_singleton(
        &self,
        name: &str,
        what: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, LockError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(name))
            .key(SK, s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.lock_storage(what, crate::errors::describe(&e)))?;
        Ok(out.item)
    }

    async fn read_lock(&self) -> Result<Option<(LockOwner, i64)>, LockError> {
        let Some(item) = self.read_singleton("lock", "reading the lock").await? else {
            return Ok(None);
        };
        let owner = item
            .get("owner")
            .and_then(|v| v.as_s().ok())
            .and_then(|j| serde_json::from_str::<LockOwner>(j).ok())
            .ok_or_else(|| {
                self.lock_storage("reading the lock", "the lock item has no readable owner")
            })?;
        let expires = item
            .get("expires_at_ms")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(Some((owner, expires)))
    }

    async fn published_epoch_floor(&self) -> u64 {
        let mut floor = 0;
        for (ssm, name) in &self.epoch_floor {
            if let Ok(out) = ssm.get_parameter().name(name).send().await
                && let Some(v) = out
                    .parameter()
                    .and_then(|p| p.value())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            {
                floor = floor.max(v);
            }
        }
        floor
    }
}

fn ms_to_time(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

impl Journal for JournalTable {
    fn create<'a>(
        &'a self,
        run_id: &'a RunId,
        first: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(PK, s("runs"))
                .item(SK, s(run_id.as_str()))
                .item("created_at", n(now_ms()))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e) if error_code(&e) == Some(CONDITION_FAILED) => {
                    return Err(JournalError::AlreadyExists(run_id.clone()));
                }
                Err(e) => {
                    return Err(self.storage("registering the run", crate::errors::describe(&e)));
                }
            }
            if !self.put_event(run_id, 0, first).await? {
                return Err(JournalError::AlreadyExists(run_id.clone()));
            }
            self.cached_seq().insert(run_id.clone(), 1);
            Ok(())
        })
    }

    fn append<'a>(
        &'a self,
        run_id: &'a RunId,
        event: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(self.append_event(run_id, event))
    }

    fn read<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalEvent>, JournalError>> {
        Box::pin(async move {
            let mut events = Vec::new();
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :ev)")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":pk", s(format!("run#{run_id}")))
                    .expression_attribute_values(":ev", s("ev#"))
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| self.storage("reading the run", crate::errors::describe(&e)))?;
                for item in out.items() {
                    let json = item
                        .get("event")
                        .and_then(|v| v.as_s().ok())
                        .ok_or_else(|| JournalError::Corrupt {
                            run: run_id.clone(),
                            detail: "an event item has no event attribute".into(),
                        })?;
                    let event = serde_json::from_str(json).map_err(|e| JournalError::Corrupt {
                        run: run_id.clone(),
                        detail: format!("an event does not parse: {e}"),
                    })?;
                    events.push(event);
                }
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
            if events.is_empty() {
                return Err(JournalError::UnknownRun(run_id.clone()));
            }
            Ok(events)
        })
    }

    fn list<'a>(&'a self) -> BoxFuture<'a, Result<Vec<RunId>, JournalError>> {
        Box::pin(async move {
            let mut ids = Vec::new();
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_values(":pk", s("runs"))
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| self.storage("listing runs", crate::errors::describe(&e)))?;
                for item in out.items() {
                    if let Some(id) = item.get(SK).and_then(|v| v.as_s().ok()) {
                        ids.push(
                            RunId::parse(id)
                                .map_err(|detail| self.storage("listing runs", detail))?,
                        );
                    }
                }
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
            ids.sort();
            Ok(ids)
        })
    }
}

impl RunLock for JournalTable {
    fn acquire<'a>(
        &'a self,
        owner: &'a LockOwner,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LockLease, LockError>> {
        Box::pin(async move {
            let now = now_ms();
            let expires = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
            let owner_json = serde_json::to_string(owner)
                .map_err(|e| self.lock_storage("encoding the owner", e))?;
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(PK, s("lock"))
                .item(SK, s("lock"))
                .item("owner", s(owner_json))
                .item("token", s(&owner.token))
                .item("expires_at_ms", n(expires))
                .condition_expression(
                    "attribute_not_exists(#pk) OR expires_at_ms < :now OR #token = :token",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#token", "token")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":token", s(&owner.token))
                .send()
                .await;
            match result {
                Ok(_) => Ok(LockLease {
                    owner: owner.clone(),
                    expires_at: ms_to_time(expires),
                }),
                Err(e) if error_code(&e) == Some(CONDITION_FAILED) => match self.read_lock().await?
                {
                    Some((holder, until)) => Err(LockError::Held {
                        holder,
                        expires_at: ms_to_time(until),
                    }),
                    None => Err(self.lock_storage(
                        "taking the lock",
                        "it was held and released meanwhile; try again",
                    )),
                },
                Err(e) => Err(self.lock_storage("taking the lock", crate::errors::describe(&e))),
            }
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a LockLease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<LockLease, LockError>> {
        Box::pin(async move {
            let now = now_ms();
            let expires = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PK, s("lock"))
                .key(SK, s("lock"))
                .update_expression("SET expires_at_ms = :expires")
                .condition_expression("#token = :token AND expires_at_ms >= :now")
                .expression_attribute_names("#token", "token")
                .expression_attribute_values(":token", s(&lease.owner.token))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":expires", n(expires))
                .send()
                .await;
            match result {
                Ok(_) => Ok(LockLease {
                    owner: lease.owner.clone(),
                    expires_at: ms_to_time(expires),
                }),
                Err(e) if error_code(&e) == Some(CONDITION_FAILED) => {
                    let detail = match self.read_lock().await? {
                        Some((holder, _)) if holder.token == lease.owner.token => {
                            "the lease expired before it was renewed".to_owned()
                        }
                        Some((holder, _)) => format!("it is now held by {}", holder.describe()),
                        None => "the lock is no longer held by anyone".to_owned(),
                    };
                    Err(LockError::Lost {
                        run: lease.owner.run_id.clone(),
                        detail,
                    })
                }
                Err(e) => Err(self.lock_storage("renewing the lock", crate::errors::describe(&e))),
            }
        })
    }

    fn release<'a>(&'a self, lease: &'a LockLease) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async move {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(PK, s("lock"))
                .key(SK, s("lock"))
                .condition_expression("#token = :token")
                .expression_attribute_names("#token", "token")
                .expression_attribute_values(":token", s(&lease.owner.token))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(e) if error_code(&e) == Some(CONDITION_FAILED) => Ok(()),
                Err(e) => Err(self.lock_storage("releasing the lock", crate::errors::describe(&e))),
            }
        })
    }
}

impl JournalTable {
    async fn read_epoch(&self) -> Result<(u64, Option<String>), LockError> {
        let Some(item) = self.read_singleton("epoch", "reading the epoch").await? else {
            return Ok((0, None));
        };
        let epoch = item
            .get("epoch")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                self.lock_storage("reading the epoch", "the epoch item holds no number")
            })?;
        Ok((
            epoch,
            item.get("run_id").and_then(|v| v.as_s().ok()).cloned(),
        ))
    }
}

impl EpochStore for JournalTable {
    fn current(&self) -> BoxFuture<'_, Result<u64, LockError>> {
        Box::pin(async move { Ok(self.read_epoch().await?.0) })
    }

    fn allocate<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<u64, LockError>> {
        Box::pin(async move {
            for _ in 0..10 {
                let (current, holder) = self.read_epoch().await?;
                if holder.as_deref() == Some(run_id.as_str()) {
                    return Ok(current);
                }
                let next = current.max(self.published_epoch_floor().await) + 1;
                let mut update = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .item(PK, s("epoch"))
                    .item(SK, s("epoch"))
                    .item("epoch", n(next))
                    .item("run_id", s(run_id.as_str()));
                update = if holder.is_none() && current == 0 {
                    update
                        .condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", PK)
                } else {
                    update
                        .condition_expression("epoch = :current")
                        .expression_attribute_values(":current", n(current))
                };
                match update.send().await {
                    Ok(_) => return Ok(next),
                    // Someone allocated between our read and write: read again.
                    Err(e) if error_code(&e) == Some(CONDITION_FAILED) => continue,
                    Err(e) => {
                        return Err(
                            self.lock_storage("allocating an epoch", crate::errors::describe(&e))
                        );
                    }
                }
            }
            Err(self.lock_storage("allocating an epoch", "too many concurrent allocations"))
        })
    }
}
