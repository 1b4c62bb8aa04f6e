//! Where an instance learns which region is active, the fencing epoch and whether the write fence is raised.
//!
//! `static:` for development and tests, `file:` for a hand-edited JSON file, `http://` for the local runtime's
//! control server, `dynamodb:` (feature `aws`) for the control items of the DR journal table (what the
//! platform sets on AWS) and `ssm:` (feature `aws`) for SSM Parameter Store. All yield a [`ControlState`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use lifeboat_contract::ControlState;

/// Lease a source without a lease of its own grants: the 1 s cache bound of the write gate.
pub const DEFAULT_LEASE_MS: u64 = 1000;
/// How long one fetch may take before it counts as a failure.
pub const FETCH_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
#[error("control source {source_name}: {message}")]
pub struct ControlError {
    pub source_name: String,
    pub message: String,
}

impl ControlError {
    fn new(source_name: &str, message: impl Into<String>) -> Self {
        Self {
            source_name: source_name.to_owned(),
            message: message.into(),
        }
    }
}

pub trait ControlSource: Send + Sync {
    /// Fetch the current state. For the local control server this also renews this region's lease.
    fn fetch(&self) -> BoxFuture<'_, Result<ControlState, ControlError>>;
    /// A short description for logs and `/health/deep`, e.g. `http://127.0.0.1:7000`.
    fn describe(&self) -> String;
}

/// A fixed state held in memory. The handle lets a test (or an embedding program) change it or make it fail.
#[derive(Clone)]
pub struct StaticControl {
    inner: Arc<Mutex<StaticInner>>,
}

struct StaticInner {
    state: ControlState,
    failing: bool,
}

impl StaticControl {
    pub fn new(state: ControlState) -> Self {
        Self {
            inner: Arc::new(Mutex::new(StaticInner {
                state,
                failing: false,
            })),
        }
    }
    /// `region` active at `epoch`, fence down, the default lease.
    pub fn active(region: &str, epoch: u64) -> Self {
        Self::new(ControlState {
            active_region: region.to_owned(),
            epoch,
            fence_raised: false,
            lease_ms: DEFAULT_LEASE_MS,
        })
    }
    pub fn set(&self, state: ControlState) {
        self.lock().state = state;
    }
    pub fn update(&self, change: impl FnOnce(&mut ControlState)) {
        change(&mut self.lock().state);
    }
    /// While failing, every fetch errs, as a control store that cannot be reached.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, StaticInner> {
        // The guarded data stays consistent even if a holder panicked: every write replaces whole values.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ControlSource for StaticControl {
    fn fetch(&self) -> BoxFuture<'_, Result<ControlState, ControlError>> {
        let inner = self.lock();
        let result = if inner.failing {
            Err(ControlError::new("static", "set to fail"))
        } else {
            Ok(inner.state.clone())
        };
        Box::pin(async move { result })
    }
    fn describe(&self) -> String {
        "static".into()
    }
}

/// A JSON file holding a [`ControlState`], re-read on every fetch: lets an operator raise the fence by hand.
pub struct FileControl {
    path: PathBuf,
}

impl FileControl {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl ControlSource for FileControl {
    fn fetch(&self) -> BoxFuture<'_, Result<ControlState, ControlError>> {
        Box::pin(async move {
            let name = self.describe();
            let text = tokio::fs::read_to_string(&self.path)
                .await
                .map_err(|e| ControlError::new(&name, format!("cannot read: {e}")))?;
            serde_json::from_str(&text)
                .map_err(|e| ControlError::new(&name, format!("not a control state: {e}")))
        })
    }
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

/// The local runtime's control server: `GET {base}/v1/control?region={region}` answers the state and renews
/// the lease of `region`.
pub struct HttpControl {
    http: reqwest::Client,
    url: String,
    base: String,
}

impl HttpControl {
    pub fn new(base: &str, region: &str) -> Result<Self, ControlError> {
        let base = base.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| ControlError::new(&base, format!("cannot build an HTTP client: {e}")))?;
        let mut url = reqwest::Url::parse(&format!("{base}/v1/control"))
            .map_err(|e| ControlError::new(&base, format!("not a URL: {e}")))?;
        url.query_pairs_mut().append_pair("region", region);
        Ok(Self {
            http,
            url: url.to_string(),
            base,
        })
    }
}

