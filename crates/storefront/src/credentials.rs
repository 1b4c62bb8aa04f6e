//! The database credentials the pool connects with, and re-reading them when the server rejects them.
//!
//! A password rotation changes the secret and the database user's password; connections already open keep
//! working, but the next new one is refused (MySQL error 1045). The request that met the refusal re-reads
//! the credentials from their source (the Secrets Manager secret on AWS, a URL file locally), gives the pool
//! the new ones and runs again, so a rotation costs no failed request. Concurrent refusals share one re-read.

use std::cell::Cell;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::MySqlPool;
use sqlx::mysql::MySqlConnectOptions;

use crate::app::DatabaseSecret;

/// MySQL's ER_ACCESS_DENIED_ERROR: the server refused the user name or password.
pub const ACCESS_DENIED: u16 = 1045;

/// Where the database URL comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CredentialSource {
    /// The URL given at start; nothing to re-read.
    #[default]
    Fixed,
    /// A file holding the database URL (its first line), re-read when the server refuses the credentials.
    UrlFile(PathBuf),
    /// The platform's secret (feature `aws`), re-read when the server refuses the credentials.
    Secret {
        database: DatabaseSecret,
        region: Option<String>,
    },
}

impl CredentialSource {
    /// The current URL, or `None` for a fixed one.
    pub async fn url(&self) -> anyhow::Result<Option<String>> {
        match self {
            CredentialSource::Fixed => Ok(None),
            CredentialSource::UrlFile(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                    anyhow::anyhow!("cannot read the database URL file {}: {e}", path.display())
                })?;
                Ok(text.lines().next().map(|l| l.trim().to_owned()))
            }
            CredentialSource::Secret { database, region } => Ok(Some(
                crate::app::database_url_from_secret(database, region.as_deref()).await?,
            )),
        }
    }
}

/// The source and what re-reading it did.
pub struct Credentials {
    source: CredentialSource,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    refreshes: AtomicU64,
}

/// A refusal met within this long after a re-read is retried with the credentials that re-read found.
const SHARED_REFRESH: Duration = Duration::from_secs(1);

impl Credentials {
    pub fn new(source: CredentialSource) -> Self {
        Self {
            source,
            last_refresh: tokio::sync::Mutex::new(None),
            refreshes: AtomicU64::new(0),
        }
    }

    /// How many times the credentials were re-read.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Re-reads the credentials and hands them to `pool`; `true` when a retry may succeed.
    pub async fn refresh(&self, pool: &MySqlPool) -> bool {
        if self.source == CredentialSource::Fixed {
            return false;
        }
        let mut last = self.last_refresh.lock().await;
        if (*last).is_some_and(|at| at.elapsed() < SHARED_REFRESH) {
            return true;
        }
        let url = match self.source.url().await {
            Ok(Some(url)) => url,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot re-read the database credentials");
                return false;
            }
        };
        let Ok(options) = MySqlConnectOptions::from_str(&url) else {
            tracing::warn!("the re-read database URL is not valid");
            return false;
        };
        pool.set_connect_options(options);
        *last = Some(Instant::now());
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        tracing::info!("database credentials re-read after the server refused them");
        true
    }
}

tokio::task_local! {
    static REFUSED: Cell<bool>;
}

/// Notes, for the request being served, that the server refused the credentials.
pub fn note(e: &sqlx::Error) {
    if crate::error::mysql_error_number(e) == Some(ACCESS_DENIED) {
        let _ = REFUSED.try_with(|refused| refused.set(true));
    }
}

/// Runs `f`, telling whether the server refused the credentials while it ran.
pub async fn watch<F: Future>(f: F) -> (F::Output, bool) {
    REFUSED
        .scope(Cell::new(false), async move {
            let out = f.await;
            (out, REFUSED.with(Cell::get))
        })
        .await
}
