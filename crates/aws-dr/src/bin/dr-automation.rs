//! The DR automation Lambda (`provided.al2023`, built by `lifeboat package`).
//!
//! Invoked by the DR state machine, one task per invocation (decide, begin a run, advance it by one stage,
//! report a failure: [`lifeboat_aws_dr::tasks`]), and by the probe schedule. Reads its environment (see
//! [`lifeboat_aws_dr::topology::from_env`]). Logs are JSON lines; the answer says what was decided and
//! done; a task that a retry can cure fails the invocation, so the state machine retries it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use lambda_runtime::{Error, LambdaEvent, service_fn};
use lifeboat_aws_dr::{AwsEnvironment, Connection};
use serde_json::Value;
use std::time::Duration;

/// Kept free at the end of an invocation to journal the hand-over to the next one and answer.
const MARGIN: Duration = Duration::from_secs(60);

/// The time runbook steps may use in this invocation: until Lambda's deadline (milliseconds since the
/// epoch), minus [`MARGIN`].
fn budget_until(deadline_ms: u64) -> Duration {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
        .saturating_sub(MARGIN)
        .max(Duration::from_secs(1))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let (topology, settings) = lifeboat_aws_dr::topology::from_env(&|key| std::env::var(key).ok())
        .map_err(|e| format!("DR automation environment: {e}"))?;
    // The Lambda's own region coordinates: it is the one that is up when this runs.
    let own_region =
        std::env::var("AWS_REGION").unwrap_or_else(|_| topology.standby_region.clone());
    let env = AwsEnvironment::connect(&Connection::default(), topology, &own_region).await;
    let env = &env;
    let settings = &settings;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let budget = budget_until(event.context.deadline);
        match lifeboat_aws_dr::lambda::invoke(env, settings, &event.payload, budget).await {
            Ok(answer) => {
                tracing::info!(answer = %answer, "done");
                Ok::<Value, Error>(answer)
            }
            Err(failure) => {
                tracing::error!(error = %failure, "task failed");
                Err(failure.into())
            }
        }
    }))
    .await
}