impl ControlSource for HttpControl {
    fn fetch(&self) -> BoxFuture<'_, Result<ControlState, ControlError>> {
        Box::pin(async move {
            let response = self
                .http
                .get(&self.url)
                .send()
                .await
                .map_err(|e| ControlError::new(&self.base, format!("request failed: {e}")))?;
            let status = response.status();
            if !status.is_success() {
                return Err(ControlError::new(
                    &self.base,
                    format!("answered HTTP {status}"),
                ));
            }
            response
                .json::<ControlState>()
                .await
                .map_err(|e| ControlError::new(&self.base, format!("not a control state: {e}")))
        })
    }
    fn describe(&self) -> String {
        self.base.clone()
    }
}

/// SSM Parameter Store: `{prefix}/active-region`, `{prefix}/epoch`, `{prefix}/fence` (`raised` | `lowered`).
#[cfg(feature = "aws")]
pub struct SsmControl {
    client: aws_sdk_ssm::Client,
    prefix: String,
}

#[cfg(feature = "aws")]
impl SsmControl {
    pub fn new(client: aws_sdk_ssm::Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }
}

#[cfg(feature = "aws")]
impl ControlSource for SsmControl {
    fn fetch(&self) -> BoxFuture<'_, Result<ControlState, ControlError>> {
        Box::pin(async move {
            let name = self.describe();
            let names = ["active-region", "epoch", "fence"].map(|n| format!("{}/{n}", self.prefix));
            let output = self
                .client
                .get_parameters()
                .set_names(Some(names.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    ControlError::new(
                        &name,
                        format!(
                            "GetParameters failed: {}",
                            aws_sdk_ssm::error::DisplayErrorContext(e)
                        ),
                    )
                })?;
            let value = |wanted: &str| -> Result<String, ControlError> {
                output
                    .parameters()
                    .iter()
                    .find(|p| p.name() == Some(wanted))
                    .and_then(|p| p.value())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ControlError::new(&name, format!("parameter {wanted} is missing"))
                    })
            };
            let active_region = value(&names[0])?;
            let epoch_text = value(&names[1])?;
            let epoch = epoch_text.trim().parse().map_err(|_| {
                ControlError::new(
                    &name,
                    format!("{} is {epoch_text:?}, not an integer", names[1]),
                )
            })?;
            let fence_word = value(&names[2])?;
            let fence_raised = match lifeboat_contract::control::fence::parse(fence_word.trim()) {
                Some(raised) => raised,
                None => {
                    let other = fence_word.trim();
                    return Err(ControlError::new(
                        &name,
                        format!("{} is {other:?}, expected raised or lowered", names[2]),
                    ));
                }
            };
            Ok(ControlState {
                active_region,
                epoch,
                fence_raised,
                lease_ms: DEFAULT_LEASE_MS,
            })
        })
    }
    fn describe(&self) -> String {
        format!("ssm:{}", self.prefix)
    }
}

/// The control items of the DR journal table (`lifeboat_contract::control::item`), read from this region's
/// replica and, when it answers, the other region's.
///
/// The answer is the newest state of all items read ([`lifeboat_contract::control::newest`]). The other
/// region's replica is asked directly, not only through replication: a runbook that cannot reach this region
/// (a gray failure: health checks failing, storefront and database still up) publishes the new epoch in the
/// other region, and this region must stop writing on seeing it. Without an answer from the other region the
/// own replica decides, which still carries the other region's item as far as replication got: losing the
/// standby region must not stop the shop.
///
/// Read cost: one Query per replica per refresh, two items under 4 KB, eventually consistent: 0.5 read units
/// each (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html).
#[cfg(feature = "aws")]
pub struct DynamoControl {
    table: String,
    own: (String, aws_sdk_dynamodb::Client),
    peer: Option<(String, aws_sdk_dynamodb::Client)>,
    lease_ms: u64,
}

#[cfg(feature = "aws")]
impl DynamoControl {
    /// `own` and `peer` are (region, client of that region's replica).
    pub fn new(
        table: &str,
        own: (String, aws_sdk_dynamodb::Client),
        peer: Option<(String, aws_sdk_dynamodb::Client)>,
    ) -> Self {
        Self {
            table: table.to_owned(),
            own,
            peer,
            lease_ms: DEFAULT_LEASE_MS,
        }
    }

    async fn read(
        &self,
        region: &str,
        client: &aws_sdk_dynamodb::Client,
    ) -> Result<Vec<ControlState>, String> {
        use aws_sdk_dynamodb::types::AttributeValue;
        use lifeboat_contract::control::item;
        let out = client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", item::PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(item::PARTITION.into()))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "Query in {region} failed: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
        let mut states = Vec::new();
        for found in out.items() {
            let text = |key: &str| match found.get(key) {
                Some(AttributeValue::S(v)) => Some(v.as_str()),
                _ => None,
            };
            let for_region = text(item::SORT_KEY).unwrap_or("?");
            let epoch = match found.get(item::EPOCH) {
                Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
                _ => None,
            };
            let fence = text(item::FENCE).and_then(lifeboat_contract::control::fence::parse);
            match (text(item::ACTIVE_REGION), epoch, fence) {
                (Some(active), Some(epoch), Some(fence_raised)) => states.push(ControlState {
                    active_region: active.to_owned(),
                    epoch,
                    fence_raised,
                    lease_ms: self.lease_ms,
                }),
                // A malformed item is an error, not something to skip: skipping could hide the newest epoch.
                _ => {
                    return Err(format!(
                        "control item for {for_region} in {region} is malformed: {found:?}"
                    ));
                }
            }
        }
        Ok(states)
    }
}

#[cfg(feature = "aws")]
impl ControlSource for DynamoControl {
    fn fetch(&self) -> BoxFuture<'_, Result<ControlState, ControlError>> {
        Box::pin(async move {
            let name = self.describe();
            let own = self.read(&self.own.0, &self.own.1);
            let peer = async {
                match &self.peer {
                    // Bounded below the gate's own fetch timeout, so a slow peer never costs the own answer.
                    Some((region, client)) => Some(
                        tokio::time::timeout(FETCH_TIMEOUT * 3 / 5, self.read(region, client))
                            .await
                            .unwrap_or_else(|_| Err(format!("no answer from {region} in time"))),
                    ),
                    None => None,
                }
            };
            let (own, peer) = tokio::join!(own, peer);
            let mut states = own.map_err(|e| ControlError::new(&name, e))?;
            if states.is_empty() {
                return Err(ControlError::new(
                    &name,
                    format!(
                        "no control items in {} (lifeboat deploy creates them)",
                        self.own.0
                    ),
                ));
            }
            match peer {
                Some(Ok(more)) => states.extend(more),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "the other region's control items are not readable; deciding on this region's replica")
                }
                None => {}
            }
            // Not empty (checked above), so there is a newest.
            lifeboat_contract::control::newest(&states)
                .ok_or_else(|| ControlError::new(&name, "no control state to decide on"))
        })
    }
    fn describe(&self) -> String {
        match &self.peer {
            Some((peer, _)) => format!("dynamodb:{} ({}, {peer})", self.table, self.own.0),
            None => format!("dynamodb:{} ({})", self.table, self.own.0),
        }
    }
}

/// A parsed `--control` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlSpec {
    Static {
        active_region: String,
        epoch: u64,
    },
    File(PathBuf),
    Http(String),
    Ssm(String),
    /// `dynamodb:<table>[:<other region>]`: the journal table's control items.
    Dynamodb {
        table: String,
        peer_region: Option<String>,
    },
}

impl std::str::FromStr for ControlSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("static:") {
            let (region, epoch) = match rest.split_once(':') {
                Some((region, epoch)) => {
                    let epoch = epoch.parse().map_err(|_| {
                        format!("{s:?}: the epoch {epoch:?} is not a non-negative integer")
                    })?;
                    (region, epoch)
                }
                None => (rest, 1),
            };
            if region.is_empty() {
                return Err(format!("{s:?}: expected static:<region>[:<epoch>]"));
            }
            Ok(Self::Static {
                active_region: region.to_owned(),
                epoch,
            })
        } else if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err(format!(
                    "{s:?}: expected file:<path to a JSON control state>"
                ));
            }
            Ok(Self::File(PathBuf::from(path)))
        } else if s.starts_with("http://") || s.starts_with("https://") {
            Ok(Self::Http(s.to_owned()))
        } else if let Some(prefix) = s.strip_prefix("ssm:") {
            if !prefix.starts_with('/') {
                return Err(format!(
                    "{s:?}: the SSM prefix must start with '/', e.g. ssm:/lifeboat/dev"
                ));
            }
            Ok(Self::Ssm(prefix.to_owned()))
        } else if let Some(rest) = s.strip_prefix("dynamodb:") {
            // Table names cannot hold ':', so the first one separates the other region.
            let (table, peer_region) = match rest.split_once(':') {
                Some((table, peer)) => (table, Some(peer)),
                None => (rest, None),
            };
            if table.is_empty() || peer_region.is_some_and(str::is_empty) {
                return Err(format!("{s:?}: expected dynamodb:<table>[:<other region>]"));
            }
            Ok(Self::Dynamodb {
                table: table.to_owned(),
                peer_region: peer_region.map(str::to_owned),
            })
        } else {
            Err(format!(
                "{s:?}: expected static:<region>[:<epoch>], file:<path>, http://host:port, dynamodb:<table>[:<other region>] or ssm:<prefix>"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_specs_parse() {
        assert_eq!(
            "static:us-east-1".parse::<ControlSpec>().unwrap(),
            ControlSpec::Static {
                active_region: "us-east-1".into(),
                epoch: 1
            }
        );
        assert_eq!(
            "static:us-west-2:7".parse::<ControlSpec>().unwrap(),
            ControlSpec::Static {
                active_region: "us-west-2".into(),
                epoch: 7
            }
        );
        assert_eq!(
            "http://127.0.0.1:9".parse::<ControlSpec>().unwrap(),
            ControlSpec::Http("http://127.0.0.1:9".into())
        );
        assert_eq!(
            "ssm:/lifeboat/dev".parse::<ControlSpec>().unwrap(),
            ControlSpec::Ssm("/lifeboat/dev".into())
        );
        assert_eq!(
            "dynamodb:shop-prod-dr-journal:us-west-2"
                .parse::<ControlSpec>()
                .unwrap(),
            ControlSpec::Dynamodb {
                table: "shop-prod-dr-journal".into(),
                peer_region: Some("us-west-2".into())
            }
        );
        assert_eq!(
            "dynamodb:t".parse::<ControlSpec>().unwrap(),
            ControlSpec::Dynamodb {
                table: "t".into(),
                peer_region: None
            }
        );
        for bad in [
            "dynamodb:",
            "dynamodb::us-west-2",
            "dynamodb:t:",
            "static:",
            "static:us-east-1:x",
            "ssm:nope",
            "ftp://x",
            "file:",
        ] {
            assert!(bad.parse::<ControlSpec>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn static_control_can_be_changed_and_made_to_fail() {
        let control = StaticControl::active("us-east-1", 2);
        assert_eq!(control.fetch().await.unwrap().epoch, 2);
        control.update(|s| s.fence_raised = true);
        assert!(control.fetch().await.unwrap().fence_raised);
        control.set_failing(true);
        assert!(control.fetch().await.is_err());
    }

    #[tokio::test]
    async fn file_control_reads_json_and_names_the_file_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.json");
        let control = FileControl::new(path.clone());
        let err = control.fetch().await.unwrap_err();
        assert!(err.to_string().contains("control.json"), "{err}");
        std::fs::write(
            &path,
            r#"{"active_region":"us-west-2","epoch":4,"fence_raised":false,"lease_ms":500}"#,
        )
        .unwrap();
        assert_eq!(control.fetch().await.unwrap().active_region, "us-west-2");
        std::fs::write(&path, r#"{"active_region":"us-west-2"}"#).unwrap();
        assert!(
            control
                .fetch()
                .await
                .unwrap_err()
                .to_string()
                .contains("not a control state")
        );
    }

    #[tokio::test]
    async fn http_control_reports_an_unreachable_server() {
        // Port 9 (discard) is not listening on loopback here; the connection is refused at once.
        let control = HttpControl::new("http://127.0.0.1:9", "us-east-1").unwrap();
        let err = control.fetch().await.unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
    }
}
